"""The one wire format: ``[topic, msgpack header, *raw buffers]`` (DESIGN §4). No pickle.

The header is a msgpack map with ``"v"`` (schema version), ``"type"`` and ``"n_buffers"``; arrays
travel as raw buffers described by :func:`pack_array` metadata (dtype, shape), never inside the map.
This module alone writes ``"v"`` (:func:`versioned`); what each message type holds is
:mod:`crosspose.bus.schema`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np

VERSION = 1
MAX_HEADER_BYTES = 1 << 20  # 1 MiB of msgpack is far beyond any header we write
MAX_BUFFER_BYTES = 256 << 20  # one 8K RGB frame is ~100 MB
Buffer = bytes | bytearray | memoryview | np.ndarray


DropReason = Literal["malformed", "oversize", "foreign", "stale", "future", "busy"]
"""Why a received message is dropped, as a short category a stage counts drops by. A parser refuses a
message as ``malformed`` (not the wire format, or a field of the wrong type, shape or value, a
non-finite number), ``oversize`` (a part or an array beyond the size limits) or ``foreign`` (well
formed, but not for this receiver: another schema version or type, a camera it does not know). The
receiver's state adds ``stale`` (older than what it already moved past, or too old on arrival),
``future`` (stamped ahead of the receiver's clock) and ``busy`` (skipped for a newer one: latest wins).
Every value is in :data:`DROP_REASONS`."""

DROP_REASONS: tuple[DropReason, ...] = ("malformed", "stale", "future", "foreign", "oversize", "busy")


class MessageError(ValueError):
    """A message that does not follow the wire format or its type's schema.

    ``str(err)`` says what was wrong, naming the field; ``reason`` is its :data:`DropReason` category
    and ``field`` the header key at fault (``None`` for the message as a whole).
    """

    def __init__(self, detail: str, *, reason: DropReason = "malformed", field: str | None = None) -> None:
        super().__init__(detail)
        self.reason: DropReason = reason
        self.field = field


@dataclass
class Message:
    """A decoded message: ``topic``, ``header`` (dict) and its raw ``buffers``."""

    topic: bytes
    header: dict[str, Any]
    buffers: list[memoryview] = field(default_factory=list)

    @property
    def type(self) -> str:
        """The header's ``"type"``."""
        return str(self.header["type"])


def _as_buffer(b: Buffer) -> Buffer:
    if isinstance(b, np.ndarray):
        return np.ascontiguousarray(b).data
    return b


def versioned(header: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``header`` stamped with this build's schema version ``"v"``: what :func:`encode` sends,
    and what a message written outside the bus (a JSON line of skeletons) carries."""
    return {**header, "v": VERSION}


def encode(topic: bytes, header: Mapping[str, Any], buffers: Sequence[Buffer] = ()) -> list[Any]:
    """Frames of one multipart message; ``header`` needs ``"type"`` (``"v"``, ``"n_buffers"`` are set)."""
    if not isinstance(topic, bytes) or not topic:
        raise MessageError("topic must be non-empty bytes")
    if "type" not in header:
        raise MessageError("header has no 'type'")
    h = versioned(header)
    h["n_buffers"] = len(buffers)
    try:
        packed = msgpack.packb(h, use_bin_type=True)
    except (TypeError, ValueError) as err:
        raise MessageError(f"header cannot be msgpack-encoded: {err}") from None
    return [topic, packed, *(_as_buffer(b) for b in buffers)]


def decode(parts: Sequence[Any], *, max_buffer_bytes: int = MAX_BUFFER_BYTES) -> Message:
    """Parse received frames (bytes, memoryview or zmq.Frame) into a :class:`Message`.

    Raises:
        MessageError: fewer than two parts, header not msgpack / not a map, no ``"v"`` or another
            version, no ``"type"``, buffer count not matching ``"n_buffers"``, or oversize parts.
    """
    if len(parts) < 2:
        raise MessageError(f"expected [topic, header, *buffers], got {len(parts)} part(s)")
    views = [memoryview(getattr(p, "buffer", p)) for p in parts]
    topic = views[0].tobytes()
    if len(views[1]) > MAX_HEADER_BYTES:
        raise MessageError(f"header of {len(views[1])} bytes exceeds {MAX_HEADER_BYTES}", reason="oversize")
    try:
        header = msgpack.unpackb(views[1], raw=False, strict_map_key=True)
    except Exception as err:  # msgpack raises several unrelated types for garbage
        raise MessageError(f"header is not msgpack ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise MessageError(f"header must be a map, got {type(header).__name__}")
    if "v" not in header:
        raise MessageError("header has no schema version 'v'", field="v")
    if header["v"] != VERSION:
        raise MessageError(
            f"schema version {header['v']!r} is not supported (this build reads {VERSION})",
            reason="foreign",
            field="v",
        )
    if "type" not in header or not isinstance(header["type"], str):
        raise MessageError("header has no string 'type'", field="type")
    buffers = views[2:]
    if header.get("n_buffers", 0) != len(buffers):
        raise MessageError(
            f"header announces {header.get('n_buffers', 0)} buffer(s), message has {len(buffers)}",
            field="n_buffers",
        )
    for b in buffers:
        if b.nbytes > max_buffer_bytes:
            raise MessageError(f"buffer of {b.nbytes} bytes exceeds {max_buffer_bytes}", reason="oversize")
    return Message(topic, header, list(buffers))


def pack_array(arr: np.ndarray) -> tuple[dict[str, Any], Buffer]:
    """An array as ``({"dtype", "shape"}, buffer)``; no copy when it is already C-contiguous."""
    a = np.ascontiguousarray(arr)
    if a.dtype.hasobject:
        raise MessageError("object arrays cannot travel on the bus")
    return {"dtype": a.dtype.str, "shape": list(a.shape)}, a.data


def unpack_array(meta: Mapping[str, Any], buffer: Buffer) -> np.ndarray:
    """Inverse of :func:`pack_array`: a read-only view on ``buffer`` (no copy).

    Raises:
        MessageError: missing/invalid dtype or shape, or a buffer size that does not match them.
    """
    try:
        raw_dtype, raw_shape = meta["dtype"], meta["shape"]
        if not isinstance(raw_dtype, str) or not isinstance(raw_shape, (list, tuple)):
            raise TypeError("'dtype' must be a string and 'shape' a list")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in raw_shape):
            raise TypeError("'shape' must hold integers")
        dtype = np.dtype(raw_dtype)
        shape = tuple(raw_shape)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise MessageError(f"array metadata must hold a valid 'dtype' and 'shape' ({err})") from None
    if dtype.hasobject or dtype.itemsize == 0 or any(s < 0 for s in shape) or len(shape) > 32:
        raise MessageError(f"invalid array metadata dtype={dtype} shape={list(shape)}")
    view = (
        memoryview(buffer).cast("B") if not isinstance(buffer, np.ndarray) else memoryview(buffer.tobytes())
    )
    expected = math.prod(shape) * dtype.itemsize  # Python integers: a huge shape cannot wrap around
    if view.nbytes != expected:
        raise MessageError(f"buffer holds {view.nbytes} bytes, dtype {dtype} shape {shape} needs {expected}")
    return np.frombuffer(view, dtype=dtype).reshape(shape)
