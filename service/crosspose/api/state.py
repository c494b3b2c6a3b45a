"""What the API serves from: the skeleton hub, the status board, the calibration store and its settings.

The runtime builds one ``ServiceState``, feeds it from its bus threads (``hub.publish``,
``status.update``) and hands it to ``create_app``; the API itself never touches ZeroMQ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from crosspose.api.hub import SkeletonHub
from crosspose.api.previews import PreviewBoard
from crosspose.api.status import Readiness, StatusBoard
from crosspose.skeleton import DEFAULT_SKELETON, Skeleton

if TYPE_CHECKING:  # the store loads the geometry (torch): the runtime hands one in, the API never imports it
    from crosspose.calibration.store import ActiveCalibration, CalibrationStore

#: Why token-guarded writes are refused when no token is configured, and how to enable them (the 403's
#: words, the health report's and the viewer's).
WRITES_DISABLED = "calibration uploads and recordings are disabled because no API token is configured"
WRITES_HOW_TO = ("set api.token in the service config or the CROSSPOSE_API_TOKEN environment variable, "
                 "restart, and send the header 'Authorization: Bearer <token>'")


class ApiSettings(BaseModel):
    """The API's own settings (the runtime maps the service config onto these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: Annotated[
        str | None,
        Field(
            description="Bearer token that calibration uploads and recordings need (config `api.token` or "
            "CROSSPOSE_API_TOKEN); None refuses every write",
            min_length=1,
        ),
    ] = None
    max_upload_bytes: Annotated[
        int, Field(description="Largest calibration upload accepted (bytes)", gt=0)
    ] = 4 * 1024 * 1024
    ws_queue: Annotated[
        int, Field(description="Messages queued per websocket client before its oldest are dropped", ge=1)
    ] = 64
    ws_max_clients: Annotated[
        int, Field(description="Websocket subscribers served at once; more are refused (close 1013)", ge=1)
    ] = 256
    heartbeat_timeout_s: Annotated[
        float, Field(description="A stage silent for longer than this is reported not ready (seconds)", gt=0)
    ] = 2.0
    skeleton_timeout_s: Annotated[
        float, Field(description="No skeleton published for longer than this makes the service not ready "
                     "(seconds)", gt=0)
    ] = 2.0


class ServiceState:
    """Everything the API reads and writes; every member is safe to use from any thread.

    Args:
        calibration: the calibration store (its ``expected_names`` are the configured cameras).
        settings: API settings.
        cameras: configured camera names (default: the store's expected names).
        stages: stages that must heartbeat (default: a grabber per camera, sync, inference, solver).
        on_calibration_change: called (in a worker thread) after each accepted calibration upload.
        skeleton: the joint layout the service publishes (the solver's; ``GET /api/v1/skeleton``).
    Attributes:
        calibration_session: the live calibration session (``/api/v1/calibration/session``), or None.
        hub: websocket fan-out; call ``hub.publish(message)`` from any thread.
        status: stage heartbeats; call ``status.update(stage, payload)`` from any thread.
        previews: latest camera preview JPEGs; call ``previews.update(camera, jpeg, meta)`` from any thread.
        bus_input_drops: what the API's own bus thread dropped, ``{source: {reason: count}}`` (set by the
            runtime; None: no bus thread).
    """

    def __init__(
        self,
        calibration: CalibrationStore,
        settings: ApiSettings | None = None,
        cameras: Sequence[str] | None = None,
        stages: Sequence[str] | None = None,
        on_calibration_change: Callable[[ActiveCalibration], None] | None = None,
        skeleton: Skeleton = DEFAULT_SKELETON,
    ) -> None:
        self.settings = settings or ApiSettings()
        self.skeleton = skeleton
        self.calibration = calibration
        names = list(cameras) if cameras is not None else list(calibration.expected_names or [])
        self.hub = SkeletonHub(self.settings.ws_queue, self.settings.ws_max_clients)
        self.status = StatusBoard(names, stages, self.settings.heartbeat_timeout_s)
        self.previews = PreviewBoard(names)
        self.on_calibration_change = on_calibration_change
        self.started_ns = time.monotonic_ns()
        # Recording control (crosspose.recording.control.RecordingControl), set by the runtime; None = off.
        self.recordings: Any = None
        self.bus_input_drops: Callable[[], Mapping[str, Mapping[str, int]]] | None = None
        # Live calibration (crosspose.calibration.session), set by the runtime: ``calibration_feed(names)``
        # opens the running cameras' frame sets in that camera order (None: no live frames),
        # ``keypoint_detector(rig)`` builds the person method's 2D detector (None: board only).
        # One session at a time, under ``session_lock``.
        self.calibration_feed: Callable[[list[str]], Any] | None = None
        self.keypoint_detector: Callable[[Any], Any] | None = None
        self.calibration_session: Any = None
        self.session_lock = threading.Lock()

    @property
    def uptime_s(self) -> float:
        return (time.monotonic_ns() - self.started_ns) / 1e9

    def readiness(self, now_ns: int | None = None) -> Readiness:
        """The one answer to "is the service ready" (``/api/v1/ready`` and ``crosspose_ready``): the
        board's (every stage heartbeating, a provider, every camera's frames reaching sync, no stage
        crash-looping or waiting for its restart), plus a skeleton published within
        ``skeleton_timeout_s`` and an active calibration. Reasons are sentences naming what is wrong."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        report = self.status.ready(now_ns)
        reasons = list(report.reasons)
        age = self.hub.skeleton_age_s(now_ns)
        limit = self.settings.skeleton_timeout_s
        if age is None or age > limit:
            cams = self.status.cameras(now_ns)
            up = sum(c.state == "up" for c in cams)
            since = "none published yet"
            if age is not None:
                since = f"none published for {age:.1f} s (timeout {limit:g} s)"
            reasons.append(f"skeletons: {since}; {up} of {len(cams)} cameras deliver frames to sync")
        active = self.calibration.active()
        if active is None:
            stale = self.calibration.stale
            reasons.append(
                f"calibration: {stale}" if stale else "calibration: none yet; PUT one to /api/v1/calibration"
            )
        return Readiness(
            ready=not reasons,
            reasons=reasons,
            provider=report.provider,
            heartbeat_age_s=report.heartbeat_age_s,
            skeleton_age_s=age,
            runtime=report.runtime,
            calibration_version=active.version if active is not None else None,
        )
