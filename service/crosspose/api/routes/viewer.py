"""What the browser viewer needs beyond the rest of the API: camera previews and the skeleton layout.

* ``GET /api/v1/cameras/{name}/preview`` — the latest preview's metadata (JSON).
* ``GET /api/v1/cameras/{name}/preview.jpg`` — the latest preview JPEG (``?seq=`` for a kept one).
* ``GET /api/v1/skeleton`` — joint names, bones and sides of the layout the service publishes (the
  solver's).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from crosspose.api.errors import ApiError
from crosspose.api.previews import Preview
from crosspose.api.routes import StateDep
from crosspose.api.schemas import ErrorBody
from crosspose.api.state import ServiceState
from crosspose.skeleton import Skeleton

router = APIRouter(prefix="/api/v1", tags=["viewer"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown camera, or no preview (of that seq) yet"}
}


class PreviewMeta(BaseModel):
    """A camera preview's metadata; coordinates are preview pixels."""

    model_config = ConfigDict(extra="forbid")

    camera: str = Field(description="Camera name")
    seq: int | None = Field(description="Frame set the preview was taken from")
    t_capture_ns: int | None = Field(description="Capture time of the camera's frame (ns)")
    width: int | None = Field(description="Preview width (px)")
    height: int | None = Field(description="Preview height (px)")
    scale: float | None = Field(description="Preview px per image px")
    joints2d: list[list[float | None]] | None = Field(
        description="[[x, y, confidence], …] reprojected solved joints (the published layout's order) or null"
    )
    crop: list[list[float | None]] | None = Field(
        description="The crop square's 4 corners [[x, y] × 4], or null"
    )
    age_s: float = Field(description="Seconds since the service received this preview")
    image: str = Field(description="URL of this preview's JPEG")


class SkeletonLayout(BaseModel):
    """The joint layout of the skeletons on ``/ws/skeletons``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Layout identifier, as in the skeleton messages")
    joints: list[str] = Field(description="Joint names in message order")
    parents: list[int] = Field(description="Parent index per joint (-1: root)")
    bones: list[tuple[int, int]] = Field(description="(parent, child) joint index pairs")
    sides: list[Literal["left", "right", "center"]] = Field(description="The subject's side of each joint")


def _camera_preview(state: ServiceState, name: str, seq: int | None) -> Preview:
    try:
        preview = state.previews.latest(name, seq)
    except KeyError:
        cameras = ", ".join(state.previews.camera_names) or "none"
        raise ApiError(404, f"unknown camera {name[:80]!r}", [f"configured cameras: {cameras}"]) from None
    if preview is None:
        what = (
            f"camera {name!r} has no preview of frame set {seq}"
            if seq is not None
            else (f"camera {name!r} has no preview yet")
        )
        raise ApiError(
            404,
            what,
            [
                "previews arrive a few times a second once the camera delivers frames and a "
                "calibration is active (api.preview_hz > 0)"
            ],
        )
    return preview


def side(joint: str) -> Literal["left", "right", "center"]:
    return "left" if joint.startswith("l_") else "right" if joint.startswith("r_") else "center"


def layout(skeleton: Skeleton) -> SkeletonLayout:
    return SkeletonLayout(
        name=skeleton.name,
        joints=list(skeleton.joints),
        parents=list(skeleton.parents),
        bones=list(skeleton.bones),
        sides=[side(j) for j in skeleton.joints],
    )


@router.get(
    "/cameras/{name}/preview",
    summary="Metadata of a camera's latest preview",
    response_model=PreviewMeta,
    responses=NOT_FOUND,
)
def preview_meta(state: StateDep, name: str) -> PreviewMeta:
    """The latest preview's frame set, size, scale, reprojected 2D joints and crop box (preview px)."""
    p = _camera_preview(state, name, None)
    image = f"/api/v1/cameras/{name}/preview.jpg"
    if p.meta["seq"] is not None:
        image += f"?seq={p.meta['seq']}"
    return PreviewMeta(
        camera=name,
        **p.meta,
        age_s=(time.monotonic_ns() - p.received_ns) / 1e9,
        image=image,
    )


@router.get(
    "/cameras/{name}/preview.jpg",
    summary="A camera's latest preview image",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The JPEG"}, **NOT_FOUND},
)
def preview_jpeg(
    state: StateDep,
    name: str,
    seq: Annotated[
        int | None, Query(description="A recent frame set's preview instead of the latest")
    ] = None,
) -> Response:
    """A small JPEG (a few Hz, never the full stream); ``X-Preview-Seq`` says its frame set."""
    p = _camera_preview(state, name, seq)
    headers = {"Cache-Control": "no-store"}
    if p.meta["seq"] is not None:
        headers["X-Preview-Seq"] = str(p.meta["seq"])
    return Response(p.jpeg, media_type="image/jpeg", headers=headers)


@router.get("/skeleton", summary="Joint layout of the streamed skeletons", response_model=SkeletonLayout)
def skeleton_layout(state: StateDep) -> SkeletonLayout:
    """The layout of the streamed skeletons (the solver's): joint names, parents, bones and the subject's
    side of each joint."""
    return layout(state.skeleton)
