"""Rigs for calibration tests: a synthetic studio with awkward names, and a rig factory."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.geometry import Camera, CameraRig


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ centre


def make_rig(names: list[str], seed: int = 0) -> CameraRig:
    """Cameras on a 4 m circle, 2-3 m high, aimed at (0, 0, 1), each with its own intrinsics."""
    rng = np.random.default_rng(seed)
    cams = []
    for i, name in enumerate(names):
        a = 2 * np.pi * i / len(names) + 0.3
        R, t = look_at(np.array([4 * np.cos(a), 4 * np.sin(a), 2 + rng.random()]), np.array([0.0, 0.0, 1.0]))
        w, h = (1920, 1080) if i % 2 == 0 else (1088, 1920)
        f = 1000 + 500 * rng.random()
        K = np.array(
            [[f, 0.0, w / 2 + rng.normal(0, 5)], [0.0, f * 1.001, h / 2 + rng.normal(0, 5)], [0, 0, 1]]
        )
        dist = np.array([-0.1, 0.05, 1e-3, -2e-3, 0.01]) * rng.random()
        cams.append(Camera(name, K, dist, R, t, (w, h), {}))
    return CameraRig(cams, {"source": "test", "notes": "synthetic"})


@pytest.fixture
def rig() -> CameraRig:
    # Order that lexicographic sorting would break: cam_10 before cam_2.
    return make_rig(["cam_2", "cam_10", "cam_1", "left"])
