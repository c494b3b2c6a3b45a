"""BVH motion files: our own reader, forward kinematics, and conversion to an H36M-17 :class:`Motion`.

The reader handles any ``CHANNELS`` list (positions and rotations in any order), End Sites and
``Frame Time``; forward kinematics is vectorised over frames. :func:`load_bvh_motion` maps common
joint names (CMU, mocapbank, Mixamo/freebvh, Poser styles) into H36M-17, detects the file's length
unit from the skeleton's stature, turns its up axis into our +Z and grounds the feet at z = 0.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosspose.skeleton import H36M17, get_skeleton
from crosspose.studio.motion import ANKLE_HEIGHT, Motion, Performer

_POSITION = {"Xposition": 0, "Yposition": 1, "Zposition": 2}
_ROTATION = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}


class BvhError(ValueError):
    """A BVH file that cannot be read or mapped; the message says what and where."""


@dataclass(frozen=True)
class BvhJoint:
    """One ``ROOT``/``JOINT`` of the hierarchy.

    Attributes:
        name: as written in the file (``mixamorig:Hips``, ``LeftUpLeg`` …).
        parent: index of the parent joint (-1 for the root).
        offset: ``(3,)`` translation from the parent in the parent's frame (file units).
        channels: channel names in file order (``Xposition``, ``Zrotation`` …).
        end_site: ``(3,)`` offset of the ``End Site`` child, or None.
    """

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]
    end_site: np.ndarray | None = None


@dataclass(frozen=True)
class BvhClip:
    """A parsed BVH file.

    Attributes:
        joints: the hierarchy in file (depth-first) order: parents precede children.
        frame_time: seconds per frame.
        motion: ``(N, C)`` channel values in file order (degrees, file units).
    """

    joints: tuple[BvhJoint, ...]
    frame_time: float
    motion: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    def channel_slice(self, joint: int) -> slice:
        """Columns of :attr:`motion` that belong to ``joint``."""
        start = sum(len(j.channels) for j in self.joints[:joint])
        return slice(start, start + len(self.joints[joint].channels))

    def local_transforms(self) -> np.ndarray:
        """``(N, J, 4, 4)`` joint-to-parent transforms.

        Rotation channels compose in file order (``Zrotation Xrotation Yrotation`` → Rz·Rx·Ry,
        intrinsic). The translation is the OFFSET, with any axis that has a position channel replaced
        by the channel value (the root's translation; bvhtoolbox and most exporters agree).
        """
        n = self.num_frames
        out = np.tile(np.eye(4), (n, len(self.joints), 1, 1))
        for j, joint in enumerate(self.joints):
            values = self.motion[:, self.channel_slice(j)]
            t = np.tile(joint.offset, (n, 1))
            R = np.tile(np.eye(3), (n, 1, 1))
            for k, ch in enumerate(joint.channels):
                if ch in _POSITION:
                    t[:, _POSITION[ch]] = values[:, k]
                else:
                    R = R @ _axis_rotation(_ROTATION[ch], np.deg2rad(values[:, k]))
            out[:, j, :3, :3] = R
            out[:, j, :3, 3] = t
        return out

    def world_transforms(self) -> np.ndarray:
        """``(N, J, 4, 4)`` joint-to-world transforms (file units and axes)."""
        local = self.local_transforms()
        world = np.empty_like(local)
        for j, joint in enumerate(self.joints):
            world[:, j] = local[:, j] if joint.parent < 0 else world[:, joint.parent] @ local[:, j]
        return world

    def positions(self) -> np.ndarray:
        """``(N, J, 3)`` world positions of every joint (file units and axes)."""
        return self.world_transforms()[..., :3, 3]

    def end_site_positions(self) -> dict[int, np.ndarray]:
        """Joint index → ``(N, 3)`` world position of its End Site (file units and axes)."""
        world = self.world_transforms()
        return {
            j: world[:, j, :3, :3] @ joint.end_site + world[:, j, :3, 3]
            for j, joint in enumerate(self.joints)
            if joint.end_site is not None
        }

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` positions from the OFFSETs alone (the file's rest pose, root at its OFFSET)."""
        pos = np.zeros((len(self.joints), 3))
        for j, joint in enumerate(self.joints):
            pos[j] = joint.offset + (pos[joint.parent] if joint.parent >= 0 else 0.0)
        return pos


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotation by ``angle`` (rad) about the x, y or z axis."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.tile(np.eye(3), (angle.shape[0], 1, 1))
    i, k = [(1, 2), (2, 0), (0, 1)][axis]
    R[:, i, i], R[:, i, k], R[:, k, i], R[:, k, k] = c, -s, s, c
    return R


def read_bvh(source: str | os.PathLike[str]) -> BvhClip:
    """Parse a BVH file (a path, or the file's text when it starts with ``HIERARCHY``)."""
    text = str(source)
    where = "<text>"
    if not text.lstrip().startswith("HIERARCHY"):
        where = str(source)
        text = Path(source).read_text(encoding="utf-8", errors="replace")
    head, sep, body = text.partition("MOTION")
    if not sep:
        raise BvhError(f"{where}: no MOTION section (is this a BVH file?)")
    joints = _parse_hierarchy(head, where)
    m_frames = re.search(r"Frames:\s*(\d+)", body)
    m_time = re.search(r"Frame\s+Time:\s*([-+0-9.eE]+)", body)
    if not m_frames or not m_time:
        raise BvhError(f"{where}: MOTION needs 'Frames: N' and 'Frame Time: T' lines")
    n = int(m_frames.group(1))
    frame_time = float(m_time.group(1))
    if not frame_time > 0:
        raise BvhError(f"{where}: Frame Time must be positive, got {frame_time}")
    data_text = body[m_time.end():]
    values = np.array(data_text.split(), dtype=np.float64) if data_text.strip() else np.zeros(0)
    c = sum(len(j.channels) for j in joints)
    if values.size != n * c:
        raise BvhError(
            f"{where}: expected {n} frames x {c} channels = {n * c} values after 'Frame Time', "
            f"got {values.size}"
        )
    return BvhClip(joints=tuple(joints), frame_time=frame_time, motion=values.reshape(n, c))


def _parse_hierarchy(text: str, where: str) -> list[BvhJoint]:
    lines = [ln.strip() for ln in text.splitlines()]
    joints: list[dict] = []
    stack: list[int] = []  # open joints (-2 marks an End Site block)
    pending: str | None = None
    for lineno, line in enumerate(lines, 1):
        if not line or line == "HIERARCHY":
            continue
        word, *tail = line.split(None, 1)
        rest = tail[0].strip() if tail else ""
        if word in ("ROOT", "JOINT"):
            if word == "ROOT" and (joints or stack):
                raise BvhError(f"{where}:{lineno}: only one ROOT is supported")
            pending = rest or f"joint{len(joints)}"
        elif word == "End":
            pending = "\0end"
        elif word == "{":
            if pending is None:
                raise BvhError(f"{where}:{lineno}: '{{' without a JOINT/End Site before it")
            if pending == "\0end":
                stack.append(-2)
            else:
                parent = next((s for s in reversed(stack) if s >= 0), -1)
                joints.append(
                    {"name": pending, "parent": parent, "offset": None, "channels": (), "end": None}
                )
                stack.append(len(joints) - 1)
            pending = None
        elif word == "}":
            if not stack:
                raise BvhError(f"{where}:{lineno}: unbalanced '}}'")
            stack.pop()
        elif word == "OFFSET":
            try:
                off = np.array(rest.split()[:3], dtype=np.float64)
            except ValueError:
                raise BvhError(f"{where}:{lineno}: OFFSET needs three numbers, got {rest!r}") from None
            if off.shape != (3,) or not stack:
                raise BvhError(f"{where}:{lineno}: OFFSET needs three numbers inside a joint")
            if stack[-1] == -2:
                owner = next((s for s in reversed(stack) if s >= 0), None)
                if owner is not None:
                    joints[owner]["end"] = off
            else:
                joints[stack[-1]]["offset"] = off
        elif word == "CHANNELS":
            parts = rest.split()
            if not parts or not stack or stack[-1] < 0:
                raise BvhError(f"{where}:{lineno}: CHANNELS outside a joint")
            count, names = int(parts[0]), tuple(parts[1:])
            bad = [c for c in names if c not in _POSITION and c not in _ROTATION]
            if count != len(names) or bad:
                raise BvhError(f"{where}:{lineno}: bad CHANNELS line {line!r}")
            joints[stack[-1]]["channels"] = names
        else:
            raise BvhError(f"{where}:{lineno}: unexpected {line!r} in HIERARCHY")
    if stack:
        raise BvhError(f"{where}: HIERARCHY ends with {len(stack)} unclosed '{{'")
    if not joints:
        raise BvhError(f"{where}: HIERARCHY has no joints")
    out = []
    for j in joints:
        if j["offset"] is None:
            raise BvhError(f"{where}: joint {j['name']!r} has no OFFSET")
        out.append(BvhJoint(j["name"], j["parent"], j["offset"], j["channels"], j["end"]))
    return out


# ---------------------------------------------------------------------------------------------------
# H36M-17 from BVH joint names


def normalize_joint_name(name: str) -> str:
    """``mixamorig:LeftUpLeg`` → ``leftupleg``: namespace dropped, lower case, no ``_``/``-``/spaces."""
    return re.sub(r"[\s_\-.]", "", name.rsplit(":", 1)[-1]).lower()


def _sided(parts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    left = tuple(p for part in parts for p in ("left" + part, "l" + part))
    right = tuple(p for part in parts for p in ("right" + part, "r" + part))
    return left, right


# Candidates in priority order (normalised names). The first present wins: e.g. Mixamo/CMU
# "LeftShoulder" is the clavicle while mocapbank's "LeftShoulder" is the shoulder joint, so
# "LeftArm" is tried first. CMU's "LHipJoint" is a pelvis bone that starts at the root, never the hip.
_LIMB_CANDIDATES: dict[str, tuple[str, ...]] = {
    "hip": ("upleg", "thigh", "hip", "femur"),
    "knee": ("leg", "knee", "shin", "lowleg", "calf", "tibia"),
    "ankle": ("foot", "ankle"),
    "shoulder": ("arm", "uparm", "upperarm", "shldr", "humerus", "shoulder"),
    "elbow": ("forearm", "elbow", "lowarm", "lowerarm", "radius"),
    "wrist": ("hand", "wrist"),
}
_THORAX_CANDIDATES = ("neck", "neck1", "lowerneck", "neckbase")
_NECK_CANDIDATES = ("head", "upperneck", "neck2")
_HEAD_TOP_CANDIDATES = ("headtopend", "headtop", "headend", "headsite")


@dataclass(frozen=True)
class BvhMapping:
    """Which BVH joints give each H36M-17 joint (indices into :attr:`BvhClip.joints`).

    Attributes:
        limbs: H36M limb joint name (``l_hip`` …) → BVH joint index.
        thorax: BVH joint at the base of the neck, or None (then mid-shoulders).
        neck: BVH joint at the top of the neck (the head joint), giving H36M's neck.
        head_top: BVH joint or End Site owner for the crown (``(index, is_end_site)``), or None.
        chain: BVH joints from the root to the thorax joint, for the spine.
    """

    limbs: dict[str, int]
    thorax: int | None
    neck: int
    head_top: tuple[int, bool] | None
    chain: tuple[int, ...]


def map_bvh_joints(clip: BvhClip) -> BvhMapping:
    """Find the H36M-17 joints among ``clip``'s joint names; :class:`BvhError` names what is missing."""
    names = [normalize_joint_name(j.name) for j in clip.joints]
    index = {n: i for i, n in reversed(list(enumerate(names)))}

    def find(cands: tuple[str, ...]) -> int | None:
        return next((index[c] for c in cands if c in index), None)

    limbs: dict[str, int] = {}
    missing = []
    for part, cands in _LIMB_CANDIDATES.items():
        left, right = _sided(cands)
        for side, cs in (("l_", left), ("r_", right)):
            found = find(cs)
            if found is None:
                missing.append(side + part)
            else:
                limbs[side + part] = found
    neck = find(_NECK_CANDIDATES)
    if neck is None:
        missing.append("head (BVH Head joint)")
    if missing:
        raise BvhError(
            f"cannot map BVH joints to H36M-17: no joint for {', '.join(missing)} "
            f"(joints in the file: {', '.join(clip.names)})"
        )
    assert neck is not None
    thorax = find(_THORAX_CANDIDATES)
    if thorax == neck:
        thorax = None
    head_joint = find(_HEAD_TOP_CANDIDATES)
    head_top: tuple[int, bool] | None = None
    if head_joint is not None:
        head_top = (head_joint, False)
    elif clip.joints[neck].end_site is not None:
        head_top = (neck, True)
    chain_end = thorax if thorax is not None else clip.joints[neck].parent
    chain = []
    j = chain_end
    while j >= 0:
        chain.append(j)
        j = clip.joints[j].parent
    return BvhMapping(limbs=limbs, thorax=thorax, neck=neck, head_top=head_top, chain=tuple(reversed(chain)))


# ---------------------------------------------------------------------------------------------------
# units and axes

#: Length units a BVH file may use, metres per unit.
UNITS = {"m": 1.0, "inch": 0.0254, "cm": 0.01, "mm": 0.001}


def detect_unit(stature: float) -> str:
    """The unit in which a stature of ``stature`` file units is a plausible adult height.

    Rule: each unit's plausible range is 1.0–2.5 m (``m`` 1–2.5, ``inch`` 39–98, ``cm`` 100–250,
    ``mm`` 1000–2500: they do not overlap); outside them, the unit whose height is nearest 1.7 m
    (in ratio).
    """
    for unit, scale in UNITS.items():
        if 1.0 <= stature * scale <= 2.5:
            return unit
    return min(UNITS, key=lambda u: abs(np.log(max(stature, 1e-9) * UNITS[u] / 1.7)))


def _rest_frame(clip: BvhClip, mapping: BvhMapping) -> np.ndarray:
    """Rotation ``(3, 3)`` from file axes to ours: rest-pose up → +Z, rest-pose facing → +Y."""
    rest = clip.rest_positions()
    hips = 0.5 * (rest[mapping.limbs["l_hip"]] + rest[mapping.limbs["r_hip"]])
    up_vec = rest[mapping.neck] - hips
    axis = int(np.argmax(np.abs(up_vec)))
    up = np.zeros(3)
    up[axis] = np.sign(up_vec[axis])
    left = (rest[mapping.limbs["l_hip"]] - rest[mapping.limbs["r_hip"]]) + (
        rest[mapping.limbs["l_shoulder"]] - rest[mapping.limbs["r_shoulder"]]
    )
    left = left - np.dot(left, up) * up
    if np.linalg.norm(left) < 1e-9:
        raise BvhError("cannot tell left from right in the BVH rest pose (left and right joints coincide)")
    left = left / np.linalg.norm(left)
    forward = np.cross(left, up)
    # rows: where each of our axes comes from (ours: x = right = -left, y = forward, z = up)
    return np.stack([-left, forward, up])


def _arc_point(points: np.ndarray, fraction: float) -> np.ndarray:
    """Point at ``fraction`` of the arc length of the polyline ``(N, K, 3)`` (per frame)."""
    seg = np.linalg.norm(np.diff(points, axis=1), axis=-1)  # (N, K-1)
    cum = np.concatenate([np.zeros((points.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
    target = fraction * cum[:, -1:]
    k = np.clip((cum[:, 1:] < target).sum(axis=1), 0, points.shape[1] - 2)
    rows = np.arange(points.shape[0])
    denom = np.maximum(seg[rows, k], 1e-12)
    s = ((target[:, 0] - cum[rows, k]) / denom)[:, None]
    return points[rows, k] + s * (points[rows, k + 1] - points[rows, k])


#: Where H36M's spine joint sits along the pelvis→thorax chain (template: 0.233 / (0.233 + 0.257)).
_SPINE_LENGTH, _THORAX_LENGTH = (H36M17.template_lengths[H36M17.index(j)] for j in ("spine", "thorax"))
SPINE_FRACTION = _SPINE_LENGTH / (_SPINE_LENGTH + _THORAX_LENGTH)


def bvh_to_h36m(clip: BvhClip, mapping: BvhMapping | None = None) -> np.ndarray:
    """``(N, 17, 3)`` H36M-17 joints in the file's units and axes.

    Choices: pelvis = mid of the hip joints; thorax = the BVH Neck joint (base of the neck), or
    mid-shoulders without one; spine = the point at 47.5 % of the arc length of the BVH chain from the
    root to the thorax; neck (H36M 9, lower-face level) = the BVH Head joint (top of the neck);
    head (near the crown) = HeadTop joint or the Head's End Site, else the Head joint extended by
    0.95 × the neck→head vector (H36M's neck:head ratio).
    """
    m = mapping or map_bvh_joints(clip)
    world = clip.world_transforms()
    pos = world[..., :3, 3]
    n = clip.num_frames
    out = np.empty((n, H36M17.num_joints, 3))
    for name, j in m.limbs.items():
        out[:, H36M17.index(name)] = pos[:, j]
    out[:, H36M17.index("pelvis")] = 0.5 * (pos[:, m.limbs["l_hip"]] + pos[:, m.limbs["r_hip"]])
    if m.thorax is not None:
        thorax = pos[:, m.thorax]
    else:
        thorax = 0.5 * (pos[:, m.limbs["l_shoulder"]] + pos[:, m.limbs["r_shoulder"]])
    out[:, H36M17.index("thorax")] = thorax
    chain = pos[:, list(m.chain)] if m.thorax is not None else np.concatenate(
        [pos[:, list(m.chain)], thorax[:, None]], axis=1
    )
    pelvis = H36M17.index("pelvis")
    chain = np.concatenate([out[:, pelvis:pelvis + 1], chain[:, 1:]], axis=1)  # start at the pelvis point
    out[:, H36M17.index("spine")] = _arc_point(chain, SPINE_FRACTION) if chain.shape[1] > 1 else chain[:, 0]
    neck = pos[:, m.neck]
    out[:, H36M17.index("neck")] = neck
    if m.head_top is None:
        head = neck + 0.95 * (neck - thorax)
    elif m.head_top[1]:
        j = m.head_top[0]
        end = clip.joints[j].end_site
        assert end is not None
        head = world[:, j, :3, :3] @ end + world[:, j, :3, 3]
    else:
        head = pos[:, m.head_top[0]]
    out[:, H36M17.index("head")] = head
    return out


def _foot_points(clip: BvhClip, mapping: BvhMapping) -> tuple[list[int], list[int]]:
    """Joints below each ankle (toes …) and the ankles that own an End Site."""
    ankles = {mapping.limbs["l_ankle"], mapping.limbs["r_ankle"]}
    below = []
    for j, joint in enumerate(clip.joints):
        p = joint.parent
        while p >= 0 and p not in ankles:
            p = clip.joints[p].parent
        if p >= 0:
            below.append(j)
    with_end = [j for j in [*ankles, *below] if clip.joints[j].end_site is not None]
    return below, with_end


def load_bvh_motion(
    path: str | os.PathLike[str],
    skeleton: str = "h36m17",
    unit: str | None = None,
    center: bool = True,
) -> Motion:
    """A BVH clip as an H36M-17 :class:`Motion` in metres, Z up, feet on z = 0.

    Args:
        path: the BVH file.
        skeleton: target layout (only ``h36m17``).
        unit: the file's length unit (``m``, ``cm``, ``mm``, ``inch``); detected from the rest-pose
            stature when None (:func:`detect_unit`).
        center: move the clip so its mean pelvis ground position is the origin.

    Axes: the rest pose's up axis (hips → head) becomes +Z and its facing direction (left × up)
    +Y, a proper rotation. Grounding: one vertical shift for the whole clip, so that the lowest foot
    point (toes, foot End Sites; the ankles minus the ankle height when the file has no foot points)
    over all frames touches z = 0.
    """
    if get_skeleton(skeleton).name != "h36m17":
        raise ValueError(f"only skeleton='h36m17' is supported, got {skeleton!r}")
    clip = read_bvh(path)
    mapping = map_bvh_joints(clip)
    R = _rest_frame(clip, mapping)

    rest = clip.rest_positions() @ R.T
    ends = [rest[j] + R @ e for j, jt in enumerate(clip.joints) if (e := jt.end_site) is not None]
    rest_all = np.concatenate([rest, np.array(ends).reshape(-1, 3)])
    stature_units = float(rest_all[:, 2].max() - rest_all[:, 2].min())
    if unit is None:
        unit = detect_unit(stature_units)
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
    scale = UNITS[unit]

    joints = bvh_to_h36m(clip, mapping) @ R.T * scale
    below, with_end = _foot_points(clip, mapping)
    world = clip.world_transforms()
    feet = [world[:, j, :3, 3] for j in below]
    for j in with_end:
        end = clip.joints[j].end_site
        assert end is not None
        feet.append(world[:, j, :3, :3] @ end + world[:, j, :3, 3])
    if feet:
        floor = float(min((f @ R.T)[:, 2].min() for f in feet)) * scale
    else:
        floor = float(joints[:, [H36M17.index("l_ankle"), H36M17.index("r_ankle")], 2].min()) - ANKLE_HEIGHT
    joints[..., 2] -= floor
    if center:
        joints[..., :2] -= joints[:, H36M17.index("pelvis"), :2].mean(axis=0)

    lengths = np.median(H36M17.bone_lengths(joints), axis=0)  # (B,) in bones order
    per_joint = np.zeros(H36M17.num_joints)
    for (_, c), length in zip(H36M17.bones, lengths, strict=True):
        per_joint[c] = length
    ankle_height = float(np.median(joints[:, [3, 6], 2].min(axis=1)))
    chain = [H36M17.index(n) for n in ("r_knee", "r_ankle", "spine", "thorax", "neck", "head")]
    height = ankle_height + float(per_joint[chain].sum())
    template = np.asarray(H36M17.template_lengths)
    s = height / Performer().height
    factors = np.where(template > 0, per_joint / np.where(template > 0, template * s, 1.0), 1.0)
    performer = Performer(height=height, scale_factors=tuple(float(f) for f in np.maximum(factors, 1e-3)))
    return Motion(
        joints=joints,
        fps=clip.fps,
        performer=performer,
        skeleton=H36M17,
        actions=np.full(clip.num_frames, "bvh", dtype="<U8"),
    )
