"""The humanoid bone hierarchy driven from H36M-17 joints, its rest pose (T-pose, Y-up), and axes.

Export world: Y up, metres, right-handed; the rest pose faces +Z with the subject's left arm along +X
(glTF's convention). Our solver world is Z up; :func:`zup_to_yup` is the proper rotation that
:mod:`crosspose.io.trc` uses for OpenSim (``X ← y, Y ← z, Z ← x``).

Every bone drives one segment of H36M-17 (its *head* joint → its *tail* joint), so forward kinematics
of the rotations puts every H36M-17 joint back where it was, up to the rest pose's bone lengths:

=================  ==============  =================  ==========================================
bone               head joint      tail joint         rotation from
=================  ==============  =================  ==========================================
hips               pelvis          —                  hip line (x) and pelvis→spine (up)
spine              pelvis          spine              segment + mean of hip and shoulder lines
chest              spine           thorax             segment + shoulder line
neck               thorax          neck               segment + shoulder line
head               neck            head (end site)    segment + face forward (thorax offset from the
                                                      nose → eyes line), the shoulder line where the
                                                      head joints give no face direction
*_shoulder         thorax          *_shoulder         swing only (clavicle)
*_upper_arm/leg    shoulder/hip    elbow/knee         segment + the limb's bending plane
*_lower_arm/leg    elbow/knee      wrist/ankle        swing only (hinge)
*_hand, *_foot     wrist/ankle     —                  none: H36M-17 has no hand or toe joints
=================  ==============  =================  ==========================================

The spine bone's head is the pelvis (zero offset from the hips): the segment pelvis→spine needs its
own rotation for the spine joint to be reproduced. Hands and feet keep the identity local rotation
(they follow the forearm / shin); their end sites are nominal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from crosspose.io.trc import ZUP_TO_YUP
from crosspose.skeleton import H36M17

# H36M-17 joint indices
PELVIS, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 0, 1, 2, 3, 4, 5, 6
SPINE, THORAX, NECK, HEAD = 7, 8, 9, 10
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 11, 12, 13, 14, 15, 16

BONES: tuple[str, ...] = (
    "hips", "spine", "chest", "neck", "head",
    "right_upper_leg", "right_lower_leg", "right_foot",
    "left_upper_leg", "left_lower_leg", "left_foot",
    "left_shoulder", "left_upper_arm", "left_lower_arm", "left_hand",
    "right_shoulder", "right_upper_arm", "right_lower_arm", "right_hand",
)
BONE_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 0, 8, 9, 2, 11, 12, 13, 2, 15, 16, 17)

#: Our bone → Unity ``HumanBodyBones`` name (what VMC receivers expect).
UNITY_BONES: dict[str, str] = {
    "hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head",
    "right_upper_leg": "RightUpperLeg", "right_lower_leg": "RightLowerLeg", "right_foot": "RightFoot",
    "left_upper_leg": "LeftUpperLeg", "left_lower_leg": "LeftLowerLeg", "left_foot": "LeftFoot",
    "left_shoulder": "LeftShoulder", "left_upper_arm": "LeftUpperArm", "left_lower_arm": "LeftLowerArm",
    "left_hand": "LeftHand",
    "right_shoulder": "RightShoulder", "right_upper_arm": "RightUpperArm",
    "right_lower_arm": "RightLowerArm", "right_hand": "RightHand",
}

#: H36M-17 joint at each bone's head (forward kinematics of the rotations reproduces it).
BONE_HEAD_JOINTS: tuple[int, ...] = (
    PELVIS, PELVIS, SPINE, THORAX, NECK,
    R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE,
    THORAX, L_SHOULDER, L_ELBOW, L_WRIST, THORAX, R_SHOULDER, R_ELBOW, R_WRIST,
)
#: H36M-17 joint each bone points at (-1: none; the hips' orientation comes from the hip line).
BONE_TAIL_JOINTS: tuple[int, ...] = (
    -1, SPINE, THORAX, NECK, HEAD,
    R_KNEE, R_ANKLE, -1, L_KNEE, L_ANKLE, -1,
    L_SHOULDER, L_ELBOW, L_WRIST, -1, R_SHOULDER, R_ELBOW, R_WRIST, -1,
)

_X, _Y, _Z = np.eye(3)
#: Rest-pose direction (unit, Y-up) of each bone's segment (zeros: no segment).
REST_DIRECTIONS = np.array([
    _X * 0, _Y, _Y, _Y, _Y,
    -_Y, -_Y, _X * 0, -_Y, -_Y, _X * 0,
    _X, _X, _X, _X * 0, -_X, -_X, -_X, _X * 0,
])

# Template stature: ankle height + leg chain + pelvis→head chain of H36M-17 (as crosspose.studio).
_ANKLE_HEIGHT = 0.08
_TEMPLATE = H36M17.template_lengths
TEMPLATE_STATURE = _ANKLE_HEIGHT + sum(_TEMPLATE[i] for i in (R_KNEE, R_ANKLE, SPINE, THORAX, NECK, HEAD))

#: Bones whose segment length is a :class:`RestPose` bone length (``hips``: pelvis → each hip joint).
LENGTH_BONES: tuple[str, ...] = (
    *(b for b, t in zip(BONES, BONE_TAIL_JOINTS, strict=True) if t >= 0), "hips")


def zup_to_yup(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` points (or directions) in our Z-up world → the Y-up export world
    (``X ← y, Y ← z, Z ← x``)."""
    return np.asarray(points, dtype=np.float64) @ ZUP_TO_YUP.T


def yup_to_zup(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zup_to_yup`."""
    return np.asarray(points, dtype=np.float64) @ ZUP_TO_YUP


@dataclass(frozen=True, eq=False)
class RestPose:
    """A T-pose of :data:`BONES` (Y up, metres, right-handed, facing +Z, subject's left along +X).

    Attributes:
        offsets: ``(B, 3)`` each bone's head relative to its parent's head, in the rest frame (every
            bone's rest orientation is the identity). The root's entry is zero (its position is
            :attr:`Motion.root`).
        ends: ``(B, 3)`` end-site offsets of the leaf bones (head: to the H36M head joint; hands and
            feet: nominal, those joints do not exist in H36M-17); zero for the other bones.
    """

    offsets: np.ndarray
    ends: np.ndarray

    def __post_init__(self) -> None:
        for name in ("offsets", "ends"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (len(BONES), 3) or not np.isfinite(a).all():
                raise ValueError(f"RestPose.{name} must be a finite ({len(BONES)}, 3) array, got {a.shape}")
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def bone_lengths(self) -> dict[str, float]:
        """Segment length (m) of each bone in :data:`LENGTH_BONES` (``hips``: pelvis → hip joint)."""
        out = {}
        for b, name in enumerate(BONES):
            if BONE_TAIL_JOINTS[b] < 0:
                continue
            child = [c for c, p in enumerate(BONE_PARENTS)
                     if p == b and BONE_HEAD_JOINTS[c] == BONE_TAIL_JOINTS[b]]
            vec = self.offsets[child[0]] if child else self.ends[b]
            out[name] = float(np.linalg.norm(vec))
        out["hips"] = float(np.linalg.norm(self.offsets[BONES.index("left_upper_leg")]))
        return out

    @property
    def height(self) -> float:
        """Stature implied by the rest pose (ankle height + longer leg + pelvis→head chain), metres; the
        ankle height is the feet's nominal end sites' drop."""
        lengths = self.bone_lengths
        leg = max(lengths["left_upper_leg"] + lengths["left_lower_leg"],
                  lengths["right_upper_leg"] + lengths["right_lower_leg"])
        ankle = -float(self.ends[BONES.index("left_foot"), 1])
        return ankle + leg + sum(lengths[b] for b in ("spine", "chest", "neck", "head"))


def _template_lengths(scale: float) -> dict[str, float]:
    """Template segment lengths (m) of :data:`LENGTH_BONES` times ``scale``."""
    out = {}
    for b, name in enumerate(BONES):
        tail = BONE_TAIL_JOINTS[b]
        if tail >= 0:
            out[name] = scale * _TEMPLATE[tail]
    out["hips"] = scale * _TEMPLATE[L_HIP]
    return out


def _build(lengths: Mapping[str, float], hip_offset: np.ndarray, scale: float) -> RestPose:
    """A rest pose from segment lengths and the left hip's offset in the hips frame (mirrored: right)."""
    offsets = np.zeros((len(BONES), 3))
    ends = np.zeros((len(BONES), 3))
    left_hip = np.asarray(hip_offset, dtype=np.float64)
    for b, name in enumerate(BONES):
        p = BONE_PARENTS[b]
        if p < 0:
            continue
        if name == "left_upper_leg":
            offsets[b] = left_hip
        elif name == "right_upper_leg":
            offsets[b] = left_hip * np.array([-1.0, 1.0, 1.0])
        elif BONE_HEAD_JOINTS[b] == BONE_HEAD_JOINTS[p]:
            offsets[b] = 0.0  # the spine starts at the pelvis
        else:
            offsets[b] = REST_DIRECTIONS[p] * lengths[BONES[p]]
    ends[BONES.index("head")] = _Y * lengths["head"]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ends[BONES.index(f"{side}_hand")] = sign * _X * 0.10 * scale
        ends[BONES.index(f"{side}_foot")] = np.array([0.0, -_ANKLE_HEIGHT, 0.14]) * scale
    return RestPose(offsets, ends)


def rest_pose(height_m: float = 1.75, bone_lengths: Mapping[str, float] | None = None) -> RestPose:
    """The H36M template T-pose scaled to ``height_m``, with any ``bone_lengths`` (m) overriding it.

    Args:
        height_m: stature (ankle height + leg + pelvis→head chain), metres.
        bone_lengths: segment lengths by bone name (:data:`LENGTH_BONES`; ``hips`` = pelvis → hip joint).
    """
    if not (np.isfinite(height_m) and 0.3 < height_m < 3.0):
        raise ValueError(f"height_m must be a plausible stature in metres, got {height_m}")
    scale = height_m / TEMPLATE_STATURE
    lengths = _template_lengths(scale)
    for name, value in (bone_lengths or {}).items():
        if name not in lengths:
            raise ValueError(f"unknown bone {name!r} in bone_lengths; known: {', '.join(LENGTH_BONES)}")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"bone length of {name} must be positive metres, got {value}")
        lengths[name] = float(value)
    return _build(lengths, _X * lengths["hips"], scale)


def hips_frames(joints_yup: np.ndarray) -> np.ndarray:
    """``(N, 17, 3)`` Y-up joints → ``(N, 3, 3)`` hips orientation (columns: lateral x, up y, forward z).

    x = right hip → left hip, y = pelvis → spine made orthogonal to x; NaN where undefined.
    """
    x = joints_yup[:, L_HIP] - joints_yup[:, R_HIP]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    up = joints_yup[:, SPINE] - joints_yup[:, PELVIS]
    y = up - np.einsum("ni,ni->n", up, x)[:, None] * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], -1)


def estimate_rest_pose(joints: np.ndarray, confidence: np.ndarray | None = None,
                       min_confidence: float = 0.5) -> RestPose:
    """The performer's rest pose from a take: per-segment medians over confident frames, left/right averaged.

    Args:
        joints: ``(N, 17, 3)`` H36M-17 joints, metres, our Z-up world (NaN = missing).
        confidence: ``(N, 17)``; a segment counts in a frame when both its joints reach ``min_confidence``
            (``None``: every finite joint counts).
    Raises:
        ValueError: wrong shapes, or no frame where any segment is seen.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (17, 3):
        raise ValueError(f"joints must have shape (N, 17, 3), got {joints.shape}")
    good = np.isfinite(joints).all(-1)
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != joints.shape[:2]:
            raise ValueError(f"confidence must have shape {joints.shape[:2]}, got {confidence.shape}")
        good &= confidence >= min_confidence
    P = zup_to_yup(joints)
    measured: dict[str, float] = {}
    for b, name in enumerate(BONES):
        h, t = BONE_HEAD_JOINTS[b], BONE_TAIL_JOINTS[b]
        if t < 0:
            continue
        ok = good[:, h] & good[:, t]
        if ok.any():
            measured[name] = float(np.median(np.linalg.norm(P[ok, t] - P[ok, h], axis=-1)))
    hips_ok = good[:, [PELVIS, L_HIP, R_HIP, SPINE]].all(-1)
    hip_offset = None
    if hips_ok.any():
        F = hips_frames(P[hips_ok])
        left = np.einsum("nij,ni->nj", F, P[hips_ok, L_HIP] - P[hips_ok, PELVIS])
        right = np.einsum("nij,ni->nj", F, P[hips_ok, R_HIP] - P[hips_ok, PELVIS])
        left, right = np.median(left, axis=0), np.median(right, axis=0)
        hip_offset = np.array([(left[0] - right[0]) / 2, (left[1] + right[1]) / 2, (left[2] + right[2]) / 2])
        measured["hips"] = float(np.linalg.norm(hip_offset))
    if not measured:
        which = "finite" if confidence is None else f"finite and confidence ≥ {min_confidence:g}"
        raise ValueError(f"cannot estimate a rest pose: no frame has both joints of any segment ({which})")
    # symmetrise: the mean of both sides where both were seen, else the side seen
    for name in list(measured):
        if name.startswith("left_"):
            other = "right_" + name[5:]
            if other in measured:
                measured[name] = measured[other] = (measured[name] + measured[other]) / 2
    for name in list(measured):
        for this, that in (("left_", "right_"), ("right_", "left_")):
            if name.startswith(this) and that + name[len(this):] not in measured:
                measured[that + name[len(this):]] = measured[name]
    template = _template_lengths(1.0)
    scale = float(np.median([measured[k] / template[k] for k in measured]))
    lengths = {k: measured.get(k, scale * template[k]) for k in template}
    if hip_offset is None:
        hip_offset = _X * lengths["hips"]
    return _build(lengths, hip_offset, scale)
