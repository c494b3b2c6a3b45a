"""Synchronized video files, one per camera: which file is which camera, and reading them in step."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crosspose.io.openpose import KeypointsError, match_cameras


class VideoError(ValueError):
    """Video files that cannot be used (the message names them and says how to fix it)."""


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def video_files(folder: str | Path, camera_names: Sequence[str]) -> list[Path | None]:
    """For each calibration camera, its video in ``folder`` (None: no video, a missing view).

    Matched by the number in the names (``cam01.mp4`` ↔ ``cam_01``; see
    :func:`crosspose.io.openpose.match_cameras`), else by order when there are as many videos as
    cameras. Raises :class:`VideoError` naming both lists when they cannot be matched.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"{folder}: not a folder (expected one video file per camera)")
    videos = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES),
                    key=lambda f: f.name)
    if len(videos) < 2:
        raise VideoError(f"{folder}: found {len(videos)} video file(s) ({', '.join(VIDEO_SUFFIXES)}); "
                               "need one per camera, at least two")
    try:
        index = match_cameras([f.stem for f in videos], camera_names)
    except KeypointsError:
        raise VideoError(
            f"cannot match the videos to the calibration cameras: videos {[f.name for f in videos]}, "
            f"cameras {list(camera_names)}. Name each video with its camera's number (cam01.mp4 ↔ cam_01) "
            "or give one video per camera, in calibration order.") from None
    matched = sum(i is not None for i in index)
    if matched < 2:
        raise VideoError(f"only {matched} of the cameras {list(camera_names)} have a video in "
                               f"{folder}; need at least two")
    return [None if i is None else videos[i] for i in index]


class SyncedVideos:
    """Frame sets from one video file per camera, read in step (the files are frame-synchronized).

    Iterating yields per camera a BGR uint8 frame, or None for a camera without a video. Iteration
    stops at the shortest video or after ``max_frames``.
    """

    def __init__(self, paths: Sequence[Path | None], max_frames: int | None = None) -> None:
        import cv2

        self.paths = list(paths)
        self._captures: list[Any] = []
        counts, rates = [], []
        for path in self.paths:
            if path is None:
                self._captures.append(None)
                continue
            cap = cv2.VideoCapture(str(path))
            if not cap.isOpened():
                self.close()
                raise VideoError(f"{path}: OpenCV cannot open this video")
            self._captures.append(cap)
            counts.append(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
            rates.append(float(cap.get(cv2.CAP_PROP_FPS)))
        known = [n for n in counts if n > 0]
        self.num_frames = min(known) if known else 0
        if max_frames is not None:
            self.num_frames = min(self.num_frames, max_frames) if known else max_frames
        good = [r for r in rates if math.isfinite(r) and r > 0]
        self.fps = float(np.median(good)) if good else 30.0

    def __iter__(self) -> Iterator[list[np.ndarray | None]]:
        for _ in range(self.num_frames):
            frames: list[np.ndarray | None] = []
            for cap in self._captures:
                if cap is None:
                    frames.append(None)
                    continue
                ok, image = cap.read()
                if not ok:
                    return
                frames.append(image)
            yield frames

    def close(self) -> None:
        for cap in self._captures:
            if cap is not None:
                cap.release()
        self._captures = [None] * len(self._captures)

    def __enter__(self) -> SyncedVideos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
