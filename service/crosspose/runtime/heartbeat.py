"""Stage heartbeats: ``status.<stage>.`` about once a second with the stage's rate and counters."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from crosspose.bus import Publisher
from crosspose.bus.schema import status_message, status_topic


class RateMeter:
    """Events per second over a sliding window (``window_s`` seconds)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_ns = int(window_s * 1e9)
        self._times: deque[int] = deque()

    def tick(self, now_ns: int | None = None) -> None:
        self._times.append(time.monotonic_ns() if now_ns is None else now_ns)

    def rate(self, now_ns: int | None = None) -> float:
        now = time.monotonic_ns() if now_ns is None else now_ns
        while self._times and now - self._times[0] > self.window_ns:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1)
        return (len(self._times) - 1) * 1e9 / span if span > 0 else 0.0


class Heartbeat:
    """Sends ``status.<stage>.`` (``status.inference.<worker>.`` for one inference worker of several) with
    :meth:`payload` every ``interval_s`` (call :meth:`maybe_send` often)."""

    def __init__(self, publisher: Publisher, stage: str, interval_s: float = 1.0, worker: int | None = None
                 ) -> None:
        self.publisher = publisher
        self.stage = stage
        self.worker = worker
        self.topic = status_topic(stage) if worker is None else status_topic(stage, str(worker))
        self.interval_ns = int(interval_s * 1e9)
        self._next = 0

    def maybe_send(self, payload: dict[str, Any], now_ns: int | None = None) -> bool:
        now = time.monotonic_ns() if now_ns is None else now_ns
        if now < self._next:
            return False
        self._next = now + self.interval_ns
        return self.publisher.send(self.topic, status_message(self.stage, payload, worker=self.worker))
