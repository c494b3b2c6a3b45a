"""The active calibration: read it in any format, replace it with an authorised upload, list the history.

``GET ?format=easymocap`` answers a zip holding EasyMocap's ``intri.yml`` and ``extri.yml``; ``PUT``
accepts that zip back (or both files' keys in one FileStorage document).
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import zipfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from crosspose.api.errors import ApiError
from crosspose.api.routes import StateDep
from crosspose.api.schemas import (
    CalibrationAccepted,
    CalibrationHistory,
    CalibrationOut,
    CalibrationVersionOut,
    ErrorBody,
)
from crosspose.api.state import WRITES_DISABLED, WRITES_HOW_TO, ServiceState

if TYPE_CHECKING:
    from crosspose.calibration.store import ActiveCalibration, CalibrationVersion

# The calibration package loads the geometry and with it torch (~2 s): it is imported by the requests
# that convert or validate a rig, not with the API (whose stage imports this module at start).

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/calibration", tags=["calibration"])

Format = Literal["crosspose", "anipose", "easymocap", "opencv", "qualisys"]
CONTENT_TYPES: dict[str, str] = {
    "crosspose": "application/json",
    "anipose": "application/toml",
    "easymocap": "application/zip",
    "opencv": "application/yaml",
    "qualisys": "application/xml",
}
SUFFIX = {"crosspose": "json", "anipose": "toml", "easymocap": "zip", "opencv": "yml", "qualisys": "qca.txt"}
BEARER_REALM = 'Bearer realm="crosspose"'
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong `Authorization: Bearer <token>`"},
    403: {"model": ErrorBody, "description": "No API token is configured: writes are disabled"},
    409: {"model": ErrorBody, "description": "The calibration's cameras are not the configured ones"},
    413: {"model": ErrorBody, "description": "Body larger than the configured limit"},
    422: {"model": ErrorBody, "description": "Unreadable or invalid calibration; `problems` lists each"},
}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")


def _version_out(v: CalibrationVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "sha256": v.sha256,
        "created": _iso(v.created_ns),
        "created_ns": v.created_ns,
        "format": v.format,
        "source": v.source,
        "cameras": list(v.cameras),
    }


def _active_or_404(state: ServiceState) -> ActiveCalibration:
    active = state.calibration.active()
    if active is None:
        stale = state.calibration.stale
        raise ApiError(
            404,
            "no calibration is active",
            [stale or "upload one with PUT /api/v1/calibration (any supported format)"],
        )
    return active


def require_token(request: Request, state: StateDep) -> None:
    """Calibration writes and recordings need ``Authorization: Bearer <token>``; without a configured
    token, none pass."""
    token = state.settings.token
    if token is None:
        raise ApiError(403, WRITES_DISABLED, [WRITES_HOW_TO])
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "authentication required",
            ["send the header 'Authorization: Bearer <token>' with the configured API token"],
            headers={"WWW-Authenticate": BEARER_REALM},
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "invalid API token",
            ["the Authorization header must be 'Bearer <token>' with the configured API token"],
            headers={"WWW-Authenticate": f'{BEARER_REALM}, error="invalid_token"'},
        )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_big = ApiError(
        413,
        "calibration upload too large",
        [f"the body must be at most {limit} bytes (api.max_upload_bytes)"],
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "invalid Content-Length header", [f"got {declared!r}"]) from None
        if size > limit:
            raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


@router.get(
    "",
    summary="The active calibration (JSON summary, or the file in a chosen format)",
    response_model=CalibrationOut,
    responses={
        200: {
            "description": "Without `format`: the summary below. With `format`: the file itself "
            "(application/json, application/toml, application/yaml, application/xml, or for easymocap "
            "application/zip holding intri.yml and extri.yml)."
        },
        404: {"model": ErrorBody, "description": "No calibration accepted yet"},
    },
)
def get_calibration(
    state: StateDep,
    format: Annotated[Format | None, Query(description="Return the file itself in this format")] = None,
) -> Response:
    """The rig in force with its version and SHA-256 (of the stored crosspose JSON, i.e. of the body
    of `?format=crosspose`)."""
    from crosspose.calibration import rig_files

    active = _active_or_404(state)
    canonical = state.calibration.canonical_bytes(active.version)
    headers = {"X-Calibration-Version": str(active.version), "X-Calibration-SHA256": active.sha256}
    if format is None:
        body = {
            **_version_out(active.record),
            "rig": json.loads(canonical),
            "warnings": list(active.warnings),
        }
        return Response(json.dumps(body), media_type="application/json", headers=headers)
    if format == "crosspose":
        data = canonical
    elif format == "easymocap":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, content in rig_files(active.rig, "easymocap").items():
                zf.writestr(name, content)
        data = buf.getvalue()
    else:
        (data,) = rig_files(active.rig, format).values()
    filename = f"calibration-v{active.version:06d}.{SUFFIX[format]}"
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(data, media_type=CONTENT_TYPES[format], headers=headers)


@router.put(
    "",
    summary="Replace the active calibration (needs the API token)",
    response_model=CalibrationAccepted,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One calibration file in any supported format (crosspose JSON, anipose TOML, "
            "OpenCV FileStorage YAML/XML, Qualisys .qca.txt, EasyMocap as a zip of intri.yml + extri.yml "
            "or both files' keys in one document)",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_calibration(
    request: Request,
    state: StateDep,
    format: Annotated[Format | None, Query(description="The body's format; detected when omitted")] = None,
    note: Annotated[str | None, Query(description="Free text kept in the history", max_length=200)] = None,
) -> CalibrationAccepted:
    """Validate the upload (finite values, orthonormal rotations, positive focal lengths, metres, and
    exactly the configured cameras), store it as a new version and make it active; the running pipeline
    picks it up on its next frame set. A rig identical to the active one is not stored again: the answer
    is the active version with `new: false`. On any error the active calibration and the history stay as
    they were."""
    from crosspose.calibration import CalibrationError
    from crosspose.calibration.store import CameraSetError

    data = await _read_body(request, state.settings.max_upload_bytes)
    host = request.client.host if request.client else "unknown"
    source = f"upload from {host}" + (f": {note}" if note else "")
    before = state.calibration.active()
    try:
        active = await run_in_threadpool(state.calibration.put, data, format, source)
    except CameraSetError as exc:
        raise ApiError(
            409,
            "the calibration's cameras are not the configured ones",
            [str(p) for p in exc.problems],
            extra={"missing": exc.missing, "extra": exc.extra},
        ) from None
    except OSError as exc:  # disk full, permissions: the previous version stays active
        log.exception("calibration store %s: cannot write", state.calibration.root)
        raise ApiError(
            500,
            "the calibration could not be stored; the previous one stays active",
            [
                f"{exc.strerror or exc} ({state.calibration.root}); "
                "check the store folder's disk space and permissions"
            ],
        ) from None
    except CalibrationError as exc:
        raise ApiError(
            422,
            "the calibration was not accepted",
            [str(p) for p in exc.problems],
            extra={"warnings": [str(w) for w in exc.warnings]},
        ) from None
    return await run_in_threadpool(accepted, state, active, before)


def accepted(
    state: ServiceState, active: ActiveCalibration, before: ActiveCalibration | None
) -> CalibrationAccepted:
    """The answer to a stored calibration: the pipeline is told of it (hot swap) unless it is ``before``
    (identical to the calibration in force: nothing stored, the pipeline already runs it). Blocks while
    the pipeline is told: call it from a worker thread."""
    warnings = list(active.warnings)
    if before is not None and (active.version, active.sha256) == (before.version, before.sha256):
        return CalibrationAccepted(**_version_out(active.record), warnings=warnings, new=False)
    callback = state.on_calibration_change
    if callback is not None:
        try:
            callback(active)
        except Exception as exc:
            log.exception("calibration version %d stored but the pipeline was not notified", active.version)
            warnings.append(f"stored, but notifying the pipeline failed: {exc}; restart the service")
    return CalibrationAccepted(**_version_out(active.record), warnings=warnings, new=True)


@router.get("/history", summary="Every accepted calibration version", response_model=CalibrationHistory)
def history(state: StateDep) -> CalibrationHistory:
    """Oldest first, with the version in force."""
    active = state.calibration.active()
    return CalibrationHistory(
        active=active.version if active else None,
        versions=[CalibrationVersionOut(**_version_out(v)) for v in state.calibration.history()],
    )


@router.post(
    "/rollback",
    summary="Make the version before the active one active again (needs the API token)",
    response_model=CalibrationAccepted,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "No earlier version to return to"}},
    dependencies=[Depends(require_token)],
)
async def rollback(state: StateDep) -> CalibrationAccepted:
    """The version stored just before the active one is stored again as a new version (the history only
    grows) and hot-swapped into the pipeline; a second rollback returns to the rig rolled back from."""
    active = _active_or_404(state)
    versions = [v.version for v in state.calibration.history()]
    index = versions.index(active.version) if active.version in versions else 0
    if index == 0:
        raise ApiError(404, "no earlier calibration version", [f"version {active.version} is the first"])
    previous = versions[index - 1]
    data = state.calibration.canonical_bytes(previous)
    restored = await run_in_threadpool(state.calibration.put, data, "crosspose", f"rollback to v{previous}")
    return await run_in_threadpool(accepted, state, restored, active)
