"""OpenPose per-frame JSON: one camera's folder → keypoint arrays; camera folders → calibration cameras.

OpenPose (and tools that imitate it, e.g. Pose2Sim, RTMLib) writes one JSON file per frame, with
``people[].pose_keypoints_2d`` a flat ``[x, y, confidence] * J`` list and ``0, 0, 0`` for a keypoint it
did not find. A folder holds one camera; its files are ordered by the frame number in their names
(the last run of digits, compared as a number, so ``cam1_10`` follows ``cam1_9``). Only ``*.json``
files are read (Pose2Sim's demo also ships ``*.json.old`` copies).

Person choice (one person per frame): ``"confidence"`` takes the person with the highest mean
keypoint confidence — right for single-performer takes where extra detections are partial
bystanders or ghosts; ``"nearest"`` takes, after the first frame, the person whose confident
keypoints lie closest (median pixel distance) to the previous frame's choice, falling back to the
most confident one when nothing overlaps — better when a more confident second person walks in.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

PersonChoice = Literal["confidence", "nearest"]
_DIGITS = re.compile(r"\d+")


class KeypointsError(ValueError):
    """Keypoint files or folders that cannot be used (the message says which and why)."""


@dataclass(frozen=True, eq=False)
class KeypointSequence:
    """One camera's detections.

    Attributes:
        frame_numbers: ``(N,)`` frame number of each file, ascending.
        keypoints: ``(N, J, 3)`` ``[x, y, confidence]`` pixels; NaN and confidence 0 where missing.
        people: ``(N,)`` how many people each file held.
    """

    frame_numbers: np.ndarray
    keypoints: np.ndarray
    people: np.ndarray


@dataclass(frozen=True, eq=False)
class MultiViewKeypoints:
    """All cameras' detections aligned by frame number.

    Attributes:
        frame_numbers: ``(N,)`` the union of every camera's frame numbers, ascending.
        keypoints: ``(N, C, J, 3)`` in calibration camera order; NaN / confidence 0 where a camera has
            no file (or no person) for a frame, and for a calibration camera without a folder.
        camera_names: ``C`` calibration camera names.
        folders: ``C`` matched folders (``None`` for a camera without one).
    """

    frame_numbers: np.ndarray
    keypoints: np.ndarray
    camera_names: tuple[str, ...]
    folders: tuple[Path | None, ...]


def frame_number(name: str) -> int:
    """The frame number in a file name: its last run of digits (``cam01.0012.json`` → 12)."""
    runs = _DIGITS.findall(Path(name).name)
    if not runs:
        raise KeypointsError(f"{name}: no frame number in the file name")
    return int(runs[-1])


def _name_number(name: str) -> int | None:
    runs = _DIGITS.findall(name)
    return int(runs[-1]) if runs else None


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p)


def read_people(path: str | Path) -> list[np.ndarray]:
    """The people of one OpenPose JSON file, each ``(J, 3)``; missing keypoints (``0, 0, 0``) → NaN, 0."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        people = data["people"]
        flat = [np.asarray(p["pose_keypoints_2d"], dtype=np.float64) for p in people]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KeypointsError(f"{path}: not an OpenPose keypoint file ({type(e).__name__}: {e})") from None
    out = []
    for k in flat:
        if k.size == 0:
            continue
        if k.size % 3:
            raise KeypointsError(f"{path}: pose_keypoints_2d has {k.size} values, not a multiple of 3")
        kp = k.reshape(-1, 3)
        missing = ~(kp[:, 2] > 0)
        kp[missing, :2] = np.nan
        kp[missing, 2] = 0.0
        out.append(kp)
    return out


def _mean_confidence(kp: np.ndarray) -> float:
    return float(np.mean(kp[:, 2]))


def choose_person(people: Sequence[np.ndarray], previous: np.ndarray | None = None,
                  how: PersonChoice = "confidence") -> np.ndarray | None:
    """Pick one person (see the module docstring); ``None`` when there is nobody."""
    if not people:
        return None
    best = max(people, key=_mean_confidence)
    if how == "confidence" or previous is None:
        return best
    if how != "nearest":
        raise ValueError(f"person choice must be 'confidence' or 'nearest', got {how!r}")
    distances = []
    for kp in people:
        both = (kp[:, 2] > 0) & (previous[:, 2] > 0)
        d = np.linalg.norm(kp[both, :2] - previous[both, :2], axis=-1)
        distances.append(float(np.median(d)) if d.size else np.inf)
    i = int(np.argmin(distances))
    return people[i] if np.isfinite(distances[i]) else best


def read_openpose_folder(folder: str | Path, num_joints: int | None = None,
                         person: PersonChoice = "confidence") -> KeypointSequence:
    """Read one camera's folder of OpenPose JSON files.

    Args:
        folder: holds ``*.json``, one per frame, with the frame number in the name.
        num_joints: expected ``J`` (checked); ``None`` takes it from the first person found.
        person: which person to keep per frame (module docstring).
    Returns:
        the frames sorted by number; a file with no people gives an all-NaN row.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KeypointsError(f"{folder}: not a folder")
    files = [f for f in folder.iterdir() if f.suffix == ".json" and f.is_file()]
    if not files:
        raise KeypointsError(f"{folder}: no OpenPose .json files")
    numbered = sorted((frame_number(f.name), f) for f in files)
    numbers = np.array([n for n, _ in numbered], dtype=np.int64)
    duplicates = numbers[1:][numbers[1:] == numbers[:-1]]
    if duplicates.size:
        clash = [f.name for n, f in numbered if n == duplicates[0]]
        raise KeypointsError(f"{folder}: several files for frame {duplicates[0]}: {', '.join(clash)}")
    chosen: list[np.ndarray | None] = []
    counts = []
    previous: np.ndarray | None = None
    for _, f in numbered:
        people = read_people(f)
        for kp in people:
            if num_joints is None:
                num_joints = kp.shape[0]
            if kp.shape[0] != num_joints:
                raise KeypointsError(f"{f}: a person has {kp.shape[0]} keypoints, expected {num_joints} "
                                     "(does --layout match the detector that wrote these files?)")
        pick = choose_person(people, previous, person)
        if pick is not None:
            previous = pick
        chosen.append(pick)
        counts.append(len(people))
    if num_joints is None:
        raise KeypointsError(f"{folder}: no person in any of its {len(files)} files")
    keypoints = np.full((len(chosen), num_joints, 3), np.nan)
    keypoints[..., 2] = 0.0
    for i, one in enumerate(chosen):
        if one is not None:
            keypoints[i] = one
    return KeypointSequence(numbers, keypoints, np.asarray(counts, dtype=np.int64))


def keypoint_folders(root: str | Path) -> list[Path]:
    """The sub-folders of ``root`` that hold ``*.json`` files, in natural name order."""
    root = Path(root)
    if not root.is_dir():
        raise KeypointsError(f"{root}: not a folder (expected one sub-folder of OpenPose JSON per camera)")
    folders = [d for d in root.iterdir() if d.is_dir() and any(f.suffix == ".json" for f in d.iterdir())]
    if not folders:
        hint = " (it holds JSON files itself: put each camera's files in its own sub-folder)" if any(
            f.suffix == ".json" for f in root.iterdir()) else ""
        raise KeypointsError(f"{root}: no sub-folders with OpenPose .json files{hint}")
    return sorted(folders, key=lambda d: _natural_key(d.name))


def match_cameras(folders: Sequence[str], camera_names: Sequence[str]) -> list[int | None]:
    """For each calibration camera, the index of its keypoint folder (``None``: no folder).

    By the number in the names when every folder and camera has a distinct one: each folder's number
    must be a camera's (``cam1_json`` ↔ ``cam_01`` ↔ ``cam01``; cameras without a folder become missing
    views), or, with as many folders as cameras, the cameras' numbers shifted by one constant
    (``cam0_json`` ↔ ``cam_01``). Names without numbers match by order when the counts are equal.
    Anything else is an error naming both lists (numbers that contradict each other are never
    silently matched by order).
    """
    f_num = [_name_number(f) for f in folders]
    c_num = [_name_number(c) for c in camera_names]
    numbered = (None not in f_num and None not in c_num and len(set(f_num)) == len(f_num)
                and len(set(c_num)) == len(c_num))
    if numbered:
        fn = [int(n) for n in f_num if n is not None]
        cn = [int(n) for n in c_num if n is not None]
        # Zero-based folders for one-based cameras (cam0_json ↔ cam_01) are the same numbering shifted.
        shift = min(cn) - min(fn) if len(fn) == len(cn) else 0
        shifted = [n + shift for n in fn]
        if set(shifted) <= set(cn) and len(folders) >= 2:
            out = [shifted.index(n) if n in shifted else None for n in cn]
            missing = [c for c, i in zip(camera_names, out, strict=True) if i is None]
            if missing:
                log.warning("no keypoint folder for camera(s) %s: missing views", ", ".join(missing))
            return out
    elif len(folders) == len(camera_names):
        return list(range(len(folders)))
    raise KeypointsError(
        f"cannot match keypoint folders to calibration cameras: folders {list(folders)}, cameras "
        f"{list(camera_names)}. Name each folder with its camera's number (cam1_json ↔ cam_01) or "
        "give one folder per camera in calibration order."
    )


def read_multiview(root: str | Path, camera_names: Sequence[str], num_joints: int | None = None,
                   person: PersonChoice = "confidence") -> MultiViewKeypoints:
    """Read ``root``'s per-camera folders, match them to ``camera_names`` and align them by frame number."""
    folders = keypoint_folders(root)
    index = match_cameras([f.name for f in folders], camera_names)
    sequences: list[KeypointSequence | None] = [
        None if i is None else read_openpose_folder(folders[i], num_joints, person) for i in index
    ]
    joints = {s.keypoints.shape[1] for s in sequences if s is not None}
    if len(joints) > 1:
        raise KeypointsError(f"{root}: cameras have different keypoint counts {sorted(joints)}")
    (j,) = joints
    numbers = np.unique(np.concatenate([s.frame_numbers for s in sequences if s is not None]))
    keypoints = np.full((numbers.size, len(camera_names), j, 3), np.nan)
    keypoints[..., 2] = 0.0
    for c, s in enumerate(sequences):
        if s is None:
            continue
        rows = np.searchsorted(numbers, s.frame_numbers)
        keypoints[rows, c] = s.keypoints
        if s.frame_numbers.size < numbers.size:
            log.info("camera %s: %d of %d frames missing (NaN)", camera_names[c],
                     numbers.size - s.frame_numbers.size, numbers.size)
    return MultiViewKeypoints(numbers, keypoints, tuple(camera_names),
                              tuple(None if i is None else folders[i] for i in index))
