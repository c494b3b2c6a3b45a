"""A seeded mutator of real bus messages, for fuzzing what the stages receive.

:meth:`Mutator.mutate` takes one message as its builder made it (topic, header, buffers) and returns the
multipart frames of a damaged copy: values swapped for values of another type (NaN, infinities, huge and
negative integers, lists where names go, maps, bytes), keys removed or added, array metadata and buffers
cut, grown or replaced, the version and buffer count wrong, now and then the packed header's bytes
flipped or cut. :meth:`Mutator.garbage` is a message of random parts. The topic always keeps the prefix
it came with, so a subscriber's filter lets it through.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

Parts = list[bytes]

_STRINGS = [
    "",
    "x",
    "cam1",
    "cam2",
    "cam3",
    "../../etc",
    "é",
    "a" * 300,
    "uint8",
    "float16",
    "<f4",
    "|O",
    "raw",
    "jpeg",
    "frame",
    "frameset",
    "heatmaps",
    "skeleton",
    "status",
    "grabber",
    "sync",
]


class Mutator:
    """Damaged copies of real messages (module docstring), reproducible from ``seed``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- values --------------------------------------------------------------------------------------
    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(14 if depth < 2 else 10)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.choice([0, 1, -1, 3, 16, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1])
        if kind == 3:
            return r.choice([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e-308, 0.5, 1e20])
        if kind == 4:
            return r.choice(_STRINGS)
        if kind == 5:
            return r.randbytes(r.randrange(8))
        if kind == 6:
            return r.randrange(-(10**12), 10**12) * r.choice([1, 10**6])
        if kind == 7:
            return [r.choice([0, 1, 3, 16, -1, 64, 10**6])] * r.randrange(5)  # shape-like
        if kind == 8:
            return r.choice([[], [0, 0, 3], [16], [1, 1, 3], [65536, 65536, 3], [4, 6, 3], [3, 17, 64, 64]])
        if kind == 9:
            return r.choice([{}, {"dtype": "uint8", "shape": [1]}, {"a": 1}])
        if kind == 10:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        if kind == 11:
            return {r.choice(_STRINGS): self.value(depth + 1) for _ in range(r.randrange(4))}
        if kind == 12:
            return [r.choice(_STRINGS)] * r.randrange(1, 4)
        return r.random() * r.choice([1, 1e9, -1e9])

    # -- structure ------------------------------------------------------------------------------------
    def _containers(self, node: Any, out: list[Any]) -> list[Any]:
        if isinstance(node, dict | list):
            out.append(node)
            children = node.values() if isinstance(node, dict) else node
            for child in children:
                self._containers(child, out)
        return out

    def _mutate_header(self, header: dict[str, Any]) -> None:
        r = self.rng
        node = r.choice(self._containers(header, []))
        op = r.randrange(4)
        if isinstance(node, dict):
            if not node or op == 0:
                node[r.choice([*_STRINGS, "v", "type", "n_buffers"])] = self.value()
            elif op == 1:
                del node[r.choice(list(node))]
            else:
                node[r.choice(list(node))] = self.value()
        elif node:  # a list
            i = r.randrange(len(node))
            if op == 0:
                del node[i]
            elif op == 1:
                node.append(copy.deepcopy(node[i]))
            else:
                node[i] = self.value()
        else:
            node.append(self.value())

    def _mutate_buffers(self, buffers: list[bytes]) -> list[bytes]:
        r = self.rng
        op = r.randrange(6)
        if op == 0 and buffers:
            buffers.pop(r.randrange(len(buffers)))
        elif op == 1:
            buffers.insert(r.randrange(len(buffers) + 1), r.randbytes(r.randrange(64)))
        elif buffers:
            i = r.randrange(len(buffers))
            b = bytearray(buffers[i])
            if op == 2 and b:
                del b[r.randrange(len(b)) :]
            elif op == 3:
                b += bytes(r.randrange(1, 64))
            elif op == 4 and b:  # values a float buffer reads as NaN / infinity, or random bytes
                fill = r.choice([b"\xff\x7f", b"\x00\x7c", b"\x00\x00\xc0\x7f", bytes([r.randrange(256)])])
                start = r.randrange(len(b))
                b[start : start + len(fill)] = fill
            else:
                b = bytearray(r.randbytes(len(b)))
            buffers[i] = bytes(b)
        return buffers

    def mutate(self, topic: bytes, header: dict[str, Any], buffers: Sequence[Any] = ()) -> Parts:
        """The frames of a damaged copy of ``[topic, header, *buffers]`` (built as the codec would)."""
        r = self.rng
        h = copy.deepcopy(dict(header))
        h.setdefault("v", 1)
        bufs = [
            bytes(memoryview(np.ascontiguousarray(b)).cast("B"))
            if isinstance(b, np.ndarray)
            else bytes(memoryview(b).cast("B"))
            for b in buffers
        ]
        h.setdefault("n_buffers", len(bufs))
        for _ in range(r.randrange(1, 4)):
            if r.random() < 0.75:
                self._mutate_header(h)
            else:
                bufs = self._mutate_buffers(bufs)
        if r.random() < 0.7:
            h["n_buffers"] = len(bufs)  # usually consistent, so the parsers (not the codec) see the damage
        try:
            packed = msgpack.packb(h, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            packed = msgpack.packb({"v": 1, "type": "?"})
        if r.random() < 0.08:
            b = bytearray(packed)
            for _ in range(r.randrange(1, 4)):
                if b:
                    b[r.randrange(len(b))] = r.randrange(256)
            packed = bytes(b[: r.randrange(len(b) + 1)] if r.random() < 0.3 else b)
        t = topic + (r.choice([b"", b"x.", b"cam9.", b"\xff."]) if r.random() < 0.1 else b"")
        return [t, packed, *bufs]

    def garbage(self, prefix: bytes) -> Parts:
        """A message of random parts behind ``prefix``: random bytes, random msgpack, too few parts."""
        r = self.rng
        parts = [prefix + r.randbytes(r.randrange(4))]
        for _ in range(r.randrange(4)):
            if r.random() < 0.5:
                parts.append(r.randbytes(r.randrange(32)))
            else:
                try:
                    parts.append(msgpack.packb(self.value(), use_bin_type=True))
                except (TypeError, ValueError, OverflowError):
                    parts.append(b"\xc1")
        return parts

    def message(self, topic: bytes, header: dict[str, Any], buffers: Sequence[Any] = ()) -> Parts:
        """Mostly a damaged copy of the given message, sometimes garbage behind its topic's prefix."""
        if self.rng.random() < 0.15:
            return self.garbage(topic)
        return self.mutate(topic, header, buffers)
