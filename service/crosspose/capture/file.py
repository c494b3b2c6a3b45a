"""Video files replayed as live cameras: paced at the file's (or configured) rate, optionally looped.

With ``preload`` the file is decoded once at open (resized if asked) and replayed from memory: four
1080x1920 H.264 streams at 60 fps cost more than two CPU cores to decode live, which a replayed demo
should not have to pay. The frames and their timestamps are the same either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crosspose.capture.source import Source, SourceEnded, SourceError, as_bgr, resize_to


class FileSource(Source):
    """A video file. The device timestamp is the frame's position in the file (``CAP_PROP_POS_MSEC``),
    continued across loops so it never goes backwards."""

    kind = "file"

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None = None,
        loop: bool = False,
        width: int | None = None,
        height: int | None = None,
        preload: bool = False,
        max_preload_bytes: int = 4 << 30,
    ) -> None:
        self.path = Path(path)
        self.preload = preload
        self.max_preload_bytes = max_preload_bytes
        self._frames: list[tuple[np.ndarray, int]] | None = None
        self._next = 0
        self._fps = fps
        self.loop = loop
        self.width = width
        self.height = height
        self._cap: Any = None  # cv2.VideoCapture
        self._file_fps: float | None = None
        self._loop_offset_ns = 0
        self._last_ns = 0
        self.loops = 0

    def open(self) -> None:
        import cv2

        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot decode video file {self.path} (not a video OpenCV can read)")
        f = float(cap.get(cv2.CAP_PROP_FPS))
        self._file_fps = f if f > 0 else None
        self._cap = cap
        if self.preload and self._frames is None:
            self._frames = self._decode_all()
            self._next = 0
        if self._frames is not None:
            self._cap.release()
            self._cap = None

    def _decode_all(self) -> list[tuple[np.ndarray, int]]:
        """Every frame (resized) with its position in the file, ns."""
        import cv2

        frames: list[tuple[np.ndarray, int]] = []
        total = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                break
            pos_ns = int(float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) * 1e6)
            image = np.ascontiguousarray(resize_to(as_bgr(frame), self.width, self.height))
            total += image.nbytes
            if total > self.max_preload_bytes:
                raise SourceError(
                    f"video file {self.path} does not fit the preload limit of "
                    f"{self.max_preload_bytes >> 20} MiB; set width/height smaller or preload: false"
                )
            frames.append((image, pos_ns))
        if not frames:
            raise SourceError(f"video file {self.path} holds no decodable frame")
        return frames

    def _read_preloaded(self, frames: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int | None]:
        if self._next >= len(frames):
            if not self.loop:
                raise SourceEnded(f"video file {self.path} ended")
            self._loop_offset_ns = self._last_ns + int(1e9 / (self.fps or 30.0))
            self.loops += 1
            self._next = 0
        image, pos_ns = frames[self._next]
        self._next += 1
        device_ns = self._loop_offset_ns + pos_ns
        self._last_ns = device_ns
        return image, device_ns

    def read(self) -> tuple[np.ndarray, int | None]:
        import cv2

        if self._frames is not None:
            return self._read_preloaded(self._frames)
        if self._cap is None:
            raise SourceError(f"video file {self.path} is not open")
        ok, frame = self._cap.read()
        if not ok:
            if not self.loop:
                raise SourceEnded(f"video file {self.path} ended")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._loop_offset_ns = self._last_ns + int(1e9 / (self.fps or 30.0))
            self.loops += 1
            ok, frame = self._cap.read()
            if not ok:
                raise SourceError(f"video file {self.path} cannot be rewound")
        pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        device_ns = self._loop_offset_ns + int(pos_ms * 1e6)
        self._last_ns = device_ns
        return resize_to(as_bgr(frame), self.width, self.height), device_ns

    @property
    def repeats_frames(self) -> bool:
        """Preloaded frames are replayed as the same arrays, never written to."""
        return self._frames is not None

    def close(self) -> None:
        """Release the file; preloaded frames stay for a reopen (a reconnect does not decode again)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float | None:
        return self._fps or self._file_fps

    @property
    def paced(self) -> bool:
        return True
