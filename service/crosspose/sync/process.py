"""The sync process: SUB (bound) on the frames endpoint → :class:`FrameSetAssembler` → PUB frame sets,
each to one idle inference worker (``frameset.<k>.``, :class:`~crosspose.sync.dispatch.WorkerDispatch`).

Grabbers' ``status.grabber.<cam>.`` messages arrive on the same link and are relayed to the
status endpoint, where sync also publishes ``status.sync.`` about once a second.

Everything that arrives is checked before it is used: by the schema's parsers (configured cameras
only) and, for a frame, its capture time against this host's clock and the camera's own recent
frames (:class:`~crosspose.sync.clock.CameraClock`). What fails is dropped and counted per camera
and reason in the heartbeat's ``input_drops`` (:mod:`crosspose.bus.drops`); nothing a message holds
ends the stage.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import zmq

from crosspose.bus import (
    CurveServer,
    DropCounter,
    DropReason,
    Message,
    MessageError,
    Publisher,
    Subscriber,
    recv_any,
)
from crosspose.bus.schema import (
    FRAME,
    FRAMESET,
    GRABBER_STATUS,
    SYNC_STATUS,
    parse_frame,
    parse_status,
    status_message,
)
from crosspose.capture.grabber import StopEvent
from crosspose.config import Config
from crosspose.sync.assembler import FrameSet, FrameSetAssembler
from crosspose.sync.clock import CameraClock
from crosspose.sync.dispatch import WorkerDispatch

log = logging.getLogger(__name__)


class SyncStage:
    """Sockets around a :class:`FrameSetAssembler`; :meth:`step` handles one receive/poll round.

    The frames socket binds (grabbers connect in, CURVE when ``config.bus.curve`` is set); the
    frame-set PUB binds ``framesets_endpoint``; the status PUB connects to ``status_endpoint``.
    """

    def __init__(self, config: Config, *, status_interval_s: float | None = None) -> None:
        bus = config.bus
        self.config = config
        self.assembler = FrameSetAssembler(
            config.camera_names, config.sync_tolerance_ns(), config.sync_max_wait_ns()
        )
        self.cameras = tuple(config.camera_names)
        self._remote = {c.name for c in config.cameras if c.remote}
        tolerance = config.sync_tolerance_ns()
        self.clocks = {
            c.name: CameraClock(
                remote=c.remote,
                future_ns=tolerance,
                max_age_ns=int(config.sync.max_frame_age_ms * 1e6),
                agree_ns=4 * tolerance,
            )
            for c in config.cameras
        }
        self.drops = DropCounter()
        self.status_interval_s = status_interval_s or config.supervisor.heartbeat_s
        self.grabbers: dict[str, dict[str, Any]] = {}
        curve = None
        if bus.curve is not None:
            curve = CurveServer(bus.curve.server_secret_key, bus.curve.client_public_keys)
        # The frames socket queues one frame per camera per HWM slot.
        self.frames = Subscriber(
            bus.frames_endpoint,
            (FRAME, GRABBER_STATUS),
            bind=True,
            hwm=bus.hwm * len(config.cameras),
            curve=curve,
        )
        # With CURVE on, the grabbers the service starts itself hold no client key: they use a second,
        # unauthenticated local (ipc) endpoint. Remote grabbers still need a listed key.
        self.local_frames: Subscriber | None = None
        try:
            if curve is not None:
                self.local_frames = Subscriber(
                    bus.local_frames_endpoint,
                    (FRAME, GRABBER_STATUS),
                    bind=True,
                    hwm=bus.hwm * len(config.cameras),
                )
        except Exception:
            self.frames.close()
            raise
        try:
            # One frame set in flight per inference worker, and only to an idle one: while every worker is
            # busy the newest set waits here and older ones are dropped (counted), so latency never builds
            # up in queues (latest wins).
            self.framesets = Publisher(bus.framesets_endpoint, bind=True, hwm=1)
            self.dispatch = WorkerDispatch(self.framesets)
            self.status_pub = Publisher(bus.status_endpoint, bind=False, hwm=bus.hwm)
            # The recording tap: EVERY frame set again, for the recorder's takes, on a deep queue of its
            # own (half on each side of the link), so neither the live stream nor a slow recorder holds
            # up the other; with no recorder subscribed nothing is sent.
            self.tap: Publisher | None = None
            if config.recording.enabled:
                rec = config.recording
                self.tap = Publisher(rec.tap_endpoint(bus), bind=True, hwm=max(2, rec.queue_sets // 2),
                                     count_drops=False)
        except Exception:
            self.frames.close()
            if self.local_frames is not None:
                self.local_frames.close()
            raise
        self._next_status = 0.0
        self._received_at = (time.monotonic_ns(), {c: 0 for c in config.camera_names})

    def _publish(self, sets: list[FrameSet]) -> None:
        for fs in sets:
            header, buffers = fs.header(), fs.present_buffers()
            self.dispatch.offer(header, buffers)
            if self.tap is not None:
                self.tap.send(FRAMESET, header, buffers)

    def _wait(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for a frame, or, while a set waits for a worker, for a worker's
        subscription change too (it is sent the set as soon as it comes free)."""
        poller = zmq.Poller()
        for sub in (self.frames, self.local_frames):
            if sub is not None:
                poller.register(sub.poll_socket(), zmq.POLLIN)
        if self.dispatch.waiting:
            poller.register(self.framesets.poll_socket(), zmq.POLLIN)
        poller.poll(timeout_ms)

    def step(self, timeout_ms: int = 5) -> int:
        """Receive what arrives within ``timeout_ms`` (or until a set is due), emit ready sets and hand a set
        waiting for a worker to one that came free; returns the number of sets published."""
        self._wait(timeout_ms)
        if self.local_frames is None:
            msg, local = self.frames.recv(0), False
        else:
            got = recv_any([self.frames, self.local_frames], 0)
            msg, local = (None, False) if got is None else (got[1], got[0] == 1)
        now = time.monotonic_ns()
        sets: list[FrameSet] = []
        if msg is not None:
            sets = self._receive(msg, now, local)
        sets += self.assembler.poll(time.monotonic_ns())
        self._publish(sets)
        self.dispatch.poll()
        if time.monotonic() >= self._next_status:
            self.publish_status()
        return len(sets)

    def _receive(self, msg: Message, now_ns: int, local: bool = False) -> list[FrameSet]:
        """Check one message from the frames link (``local``: from the local endpoint) and use it; a
        refused one is counted, not raised."""
        try:
            if msg.topic.startswith(GRABBER_STATUS):
                status = parse_status(msg.header, msg.topic, cameras=self.cameras)
                self._check_link(status["camera"], local)
                self.grabbers[status["camera"]] = status
                self.status_pub.send(msg.topic, status)
                return []
            frame = parse_frame(msg.header, msg.buffers, cameras=self.cameras)
            self._check_link(frame.camera, local)
        except MessageError as err:
            self._drop(self._source(msg.topic), err.reason, f"{msg.topic!r}: {err}")
            return []
        if frame.camera != self._source(msg.topic):  # a camera's frames travel on its own topic
            self._drop(self._source(msg.topic), "foreign", f"a frame of {frame.camera} on {msg.topic!r}")
            return []
        placed = self.clocks[frame.camera].place(frame.t_capture_ns, now_ns)
        if isinstance(placed, str):
            self._drop(frame.camera, placed, f"frame {frame.camera}#{frame.seq} stamped "
                       f"{(frame.t_capture_ns - now_ns) / 1e9:+.3f} s from arrival")
            return []
        return self.assembler.add(msg.header, msg.buffers[0], now_ns, t_ns=placed)

    def _source(self, topic: bytes) -> str:
        """The configured camera a topic belongs to (``frame.<cam>.``, ``status.grabber.<cam>.``), else
        ``other``: the drop counts' sources stay the configured cameras whatever arrives."""
        for prefix in (FRAME, GRABBER_STATUS):
            if topic.startswith(prefix):
                name = topic[len(prefix):-1].decode("ascii", "replace")
                if topic.endswith(b".") and name in self.clocks:
                    return name
        return "other"

    def _drop(self, source: str, reason: DropReason, detail: str) -> None:
        self.drops.count(source, reason)
        log.debug("sync: dropped a %s message: %s", reason, detail)

    def input_drops(self) -> dict[str, dict[str, int]]:
        """The heartbeat's ``input_drops`` (:mod:`crosspose.bus.drops`): per camera (and ``other``) and
        reason — the messages refused here, the frames the assembler dropped (stale, out of order:
        ``stale``; its queue overflowing: ``busy``) and what the frames sockets could not decode."""
        assembler = {
            cam: {"stale": st.dropped_stale + st.dropped_out_of_order, "busy": st.dropped_overflow}
            for cam, st in self.assembler.stats.items()
        }
        sockets = [{"other": s.drops} for s in (self.frames, self.local_frames) if s is not None]
        foreign = {"other": {"foreign": self.assembler.dropped_foreign}}
        return self.drops.payload(assembler, foreign, *sockets)

    def _check_link(self, camera: str, local: bool) -> None:
        """With CURVE on, a camera's frames and heartbeats count only from the link they belong to: a
        remote one's from the authenticated endpoint, one this host grabs from the local one (anyone on
        the studio network who reaches the TCP port cannot speak for a local camera).

        Raises:
            MessageError: ``foreign``.
        """
        if self.local_frames is not None and local == (camera in self._remote):
            where = "the local endpoint" if local else "the TCP endpoint"
            raise MessageError(f"camera {camera!r} does not send on {where}", reason="foreign",
                               field="camera")

    def status(self) -> dict[str, Any]:
        """The ``status.sync.`` header: assembler counters (per camera also ``arrival_fps``, the frames
        that arrived per second since the previous status), socket counters, grabber states."""
        now = time.monotonic_ns()
        st = self.assembler.status(now)
        received = {c: s.received for c, s in self.assembler.stats.items()}
        (t_before, before), self._received_at = self._received_at, (now, received)
        dt = (now - t_before) / 1e9
        for cam, cam_stats in st["cameras"].items():
            n = before.get(cam)
            rate = (received[cam] - n) / dt if n is not None and dt > 0 else None
            cam_stats["arrival_fps"] = None if rate is None else round(rate, 2)
        for cam, g in self.grabbers.items():
            if cam in st["cameras"]:
                st["cameras"][cam]["grabber_state"] = g.get("state")
        for cam, clock in self.clocks.items():
            st["cameras"][cam]["clock_resyncs"] = clock.resyncs
        st["input_drops"] = self.input_drops()
        st["dropped_foreign"] = sum(by.get("foreign", 0) for by in st["input_drops"].values())
        st["frames_socket"] = self.frames.counters
        if self.local_frames is not None:
            st["local_frames_socket"] = self.local_frames.counters
        if self.tap is not None:
            st["recording_tap"] = self.tap.counters
        st["framesets_socket"] = self.framesets.counters
        st["dispatch"] = self.dispatch.counters
        return status_message("sync", st)

    def publish_status(self) -> None:
        """Send ``status.sync.`` now."""
        self.status_pub.send(SYNC_STATUS, self.status())
        self._next_status = time.monotonic() + self.status_interval_s

    def close(self) -> None:
        """Close every socket."""
        self.frames.close()
        if self.local_frames is not None:
            self.local_frames.close()
        self.framesets.close()
        if self.tap is not None:
            self.tap.close()
        self.status_pub.close(linger_ms=500)  # the final counters


def run_sync(config: Config, stop_event: StopEvent | None = None) -> None:
    """Process entry point: assemble and publish frame sets until ``stop_event`` is set."""
    stop = stop_event if stop_event is not None else threading.Event()
    stage = SyncStage(config)
    log.info(
        "sync: %d cameras, tolerance %.1f ms, frames on %s",
        len(config.cameras),
        config.sync_tolerance_ns() / 1e6,
        stage.frames.endpoint,
    )
    try:
        while not stop.is_set():
            stage.step(timeout_ms=5)
        stage.publish_status()  # the final counters
    finally:
        stage.close()
