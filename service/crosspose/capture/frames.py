"""A frame's image in and out of its message buffer: raw BGR (no copy) or JPEG. The header's fields are
:func:`crosspose.bus.schema.frame_message`'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from crosspose.bus import MessageError
from crosspose.bus.schema import Encoding


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


def decode_frame(header: Mapping[str, Any], buffer: bytes | memoryview) -> np.ndarray:
    """A frame message's buffer → ``(H, W, 3)`` uint8 BGR (raw: a read-only view, no copy).

    Raises:
        MessageError: unknown encoding, undecodable JPEG, or a size (raw bytes, decoded JPEG) not
            matching ``shape``.
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
        if list(img.shape) != list(header.get("shape") or ()):
            raise MessageError(
                f"frame {header.get('camera')}#{header.get('seq')}: the JPEG holds a "
                f"{img.shape[1]}x{img.shape[0]} image, the header says shape {header.get('shape')}",
                field="shape",
            )
        return img
    raise MessageError(f"frame encoding {encoding!r} is not 'raw' or 'jpeg'")
