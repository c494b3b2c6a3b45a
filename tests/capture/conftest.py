"""A small real video file, written with OpenCV (mp4v), shared by the capture tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

W, H, N = 64, 48, 20  # the test files repeat these (tests are not a package)


def write_video(path: Path, frames: int = N, fps: float = 20.0) -> Path:
    """``frames`` frames of 64x48: frame i is a flat grey of level 10·i (readable back after MPEG-4)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((H, W, 3), 10 * i, dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="session")
def make_video() -> Callable[..., Path]:
    """:func:`write_video`, for tests that write their own file."""
    return write_video


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")
