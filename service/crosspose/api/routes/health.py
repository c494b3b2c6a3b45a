"""Liveness, readiness and per-camera status."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import crosspose
from crosspose.api.routes import StateDep
from crosspose.api.schemas import CameraOut, Cameras, Health, Ready, RuntimeOut, Writes
from crosspose.api.state import WRITES_DISABLED, WRITES_HOW_TO

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", summary="Liveness", response_model=Health)
def health(state: StateDep) -> Health:
    """Always 200 while the process serves requests; says nothing about the pipeline (see `/ready`)."""
    enabled = state.settings.token is not None
    writes = Writes(enabled=enabled, reason=None if enabled else f"{WRITES_DISABLED}: {WRITES_HOW_TO}")
    return Health(status="ok", uptime_s=state.uptime_s, version=crosspose.__version__, writes=writes)


@router.get(
    "/ready",
    summary="Readiness: stages heartbeating, frames and skeletons flowing, no stage crash-looping",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready; `reasons` say why"}},
)
def ready(state: StateDep) -> JSONResponse:
    """200 when every configured stage (grabbers, sync, inference, solver) heartbeated within the
    timeout, the inference stage reported the ONNX Runtime provider that actually runs, every camera's
    frames reach sync, a skeleton was published within the last seconds, no stage is crash-looping or
    waiting for its restart, and a calibration is active; 503 with the reasons otherwise."""
    report = state.readiness()
    body = Ready(
        ready=report.ready,
        reasons=report.reasons,
        provider=report.provider,
        heartbeat_age_s=report.heartbeat_age_s,
        skeleton_age_s=report.skeleton_age_s,
        calibration_version=report.calibration_version,
        runtime=None if report.runtime is None else RuntimeOut(**dataclasses.asdict(report.runtime)),
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get(
    "/cameras",
    summary="Per-camera state, rate, drops, skew and frame age; restarts per stage; skeleton age",
    response_model=Cameras,
)
def cameras(state: StateDep) -> Cameras:
    """Configured cameras in rig order. A camera is `up` while its frames reach sync, `stale` while its
    grabber heartbeats but none of its frames arrive, `down` when neither (or its grabber says so).
    Beside them: the supervisor's restarts of every stage and the age of the last published skeleton."""
    return Cameras(
        cameras=[CameraOut(**vars(c)) for c in state.status.cameras()],
        restarts={r.stage: r.restarts for r in state.status.restarts()},
        last_skeleton_age_s=state.hub.skeleton_age_s(),
    )
