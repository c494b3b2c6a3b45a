"""The bus is closed beyond the host by default: the service refuses to start with a TCP endpoint that
other hosts can reach and nothing authenticates (unless ``bus.allow_insecure_tcp``), and keeps its ipc
sockets in folders only its user can open."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from crosspose.bus import Subscriber, generate_keypair
from crosspose.cli import app
from crosspose.config import config_from_dict
from crosspose.runtime.demo import synthetic_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp_path: Path, **bus: Any) -> dict[str, Any]:
    sock = tmp_path / "sock"
    names = ("frames", "framesets", "heatmaps", "skeletons", "control", "status", "local_frames")
    endpoints = {f"{n}_endpoint": f"ipc://{sock}/{n}" for n in names}
    return {"cameras": [{"name": "cam1", "source": "synthetic"}, {"name": "cam2", "source": "synthetic"}],
            "bus": {**endpoints, **bus}, "api": {"port": 0},
            "calibration": {"store": str(tmp_path / "store")}, "recording": {"enabled": False}}  # fmt: skip


def _serve(
    tmp_path: Path, data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, list[Any]]:
    """``crosspose serve --config`` on ``data``; the service itself is replaced by a recorder."""
    from crosspose.runtime import service

    started: list[Any] = []
    monkeypatch.setattr(service, "serve", started.append)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["serve", "--config", str(path)])
    return result.exit_code, result.output, started


def test_serve_refuses_a_tcp_frames_endpoint_open_to_other_hosts_without_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    code, output, started = _serve(tmp_path, _config(tmp_path, frames_endpoint=f"tcp://0.0.0.0:{port}"),
                                   monkeypatch)  # fmt: skip
    assert (code, started) == (1, [])
    assert "crosspose cannot start: the bus would be open to others:" in output
    assert f"bus.frames_endpoint tcp://0.0.0.0:{port} is reachable from other hosts without CURVE" in output
    assert "crosspose keys generate" in output
    assert "bus.allow_insecure_tcp: true" in output
    # the same words from `config validate`, and from the Python entry point
    path = tmp_path / "config.yaml"
    checked = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert checked.exit_code == 1
    assert "bus.allow_insecure_tcp" in checked.output
    from crosspose.runtime.service import BusNotClosedError, make_supervisor

    with pytest.raises(BusNotClosedError, match=r"bus\.frames_endpoint"):
        make_supervisor(config_from_dict(yaml.safe_load(path.read_text())))


def test_the_allow_flag_lets_an_open_endpoint_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _config(tmp_path, frames_endpoint=f"tcp://0.0.0.0:{_free_port()}", allow_insecure_tcp=True)
    code, output, started = _serve(tmp_path, data, monkeypatch)
    assert code == 0, output
    assert len(started) == 1
    assert started[0].bus.allow_insecure_tcp is True


def test_curve_closes_the_frames_endpoint_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, secret = generate_keypair(tmp_path / "keys", "server")
    (tmp_path / "clients").mkdir()
    curve = {"server_secret_key": str(secret), "client_public_keys": str(tmp_path / "clients")}
    closed = _config(tmp_path, frames_endpoint=f"tcp://0.0.0.0:{_free_port()}", curve=curve)
    code, output, started = _serve(tmp_path, closed, monkeypatch)
    assert (code, len(started)) == (0, 1), output
    # CURVE covers the frames link only: any other endpoint open to other hosts is refused all the same
    status = f"tcp://0.0.0.0:{_free_port()}"
    code, output, _ = _serve(tmp_path, {**closed, "bus": {**closed["bus"], "status_endpoint": status}},
                             monkeypatch)  # fmt: skip
    assert code == 1
    assert f"bus.status_endpoint {status} is reachable from other hosts, and CURVE covers only" in output
    # keys that cannot be used are said at start, not by a sync stage crash-looping
    missing = {**curve, "server_secret_key": str(tmp_path / "nowhere.key_secret")}
    code, output, _ = _serve(tmp_path, {**closed, "bus": {**closed["bus"], "curve": missing}}, monkeypatch)
    assert code == 1
    assert "bus.curve: CURVE key file" in output
    assert "does not exist" in output


def test_loopback_tcp_stays_on_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _config(tmp_path, frames_endpoint=f"tcp://127.0.0.1:{_free_port()}")
    code, output, started = _serve(tmp_path, data, monkeypatch)
    assert (code, len(started)) == (0, 1), output


def test_ipc_sockets_are_bound_in_a_folder_only_this_user_can_open(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    with Subscriber(f"ipc://{fresh}/status", bind=True):
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700  # was 0755 (the umask's)
    opened = tmp_path / "opened"
    opened.mkdir(mode=0o777)
    os.chmod(opened, 0o777)
    with Subscriber(f"ipc://{opened}/status", bind=True):
        assert stat.S_IMODE(opened.stat().st_mode) == 0o700


def test_a_socket_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    from crosspose.bus import BusSecurityError, secure_ipc_dir

    theirs = tmp_path / "theirs"
    if os.getuid() == 0:
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")  # root's
    with pytest.raises(BusSecurityError, match=r"belongs to uid \d+, not to this user"):
        secure_ipc_dir(theirs)
    with pytest.raises(BusSecurityError):
        Subscriber(f"ipc://{theirs}/status", bind=True)


def test_the_default_ipc_folder_and_the_demo_sockets_are_made_private_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crosspose.runtime.bus_check import open_bus

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the default folder: <tmp>/crosspose-<uid>
    default = config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}]})
    folder = Path(default.bus.frames_endpoint.removeprefix("ipc://")).parent
    assert folder == tmp_path / f"crosspose-{os.getuid()}"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # as earlier versions left it
    assert open_bus(default) == []
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    demo = synthetic_config(tmp_path / "demo", "127.0.0.1", 0, cameras=2, render=False)
    assert open_bus(demo) == []
    assert stat.S_IMODE((tmp_path / "demo" / "sock").stat().st_mode) == 0o700
