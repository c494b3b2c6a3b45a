"""A studio's extrinsics end to end: the relative solve, then metric scale, floor and origin, then the
validated rig and its report (per camera reprojection, per pair shared sightings, the change against a
reference rig)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from crosspose.calibration.boards import BoardSpec
from crosspose.calibration.extrinsics import (
    ExtrinsicsError,
    RelativeSolve,
    Sightings,
    refine_camera,
    solve_relative,
)
from crosspose.calibration.validation import validate_rig
from crosspose.calibration.world import (
    Floor,
    Similarity,
    WorldError,
    body_height,
    camera_centres,
    compare_rigs,
    floor_from_board,
    floor_from_feet,
    rig_from_poses,
    scale_from_length,
    transform_poses,
)
from crosspose.geometry import CameraRig

FloorSource = Literal["feet", "board", "none"]


@dataclass(frozen=True)
class Scale:
    """Where the metric scale comes from (exactly one).

    Attributes:
        board: the board whose corners the sightings are (their spacing sets the scale).
        length: ``CAMERA-CAMERA=METRES``, a measured distance between two camera centres.
        height: the performer's stature, metres (approximate: keypoint stature differs from body height).
    """

    board: BoardSpec | None = None
    length: str | None = None
    height: float | None = None


@dataclass(frozen=True, eq=False)
class ExtrinsicsResult:
    """The solved rig and what to tell the user.

    Attributes:
        rig: validated, metres, +Z up, floor at z = 0 (unless the floor was not set).
        report: JSON-ready report.
        warnings: weak data, approximate scale, failed checks that did not stop the solve.
    """

    rig: CameraRig
    report: dict[str, object]
    warnings: list[str] = field(default_factory=list)


def _check_scale(scale: Scale, names: list[str]) -> None:
    """Refuse a missing, doubled or malformed scale before the solve rather than after it."""
    given = [x is not None for x in (scale.board, scale.length, scale.height)]
    if sum(given) != 1:
        raise WorldError(
            "give exactly one scale: a board (--board), a measured length "
            "(--length CAMERA-CAMERA=METRES) or the performer's height (--height METRES)"
        )
    if scale.length is not None:
        scale_from_length(scale.length, names, np.arange(3.0 * len(names)).reshape(-1, 3))


def _metric_scale(
    rel: RelativeSolve, sightings: Sightings, names: list[str], scale: Scale
) -> tuple[float, str, list[str]]:
    if scale.board is not None:
        return _board_scale(rel, sightings, scale.board)
    if scale.length is not None:
        factor, how = scale_from_length(scale.length, names, camera_centres(rel.R, rel.t))
        return factor, how, []
    assert scale.height is not None
    stature = body_height(rel.points, sightings.group, sightings.label, sightings.labels)
    return (
        scale.height / stature,
        f"scale from a body height of {scale.height:g} m (approximate)",
        [
            f"scale from --height {scale.height:g} m is approximate: keypoint stature differs from body "
            "height "
            "by several centimetres (on the Pose2Sim take 1.56 m for a 1.70 m prior, ~15 % off in scale); "
            "measure one distance (--length) for a metric rig"
        ],
    )


def _board_scale(rel: RelativeSolve, sightings: Sightings, board: BoardSpec) -> tuple[float, str, list[str]]:
    obj = board.object_points()
    ratios = []
    for g in np.unique(sightings.group):
        rows = np.flatnonzero((sightings.group == g) & np.isfinite(rel.points[:, 0]))
        if rows.size < 4:
            continue
        ids = sightings.label[rows]
        d_solved = np.linalg.norm(rel.points[rows][:, None] - rel.points[rows][None], axis=-1)
        d_true = np.linalg.norm(obj[ids][:, None] - obj[ids][None], axis=-1)
        upper = np.triu_indices(rows.size, 1)
        ratios.append(np.median(d_true[upper] / d_solved[upper]))
    if not ratios:
        raise WorldError("the board was not triangulated in any frame: no scale")
    return float(np.median(ratios)), f"scale from the board's {board.square * 1000:g} mm squares", []


def _board_floor(rel: RelativeSolve, sightings: Sightings, board: BoardSpec, factor: float) -> Floor:
    """The board in the first frame that two cameras saw it in, taken as lying on the floor."""
    for g in np.unique(sightings.group):
        rows = np.flatnonzero((sightings.group == g) & np.isfinite(rel.points[:, 0]))
        if rows.size >= 4:
            obj = board.object_points()[sightings.label[rows]]
            return floor_from_board(obj, rel.points[rows] * factor, f"board of frame {int(g)}")
    raise WorldError("the board was not triangulated in any frame: no floor")


def solve_extrinsics(
    intrinsics: CameraRig,
    sightings: Sightings,
    scale: Scale,
    floor: FloorSource = "feet",
    reference: CameraRig | None = None,
    source: str = "",
) -> ExtrinsicsResult:
    """Solve, scale, level and validate; compare with ``reference`` when given.

    Raises:
        ExtrinsicsError: the data cannot constrain a camera (named).
        WorldError: no usable scale or floor.
        CalibrationError: the result fails validation.
    """
    names = intrinsics.names
    _check_scale(scale, names)
    if floor == "board" and scale.board is None:
        raise WorldError("--floor board needs board sightings (--board)")
    rel = solve_relative(sightings, intrinsics)
    factor, scale_note, warnings = _metric_scale(rel, sightings, names, scale)
    warnings = list(rel.warnings) + warnings
    metric = Similarity(factor, np.eye(3), np.zeros(3))
    R, t = transform_poses(rel.R, rel.t, metric)
    points = metric.apply(rel.points)
    if floor == "feet":
        forward = rel.R[0][2]  # the first camera's optical axis (solved frame)
        level = floor_from_feet(points, sightings.group, sightings.label, sightings.labels, forward)
    elif floor == "board":
        assert scale.board is not None
        level = _board_floor(rel, sightings, scale.board, factor)
    else:
        level = Floor(Similarity(1.0, np.eye(3), np.zeros(3)), "none (the first solved camera's frame)")
    warnings += list(level.warnings)
    R, t = transform_poses(R, t, level.frame)
    rig = rig_from_poses(
        intrinsics,
        R,
        t,
        {
            "source": f"crosspose calibration extrinsics {source}".strip(),
            "units": "m",
            "up": "+Z" if floor != "none" else "camera",
        },
    )
    validation = validate_rig(rig)
    validation.raise_for_errors("solved rig")
    warnings += [str(w) for w in validation.warnings]
    if floor != "none":
        below = [n for n, c in zip(rig.names, rig.centers, strict=True) if c[2] < 0]
        if below:
            warnings.append(
                f"camera(s) {', '.join(below)} are below the floor: the floor or up direction is likely wrong"
            )
    return _result(rig, rel, sightings, {"scale": scale_note, "floor": level.source}, reference, warnings)


def _result(
    rig: CameraRig,
    rel: RelativeSolve,
    sightings: Sightings,
    notes: dict[str, object],
    reference: CameraRig | None,
    warnings: list[str],
) -> ExtrinsicsResult:
    names = rig.names
    shared = rel.inliers.T.astype(int) @ rel.inliers.astype(int)
    report: dict[str, object] = {
        "cameras": {
            n: {
                "median_px": round(float(rel.residuals_px[c]), 3),
                "rms_px": round(float(rel.rms_px[c]), 3),
                "sightings": int(rel.inliers[:, c].sum()),
                "centre_m": [round(float(v), 4) for v in rig.centers[c]],
            }
            for c, n in enumerate(names)
        },
        "pairs": {
            f"{names[a]}-{names[b]}": int(shared[a, b])
            for a in range(len(names))
            for b in range(a + 1, len(names))
        },
        **notes,
        "frames": int(np.unique(sightings.group).size),
    }
    if reference is not None:
        pixels = np.where(rel.inliers[..., None], sightings.pixels, np.nan)
        report["reference"] = compare_rigs(rig, reference, pixels=pixels, weights=rel.inliers.astype(float))
    report["warnings"] = warnings
    return ExtrinsicsResult(rig, report, warnings)


def refine_extrinsics(
    rig: CameraRig, sightings: Sightings, camera: str, reference: CameraRig | None = None, source: str = ""
) -> ExtrinsicsResult:
    """Re-solve one bumped ``camera`` of ``rig`` against the others (kept as they are, with the world's
    scale, floor and origin); the report says how far it moved.

    Raises:
        ExtrinsicsError: the camera is unknown or shares too little with the others.
        CalibrationError: the result fails validation.
    """
    rel = refine_camera(rig, sightings, camera)
    k = rig.names.index(camera)
    R, t = rig.R.copy(), rig.t.copy()
    R[k], t[k] = rel.R[k], rel.t[k]
    meta = {**rig.metadata, "source": f"crosspose calibration extrinsics --refine {camera} {source}".strip()}
    refined = rig_from_poses(rig, R, t, meta)
    validation = validate_rig(refined)
    validation.raise_for_errors("refined rig")
    warnings = list(rel.warnings) + [str(w) for w in validation.warnings]
    turn = float(np.degrees(np.arccos(np.clip((np.trace(R[k] @ rig.R[k].T) - 1) / 2, -1.0, 1.0))))
    moved = float(np.linalg.norm(refined.centers[k] - rig.centers[k]))
    notes: dict[str, object] = {
        "scale": "scale kept from the rig",
        "floor": "the rig (kept)",
        "refined": {"camera": camera, "rotation_deg": round(turn, 3), "centre_mm": round(1000 * moved, 1)},
    }
    return _result(refined, rel, sightings, notes, reference, warnings)


__all__ = [
    "ExtrinsicsError",
    "ExtrinsicsResult",
    "FloorSource",
    "Scale",
    "WorldError",
    "refine_extrinsics",
    "solve_extrinsics",
]
