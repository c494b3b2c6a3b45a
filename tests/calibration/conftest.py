"""Calibration test material: a synthetic studio with awkward names and a rig factory, a synthetic performer
(OpenPose BODY_25B joints), and photographs of a printed board."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from board_photos import photograph_board
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


# -- a synthetic performer for the extrinsics (OpenPose BODY_25B joints) --------------------------------

#: BODY_25B joints standing at the origin facing +x (metres, z up), the feet on the floor at their keypoint
#: heights.
BODY = {
    "Nose": (0.10, 0.0, 1.60), "LEye": (0.08, 0.03, 1.63), "REye": (0.08, -0.03, 1.63),
    "LEar": (0.0, 0.07, 1.60), "REar": (0.0, -0.07, 1.60), "LShoulder": (0.0, 0.18, 1.42),
    "RShoulder": (0.0, -0.18, 1.42), "LElbow": (0.0, 0.25, 1.15), "RElbow": (0.0, -0.25, 1.15),
    "LWrist": (0.10, 0.25, 0.90), "RWrist": (0.10, -0.25, 0.90), "LHip": (0.0, 0.10, 0.92),
    "RHip": (0.0, -0.10, 0.92), "LKnee": (0.02, 0.10, 0.50), "RKnee": (0.02, -0.10, 0.50),
    "LAnkle": (0.0, 0.10, 0.08), "RAnkle": (0.0, -0.10, 0.08), "UpperNeck": (0.0, 0.0, 1.50),
    "HeadTop": (0.0, 0.0, 1.72), "LBigToe": (0.18, 0.12, 0.025), "LSmallToe": (0.15, 0.16, 0.025),
    "LHeel": (-0.05, 0.10, 0.04), "RBigToe": (0.18, -0.12, 0.025), "RSmallToe": (0.15, -0.16, 0.025),
    "RHeel": (-0.05, -0.10, 0.04),
}


def synthetic_take(rig: CameraRig, stops: int = 8, hold: int = 5, seed: int = 0, radius: float = 1.0,
                   outliers: float = 0.03) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """A performer walking between ``stops`` places on a circle (``radius`` 0: staying put), holding each
    for ``hold`` frames with the feet still and the arms moving; seen by ``rig`` with 1 px noise and a
    fraction of wild detections.

    Returns ``keypoints (N, C, J, 3)`` (NaN and confidence 0 outside an image), the joint names (BODY_25B
    order) and the ``(N, J, 3)`` world points.
    """
    from crosspose.skeleton import get_layout

    joints = get_layout("openpose-body25b").joints
    template = np.array([BODY[j] for j in joints])
    arms = [joints.index(j) for j in ("LElbow", "RElbow", "LWrist", "RWrist")]
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(stops):
        a = 2 * np.pi * s / stops
        place = radius * np.array([np.cos(a), np.sin(a), 0.0]) if s else np.zeros(3)
        yaw = a + rng.uniform(-1, 1)
        Rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        for _ in range(hold):
            body = template.copy()
            body[arms] += rng.normal(0, 0.12, (len(arms), 3))
            frames.append(body @ Rz.T + place)
    world = np.stack(frames)
    n, j = world.shape[:2]
    pixels = np.asarray(rig.project(world.reshape(-1, 3))).reshape(n, j, len(rig), 2).transpose(0, 2, 1, 3)
    pixels = pixels + rng.normal(0, 1.0, pixels.shape)
    wild = rng.random(pixels.shape[:3]) < outliers
    pixels[wild] += rng.normal(0, 40.0, (int(wild.sum()), 2))
    w, h = rig.image_size[:, 0], rig.image_size[:, 1]
    inside = ((pixels[..., 0] >= 0) & (pixels[..., 0] < w[None, :, None]) & (pixels[..., 1] >= 0)
              & (pixels[..., 1] < h[None, :, None]))
    keypoints = np.concatenate([pixels, np.full((*pixels.shape[:3], 1), 0.9)], -1)
    keypoints[~inside] = np.nan
    keypoints[~inside, 2] = 0.0
    return keypoints, joints, world


@pytest.fixture(scope="session")
def rig_factory() -> Callable[..., CameraRig]:
    """:func:`make_rig` for tests that need their own rig."""
    return make_rig


@pytest.fixture(scope="session")
def take_factory() -> Callable[..., tuple[np.ndarray, tuple[str, ...], np.ndarray]]:
    """:func:`synthetic_take`."""
    return synthetic_take


@pytest.fixture(scope="session")
def body() -> dict[str, tuple[float, float, float]]:
    """:data:`BODY`: BODY_25B joints of a performer standing at the origin."""
    return BODY


@pytest.fixture(scope="session")
def photograph() -> Callable[..., np.ndarray]:
    """:func:`photograph_board`."""
    return photograph_board
