"""The whole service from one config: the stages in start order under the supervisor.

Start order: API first (it binds the status and control endpoints every stage connects to), then the
solver (binds the heatmaps endpoint), the inference workers (``inference``, or ``inference.0`` …
``inference.<N-1>``: :mod:`crosspose.runtime.workers`), sync (binds the frames endpoint) and one grabber
per local camera. Remote cameras
(``remote: true``) run ``crosspose grab`` on their own hosts and connect to the frames endpoint.

Every stage target is a function of this module that imports its stage inside (``run_inference_stage``,
``run_solver_stage``, …): a ``spawn`` child imports the module of its target to unpickle it, so a module
that imported every stage would give each process the heaviest one's libraries. The supervisor and the
light stages (grabbers, sync, API, recorder) load neither torch, ONNX Runtime nor OpenVINO
(``tests/runtime/test_light_stages.py``); ``run_api``, ``run_inference`` and ``run_solver`` are still
importable from here, on first use (PEP 562).
"""

from __future__ import annotations

import errno
import logging
import re
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosspose._lazy import lazy_getattr
from crosspose.config import CameraConfig, Config
from crosspose.runtime.bus_check import BusNotClosedError, bus_endpoints, open_bus
from crosspose.runtime.supervisor import StageSpec, Supervisor, configure_logging
from crosspose.runtime.workers import inference_workers, with_workers

if TYPE_CHECKING:
    from crosspose.runtime.api_stage import run_api as run_api
    from crosspose.runtime.inference_stage import run_inference as run_inference
    from crosspose.runtime.solver_stage import run_solver as run_solver

log = logging.getLogger(__name__)

# The stages' own entry points, for who imports them from here; loaded on first use.
__getattr__ = lazy_getattr(__name__, {"run_api": "crosspose.runtime.api_stage",
                                      "run_inference": "crosspose.runtime.inference_stage",
                                      "run_solver": "crosspose.runtime.solver_stage"}, globals())


def run_api_stage(stop: Event, config: Config, port_file: str | None = None) -> None:
    """The API stage (:func:`crosspose.runtime.api_stage.run_api`), imported in its own process."""
    from crosspose.runtime.api_stage import run_api

    run_api(stop, config, port_file)


def run_solver_stage(stop: Event, config: Config) -> None:
    """The solver stage (:func:`crosspose.runtime.solver_stage.run_solver`; torch), imported in its own
    process."""
    from crosspose.runtime.solver_stage import run_solver

    run_solver(stop, config)


def run_inference_stage(stop: Event, config: Config, worker: int | None = None) -> None:
    """One inference worker (:func:`crosspose.runtime.inference_stage.run_inference`; the network's
    runtime), imported in its own process."""
    from crosspose.runtime.inference_stage import run_inference

    run_inference(stop, config, worker)


def run_recorder_stage(stop: Event, config: Config) -> None:
    """The recorder stage (:func:`crosspose.runtime.recorder_stage.run_recorder`), imported in its own
    process."""
    from crosspose.runtime.recorder_stage import run_recorder

    run_recorder(stop, config)


def run_sync_stage(stop: Event, config: Config) -> None:
    from crosspose.bus import shutdown
    from crosspose.sync.process import run_sync

    try:
        run_sync(config, stop_event=stop)  # with the recording tap when recording is enabled
    finally:
        shutdown()


def run_grabber_stage(
    stop: Event, camera: CameraConfig, config: Config, index: int, epoch_ns: int | None = None
) -> None:
    from crosspose.bus import shutdown
    from crosspose.capture.grabber import run_grabber

    try:
        # With CURVE on, the service's own grabbers use the local endpoint (they hold no client key).
        bus = config.bus.for_local_grabbers()
        run_grabber(camera, bus, stop_event=stop, camera_index=index, num_cameras=len(config.cameras),
                    epoch_ns=epoch_ns)
    finally:
        shutdown()


def build_stages(config: Config, port_file: str | None = None) -> list[StageSpec]:
    """The supervised stages of ``config`` in start order (``inference.workers`` resolved first, so that
    every stage gets the same count)."""
    config = with_workers(config)
    workers = [StageSpec(name, run_inference_stage, (config, k)) for name, k in inference_workers(config)]
    stages = [
        StageSpec("api", run_api_stage, (config, port_file)),
        StageSpec("solver", run_solver_stage, (config,)),
        *workers,
        StageSpec("sync", run_sync_stage, (config,)),
    ]
    if config.recording.enabled:
        stages.insert(2, StageSpec("recorder", run_recorder_stage, (config,)))
    # One timeline for every video file of the service (also across grabber restarts): each shows the
    # same moment whenever its process came up (crosspose.capture.file).
    epoch_ns = time.monotonic_ns()
    for i, cam in enumerate(config.cameras):
        if not cam.remote:
            stages.append(StageSpec(f"grabber.{cam.name}", run_grabber_stage, (cam, config, i, epoch_ns)))
    return stages


class SupervisorHeartbeat:
    """``status.supervisor.``: the supervisor's restarts per stage, for the API (readiness, metrics). The
    socket is opened in the thread that runs the supervisor, at its first report."""

    def __init__(self, config: Config) -> None:
        self.endpoint = config.bus.status_endpoint
        self.hwm = config.bus.hwm
        self.interval_s = config.supervisor.heartbeat_s
        self._publisher: Any = None

    def send(self, status: dict[str, Any]) -> None:
        from crosspose.bus import Publisher
        from crosspose.bus.schema import status_message, status_topic

        if self._publisher is None:
            self._publisher = Publisher(self.endpoint, bind=False, hwm=self.hwm)
        self._publisher.send(status_topic("supervisor"), status_message("supervisor", status))

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


def make_supervisor(config: Config, port_file: str | None = None) -> Supervisor:
    """The supervisor of ``config``'s stages.

    Raises:
        BusNotClosedError: the bus would be open to others (:func:`open_bus`), nothing started.
    """
    problems = open_bus(config)
    if problems:
        raise BusNotClosedError("; ".join(problems))
    s = config.supervisor
    return Supervisor(
        build_stages(config, port_file),
        backoff_s=s.restart_backoff_s,
        backoff_max_s=s.restart_backoff_max_s,
        log_level=logging.getLevelName(config.logging.level),
        reporter=SupervisorHeartbeat(config),
    )


def _can_bind(host: str, port: int) -> OSError | None:
    """None when ``host:port`` (TCP) can be bound now (as uvicorn and ZeroMQ bind: SO_REUSEADDR), else
    the error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err
    return None


def busy_ports(config: Config) -> list[str]:
    """What the service would fail to bind, in words: the API's port and the bus's ``tcp://`` endpoints
    already taken (or not bindable) on this host. Checked before starting, so a taken port is one clear
    error instead of a stage restarted with backoff for ever."""
    wanted: list[tuple[str, str, int]] = []
    if config.api.port != 0:
        wanted.append(("the API (api.port)", config.api.host, config.api.port))
    for what, endpoint in bus_endpoints(config).items():
        m = re.match(r"^tcp://(\*|\[[^\]]+\]|[^:]+):(\d+)$", endpoint)
        if m:
            host = m.group(1).strip("[]")
            wanted.append((what, "0.0.0.0" if host == "*" else host, int(m.group(2))))
    out = []
    for what, host, port in wanted:
        err = _can_bind(host, port)
        if err is not None:
            reason = "already in use" if err.errno == errno.EADDRINUSE else err.strerror or str(err)
            out.append(f"{what}: {host}:{port} {reason}")
    return out


def serve(config: Config, port_file: str | Path | None = None) -> None:
    """Run the service until SIGINT/SIGTERM (blocking)."""
    configure_logging(config.logging.level)
    Path(config.calibration.store).mkdir(parents=True, exist_ok=True)
    log.info(
        "crosspose service: %d cameras (%s), inference backend %s",
        len(config.cameras),
        ", ".join(c.name for c in config.cameras),
        config.inference.backend,
    )
    make_supervisor(config, None if port_file is None else str(port_file)).run()
