"""Live cameras through ``cv2.VideoCapture``: device index, ``/dev/videoN``, RTSP/HTTP streams."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosspose.capture.source import Source, SourceError, as_bgr, resize_to


class OpenCVSource(Source):
    """A V4L2 device (index or ``/dev/videoN``) or a network stream URL. Paced by the device itself."""

    kind = "opencv"

    def __init__(
        self, source: str, *, fps: float | None = None, width: int | None = None, height: int | None = None
    ) -> None:
        self.source = source
        self._fps = fps
        self.width = width
        self.height = height
        self._cap: Any = None  # cv2.VideoCapture

    def open(self) -> None:
        import cv2

        target: int | str = int(self.source) if self.source.isdigit() else self.source
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open camera source {self.source!r} (no such device or stream unreachable)"
            )
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self._fps:
            cap.set(cv2.CAP_PROP_FPS, self._fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a backlog
        self._cap = cap

    def read(self) -> tuple[np.ndarray, int | None]:
        import cv2

        if self._cap is None:
            raise SourceError(f"camera source {self.source!r} is not open")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceError(f"camera source {self.source!r} returned no frame (disconnected?)")
        ts_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        device_ns = int(ts_ms * 1e6) if ts_ms and ts_ms > 0 else None
        return resize_to(as_bgr(frame), self.width, self.height), device_ns

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float | None:
        if self._fps:
            return self._fps
        if self._cap is not None:
            import cv2

            f = float(self._cap.get(cv2.CAP_PROP_FPS))
            return f if f > 0 else None
        return None
