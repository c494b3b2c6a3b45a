"""``crosspose calibration intrinsics|extrinsics|board``: calibrate a studio with crosspose itself (the
solving lives in ``crosspose.calibration``'s ``intrinsics``, ``extrinsics``, ``solve`` and ``sources``; this
module parses and prints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from crosspose.calibration.boards import BoardSpec

_HELP_BOARD = (
    "Board: checkerboard:COLSxROWS:SQUARE_M (inner corners, e.g. checkerboard:4x7:0.06) or "
    "charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT] (squares, e.g. charuco:7x5:0.04:0.03:DICT_5X5_100)."
)
_HELP_OUT = (
    "Calibration file to write; the format follows the name (.json crosspose, .toml anipose, .yml opencv, "
    ".qca.txt qualisys, a folder easymocap) unless --format says it."
)
_HELP_REPORT = "Also write the report as JSON here."


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _board(spec: str) -> BoardSpec:
    from crosspose.calibration.boards import BoardError, parse_board

    try:
        return parse_board(spec)
    except BoardError as e:
        raise typer.BadParameter(str(e), param_hint="--board") from None


def _camera_sources(pairs: list[str]) -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(
                f"{pair!r}: give each camera as NAME=PATH (e.g. cam01=images/cam01/)", param_hint="CAMERAS"
            )
        if name in sources:
            raise typer.BadParameter(f"camera {name!r} is given twice", param_hint="CAMERAS")
        sources[name] = Path(path)
    return sources


def _write_report(report: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2))
        typer.echo(f"report written to {path}")


def intrinsics_command(
    cameras: Annotated[
        list[str], typer.Argument(help="NAME=PATH per camera: a folder of images or a video.")
    ],
    board: Annotated[str, typer.Option("--board", help=_HELP_BOARD)],
    out: Annotated[Path, typer.Option("--out", help=_HELP_OUT)],
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="Output format (default: from --out).")
    ] = None,
    max_views: Annotated[
        int, typer.Option(min=4, help="Views kept per video (sharpest, best coverage).")
    ] = 30,
    report: Annotated[Path | None, typer.Option("--report", help=_HELP_REPORT)] = None,
) -> None:
    """Intrinsics of each camera from board images or a video; views whose error is over twice the median are
    rejected. Prints RMS, views used, coverage and principal-point uncertainty per camera. The cameras are
    written at the world origin (no extrinsics yet: see crosspose calibration extrinsics).

    Example: crosspose calibration intrinsics --board checkerboard:4x7:0.06 --out intrinsics.toml
    cam01=int_cam01_img/ cam02=int_cam02_img/ cam03=calib_cam03.mp4
    """
    import numpy as np

    from crosspose.calibration import CalibrationError, save_rig
    from crosspose.calibration.intrinsics import IntrinsicsError, calibrate_intrinsics, find_views
    from crosspose.geometry import Camera, CameraRig

    spec = _board(board)
    sources = _camera_sources(cameras)
    results = []
    try:
        for name, path in sources.items():
            results.append(calibrate_intrinsics(find_views(name, path, spec, max_views=max_views), spec))
    except IntrinsicsError as e:
        _fail(str(e))
    for r in results:
        used = int(r.used.sum())
        typer.echo(
            f"{r.camera}: RMS {r.rms:.3f} px, {used} of {r.used.size} views used, coverage "
            f"{100 * r.coverage:.0f} %, f = {r.K[0, 0]:.1f}, {r.K[1, 1]:.1f} px, principal point "
            f"{r.K[0, 2]:.1f}, {r.K[1, 2]:.1f} ± {r.principal_point_std[0]:.1f}, "
            f"{r.principal_point_std[1]:.1f} px"
        )
        rejected = [s for s, u in zip(r.sources, r.used, strict=True) if not u]
        if rejected:
            typer.echo(f"  rejected: {', '.join(rejected)}")
        for w in r.warnings:
            typer.echo(f"warning: {w}", err=True)
    rig = CameraRig(
        [Camera(r.camera, r.K, r.dist, np.eye(3), np.zeros(3), r.image_size, {}) for r in results],
        {"source": "crosspose calibration intrinsics", "board": str(spec), "extrinsics": "none"},
    )
    try:
        written = save_rig(rig, out, fmt)
    except CalibrationError as e:
        _fail(str(e))
    typer.echo(f"wrote {', '.join(str(p) for p in written)} ({len(rig)} cameras)")
    _write_report({"board": str(spec), "cameras": [r.summary() for r in results]}, report)


def board_command(
    board: Annotated[str, typer.Option("--board", help=_HELP_BOARD)] = "charuco:7x5:0.04:0.03:DICT_5X5_100",
    out: Annotated[Path, typer.Option("--out", help="board.pdf (vector, true scale) or board.png.")] = Path(
        "board.pdf"
    ),
    dpi: Annotated[float, typer.Option(min=72, help="PNG resolution (stored in the file).")] = 300.0,
) -> None:
    """Write a printable calibration board at true scale; print it at 100 % (no "fit to page") and measure one
    square to check.

    Example: crosspose calibration board --board charuco:7x5:0.04:0.03 --out board.pdf
    """
    from crosspose.calibration.boards import BoardError, save_board

    spec = _board(board)
    try:
        save_board(spec, out, dpi)
    except BoardError as e:
        _fail(str(e))
    w, h = spec.outer_size
    typer.echo(
        f"wrote {out}: {spec}, squares area {1000 * w:.0f} x {1000 * h:.0f} mm "
        f"(square {1000 * spec.square:g} mm)"
    )


_HELP_FLOOR = (
    "Where the floor (z = 0, +Z up) and origin come from: feet (the performer's supporting feet), board "
    "(the board in the first frame two cameras see it, lying on the floor) or none (the first "
    "camera's frame). Default: board with --board, else feet."
)


def extrinsics_command(
    intrinsics: Annotated[
        Path,
        typer.Option(
            "--intrinsics",
            help="Calibration file whose intrinsics are used (with --refine: the current rig, poses too).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help=_HELP_OUT)],
    cameras: Annotated[
        list[str] | None,
        typer.Argument(help="With --board: NAME=PATH per camera, a synchronized video or image folder."),
    ] = None,
    board: Annotated[str | None, typer.Option("--board", help=_HELP_BOARD)] = None,
    person: Annotated[
        Path | None,
        typer.Option(
            "--person",
            help="Folder of synchronized videos (cam01.mp4 …): the performer through crosspose's 2D network.",
        ),
    ] = None,
    keypoints: Annotated[
        Path | None,
        typer.Option(
            "--keypoints", help="Folder with one OpenPose JSON folder per camera (as reconstruct reads)."
        ),
    ] = None,
    layout: Annotated[
        str, typer.Option("--layout", help="Keypoint layout of --keypoints.")
    ] = "openpose-body25b",
    length: Annotated[
        str | None,
        typer.Option(
            "--length", help="Scale from a measured distance between two camera centres: CAM-CAM=METRES."
        ),
    ] = None,
    height: Annotated[
        float | None,
        typer.Option(
            "--height", min=0.5, max=2.5, help="Scale from the performer's height in metres (approximate)."
        ),
    ] = None,
    floor: Annotated[str | None, typer.Option("--floor", help=_HELP_FLOOR)] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference", help="Compare with this calibration: rotation degrees, centre millimetres."
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="Output format (default: from --out).")
    ] = None,
    frames: Annotated[int | None, typer.Option("--frames", min=1, help="Only the first N frames.")] = None,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Keypoint confidence floor.")] = 0.5,
    step: Annotated[int, typer.Option(min=1, help="With --board: every STEP-th frame.")] = 1,
    device: Annotated[str, typer.Option(help="With --person: where the network runs.")] = "auto",
    refine: Annotated[
        str | None,
        typer.Option(
            "--refine",
            help="Re-solve only this (bumped) camera against the others of the --intrinsics rig, which are "
            "kept with their world's scale and floor.",
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help=_HELP_REPORT)] = None,
) -> None:
    """Camera poses from what the cameras see together (a board, or the performer), one robust bundle
    adjustment over all of it; metric scale from the board, --length or --height; floor and origin from a
    board on the floor or the performer's feet. Refuses data that cannot constrain a camera, naming it.

    Example: crosspose calibration extrinsics --intrinsics intrinsics.toml --keypoints pose/ --length
    cam01-cam02=2.85 --out studio.toml --reference Calib.qca.txt

    Example: crosspose calibration extrinsics --intrinsics intrinsics.toml --board charuco:7x5:0.04:0.03
    --out studio.json cam01=board01.mp4 cam02=board02.mp4
    """
    from crosspose.calibration import CalibrationError, load_rig, load_rig_with_report, save_rig
    from crosspose.calibration.extrinsics import ExtrinsicsError
    from crosspose.calibration.solve import Scale, refine_extrinsics, solve_extrinsics
    from crosspose.calibration.sources import board_sightings, keypoint_sightings, person_sightings
    from crosspose.calibration.world import WorldError
    from crosspose.io.openpose import KeypointsError
    from crosspose.skeleton import get_layout

    given = [x is not None for x in (board, person, keypoints)]
    if sum(given) != 1:
        raise typer.BadParameter(
            "give one of --board (with NAME=PATH per camera), --person or --keypoints",
            param_hint="--board / --person / --keypoints",
        )
    if cameras and board is None:
        raise typer.BadParameter("NAME=PATH arguments go with --board", param_hint="CAMERAS")
    spec = _board(board) if board is not None else None
    if refine is not None and (length is not None or height is not None or floor is not None):
        raise typer.BadParameter(
            "--refine keeps the rig's scale and floor: drop --length, --height and --floor",
            param_hint="--refine",
        )
    floor = floor or ("board" if spec is not None else "feet")
    if floor not in ("feet", "board", "none"):
        raise typer.BadParameter(f"{floor!r}: use feet, board or none", param_hint="--floor")
    if keypoints is not None:
        try:
            get_layout(layout)
        except KeyError as e:
            raise typer.BadParameter(str(e.args[0]), param_hint="--layout") from None
    try:
        rig, _ = load_rig_with_report(intrinsics)  # its (absent) extrinsics are not looked at
        ref = load_rig(reference) if reference is not None else None
        if spec is not None:
            sightings = board_sightings(_camera_sources(cameras or []), rig, spec, step)
            source = f"--board {spec}"
        elif keypoints is not None:
            sightings = keypoint_sightings(keypoints, rig, layout, frames, min_confidence)
            source = f"--keypoints {keypoints.name} ({layout})"
        else:
            assert person is not None
            sightings = person_sightings(
                person, rig, max_frames=frames, min_confidence=min_confidence, device=device
            )
            source = f"--person {person.name}"
        if refine is not None:
            result = refine_extrinsics(rig, sightings, refine, ref, source)
        else:
            scale = Scale(board=spec, length=length, height=height)
            result = solve_extrinsics(rig, sightings, scale, floor, ref, source)  # type: ignore[arg-type]
        written = save_rig(result.rig, out, fmt)
    except (ExtrinsicsError, WorldError, CalibrationError, KeypointsError) as e:
        _fail(str(e))
    _print_extrinsics(result.report)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(
        f"wrote {', '.join(str(p) for p in written)} ({len(result.rig)} cameras, metres, "
        f"{'+Z up, floor z = 0' if floor != 'none' else 'first camera frame'})"
    )
    _write_report(result.report, report)


def _print_extrinsics(report: dict[str, Any]) -> None:
    typer.echo(f"{report['frames']} frames; {report['scale']}; floor from {report['floor']}")
    if "refined" in report:
        moved = report["refined"]
        typer.echo(f"{moved['camera']} moved {moved['rotation_deg']:.2f}° and {moved['centre_mm']:.0f} mm "
                   "against the others")
    for name, cam in report["cameras"].items():
        x, y, z = cam["centre_m"]
        typer.echo(
            f"{name}: reprojection median {cam['median_px']:.2f} px, RMS {cam['rms_px']:.2f} px over "
            f"{cam['sightings']} sightings; centre {x:.3f}, {y:.3f}, {z:.3f} m"
        )
    typer.echo("shared sightings: " + ", ".join(f"{k} {v}" for k, v in report["pairs"].items()))
    if "reference" in report:
        ref = report["reference"]
        for name, d in ref["cameras"].items():
            typer.echo(
                f"vs reference {name}: rotation {d['rotation_deg']:.2f}°, "
                f"centre {d['centre_mm_similarity']:.0f} "
                f"mm (similarity fit), {d['centre_mm_rigid']:.0f} mm (rigid fit, our scale), "
                f"{d['centre_mm_as_is']:.0f} mm as is"
            )
        if "points_mm" in ref:
            p = ref["points_mm"]
            typer.echo(
                f"vs reference points: median {p['median']:.0f} mm, mean {p['mean']:.0f} mm "
                f"({p['count']} points, after the similarity fit)"
            )
