"""Helpers: frame-set messages as sync publishes them, and skeleton messages, without a service."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from crosspose.bus.schema import frame_message
from crosspose.capture.frames import encode_frame

CAMERAS = ["cam0", "cam1", "cam2"]


def image(seq: int, cam: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A deterministic ``(H, W, 3)`` uint8 test picture (gradients, so JPEG has something to do)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 4 + seq) % 256, (y * 5 + cam * 40) % 256, ((x + y) * 2 + seq * 3) % 256], axis=-1)
    return img.astype(np.uint8)


def frameset(
    seq: int,
    *,
    cameras: list[str] = CAMERAS,
    missing: tuple[str, ...] = (),
    jpeg: bool = False,
    cam_seq: int | None = None,
    fps: float = 30.0,
) -> tuple[dict[str, Any], list[Any]]:
    """``(header, buffers)`` of one ``frameset.`` message (raw BGR frames, or JPEG with ``jpeg``)."""
    t_ref = int(1_000_000_000 + seq * 1e9 / fps)
    frames: list[dict[str, Any] | None] = []
    buffers: list[Any] = []
    for i, cam in enumerate(cameras):
        if cam in missing:
            frames.append(None)
            continue
        img = image(seq, i)
        encoding, buf = encode_frame(img, 90 if jpeg else None)
        frames.append(
            frame_message(
                cam,
                seq if cam_seq is None else cam_seq,
                img,
                t_capture_ns=t_ref + i * 1000,
                t_wall_ns=time.time_ns(),
                t_device_ns=int(seq * 1e9 / fps),
                encoding=encoding,
                fps=fps,
            )
        )
        buffers.append(bytes(buf))
    header = {
        "v": 1,
        "type": "frameset",
        "seq": seq,
        "t_ref_ns": t_ref,
        "t_emit_ns": t_ref + 5_000_000,
        "cameras": list(cameras),
        "present": [c not in missing for c in cameras],
        "frames": frames,
        "skew_ns": [None if c in missing else i * 1000 for i, c in enumerate(cameras)],
    }
    return header, buffers


def skeleton(seq: int, fps: float = 30.0) -> dict[str, Any]:
    """A ``skeleton.`` message with 17 joints moving with ``seq``."""
    joints: list[list[float | None]] = [[0.1 * j, 0.01 * seq, 1.0 + 0.05 * j, 0.9] for j in range(17)]
    joints[3] = [None, None, None, 0.0]
    return {
        "v": 1,
        "type": "skeleton",
        "seq": seq,
        "t_capture_ns": int(1_000_000_000 + seq * 1e9 / fps),
        "t_publish_ns": int(1_000_000_000 + seq * 1e9 / fps) + 20_000_000,
        "skeleton": "h36m17",
        "units": "m",
        "joints": joints,
        "views": [3] * 17,
        "latency_ms": {"total": 20.0},
    }
