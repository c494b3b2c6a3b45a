"""Fan-out of skeleton messages to websocket subscribers, each behind its own bounded drop-oldest queue.

``SkeletonHub.publish`` is called from any thread (the bus receiver); it encodes a message once per wire
format in use, appends it to every subscriber's queue and wakes the event loop, never waiting for a
client. A subscriber that cannot keep up loses its own oldest messages (counted per client and in total);
memory is bounded by ``clients × queue_size`` encoded messages.

Rotations (``?rotations=true``): a message may carry a ``rotations`` key, at the top level and in each
of its ``persons`` (the solver stage's per-frame joint rotations of each performer, see
:func:`crosspose.bus.schema.rotations_payload`). Clients that asked for rotations get them (``null``
while none is known); the others get the message without that key anywhere, exactly as
before. Each (format, rotations) variant in use is encoded once per message, whatever the client count.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
import numpy as np

from crosspose.bus.schema import skeleton_in_layout

log = logging.getLogger(__name__)

WireFormat = Literal["json", "msgpack"]
WIRE_FORMATS: tuple[WireFormat, ...] = ("json", "msgpack")
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
)  # fmt: skip
"""Histogram bucket upper bounds for per-stage latency (seconds)."""
FPS_WINDOW_S = 2.0
ROTATIONS_KEY = "rotations"
"""The skeleton message's optional rotations payload (only clients that ask for it get it)."""
MAX_LATENCY_STAGES = 16
"""Distinct ``latency_ms`` keys tracked (a bounded set of metric labels)."""


def _plain(obj: Any) -> Any:
    """numpy values to Python ones (for ``json``/``msgpack`` ``default=``)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} in a skeleton message")


def _finite(obj: Any) -> Any:
    """Non-finite floats as ``None``: JSON has no NaN (a missing joint is ``null`` on the JSON wire)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return _finite(_plain(obj))
    return obj


def encode(message: Mapping[str, Any], fmt: WireFormat) -> str | bytes:
    """One message on the websocket wire: compact JSON text (NaN → null) or a msgpack binary frame."""
    if fmt == "msgpack":
        packed: bytes = msgpack.packb(message, default=_plain, use_bin_type=True)
        return packed
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False, default=_plain)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False)


def _rotations(entry: Mapping[str, Any], asked: bool) -> Mapping[str, Any]:
    if asked:
        return entry if ROTATIONS_KEY in entry else {**entry, ROTATIONS_KEY: None}
    return {k: v for k, v in entry.items() if k != ROTATIONS_KEY} if ROTATIONS_KEY in entry else entry


def with_rotations(message: Mapping[str, Any], asked: bool) -> Mapping[str, Any]:
    """A skeleton message as a client that did (``asked``) or did not ask for rotations gets it: the
    ``rotations`` key at the top level and in every person of ``persons`` — ``null`` where the message has
    none — or neither (the message itself when it already is so)."""
    out = _rotations(message, asked)
    persons = message.get("persons")
    entries = persons if isinstance(persons, list) else []
    if any((ROTATIONS_KEY in p) != asked for p in entries if isinstance(p, Mapping)):
        out = {**out, "persons": [_rotations(p, asked) if isinstance(p, Mapping) else p for p in entries]}
    return out


class Subscriber:
    """One websocket client's queue: bounded, drop-oldest, with counters. Thread-safe.

    Attributes:
        id: unique per hub, in connection order.
        format: the wire format it asked for.
        rotations: whether it asked for the rotations payload (``?rotations=true``).
        skeleton: the layout it asked for (``?skeleton=``; None: the published one).
        queue_size: capacity of its queue (messages).
        delivered: messages handed to the socket.
        dropped: messages lost because the client was too slow (its oldest queued ones).
    """

    def __init__(self, id: int, format: WireFormat, queue_size: int, rotations: bool = False,
                 skeleton: str | None = None) -> None:
        self.id = id
        self.format = format
        self.rotations = rotations
        self.skeleton = skeleton
        self.queue_size = queue_size
        self.delivered = 0
        self.dropped = 0
        self.connected_ns = time.monotonic_ns()
        self._queue: collections.deque[str | bytes] = collections.deque(maxlen=queue_size)
        self._lock = threading.Lock()
        self._wake = asyncio.Event()

    def _offer(self, frame: str | bytes) -> int:
        with self._lock:
            lost = int(len(self._queue) == self.queue_size)
            self.dropped += lost
            self._queue.append(frame)  # deque(maxlen) drops the oldest
            return lost

    def _pop(self) -> str | bytes | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    async def next(self) -> str | bytes:
        """The oldest queued message, waiting for one (call from the hub's event loop)."""
        while True:
            self._wake.clear()  # clear before looking: a publish after the pop sets it again
            frame = self._pop()
            if frame is not None:
                return frame
            await self._wake.wait()

    def mark_delivered(self) -> None:
        with self._lock:
            self.delivered += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "id": self.id,
                "format": self.format,
                "rotations": self.rotations,
                "queued": len(self._queue),
                "queue_size": self.queue_size,
                "delivered": self.delivered,
                "dropped": self.dropped,
            }


@dataclass
class LatencyHistogram:
    """Cumulative histogram of one stage's latency (seconds), Prometheus-style. Not locked: the hub locks."""

    counts: list[int]
    sum_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``[(le, cumulative count)]`` ending with ``+Inf``."""
        out, total = [], 0
        for le, n in zip((*LATENCY_BUCKETS_S, math.inf), self.counts, strict=True):
            total += n
            out.append(("+Inf" if math.isinf(le) else repr(le), float(total)))
        return out


class SkeletonHub:
    """Fan-out to websocket subscribers (module docstring).

    Args:
        queue_size: per-client queue capacity in messages (DESIGN §2: small, latest wins).
        max_clients: subscribers beyond this are refused (bounds memory with the queue size).
    """

    def __init__(self, queue_size: int = 64, max_clients: int = 256) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._subscribers: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0
        self.skeletons = 0
        self.dropped_total = 0
        self.unencodable = 0
        self._recent_ns: collections.deque[int] = collections.deque(maxlen=8192)
        self.last_skeleton_ns: int | None = None
        self._latency: dict[str, LatencyHistogram] = {}
        self.persons: int | None = None  # performers in the last skeleton (None: no ``persons`` seen yet)
        self.top_person: int | None = None  # the id at the top level of the last skeleton (lowest live)
        self.top_person_switches = 0  # the top level went from one live id straight to another

    # -- subscribers (event loop side) ----------------------------------------------------------------

    def subscribe(self, format: WireFormat, rotations: bool = False,
                  skeleton: str | None = None) -> Subscriber | None:
        """Register a client on the running event loop; None when ``max_clients`` are connected.

        ``rotations``: the client gets the messages' ``rotations`` key (module doc). ``skeleton``: the
        client gets skeleton messages in that layout (:func:`crosspose.bus.schema.skeleton_in_layout`;
        None: as published)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if len(self._subscribers) >= self.max_clients:
                return None
            self._loop = loop
            sub = Subscriber(next(self._ids), format, self.queue_size, rotations, skeleton)
            self._subscribers[sub.id] = sub
            return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.pop(sub.id, None)

    def _wake_all(self) -> None:
        with self._lock:
            subs = list(self._subscribers.values())
        for sub in subs:
            sub._wake.set()

    # -- publishing (any thread) ----------------------------------------------------------------------

    def publish(self, message: Mapping[str, Any], now_ns: int | None = None) -> None:
        """Queue one message (DESIGN §5 shape) for every subscriber. Never blocks on a client.

        Skeleton messages (``"type": "skeleton"``) also feed the solved-rate and latency metrics.
        """
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        self._account(message, now_ns)
        with self._lock:
            subs = list(self._subscribers.values())
            loop = self._loop
        if not subs:
            return
        frames: dict[tuple[WireFormat, bool, str | None], str | bytes] = {}
        skeleton = message.get("type") == "skeleton"
        variants: dict[bool, Mapping[str, Any]] = {False: message, True: message}
        if skeleton:
            variants = {False: with_rotations(message, False), True: with_rotations(message, True)}
        try:
            for fmt, rot, layout in {(sub.format, sub.rotations, sub.skeleton) for sub in subs}:
                variant = variants[rot]
                if layout is not None and skeleton:
                    variant = skeleton_in_layout(variant, layout)
                frames[fmt, rot, layout] = encode(variant, fmt)
        except (TypeError, ValueError, OverflowError) as exc:
            # a bug upstream, not a network condition: count and say so, but keep the bus thread alive
            with self._lock:
                self.unencodable += 1
                first = self.unencodable == 1
            if first:
                log.error("skeleton hub: dropping a message that cannot be encoded: %s", exc)
            return
        lost = sum(sub._offer(frames[sub.format, sub.rotations, sub.skeleton]) for sub in subs)
        if lost:
            with self._lock:
                self.dropped_total += lost
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
                loop.call_soon_threadsafe(self._wake_all)

    def _account(self, message: Mapping[str, Any], now_ns: int) -> None:
        latency = message.get("latency_ms")
        with self._lock:
            self.published += 1
            if message.get("type") != "skeleton":
                return
            self.skeletons += 1
            self.last_skeleton_ns = now_ns
            self._account_persons(message.get("persons"))
            self._recent_ns.append(now_ns)
            while self._recent_ns and now_ns - self._recent_ns[0] > FPS_WINDOW_S * 1e9:
                self._recent_ns.popleft()
            if isinstance(latency, Mapping):
                for stage, ms in latency.items():
                    if not isinstance(ms, (int, float)) or not math.isfinite(ms):
                        continue
                    hist = self._latency.get(str(stage))
                    if hist is None:
                        if len(self._latency) >= MAX_LATENCY_STAGES:  # bounded label set
                            continue
                        hist = self._latency[str(stage)] = LatencyHistogram(
                            [0] * (len(LATENCY_BUCKETS_S) + 1)
                        )
                    hist.observe(ms / 1000.0)

    def _account_persons(self, persons: Any) -> None:
        """Performer count and top-level id of a skeleton message's ``persons`` (a message without it,
        from a producer before persons, changes nothing). Called with the lock held."""
        if not isinstance(persons, list):
            return
        self.persons = len(persons)
        first = persons[0] if persons and isinstance(persons[0], Mapping) else None
        top = first.get("id") if first is not None else None
        top = top if isinstance(top, int) else None
        if top is not None and self.top_person is not None and top != self.top_person:
            self.top_person_switches += 1
        if top is not None or not persons:
            self.top_person = top

    # -- reading (metrics, status) --------------------------------------------------------------------

    def solved_fps(self, now_ns: int | None = None) -> float:
        """Skeletons published per second over the last ``FPS_WINDOW_S`` seconds."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            recent = [t for t in self._recent_ns if now_ns - t <= FPS_WINDOW_S * 1e9]
        if len(recent) < 2:
            return 0.0
        span = (recent[-1] - recent[0]) / 1e9
        return (len(recent) - 1) / span if span > 0 else 0.0

    def skeleton_age_s(self, now_ns: int | None = None) -> float | None:
        """Seconds since the last skeleton was published (None: none yet)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            last = self.last_skeleton_ns
        return None if last is None else max(0.0, (now_ns - last) / 1e9)

    def latency(self) -> dict[str, LatencyHistogram]:
        """Per-stage latency histograms (copies)."""
        with self._lock:
            return {k: LatencyHistogram(list(h.counts), h.sum_s, h.count) for k, h in self._latency.items()}

    def subscribers(self) -> list[dict[str, Any]]:
        """Per-client counters of the connected clients."""
        with self._lock:
            subs = list(self._subscribers.values())
        return [s.stats() for s in subs]

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._subscribers)
