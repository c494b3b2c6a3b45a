"""The recorder stage: takes on disk from the live bus, without slowing the live stream down.

Where its data comes from:

* **Frame sets**: sync publishes every assembled frame set a second time on the recording tap
  (``recording.tap_endpoint``, :class:`crosspose.sync.process.SyncStage`) — a plain PUB, deep queue, separate
  from the ``frameset.`` socket whose depth of one makes inference "latest wins". So the recorder gets
  every set even while inference skips most of them, and a slow recorder only loses its own sets
  (counted as ``lost`` by set number in the take's manifest), never the live stream's. The recorder
  subscribes to the tap only while a take is recording; otherwise the tap costs one dropped send.
* **Skeletons**: its own subscription to ``skeleton.`` (the solver publishes with per-reader drops).
* **Control**: ``control.recording.`` commands from the API (start/stop) and
  ``control.calibration.updated.`` (the calibration in force, saved into the take).

It reports on ``status.recorder.`` every heartbeat and at once after every state change, with what it
refused by input (``control``, ``frameset``, ``skeleton``) and reason in ``input_drops``
(:mod:`crosspose.bus.drops`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from multiprocessing.synchronize import Event
from typing import Any

from crosspose.bus import DropCounter, Message, MessageError, Publisher, Subscriber
from crosspose.bus.schema import (
    CALIBRATION_UPDATED,
    FRAMESET,
    RECORDER_STATUS,
    RECORDING_CONTROL,
    SKELETON,
    parse_calibration,
    parse_frameset,
    parse_recording,
    parse_skeleton,
    status_message,
)
from crosspose.config import Config
from crosspose.recording.take import TakeError, TakeStore, TakeWriteError, check_name
from crosspose.recording.writer import TakeWriter
from crosspose.runtime.heartbeat import Heartbeat
from crosspose.runtime.stage import run_until_stopped

log = logging.getLogger(__name__)


class RecorderStage:
    """Sockets, the current take and counters of the recorder process (usable in-process for tests)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rc = config.recording
        bus = config.bus
        self.store = TakeStore(self.rc.store)  # its folder is created with the first take
        repaired = self.store.repair_interrupted()
        if repaired:
            log.warning("takes interrupted by a dead recorder, kept up to their last flush: %s", repaired)
        self.control = Subscriber(
            bus.control_endpoint, [RECORDING_CONTROL, CALIBRATION_UPDATED], bind=False, hwm=64
        )
        self.status = Publisher(bus.status_endpoint, bind=False, hwm=16)
        self.heartbeat = Heartbeat(self.status, "recorder", config.supervisor.heartbeat_s)
        self.writer: TakeWriter | None = None
        self.tap: Subscriber | None = None
        self.skeletons: Subscriber | None = None
        self.last: dict[str, Any] | None = None  # the last finished take: id, state, error
        self.stop_ns: int | None = None  # a stop was requested at this monotonic time
        self.drops = DropCounter()
        self.calibration: tuple[int | None, str | None, str] | None = self._initial_calibration()

    def _initial_calibration(self) -> tuple[int | None, str | None, str] | None:
        from crosspose.calibration import dumps_rig
        from crosspose.runtime.calibration import open_calibration_store

        try:
            active = open_calibration_store(self.config).active()
        except Exception as err:  # the recorder still records frames without one
            log.warning("recorder: no calibration to save with takes: %s", err)
            return None
        if active is None:
            return None
        return active.version, active.sha256, dumps_rig(active.rig, "crosspose").decode()

    # -- control -----------------------------------------------------------------------------------
    def _handle_control(self, msg: Message) -> None:
        try:
            if msg.topic.startswith(CALIBRATION_UPDATED):
                update = parse_calibration(msg.header)
                self.calibration = (update.version, update.sha256, update.rig)
                if self.writer is not None:
                    self._guarded(lambda w: w.set_calibration(*self.calibration))
                return
            command = parse_recording(msg.header)
        except MessageError as err:
            self.drops.count("control", err.reason)
            log.warning("recorder: ignored a control message: %s", err)
            return
        if command.action == "start":
            self.start(command.take_id, command.name or command.take_id, command.metadata or {},
                       command.max_bytes)
        else:
            self.request_stop(command.take_id)

    def start(
        self, take_id: str, name: str, metadata: Mapping[str, Any], max_bytes: int | None = None
    ) -> None:
        """Open take ``take_id`` and subscribe to the tap and the skeletons."""
        if self.writer is not None:
            log.warning("start of take %s ignored: take %s is recording", take_id, self.writer.manifest["id"])
            return
        cap = self.rc.max_take_bytes
        if isinstance(max_bytes, int) and max_bytes > 0:
            cap = max_bytes if cap is None else min(cap, max_bytes)
        try:
            check_name(name)
            self.writer = TakeWriter(
                self.store.path(take_id),
                take_id=take_id,
                name=name,
                metadata=metadata,
                cameras=self.config.camera_names,
                config=self.config.model_dump(mode="json", by_alias=True),
                frames=self.rc.frames,
                jpeg_quality=self.rc.jpeg_quality,
                flush_s=self.rc.flush_s,
                max_bytes=cap,
                min_free_bytes=self.rc.min_free_bytes,
                encode_threads=self.rc.encode_threads,
            )
            if self.calibration is not None:
                self.writer.set_calibration(*self.calibration)
        except (TakeError, TakeWriteError) as err:
            self.writer = None
            self.last = {"id": take_id, "state": "failed", "error": str(err)}
            log.error("take %s could not start: %s", take_id, err)
            self.send_status()
            return
        bus = self.config.bus
        self.tap = Subscriber(
            self.rc.tap_endpoint(bus), [FRAMESET], bind=False, hwm=max(2, self.rc.queue_sets // 2)
        )
        self.skeletons = Subscriber(bus.skeletons_endpoint, [SKELETON], bind=False, hwm=1000)
        log.info("recording take %s (%s) into %s", take_id, name, self.writer.folder)
        self.send_status()

    def request_stop(self, take_id: str) -> None:
        """Stop take ``take_id`` once every frame set sync emitted before now is written (the recorder
        may be behind: it reports ``stopping`` meanwhile); later sets are not part of the take."""
        w = self.writer
        if w is None or w.manifest["id"] != take_id or self.stop_ns is not None:
            return
        self.stop_ns = time.monotonic_ns()
        self.send_status()

    def stop(self, take_id: str | None = None, state: str = "stopped", error: str | None = None) -> None:
        """Finish the current take now (what is written so far) and unsubscribe."""
        w = self.writer
        if w is None or (take_id is not None and w.manifest["id"] != take_id):
            return
        self.writer = None
        self.stop_ns = None
        manifest = w.close(state, error)
        for sock in (self.tap, self.skeletons):
            if sock is not None:
                sock.close()
        self.tap = self.skeletons = None
        self.last = {"id": manifest["id"], "state": manifest["state"], "error": manifest["error"]}
        fs = manifest["framesets"]
        (log.info if manifest["state"] == "stopped" else log.error)(
            "take %s %s: %d frame sets written of %d received, %d lost%s",
            manifest["id"],
            manifest["state"],
            fs["written"],
            fs["received"],
            fs["lost"],
            f" ({manifest['error']})" if manifest["error"] else "",
        )
        self.send_status()

    def _guarded(self, fn: Any, source: str = "frameset") -> bool:
        """Run ``fn(writer)``; a write error ends the take as ``failed`` (the service keeps running); a
        malformed message of ``source`` is dropped and counted."""
        w = self.writer
        if w is None:
            return False
        try:
            fn(w)
        except (TakeWriteError, OSError) as err:
            self.stop(state="failed", error=str(err))
            return False
        except (ValueError, KeyError, TypeError) as err:  # a malformed message: counted, not fatal
            w.manifest.setdefault("malformed", 0)
            w.manifest["malformed"] += 1
            self.drops.count(source, err.reason if isinstance(err, MessageError) else "malformed")
            log.warning("recorder: dropped a malformed message: %s", err)
        return True

    # -- data ----------------------------------------------------------------------------------------
    def _drain(self, limit: int | None = 16) -> int:
        """Write what the tap has queued (at most ``limit`` sets) and the skeletons; returns sets written."""
        n = 0
        while self.writer is not None and self.tap is not None and (limit is None or n < limit):
            msg = self.tap.recv(0)
            if msg is None:
                break
            t_emit = msg.header.get("t_emit_ns")
            if self.stop_ns is not None and isinstance(t_emit, int) and t_emit > self.stop_ns:
                self.stop()  # every set emitted before the stop request is written
                return n
            if not self._guarded(lambda w, m=msg: w.add_frameset(_checked_frameset(m), m.buffers)):
                return n
            n += 1
        while self.writer is not None and self.skeletons is not None:
            sk = self.skeletons.recv(0)
            if sk is None:
                break
            if not self._guarded(lambda w, m=sk: w.add_skeleton(parse_skeleton(m.header)), "skeleton"):
                break
        return n

    def step(self, timeout_ms: int = 20) -> int:
        """One round: control, queued data, flush when due, heartbeat. Returns frame sets written."""
        while (ctl := self.control.recv(0)) is not None:
            self._handle_control(ctl)
        n = 0
        if self.writer is not None:
            n = self._drain()
            if self.writer is not None and self.stop_ns is not None and n == 0:
                self.stop()  # stop requested and nothing older queued
            if self.writer is not None:
                self._guarded(lambda w: w.maybe_flush())
            if n == 0 and self.tap is not None:
                msg = self.tap.recv(min(timeout_ms, 5))
                if msg is not None:
                    n += int(self._guarded(lambda w: w.add_frameset(_checked_frameset(msg), msg.buffers)))
        else:
            ctl = self.control.recv(timeout_ms)
            if ctl is not None:
                self._handle_control(ctl)
        self.heartbeat.maybe_send(self.payload())
        return n

    def payload(self) -> dict[str, Any]:
        """The ``status.recorder.`` fields: state, current take and its counters, the last take."""
        w = self.writer
        out: dict[str, Any] = {
            "state": "idle" if w is None else ("recording" if self.stop_ns is None else "stopping"),
            "take": None if w is None else w.manifest["id"],
            "last": self.last,
            "error": None if self.last is None else self.last.get("error"),
            "store": str(self.store.folder),
            "input_drops": self.drops.payload(
                {"control": self.control.drops},
                {"frameset": self.tap.drops} if self.tap is not None else {},
                {"skeleton": self.skeletons.drops} if self.skeletons is not None else {},
            ),
        }
        if w is not None:
            fs = w.manifest["framesets"]
            out["counters"] = {
                "framesets_received": fs["received"],
                "framesets_written": fs["written"],
                "framesets_lost": fs["lost"],
                "skeletons": w.manifest["skeletons"]["written"],
                "bytes": w.bytes,
            }
            if self.tap is not None:
                out["tap"] = self.tap.counters
        return out

    def send_status(self) -> None:
        """Publish ``status.recorder.`` now (after a state change)."""
        self.status.send(RECORDER_STATUS, status_message("recorder", self.payload()))

    def close(self) -> None:
        """Finish a take still recording (what is queued, for at most 2 s; state ``stopped``) and close."""
        if self.writer is not None:
            self.stop_ns = time.monotonic_ns()
            deadline = time.monotonic() + 2.0
            while self.writer is not None and self._drain() > 0 and time.monotonic() < deadline:
                pass
            self.stop(state="stopped", error=None)
        for sock in (self.control, self.tap, self.skeletons):
            if sock is not None:
                sock.close()
        self.status.close(linger_ms=200)


def _checked_frameset(msg: Message) -> dict[str, Any]:
    """A tap message's header once :func:`parse_frameset` accepts it (a bad one raises, counted as
    malformed by the writer's guard)."""
    parse_frameset(msg.header, msg.buffers)
    return msg.header


def run_recorder(stop: Event, config: Config) -> None:
    """Process entry point (see :mod:`crosspose.runtime.supervisor`)."""
    import os

    import cv2

    cv2.setNumThreads(1)
    if config.recording.nice and hasattr(os, "nice"):
        os.nice(config.recording.nice)  # 0 by default: a starved recorder loses sets for good
    stage = RecorderStage(config)
    log.info("recorder ready: takes in %s, frames as %s", stage.store.folder, config.recording.frames)
    run_until_stopped(stop, stage, timeout_ms=20)
