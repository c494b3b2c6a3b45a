"""Live calibration on the running cameras: start a session (board or performer), watch the coverage fill
up, solve in the background, compare with the rig in force, then apply (a new stored version, hot-swapped)
or discard (nothing changes). Writes need the API token; one session at a time.

The session itself (sampling, detection, the solve) is :class:`crosspose.calibration.session.LiveSession`,
imported by the requests that start one (it loads OpenCV and, to solve, the geometry).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from crosspose.api.errors import ApiError
from crosspose.api.routes import StateDep
from crosspose.api.routes.calibration import ERRORS, accepted, require_token
from crosspose.api.schemas import CalibrationAccepted, ErrorBody
from crosspose.api.state import ServiceState

router = APIRouter(prefix="/api/v1/calibration/session", tags=["calibration"])
Token = [Depends(require_token)]
NO_SESSION: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No session"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "A session already runs, or the session is not in that phase"}
}


class SessionStart(BaseModel):
    """How to calibrate (see ``SessionSpec``)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["board", "person"] = Field(
        description="'board': a board shown to several cameras at once; 'person': the performer walks the "
        "volume (the service's 2D network)")
    board: str | None = Field(
        default=None, description="The board for method 'board', e.g. 'checkerboard:4x7:0.06' or "
        "'charuco:5x7:0.04:0.03:DICT_4X4_50'")
    refine: str | None = Field(
        default=None, description="Re-solve only this (bumped) camera against the others, which are kept")
    world: Literal["rig", "board", "feet"] = Field(
        default="rig", description="The solved rig's frame: 'rig' (fitted onto the rig in force), 'board' "
        "(the board's first shared pose is the floor; its squares the scale), 'feet' (the performer's feet "
        "on the floor; scale from the rig in force)")
    rate_hz: float = Field(default=3.0, gt=0, le=30, description="Frame sets sampled per second")
    max_sets: int = Field(default=300, ge=1, le=10_000, description="Sampling stops after this many sets")
    min_confidence: float = Field(default=0.5, ge=0, le=1, description="Joint confidence (method 'person')")


class SessionApplied(CalibrationAccepted):
    previous: int = Field(description="The version in force before (PUT it back, or POST "
                          "/api/v1/calibration/rollback, to return to it)")


def _session_or_404(state: ServiceState) -> Any:
    session = state.calibration_session
    if session is None:
        raise ApiError(404, "no calibration session", ["start one with POST /api/v1/calibration/session"])
    return session


def _start(state: ServiceState, body: SessionStart) -> Any:
    from crosspose.calibration.boards import BoardError, parse_board
    from crosspose.calibration.session import LiveSession, SessionSpec

    active = state.calibration.active()
    if active is None:
        raise ApiError(409, "no calibration is active",
                       ["a session starts from the calibration in force (its intrinsics): PUT one first"])
    if state.calibration_feed is None:
        raise ApiError(409, "live frames are not available to the API",
                       ["enable recording (recording.enabled: true): the session reads sync's frame-set tap"])
    board = None
    if body.board is not None:
        try:
            board = parse_board(body.board)
        except BoardError as exc:
            raise ApiError(422, "invalid board", [f"board: {exc}"]) from None
    spec = SessionSpec(body.method, board, body.refine, body.world, body.rate_hz, body.max_sets,
                       body.min_confidence)
    problems = spec.problems(active.rig.names)
    if body.method == "person" and state.keypoint_detector is None:
        problems.append("method 'person' needs the service's 2D network (inference.backend other than "
                        "'simulated'); use method 'board'")
    if problems:
        raise ApiError(422, "the session cannot start", problems)
    feed = state.calibration_feed(active.rig.names)
    return LiveSession(spec, active.rig, active.version, feed, state.keypoint_detector)


@router.post("", summary="Start a live calibration session (needs the API token)", status_code=201,
             dependencies=Token, responses={**ERRORS, **CONFLICT})
def start_session(state: StateDep, body: SessionStart) -> dict[str, Any]:
    """Sample the running cameras' frame sets and collect board corners or the performer's joints."""
    with state.session_lock:
        if state.calibration_session is not None:
            raise ApiError(409, "a calibration session is already open",
                           ["apply or discard it (DELETE /api/v1/calibration/session) first"])
        state.calibration_session = _start(state, body)
        status: dict[str, Any] = state.calibration_session.status()
    return status


@router.get("", summary="The session's progress: coverage per camera, shared sightings per pair, result",
            responses=NO_SESSION)
def get_session(state: StateDep) -> dict[str, Any]:
    """Per camera `sightings`, `views` (frame sets it saw something in) and `coverage` (fraction of an
    8x8 image grid touched); per pair the points both saw; after a solve `result.cameras[name]` with
    `rotation_deg` and `centre_mm` against the rig in force and the reprojection `median_px`/`rms_px`."""
    status: dict[str, Any] = _session_or_404(state).status()
    return status


@router.post("/stop", summary="Stop sampling (what was collected stays)", dependencies=Token,
             responses={**ERRORS, **NO_SESSION})
def stop_session(state: StateDep) -> dict[str, Any]:
    session = _session_or_404(state)
    session.stop()
    status: dict[str, Any] = session.status()
    return status


@router.post("/solve", summary="Solve in the background (stops sampling)", status_code=202,
             dependencies=Token, responses={**ERRORS, **NO_SESSION, **CONFLICT})
def solve_session(state: StateDep) -> dict[str, Any]:
    """Poll `GET /api/v1/calibration/session` until `phase` is `solved` or `failed` (with `error`)."""
    session = _session_or_404(state)
    try:
        session.solve()
    except RuntimeError as exc:
        raise ApiError(409, str(exc), ["wait for it: GET /api/v1/calibration/session"]) from None
    status: dict[str, Any] = session.status()
    return status


@router.post("/apply", summary="Store the solved rig as a new version and hot-swap it", dependencies=Token,
             response_model=SessionApplied, responses={**ERRORS, **NO_SESSION, **CONFLICT})
def apply_session(state: StateDep) -> SessionApplied:
    """The session ends; the version in force before is `previous`."""
    from crosspose.calibration import CalibrationError, dumps_rig

    with state.session_lock:
        session = _session_or_404(state)
        result = session.result
        if result is None:
            raise ApiError(409, "nothing to apply: the session has not solved",
                           [f"phase is {session.status()['phase']!r}; POST .../solve and wait for 'solved'"])
        before = state.calibration.active()
        if before is None or before.version != session.version:
            now = before.version if before is not None else None
            raise ApiError(409, "the calibration changed since the session started",
                           [f"the session started from version {session.version}, version {now} is in force "
                            "now; discard the session and start again"])
        source = f"live calibration session ({session.spec.method}"
        source += f", refine {session.spec.refine})" if session.spec.refine else ")"
        try:
            active = state.calibration.put(dumps_rig(result.rig, "crosspose"), "crosspose", source)
        except CalibrationError as exc:
            raise ApiError(422, "the solved rig was not accepted", [str(p) for p in exc.problems]) from None
        state.calibration_session = None
    session.close()
    answer = accepted(state, active, before)
    return SessionApplied(**answer.model_dump(), previous=before.version)


@router.delete("", summary="Discard the session (the calibration in force stays)", dependencies=Token,
               responses={**ERRORS, **NO_SESSION})
def discard_session(state: StateDep) -> dict[str, Any]:
    with state.session_lock:
        session = _session_or_404(state)
        state.calibration_session = None
    session.close()
    return {"discarded": True}
