"""Offline reconstruction: a calibration + per-camera OpenPose JSON folders → 3D skeletons → TRC / JSON.

For Pose2Sim/OpenPose users (DESIGN §5, ``crosspose reconstruct``). Each frame's detections are mapped
into H36M-17 (:func:`crosspose.skeleton.map_keypoints`) and solved by the same
:meth:`crosspose.solver.Solver.solve_keypoints` as the live service, frame by frame with its tracking
and per-performer limb lengths. Outputs: ``.trc`` (OpenSim, Y-up as Pose2Sim writes it, H36M joint
names as markers) or ``.json`` (ours: Z-up metres, per-joint confidence and supporting views).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from crosspose.calibration import load_rig
from crosspose.calibration.validation import CalibrationError
from crosspose.geometry import CameraRig
from crosspose.io.openpose import KeypointsError, PersonChoice, read_multiview
from crosspose.io.trc import Trc, TrcError, write_trc
from crosspose.skeleton import H36M17, get_layout, map_keypoints

OUTPUT_SUFFIXES = (".trc", ".json")
JSON_FORMAT = "crosspose-reconstruction"


class ReconstructError(ValueError):
    """Inputs or outputs a user got wrong (the message says what and how to fix it)."""


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A reconstructed take (``N`` frames, H36M-17 joints).

    Attributes:
        joints: ``(N, 17, 3)`` metres, our Z-up world; NaN where a frame had too few views.
        confidence: ``(N, 17)`` in ``[0, 1]`` (below 0.1 for joints fewer than two views support).
        views: ``(N, 17)`` number of views supporting each joint.
        solve_ms: ``(N,)`` wall time of each frame's solve (keypoints → heatmaps → 3D), ms; NaN if skipped.
        frame_numbers: ``(N,)`` frame numbers from the keypoint file names.
        camera_names: the calibration's cameras, in the order solved.
        fps: frames per second of the take.
    """

    joints: np.ndarray
    confidence: np.ndarray
    views: np.ndarray
    solve_ms: np.ndarray
    frame_numbers: np.ndarray
    camera_names: tuple[str, ...]
    fps: float = 30.0

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def times(self) -> np.ndarray:
        """``(N,)`` seconds from the first frame, from the frame numbers and ``fps``."""
        if self.num_frames == 0:
            return np.zeros(0)
        return (self.frame_numbers - self.frame_numbers[0]) / self.fps

    def to_trc(self, units: str = "m", min_views: int = 2) -> Trc:
        """As OpenSim markers named after the H36M joints (frames numbered from 1).

        Joints fewer than ``min_views`` views support are left empty rather than guessed.
        """
        joints = np.where((self.views >= min_views)[..., None], self.joints, np.nan)
        numbers = np.arange(1, self.num_frames + 1) if self.num_frames == 0 else (
            self.frame_numbers - self.frame_numbers[0] + 1)
        return Trc(H36M17.joints, joints, self.fps, units, self.times, numbers)

    def to_json(self) -> dict[str, Any]:
        """Our JSON document (Z-up metres; ``null`` for a missing coordinate)."""

        def coords(a: np.ndarray) -> list[list[float | None]]:
            return [[None if not math.isfinite(v) else round(float(v), 6) for v in p] for p in a]

        frames = [
            {
                "frame": int(self.frame_numbers[i]),
                "time": round(float(self.times[i]), 6),
                "joints": coords(self.joints[i]),
                "confidence": [round(float(c), 4) for c in self.confidence[i]],
                "views": [int(v) for v in self.views[i]],
                "solve_ms": round(float(self.solve_ms[i]), 3) if math.isfinite(self.solve_ms[i]) else None,
            }
            for i in range(self.num_frames)
        ]
        return {
            "format": JSON_FORMAT,
            "v": 1,
            "skeleton": H36M17.name,
            "joint_names": list(H36M17.joints),
            "bones": [list(b) for b in H36M17.bones],
            "units": "m",
            "up": "z",
            "fps": self.fps,
            "cameras": list(self.camera_names),
            "frames": frames,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reconstruction:
        """Inverse of :meth:`to_json`."""
        if doc.get("format") != JSON_FORMAT or doc.get("skeleton") != H36M17.name:
            raise ReconstructError(f"not a {JSON_FORMAT} document of skeleton {H36M17.name}")
        frames = doc["frames"]
        j = H36M17.num_joints
        joints = np.array([[[np.nan if v is None else v for v in p] for p in f["joints"]] for f in frames],
                          dtype=np.float64).reshape(-1, H36M17.num_joints, 3)
        return cls(
            joints=joints,
            confidence=np.array([f["confidence"] for f in frames], dtype=np.float64).reshape(-1, j),
            views=np.array([f["views"] for f in frames], dtype=np.int64).reshape(-1, j),
            solve_ms=np.array([np.nan if f["solve_ms"] is None else f["solve_ms"] for f in frames]),
            frame_numbers=np.array([f["frame"] for f in frames], dtype=np.int64),
            camera_names=tuple(doc["cameras"]),
            fps=float(doc["fps"]),
        )


def _rig(calibration: str | Path | CameraRig) -> CameraRig:
    if isinstance(calibration, CameraRig):
        return calibration
    path = Path(calibration)
    if not path.exists():
        raise ReconstructError(f"calibration file {path} does not exist")
    return load_rig(path)


def solve_sequence(keypoints: np.ndarray, rig: CameraRig, *, progress: bool = True,
                   solver: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``(N, C, 17, 3)`` H36M keypoints frame by frame → joints, confidence, views, solve_ms.

    A frame where fewer than two cameras see anyone is not solved (NaN joints, no views); the
    solver's own fallback (confidence drop, joints at the edge of the tracked grid) restarts the cold
    search when the performer reappears elsewhere.
    """
    from tqdm import tqdm

    from crosspose.solver import Solver

    if keypoints.ndim != 4 or keypoints.shape[1:] != (len(rig), H36M17.num_joints, 3):
        raise ValueError(
            f"keypoints must have shape (N, {len(rig)}, {H36M17.num_joints}, 3), got {keypoints.shape}")
    solver = Solver() if solver is None else solver
    n = keypoints.shape[0]
    joints = np.full((n, H36M17.num_joints, 3), np.nan)
    confidence = np.zeros((n, H36M17.num_joints))
    views = np.zeros((n, H36M17.num_joints), dtype=np.int64)
    solve_ms = np.full(n, np.nan)
    for i in tqdm(range(n), desc="reconstruct", unit="frame", disable=not progress):
        seen = (keypoints[i, :, :, 2] > 0).any(axis=-1).sum()
        if seen < 2:
            continue
        t0 = time.perf_counter()
        pose = solver.solve_keypoints(keypoints[i], rig)
        solve_ms[i] = 1e3 * (time.perf_counter() - t0)
        joints[i], confidence[i], views[i] = pose.joints, pose.confidence, pose.views
    return joints, confidence, views, solve_ms


def reconstruct(
    calibration: str | Path | CameraRig,
    keypoints_dir: str | Path,
    layout: str = "openpose-body25b",
    *,
    fps: float = 30.0,
    max_frames: int | None = None,
    person: PersonChoice = "confidence",
    progress: bool = True,
    solver: Any = None,
) -> Reconstruction:
    """Reconstruct a take from per-camera OpenPose JSON folders.

    Args:
        calibration: calibration file (any format :func:`~crosspose.calibration.load_rig` reads) or a rig.
        keypoints_dir: one sub-folder per camera, matched to the calibration's cameras by the number
            in their names (``cam1_json`` ↔ ``cam_01``), else by order.
        layout: the detector's keypoint layout (``openpose-body25b``, ``body25``, ``coco17`` …).
        fps: frame rate of the videos (for times in the outputs).
        max_frames: solve only the first frames (``None``: all).
        person: which detected person to follow (see :mod:`crosspose.io.openpose`).
        progress: show a progress bar.
        solver: a :class:`~crosspose.solver.Solver` to use (default: a new one with default options).
    Raises:
        ReconstructError, KeypointsError, CalibrationError: bad inputs, with a message saying which.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ReconstructError(f"fps must be a positive number, got {fps}")
    try:
        src = get_layout(layout)
    except KeyError as e:
        raise ReconstructError(str(e.args[0])) from None
    rig = _rig(calibration)
    views = read_multiview(keypoints_dir, rig.names, src.num_joints, person)
    raw = views.keypoints if max_frames is None else views.keypoints[:max_frames]
    numbers = views.frame_numbers[: raw.shape[0]]
    h36m = map_keypoints(raw, src)  # (N, C, 17, 3)
    joints, confidence, support, solve_ms = solve_sequence(h36m, rig, progress=progress, solver=solver)
    return Reconstruction(joints, confidence, support, solve_ms, numbers, tuple(rig.names), float(fps))


def write_reconstruction(rec: Reconstruction, path: str | Path) -> Path:
    """Write ``rec`` by the suffix of ``path``: ``.trc`` (OpenSim, Y-up) or ``.json`` (ours, Z-up)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ReconstructError(
            f"{path}: unknown output type {suffix or '(none)'}; use one of {', '.join(OUTPUT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ReconstructError(f"{path}: folder {path.parent} does not exist")
    if suffix == ".trc":
        return write_trc(rec.to_trc(), path)
    path.write_text(json.dumps(rec.to_json()), encoding="utf-8")
    return path


def read_reconstruction(path: str | Path) -> Reconstruction:
    """Read our ``.json`` output back."""
    path = Path(path)
    try:
        return Reconstruction.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReconstructError(f"{path}: not a {JSON_FORMAT} file ({e})") from None


def _summary(rec: Reconstruction) -> str:
    ok = np.isfinite(rec.joints).all(-1) & (rec.views >= 2)
    solved = np.isfinite(rec.solve_ms)
    ms = float(np.median(rec.solve_ms[solved])) if solved.any() else float("nan")
    return (f"{rec.num_frames} frames, {int(solved.sum())} solved; joints seen by ≥ 2 views: "
            f"{100 * ok.mean():.1f} %; median solve {ms:.1f} ms/frame")


_HELP_CALIBRATION = ("Calibration file (crosspose JSON, anipose/Pose2Sim TOML, Qualisys .qca.txt, EasyMocap, "
                     "OpenCV yml).")
_HELP_KEYPOINTS = ("Folder with one sub-folder of OpenPose JSON per camera (cam1_json ↔ calibration camera "
                   "cam_01 …).")
_HELP_OUT = "Output file: .trc (OpenSim, Y-up as Pose2Sim writes it) or .json (crosspose, Z-up)."
_HELP_LAYOUT = "Keypoint layout of the detector: openpose-body25b, body25, coco17, blazepose33."
_HELP_MAX_FRAMES = "Only the first N frames."
_HELP_PERSON = ("Which detection to follow per frame: confidence (the most confident person) or nearest "
                "(the one closest to the previous frame's choice).")


def reconstruct_command(
    calibration: Annotated[Path, typer.Option("--calibration", help=_HELP_CALIBRATION)],
    keypoints: Annotated[Path, typer.Option("--keypoints", help=_HELP_KEYPOINTS)],
    out: Annotated[Path, typer.Option("--out", help=_HELP_OUT)],
    layout: Annotated[str, typer.Option("--layout", help=_HELP_LAYOUT)] = "openpose-body25b",
    fps: Annotated[float, typer.Option("--fps", min=0.001, help="Frame rate of the videos.")] = 30.0,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help=_HELP_MAX_FRAMES)] = None,
    person: Annotated[str, typer.Option("--person", help=_HELP_PERSON)] = "confidence",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Turn per-camera 2D detections (OpenPose JSON) into a 3D skeleton file (H36M-17 joints).

    Example: crosspose reconstruct --calibration Calib.toml --keypoints pose/ --layout openpose-body25b
    --fps 60 --out take.trc
    """
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(f"{out.name}: use a .trc or .json file name", param_hint="--out")
    if person not in ("confidence", "nearest"):
        raise typer.BadParameter(f"{person!r}: use confidence or nearest", param_hint="--person")
    try:
        get_layout(layout)
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="--layout") from None
    from crosspose.solver import use_one_thread

    use_one_thread()
    try:
        rec = reconstruct(calibration, keypoints, layout, fps=fps, max_frames=max_frames,
                          person=person,  # type: ignore[arg-type]  # checked above
                          progress=progress)
        written = write_reconstruction(rec, out)
    except (ReconstructError, KeypointsError, CalibrationError, TrcError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except OSError as e:
        typer.echo(f"error: {e.filename or out}: {e.strerror or e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_summary(rec))
    typer.echo(f"wrote {written}")
