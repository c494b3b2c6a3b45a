"""Motion files other tools open: BVH (rotations), C3D and TRC (markers), JSON lines (everything).

=======  ======================================  ==========  ===================================
format   content                                 axes        units
=======  ======================================  ==========  ===================================
bvh      rest-pose hierarchy + root position +   Y up        metres (``units="cm"``: centimetres);
         Euler ZXY channels per bone                         angles in degrees
c3d      the layout's joints as points           Z up        millimetres (POINT:UNITS ``mm``)
trc      the layout's joints as OpenSim markers  Y up        metres (as Pose2Sim writes it)
jsonl    header line, then one object per        joints Z    metres; quaternions (w, x, y, z)
         frame: t, joints, confidence, root,     up, root
         local rotations                         and rots Y
=======  ======================================  ==========  ===================================

BVH channels: ``Zrotation Xrotation Yrotation`` means the local rotation ``R = Rz(z) · Rx(x) · Ry(y)``
(column vectors), each joint's position ``parent + R_parent_global · OFFSET``; the angles are
continuous over time (of a rotation's two ZXY decompositions the one nearest the previous frame,
unwrapped). C3D marks missing joints invalid (residual -1). Joints with confidence
below ``min_confidence`` count as missing everywhere except in JSON lines, which keeps every value and
its confidence.

Every writer takes the joints' layout (a :class:`~crosspose.skeleton.Skeleton`, default Human3.6M-17):
C3D labels and TRC markers are its joint names, JSON lines list them; BVH and JSON lines need a layout
the humanoid bones have a mapping for (:func:`crosspose.motion.humanoid.humanoid_map`), any other is
refused with a ``ValueError`` naming the joints it lacks. BVH and JSON lines carry the bones the layout
carries (:attr:`~crosspose.motion.humanoid.HumanoidMap.bones`): the full body's include the toes
(``LeftToeBase`` / ``RightToeBase`` under the feet, at the big-toe points, always at rest relative to the
foot: one toe point gives no toe flexion); Human3.6M-17's have no toes, its files are as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from crosspose.io.trc import Trc, write_trc
from crosspose.motion.bones import RestPose
from crosspose.motion.filter import FilterSettings, filter_joints
from crosspose.motion.humanoid import BONES, UNITY_BONES, humanoid_map
from crosspose.motion.quaternions import continuous_euler_zxy, quat_to_matrix
from crosspose.motion.rotations import Motion, solve_rotations
from crosspose.skeleton import H36M17, Skeleton

MotionFormat = Literal["bvh", "c3d", "trc", "jsonl"]
MOTION_FORMATS: tuple[str, ...] = ("bvh", "c3d", "trc", "jsonl")
JSONL_FORMAT = "crosspose-motion"
#: How C3D descriptions name a layout (its name where it has no title here).
_C3D_TITLES = {H36M17.name: "H36M-17"}

#: Our bone → BVH joint name, in the MotionBuilder / Mixamo style most BVH tools recognise (the
#: head's End Site is the H36M head joint; the toes are Mixamo's ``ToeBase``).
BVH_NAMES: dict[str, str] = {
    "hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head"}
for _side in ("left", "right"):
    _s = _side.capitalize()
    BVH_NAMES.update({
        f"{_side}_upper_leg": f"{_s}UpLeg", f"{_side}_lower_leg": f"{_s}Leg", f"{_side}_foot": f"{_s}Foot",
        f"{_side}_shoulder": f"{_s}Shoulder", f"{_side}_upper_arm": f"{_s}Arm",
        f"{_side}_lower_arm": f"{_s}ForeArm", f"{_side}_hand": f"{_s}Hand", f"{_side}_toes": f"{_s}ToeBase",
    })


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)


def write_bvh(path: str | Path, motion: Motion, units: Literal["m", "cm"] = "m") -> Path:
    """Write ``motion`` as BVH: the bones its layout carries, joints named by :data:`BVH_NAMES`, Y up,
    ``units`` (metres or centimetres), root ``Xposition Yposition Zposition`` then ``Zrotation Xrotation
    Yrotation`` for every joint (degrees)."""
    path = Path(path)
    m = humanoid_map(motion.skeleton)
    parents = [-1 if p < 0 else m.bone_index[p] for p in m.bone_parents]

    def _children(b: int) -> list[int]:
        return [c for c, p in zip(m.bone_index, parents, strict=True) if p == b]

    scale = {"m": 1.0, "cm": 100.0}[units]
    rest = motion.rest
    lines = ["HIERARCHY"]

    def emit(b: int, depth: int) -> None:
        pad = "  " * depth
        name = BVH_NAMES[BONES[b]]
        if parents[m.bone_index.index(b)] < 0:
            lines.append(f"ROOT {name}")
        else:
            lines.append(f"{pad}JOINT {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {_fmt(rest.offsets[b] * scale)}")
        if b == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        kids = _children(b)
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {_fmt(rest.ends[b] * scale)}",
                          pad + "  }"])
        lines.append(pad + "}")

    emit(0, 0)
    n = motion.num_frames
    euler = np.degrees(continuous_euler_zxy(quat_to_matrix(motion.rotations)))  # (N, B, 3)
    # channel order in the file follows the hierarchy's depth-first order
    order: list[int] = []

    def visit(b: int) -> None:
        order.append(b)
        for c in _children(b):
            visit(c)

    visit(0)
    values = np.concatenate([motion.root * scale, euler[:, order].reshape(n, -1)], axis=1)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_c3d(path: str | Path, joints: np.ndarray, fps: float, skeleton: Skeleton = H36M17) -> Path:
    """Write ``(N, J, 3)`` joints of ``skeleton`` (metres, our Z-up world; NaN = missing) as C3D points in
    millimetres, Z up (``POINT:X_SCREEN +X``, ``POINT:Y_SCREEN +Z``), labelled with its joint names."""
    joints = _checked_joints(joints, skeleton)
    title = _C3D_TITLES.get(skeleton.name, skeleton.name)
    return _write_c3d(path, joints, fps, list(skeleton.joints),
                      [f"{title} {name}, mm, Z up" for name in skeleton.joints], title)


def person_label(person: int, joint: str) -> str:
    """A performer's point label in a C3D of several performers: ``p<id>_<joint>`` (``p1_l_heel``)."""
    return f"p{int(person)}_{joint}"


def write_c3d_persons(
    path: str | Path, joints: Mapping[int, np.ndarray], fps: float, skeleton: Skeleton = H36M17
) -> Path:
    """Write several performers in one C3D: ``joints`` by performer id, each ``(N, J, 3)`` of ``skeleton``
    over the same ``N`` frames (metres, Z up; NaN = missing, e.g. where that performer is not tracked);
    points ordered by id, each performer's joints in layout order, labelled :func:`person_label`."""
    if not joints:
        raise ValueError(f"{path}: no performers to write")
    ids = sorted(joints)
    arrays = [_checked_joints(joints[i], skeleton) for i in ids]
    if len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(f"every performer needs the same frame count, got {[a.shape[0] for a in arrays]}")
    title = _C3D_TITLES.get(skeleton.name, skeleton.name)
    labels = [person_label(i, name) for i in ids for name in skeleton.joints]
    descriptions = [f"performer {i} {title} {name}, mm, Z up" for i in ids for name in skeleton.joints]
    return _write_c3d(path, np.concatenate(arrays, axis=1), fps, labels, descriptions, title)


def _write_c3d(path: str | Path, joints: np.ndarray, fps: float, labels: Sequence[str],
               descriptions: Sequence[str], title: str) -> Path:
    """``(N, M, 3)`` points (metres, Z up; NaN = missing) as C3D, with their labels and descriptions."""
    import ezc3d

    path = Path(path)
    n, m = joints.shape[:2]
    c = ezc3d.c3d()
    points = np.ones((4, m, n))
    points[:3] = np.transpose(joints * 1000.0, (2, 1, 0))
    c["parameters"]["POINT"]["RATE"]["value"] = [float(fps)]
    c["parameters"]["POINT"]["LABELS"]["value"] = tuple(labels)
    c["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = tuple(descriptions)
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c["data"]["points"] = points
    c.add_parameter("POINT", "X_SCREEN", "+X")
    c.add_parameter("POINT", "Y_SCREEN", "+Z")
    c.add_parameter("MANUFACTURER", "COMPANY", "crosspose")
    c.add_parameter("MANUFACTURER", "SOFTWARE", f"crosspose markerless motion capture ({title} joints)")
    c.write(str(path))
    return path


def _checked_joints(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"joints must have shape (N, {skeleton.num_joints}, 3) ({skeleton.name}, metres, "
                         f"Z up), got {joints.shape}")
    return joints


def _rows(a: np.ndarray, digits: int) -> list[list[list[float] | None]]:
    """``(N, M, K)`` → nested lists rounded to ``digits``, None for a row with a non-finite value."""
    values = np.round(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), digits).tolist()
    missing = (~np.isfinite(a).all(-1)).tolist()
    return [[None if gone else row for row, gone in zip(frame, lost, strict=True)]
            for frame, lost in zip(values, missing, strict=True)]


def write_jsonl(path: str | Path, joints: np.ndarray, confidence: np.ndarray, times_s: np.ndarray,
                motion: Motion) -> Path:
    """JSON lines: a header object (format, axes, units, names, rest pose), then one object per frame
    ``{"frame", "t", "joints" (Z up m, null = missing), "confidence", "root" (Y up m), "rotations"
    (local wxyz per bone)}``. The joints are those of ``motion.skeleton`` (the header's ``joint_names``), the
    bones those it carries (the header's ``bones``)."""
    path = Path(path)
    joints = _checked_joints(joints, motion.skeleton)
    m = humanoid_map(motion.skeleton)
    index = list(m.bone_index)
    header = {
        "format": JSONL_FORMAT, "v": 1, "fps": motion.fps, "units": "m",
        "joints_axes": "z-up, right-handed (crosspose world)",
        "rotations_axes": "y-up, right-handed; rest pose = T-pose facing +z, subject's left along +x",
        "quaternion": "w, x, y, z; local to the parent, identity = rest pose",
        "joint_names": list(motion.skeleton.joints), "bones": list(m.bones),
        "bone_parents": list(m.bone_parents),
        "unity_bones": [UNITY_BONES[b] for b in m.bones],
        "rest_offsets": [[round(float(v), 6) for v in o] for o in motion.rest.offsets[index]],
    }
    n = joints.shape[0]
    all_joints = _rows(joints, 6)
    all_conf = [[None if c is None else c[0] for c in frame] for frame in _rows(confidence[..., None], 4)]
    roots = np.round(motion.root, 6).tolist()
    rotations = np.round(motion.rotations[:, index], 7).tolist()
    times = np.round(times_s, 6).tolist()
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for i in range(n):
            frame = {"frame": i, "t": times[i], "joints": all_joints[i], "confidence": all_conf[i],
                     "root": roots[i], "rotations": rotations[i]}
            f.write(json.dumps(frame) + "\n")
    return path


def _rate(times_s: np.ndarray) -> float:
    if times_s.shape[0] < 2:
        return 30.0
    dt = float(np.median(np.diff(times_s)))
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError("times_s must increase (got a non-positive median frame interval)")
    return 1.0 / dt


def write_motion(
    path: str | Path,
    joints: np.ndarray,
    confidence: np.ndarray,
    times_s: np.ndarray,
    format: MotionFormat | None = None,
    filter: FilterSettings | None = None,
    rest: RestPose | None = None,
    *,
    fps: float | None = None,
    min_confidence: float = 0.1,
    skeleton: Skeleton = H36M17,
) -> Path:
    """Write a take of ``skeleton``'s joints as BVH, C3D, TRC or JSON lines (see the module docstring).

    Args:
        path: output file; its folder must exist.
        joints: ``(N, J, 3)`` metres, our Z-up world (NaN = missing).
        confidence: ``(N, J)`` in ``[0, 1]``.
        times_s: ``(N,)`` seconds, increasing.
        format: ``bvh``, ``c3d``, ``trc`` or ``jsonl``; None: from the suffix of ``path``.
        filter: One Euro settings applied to the joints first (None: raw joints).
        rest: rest pose for the rotations (None: estimated from the take).
        fps: frame rate written to the file (None: from the median interval of ``times_s``).
        min_confidence: joints below it count as missing.
        skeleton: the joints' layout (TRC markers and C3D labels are its joint names).
    Returns:
        ``path``.
    Raises:
        ValueError: a bad path or format, shapes that do not match ``skeleton``, or (BVH, JSON lines) a
            layout without a humanoid mapping.
    """
    path = Path(path)
    if format is None:
        suffix = path.suffix.lower().lstrip(".")
        if suffix not in MOTION_FORMATS:
            raise ValueError(f"{path}: cannot tell the format from the suffix {path.suffix or '(none)'}; "
                             f"use one of {', '.join('.' + f for f in MOTION_FORMATS)} or pass format=")
        format = suffix  # type: ignore[assignment]
    if format not in MOTION_FORMATS:
        raise ValueError(f"unknown motion format {format!r}; use one of {', '.join(MOTION_FORMATS)}")
    if not path.parent.is_dir():
        raise ValueError(f"{path}: folder {path.parent} does not exist")
    joints = _checked_joints(joints, skeleton)
    confidence = np.asarray(confidence, dtype=np.float64)
    times_s = np.asarray(times_s, dtype=np.float64)
    if confidence.shape != joints.shape[:2] or times_s.shape != joints.shape[:1]:
        raise ValueError(f"confidence must have shape {joints.shape[:2]} and times_s ({joints.shape[0]},); "
                         f"got {confidence.shape} and {times_s.shape}")
    if joints.shape[0] == 0:
        raise ValueError(f"{path}: no frames to write")
    rate = float(fps) if fps is not None else _rate(times_s)
    if filter is not None:
        joints = filter_joints(joints, times_s, filter, skeleton)
    if format == "c3d" or format == "trc":
        markers = np.where((np.nan_to_num(confidence) >= min_confidence)[..., None], joints, np.nan)
        if format == "c3d":
            return write_c3d(path, markers, rate, skeleton)
        return write_trc(Trc(skeleton.joints, markers, rate, "m", times_s - times_s[0]), path)
    motion = solve_rotations(joints, rest, confidence, fps=rate, min_confidence=min_confidence,
                             skeleton=skeleton)
    if format == "bvh":
        return write_bvh(path, motion)
    return write_jsonl(path, joints, confidence, times_s, motion)

