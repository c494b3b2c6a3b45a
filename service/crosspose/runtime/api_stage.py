"""The API stage: uvicorn serving :func:`crosspose.api.create_app`, fed from the bus.

One thread subscribes to ``skeleton.`` (→ ``state.hub``) and ``status.`` (→ ``state.status``, the
stages' heartbeats, translated to the keys the status board reads); accepted calibration uploads are
published on the control plane (``control.calibration.updated.``) for the inference stage.
The API binds the status and control endpoints; every other stage connects to them.

What the thread receives is checked by the schema's parsers; what fails is dropped and counted by
input (``skeleton``, ``status``, ``preview``) and reason, shown in ``/metrics`` as stage ``api``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from multiprocessing.synchronize import Event
from typing import Any

from crosspose.bus import DropCounter, Message, MessageError, Publisher, Subscriber, shutdown
from crosspose.bus.schema import (
    CALIBRATION_UPDATED,
    PREVIEW,
    RECORDING_CONTROL,
    SKELETON,
    STATUS,
    calibration_message,
    parse_preview,
    parse_skeleton,
    parse_status,
)
from crosspose.config import Config
from crosspose.runtime import calibration_feed
from crosspose.runtime.stage import WarningLimiter
from crosspose.runtime.workers import inference_workers

log = logging.getLogger(__name__)

_GRABBER_STATE = {
    "running": "up",
    "reconnecting": "reconnecting",
    "ended": "down",
    "starting": "reconnecting",
    "stopped": "down",
    "error": "down",
}


def translate_status(header: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(stage, payload)`` for the status board from a ``status.`` message header (None: not one).
    Whatever the header holds, this returns or says None; the board judges the values."""
    stage = header.get("stage")
    if not isinstance(stage, str):
        return None
    if stage == "grabber":
        camera = header.get("camera")
        if not isinstance(camera, str):
            return None
        payload = dict(header)
        payload["state"] = _GRABBER_STATE.get(str(header.get("state")), "down")
        payload["drops"] = header.get("dropped", header.get("drops", 0))
        return f"grabber.{camera}", payload
    if stage == "sync":
        payload = dict(header)
        cams = header.get("cameras")
        if isinstance(cams, dict):  # per-camera details → the board's {camera: value} maps
            cams = {c: v for c, v in cams.items() if isinstance(v, dict)}
            drops = {c: v.get("missing", 0) for c, v in cams.items()}
            # Frame sets sync had ready but every inference worker was still busy with an older one (latest
            # wins): superseded while waiting for a worker, or refused by a full socket.
            busy = _count(header.get("framesets_socket"), "dropped_hwm") + _count(header.get("dispatch"),
                                                                                   "superseded")
            payload["drops"] = {**drops, "(inference busy)": busy}
            payload["skew_ms"] = {c: v.get("skew_ms") for c, v in cams.items()}
            # What reached sync of each camera: the board's judge of a camera's state.
            payload["frames"] = {
                c: {"received": v.get("received"), "age_ms": v.get("arrival_age_ms"),
                    "fps": v.get("arrival_fps")}
                for c, v in cams.items()
            }
        return "sync", payload
    worker = header.get("worker")
    if stage == "inference" and isinstance(worker, int) and not isinstance(worker, bool):
        return f"inference.{worker}", dict(header)  # one worker of several
    return stage, dict(header)


def _count(section: Any, key: str) -> int:
    """A heartbeat section's counter ``key`` as a number (0 when the section or the counter is not one)."""
    value = section.get(key, 0) if isinstance(section, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class BusBridge:
    """Background thread: bus → ``ServiceState`` (skeletons to the hub, heartbeats to the board)."""

    def __init__(self, config: Config, state: Any) -> None:
        bus = config.bus
        self.state = state
        self.skeletons = Subscriber(bus.skeletons_endpoint, [SKELETON], bind=False, hwm=max(bus.hwm, 64))
        self.status = Subscriber(bus.status_endpoint, [STATUS, PREVIEW], bind=True, hwm=1000)
        self.control = Publisher(bus.control_endpoint, bind=True, hwm=16)
        self._control_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-bridge", daemon=True)
        self.forwarded = 0
        self.errors = 0
        self._warnings = WarningLimiter(log)
        self.drops = DropCounter()
        state.bus_input_drops = self.input_drops

    def start(self) -> None:
        self._thread.start()

    def publish_calibration(self, active: Any) -> None:
        """Send the accepted calibration to the pipeline (called by the API after a good upload)."""
        from crosspose.calibration import dumps_rig

        text = dumps_rig(active.rig, "crosspose").decode()
        with self._control_lock:
            self.control.send(CALIBRATION_UPDATED, calibration_message(active.version, active.sha256, text))
        log.info("calibration v%d published to the pipeline", active.version)

    def publish_recording(self, command: dict[str, Any]) -> None:
        """Send a ``control.recording.`` command (start/stop a take) to the recorder stage."""
        with self._control_lock:
            self.control.send(RECORDING_CONTROL, command)

    def input_drops(self) -> dict[str, dict[str, int]]:
        """What this thread dropped, ``{source: {reason: count}}`` (:mod:`crosspose.bus.drops`): refused
        by the parsers, or undecodable on the sockets (a status socket's go to ``status``)."""
        return self.drops.payload({"skeleton": self.skeletons.drops, "status": self.status.drops})

    def _handle_status(self, msg: Message) -> None:
        source = "preview" if msg.topic.startswith(PREVIEW) else "status"
        try:
            if source == "preview":
                preview = parse_preview(msg.header, msg.buffers)
                previews = getattr(self.state, "previews", None)
                if previews is not None:
                    previews.update(preview.camera, preview.jpeg, dict(msg.header))
                return
            header = parse_status(msg.header, msg.topic)
        except MessageError as err:
            self.drops.count(source, err.reason)
            log.debug("dropped a %s message on %r: %s", err.reason, msg.topic, err)
            return
        recordings = getattr(self.state, "recordings", None)
        if recordings is not None and header["stage"] == "recorder":
            recordings.on_status(header)
        translated = translate_status(header)
        if translated is not None:
            self.state.status.update(translated[0], translated[1], time.monotonic_ns())

    def _forward(self, msg: Message) -> None:
        try:
            message = parse_skeleton(msg.header)
        except MessageError as err:
            self.drops.count("skeleton", err.reason)
            log.debug("dropped a %s skeleton message: %s", err.reason, err)
            return
        self.state.hub.publish(message)
        self.forwarded += 1

    def step(self, timeout_ms: int = 5) -> bool:
        """Handle a queued skeleton and a queued status message, or wait up to ``timeout_ms`` for a
        skeleton; True when something arrived."""
        got = False
        skeleton = self.skeletons.recv(0)
        if skeleton is not None:
            self._guarded(self._forward, skeleton)
            got = True
        status = self.status.recv(0)
        if status is not None:
            self._guarded(self._handle_status, status)
            got = True
        if not got:
            # Block briefly on the skeleton socket (the latency-critical one).
            skeleton = self.skeletons.recv(timeout_ms)
            if skeleton is not None:
                self._guarded(self._forward, skeleton)
                got = True
        return got

    def _guarded(self, handle: Any, msg: Message) -> None:
        """One message, whatever it holds, never ends this thread (it alone feeds the hub and the board):
        a failure is a bug to log and count, and the next message is handled."""
        try:
            handle(msg)
        except Exception as err:
            self.errors += 1
            self._warnings.warn(f"bus bridge: a {msg.topic!r} message failed: {err!r}", key=repr(type(err)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        for sock in (self.skeletons, self.status, self.control):
            sock.close()


def build_state(config: Config, on_calibration_change: Any = None, send_recording: Any = None) -> Any:
    """The API's ``ServiceState`` for this config (store opened, seeded from ``calibration.file``);
    ``send_recording(command)`` publishes recorder commands (recording on when given and enabled)."""
    from crosspose.api.state import ApiSettings, ServiceState
    from crosspose.runtime.calibration import open_calibration_store
    from crosspose.skeleton import get_skeleton

    names = [c.name for c in config.cameras]
    store = open_calibration_store(config)
    token = config.api.token.get_secret_value() if config.api.token is not None else None
    settings = ApiSettings(
        token=token or None,
        max_upload_bytes=config.api.max_upload_bytes,
        ws_queue=config.api.ws_queue,
        heartbeat_timeout_s=max(2.0, 2.5 * config.supervisor.heartbeat_s),
        skeleton_timeout_s=config.api.skeleton_timeout_s,
    )
    workers = [name for name, _ in inference_workers(config)]
    stages = [f"grabber.{n}" for n in names] + ["sync", *workers, "solver"]
    try:  # the layout the solver stage publishes (the config checks the name; a copy made without checks)
        skeleton = get_skeleton(config.solver.skeleton)
    except KeyError as err:
        raise ValueError(f"solver.skeleton: {err.args[0]}") from None
    state = ServiceState(
        store, settings, cameras=names, stages=stages, on_calibration_change=on_calibration_change,
        skeleton=skeleton,
    )
    calibration_feed.install(state, config)
    if config.recording.enabled and send_recording is not None:
        from crosspose.recording.control import RecordingControl
        from crosspose.recording.take import TakeStore

        state.recordings = RecordingControl(
            TakeStore(config.recording.store),
            send_recording,
            alive_s=max(5.0, 5.0 * config.supervisor.heartbeat_s),
        )
    return state


def run_api(stop: Event, config: Config, port_file: str | None = None) -> None:
    """Process entry point: uvicorn on ``api.host:api.port`` until ``stop`` is set.

    ``port_file``: where to write the bound port (useful with ``api.port: 0``).
    """
    import uvicorn

    from crosspose.api import create_app

    holder: dict[str, BusBridge] = {}
    state = build_state(
        config,
        on_calibration_change=lambda active: holder["bridge"].publish_calibration(active),
        send_recording=lambda command: holder["bridge"].publish_recording(command),
    )
    bridge = BusBridge(config, state)
    holder["bridge"] = bridge
    app = create_app(state)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.api.host,
            port=config.api.port,
            log_level="warning",
            lifespan="on",
            ws_ping_interval=20.0,
        )
    )

    def watch() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    bridge.start()

    def report_port() -> None:
        while not server.started and not stop.is_set():
            time.sleep(0.02)
        if server.started and server.servers:
            port = server.servers[0].sockets[0].getsockname()[1]
            log.info("API listening on http://%s:%d (docs at /docs)", config.api.host, port)
            if port_file is not None:
                tmp = f"{port_file}.tmp"
                with open(tmp, "w") as f:
                    f.write(str(port))
                os.replace(tmp, port_file)

    threading.Thread(target=report_port, name="port-report", daemon=True).start()
    try:
        server.run()
    finally:
        bridge.close()
        shutdown()
