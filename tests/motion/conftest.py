"""Shared motion clips: seeded synthetic takes and the real mocap clip bvhtoolbox ships."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.motion import BONES, RestPose
from crosspose.skeleton import H36M17
from crosspose.studio.motion import Motion, generate_motion

Clip = Motion


@pytest.fixture(scope="session")
def take() -> Motion:
    """10 s of walk / reach / crouch / turn at 60 fps (every action appears)."""
    return generate_motion(seed=7, num_frames=600, fps=60.0)


@pytest.fixture(scope="session")
def mocap() -> Motion:
    """The real motion-capture clip (455 frames) in bvhtoolbox's sdist, as H36M-17 joints."""
    from crosspose import assets
    from crosspose.studio.bvh import load_bvh_motion

    return load_bvh_motion(assets.extract("bvhtoolbox-0.1.3", "tests/example_files/test_mocapbank.bvh"))


@pytest.fixture(scope="session")
def pose2sim() -> Clip:
    """Pose2Sim's demo output (a real multi-camera markerless take, 60 fps) mapped to H36M-17 the way our
    BODY_25B mapping does (pelvis = mid-hips, spine = mid-trunk, thorax = mid-shoulders)."""
    from crosspose import assets
    from crosspose.io.trc import read_trc
    from crosspose.studio.motion import Performer

    trc = read_trc(assets.extract("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc"))
    sources = {"pelvis": ("RHip", "LHip"), "spine": ("RHip", "LHip", "RShoulder", "LShoulder"),
               "thorax": ("RShoulder", "LShoulder"), "neck": ("Neck",), "head": ("Head",)}
    joints = []
    for name in H36M17.joints:
        if name not in sources:
            side, part = name.split("_")
            sources[name] = (side.upper() + part.capitalize(),)
        joints.append(np.mean([trc.marker(m) for m in sources[name]], axis=0))
    stacked = np.stack(joints, 1)
    return Clip(stacked, trc.rate, Performer(), H36M17, np.full(len(stacked), "pose2sim"))


def _hip_offsets(joints: np.ndarray) -> np.ndarray:
    """``(N, 2, 3)`` r_hip, l_hip relative to the pelvis in the documented hips frame (x: right → left hip,
    y: pelvis → spine made orthogonal to x, z = x × y), whatever the world's axes."""
    j = {name: joints[:, i] for i, name in enumerate(H36M17.joints)}
    x = j["l_hip"] - j["r_hip"]
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    up = j["spine"] - j["pelvis"]
    y = up - (up * x).sum(-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    frame = np.stack([x, y, np.cross(x, y)], -1)
    return np.stack([np.einsum("nij,ni->nj", frame, j[h] - j["pelvis"]) for h in ("r_hip", "l_hip")], 1)


def length_bound(joints: np.ndarray, rest: RestPose) -> np.ndarray:
    """``(N, 17)`` per-joint bound (m) on how far a rest pose's bone lengths alone can move forward
    kinematics away from ``joints`` (Z up): the sum over the H36M bones from the pelvis to the joint of
    |actual length - rest length|, the hip bones counting the distance between the actual and the rest
    hip offset in the hips frame."""
    rest_lengths = rest.bone_lengths
    hips = _hip_offsets(joints)
    hip_offset_error = np.stack([
        np.linalg.norm(hips[:, 0] - rest.offsets[BONES.index("right_upper_leg")], axis=-1),
        np.linalg.norm(hips[:, 1] - rest.offsets[BONES.index("left_upper_leg")], axis=-1)], 1)
    tail_to_bone = {"spine": "spine", "thorax": "chest", "neck": "neck", "head": "head",
                    "r_knee": "right_upper_leg", "r_ankle": "right_lower_leg", "l_knee": "left_upper_leg",
                    "l_ankle": "left_lower_leg", "l_shoulder": "left_shoulder", "l_elbow": "left_upper_arm",
                    "l_wrist": "left_lower_arm", "r_shoulder": "right_shoulder", "r_elbow": "right_upper_arm",
                    "r_wrist": "right_lower_arm"}
    n = joints.shape[0]
    per_bone = np.zeros((n, 17))
    for c, p in enumerate(H36M17.parents):
        name = H36M17.joints[c]
        if p < 0:
            continue
        if name in ("r_hip", "l_hip"):
            per_bone[:, c] = hip_offset_error[:, 0 if name == "r_hip" else 1]
        else:
            actual = np.linalg.norm(joints[:, c] - joints[:, p], axis=-1)
            per_bone[:, c] = np.abs(actual - rest_lengths[tail_to_bone[name]])
    out = np.zeros((n, 17))
    for c, p in enumerate(H36M17.parents):
        if p >= 0:
            out[:, c] = out[:, p] + per_bone[:, c]
    return out


@pytest.fixture(scope="session")
def bound() -> object:
    """:func:`length_bound`, for the tests."""
    return length_bound
