"""Video files replayed as live cameras: paced at the file's (or configured) rate, optionally looped.

With ``preload`` the file is decoded once at open (resized if asked) and replayed from memory: four
1080x1920 H.264 streams at 60 fps cost more than two CPU cores to decode live, which a replayed demo
should not have to pay. The frames and their timestamps are the same either way.

Several files replayed as the cameras of one rig must show the same moment in every view. Each grabber
starts when its process is up (and a preloading one later still), so pacing each file from its own start
put the demo's four views up to 55 frames apart. With ``epoch_ns`` (the service gives every grabber the
same one) a file follows a timeline on the host's monotonic clock instead: frame ``k`` is due at
``epoch_ns + k / fps`` (``k`` modulo the file's length when looped), whenever the grabber started or
restarted; a grabber that falls behind passes over the frames it missed (counted in ``skipped``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from crosspose.capture.source import Source, SourceEnded, SourceError, as_bgr, resize_to


class FileSource(Source):
    """A video file. The device timestamp is the frame's position in the file (``CAP_PROP_POS_MSEC``),
    continued across loops so it never goes backwards; on a timeline (``epoch_ns``), ``k / fps``."""

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
        epoch_ns: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.epoch_ns = epoch_ns
        self._k = 0  # on a timeline: the index of the next frame to read
        self._pos = 0  # without preload: frames read from the capture since it was (re)wound
        self._count: int | None = None  # frames in the file, once known
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
            self._count = len(self._frames)
            self._cap.release()
            self._cap = None
        else:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self._count = n if n > 0 else None
            self._pos = 0

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

    @property
    def _period_ns(self) -> float:
        return 1e9 / (self.fps or 30.0)

    def _due_index(self) -> int:
        """On the timeline: the frame to read now (the next one, or later when the grabber fell behind)."""
        assert self.epoch_ns is not None
        now = int((time.monotonic_ns() - self.epoch_ns) // self._period_ns)
        k = max(self._k, now)
        if not self.loop and self._count is not None and k >= self._count:
            raise SourceEnded(f"video file {self.path} ended")
        return k

    def _taken(self, k: int) -> int:
        """Bookkeeping after reading timeline frame ``k``; returns its device timestamp (ns)."""
        if self.due_ns is not None:  # frames before a late start were never this camera's to send
            self.skipped += k - self._k
        self._k = k + 1
        self.due_ns = self.epoch_ns + round(k * self._period_ns) if self.epoch_ns is not None else None
        return round(k * self._period_ns)

    def _read_on_timeline(self) -> tuple[np.ndarray, int | None]:
        import cv2

        k = self._due_index()
        if self._frames is not None:
            image = self._frames[k % len(self._frames)][0]
            return image, self._taken(k)
        cap = self._cap
        if cap is None:
            raise SourceError(f"video file {self.path} is not open")
        target = k % self._count if (self.loop and self._count) else k
        if target < self._pos or target - self._pos > 2 * (self.fps or 30.0):
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)  # wound round, or far behind: seek
            self._pos = target
        while self._pos <= target:  # up to frame `target`, passing over the ones missed
            if not cap.grab():
                if not self.loop:
                    raise SourceEnded(f"video file {self.path} ended")
                if self._pos == 0:
                    raise SourceError(f"video file {self.path} holds no decodable frame")
                self._count = self._pos  # the file's real length, now known
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._pos, target = 0, k % self._count
                continue
            self._pos += 1
        ok, frame = cap.retrieve()
        if not ok:
            raise SourceError(f"video file {self.path}: frame {target} cannot be decoded")
        return resize_to(as_bgr(frame), self.width, self.height), self._taken(k)

    def read(self) -> tuple[np.ndarray, int | None]:
        import cv2

        if self.epoch_ns is not None:
            return self._read_on_timeline()
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
