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


#: The reductions a JPEG can be decoded at (libjpeg's scaled IDCT: 1/2, 1/4, 1/8 the size, much less work).
JPEG_REDUCTIONS = (1, 2, 4, 8)
_IMREAD = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4",
           8: "IMREAD_REDUCED_COLOR_8"}


def reduced_shape(shape: list[int] | tuple[int, ...], reduce: int) -> list[int]:
    """The ``(H, W, 3)`` a ``shape`` JPEG decodes to at 1/``reduce`` size (libjpeg rounds each side up)."""
    return [-(-int(shape[0]) // reduce), -(-int(shape[1]) // reduce), *shape[2:]]


def decode_frame(header: Mapping[str, Any], buffer: bytes | memoryview, reduce: int = 1) -> np.ndarray:
    """A frame message's buffer → ``(H, W, 3)`` uint8 BGR (raw: a read-only view, no copy).

    ``reduce`` (1, 2, 4 or 8): decode a JPEG at 1/``reduce`` of ``shape`` per side (each side rounded up),
    through libjpeg's scaled IDCT — each output pixel the mean of a ``reduce x reduce`` block, so its centre
    sits where :meth:`crosspose.geometry.Camera.resized` puts it. A raw frame is always returned whole.

    Raises:
        ValueError: ``reduce`` not one of :data:`JPEG_REDUCTIONS`.
        MessageError: unknown encoding, undecodable JPEG, or a size (raw bytes, decoded JPEG) not
            matching ``shape``.
    """
    from crosspose.bus import unpack_array

    if reduce not in JPEG_REDUCTIONS:
        raise ValueError(f"a JPEG can be decoded at 1/1, 1/2, 1/4 or 1/8 size, not 1/{reduce}")
    encoding = header.get("encoding")
    if encoding == "raw":
        return unpack_array({"dtype": header.get("dtype", "uint8"), "shape": header.get("shape")}, buffer)
    if encoding == "jpeg":
        import cv2

        img = cv2.imdecode(np.frombuffer(buffer, dtype=np.uint8), getattr(cv2, _IMREAD[reduce]))
        if img is None:
            raise MessageError(
                f"frame {header.get('camera')}#{header.get('seq')}: JPEG buffer cannot be decoded"
            )
        shape = header.get("shape") or ()
        if len(shape) != 3 or list(img.shape) != reduced_shape(shape, reduce):
            raise MessageError(
                f"frame {header.get('camera')}#{header.get('seq')}: the JPEG holds a "
                f"{img.shape[1]}x{img.shape[0]} image{'' if reduce == 1 else f' at 1/{reduce} size'}, the "
                f"header says shape {header.get('shape')}",
                field="shape",
            )
        return img
    raise MessageError(f"frame encoding {encoding!r} is not 'raw' or 'jpeg'")
