"""The camera-source interface every kind implements (:mod:`crosspose.capture.sources` picks the kind)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np


class SourceError(RuntimeError):
    """The source failed (cannot open, read error, stream lost); the grabber retries with backoff."""


class SourceEnded(SourceError):  # noqa: N818 (an end, not an error; the contract names it)
    """A finite source (a video file without ``loop``) has no more frames."""


class Source(ABC):
    """A camera source. ``read`` returns ``(frame (H, W, 3) uint8 BGR, device_ts_ns | None)``."""

    #: "opencv", "file" or "synthetic"
    kind: str = ""
    #: host monotonic ns at which the frame ``read`` returned last is due, for a source that replays
    #: on a timeline shared with the other cameras (the grabber then waits for it instead of pacing
    #: by ``fps`` itself); None otherwise.
    due_ns: int | None = None
    #: frames passed over so far because the grabber fell behind that timeline (counted as drops).
    skipped: int = 0

    @abstractmethod
    def open(self) -> None:
        """Open the device/stream/file; raise :class:`SourceError` naming what failed."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, int | None]:
        """The next frame; raise :class:`SourceEnded` at the end, :class:`SourceError` on failure."""

    @abstractmethod
    def close(self) -> None:
        """Release the device (idempotent)."""

    @property
    @abstractmethod
    def fps(self) -> float | None:
        """Frame rate: the configured one, else the source's own (None when unknown)."""

    @property
    def paced(self) -> bool:
        """True when the grabber must pace reads itself (files, synthetic); live cameras pace themselves."""
        return False

    @property
    def repeats_frames(self) -> bool:
        """True when ``read`` hands out the same unchanging array objects again (a preloaded clip on a
        loop), so a grabber may encode each of them once."""
        return False

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def resize_to(frame: np.ndarray, width: int | None, height: int | None) -> np.ndarray:
    """Resize to the configured size (either side alone keeps the aspect ratio); INTER_LINEAR (DESIGN §7)."""
    import cv2

    if width is None and height is None:
        return frame
    h, w = frame.shape[:2]
    if width is None:
        width = max(1, round(w * height / h))
    if height is None:
        height = max(1, round(h * width / w))
    if (w, h) == (width, height):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Grey or BGRA → ``(H, W, 3)`` uint8 BGR."""
    import cv2

    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame
