"""Ground truth of a synthetic scene: the rig, 3D joints, their 2D projections and per-view visibility.

Visibility has a reason per view and joint (:class:`Visibility`): behind the camera, out of the
frame, or hidden by the performer's own body. The body is a set of capsules (:class:`Capsule`), one
per bone plus a few that fill the torso; a joint is hidden in a view when the line of sight from
the camera to it passes through a capsule of another body part that does not contain it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from crosspose.geometry import CameraRig
from crosspose.skeleton import H36M17, Skeleton
from crosspose.studio.motion import Motion, generate_motion
from crosspose.studio.rigs import random_rig

# A far-off point is "out of frame" even when strong distortion folds its projection into the image.
_PINHOLE_SLACK = 0.5
# Frames per block in the occlusion test: bounds memory at about N·C·J·K·8 bytes per temporary.
_OCCLUSION_BLOCK = 128


class Visibility(enum.IntEnum):
    """Why a joint is or is not visible in a view (stored as ``uint8``)."""

    VISIBLE = 0
    BEHIND_CAMERA = 1
    OUT_OF_FRAME = 2
    OCCLUDED = 3


@dataclass(frozen=True)
class Capsule:
    """A body part: the segment between joints ``a`` and ``b`` swollen by ``radius`` metres."""

    a: int
    b: int
    radius: float
    part: str


# Radii (m) of the capsule ending at each H36M joint (bone parent→joint); adult, lightly clothed.
_BONE_RADII: dict[str, tuple[float, str]] = {
    "r_hip": (0.09, "torso"),
    "l_hip": (0.09, "torso"),
    "r_knee": (0.075, "right_leg"),
    "l_knee": (0.075, "left_leg"),
    "r_ankle": (0.055, "right_leg"),
    "l_ankle": (0.055, "left_leg"),
    "spine": (0.11, "torso"),
    "thorax": (0.11, "torso"),
    "neck": (0.055, "head"),
    "head": (0.09, "head"),
    "l_shoulder": (0.06, "torso"),
    "r_shoulder": (0.06, "torso"),
    "l_elbow": (0.045, "left_arm"),
    "r_elbow": (0.045, "right_arm"),
    "l_wrist": (0.035, "left_arm"),
    "r_wrist": (0.035, "right_arm"),
}
# Flanks that close the torso between hips and shoulders.
_TORSO_EXTRAS: tuple[tuple[str, str, float], ...] = (
    ("l_hip", "l_shoulder", 0.08),
    ("r_hip", "r_shoulder", 0.08),
)


def body_capsules(skeleton: Skeleton = H36M17, scale: float = 1.0) -> tuple[Capsule, ...]:
    """The capsule body model of ``skeleton`` (H36M-17 only), radii multiplied by ``scale``."""
    if skeleton.name != H36M17.name:
        raise ValueError(f"the studio body model is defined for h36m17, not {skeleton.name}")
    caps = [
        Capsule(p, c, scale * _BONE_RADII[skeleton.joints[c]][0], _BONE_RADII[skeleton.joints[c]][1])
        for p, c in skeleton.bones
    ]
    caps += [Capsule(skeleton.index(a), skeleton.index(b), scale * r, "torso") for a, b, r in _TORSO_EXTRAS]
    return tuple(caps)


def _segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Shortest distance between segments ``p1q1`` and ``p2q2`` (``(..., 3)``, broadcast)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.maximum(np.einsum("...i,...i->...", d2, d2), 1e-12)
    f = np.einsum("...i,...i->...", d2, r)
    c = np.einsum("...i,...i->...", d1, r)
    b = np.einsum("...i,...i->...", d1, d2)
    a_safe = np.maximum(a, 1e-12)
    denom = a * e - b * b
    s = np.where(denom > 1e-12, np.clip((b * f - c * e) / np.maximum(denom, 1e-12), 0.0, 1.0), 0.0)
    t = (b * s + f) / e
    # Clamp t to the second segment and recompute the best s for the clamped t.
    s = np.where(
        t < 0, np.clip(-c / a_safe, 0.0, 1.0), np.where(t > 1, np.clip((b - c) / a_safe, 0.0, 1.0), s)
    )
    t = np.clip(t, 0.0, 1.0)
    gap = (p1 + s[..., None] * d1) - (p2 + t[..., None] * d2)
    return np.linalg.norm(gap, axis=-1)


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(
        np.einsum("...i,...i->...", p - a, ab) / np.maximum(np.einsum("...i,...i->...", ab, ab), 1e-12),
        0.0,
        1.0,
    )
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def self_occlusion(
    rig: CameraRig, joints3d: np.ndarray, capsules: tuple[Capsule, ...] | None = None
) -> np.ndarray:
    """Which joints the performer's own body hides from each camera.

    Args:
        rig: ``C`` cameras.
        joints3d: ``(N, J, 3)`` world joints, metres.
        capsules: body model (default :func:`body_capsules`).
    Returns:
        ``(N, C, J)`` bool, True where the line of sight to the joint passes through a capsule of
        another body part (:attr:`Capsule.part`) than the capsules ending at the joint, and that
        does not contain the joint. The last bit of the line of sight (the joint's own thinnest
        capsule radius) is ignored: that is the joint's own surface.
    """
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.ndim != 3 or joints3d.shape[-1] != 3:
        raise ValueError(f"joints3d must have shape (N, J, 3), got {joints3d.shape}")
    n, num_joints = joints3d.shape[:2]
    caps = capsules if capsules is not None else body_capsules()
    a_idx = np.array([c.a for c in caps])
    b_idx = np.array([c.b for c in caps])
    radius = np.array([c.radius for c in caps])
    own = (a_idx[None, :] == np.arange(num_joints)[:, None]) | (
        b_idx[None, :] == np.arange(num_joints)[:, None]
    )
    own_radius = np.where(own, radius[None, :], np.inf).min(axis=1)  # (J,)
    own_radius = np.where(np.isfinite(own_radius), own_radius, 0.0)
    # A joint inside the torso would be "hidden" by the torso from every side: only other parts occlude.
    parts = np.array([c.part for c in caps])
    same_part = np.array(
        [[parts[k] in set(parts[own[j]]) for k in range(len(caps))] for j in range(num_joints)]
    )
    same_part |= own
    centers = rig.centers  # (C, 3)
    out = np.zeros((n, len(rig), num_joints), dtype=bool)
    for lo in range(0, n, _OCCLUSION_BLOCK):
        X = joints3d[lo : lo + _OCCLUSION_BLOCK]  # (n, J, 3)
        A, B = X[:, a_idx], X[:, b_idx]  # (n, K, 3)
        contains = _point_segment_distance(X[:, :, None], A[:, None], B[:, None]) < radius  # (n, J, K)
        to_joint = X[:, None] - centers[None, :, None]  # (n, C, J, 3)
        length = np.linalg.norm(to_joint, axis=-1, keepdims=True)
        end = X[:, None] - to_joint / np.maximum(length, 1e-9) * own_radius[None, None, :, None]
        start = np.broadcast_to(centers[None, :, None], end.shape)
        dist = _segment_distance(
            start[..., None, :], end[..., None, :], A[:, None, None], B[:, None, None]
        )  # (n, C, J, K)
        hit = (dist < radius) & ~same_part[None, None] & ~contains[:, None]
        out[lo : lo + _OCCLUSION_BLOCK] = hit.any(axis=-1)
    return out


def joint_visibility(
    rig: CameraRig,
    joints3d: np.ndarray,
    joints2d: np.ndarray | None = None,
    capsules: tuple[Capsule, ...] | None = None,
) -> np.ndarray:
    """Visibility reason of every joint in every view.

    Args:
        rig: ``C`` cameras.
        joints3d: ``(N, J, 3)`` world joints, metres.
        joints2d: ``(N, C, J, 2)`` their projections (computed when omitted).
        capsules: body model for self-occlusion; an empty tuple switches occlusion off.
    Returns:
        ``(N, C, J)`` ``uint8`` :class:`Visibility` codes; the first reason that applies wins
        (behind camera, out of frame, occluded).
    """
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.ndim != 3 or joints3d.shape[-1] != 3:
        raise ValueError(f"joints3d must have shape (N, J, 3), got {joints3d.shape}")
    if joints2d is None:
        joints2d = project_joints(rig, joints3d)
    xc = np.einsum("cij,nkj->ncki", rig.R, joints3d) + rig.t[None, :, None]  # (N, C, J, 3)
    depth = xc[..., 2]
    size = rig.image_size.astype(np.float64)[None, :, None]  # (1, C, 1, 2)
    uv = np.nan_to_num(joints2d, nan=-1e9)
    in_image = ((uv >= -0.5) & (uv < size - 0.5)).all(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        focal = np.stack([rig.K[:, 0, 0], rig.K[:, 1, 1]], -1)[None, :, None]
        pin = xc[..., :2] / depth[..., None] * focal + rig.K[None, :, None, :2, 2]
    pin_ok = ((pin >= -_PINHOLE_SLACK * size) & (pin < (1 + _PINHOLE_SLACK) * size)).all(axis=-1)
    reason = np.full(depth.shape, Visibility.VISIBLE, dtype=np.uint8)
    occluded = self_occlusion(rig, joints3d, capsules) if capsules != () else np.zeros(depth.shape, bool)
    reason[occluded] = Visibility.OCCLUDED
    reason[~(in_image & pin_ok)] = Visibility.OUT_OF_FRAME
    reason[~(depth > 0)] = Visibility.BEHIND_CAMERA
    return reason


def project_joints(rig: CameraRig, joints3d: np.ndarray) -> np.ndarray:
    """``(N, J, 3)`` world joints → ``(N, C, J, 2)`` pixels with full distortion (NaN behind a camera)."""
    uv = np.asarray(rig.project(np.asarray(joints3d, dtype=np.float64)))  # (N, J, C, 2)
    return np.ascontiguousarray(np.swapaxes(uv, -3, -2))


@dataclass(frozen=True)
class SceneFrame:
    """One instant of a :class:`Scene` (``C`` cameras, ``J`` joints)."""

    index: int
    time: float
    rig: CameraRig
    joints3d: np.ndarray  # (J, 3) metres
    joints2d: np.ndarray  # (C, J, 2) pixels
    visibility: np.ndarray  # (C, J) bool
    visibility_reason: np.ndarray  # (C, J) uint8 Visibility


@dataclass(frozen=True, eq=False)
class Scene:
    """Ground truth of a synthetic capture: ``N`` frames, ``C`` cameras, ``J`` joints.

    Attributes:
        rig: the cameras.
        joints3d: ``(N, J, 3)`` world joints, metres.
        joints2d: ``(N, C, J, 2)`` pixels, projected with full distortion (NaN behind a camera).
        visibility: ``(N, C, J)`` bool, True where the joint can be seen.
        visibility_reason: ``(N, C, J)`` uint8 :class:`Visibility` codes.
        fps: frames per second.
        skeleton: joint layout (H36M-17).
        seed: seed the scene was made from (None when built from given joints).
        motion: the generator's motion object when there is one (performer, limb lengths …).
    """

    rig: CameraRig
    joints3d: np.ndarray
    joints2d: np.ndarray
    visibility: np.ndarray
    visibility_reason: np.ndarray
    fps: float = 30.0
    skeleton: Skeleton = H36M17
    seed: int | None = None
    motion: Motion | None = None

    @property
    def num_frames(self) -> int:
        return int(self.joints3d.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, index: int) -> SceneFrame:
        """The ground truth of frame ``index``."""
        if not -self.num_frames <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range for a scene of {self.num_frames} frames")
        index %= self.num_frames
        return SceneFrame(
            index=index,
            time=index / self.fps,
            rig=self.rig,
            joints3d=self.joints3d[index],
            joints2d=self.joints2d[index],
            visibility=self.visibility[index],
            visibility_reason=self.visibility_reason[index],
        )

    def __iter__(self) -> Iterator[SceneFrame]:
        return (self.frame(i) for i in range(self.num_frames))


def scene_from_joints(
    rig: CameraRig,
    joints3d: np.ndarray,
    fps: float = 30.0,
    *,
    skeleton: Skeleton = H36M17,
    capsules: tuple[Capsule, ...] | None = None,
    seed: int | None = None,
    motion: Motion | None = None,
) -> Scene:
    """Ground truth for given 3D joints ``(N, J, 3)`` (or one pose ``(J, 3)``) seen by ``rig``."""
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.ndim == 2:
        joints3d = joints3d[None]
    if joints3d.ndim != 3 or joints3d.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"joints3d must have shape (N, {skeleton.num_joints}, 3), got {joints3d.shape}")
    joints2d = project_joints(rig, joints3d)
    reason = joint_visibility(rig, joints3d, joints2d, capsules)
    for a in (joints3d, joints2d, reason):
        a.setflags(write=False)
    visible = reason == Visibility.VISIBLE
    visible.setflags(write=False)
    return Scene(rig, joints3d, joints2d, visible, reason, float(fps), skeleton, seed, motion)


def make_scene(
    seed: int,
    num_frames: int = 60,
    num_cameras: int = 4,
    *,
    fps: float = 30.0,
    volume: tuple[float, float] = (1.5, 1.5),
    rig: CameraRig | None = None,
    capsules: tuple[Capsule, ...] | None = None,
    **motion_options: Any,
) -> Scene:
    """A seeded synthetic scene: :func:`~crosspose.studio.motion.generate_motion` seen by :func:`random_rig`.

    Args:
        seed: one integer decides rig and motion (they get independent streams).
        num_frames: ``N``; num_cameras: ``C`` (2–12, ignored when ``rig`` is given).
        volume: ``(hx, hy)`` half extents (m) of the floor area the performer's whole body stays in
            (each >= 0.9 m); the rig keeps the circle of radius ``hypot(hx, hy)`` in view.
        rig: use these cameras instead of a random rig.
        motion_options: passed on to ``generate_motion`` (``performer``, ``actions`` …).
    """
    rig_seed, motion_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    if rig is None:
        rig = random_rig(rig_seed, num_cameras, volume_radius=float(np.hypot(*volume)))
    motion = generate_motion(motion_seed, num_frames, fps=fps, volume=volume, **motion_options)
    return scene_from_joints(
        rig, motion.joints, motion.fps, skeleton=motion.skeleton, capsules=capsules, seed=seed, motion=motion
    )
