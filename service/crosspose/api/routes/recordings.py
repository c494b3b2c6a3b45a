"""Takes: start and stop recording, list takes, download a take's skeletons or the whole take.

Every endpoint needs ``Authorization: Bearer <token>`` (as calibration writes). The recorder is its
own stage; these endpoints command it over the control plane and read the takes folder.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from crosspose.api.errors import ApiError
from crosspose.api.routes import StateDep
from crosspose.api.routes.calibration import require_token
from crosspose.api.schemas import ErrorBody
from crosspose.api.state import ServiceState
from crosspose.recording.control import (
    RecorderUnavailableError,
    RecordingConflictError,
    RecordingControl,
    RecordingFailedError,
)
from crosspose.recording.export import MEDIA_TYPES
from crosspose.recording.take import Take, TakeError, check_id

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"], dependencies=[Depends(require_token)])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong `Authorization: Bearer <token>`"},
    403: {"model": ErrorBody, "description": "No API token is configured: recording is disabled"},
    404: {"model": ErrorBody, "description": "No such take"},
    409: {"model": ErrorBody, "description": "A take is recording already / this take is not recording"},
    422: {"model": ErrorBody, "description": "Bad take name, metadata or format"},
    503: {"model": ErrorBody, "description": "The recorder stage is not running or did not answer"},
}
MAX_METADATA_KEYS = 64


class StartRecording(BaseModel):
    """Body of ``POST /api/v1/recordings``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        description="Take name: 1-64 letters, digits, spaces, '_', '.', '-'.", examples=["walk 01"]
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any JSON object kept with the take.")
    max_bytes: int | None = Field(
        default=None, gt=0, description="Stop the take (state 'failed') when it reaches this size (bytes)."
    )


def _control(state: ServiceState) -> RecordingControl:
    control = getattr(state, "recordings", None)
    if control is None:
        raise ApiError(503, "recording is disabled", ["set recording.enabled: true in the service config"])
    assert isinstance(control, RecordingControl)
    return control


def _take(control: RecordingControl, take_id: str) -> Take:
    try:
        check_id(take_id)
        return control.store.get(take_id)
    except TakeError as err:
        raise ApiError(
            404, f"no take {take_id!r}", [str(err), "GET /api/v1/recordings lists the takes"]
        ) from None


@router.get("", summary="The recorder's state and every take (newest first)", responses=ERRORS)
def list_recordings(state: StateDep) -> dict[str, Any]:
    control = _control(state)
    takes = [t.summary() for t in control.store.takes()]
    takes.reverse()
    return {"recorder": control.recorder(), "takes": takes}


@router.post("", status_code=201, summary="Start recording a take", responses=ERRORS)
def start_recording(body: StartRecording, state: StateDep) -> dict[str, Any]:
    control = _control(state)
    if len(body.metadata) > MAX_METADATA_KEYS:
        raise ApiError(422, "too much metadata", [f"at most {MAX_METADATA_KEYS} metadata keys"])
    try:
        take = control.start(body.name, body.metadata, body.max_bytes)
    except TakeError as err:
        raise ApiError(422, "invalid take", [str(err)]) from None
    except RecordingConflictError as err:
        raise ApiError(409, "a take is recording already", [str(err)]) from None
    except RecorderUnavailableError as err:
        raise ApiError(503, "the recorder is not available", [str(err)]) from None
    except RecordingFailedError as err:
        raise ApiError(507, "the take could not start", [str(err)]) from None
    return take.summary()


@router.get("/{take_id}", summary="One take", responses=ERRORS)
def get_recording(take_id: str, state: StateDep) -> dict[str, Any]:
    return _take(_control(state), take_id).summary()


@router.post("/{take_id}/stop", summary="Stop recording a take", responses=ERRORS)
def stop_recording(take_id: str, state: StateDep) -> dict[str, Any]:
    control = _control(state)
    _take(control, take_id)
    try:
        return control.stop(take_id).summary()
    except RecordingConflictError as err:
        raise ApiError(409, "the take is not recording", [str(err)]) from None
    except RecorderUnavailableError as err:
        raise ApiError(503, "the recorder is not available", [str(err)]) from None


@router.get(
    "/{take_id}/download",
    summary="A take's skeletons as jsonl/trc/bvh/c3d, or the take as zip",
    description=(
        "A take of several performers: `c3d` holds them all (labels `p<id>_<joint>`); `bvh` and `trc` are "
        "one file per performer, all of them in one zip (`<take>_p<id>.<format>`), or performer `person` "
        "alone."
    ),
    responses=ERRORS,
)
async def download_recording(
    take_id: str,
    state: StateDep,
    format: Annotated[
        Literal["jsonl", "trc", "bvh", "c3d", "zip"], Query(description="File format of the download.")
    ] = "jsonl",
    person: Annotated[
        int | None, Query(ge=0, description="bvh/trc: this performer's file only (an id of the take).")
    ] = None,
) -> FileResponse:
    from crosspose.recording.export import export_files, export_take

    take = _take(_control(state), take_id)
    tmpdir = Path(tempfile.mkdtemp(prefix="crosspose-export-"))
    path = tmpdir / f"{take.id}.{format}"
    media_type = MEDIA_TYPES[format]

    def cleanup() -> None:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)

    def export() -> Path:
        if person is not None:
            return export_take(take, format, path, person=person)
        files = export_files(take, format, path)
        if files == [path]:
            return path
        bundle = tmpdir / f"{take.id}-{format}.zip"  # one file per performer
        with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.name)
        return bundle

    try:
        path = await run_in_threadpool(export)
        media_type = MEDIA_TYPES[path.suffix.lstrip(".")]
    except TakeError as err:
        cleanup()
        raise ApiError(422, f"take {take.id} cannot be exported as {format}", [str(err)]) from None
    except ImportError as err:
        cleanup()
        raise ApiError(501, f"{format} export is not available in this build", [str(err)]) from None
    return FileResponse(path, media_type=media_type, filename=path.name, background=BackgroundTask(cleanup))
