"""An append-only record file that survives ``kill -9``: length-prefixed, checksummed records.

One record on disk::

    b"CPR1" | u64 payload length | u32 crc32(payload) | payload
    payload = u32 header length | msgpack header | (u64 length | bytes) per buffer

The writer only appends; :meth:`RecordWriter.flush` hands Python's buffer to the kernel (what a ``kill -9``
keeps) and :meth:`RecordWriter.fsync` puts it on disk (what a power cut keeps).
A process killed mid-write leaves at most one incomplete record at the end: the reader stops there
(``truncated`` says so) and everything before it reads back intact.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

MAGIC = b"CPR1"
_PREFIX = struct.Struct("<4sQI")  # magic, payload length, crc32
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
MAX_RECORD_BYTES = 1 << 30


class RecordError(ValueError):
    """A record file that cannot be read from its start (wrong magic on the first record)."""


def record_parts(header: Mapping[str, Any], buffers: Sequence[bytes | memoryview] = ()) -> list[Any]:
    """One record as the pieces to write in order (prefix, header, each buffer with its length), the
    buffers themselves not copied: the length and crc32 are computed piece by piece."""
    h = msgpack.packb(dict(header), use_bin_type=True)
    parts: list[Any] = [_U32.pack(len(h)), h]
    for b in buffers:
        parts.append(_U64.pack(memoryview(b).nbytes))
        parts.append(b)
    length, crc = 0, 0
    for part in parts:
        length += memoryview(part).nbytes
        crc = zlib.crc32(part, crc)
    return [_PREFIX.pack(MAGIC, length, crc), *parts]


def _decode_payload(payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    (hlen,) = _U32.unpack_from(payload, 0)
    header = msgpack.unpackb(payload[4 : 4 + hlen], raw=False)
    pos = 4 + hlen
    buffers: list[bytes] = []
    while pos < len(payload):
        (n,) = _U64.unpack_from(payload, pos)
        pos += 8
        buffers.append(payload[pos : pos + n])
        pos += n
    return header, buffers


class RecordWriter:
    """Appends records to ``path`` (created, or appended to after its last complete record).

    Attributes:
        bytes_written: size of the file after the last append (bytes).
        records: records appended by this writer.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._f: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self.bytes_written = self._f.tell()
        self.records = 0

    def append(self, header: Mapping[str, Any], buffers: Sequence[bytes | memoryview] = ()) -> int:
        """Append one record (buffered; durable after :meth:`sync`); returns its size in bytes."""
        parts = record_parts(header, buffers)  # written piece by piece: frames are not copied into one
        size = 0
        for part in parts:
            self._f.write(part)
            size += memoryview(part).nbytes
        self.bytes_written += size
        self.records += 1
        return size

    def flush(self) -> None:
        """Hand Python's buffer to the kernel: everything appended so far survives a ``kill -9`` of this
        process (not a power cut: that takes :meth:`fsync`)."""
        self._f.flush()

    def fsync(self) -> None:
        """``fsync`` what was handed to the kernel (callable from another thread while appends go on)."""
        os.fsync(self._f.fileno())

    def sync(self) -> None:
        """Flush and ``fsync``: everything appended so far is on disk."""
        self.flush()
        self.fsync()

    def close(self) -> None:
        """Sync and close (errors while syncing propagate; the file is closed either way)."""
        if self._f.closed:
            return
        try:
            self.sync()
        finally:
            self._f.close()


@dataclass
class ReadResult:
    """What :func:`read_records` found at the end: ``truncated`` = an incomplete or corrupt tail."""

    records: int = 0
    truncated: bool = False
    valid_bytes: int = 0
    reason: str = ""


def read_records(
    path: str | Path, result: ReadResult | None = None
) -> Iterator[tuple[dict[str, Any], list[bytes]]]:
    """``(header, buffers)`` of every complete record of ``path``, in order; stops quietly at an
    incomplete or corrupt tail (recorded in ``result``).

    Raises:
        RecordError: the file does not start with a record (not a take record file).
    """
    res = result if result is not None else ReadResult()
    with open(path, "rb") as f:
        pos = 0
        while True:
            prefix = f.read(_PREFIX.size)
            if not prefix:
                return
            if len(prefix) < _PREFIX.size:
                res.truncated, res.reason = True, f"incomplete record prefix at byte {pos}"
                return
            magic, n, crc = _PREFIX.unpack(prefix)
            if magic != MAGIC:
                if pos == 0:
                    raise RecordError(f"{path} is not a crosspose record file (magic {magic!r})")
                res.truncated, res.reason = True, f"bad record magic at byte {pos}"
                return
            if n > MAX_RECORD_BYTES:
                res.truncated, res.reason = True, f"record of {n} bytes at byte {pos} is implausible"
                return
            payload = f.read(n)
            if len(payload) < n or zlib.crc32(payload) != crc:
                res.truncated = True
                res.reason = f"incomplete or corrupt record at byte {pos} (killed mid-write?)"
                return
            pos += _PREFIX.size + n
            res.records += 1
            res.valid_bytes = pos
            yield _decode_payload(payload)
