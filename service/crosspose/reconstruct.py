"""Offline reconstruction: calibration + per-camera OpenPose JSON or videos → 3D skeletons → TRC / JSON.

Two inputs (DESIGN §5, ``crosspose reconstruct``):

* ``--keypoints``, for Pose2Sim/OpenPose users: each frame's detections are mapped into the solver's
  joint layout (:func:`crosspose.skeleton.map_keypoints`) and solved by
  :meth:`crosspose.solver.Solver.solve_keypoints`;
* ``--videos``: synchronized videos, one per camera, through the live service's own path
  (:func:`crosspose.core.videos.track_videos`: crops from the performer's track,
  the detector on a cold start, backbone + fusion network, :meth:`crosspose.solver.Solver.solve`).

Both solve frame by frame with the solver's tracking and per-performer limb lengths, in the solver's
joint layout (:class:`Reconstruction.skeleton`). Outputs: ``.trc`` (OpenSim, Y-up as Pose2Sim writes it,
the layout's joint names as markers), ``.json`` (ours: Z-up metres, per-joint confidence and supporting
views, the layout named), or :mod:`crosspose.motion`'s ``.bvh`` (rotations), ``.c3d`` and ``.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crosspose.calibration import load_rig
from crosspose.geometry import CameraRig
from crosspose.io.openpose import PersonChoice, read_multiview
from crosspose.io.trc import Trc, write_trc
from crosspose.io.videos import SyncedVideos, VideoError, video_files
from crosspose.skeleton import DEFAULT_SKELETON, H36M17, Skeleton, get_layout, get_skeleton, map_keypoints

OUTPUT_SUFFIXES = (".trc", ".json", ".bvh", ".c3d", ".jsonl")
JSON_FORMAT = "crosspose-reconstruction"


class ReconstructError(ValueError):
    """Inputs or outputs a user got wrong (the message says what and how to fix it)."""


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A reconstructed take (``N`` frames, ``J`` joints of :attr:`skeleton`).

    Attributes:
        joints: ``(N, J, 3)`` metres, our Z-up world; NaN where a frame had too few views.
        confidence: ``(N, J)`` in ``[0, 1]`` (below 0.1 for joints fewer than two views support).
        views: ``(N, J)`` number of views supporting each joint.
        solve_ms: ``(N,)`` wall time of each frame's solve (keypoints → heatmaps → 3D), ms; NaN if skipped.
        frame_numbers: ``(N,)`` frame numbers from the keypoint file names.
        camera_names: the calibration's cameras, in the order solved.
        fps: frames per second of the take.
        stats: extras of the run (for videos: inference timings, detector runs, the network's provider).
        skeleton: the joint layout (the solver's).
    Raises:
        ValueError: arrays whose joint axis is not the layout's.
    """

    joints: np.ndarray
    confidence: np.ndarray
    views: np.ndarray
    solve_ms: np.ndarray
    frame_numbers: np.ndarray
    camera_names: tuple[str, ...]
    fps: float = 30.0
    stats: dict[str, Any] = field(default_factory=dict)
    skeleton: Skeleton = H36M17

    def __post_init__(self) -> None:
        n, j = self.joints.shape[0], self.skeleton.num_joints
        if self.joints.shape != (n, j, 3) or self.confidence.shape != (n, j) or self.views.shape != (n, j):
            raise ValueError(
                f"a reconstruction of layout {self.skeleton.name} needs joints (N, {j}, 3), confidence and "
                f"views (N, {j}); got {self.joints.shape}, {self.confidence.shape}, {self.views.shape}")

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
        """As OpenSim markers named after the layout's joints (frames numbered from 1).

        Joints fewer than ``min_views`` views support are left empty rather than guessed.
        """
        joints = np.where((self.views >= min_views)[..., None], self.joints, np.nan)
        numbers = np.arange(1, self.num_frames + 1) if self.num_frames == 0 else (
            self.frame_numbers - self.frame_numbers[0] + 1)
        return Trc(self.skeleton.joints, joints, self.fps, units, self.times, numbers)

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
            "skeleton": self.skeleton.name,
            "joint_names": list(self.skeleton.joints),
            "bones": [list(b) for b in self.skeleton.bones],
            "units": "m",
            "up": "z",
            "fps": self.fps,
            "cameras": list(self.camera_names),
            "frames": frames,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reconstruction:
        """Inverse of :meth:`to_json`, in the layout the document names (one :func:`get_skeleton` knows,
        whose joint names the document repeats; every frame one row per joint)."""
        if doc.get("format") != JSON_FORMAT:
            raise ReconstructError(f"not a {JSON_FORMAT} document")
        try:
            skeleton = get_skeleton(str(doc.get("skeleton")))
        except KeyError as err:
            raise ReconstructError(f"a {JSON_FORMAT} document of {err.args[0]}") from None
        if list(doc.get("joint_names", skeleton.joints)) != list(skeleton.joints):
            raise ReconstructError(f"the document's joint_names are not those of layout {skeleton.name}")
        frames = doc["frames"]
        j = skeleton.num_joints
        for f in frames:
            counts = [len(f[key]) for key in ("joints", "confidence", "views")]
            if counts != [j, j, j]:
                raise ReconstructError(f"frame {f.get('frame')} has {counts[0]} joints, {counts[1]} "
                                       f"confidences and {counts[2]} view counts; layout {skeleton.name} has "
                                       f"{j} joints")
        joints = np.array([[[np.nan if v is None else v for v in p] for p in f["joints"]] for f in frames],
                          dtype=np.float64).reshape(-1, j, 3)
        return cls(
            joints=joints,
            confidence=np.array([f["confidence"] for f in frames], dtype=np.float64).reshape(-1, j),
            views=np.array([f["views"] for f in frames], dtype=np.int64).reshape(-1, j),
            solve_ms=np.array([np.nan if f["solve_ms"] is None else f["solve_ms"] for f in frames]),
            frame_numbers=np.array([f["frame"] for f in frames], dtype=np.int64),
            camera_names=tuple(doc["cameras"]),
            fps=float(doc["fps"]),
            skeleton=skeleton,
        )


def _rig(calibration: str | Path | CameraRig) -> CameraRig:
    if isinstance(calibration, CameraRig):
        return calibration
    path = Path(calibration)
    if not path.exists():
        raise ReconstructError(f"calibration file {path} does not exist")
    return load_rig(path)


def solve_sequence(keypoints: np.ndarray, rig: CameraRig, *, progress: bool = True, solver: Any = None,
                   track: Any = None,
                   learnt: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``(N, C, J, 3)`` keypoints in the solver's layout frame by frame → joints, confidence, views,
    solve_ms.

    A frame where fewer than two cameras see anyone is not solved (NaN joints, no views); the
    solver's own fallback (confidence drop, joints at the edge of the tracked grid) restarts the cold
    search when the performer reappears elsewhere. ``track``: the performer's
    :class:`~crosspose.solver.solver.SolverTrack` (default: the solver's own); ``learnt``: a
    :class:`~crosspose.solver.take.TakeLengths` that collects every solved pose's measured lengths.

    Raises:
        ValueError: keypoints whose joint axis is not the solver's layout's.
    """
    from tqdm import tqdm

    from crosspose.solver import Solver

    solver = Solver() if solver is None else solver
    layout: Skeleton = solver.skeleton
    j = layout.num_joints
    if keypoints.ndim != 4 or keypoints.shape[1:] != (len(rig), j, 3):
        raise ValueError(
            f"keypoints must have shape (N, {len(rig)}, {j}, 3) (the solver's layout {layout.name}), got "
            f"{keypoints.shape}")
    n = keypoints.shape[0]
    joints = np.full((n, j, 3), np.nan)
    confidence = np.zeros((n, j))
    views = np.zeros((n, j), dtype=np.int64)
    solve_ms = np.full(n, np.nan)
    for i in tqdm(range(n), desc="reconstruct", unit="frame", disable=not progress):
        seen = (keypoints[i, :, :, 2] > 0).any(axis=-1).sum()
        if seen < 2:
            continue
        t0 = time.perf_counter()
        pose = solver.solve_keypoints(keypoints[i], rig, track=track)
        solve_ms[i] = 1e3 * (time.perf_counter() - t0)
        if learnt is not None:
            learnt.add(pose)
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
    lengths: str = "take",
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
        solver: a :class:`~crosspose.solver.Solver` to use (default: a new one with default options in
            the default layout, the full body); the detections are mapped into its layout (joints the
            detector lacks, e.g. OpenPose's hand points, are missing in every frame).
        lengths: ``take``: solve the take twice, the second time with the performer's limb and foot
            lengths learnt over the whole first pass known from the first frame (:mod:`crosspose.solver.
            take`); ``online``: once, learnt as the take goes.
    Raises:
        ReconstructError, KeypointsError, CalibrationError: bad inputs, with a message saying which (also a
            solver layout the detector's layout cannot be mapped into).
    """
    from crosspose.solver import Solver

    _check_lengths(lengths)
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
    solver = Solver(DEFAULT_SKELETON) if solver is None else solver
    skeleton: Skeleton = solver.skeleton
    try:
        mapped = map_keypoints(raw, src, dst=skeleton.name)  # (N, C, J, 3)
    except (KeyError, ValueError) as err:
        raise ReconstructError(f"{src.name} keypoints cannot be mapped into the solver's layout "
                               f"{skeleton.name}: {err}") from None
    run: dict[str, Any] = {"mode": "online"}
    if lengths == "take":
        joints, confidence, support, solve_ms, run = solve_take(mapped, rig, solver=solver, progress=progress)
    else:
        joints, confidence, support, solve_ms = solve_sequence(mapped, rig, progress=progress, solver=solver)
    return Reconstruction(joints, confidence, support, solve_ms, numbers, tuple(rig.names), float(fps),
                          stats={"lengths": run}, skeleton=skeleton)


def solve_take(keypoints: np.ndarray, rig: CameraRig, *, solver: Any = None, progress: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """:func:`solve_sequence` twice: the first pass learns the performer's lengths over the whole take
    (:class:`~crosspose.solver.take.TakeLengths`), the second solves the take with them known from its first
    frame. Returns joints, confidence, views and solve_ms of the second pass, and what it learnt and how long
    each pass took (``stats["lengths"]`` of :class:`Reconstruction`)."""
    from crosspose.solver import Solver
    from crosspose.solver.take import TakeLengths, fixed_lengths_solver

    solver = Solver() if solver is None else solver
    learnt = TakeLengths(solver.skeleton)
    start = time.perf_counter()
    solve_sequence(keypoints, rig, progress=progress, solver=solver, learnt=learnt)
    first_pass_s, start = time.perf_counter() - start, time.perf_counter()
    fixed = fixed_lengths_solver(solver)
    joints, confidence, views, solve_ms = solve_sequence(keypoints, rig, progress=progress, solver=fixed,
                                                         track=learnt.seed(fixed.new_track()))
    return joints, confidence, views, solve_ms, {
        "mode": "take", "learnt": learnt.to_json(), "first_pass_s": round(first_pass_s, 3),
        "second_pass_s": round(time.perf_counter() - start, 3)}


@dataclass(frozen=True)
class OverlayMarks:
    """What a frame set's overlays draw besides its images and solved joints: per view its label, the crop
    the network saw and the heatmap maxima (``(J, 2)`` image pixels, None for a view without a valid crop).
    Small, so a two-pass reconstruction keeps them from the first pass and draws once the joints are final."""

    index: int
    labels: tuple[str, ...]
    crops: tuple[Any, ...]
    maxima: tuple[np.ndarray | None, ...]


def overlay_marks(index: int, result: Any, rig: CameraRig, fused: bool) -> OverlayMarks:
    """The marks of frame set ``index`` from its network result (``InferenceResult``)."""
    maxima = result.argmax_pixels(fused=fused)
    return OverlayMarks(
        index,
        tuple(f"{rig.names[c]} frame {index} crop:{result.sources[c]} presence {result.presence[c]:.2f}"
              for c in range(len(rig))),
        tuple(result.crops),
        tuple(maxima[c] if result.valid[c] else None for c in range(len(rig))))


def write_overlays(folder: Path, images: Sequence[np.ndarray | None], marks: OverlayMarks,
                   joints: np.ndarray | None, views: np.ndarray | None, rig: CameraRig,
                   skeleton: Skeleton) -> None:
    """Write ``<camera>/<frame>.jpg`` under ``folder`` for each view that has an image: the crop, the
    heatmap maxima and the solved ``joints`` (``(J, 3)`` metres; those fewer than two ``views`` support
    are not drawn; None: no pose) projected into it."""
    import cv2

    from crosspose.inference.overlays import draw_overlay

    reprojected = None
    if joints is not None and views is not None:
        shown = np.where((np.asarray(views) >= 2)[:, None], joints, np.nan)
        reprojected = np.swapaxes(np.asarray(rig.project(shown), dtype=np.float64), 0, 1)  # (C, J, 2)
    for c, image in enumerate(images):
        if image is None:
            continue
        out = draw_overlay(image, marks.crops[c], None if reprojected is None else reprojected[c],
                           marks.maxima[c], marks.labels[c], skeleton)
        target = folder / rig.names[c]
        target.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target / f"{marks.index:06d}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 85])


def default_network(device: str = "auto", num_cameras: int = 4, model: Path | None = None,
                    skeleton: Skeleton = DEFAULT_SKELETON) -> Any:
    """The exported network (``model``, default ``crosspose model export``'s cached file for ``skeleton``)
    in ONNX Runtime on ``device`` (ReconstructError when the file is missing)."""
    from crosspose.config import OnnxRuntimeInference
    from crosspose.inference.runtimes import open_network
    from crosspose.nets.export import default_onnx_path

    settings = OnnxRuntimeInference(device=device, threads=0)  # type: ignore[arg-type]  # checked by callers
    path = model if model is not None else default_onnx_path(skeleton)
    if model is None and not path.is_file():
        raise ReconstructError(f"no exported network for layout {skeleton.name} at {path}; write it with "
                               f"`crosspose model export --skeleton {skeleton.name}`")
    try:
        return open_network(settings, path=path, num_cameras=num_cameras)
    except FileNotFoundError as err:
        raise ReconstructError(str(err)) from None


def video_inputs(calibration: Any, videos_dir: str | Path, solver: Any, network: Any,
                 device: str) -> tuple[CameraRig, list[Path | None], Any, Any]:
    """What a reconstruction from videos opens first: the rig, each camera's video (:func:`video_files`),
    the solver (default: a new one in the default layout) and the network (default: :func:`default_network`
    on ``device`` in the solver's layout).

    Raises:
        ReconstructError, CalibrationError: bad inputs, with a message saying which (also a network whose
            heatmaps are of another layout than the solver's).
    """
    from crosspose.solver import Solver

    rig = _rig(calibration)
    try:
        paths = video_files(videos_dir, rig.names)
    except VideoError as e:
        raise ReconstructError(str(e)) from None
    solver = Solver(DEFAULT_SKELETON) if solver is None else solver
    network = default_network(device, len(rig), skeleton=solver.skeleton) if network is None else network
    heatmap_layout: Skeleton = getattr(network, "skeleton", solver.skeleton)
    if heatmap_layout.name != solver.skeleton.name:
        raise ReconstructError(f"the network's heatmaps are of layout {heatmap_layout.name} but the solver "
                               f"solves {solver.skeleton.name}: use a network exported for the solver's "
                               "layout")
    return rig, paths, solver, network


def open_videos(paths: list[Path | None], max_frames: int | None) -> SyncedVideos:
    """The cameras' videos (:func:`video_inputs`' paths) read in step, up to ``max_frames``.

    Raises:
        ReconstructError: a video that cannot be opened or read, with its name.
    """
    try:
        return SyncedVideos(paths, max_frames)
    except VideoError as e:
        raise ReconstructError(str(e)) from None


def reconstruct_videos(
    calibration: str | Path | CameraRig,
    videos_dir: str | Path,
    *,
    network: Any = None,
    fused: bool = True,
    max_frames: int | None = None,
    overlays_dir: str | Path | None = None,
    progress: bool = True,
    solver: Any = None,
    detector: Any = None,
    device: str = "auto",
    lengths: str = "take",
) -> Reconstruction:
    """Reconstruct a take from synchronized videos: crops → backbone + fusion → solver, frame by frame.

    Args:
        calibration: calibration file (any format :func:`~crosspose.calibration.load_rig` reads) or a rig.
        videos_dir: one video per camera (see :func:`video_files`).
        network: what runs the network (an ``OnnxRunner`` or ``TorchRunner``); default:
            :func:`default_network` on ``device``, in the solver's layout.
        fused: solve from the fused heatmaps (False: each view's own).
        max_frames: only the first frames.
        overlays_dir: write per-view JPEGs there (``<camera>/<frame>.jpg``) with the crop, the
            heatmap maxima and the reprojected 3D joints.
        progress: show a progress bar.
        solver: a :class:`~crosspose.solver.Solver` (default: a new one in the default layout, the full body).
        detector: the cold-start ``PersonDetector`` (default: built on first use).
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` for the default network.
        lengths: ``take``: the performer's limb and foot lengths learnt over the whole take by a first
            pass, which then solves the take again with them known from its first frame (the network's
            heatmaps kept from the first pass, :mod:`crosspose.reconstruct_take`; the overlays are drawn
            after it, from the videos read again, with the final joints); ``online``: one pass, learnt
            as the take goes (the live service's).
    Raises:
        ReconstructError, CalibrationError: bad inputs, with a message saying which (also a network whose
            heatmaps are of another layout than the solver's).
    """
    from crosspose.core.videos import track_videos
    from crosspose.inference.pipeline import FramePipeline
    from crosspose.reconstruct_take import HeatmapStore, StoredSet, lengths_stats, resolve_frames
    from crosspose.solver.take import TakeLengths

    _check_lengths(lengths)
    rig, paths, solver, network = video_inputs(calibration, videos_dir, solver, network, device)
    skeleton: Skeleton = solver.skeleton
    pipeline = FramePipeline(rig, network, detector)
    overlays = None if overlays_dir is None else Path(overlays_dir)
    if overlays is not None:
        overlays.mkdir(parents=True, exist_ok=True)
    j = skeleton.num_joints
    joints, confidence, views, solve_ms, timings = [], [], [], [], []
    outside = 0
    two_pass = lengths == "take"
    learnt = TakeLengths(skeleton)
    store: HeatmapStore | None = None
    stored: list[StoredSet | None] = []
    pending: list[OverlayMarks] = []  # two passes: drawn once the joints are final
    start = time.perf_counter()
    with open_videos(paths, max_frames) as videos:
        fps = videos.fps
        if two_pass:
            store = HeatmapStore(expected_sets=videos.num_frames)
        for frame in track_videos(rig, videos, network, solver, fused=fused, progress=progress,
                                  pipeline=pipeline):
            pose = frame.pose
            outside += frame.outside_volume
            if store is not None:
                out = frame.output
                stored.append(None if out is None else store.add(out.heatmaps, out.projections))
                if pose is not None:
                    learnt.add(pose)
            joints.append(np.full((j, 3), np.nan) if pose is None else pose.joints)
            confidence.append(np.zeros(j) if pose is None else pose.confidence)
            views.append(np.zeros(j, np.int64) if pose is None else pose.views)
            solve_ms.append(frame.solve_ms)
            timings.append(frame.result.timings_ms)
            if overlays is not None:
                marks = overlay_marks(frame.index, frame.result, rig, fused)
                if two_pass:
                    pending.append(marks)
                else:
                    write_overlays(overlays, frame.images, marks, None if pose is None else pose.joints,
                                   None if pose is None else pose.views, rig, skeleton)
    first_pass_s = time.perf_counter() - start
    lengths_run: dict[str, Any] = {"mode": "online"}
    if store is not None:
        with store:
            start, outside = time.perf_counter(), 0
            for i, again in enumerate(resolve_frames(stored, store, solver, learnt, pipeline.inside,
                                                          progress=progress)):
                pose, outside = again.pose, outside + again.outside_volume
                joints[i] = np.full((j, 3), np.nan) if pose is None else pose.joints
                confidence[i] = np.zeros(j) if pose is None else pose.confidence
                views[i] = np.zeros(j, np.int64) if pose is None else pose.views
                solve_ms[i] = again.solve_ms
            lengths_run = lengths_stats(learnt.to_json(), store, first_pass_s, time.perf_counter() - start)
    if overlays is not None and pending:
        _write_final_overlays(overlays, paths, pending, joints, views, rig, skeleton, progress)
    n = len(joints)
    stats: dict[str, Any] = {
        "lengths": lengths_run,
        "heatmaps": "fused" if fused else "raw",
        "provider": getattr(network, "provider", type(network).__name__),
        "detector_runs": pipeline.detector_runs,
        "detector_views": pipeline.detector_views,
        # Frame sets whose solved root was outside the capture volume: not reported (NaN), searched again.
        "outside_volume": outside,
        "inference_ms": {k: float(np.median([t[k] for t in timings])) if timings else math.nan
                         for k in ("detect", "crop", "network", "total")},
        "videos": [None if p is None else p.name for p in paths],
    }
    return Reconstruction(
        np.stack(joints) if n else np.zeros((0, j, 3)), np.stack(confidence) if n else np.zeros((0, j)),
        np.stack(views).astype(np.int64) if n else np.zeros((0, j), np.int64),
        np.array(solve_ms, dtype=np.float64), np.arange(n, dtype=np.int64), tuple(rig.names), float(fps),
        stats, skeleton)


def _write_final_overlays(folder: Path, paths: list[Path | None], marks: list[OverlayMarks],
                          joints: list[np.ndarray], views: list[np.ndarray], rig: CameraRig,
                          skeleton: Skeleton, progress: bool) -> None:
    """A two-pass reconstruction's overlays: the videos read again, each frame set drawn with its final
    joints and the first pass's crops and heatmap maxima (``marks``, one per frame set in order)."""
    from tqdm import tqdm

    with open_videos(paths, len(marks)) as videos:
        sets = zip(videos, marks, joints, views, strict=False)  # a video read short again: fewer overlays
        frames = tqdm(sets, total=len(marks), desc="overlays", unit="set", disable=not progress)
        for images, mark, frame_joints, frame_views in frames:
            solved = bool(np.isfinite(frame_joints).any())
            write_overlays(folder, images, mark, frame_joints if solved else None,
                           frame_views if solved else None, rig, skeleton)


def _check_lengths(mode: str) -> None:
    from crosspose.reconstruct_take import check_lengths_mode

    try:
        check_lengths_mode(mode)
    except ValueError as err:
        raise ReconstructError(str(err)) from None


def write_reconstruction(rec: Reconstruction, path: str | Path) -> Path:
    """Write ``rec`` by the suffix of ``path``: ``.trc`` (OpenSim, Y-up) or ``.json`` (ours, Z-up), or
    through :func:`crosspose.motion.write_motion`: ``.bvh`` (joint rotations, Y-up), ``.c3d`` (points in
    mm, Z-up) or ``.jsonl`` (a frame per line with rotations). Joints fewer than two views support count
    as missing in all but ``.json``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ReconstructError(
            f"{path}: unknown output type {suffix or '(none)'}; use one of {', '.join(OUTPUT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ReconstructError(f"{path}: folder {path.parent} does not exist")
    if suffix == ".trc":
        return write_trc(rec.to_trc(), path)
    if suffix in (".bvh", ".c3d", ".jsonl"):
        from crosspose.motion import write_motion

        joints = np.where((rec.views >= 2)[..., None], rec.joints, np.nan)
        try:
            return write_motion(path, joints, rec.confidence, rec.times, fps=rec.fps, skeleton=rec.skeleton)
        except ValueError as e:
            raise ReconstructError(f"{path}: {e}") from None
    path.write_text(json.dumps(rec.to_json()), encoding="utf-8")
    return path


def read_reconstruction(path: str | Path) -> Reconstruction:
    """Read our ``.json`` output back."""
    path = Path(path)
    try:
        return Reconstruction.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReconstructError(f"{path}: not a {JSON_FORMAT} file ({e})") from None
