"""Supervisor: start the stages in order as ``spawn`` processes, restart a crashed one with backoff,
stop them all cleanly on SIGINT/SIGTERM.

A stage is a module-level function ``target(stop_event, *args)`` that returns when ``stop_event`` is set
(``multiprocessing.Event``). Each child dies with its supervisor even when the supervisor is killed
with ``SIGKILL`` (Linux ``PR_SET_PDEATHSIG``), ignores ``SIGINT`` (a terminal's Ctrl-C reaches the whole
process group; the supervisor decides the order of the shutdown) and logs in the supervisor's format.
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_PR_SET_PDEATHSIG = 1


def configure_logging(level: int | str = logging.INFO) -> None:
    """The one log format of every crosspose process (stage name included)."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (no orphans after a kill -9)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # pragma: no cover - not glibc
        pass


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _child_main(
    target: Callable[..., None], stop: Event, args: tuple[Any, ...], level: int, parent: int
) -> None:
    """Entry point of every stage process (``parent``: the supervisor's pid)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops the stages, not Ctrl-C
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked across the spawn (see _spawn)
    # SIGTERM (escalation from the supervisor, or the parent's death) unwinds the stage through its
    # ``finally`` blocks. Not ``stop.set()``: a multiprocessing Event set from a signal handler while
    # this same thread waits on it deadlocks (its Condition's notify waits for the sleeper to wake).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    configure_logging(level)
    # `kill -USR1 <pid>` prints every thread's stack to the log: the supervisor does it to a stage that
    # does not stop in time, before it terminates it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # The parent died before prctl took effect: this process was re-parented. Compared with the
    # supervisor's own pid, not with 1, since a supervisor may itself be PID 1 (a container without an
    # init, systemd-nspawn), where every stage would otherwise return at once and be restarted forever.
    if os.getppid() != parent:
        return
    target(stop, *args)
    # The stage has closed its sockets and files. Skip the interpreter's teardown: collecting torch's and
    # OpenCV's module graphs took over 5 s per process when every stage of a loaded 2-core host exited at
    # once, so the supervisor's stop ran into its timeout and terminated them.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@dataclass
class StageSpec:
    """One supervised stage.

    Attributes:
        name: process name in logs and metrics (``grabber.cam1``, ``sync``, ``inference``, …).
        target: module-level function ``target(stop_event, *args)`` (picklable for ``spawn``).
        args: its further arguments (picklable).
        ready: optional check the supervisor waits on (up to ``ready_timeout_s``) before starting the
            next stage, e.g. that the process bound its socket.
    """

    name: str
    target: Callable[..., None]
    args: tuple[Any, ...] = ()
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 10.0


@dataclass
class _Running:
    spec: StageSpec
    process: SpawnProcess
    stop: Event
    started: float
    restarts: int = 0
    consecutive: int = 0  # exits since it last ran stable_s seconds
    backoff: float = 0.0
    next_start: float | None = None
    exits: list[int | None] = field(default_factory=list)


class StatusReporter(Protocol):
    """Where :meth:`Supervisor.status` goes about once every ``interval_s`` while the stages run (the
    service publishes it as ``status.supervisor.``, so the API sees restarts)."""

    interval_s: float

    def send(self, status: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class Supervisor:
    """Runs :class:`StageSpec` s as child processes and keeps them running.

    Args:
        stages: in start order (later stages may depend on earlier ones' sockets).
        backoff_s: first restart delay; doubled per consecutive crash up to ``backoff_max_s``, reset
            once a stage has run for ``stable_s`` seconds.
        stop_timeout_s: how long a stage gets to stop after its event is set before SIGTERM, then
            SIGKILL.
        on_restart: called with ``(name, exit_code, restarts)`` when a stage is restarted.
        reporter: gets :meth:`status` periodically while :meth:`run` runs (and is closed after it).
        crash_loop_exits: a stage that exited this many times in a row, none after ``stable_s`` seconds of
            running, is crash-looping.
    """

    def __init__(
        self,
        stages: list[StageSpec],
        backoff_s: float = 0.5,
        backoff_max_s: float = 10.0,
        stable_s: float = 30.0,
        stop_timeout_s: float = 5.0,
        log_level: int = logging.INFO,
        on_restart: Callable[[str, int | None, int], None] | None = None,
        reporter: StatusReporter | None = None,
        crash_loop_exits: int = 3,
    ) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        self.stages = stages
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self.stop_timeout_s = stop_timeout_s
        self.log_level = log_level
        self.on_restart = on_restart
        self.reporter = reporter
        self.crash_loop_exits = crash_loop_exits
        self._next_report = 0.0
        self._ctx = mp.get_context("spawn")
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()

    # Lifecycle ---------------------------------------------------------------------------------------
    def _spawn(self, spec: StageSpec) -> tuple[SpawnProcess, Event]:
        stop = self._ctx.Event()
        process = self._ctx.Process(
            target=_child_main,
            name=spec.name,
            args=(spec.target, stop, spec.args, self.log_level, os.getpid()),
            daemon=False,
        )
        # Ctrl-C goes to the whole process group, and a child still importing (before `_child_main`
        # ignores SIGINT) would die of it with a traceback. Blocked across the spawn, SIGINT stays pending
        # here (delivered when unblocked) and the child starts with it blocked.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        log.info("started %s (pid %s)", spec.name, process.pid)
        return process, stop

    def start(self) -> None:
        """Start every stage in order, waiting for each one's ``ready`` check."""
        for spec in self.stages:
            if self._stopping.is_set():
                return
            process, stop = self._spawn(spec)
            self._running[spec.name] = _Running(spec, process, stop, time.monotonic())
            if spec.ready is not None:
                deadline = time.monotonic() + spec.ready_timeout_s
                while not spec.ready():
                    if not process.is_alive() or time.monotonic() > deadline:
                        log.warning("%s is not ready after %.1f s; going on", spec.name, spec.ready_timeout_s)
                        break
                    time.sleep(0.02)

    def poll(self) -> None:
        """Restart stages that exited (with backoff); call periodically."""
        now = time.monotonic()
        for name, r in self._running.items():
            if self._stopping.is_set():
                return
            if r.next_start is not None:
                if now >= r.next_start:
                    r.process, r.stop = self._spawn(r.spec)
                    r.started, r.next_start = now, None
                    if self.on_restart is not None:
                        self.on_restart(name, r.exits[-1] if r.exits else None, r.restarts)
                continue
            if r.process.is_alive():
                if now - r.started > self.stable_s:
                    r.backoff, r.consecutive = 0.0, 0
                continue
            code = r.process.exitcode
            r.process.close()
            r.exits.append(code)
            r.restarts += 1
            r.consecutive += 1
            r.backoff = self.backoff_s if r.backoff == 0.0 else min(2 * r.backoff, self.backoff_max_s)
            r.next_start = now + r.backoff
            log.warning(
                "%s exited with code %s; restarting in %.1f s (restart %d)", name, code, r.backoff, r.restarts
            )

    def run(self, install_signals: bool = True, poll_s: float = 0.1) -> None:
        """Start, keep stages alive until SIGINT/SIGTERM (or :meth:`request_stop`), then stop them."""
        if install_signals:

            def handler(signum: int, _frame: FrameType | None) -> None:
                log.info("received %s; stopping", signal.Signals(signum).name)
                self._stopping.set()

            signal.signal(signal.SIGINT, handler)
            signal.signal(signal.SIGTERM, handler)
        try:
            self.start()
            while not self._stopping.wait(poll_s):
                self.poll()
                self._report()
        finally:
            self.stop()
            if self.reporter is not None:
                self.reporter.close()

    def _report(self) -> None:
        if self.reporter is None or time.monotonic() < self._next_report:
            return
        self._next_report = time.monotonic() + self.reporter.interval_s
        try:
            self.reporter.send(self.status())
        except Exception:  # the report is for the API; a failure must never stop the supervision
            log.exception("supervisor: could not report its status")

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (thread-safe)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop every stage: all stop events at once, then (past ``stop_timeout_s``) SIGTERM, then SIGKILL."""
        self._stopping.set()
        running = [(n, r) for n, r in reversed(list(self._running.items())) if r.next_start is None]
        for _, r in running:  # every stage winds down at once; the joins below only wait
            r.stop.set()
        deadline = time.monotonic() + self.stop_timeout_s
        for name, r in running:
            r.process.join(max(0.0, deadline - time.monotonic()))
            if r.process.is_alive():
                log.warning(
                    "%s did not stop in %.1f s; its stacks follow; terminating", name, self.stop_timeout_s
                )
                if r.process.pid is not None:
                    os.kill(r.process.pid, signal.SIGUSR1)
                    time.sleep(0.2)
                r.process.terminate()
                r.process.join(2.0)
            if r.process.is_alive():
                r.process.kill()
                r.process.join(2.0)
            log.info("stopped %s (exit code %s)", name, r.process.exitcode)
        self._running.clear()

    # Introspection ----------------------------------------------------------------------------------
    def pids(self) -> dict[str, int | None]:
        """Current pid of each stage (``None`` while it waits for a restart)."""
        return {n: (None if r.next_start is not None else r.process.pid) for n, r in self._running.items()}

    def restarts(self) -> dict[str, int]:
        return {n: r.restarts for n, r in self._running.items()}

    def status(self) -> dict[str, Any]:
        """``{"stages": {name: {...}}}``: per stage ``running``, ``pid``, ``restarts`` (ever),
        ``consecutive_exits`` (since it last ran ``stable_s`` seconds), ``crash_looping``,
        ``last_exit_code`` and ``restart_in_s`` (None unless it waits for its restart)."""
        now = time.monotonic()
        stages = {}
        for name, r in self._running.items():
            waiting = r.next_start is not None
            stages[name] = {
                "running": not waiting,
                "pid": None if waiting else r.process.pid,
                "restarts": r.restarts,
                "consecutive_exits": r.consecutive,
                "crash_looping": r.consecutive >= self.crash_loop_exits,
                "last_exit_code": r.exits[-1] if r.exits else None,
                "restart_in_s": round(max(0.0, r.next_start - now), 2) if r.next_start is not None else None,
            }
        return {"stages": stages}
