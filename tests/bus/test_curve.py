"""CURVE authentication for real: a listed grabber gets through, an unlisted key or no key does not."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.bus import CurveClient, CurveKeyError, CurveServer, Publisher, Subscriber, generate_keypair
from crosspose.cli import app

pytestmark = pytest.mark.timeout(60)


def test_keys_command_writes_a_pair(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["keys", "generate", "--out", str(tmp_path), "--name", "cam1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cam1.key").is_file()
    secret = tmp_path / "cam1.key_secret"
    assert secret.is_file()
    assert secret.stat().st_mode & 0o077 == 0  # secret readable by its owner only


def test_unknown_grabber_is_refused(tmp_path: Path) -> None:
    server_dir, allowed, other = tmp_path / "server", tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir()
    server_pub, server_secret = generate_keypair(server_dir, "server")
    good_pub, good_secret = generate_keypair(tmp_path / "good", "good")
    _, bad_secret = generate_keypair(other, "intruder")
    shutil.copy(good_pub, allowed / good_pub.name)

    server = CurveServer(server_secret, allowed)
    with Subscriber("tcp://127.0.0.1:*", [b"frame."], bind=True, curve=server) as sub:
        good = Publisher(sub.endpoint, bind=False, curve=CurveClient(server_pub, good_secret))
        intruder = Publisher(sub.endpoint, bind=False, curve=CurveClient(server_pub, bad_secret))
        plain = Publisher(sub.endpoint, bind=False)
        try:
            seen: dict[str, int] = {"good": 0, "intruder": 0, "plain": 0}
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and seen["good"] < 20:
                for name, pub in (("good", good), ("intruder", intruder), ("plain", plain)):
                    pub.send(b"frame.x.", {"type": "frame", "from": name})
                while (msg := sub.recv(20)) is not None:
                    seen[msg.header["from"]] += 1
            # The intruders had the same time and the same number of tries as the listed grabber.
            assert seen["good"] >= 20
            assert seen["intruder"] == 0
            assert seen["plain"] == 0
        finally:
            for p in (good, intruder, plain):
                p.close()


def test_bad_key_files_are_named(tmp_path: Path) -> None:
    pub, secret = generate_keypair(tmp_path, "server")
    with pytest.raises(CurveKeyError, match="does not exist"):
        CurveServer(tmp_path / "missing.key_secret", tmp_path).keys()
    with pytest.raises(CurveKeyError, match="no secret key"):
        CurveServer(pub, tmp_path).keys()
    with pytest.raises(CurveKeyError, match="allowed CURVE client keys folder"):
        CurveServer(secret, tmp_path / "nope").check()
    junk = tmp_path / "junk.key"
    junk.write_text("hello")
    with pytest.raises(CurveKeyError, match=r"junk\.key"):
        CurveClient(junk, secret).keys()
