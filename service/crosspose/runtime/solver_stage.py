"""The solver stage: ``heatmaps.`` → the core's solver half (:class:`crosspose.core.PoseStep`) →
``skeleton.`` (the websocket message) and ``track.`` (the performer's track, back to inference).

Latest frame set wins: when heatmaps queue up, the newest by capture time is solved and the others are
skipped and counted as drops (``busy``). The skeleton stream is in capture order: with several inference
workers (all connected to the heatmaps endpoint this stage binds) a set whose heatmaps arrive after a
newer set was published is dropped and counted (``stale``), never sent, and so is one stamped more than
:data:`~crosspose.runtime.workers.FUTURE_NS` ahead of this host's clock (``future``: it would hold back
every real set). So that a worker's set is not lost only because another worker finished a newer one
first, each worker of several announces the set it starts (``inflight.``): a newer set is held while an
older announced one is on its way, at most ``solver.hold_ms`` (40 ms), and then both are
published, the older first (``held`` and ``held_in_time`` in the heartbeat); past the bound the newer one
goes out and the older one is dropped as ``stale`` when it comes.
The solver keeps its tracking state across frames; it resets when the performer is lost
for long.

Heatmaps are checked by the schema's parser (the configured cameras, the solver's joint count,
finite values) before they are solved; what fails is dropped and counted by reason in the
heartbeat's ``input_drops`` (source ``heatmaps``; :mod:`crosspose.bus.drops`), never raised.

Live outputs (:class:`crosspose.streaming.live.LiveMotion`), in this order per frame: the optional One
Euro filter (config ``filter``, off by default) on the joints that are published; the joint rotations
(config ``streaming.rotations``) attached to the message as ``rotations`` (the API passes it only to
websocket clients that ask with ``?rotations=true``); and one VMC bundle to every ``streaming.vmc``
target, sent here as soon as the message is stamped with ``t_publish_ns`` and before it goes on the bus
(so engines get the frame no later than websocket clients; ``benchmarks/vmc.py`` measures it).

Several performers: :meth:`SolverStage.publish` takes a frame set's solved performers ``[(id, Pose3D)]``;
each is filtered and rotated with their own state (by id), lands in the message's ``persons`` (the top
level is the lowest id's) with their own ``rotations``, and goes to the VMC receivers that follow them
(``streaming.vmc.targets``). The single-person path publishes its one pose as id 0.

The capture volume (the heatmaps header's ``volume``, :mod:`crosspose.runtime.persons_bus`): a performer
solved with their root outside it is not reported and their track goes back lost, so inference searches
again (with one performer too: nobody is reported, and the solver's next search is cold); each is counted
(``outside_volume`` in the heartbeat).
"""

from __future__ import annotations

import logging
import time
from multiprocessing.synchronize import Event
from typing import Any

import torch

from crosspose.bus import DropCounter, Message, MessageError, Publisher, Subscriber
from crosspose.bus.schema import (
    HEATMAPS,
    INFLIGHT,
    SKELETON,
    TRACK,
    attach_rotations,
    parse_heatmaps,
    parse_inflight,
    rotations_payload,
    skeleton_message,
)
from crosspose.config import Config
from crosspose.core import PoseStep
from crosspose.runtime.heartbeat import Heartbeat, RateMeter
from crosspose.runtime.persons_bus import read_persons, solve_one, solve_persons, volume_of
from crosspose.runtime.stage import run_until_stopped
from crosspose.runtime.workers import FUTURE_NS, INFLIGHT_MAX_AGE_NS
from crosspose.streaming.live import LiveMotion

log = logging.getLogger(__name__)


class SolverStage:
    """Sockets and state of the solver process (usable in-process for tests).

    Args:
        config: the service config (bus endpoints, ``solver.skeleton``, ``.options``, ``.threads``).
    """

    def __init__(self, config: Config) -> None:
        from crosspose.solver import Solver

        torch.set_num_threads(config.solver.threads)
        bus = config.bus
        # Bound here: every inference worker connects its output to it (heatmaps, and with several workers
        # the sets they start: room for one announcement beside one set's heatmaps).
        self.heatmaps = Subscriber(bus.heatmaps_endpoint, [HEATMAPS, INFLIGHT], bind=True, hwm=2)
        # Several independent readers (API, inference feedback, recorders): a full one must not hold
        # back the others, so this socket drops for the slow reader instead of counting (bus docs).
        self.skeletons = Publisher(bus.skeletons_endpoint, bind=True, hwm=max(bus.hwm, 16), count_drops=False)
        self.status = Publisher(bus.status_endpoint, bind=False, hwm=bus.hwm)
        self.heartbeat = Heartbeat(self.status, "solver", config.supervisor.heartbeat_s)
        solver = Solver(config.solver.skeleton, options=config.solver.options)
        self.skeleton = solver.skeleton
        self.pose_step = PoseStep(solver)
        self.cameras = tuple(config.camera_names)
        self.drops = DropCounter()
        self.rate = RateMeter()
        self.solved = 0
        self.errors = 0
        self.last_solve_ms = float("nan")
        self.last_capture_ns: int | None = None  # of the last set published: older ones come too late
        self.last_persons = 0  # performers reported in the last set (several: capture.max_persons > 1)
        self.outside_volume = 0  # solved performers not reported: their root outside the capture volume
        self._ready: list[Message] = []  # heatmaps received and not solved yet
        self._arrived: dict[int, int] = {}  # id of a ready message → when it came (monotonic ns)
        self._inflight: dict[int, tuple[int, int]] = {}  # worker → (capture ns of its set, when announced)
        self._awaited: set[int] = set()  # capture times of older sets the newest ready set waits for
        self._held_since: int | None = None  # when the newest ready set began to wait (monotonic ns)
        self.hold_ns = int(config.solver.hold_ms * 1e6)  # the longest it waits
        self.held = 0  # sets held for an older one in flight
        self.held_in_time = 0  # older sets that arrived within the hold and were published first
        self.live = LiveMotion.from_config(config, self.skeleton)

    def step(self, timeout_ms: int = 100) -> dict[str, Any] | None:
        """Solve the next heatmaps in capture order (waiting up to ``timeout_ms`` for some): the newest
        queued, or an older set a held newer one waited for; returns the message published (None: nothing
        due yet, or the set was dropped)."""
        self._receive(timeout_ms)
        msg = self._next()
        out = None
        if msg is not None:
            out = self._solve(msg.header, msg.buffers, self._arrived.pop(id(msg), None))
        self.heartbeat.maybe_send(self.payload())
        return out

    def _receive(self, timeout_ms: int) -> None:
        """Everything queued: heatmaps into the ready list, announcements into the in-flight table. Waits
        for a first message up to ``timeout_ms`` when nothing is ready, up to the end of the hold while a
        set is held, not at all when a set is due."""
        if self._ready:
            held_until = None if self._held_since is None else self._held_since + self.hold_ns
            left_ms = 0 if held_until is None else -(-(held_until - time.monotonic_ns()) // 1_000_000)
            timeout_ms = max(0, min(timeout_ms, left_ms))
        msg = self.heatmaps.recv(timeout_ms)
        while msg is not None:
            if msg.topic == INFLIGHT:
                self._announced(msg)
            else:
                t = _capture_ns(msg)
                self._inflight = {k: v for k, v in self._inflight.items() if v[0] != t}
                self._ready.append(msg)
                self._arrived[id(msg)] = time.monotonic_ns()
            msg = self.heatmaps.recv(0)

    def _announced(self, msg: Message) -> None:
        try:
            started = parse_inflight(msg.header)
        except MessageError as err:
            self.errors += 1
            self.drops.count("heatmaps", err.reason)
            log.warning("dropped a %s inflight message: %s", err.reason, err)
            return
        if started.t_capture_ns <= time.monotonic_ns() + FUTURE_NS:  # one from the future would hold all
            self._inflight[started.worker] = (started.t_capture_ns, time.monotonic_ns())

    def _next(self) -> Message | None:
        """The ready set to solve now, the others older than it skipped (``busy``); None while nothing is
        ready or the newest set is held for an older one in flight (``hold_ns`` at most)."""
        if not self._ready:
            return None
        newest = max(self._ready, key=_capture_ns)
        t_newest, last, now = _capture_ns(newest), self.last_capture_ns, time.monotonic_ns()
        older = {t for t, since in self._inflight.values()
                 if (last is None or t > last) and t < t_newest and now - since < INFLIGHT_MAX_AGE_NS}
        if older and self.hold_ns > 0:
            if self._held_since is None:
                self._held_since = now
                self.held += 1
            self._awaited |= older
            if now < self._held_since + self.hold_ns:
                return None
        # The older sets waited for that came, oldest first; then the newest.
        came = sorted((m for m in self._ready if _capture_ns(m) in self._awaited), key=_capture_ns)
        pick = came[0] if came else newest
        t_pick = _capture_ns(pick)
        if came:
            self.held_in_time += 1
        self.heatmaps.skipped += sum(1 for m in self._ready if m is not pick and _capture_ns(m) <= t_pick)
        self._ready = [m for m in self._ready if _capture_ns(m) > t_pick]
        self._arrived = {id(m): self._arrived[id(m)] for m in (pick, *self._ready) if id(m) in self._arrived}
        self._awaited = {t for t in self._awaited if t > t_pick}
        if not self._ready:
            self._held_since = None
            self._awaited.clear()
        return pick

    def _solve(self, header: dict[str, Any], buffers: list[Any], arrived_ns: int | None = None
               ) -> dict[str, Any] | None:
        """Solve and publish one set's heatmaps (``arrived_ns``: when they came, for ``latency_ms``)."""
        t0 = time.monotonic_ns()
        try:
            # Several performers: the others' arrays follow the message's own two (runtime.persons_bus).
            own = buffers[:2] if "persons" in header else buffers
            received = parse_heatmaps(header, own, cameras=self.cameras, joints=self.skeleton.num_joints)
        except MessageError as err:
            self.errors += 1
            self.drops.count("heatmaps", err.reason)
            log.warning("dropped a %s heatmaps message: %s", err.reason, err)
            return None
        try:  # the capture volume every solved root is checked against (persons_bus; None: none)
            volume = volume_of(header)
            if "persons" in header:  # several performers (capture.max_persons > 1): persons_bus's fields
                entries = read_persons(header, buffers, received, cameras=self.cameras,
                                       joints=self.skeleton.num_joints)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            reason = err.reason if isinstance(err, MessageError) else "malformed"
            self.errors += 1
            self.drops.count("heatmaps", reason)
            log.warning("dropped a %s heatmaps message: %s", reason, err)
            return None
        if self._out_of_order(received.t_capture_ns):
            return None
        if "persons" in header:  # several performers: each solved with their own state (possibly none)
            solved = solve_persons(self.pose_step, entries, volume, seq=received.seq,
                                   t_capture_ns=received.t_capture_ns, skeleton=self.skeleton)
        else:
            # The capture time: a previous pose too old to track from (the stage fell behind) → cold search.
            solved = solve_one(self.pose_step, received, volume, skeleton=self.skeleton)
        # The tracks go back to inference first: the next frame set's crops wait for them.
        for track in solved.tracks:
            self.skeletons.send(TRACK, *track.message())
        self.outside_volume += solved.outside
        solve_ms = (time.monotonic_ns() - t0) / 1e6
        self.last_solve_ms = solve_ms
        return self.publish(header, solved.persons, solve_ms, waited_ms(header, arrived_ns, t0))

    def publish(
        self, header: dict[str, Any], persons: list[tuple[int, Any]], solve_ms: float,
        waited: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The live outputs of one solved frame set and its skeleton message: ``persons`` the performers
        solved, ``[(id, Pose3D)]`` (possibly empty); each performer's joints filtered and rotated with
        their own state (:class:`LiveMotion` keys it by id), VMC sent, then the message published.
        ``waited``: the ``transport`` and ``hold`` parts of its ``latency_ms`` (:func:`waited_ms`)."""
        t_s = int(header["t_capture_ns"]) / 1e9
        self.last_persons = len(persons)
        persons = self.live.filter_persons(t_s, persons)
        frames = self.live.update_persons(t_s, persons)
        latency = dict(header.get("latency_ms") or {})
        latency.update(waited or {})
        latency["solve"] = solve_ms
        message = skeleton_message(
            persons=persons,
            skeleton=self.skeleton.name,
            seq=int(header["seq"]),
            t_capture_ns=int(header["t_capture_ns"]),
            cameras=header["cameras"],
            latency_ms=latency,
            calibration_version=header.get("calibration_version"),
        )
        # The VMC bundles leave as soon as the message is stamped, before the bus publication.
        self.live.send_vmc_persons(message["seq"], message["t_publish_ns"], persons)
        if self.live.rotations_enabled:
            live = self.live
            attach_rotations(message, {i: None if f is None else rotations_payload(
                live.bones, live.unity_bones, live.parents, f.offsets, f.root, f.rotations
            ) for i, f in frames.items()})
        self.skeletons.send(SKELETON, message)
        self.solved += 1
        self.rate.tick()
        return message

    def _out_of_order(self, t_capture_ns: int) -> bool:
        """Whether a set must not be published (dropped and counted): captured no later than the last one
        published (``stale``: a worker finished it after a newer set), or stamped from the future."""
        if t_capture_ns > time.monotonic_ns() + FUTURE_NS:
            self.drops.count("heatmaps", "future")
            return True
        if self.last_capture_ns is not None and t_capture_ns <= self.last_capture_ns:
            self.drops.count("heatmaps", "stale")
            return True
        self.last_capture_ns = t_capture_ns
        return False

    def payload(self) -> dict[str, Any]:
        counters = self.heatmaps.counters
        return {
            "fps": round(self.rate.rate(), 2),
            "solved": self.solved,
            "drops": int(counters.get("skipped", 0))
            + int(counters.get("dropped_malformed", 0))
            + self.errors + self.drops.total("stale") + self.drops.total("future"),
            "solve_ms": None if self.last_solve_ms != self.last_solve_ms else round(self.last_solve_ms, 2),
            "held": self.held,
            "held_in_time": self.held_in_time,
            "publisher": self.skeletons.counters,
            "input_drops": self.drops.payload(
                {"heatmaps": {**self.heatmaps.drops, "busy": self.heatmaps.skipped}}
            ),
            "live": self.live.stats(),
            "persons": self.last_persons,
            "ids_started": self.pose_step.ids_started,
            "ids_ended": self.pose_step.ids_ended,
            "outside_volume": self.outside_volume,
        }

    def close(self) -> None:
        for sock in (self.heatmaps, self.skeletons, self.status):
            sock.close()
        self.live.close()


def waited_ms(header: dict[str, Any], arrived_ns: int | None, t_solve_ns: int) -> dict[str, float]:
    """Where a set's heatmaps waited between their worker and the solve, ms on the host monotonic clock:
    ``transport`` (the worker's send → this stage took them off its socket: encoding, the socket, and the
    solve of a set before them still running here) and ``hold`` (taken off the socket → their solve began:
    held for an older set in flight, or behind an older set that came with them). Empty when the arrival is
    not known; ``transport`` only when the worker's ``sync``, ``queue`` and ``inference`` (capture → sent)
    are in the header."""
    if arrived_ns is None:
        return {}
    out = {"hold": (t_solve_ns - arrived_ns) / 1e6}
    lat = header.get("latency_ms") or {}
    parts = [lat.get(k) for k in ("sync", "queue", "inference")]
    if all(isinstance(v, (int, float)) for v in parts):
        sent_ms = sum(float(v) for v in parts if v is not None)
        out["transport"] = (arrived_ns - int(header["t_capture_ns"])) / 1e6 - sent_ms
    return out


def _capture_ns(msg: Message) -> int:
    """A queued message's capture time as its unchecked header says (-1 when it says nothing usable: the
    parser refuses that message if it is picked)."""
    t = msg.header.get("t_capture_ns")
    return t if isinstance(t, int) and not isinstance(t, bool) else -1


def run_solver(stop: Event, config: Config) -> None:
    """Process entry point (see :mod:`crosspose.runtime.supervisor`)."""
    stage = SolverStage(config)
    log.info("solver ready (options %s)", config.solver.changed_options() or "default")
    run_until_stopped(stop, stage)
