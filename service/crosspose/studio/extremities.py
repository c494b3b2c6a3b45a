"""The full body's extremities for synthetic scenes: feet, hands and face placed on a Human3.6M-17 motion
with known orientations, so that tests and benchmarks know the foot pitch and roll, the hand's orientation
and the head's yaw they should recover (``crosspose-body32`` ground truth).

Frames (our Z-up world, metres, right-handed): a foot's axes are forward (heel → toe), left and up; a
hand's are along the forearm (elbow → wrist), across the palm (pinky → index) and the palm normal; the
head's are forward, left and up. Each is a rotation matrix with those axes as columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosspose.skeleton import BODY32, H36M17

#: Points in their segment's frame (m): ``(forward, left, up)`` for feet and face, ``(along, across,
#: normal)`` for hands, from the ankle / wrist / head joint. Adult proportions.
FOOT_POINTS = {"heel": (-0.055, 0.0, -0.045), "big_toe": (0.145, 0.0, -0.06)}
HAND_POINTS = {"index": (0.085, 0.022, 0.0), "pinky": (0.075, -0.028, 0.0), "thumb": (0.035, 0.045, 0.02)}
FACE_POINTS = {"nose": (0.10, 0.0, -0.09), "l_eye": (0.085, 0.032, -0.06), "r_eye": (0.085, -0.032, -0.06),
               "l_ear": (0.0, 0.075, -0.08), "r_ear": (0.0, -0.075, -0.08)}


@dataclass(frozen=True)
class ExtremityPoses:
    """Known orientations of a full-body motion.

    Attributes:
        foot_pitch: ``(N, 2)`` toe-up angle of the left and right foot about its left axis, radians.
        foot_roll: ``(N, 2)`` angle about the foot's forward axis (positive: the foot's left edge up).
        hand_roll: ``(N, 2)`` the left and right palm's angle about the forearm from palm-down.
        head_yaw: ``(N,)`` the head's turn left from the hips' forward direction, radians.
    """

    foot_pitch: np.ndarray
    foot_roll: np.ndarray
    hand_roll: np.ndarray
    head_yaw: np.ndarray


def moving_poses(num_frames: int, fps: float, seed: int = 0) -> ExtremityPoses:
    """Plausible, smoothly moving extremities for a synthetic take: feet pitching ±25° and rolling ±10°,
    palms turning ±50°, the head yawing ±30°, each a slow sine of its own seeded phase and rate."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None] / fps

    def wave(amplitude_deg: float, count: int) -> np.ndarray:
        rate = rng.uniform(0.2, 0.6, count)
        phase = rng.uniform(0.0, 2 * np.pi, count)
        return np.radians(amplitude_deg) * np.sin(2 * np.pi * rate * t + phase)

    return ExtremityPoses(foot_pitch=wave(25.0, 2), foot_roll=wave(10.0, 2), hand_roll=wave(50.0, 2),
                          head_yaw=wave(30.0, 1)[:, 0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations about unit ``axis (N, 3)`` by ``angle (N,)`` (Rodrigues)."""
    k = np.zeros((*axis.shape[:-1], 3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    a = np.asarray(angle)[..., None, None]
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def body_forward(joints: np.ndarray) -> np.ndarray:
    """``(N, 3)`` the hips' horizontal forward direction of ``(N, J, 3)`` joints (Human3.6M-17's first)."""
    left = joints[:, H36M17.index("l_hip")] - joints[:, H36M17.index("r_hip")]
    left[:, 2] = 0.0
    return _unit(np.cross(_unit(left), np.array([0.0, 0.0, 1.0])))


def foot_frames(forward: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` foot frames: heading ``forward (N, 3)`` (horizontal), then ``pitch`` toe-up about the
    foot's left axis, then ``roll`` about its forward axis (radians, ``(N,)``)."""
    up = np.broadcast_to([0.0, 0.0, 1.0], forward.shape)
    heading = np.stack([forward, np.cross(up, forward), up], -1)
    pitched = heading @ _axis_angle(np.broadcast_to([0.0, 1.0, 0.0], forward.shape), -pitch)
    return pitched @ _axis_angle(np.broadcast_to([1.0, 0.0, 0.0], forward.shape), roll)


def hand_frames(elbow: np.ndarray, wrist: np.ndarray, roll: np.ndarray, side: str) -> np.ndarray:
    """``(N, 3, 3)`` hand frames: along the forearm, the palm normal facing down at ``roll = 0`` (as far as
    the forearm allows), turned by ``roll`` (radians) about the forearm; across points pinky → index."""
    along = _unit(wrist - elbow)
    down = np.broadcast_to([0.0, 0.0, -1.0], along.shape)
    normal = _unit(down - (down * along).sum(-1, keepdims=True) * along)
    across = np.cross(normal, along) if side == "l" else np.cross(along, normal)
    rest = np.stack([along, across, normal], -1)
    return _axis_angle(along, roll) @ rest


def head_frames(forward: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` head frames: the hips' ``forward`` turned left by ``yaw`` about the vertical."""
    up = np.broadcast_to([0.0, 0.0, 1.0], forward.shape)
    heading = np.stack([forward, np.cross(up, forward), up], -1)
    return _axis_angle(up.copy(), yaw) @ heading


def full_body(joints: np.ndarray, poses: ExtremityPoses, scale: float = 1.0) -> np.ndarray:
    """``(N, 17, 3)`` Human3.6M-17 joints (metres, Z up) → ``(N, 32, 3)`` ``crosspose-body32`` joints with
    feet, hands and face placed by ``poses`` (:data:`FOOT_POINTS`, :data:`HAND_POINTS`,
    :data:`FACE_POINTS`, times ``scale``: the performer's extremities against the adult proportions)."""

    def _place(origin: np.ndarray, frames: np.ndarray, local: tuple[float, float, float]) -> np.ndarray:
        return origin + frames @ (scale * np.asarray(local))

    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M17.num_joints, 3):
        raise ValueError(f"joints must have shape (N, 17, 3), got {joints.shape}")
    n = joints.shape[0]
    out = np.full((n, BODY32.num_joints, 3), np.nan)
    out[:, :17] = joints
    forward = body_forward(joints)
    for k, side in enumerate("lr"):
        foot = foot_frames(forward, poses.foot_pitch[:, k], poses.foot_roll[:, k])
        ankle = joints[:, H36M17.index(f"{side}_ankle")]
        for name, local in FOOT_POINTS.items():
            out[:, BODY32.index(f"{side}_{name}")] = _place(ankle, foot, local)
        wrist = joints[:, H36M17.index(f"{side}_wrist")]
        hand = hand_frames(joints[:, H36M17.index(f"{side}_elbow")], wrist, poses.hand_roll[:, k], side)
        for name, local in HAND_POINTS.items():
            out[:, BODY32.index(f"{side}_{name}")] = _place(wrist, hand, local)
    head = head_frames(forward, poses.head_yaw)
    for name, local in FACE_POINTS.items():
        out[:, BODY32.index(name)] = _place(joints[:, H36M17.index("head")], head, local)
    return out


def measured_foot_frames(joints: np.ndarray, side: str) -> np.ndarray:
    """``(N, 3, 3)`` a foot's frame from ``(N, 32, 3)`` full-body joints: forward along heel → toe (the
    local offsets' direction), up from the ankle's offset off that line (the inverse of :func:`full_body`
    for its foot points)."""
    heel, toe, ankle = (joints[:, BODY32.index(f"{side}_{j}")] for j in ("heel", "big_toe", "ankle"))
    return _measured(toe - heel, ankle - heel, FOOT_POINTS["big_toe"], FOOT_POINTS["heel"], (0.0, 0.0, 0.0))


def measured_hand_frames(joints: np.ndarray, side: str) -> np.ndarray:
    """``(N, 3, 3)`` a hand's frame from full-body joints: wrist, index and pinky (as :func:`full_body`)."""
    wrist, index, pinky = (joints[:, BODY32.index(f"{side}_{j}")] for j in ("wrist", "index", "pinky"))
    return _measured(index - pinky, wrist - pinky, HAND_POINTS["index"], HAND_POINTS["pinky"],
                     (0.0, 0.0, 0.0))


def _measured(ab: np.ndarray, ac: np.ndarray, a_local: tuple[float, float, float],
              b_local: tuple[float, float, float], c_local: tuple[float, float, float]) -> np.ndarray:
    """The rotation taking the local triangle (b → a, b → c) onto the measured one (``ab``, ``ac``)."""
    la = np.asarray(a_local) - np.asarray(b_local)
    lc = np.asarray(c_local) - np.asarray(b_local)

    def frame(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        e1 = _unit(u)
        e2 = _unit(v - (v * e1).sum(-1, keepdims=True) * e1)
        return np.stack([e1, e2, np.cross(e1, e2)], -1)

    local = frame(np.broadcast_to(la, ab.shape), np.broadcast_to(lc, ab.shape))
    return frame(ab, ac) @ np.swapaxes(local, -1, -2)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` angle (radians) of the rotation between frames ``a`` and ``b`` ``(N, 3, 3)``."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(cos, -1.0, 1.0))
