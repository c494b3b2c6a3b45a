"""Files other tools open, from a take's solved stream: JSON lines, TRC, BVH, C3D, or the whole take as zip.

BVH and C3D come from :func:`crosspose.motion.write_motion` (joint rotations from the 3D joints);
TRC from :mod:`crosspose.io.trc` (OpenSim markers, Y-up); JSON lines are the recorded websocket
messages themselves. Markers, labels and rotations follow the take's joint layout. ``zip`` packs the
take folder (frames, timestamps, calibration, config, stream).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from crosspose.recording.take import Take, TakeError
from crosspose.skeleton import get_skeleton

ExportFormat = Literal["jsonl", "trc", "bvh", "c3d", "zip"]
FORMATS: tuple[str, ...] = ("jsonl", "trc", "bvh", "c3d", "zip")
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


def export_take(take: Take, fmt: str, out: str | Path) -> Path:
    """Write ``take`` as ``fmt`` (one of :data:`FORMATS`) to ``out``; returns the path.

    Raises:
        TakeError: an unknown format, a take without solved frames for a motion format, or (bvh, c3d) a take
            whose layout the motion writer refuses.
        ImportError: bvh/c3d while :mod:`crosspose.motion` has no ``write_motion``.
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise TakeError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
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
    stream = take.skeletons()
    skeleton = get_skeleton(stream.skeleton)
    if fmt == "trc":
        from crosspose.io.trc import Trc, write_trc

        rate = frame_rate(stream.times_s)
        trc = Trc(markers=skeleton.joints, frames=stream.joints, rate=rate, times=stream.times_s)
        return write_trc(trc, out)
    from crosspose.motion import write_motion  # the motion package's writer (joint rotations)

    try:
        write_motion(out, stream.joints, stream.confidence, stream.times_s, format=cast(Any, fmt),
                     skeleton=skeleton)
    except ValueError as err:  # e.g. a layout the humanoid bones have no mapping for
        raise TakeError(f"take {take.id} cannot be exported as {fmt}: {err}") from None
    return out
