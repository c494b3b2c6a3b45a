"""Take recording and replay: crash-safe takes on disk, their exports, and replay through the pipeline.

* :mod:`~crosspose.recording.take` — the take format, reading (:class:`Take`), the store (:class:`TakeStore`).
* :mod:`~crosspose.recording.writer` — writing a take crash-safely while recording (:class:`TakeWriter`).
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
    check_name,
)
from crosspose.recording.writer import TakeWriter

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
