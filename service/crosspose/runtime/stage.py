"""What the stage processes share: stepping a stage until the supervisor asks it to stop."""

from __future__ import annotations

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
