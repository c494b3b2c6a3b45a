"""The humanoid rest pose (T-pose, Y-up) and axes, and the bones' joints in a layout.

Export world: Y up, metres, right-handed; the rest pose faces +Z with the subject's left arm along +X
(glTF's convention). Our solver world is Z up; :func:`zup_to_yup` is the proper rotation that
:mod:`crosspose.io.trc` uses for OpenSim (``X ← y, Y ← z, Z ← x``).

Every bone drives one segment of the layout (its *head* joint → its *tail* joint), so forward kinematics
of the rotations puts every joint a bone reads back where it was, up to the rest pose's bone lengths.
Which joints, by name (:data:`crosspose.motion.recipes.BONE_RECIPES`; Human3.6M-17 shown):

=================  ==============  =================  ==========================================
bone               head joint      tail joint         rotation from
=================  ==============  =================  ==========================================
hips               pelvis          —                  hip line (x) and pelvis→spine (up)
spine              pelvis          spine              segment + mean of hip and shoulder lines
chest              spine           thorax             segment + shoulder line
neck               thorax          neck               segment + shoulder line
head               neck            head (end site)    segment + the ear line (full body); else face
                                                      forward (thorax offset from the nose → eyes
                                                      line), the shoulder line where the head joints
                                                      give no face direction
*_shoulder         thorax          *_shoulder         swing only (clavicle)
*_upper_arm/leg    shoulder/hip    elbow/knee         segment + the limb's bending plane
*_lower_arm/leg    elbow/knee      wrist/ankle        swing only (hinge)
*_foot            ankle           —                  full body: heel → big toe + heel → ankle (roll);
                                                      H36M-17: none (identity)
*_hand            wrist           —                  full body: wrist → index + pinky → index (roll);
                                                      H36M-17: none (identity)
*_toes            big toe         — (end site)       full body only: the identity relative to the
                                                      foot (one toe point: no toe flexion); H36M-17
                                                      does not carry the bone
=================  ==============  =================  ==========================================

The spine bone's head is the pelvis (zero offset from the hips): the segment pelvis→spine needs its
own rotation for the spine joint to be reproduced. Without the full body's extremities, hands and feet
keep the identity local rotation (they follow the forearm / shin). The hands' end sites are nominal in every
layout (no bone points at a hand joint: fingers stay at rest), and so are the feet's (H36M-17, where the
foot is a leaf) and the toes' (nothing beyond the big-toe point). The toes' head is the big-toe point: in
the full body its offset from the ankle in the foot's frame is measured (:func:`estimate_rest_pose`), so
forward kinematics puts the toes joint on the solved toe; the template's is the feet's nominal end site.
The rest pose has the same bones for every layout (its template proportions are Human3.6M's adult
means).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from crosspose.io.trc import ZUP_TO_YUP
from crosspose.motion.humanoid import BONE_PARENTS, BONES, REST_DIRECTIONS, HumanoidMap, humanoid_map
from crosspose.skeleton import H36M17, Skeleton

_H36M = humanoid_map(H36M17)
#: Human3.6M-17's joint at each bone's head (:func:`~crosspose.motion.humanoid.humanoid_map` gives any
#: layout's).
BONE_HEAD_JOINTS: tuple[int, ...] = _H36M.head
#: Human3.6M-17's joint each bone points at (-1: none; the hips' orientation comes from the hip line).
BONE_TAIL_JOINTS: tuple[int, ...] = _H36M.tail

_X, _Y, _Z = np.eye(3)

# The humanoid's template proportions: Human3.6M's mean adult bone lengths, by the tail joint of each bone.
_ANKLE_HEIGHT = 0.08
_TEMPLATE = {H36M17.joints[t]: H36M17.template_lengths[t] for t in _H36M.tail if t >= 0}
_TEMPLATE["hips"] = H36M17.template_lengths[_H36M.l_hip]
# Template stature: ankle height + leg chain + pelvis→head chain (as crosspose.studio).
TEMPLATE_STATURE = _ANKLE_HEIGHT + sum(_TEMPLATE[j] for j in ("r_knee", "r_ankle", "spine", "thorax", "neck",
                                                               "head"))

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
        ends: ``(B, 3)`` end-site offsets of the leaf bones (head: to the H36M head joint; hands, feet
            and toes: nominal, those joints do not exist in H36M-17, and no point lies beyond the big
            toe); zero for the other bones. A foot's end site is only written where the layout carries
            no toes bone (then the foot is a leaf).
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
            out[name] = scale * _TEMPLATE[H36M17.joints[tail]]
    out["hips"] = scale * _TEMPLATE["hips"]
    return out


#: The feet's nominal end site (and the toes' template head): ankle → toes in the foot's rest frame, metres
#: at template scale.
_NOMINAL_TOES = np.array([0.0, -_ANKLE_HEIGHT, 0.14])
#: The toes' nominal end site beyond the big-toe point (no point lies there), metres at template scale.
_TOES_END = 0.02


def _build(lengths: Mapping[str, float], hip_offset: np.ndarray, scale: float,
           toes: np.ndarray | None = None) -> RestPose:
    """A rest pose from segment lengths, the left hip's offset in the hips frame (mirrored: right) and the
    left big toe's offset from the ankle in the foot's rest frame (mirrored: right; None: nominal)."""
    left_toes = _NOMINAL_TOES * scale if toes is None else np.asarray(toes, dtype=np.float64)
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
        elif name in ("left_toes", "right_toes"):
            offsets[b] = left_toes * np.array([1.0 if name == "left_toes" else -1.0, 1.0, 1.0])
            ends[b] = _Z * _TOES_END * scale
        elif BONE_HEAD_JOINTS[b] == BONE_HEAD_JOINTS[p]:
            offsets[b] = 0.0  # the spine starts at the pelvis
        else:
            offsets[b] = REST_DIRECTIONS[p] * lengths[BONES[p]]
    ends[BONES.index("head")] = _Y * lengths["head"]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ends[BONES.index(f"{side}_hand")] = sign * _X * 0.10 * scale
        ends[BONES.index(f"{side}_foot")] = _NOMINAL_TOES * scale
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


def hips_frames(joints_yup: np.ndarray, humanoid: HumanoidMap = _H36M) -> np.ndarray:
    """``(N, J, 3)`` Y-up joints of ``humanoid``'s layout → ``(N, 3, 3)`` hips orientation (columns:
    lateral x, up y, forward z).

    x = right hip → left hip, y = pelvis → spine made orthogonal to x; NaN where undefined.
    """
    m = humanoid
    x = joints_yup[:, m.l_hip] - joints_yup[:, m.r_hip]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    up = joints_yup[:, m.spine] - joints_yup[:, m.pelvis]
    y = up - np.einsum("ni,ni->n", up, x)[:, None] * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], -1)


def estimate_rest_pose(joints: np.ndarray, confidence: np.ndarray | None = None,
                       min_confidence: float = 0.5, skeleton: Skeleton = H36M17) -> RestPose:
    """The performer's rest pose from a take: per-segment medians over confident frames, left/right averaged.

    Args:
        joints: ``(N, J, 3)`` joints of ``skeleton``, metres, our Z-up world (NaN = missing).
        confidence: ``(N, J)``; a segment counts in a frame when both its joints reach ``min_confidence``
            (``None``: every finite joint counts).
        skeleton: the joints' layout (one :func:`~crosspose.motion.humanoid.humanoid_map` accepts).
    Raises:
        ValueError: wrong shapes, a layout without a humanoid mapping, or no frame where any segment is seen.
    """
    joints = np.asarray(joints, dtype=np.float64)
    J = skeleton.num_joints
    if joints.ndim != 3 or joints.shape[1:] != (J, 3):
        raise ValueError(f"joints must have shape (N, {J}, 3) ({skeleton.name}), got {joints.shape}")
    m = humanoid_map(skeleton)
    good = np.isfinite(joints).all(-1)
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != joints.shape[:2]:
            raise ValueError(f"confidence must have shape {joints.shape[:2]}, got {confidence.shape}")
        good &= confidence >= min_confidence
    P = zup_to_yup(joints)
    measured: dict[str, float] = {}
    for b, name in enumerate(BONES):
        h, t = m.head[b], m.tail[b]
        if t < 0:
            continue
        ok = good[:, h] & good[:, t]
        if ok.any():
            measured[name] = float(np.median(np.linalg.norm(P[ok, t] - P[ok, h], axis=-1)))
    hips_ok = good[:, [m.pelvis, m.l_hip, m.r_hip, m.spine]].all(-1)
    hip_offset = None
    if hips_ok.any():
        F = hips_frames(P[hips_ok], m)
        left = np.einsum("nij,ni->nj", F, P[hips_ok, m.l_hip] - P[hips_ok, m.pelvis])
        right = np.einsum("nij,ni->nj", F, P[hips_ok, m.r_hip] - P[hips_ok, m.pelvis])
        left, right = np.median(left, axis=0), np.median(right, axis=0)
        hip_offset = np.array([(left[0] - right[0]) / 2, (left[1] + right[1]) / 2, (left[2] + right[2]) / 2])
        measured["hips"] = float(np.linalg.norm(hip_offset))
    toes = _toes_offset(P, good, m)
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
    return _build(lengths, hip_offset, scale, toes)


def _toes_offset(P: np.ndarray, good: np.ndarray, m: HumanoidMap) -> np.ndarray | None:
    """The left big toe's offset ``(3,)`` from the ankle in the foot's rest frame (Y-up m), the median over
    the frames where a foot's frame and toe are seen, left and right (mirrored) averaged; None where the
    layout carries no toes bone or no frame shows one.

    The foot's frame is its :class:`~crosspose.motion.recipes.Trunk` recipe's (heel → big toe, the ankle
    above it), so the toe lies in its plane: the offset's lateral component is zero up to rounding.
    """
    found = []
    for side, mirror in (("left", 1.0), ("right", -1.0)):
        if f"{side}_toes" not in m.attached:
            continue
        toe, _ = m.attached[f"{side}_toes"]
        (a, c), d, ref, dref = m.trunk[f"{side}_foot"]
        i, j = m.references[ref]
        ankle = m.head[BONES.index(f"{side}_foot")]
        ok = good[:, [a, c, i, j, toe, ankle]].all(-1)
        if not ok.any():
            continue
        e1 = P[ok, c] - P[ok, a]
        n1 = np.linalg.norm(e1, axis=-1)
        e1 = e1 / np.maximum(n1, 1e-12)[:, None]
        r = P[ok, j] - P[ok, i]
        e2 = r - np.einsum("ni,ni->n", r, e1)[:, None] * e1
        n2 = np.linalg.norm(e2, axis=-1)
        keep = (n1 > 1e-6) & (n2 > 1e-6)  # a sole of no length, or the ankle on its line: no frame
        if not keep.any():
            continue
        e2 = e2[keep] / n2[keep, None]
        e1 = e1[keep]
        M = np.stack([e1, e2, np.cross(e1, e2)], -1)  # (n, 3, 3) world ← (along, up, lateral)
        rest = np.stack([d, dref, np.cross(d, dref)], -1)
        local = np.einsum("nji,nj->ni", M, P[ok, toe][keep] - P[ok, ankle][keep]) @ rest.T
        found.append(np.median(local, axis=0) * np.array([mirror, 1.0, 1.0]))
    return np.mean(found, axis=0) if found else None
