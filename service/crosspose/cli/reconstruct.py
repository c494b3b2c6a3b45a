"""``crosspose reconstruct``: calibration + per-camera 2D detections or videos → 3D skeletons in a file
(``crosspose.reconstruct`` does the work)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crosspose.cli.choices import DETECTOR_LAYOUTS, DEVICES

if TYPE_CHECKING:
    from crosspose.reconstruct import Reconstruction
    from crosspose.solver import Solver

_HELP_CALIBRATION = ("Calibration file (crosspose JSON, anipose/Pose2Sim TOML, Qualisys .qca.txt, EasyMocap, "
                     "OpenCV yml).")
_HELP_KEYPOINTS = ("Folder with one sub-folder of OpenPose JSON per camera (cam1_json ↔ calibration camera "
                   "cam_01 …).")
_HELP_OUT = ("Output file: .trc (OpenSim markers, Y-up as Pose2Sim writes it), .json (crosspose, Z-up), .bvh "
             "(joint rotations on a T-pose, Y-up, metres, ZXY Euler), .c3d (points, mm, Z-up) or .jsonl "
             "(one frame per line: joints, confidence, rotations).")
_HELP_LAYOUT = f"Keypoint layout of the detector: {', '.join(DETECTOR_LAYOUTS)}."
_HELP_MAX_FRAMES = "Only the first N frames."
_HELP_PERSON = ("Which detection to follow per frame: confidence (the most confident person) or nearest "
                "(the one closest to the previous frame's choice).")
_HELP_VIDEOS = ("Folder with one synchronized video per camera (cam01.mp4 ↔ calibration camera cam_01 …, "
                "else in calibration order): images → crops → BlazePose + fusion network → solver.")
_HELP_OVERLAYS = ("With --videos: write per-view JPEGs here (<camera>/<frame>.jpg) with the crop box, the "
                  "heatmap maxima (orange) and the reprojected 3D joints (green; left joints dotted blue).")
_HELP_FUSED = "With --videos: solve from the cross-view fused heatmaps (--raw: each view's own heatmaps)."
_HELP_DEVICE = "With --videos: where the network runs: auto (TensorRT → CUDA → CPU), cuda, tensorrt or cpu."
_HELP_MODEL = "With --videos: the exported network (default: crosspose model export's cached file)."
_HELP_PERSONS = ("With --videos: follow up to N performers at once (1: the person most views agree on inside "
                 "the capture volume), each with a stable id; N > 1 writes a .jsonl whose lines carry the "
                 "websocket message's persons list.")
_HELP_LENGTHS = ("The performer's limb and foot lengths: take (learnt over the whole take by a first pass, "
                 "then the take solved again with them known from its first frame; with --videos the "
                 "network runs once, its heatmaps kept in a temporary file, ~1 MB a frame set) or online "
                 "(learnt as the take goes, one pass, as the live service does). Default: take, for each "
                 "performer with --persons N.")
_HELP_SKELETON = ("Joint layout to solve and write: crosspose-body32 (the full body: Human3.6M-17, then "
                  "heels, big toes, hand and face points) or h36m17.")


def reconstruct_command(
    calibration: Annotated[Path, typer.Option("--calibration", help=_HELP_CALIBRATION)],
    out: Annotated[Path, typer.Option("--out", help=_HELP_OUT)],
    keypoints: Annotated[Path | None, typer.Option("--keypoints", help=_HELP_KEYPOINTS)] = None,
    videos: Annotated[Path | None, typer.Option("--videos", help=_HELP_VIDEOS)] = None,
    layout: Annotated[str, typer.Option("--layout", help=_HELP_LAYOUT)] = "openpose-body25b",
    fps: Annotated[float | None, typer.Option(
        "--fps", min=0.001, help="Frame rate (default: the videos' own, or 30 for keypoints).")] = None,
    max_frames: Annotated[int | None, typer.Option("--frames", "--max-frames", min=1,
                                                   help=_HELP_MAX_FRAMES)] = None,
    person: Annotated[str, typer.Option("--person", help=_HELP_PERSON)] = "confidence",
    save_overlays: Annotated[Path | None, typer.Option("--save-overlays", help=_HELP_OVERLAYS)] = None,
    fused: Annotated[bool, typer.Option("--fused/--raw", help=_HELP_FUSED)] = True,
    device: Annotated[str, typer.Option("--device", help=_HELP_DEVICE)] = "auto",
    model: Annotated[Path | None, typer.Option("--model", help=_HELP_MODEL)] = None,
    skeleton: Annotated[str, typer.Option("--skeleton", help=_HELP_SKELETON)] = "crosspose-body32",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    persons: Annotated[int, typer.Option("--persons", min=1, max=8, help=_HELP_PERSONS)] = 1,
    lengths: Annotated[str | None, typer.Option("--lengths", help=_HELP_LENGTHS)] = None,
) -> None:
    """Turn per-camera 2D detections (OpenPose JSON) or synchronized videos into a 3D skeleton (the full body,
    or --skeleton h36m17).

    Example (keypoints): crosspose reconstruct --calibration Calib.toml --keypoints pose/ --fps 60 --out a.trc

    Example (videos): crosspose reconstruct --calibration Calib.qca.txt --videos videos/ --out take.trc
    --save-overlays overlays/
    """
    from crosspose.calibration import CalibrationError
    from crosspose.io.openpose import KeypointsError
    from crosspose.io.trc import TrcError
    from crosspose.reconstruct import (
        OUTPUT_SUFFIXES,
        ReconstructError,
        default_network,
        reconstruct,
        reconstruct_videos,
        write_reconstruction,
    )
    from crosspose.reconstruct_take import default_lengths
    from crosspose.skeleton import get_layout, get_skeleton

    if (keypoints is None) == (videos is None):
        raise typer.BadParameter("give either --keypoints DIR or --videos DIR (one of them)",
                                 param_hint="--keypoints / --videos")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(f"{out.name}: use a .trc, .json, .bvh, .c3d or .jsonl file name",
                                 param_hint="--out")
    if person not in ("confidence", "nearest"):
        raise typer.BadParameter(f"{person!r}: use confidence or nearest", param_hint="--person")
    if lengths is None:
        lengths = default_lengths(persons)
    if lengths not in ("take", "online"):
        raise typer.BadParameter(f"{lengths!r}: use take or online", param_hint="--lengths")
    if device not in DEVICES:
        raise typer.BadParameter(f"{device!r}: use one of {', '.join(DEVICES)}", param_hint="--device")
    try:
        get_layout(layout)
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="--layout") from None
    try:
        solved_layout = get_skeleton(skeleton)
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="--skeleton") from None
    if persons > 1 and videos is None:
        raise typer.BadParameter("several performers need --videos (keypoint files hold one chosen person)",
                                 param_hint="--persons")
    if persons > 1 and out.suffix.lower() != ".jsonl":
        raise typer.BadParameter(f"{out.name}: --persons {persons} writes every performer's skeleton per "
                                 "frame set to a .jsonl file", param_hint="--out")
    if persons > 1 and save_overlays is not None:
        raise typer.BadParameter("overlays are drawn for one performer: leave out --save-overlays with "
                                 "--persons", param_hint="--save-overlays")
    if save_overlays is not None and videos is None:
        raise typer.BadParameter("overlays need --videos (there are no images with --keypoints)",
                                 param_hint="--save-overlays")
    from crosspose.solver import Solver, use_one_thread

    use_one_thread()
    solver = Solver(solved_layout)
    try:
        if not out.parent.is_dir():
            raise ReconstructError(f"{out}: folder {out.parent} does not exist")
        if videos is not None and persons > 1:
            _reconstruct_persons(calibration, videos, out, persons, model=model, device=device, fused=fused,
                                 max_frames=max_frames, progress=progress, solver=solver, fps=fps,
                                 lengths=lengths)
            return
        if videos is not None:
            network = None if model is None else default_network(device, 4, model)
            rec = reconstruct_videos(calibration, videos, network=network, fused=fused, max_frames=max_frames,
                                     overlays_dir=save_overlays, progress=progress, device=device,
                                     solver=solver, lengths=lengths)
            if fps is not None:
                rec = dataclasses.replace(rec, fps=float(fps))
        else:
            assert keypoints is not None
            rec = reconstruct(calibration, keypoints, layout, fps=30.0 if fps is None else fps,
                              max_frames=max_frames,
                              person=person,  # type: ignore[arg-type]  # checked above
                              progress=progress, solver=solver, lengths=lengths)
        written = write_reconstruction(rec, out)
    except (ReconstructError, KeypointsError, CalibrationError, TrcError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except OSError as e:
        typer.echo(f"error: {e.filename or out}: {e.strerror or e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_summary(rec))
    run = rec.stats.get("lengths", {})
    if run.get("mode") == "take":
        typer.echo(f"lengths learnt over the take (first pass {run['first_pass_s']:.1f} s), the take solved "
                   f"again with them from its first frame ({run['second_pass_s']:.1f} s)")
    if "inference_ms" in rec.stats:
        ms = rec.stats.get("inference_ms", {})
        network_ms, total_ms = ms.get("network", math.nan), ms.get("total", math.nan)
        typer.echo(f"network on {rec.stats.get('provider')}: median {network_ms:.0f} ms per frame set "
                   f"({total_ms:.0f} ms with crops); detector ran {rec.stats.get('detector_runs')} time(s); "
                   f"solved from {rec.stats.get('heatmaps')} heatmaps")
    if save_overlays is not None:
        typer.echo(f"overlays in {save_overlays}")
    typer.echo(f"wrote {written}")


def _reconstruct_persons(calibration: Path, videos: Path, out: Path, persons: int, *, model: Path | None,
                         device: str, fused: bool, max_frames: int | None, progress: bool, solver: Solver,
                         fps: float | None, lengths: str) -> None:
    """``--persons N`` (N > 1): every performer per frame set into ``out`` (.jsonl); errors propagate."""
    from crosspose.reconstruct import default_network
    from crosspose.reconstruct_persons import reconstruct_videos_persons, write_persons_jsonl

    network = None if model is None else default_network(device, 4, model)
    rec = reconstruct_videos_persons(calibration, videos, max_persons=persons, network=network, fused=fused,
                                     max_frames=max_frames, progress=progress, device=device, solver=solver,
                                     lengths=lengths)
    if fps is not None:
        rec = dataclasses.replace(rec, fps=float(fps))
    written = write_persons_jsonl(rec, out)
    counts = [len(p) for p in rec.frames]
    typer.echo(f"{rec.num_frames} frames; ids {rec.ids}; persons per frame: "
               + ", ".join(f"{k}: {counts.count(k)}" for k in sorted(set(counts))))
    run = rec.stats.get("lengths", {})
    if run.get("mode") == "take":
        typer.echo(f"each performer's lengths learnt over the take (first pass {run['first_pass_s']:.1f} s), "
                   f"their frame sets solved again with them ({run['second_pass_s']:.1f} s)")
    ms = rec.stats.get("inference_ms", {})
    network_ms = ms.get("network", math.nan)
    typer.echo(f"network on {rec.stats.get('provider')}: median {network_ms:.0f} ms per frame "
               f"set for everyone; detector ran {rec.stats.get('detector_runs')} time(s) on "
               f"{rec.stats.get('detector_views')} view(s)")
    typer.echo(f"wrote {written}")


def _summary(rec: Reconstruction) -> str:
    import numpy as np

    ok = np.isfinite(rec.joints).all(-1) & (rec.views >= 2)
    solved = np.isfinite(rec.solve_ms)
    ms = float(np.median(rec.solve_ms[solved])) if solved.any() else float("nan")
    return (f"{rec.num_frames} frames, {int(solved.sum())} solved; joints seen by ≥ 2 views: "
            f"{100 * ok.mean():.1f} %; median solve {ms:.1f} ms/frame")
