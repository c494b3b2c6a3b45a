"""Files other tools open, from a take's solved stream: JSON lines, TRC, BVH, C3D, or the whole take as zip.

BVH and C3D come from :func:`crosspose.motion.write_motion` (joint rotations from the 3D joints);
TRC from :mod:`crosspose.io.trc` (OpenSim markers, Y-up); JSON lines are the recorded websocket
messages themselves. Markers, labels and rotations follow the take's joint layout. ``zip`` packs the
take folder (frames, timestamps, calibration, config, stream).

Several performers (a take whose messages' ``persons`` hold two or more ids): BVH and TRC are one file
per performer (:func:`export_files`: ``<name>_p<id>.<fmt>``, or one performer with ``person=``), each
covering that performer's frames from their first to their last (TRC times from the take's start, so the
files line up); C3D is one file of every performer's joints labelled ``p<id>_<joint>``
(:func:`crosspose.motion.person_label`), missing where that performer is not tracked; JSON lines keep
the messages whole. A take of one performer (or recorded before ``persons``) exports as before.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from crosspose.recording.take import SkeletonStream, Take, TakeError
from crosspose.skeleton import Skeleton, get_skeleton

ExportFormat = Literal["jsonl", "trc", "bvh", "c3d", "zip"]
FORMATS: tuple[str, ...] = ("jsonl", "trc", "bvh", "c3d", "zip")
PER_PERSON: tuple[str, ...] = ("trc", "bvh")
"""Formats written one file per performer."""
MIN_CONFIDENCE = 0.1
"""Joints below this confidence are missing in C3D (as :func:`crosspose.motion.write_motion` does)."""
MEDIA_TYPES = {
    "jsonl": "application/jsonl",
    "trc": "text/plain",
    "bvh": "text/plain",
    "c3d": "application/octet-stream",
    "zip": "application/zip",
}


def frame_rate(times_s: np.ndarray) -> float:
    """Frames per second of a stream from its ``(N,)`` times (median step; 30 when unknown)."""
    if times_s.size < 2:
        return 30.0
    dt = float(np.median(np.diff(times_s)))
    return 1.0 / dt if dt > 0 else 30.0


def person_path(out: str | Path, person: int) -> Path:
    """Where performer ``person``'s file of a per-performer export goes: ``<out stem>_p<id><suffix>``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_p{int(person)}{out.suffix}")


def export_files(take: Take, fmt: str, out: str | Path) -> list[Path]:
    """Write ``take`` as ``fmt``: for BVH and TRC of a take of several performers one file per performer
    (:func:`person_path`), otherwise the one file ``out`` (:func:`export_take`). Returns the paths written.

    Raises:
        TakeError, ImportError: as :func:`export_take`.
    """
    persons = take.persons()
    if fmt in PER_PERSON and len(persons) > 1:
        return [export_take(take, fmt, person_path(out, p), person=p) for p in persons]
    return [export_take(take, fmt, out)]


def export_take(take: Take, fmt: str, out: str | Path, person: int | None = None) -> Path:
    """Write ``take`` as ``fmt`` (one of :data:`FORMATS`) to ``out``; returns the path.

    ``person``: performer ``person``'s BVH or TRC (their frames, first to last). Without it, a BVH or TRC
    of a take of several performers is refused (:func:`export_files` writes them all); C3D holds every
    performer (labels ``p<id>_<joint>``) when the take has several.

    Raises:
        TakeError: an unknown format, a take without solved frames for a motion format, (bvh, c3d) a take
            whose layout the motion writer refuses, a ``person`` the take does not hold or given for a format
            that is not per performer, a BVH/TRC of several performers without ``person``.
        ImportError: bvh/c3d while :mod:`crosspose.motion` has no ``write_motion``.
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise TakeError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if person is not None and fmt not in PER_PERSON:
        raise TakeError(f"{fmt} is not written per performer (only {', '.join(PER_PERSON)}); leave person "
                        "out")
    if fmt == "zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
            for p in sorted(take.folder.rglob("*")):
                if p.is_file() and not p.name.endswith(".tmp"):
                    z.write(p, f"{take.id}/{p.relative_to(take.folder)}")
        return out
    messages = take.skeleton_messages()
    if fmt == "jsonl":
        with open(out, "w", encoding="utf-8") as f:
            for m in messages:
                f.write(json.dumps(m, separators=(",", ":")) + "\n")
        return out
    if not messages:
        raise TakeError(f"take {take.id} holds no solved skeletons to export as {fmt}")
    persons = take.persons()
    if person is not None and person not in persons:
        raise TakeError(f"take {take.id} holds no performer {person} (performers: "
                        f"{', '.join(map(str, persons)) or 'none'})")
    if person is None and fmt in PER_PERSON and len(persons) > 1:
        raise TakeError(f"take {take.id} holds performers {', '.join(map(str, persons))}: a {fmt} is one "
                        "performer's (give person=, or export_files for one file each)")
    stream = take.skeletons(person)
    skeleton = get_skeleton(stream.skeleton)
    if fmt == "c3d" and len(persons) > 1:
        return _c3d_persons(take, persons, skeleton, out)
    times = stream.times_s
    if person is not None:  # that performer's frames only: first to last
        stream, times = _present(stream)
    if fmt == "trc":
        from crosspose.io.trc import Trc, write_trc

        rate = frame_rate(stream.times_s)
        trc = Trc(markers=skeleton.joints, frames=stream.joints, rate=rate, times=times)
        return write_trc(trc, out)
    from crosspose.motion import write_motion  # the motion package's writer (joint rotations)

    try:
        write_motion(out, stream.joints, stream.confidence, stream.times_s, format=cast(Any, fmt),
                     skeleton=skeleton)
    except ValueError as err:  # e.g. a layout the humanoid bones have no mapping for
        raise TakeError(f"take {take.id} cannot be exported as {fmt}: {err}") from None
    return out


def _present(stream: SkeletonStream) -> tuple[SkeletonStream, np.ndarray]:
    """A performer's stream cut to their first through last frame with a joint, and those frames' times
    from the take's start; its own ``times_s`` restart at 0."""
    seen = np.flatnonzero(np.isfinite(stream.joints).all(-1).any(-1))
    keep = slice(int(seen[0]), int(seen[-1]) + 1) if seen.size else slice(0, 0)
    if not seen.size:
        raise TakeError("that performer has no solved joint in the take")
    times = stream.times_s[keep]
    cut = dataclasses.replace(
        stream, seq=stream.seq[keep], t_capture_ns=stream.t_capture_ns[keep], times_s=times - times[0],
        joints=stream.joints[keep], confidence=stream.confidence[keep], views=stream.views[keep],
        messages=stream.messages[keep],
    )
    return cut, times


def _c3d_persons(take: Take, persons: Sequence[int], skeleton: Skeleton, out: Path) -> Path:
    """One C3D of every performer over the whole take (labels ``p<id>_<joint>``)."""
    from crosspose.motion import write_c3d_persons

    joints = {}
    rate = 30.0
    for p in persons:
        s = take.skeletons(p)
        rate = frame_rate(s.times_s)
        joints[p] = np.where((s.confidence >= MIN_CONFIDENCE)[..., None], s.joints, np.nan)
    try:
        return write_c3d_persons(out, joints, rate, skeleton)
    except ValueError as err:
        raise TakeError(f"take {take.id} cannot be exported as c3d: {err}") from None
