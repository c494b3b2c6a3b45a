"""Which inference worker gets a frame set: the one that is idle, never one still busy with a set.

A worker says it is idle by subscribing to its topic ``frameset.<k>.`` and busy by unsubscribing as soon as a
set reaches it (:class:`crosspose.runtime.inference_stage.InferenceStage`); sync's XPUB socket sees both
(:meth:`crosspose.bus.Publisher.subscription_events`), and so it also sees a worker whose process is gone
(its connection, and so its subscription, drops). :class:`WorkerDispatch` sends each new set at once to an
idle worker — the one idle longest — and, while every worker is busy, keeps only the newest set for the
first one to come free: an older waiting set is replaced (``superseded``, counted) and never sent, so a
worker always starts on the newest set there is and no set waits in a socket behind a busy worker.

Before any worker has subscribed (sync started first, or a tool listening to ``frameset.``) every set goes
out at once on worker 0's topic, as listeners of the ``frameset.`` prefix expect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from crosspose.bus.schema import frameset_topic, frameset_worker

#: A worker that has not taken the set sent to it (no unsubscription seen) this long after it was sent is
#: taken as idle again (ns): the set was lost on its way (a message its socket refused), and the worker
#: must not be left out for ever. Many times a set's network time on a slow CPU.
BUSY_TIMEOUT_NS = 2_000_000_000


class FramesetPublisher(Protocol):
    """What :class:`WorkerDispatch` needs of sync's frame-set socket (:class:`crosspose.bus.Publisher`)."""

    def send(self, topic: bytes, header: Any, buffers: Sequence[Any] = ()) -> bool: ...

    def subscription_events(self) -> list[tuple[bool, bytes]]: ...


class WorkerDispatch:
    """Frame sets to idle inference workers (see the module's docstring).

    Args:
        publisher: sync's frame-set socket.
        busy_timeout_ns: :data:`BUSY_TIMEOUT_NS`.

    Attributes:
        dispatched: sets sent to a worker (or, before any worker subscribed, on worker 0's topic).
        waited: sets that waited at sync for a worker to come free before they were sent.
        superseded: sets that waited and were replaced by a newer one, never sent.
        refused: sends the socket refused (a full queue: counted, the set kept for the next idle worker).
    """

    def __init__(self, publisher: FramesetPublisher, busy_timeout_ns: int = BUSY_TIMEOUT_NS) -> None:
        self.publisher = publisher
        self.busy_timeout_ns = busy_timeout_ns
        self._idle: list[int] = []  # workers idle now, the one idle longest first
        self._busy: dict[int, int] = {}  # worker → when its set was sent (monotonic ns)
        self._known = False  # whether any worker has subscribed yet
        self._waiting: tuple[Any, Sequence[Any]] | None = None  # the newest set no worker was idle for
        self.dispatched = 0
        self.waited = 0
        self.superseded = 0
        self.refused = 0

    def offer(self, header: Any, buffers: Sequence[Any], now_ns: int | None = None) -> bool:
        """A new frame set (the newest): sent to an idle worker now (True), else kept for the first one to
        come free, replacing an older set kept (``superseded``)."""
        self._update(time.monotonic_ns() if now_ns is None else now_ns)
        if not self._known:
            sent = self.publisher.send(frameset_topic(0), header, buffers)
            self.dispatched += sent
            self.refused += not sent
            return sent
        if self._waiting is not None:
            self.superseded += 1
        self._waiting = (header, buffers)
        return self._send_waiting(now_ns, first_try=True)

    def poll(self, now_ns: int | None = None) -> bool:
        """Note the workers that came free (or went); send them the set kept, if any. True if one was sent."""
        self._update(time.monotonic_ns() if now_ns is None else now_ns)
        return self._waiting is not None and self._send_waiting(now_ns, first_try=False)

    def _send_waiting(self, now_ns: int | None, *, first_try: bool) -> bool:
        assert self._waiting is not None
        header, buffers = self._waiting
        while self._idle:
            worker = self._idle.pop(0)
            self._busy[worker] = time.monotonic_ns() if now_ns is None else now_ns
            if self.publisher.send(frameset_topic(worker), header, buffers):
                self._waiting = None
                self.dispatched += 1
                self.waited += not first_try
                return True
            self.refused += 1  # its queue is full: busy after all (its own timeout frees it)
        return False

    def _update(self, now_ns: int) -> None:
        """The workers' subscription changes since last time, and the timeout of a set never taken."""
        for subscribed, topic in self.publisher.subscription_events():
            worker = frameset_worker(topic)
            if worker is None:
                continue
            self._busy.pop(worker, None)
            if worker in self._idle:
                self._idle.remove(worker)
            if subscribed:
                self._known = True
                self._idle.append(worker)
        for worker, since in list(self._busy.items()):
            if now_ns - since > self.busy_timeout_ns:
                del self._busy[worker]
                self._idle.append(worker)

    @property
    def waiting(self) -> bool:
        """Whether a set waits for a worker to come free."""
        return self._waiting is not None

    @property
    def idle(self) -> list[int]:
        """The workers idle now, the one idle longest first."""
        return list(self._idle)

    @property
    def counters(self) -> dict[str, int]:
        """``{"dispatched", "waited", "superseded", "refused"}`` (see the class's attributes)."""
        return {"dispatched": self.dispatched, "waited": self.waited, "superseded": self.superseded,
                "refused": self.refused}
