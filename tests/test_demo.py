"""The offline synthetic take (``crosspose bench synthetic``): videos, skeleton stream, accuracy; and
the demo command's argument checks (the live demo itself is tested in tests/runtime)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.demo import run_synthetic


def test_synthetic_take_is_solved_and_written(tmp_path: Path) -> None:
    result = run_synthetic(
        tmp_path, seed=3, num_frames=6, num_cameras=4, realistic_errors=False, progress=False
    )
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.stem for v in videos] == ["cam1", "cam2", "cam3", "cam4"]
    cap = cv2.VideoCapture(str(videos[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, frame = cap.read()
    assert ok
    assert frame.ndim == 3
    lines = (tmp_path / "skeletons.jsonl").read_text().splitlines()
    assert len(lines) == 6
    message = json.loads(lines[0])
    assert message["skeleton"] == "h36m17"
    assert message["units"] == "m"
    assert np.asarray(message["joints"]).shape == (17, 4)
    # Clean heatmaps: the solver's answer is within a centimetre or so of ground truth.
    assert result.mpjpe_mm() < 15.0
    assert np.isfinite(result.joints).all()


def test_demo_command_rejects_an_unknown_studio(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    out = CliRunner().invoke(app, ["demo", "--studio", "mars", "--workdir", str(workdir)])
    assert out.exit_code != 0
    assert "unknown studio 'mars'" in out.output
    assert not workdir.exists()


def test_bench_synthetic_command_reports_the_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["bench", "synthetic", "--frames", "3", "--no-video", "--clean",
                                   "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "MPJPE" in out.output
    assert (tmp_path / "skeletons.jsonl").is_file()


def _listening() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_demo_on_a_taken_port_says_so_and_starts_nothing(tmp_path: Path) -> None:
    """A taken API port was a stage restarted with backoff for ever; now one message, exit code 1."""
    sock, port = _listening()
    with sock:
        out = CliRunner().invoke(app, ["demo", "--studio", "synthetic", "--port", str(port),
                                       "--workdir", str(tmp_path / "demo"), "--duration", "1"])
    assert out.exit_code == 1
    assert f"127.0.0.1:{port} already in use" in out.output
    assert "--port" in out.output
    assert not (tmp_path / "demo" / "api.port").exists()  # no stage was started


def test_busy_ports_names_the_api_and_tcp_bus_endpoints_taken(tmp_path: Path) -> None:
    from crosspose.config import Config
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.service import busy_ports

    api_sock, api_port = _listening()
    bus_sock, bus_port = _listening()
    with api_sock, bus_sock:
        data = synthetic_config(tmp_path, "127.0.0.1", api_port).model_dump(mode="json", by_alias=True)
        data["bus"]["frames_endpoint"] = f"tcp://127.0.0.1:{bus_port}"
        busy = busy_ports(Config.model_validate(data))
        assert busy == [f"the API (api.port): 127.0.0.1:{api_port} already in use",
                        f"bus.frames_endpoint: 127.0.0.1:{bus_port} already in use"]
    assert busy_ports(Config.model_validate(data)) == []  # free again once closed


def test_demo_config_takes_the_environment_overrides_as_serve_does(tmp_path: Path) -> None:
    from crosspose.config import ConfigError
    from crosspose.runtime.demo import synthetic_config

    environ = {"CROSSPOSE_API_TOKEN": "t0k", "CROSSPOSE__API__WS_QUEUE": "7"}
    config = synthetic_config(tmp_path, "127.0.0.1", 0, environ=environ)
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "t0k"
    assert config.api.ws_queue == 7
    with pytest.raises(ConfigError, match="no_such_section"):
        synthetic_config(tmp_path, "127.0.0.1", 0, environ={"CROSSPOSE__NO_SUCH_SECTION__X": "1"})


def test_demo_with_a_bad_override_names_it_and_starts_nothing(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app, ["demo", "--studio", "synthetic", "--workdir", str(tmp_path), "--duration", "1"],
        env={"CROSSPOSE__API__WS_QUEUE": "-3"},
    )
    assert out.exit_code == 1
    assert "api.ws_queue" in out.output
    assert not (tmp_path / "api.port").exists()


@pytest.mark.timeout(180)
def test_demo_with_an_api_token_accepts_writes_and_says_so(tmp_path: Path) -> None:
    """``CROSSPOSE_API_TOKEN=t crosspose demo`` then an upload with ``Bearer t``: was 403 "no API token"."""
    workdir = tmp_path / "demo"
    env = {**os.environ, "CROSSPOSE_API_TOKEN": "demo-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosspose", "demo", "--studio", "synthetic", "--cameras", "2", "--port", "0",
         "--duration", "120", "--workdir", str(workdir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        port_file = workdir / "api.port"
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the demo's API never reported its port"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        writes = httpx.get(f"{base}/api/v1/health", timeout=10).json()["writes"]
        rig = (workdir / "synthetic_rig.json").read_bytes()
        accepted = httpx.put(f"{base}/api/v1/calibration", content=rig,
                             headers={"Authorization": "Bearer demo-secret"}, timeout=30)
        wrong = httpx.put(f"{base}/api/v1/calibration", content=rig,
                          headers={"Authorization": "Bearer nope"}, timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    assert writes == {"enabled": True, "reason": None}
    assert accepted.status_code == 200, accepted.text
    assert wrong.status_code == 401
    assert "Writes enabled" in output, output
    assert proc.returncode == 0, output


@pytest.mark.network
def test_the_multi_person_demo_replays_the_two_performer_clip_with_two_persons(tmp_path: Path) -> None:
    from crosspose.runtime.demo import pose2sim_config
    from crosspose.runtime.workers import worker_count

    config = pose2sim_config(tmp_path, "127.0.0.1", 0, multi=True)
    assert config.capture.max_persons == 2
    assert worker_count(config) == 1  # both performers' ids live in one inference worker
    sources = [Path(c.source) for c in config.cameras]
    assert [p.name for p in sources] == [f"cam{i:02d}.mp4" for i in range(1, 5)]
    assert all(p.is_file() and "Demo_MultiPerson" in str(p) for p in sources)
    assert "Demo_MultiPerson" in str(config.calibration.file)
    single = pose2sim_config(tmp_path, "127.0.0.1", 0)
    assert single.capture.max_persons == 1
    assert all("Demo_SinglePerson" in c.source for c in single.cameras)
