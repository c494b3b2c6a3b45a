"""Regenerate the example rigs in this folder: ``python calibration/make_examples.py``.

pose2sim_demo.*: the real Qualisys calibration of the Pose2Sim demo (pose2sim 0.10.49 on PyPI, BSD-3),
converted by crosspose. synthetic_studio_4cam.*: a made-up 4-camera studio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosspose import assets
from crosspose.calibration import load_rig, save_rig
from crosspose.geometry import Camera, CameraRig

HERE = Path(__file__).parent


def _look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ centre


def synthetic_studio() -> CameraRig:
    K = np.array([[1150.0, 0.0, 959.5], [0.0, 1150.0, 539.5], [0.0, 0.0, 1.0]])
    cams = []
    for i, (x, y) in enumerate([(3.5, 3.5), (-3.5, 3.5), (-3.5, -3.5), (3.5, -3.5)]):
        R, t = _look_at(np.array([x, y, 2.5]), np.array([0.0, 0.0, 1.0]))
        cams.append(Camera(f"studio{i + 1}", K, [-0.08, 0.05, 0.0, 0.0, 0.0], R, t, (1920, 1080)))
    meta = {
        "created": "2025-01-01T00:00:00+00:00",
        "source": "synthetic",
        "notes": "4 cameras at the corners of a 7 x 7 m room, 2.5 m high, aimed at (0, 0, 1 m); "
        "1920x1080, f=1150 px",
    }
    return CameraRig(cams, meta)


def pose2sim_demo() -> CameraRig:
    qca = assets.extract("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
    rig = load_rig(qca)
    meta = {
        "created": "2025-01-01T00:00:00+00:00",
        "source": "pose2sim 0.10.49 (PyPI, BSD-3-Clause): "
        "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt",
        "notes": "Qualisys calibration of the Pose2Sim demo's 4 portrait cameras, converted by crosspose "
        "(distortion coefficients unscaled; see crosspose.calibration.formats.qualisys)",
    }
    return CameraRig(list(rig), meta)


if __name__ == "__main__":
    for name, rig in (("pose2sim_demo", pose2sim_demo()), ("synthetic_studio_4cam", synthetic_studio())):
        for suffix in (".json", ".toml"):
            save_rig(rig, HERE / f"{name}{suffix}", format=None)
            print(HERE / f"{name}{suffix}")
