"""Response bodies of the REST API (they document themselves in the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Model):
    """Every 4xx/5xx answer."""

    detail: str = Field(description="What went wrong, in one sentence")
    problems: list[str] = Field(description="Every specific reason, each naming what to fix")


class Writes(_Model):
    enabled: bool = Field(description="Whether calibration uploads and recordings can be made (an API token "
                          "is configured)")
    reason: str | None = Field(description="Why they are disabled and how to enable them (null: enabled)")


class Health(_Model):
    status: Literal["ok"] = Field(description="Always ok while the process serves requests")
    uptime_s: float = Field(description="Seconds since the API state was created")
    version: str = Field(description="crosspose version")
    writes: Writes = Field(description="Whether the token-guarded writes (calibration upload, recordings) "
                           "are enabled; the viewer greys its controls out when they are not")


class RuntimeOut(_Model):
    runtime: str = Field(description="Inference runtime that runs the network (onnxruntime, openvino, torch)")
    device: str = Field(description="Its device in the runtime's words (CPUExecutionProvider, CPU, cuda)")
    precision: str = Field(description="Arithmetic compiled: f32, bf16, or 'bf16 backbone, f32 fusion'")


class Ready(_Model):
    ready: bool = Field(description="Every stage heartbeating, a provider reported, every camera's frames "
                        "reaching sync, skeletons published, no stage crash-looping, a calibration active")
    reasons: list[str] = Field(description="Why not ready (empty when ready)")
    provider: str | None = Field(description="ONNX Runtime provider the inference stage actually runs")
    heartbeat_age_s: dict[str, float | None] = Field(
        description="Seconds since each stage's last heartbeat (null: never heard from)"
    )
    skeleton_age_s: float | None = Field(description="Seconds since the last skeleton was published (null: "
                                         "none yet)")
    calibration_version: int | None = Field(description="Active calibration version (null: none)")
    runtime: RuntimeOut | None = Field(default=None, description="What really runs the network, as the "
                                       "inference workers report it (null: none reported yet)")


class CameraOut(_Model):
    name: str = Field(description="Configured camera name")
    state: Literal["up", "stale", "reconnecting", "down"] = Field(
        description="up: its frames reach sync; stale: its grabber heartbeats but no frame of it reaches "
        "sync; reconnecting: its grabber says so; down: neither frames nor a grabber heartbeat, or the "
        "grabber says it is down"
    )
    fps: float | None = Field(description="Frames per second of this camera that reach sync")
    drops: int = Field(description="Frames the grabber lost")
    sync_drops: int = Field(description="Frame sets this camera was missing from")
    input_drops: dict[str, int] = Field(
        default_factory=dict,
        description="Frames (and grabber heartbeats) of this camera that sync dropped, by reason: malformed, "
        "stale, future, foreign, oversize, busy (reasons without drops are left out)",
    )
    skew_ms: float | None = Field(description="Capture-time offset from the frame set's reference (ms)")
    last_frame_age_s: float | None = Field(
        description="Seconds since a frame of this camera last reached sync: while it is up, as sync "
        "measured it at its latest heartbeat; otherwise counting the time since that heartbeat too"
    )
    heartbeat_age_s: float | None = Field(description="Seconds since the grabber's last heartbeat")


class Cameras(_Model):
    cameras: list[CameraOut] = Field(description="Configured cameras in rig order")
    restarts: dict[str, int] = Field(description="Restarts of each supervised stage (grabber.<camera>, sync, "
                                     "inference, solver, api, …) since the service started")
    last_skeleton_age_s: float | None = Field(description="Seconds since the last skeleton was published "
                                              "(null: none yet)")


class CalibrationVersionOut(_Model):
    version: int = Field(description="1, 2, … in acceptance order")
    sha256: str = Field(description="SHA-256 of the stored crosspose JSON (GET ?format=crosspose)")
    created: str = Field(description="When it was accepted (ISO 8601, UTC)")
    created_ns: int = Field(description="When it was accepted (ns since the Unix epoch)")
    format: str = Field(description="Format the upload was in")
    source: str = Field(description="Who supplied it")
    cameras: list[str] = Field(description="Camera names in rig order")


class CalibrationOut(CalibrationVersionOut):
    rig: dict[str, Any] = Field(description="The rig as crosspose JSON (metres, x_cam = R X + t)")
    warnings: list[str] = Field(description="Validation warnings found when it was accepted")


class CalibrationAccepted(CalibrationVersionOut):
    warnings: list[str] = Field(description="Validation warnings (the calibration was accepted)")
    new: bool = Field(description="True: stored as a new version and sent to the pipeline; false: identical "
                      "to the active calibration, whose version this is (nothing stored)")


class CalibrationHistory(_Model):
    active: int | None = Field(description="The version in force (null: none)")
    versions: list[CalibrationVersionOut] = Field(description="Every accepted version, oldest first")
