"""What the stage processes share: stepping a stage until the supervisor asks it to stop, and warnings
that a stage repeating a problem at the frame rate cannot flood the log with."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from multiprocessing.synchronize import Event
from typing import Any, Protocol

from crosspose.bus import shutdown


class Stage(Protocol):
    """A stage's sockets and state: ``step`` handles what arrived within ``timeout_ms``."""

    def step(self, timeout_ms: int = 100) -> Any: ...

    def close(self) -> None: ...


def run_until_stopped(stop: Event, stage: Stage, timeout_ms: int = 100) -> None:
    """Step ``stage`` until ``stop`` is set, then close its sockets and the process's bus context."""
    try:
        while not stop.is_set():
            stage.step(timeout_ms)
    finally:
        stage.close()
        shutdown()


class WarningLimiter:
    """Logs a repeating problem once, then at most once per ``interval_s`` — per problem, so two problems
    that alternate are limited like one that repeats — and at most ``burst`` lines per ``interval_s`` in
    all (garbage whose every message fails differently must not flood the log either). What was held
    back is counted in the next line that gets out.

    Args:
        logger: where the lines go (at WARNING).
        interval_s: quiet time per problem after each line.
        burst: lines per ``interval_s`` over all problems.
        max_keys: problems remembered (the least recent forgotten first).
    """

    def __init__(
        self, logger: logging.Logger, interval_s: float = 10.0, burst: int = 5, max_keys: int = 256
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.burst = burst
        self.max_keys = max_keys
        self._next: OrderedDict[str, float] = OrderedDict()
        self._window_start = -math.inf
        self._in_window = 0
        self.suppressed = 0

    def warn(self, text: str, key: str | None = None, now: float | None = None) -> bool:
        """Log ``text`` unless problem ``key`` (default: the text) or the burst is still quiet; True if
        it was logged."""
        key = text if key is None else key
        now = time.monotonic() if now is None else now
        if now - self._window_start >= self.interval_s:
            self._window_start, self._in_window = now, 0
        due = self._next.get(key, -math.inf) <= now
        if not due or self._in_window >= self.burst:
            self.suppressed += 1
            return False
        self._in_window += 1
        self._next[key] = now + self.interval_s
        self._next.move_to_end(key)
        while len(self._next) > self.max_keys:
            self._next.popitem(last=False)
        held, self.suppressed = self.suppressed, 0
        note = f" ({held} more warnings held back since the last line)" if held else ""
        self.logger.warning("%s%s", text, note)
        return True
