"""Configs of the no-hardware demo: real footage (Pose2Sim) or the synthetic studio, as live cameras.

* ``pose2sim`` — the 4 real cameras of the Pose2Sim demo clip (BSD-3, ``pose2sim==0.10.49`` on PyPI,
  fetched and cached on first use), each replayed as a live camera at 60 fps, looped, all four on the
  service's shared timeline (the same frame of the clip in every view), with the clip's Qualisys
  calibration, through the real network.
* ``pose2sim-multi`` — the same studio's multi-person clip (``Demo_MultiPerson``: two performers on the
  platform, a bystander far behind them in two views), replayed the same way with ``capture.max_persons``
  2: both performers tracked with their own ids, the bystander outside the capture volume never.
* ``synthetic`` — a seeded synthetic studio; the inference stage runs the ``simulated`` backend (the
  network bypassed, named as such), since rendered capsule people are not what the network knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from crosspose.config import Config, config_from_dict

Studio = Literal["pose2sim", "pose2sim-multi", "synthetic"]
POSE2SIM = "pose2sim-0.10.49"
POSE2SIM_VIDEOS = "Pose2Sim/Demo_SinglePerson/videos/"
POSE2SIM_CALIBRATION = "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt"
#: The multi-person clip of the same wheel: same studio and calibration, two performers and a bystander.
POSE2SIM_MULTI_VIDEOS = "Pose2Sim/Demo_MultiPerson/videos/"
POSE2SIM_MULTI_CALIBRATION = "Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt"


def _bus(workdir: Path) -> dict[str, str]:
    # ipc endpoints inside the demo's own folder: two demos on one host do not collide.
    sock = workdir / "sock"
    sock.mkdir(parents=True, exist_ok=True)
    names = ("frames", "framesets", "heatmaps", "skeletons", "control", "status")
    return {f"{n}_endpoint": f"ipc://{sock / n}" for n in names}


def _config(data: dict[str, Any], environ: Mapping[str, str] | None) -> Config:
    """The demo's settings with ``environ``'s overrides applied as ``serve`` applies them
    (``CROSSPOSE__SECTION__FIELD``, ``CROSSPOSE_API_TOKEN``); None: none."""
    return config_from_dict(data, environ=environ, source="(crosspose demo)")


def pose2sim_config(workdir: Path, host: str, port: int, environ: Mapping[str, str] | None = None, *,
                    multi: bool = False) -> Config:
    """The real 4-camera footage replayed live (downloads the wheel from PyPI on first use); ``multi``: the
    multi-person clip with ``capture.max_persons`` 2 (one inference worker follows both)."""
    from crosspose import assets

    folder, calibration_file = ((POSE2SIM_MULTI_VIDEOS, POSE2SIM_MULTI_CALIBRATION) if multi
                                else (POSE2SIM_VIDEOS, POSE2SIM_CALIBRATION))
    # One file at a time: a clip already extracted starts without its wheel (a host with no registry).
    videos = [assets.extract(POSE2SIM, f"{folder}cam{i:02d}.mp4") for i in range(1, 5)]
    calibration = assets.extract(POSE2SIM, calibration_file)
    cameras = [
        {
            "name": f"cam{i:02d}",
            "source": str(videos[i - 1]),
            "fps": 60.0,
            "loop": True,
            "preload": True,  # decoded once: live decoding of 4 HD streams needs more than 2 cores
            "width": 540,  # half size: the network sees 256-pixel crops of a ~1000-pixel person
            "height": 960,
            # JPEG on the bus, each preloaded frame encoded once: 15x fewer bytes for sync, inference
            # and the recorder to move, and takes store the frames as received.
            "jpeg_quality": 90,
        }
        for i in range(1, 5)
    ]
    return _config(
        {
            "cameras": cameras,
            "bus": _bus(workdir),
            "inference": {"backend": "network"},  # the default runtime and device, or CROSSPOSE__INFERENCE__…
            "api": {"host": host, "port": port},
            "calibration": {"file": str(calibration), "store": str(workdir / "calibration")},
            **({"capture": {"max_persons": 2}} if multi else {}),
        },
        environ,
    )


def synthetic_config(
    workdir: Path,
    host: str,
    port: int,
    cameras: int = 4,
    seed: int = 0,
    fps: float = 30.0,
    frames: int = 300,
    render: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """A synthetic studio (rendered cameras, simulated heatmaps) with its rig written to ``workdir``.

    ``render=False``: grabbers send flat placeholder frames (transport/sync/solver measurements).
    ``environ``: overrides as in :func:`pose2sim_config`.
    """
    from crosspose.calibration import save_rig
    from crosspose.studio import make_scene

    scene = make_scene(seed, frames, cameras, fps=fps)
    rig_file = workdir / "synthetic_rig.json"
    workdir.mkdir(parents=True, exist_ok=True)
    save_rig(scene.rig, rig_file)
    cams = [
        {
            "name": name,
            "source": f"synthetic?seed={seed}&index={i}&cameras={cameras}&frames={frames}&live=1"
            f"&render={int(render)}",
            "fps": fps,
        }
        for i, name in enumerate(scene.rig.names)
    ]
    return _config(
        {
            "cameras": cams,
            "bus": _bus(workdir),
            "inference": {"backend": "simulated"},
            "api": {"host": host, "port": port},
            "calibration": {"file": str(rig_file), "store": str(workdir / "calibration")},
        },
        environ,
    )
