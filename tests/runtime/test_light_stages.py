"""The light stages never load torch, ONNX Runtime or OpenVINO: grabbers, sync, the API and the recorder,
spawned by the real supervisor from the service's own stage list, and the supervisor itself.

A ``spawn`` child imports the module of its target to unpickle it and then whatever its stage imports as
it starts (the API and the recorder open the calibration store and load its rig); one stray import at
either point gave every such process torch (~1.5 s of CPU and ~250 MB each, paid again at every restart).
The stages are checked from outside, in the libraries their processes map (``/proc/<pid>/maps``), once
each has shown it runs: grabbers and sync heartbeat (``/api/v1/ready``), the recorder answers
(``/api/v1/recordings``) and the API serves. The inference and solver stages, which need those libraries,
are not started (the light stages do not wait for them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from crosspose.config import Config
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import build_stages
from crosspose.runtime.supervisor import Supervisor
from polling import wait_until

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps"),
]

TOKEN = "light-stages-token"
HEAVY_STAGES = ("inference", "solver")
#: What each heavy package maps into a process (the name of its shared libraries' files).
HEAVY_LIBRARIES = {"torch": "libtorch", "onnxruntime": "onnxruntime", "openvino": "libopenvino"}


def heavy_libraries(pid: int) -> list[str]:
    """The heavy packages whose shared libraries process ``pid`` has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return [package for package, library in HEAVY_LIBRARIES.items() if library in maps]


def write_video(path: Path, frames: int = 20, size: tuple[int, int] = (64, 48)) -> Path:
    """``frames`` flat grey frames of ``size`` (width, height) pixels, as an MPEG-4 file (OpenCV)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, dtype=np.uint8))
    writer.release()
    return path


def file_camera_config(workdir: Path) -> Config:
    """Two cameras replaying real video files (as the demo's), with a calibration, recording enabled and
    an API token. (The synthetic studio's cameras render with torch's geometry: not a light source.)"""
    config = synthetic_config(workdir, "127.0.0.1", 0, cameras=2, fps=15.0, frames=30, render=False)
    cameras = [cam.model_copy(update={"source": str(write_video(workdir / f"{cam.name}.mp4")), "loop": True})
               for cam in config.cameras]
    return config.model_copy(update={
        "cameras": cameras,
        "api": config.api.model_copy(update={"token": SecretStr(TOKEN)}),
        "recording": config.recording.model_copy(update={"enabled": True}),
    })


def test_the_check_sees_torch_where_it_is_loaded() -> None:
    import torch  # noqa: F401  (what the check must see)

    assert "torch" in heavy_libraries(os.getpid())


def test_grabbers_sync_api_and_recorder_run_without_torch_onnxruntime_or_openvino(tmp_path: Path) -> None:
    config = file_camera_config(tmp_path)
    port_file = tmp_path / "port"
    stages = [s for s in build_stages(config, str(port_file)) if not s.name.startswith(HEAVY_STAGES)]
    names = [s.name for s in stages]
    assert names == ["api", "recorder", "sync", "grabber.cam1", "grabber.cam2"]
    supervisor = Supervisor(stages)
    thread = threading.Thread(target=supervisor.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_until(port_file.exists, 90, "the API to report its port")
        base = f"http://127.0.0.1:{int(port_file.read_text())}"

        def heartbeats() -> dict[str, Any]:
            ages = httpx.get(f"{base}/api/v1/ready", timeout=10).json()["heartbeat_age_s"]
            return {n: ages.get(n) for n in names if n.startswith(("grabber.", "sync"))}

        wait_until(lambda: all(age is not None for age in heartbeats().values()), 90,
                   "a heartbeat from every grabber and from sync")

        def recorder() -> Any:
            answer = httpx.get(f"{base}/api/v1/recordings", headers={"Authorization": f"Bearer {TOKEN}"},
                               timeout=10)
            return answer.status_code == 200 and answer.json()["recorder"]

        wait_until(recorder, 90, "the recorder's status")
        pids = supervisor.pids()
        loaded = {name: heavy_libraries(pid) for name, pid in pids.items() if pid is not None}
        assert set(loaded) == set(names), pids
        assert loaded == {name: [] for name in names}
        assert supervisor.restarts() == {name: 0 for name in names}  # each was checked in its first life
    finally:
        supervisor.request_stop()
        thread.join(60)


def test_the_supervisor_builds_the_service_without_torch_onnxruntime_or_openvino(tmp_path: Path) -> None:
    """What ``crosspose demo`` and ``serve`` do before they supervise (the default inference settings:
    ``workers: auto`` probes for a GPU; the network's cached files are looked up), in a fresh interpreter.
    Where the NVIDIA driver loads, that probe rightly asks ONNX Runtime: the count is given there."""
    from crosspose.inference.runtimes.libraries import NVIDIA_DRIVER, missing_library

    workers = "auto" if missing_library(NVIDIA_DRIVER) is not None else 1
    config = file_camera_config(tmp_path)
    config = config.model_copy(update={"inference": config.inference.model_copy(update={
        "backend": "network", "workers": workers})})
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json(by_alias=True))
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from crosspose.config import Config
        from crosspose.nets.files import default_onnx_path, detector_onnx_path, is_current_export
        from crosspose.runtime.service import make_supervisor

        config = Config.model_validate_json(Path({str(config_file)!r}).read_text())
        missing = Path({str(tmp_path / "none.onnx")!r})
        assert not is_current_export(missing)
        assert detector_onnx_path(missing).name == "crosspose_detector.onnx"
        default_onnx_path(config.solver.skeleton)
        make_supervisor(config)
        print(sorted(m for m in {tuple(HEAVY_LIBRARIES)!r} if m in sys.modules))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
