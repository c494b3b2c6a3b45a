"""Stage functions for exercising the supervisor (tests, ``crosspose`` diagnostics).

They live in the package because ``spawn`` children import their target by module path.
"""

from __future__ import annotations

import os
import time
from multiprocessing.synchronize import Event
from pathlib import Path


def write_pid(pid_file: str) -> None:
    """Write this process's pid to ``pid_file`` whole: the file appears with its content (written beside
    it, then renamed), so a reader that waits for it to exist never reads it empty."""
    part = Path(f"{pid_file}.part")
    part.write_text(str(os.getpid()))
    part.replace(pid_file)


def idle_stage(stop: Event, pid_file: str | None = None) -> None:
    """Write the pid (optional), then wait for the stop event."""
    if pid_file is not None:
        write_pid(pid_file)
    while not stop.wait(0.05):
        pass


def crashing_stage(stop: Event, after_s: float, count_file: str) -> None:
    """Append a line to ``count_file`` each start, then exit with code 3 after ``after_s`` seconds."""
    with open(count_file, "a") as f:
        f.write(f"{os.getpid()}\n")
    if stop.wait(after_s):
        return
    os._exit(3)


def stubborn_stage(stop: Event, pid_file: str) -> None:
    """Ignore the stop event (and SIGTERM) to test the supervisor's escalation to SIGKILL."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write_pid(pid_file)
    while True:
        time.sleep(0.1)


def slow_teardown_stage(stop: Event, pid_file: str, teardown_s: float) -> None:
    """Like :func:`idle_stage`, with an interpreter-exit hook that takes ``teardown_s`` seconds (standing
    in for collecting a large module graph at exit, which a stage that has finished must not wait for)."""
    import atexit

    atexit.register(time.sleep, teardown_s)
    idle_stage(stop, pid_file)
