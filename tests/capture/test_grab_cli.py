"""``crosspose grab`` as a real subprocess publishing into a real bound SUB socket over TCP."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.bus import FRAME, STATUS, Message, Subscriber
from crosspose.cli import app

pytestmark = pytest.mark.timeout(90)


def test_grab_subprocess_streams_a_video_file(video: Path) -> None:
    with Subscriber("tcp://127.0.0.1:*", [FRAME, STATUS], bind=True, hwm=1000) as sub:
        cmd = [
            sys.executable, "-m", "crosspose", "grab", "--camera", "remote1", "--source", str(video),
            "--connect", sub.endpoint, "--fps", "100", "--loop", "--jpeg-quality", "90", "--max-frames", "60",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            got: list[Message] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                msg = sub.recv(100)
                if msg is not None:
                    got.append(msg)
                elif proc.poll() is not None:
                    break
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, out
    assert "remote1: stopped; 60 frames published" in out
    frames = [m for m in got if m.topic == b"frame.remote1."]
    assert frames, out
    assert frames[-1].header["seq"] == 59
    assert frames[-1].header["encoding"] == "jpeg"
    assert frames[-1].header["shape"] == [48, 64, 3]
    assert [m.header["state"] for m in got if m.topic == b"status.grabber.remote1."][-1] == "stopped"


def test_grab_rejects_bad_options() -> None:
    runner = CliRunner(env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
    res = runner.invoke(app, ["grab", "--camera", "cam 1", "--source", "0", "--connect", "tcp://h:1"])
    assert res.exit_code == 2
    assert "may only use letters" in res.output
    res = runner.invoke(app, ["grab", "--camera", "c", "--source", "0", "--connect", "h:1"])
    assert res.exit_code == 2
    assert "must start with tcp://" in res.output
    res = runner.invoke(
        app, ["grab", "--camera", "c", "--source", "0", "--connect", "tcp://h:1", "--curve-server-key", "k"]
    )
    assert res.exit_code == 2
    assert "give both" in res.output
