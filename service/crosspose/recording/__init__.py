"""Take recording and replay: crash-safe takes on disk, their exports, and replay through the pipeline.

* :mod:`~crosspose.recording.take` — the take format (:class:`TakeWriter`, :class:`Take`, :class:`TakeStore`).
* :mod:`~crosspose.recording.log` — the append-only checksummed record file frames are stored in.
* :mod:`~crosspose.recording.export` — jsonl / trc / bvh / c3d / zip.
* :mod:`~crosspose.recording.replay` — a take back through the inference + solver logic.
* :mod:`~crosspose.recording.control` — the API's start/stop commands to the recorder stage.

The recorder process itself is :mod:`crosspose.runtime.recorder_stage`.
"""

from crosspose.recording.take import (
    RecordedFrameSet,
    SkeletonStream,
    Take,
    TakeError,
    TakeStore,
    TakeWriteError,
    TakeWriter,
    check_name,
)

__all__ = [
    "RecordedFrameSet",
    "SkeletonStream",
    "Take",
    "TakeError",
    "TakeStore",
    "TakeWriteError",
    "TakeWriter",
    "check_name",
]
