"""Shared studio fixtures: a standing H36M-17 pose built from template bone lengths."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from crosspose.skeleton import H36M17

# Unit direction from parent to each joint for a person facing +Y (their right is +X), arms relaxed.
_DIRECTIONS = {
    "r_hip": (1, 0, 0),
    "r_knee": (0, 0, -1),
    "r_ankle": (0, 0, -1),
    "l_hip": (-1, 0, 0),
    "l_knee": (0, 0, -1),
    "l_ankle": (0, 0, -1),
    "spine": (0, 0, 1),
    "thorax": (0, 0, 1),
    "neck": (0, 0, 1),
    "head": (0, 0.3, 1),
    "l_shoulder": (-1, 0, 0),
    "l_elbow": (-0.35, 0, -1),
    "l_wrist": (-0.2, 0.3, -1),
    "r_shoulder": (1, 0, 0),
    "r_elbow": (0.35, 0, -1),
    "r_wrist": (0.2, 0.3, -1),
}


def standing_pose(root: tuple[float, float, float] = (0.0, 0.0, 0.95)) -> np.ndarray:
    """``(17, 3)`` metres: an adult standing on the floor at the origin, facing +Y."""
    joints = np.zeros((H36M17.num_joints, 3))
    joints[0] = root
    for j in range(1, H36M17.num_joints):
        d = np.array(_DIRECTIONS[H36M17.joints[j]], dtype=np.float64)
        joints[j] = joints[H36M17.parents[j]] + H36M17.template_lengths[j] * d / np.linalg.norm(d)
    return joints


@pytest.fixture
def make_pose() -> Callable[..., np.ndarray]:
    """:func:`standing_pose` (a fresh array per call)."""
    return standing_pose


@pytest.fixture
def walk() -> np.ndarray:
    """``(20, 17, 3)``: the standing pose sliding along X with swinging arms (no motion module needed)."""
    base = standing_pose()
    frames = []
    for i in range(20):
        p = base.copy()
        p[:, 0] += -0.5 + i * 0.05
        swing = 0.15 * np.sin(i / 3)
        for wrist in ("l_wrist", "r_wrist"):
            p[H36M17.index(wrist), 1] += swing
            swing = -swing
        frames.append(p)
    return np.stack(frames)
