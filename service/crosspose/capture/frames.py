"""The ``frame`` message: header fields a grabber stamps, and the buffer's encoding (raw BGR or JPEG)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from crosspose.bus import MessageError

Encoding = Literal["raw", "jpeg"]


def encode_frame(frame: np.ndarray, jpeg_quality: int | None) -> tuple[Encoding, bytes | memoryview]:
    """``(H, W, 3)`` uint8 BGR → ``(encoding, buffer)``: raw (no copy) or JPEG at ``jpeg_quality``."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3) uint8 BGR, got {frame.shape} {frame.dtype}")
    if jpeg_quality is None:
        return "raw", np.ascontiguousarray(frame).data
    import cv2

    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "jpeg", buf.tobytes()


def frame_header(
    camera: str,
    seq: int,
    frame: np.ndarray,
    *,
    t_capture_ns: int,
    t_wall_ns: int,
    t_device_ns: int | None,
    encoding: Encoding,
    fps: float | None,
) -> dict[str, Any]:
    """The msgpack header of one frame (``shape``/``dtype`` are the decoded image's)."""
    return {
        "v": 1,
        "type": "frame",
        "camera": camera,
        "seq": seq,
        "t_capture_ns": t_capture_ns,
        "t_wall_ns": t_wall_ns,
        "t_device_ns": t_device_ns,
        "shape": list(frame.shape),
        "dtype": str(frame.dtype),
        "encoding": encoding,
        "fps": fps,
    }


def decode_frame(header: Mapping[str, Any], buffer: bytes | memoryview) -> np.ndarray:
    """A frame message's buffer → ``(H, W, 3)`` uint8 BGR (raw: a read-only view, no copy).

    Raises:
        MessageError: unknown encoding, undecodable JPEG, or a size not matching ``shape``.
    """
    from crosspose.bus import unpack_array

    encoding = header.get("encoding")
    if encoding == "raw":
        return unpack_array({"dtype": header.get("dtype", "uint8"), "shape": header.get("shape")}, buffer)
    if encoding == "jpeg":
        import cv2

        img = cv2.imdecode(np.frombuffer(buffer, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise MessageError(
                f"frame {header.get('camera')}#{header.get('seq')}: JPEG buffer cannot be decoded"
            )
        return img
    raise MessageError(f"frame encoding {encoding!r} is not 'raw' or 'jpeg'")
