"""The real Pose2Sim clip through the product's own loop: the network's evaluation (``crosspose model
evaluate``: 2D joint detection rate of raw vs fused heatmaps) and the training frames whose
pseudo-labels ``crosspose model train-fusion`` learns from (:func:`real_clip`).

The clip (PyPI, BSD-3, via :mod:`crosspose.assets`): 4 synchronized portrait videos and their Qualisys
calibration (pose2sim 0.10.49) and, as the 2D reference, the OpenPose BODY_25B keypoints of the same
frames (pose2sim 0.4.15; the same files as 0.8.4's) mapped to H36M-17 by :mod:`crosspose.skeleton`.

The videos run through the product's own loop (:func:`crosspose.core.videos.track_videos`: crops
from the previous solved pose, the detector only on a cold start or loss, backbone + fusion, the
solver on the fused heatmaps). Raw and fused heatmaps of each frame come from the same network call on
the same crops. A joint is detected when its heatmap maximum, mapped back to the image, lies within
half the head size (OpenPose's UpperNeck→HeadTop distance in that view) of the reference (the paper's
JDR). Reference joints with confidence below ``min_confidence`` are not counted.

``neck`` and ``head`` are proxies in BlazePose (nose, mid-eyes) and other points than OpenPose's
(upper neck, head top): they are reported but left out of the overall rate. ``swapped`` counts
left/right joints that miss their own reference but hit their mirror joint's.

Frames: every frame runs (tracking needs its past), the rates are over ``start:`` only, so that
frames used to fit anything can be kept apart from the evaluated ones: ``crosspose model train-fusion``
takes its real pseudo-labels from frames 0–59 only (:data:`crosspose.nets.train.EVALUATED_FROM`), so the
default ``start`` of 60 reports on frames the fusion weights never saw.

This module sits above the packages it drives (the core, the network, the solver, the clip's files);
nothing below it imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosspose.nets.train import EVALUATED_FROM, RealClip
from crosspose.skeleton import H36M17, head_size

VIDEOS = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/videos")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
KEYPOINTS = ("pose2sim-0.4.15", "Pose2Sim/Demo/pose")
#: Pose2Sim's own 3D result of the same frames (21 markers, metres), the 3D reference.
TRC = ("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc")
#: H36M joint → Pose2Sim markers averaged to get it (as the BODY_25B mapping builds them: pelvis = mid
#: hips, thorax = mid shoulders, spine = mean of both, neck = Neck (UpperNeck), head = Head (HeadTop)).
POSE2SIM_TO_H36M = {
    "pelvis": ("RHip", "LHip"), "r_hip": ("RHip",), "r_knee": ("RKnee",), "r_ankle": ("RAnkle",),
    "l_hip": ("LHip",), "l_knee": ("LKnee",), "l_ankle": ("LAnkle",),
    "spine": ("RHip", "LHip", "RShoulder", "LShoulder"), "thorax": ("RShoulder", "LShoulder"),
    "neck": ("Neck",), "head": ("Head",), "l_shoulder": ("LShoulder",), "l_elbow": ("LElbow",),
    "l_wrist": ("LWrist",), "r_shoulder": ("RShoulder",), "r_elbow": ("RElbow",), "r_wrist": ("RWrist",),
}
PROXIES = ("neck", "head")
WRISTS = ("l_wrist", "r_wrist")
MIN_CONFIDENCE = 0.3


@dataclass(frozen=True, eq=False)
class ClipPredictions:
    """2D maxima of every frame's heatmaps, in image pixels.

    Attributes:
        raw: ``(N, C, 17, 2)`` maxima of each view's own heatmaps (the Human3.6M-17 joints every layout
            starts with; NaN for a view the network did not see).
        fused: ``(N, C, 17, 2)`` maxima of the fused heatmaps.
        presence: ``(N, C)`` the network's presence per view.
        camera_names: ``C`` names.
        detector_runs: how often the cold-start detector ran.
        network_ms: ``(N,)`` network time per frame set.
        joints: ``(N, 17, 3)`` the solved Human3.6M-17 joints (every layout's first 17), metres, NaN where
            fewer than two views support a joint; None where the caller kept no 3D.
        provider: the ONNX Runtime provider (or ``torch``).
    """

    raw: np.ndarray
    fused: np.ndarray
    presence: np.ndarray
    camera_names: tuple[str, ...]
    detector_runs: int
    network_ms: np.ndarray
    provider: str
    joints: np.ndarray | None = None


def predict_clip(network: Any = None, frames: int | None = None, device: str = "auto",
                 progress: bool = True) -> ClipPredictions:
    """Run the clip's videos through crops → network → solver and keep each frame's 2D maxima."""
    from crosspose import assets
    from crosspose.calibration import load_rig
    from crosspose.core.videos import track_videos
    from crosspose.inference.pipeline import FramePipeline
    from crosspose.io.videos import SyncedVideos, video_files
    from crosspose.reconstruct import default_network
    from crosspose.solver import Solver

    rig = load_rig(assets.extract(*CALIBRATION))
    videos_dir = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam01.mp4").parent
    for c in range(2, len(rig) + 1):
        assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    network = default_network(device, len(rig)) if network is None else network
    pipeline = FramePipeline(rig, network)
    raw, fused, presence, ms, joints = [], [], [], [], []
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for frame in track_videos(rig, videos, network, Solver(network.skeleton), fused=True,
                                  progress=progress, pipeline=pipeline):
            pose = frame.pose  # None: fewer than two views saw the performer
            joints.append(np.full((17, 3), np.nan) if pose is None else
                          np.where((pose.views >= 2)[:17, None], pose.joints[:17], np.nan))
            # The Human3.6M-17 joints every layout starts with, the reference's (a full body has more).
            raw.append(frame.result.argmax_pixels(fused=False)[:, :H36M17.num_joints])
            fused.append(frame.result.argmax_pixels(fused=True)[:, :H36M17.num_joints])
            presence.append(frame.result.presence)
            ms.append(frame.result.timings_ms["network"])
    return ClipPredictions(np.stack(raw), np.stack(fused), np.stack(presence), tuple(rig.names),
                           pipeline.detector_runs, np.array(ms), str(getattr(network, "provider", "torch")),
                           np.stack(joints))


def open_network_as(runtime: str = "onnxruntime", precision: str = "f32", device: str = "cpu",
                    model: Path | None = None, num_cameras: int = 4) -> Any:
    """The exported network (``model``, default the cached export) as the service's ``inference`` section
    ``{runtime, precision, device}`` opens it (``auto``: what the service picks on this host; ``device``
    applies to ONNX Runtime and auto only), so that a runtime's accuracy can be compared with f32's.

    Raises:
        FileNotFoundError: no exported network (the message says how to write it).
        DeviceUnavailableError: the runtime, device or precision cannot run here (the message says why).
        pydantic.ValidationError: a combination the config refuses (e.g. ONNX Runtime in bf16).
    """
    from pydantic import TypeAdapter

    from crosspose.config.settings import InferenceConfig
    from crosspose.inference.runtimes import open_network

    section: dict[str, Any] = {"runtime": runtime, "precision": precision}
    if runtime in ("auto", "onnxruntime"):
        section["device"] = device
    settings = TypeAdapter(InferenceConfig).validate_python(section)
    return open_network(settings, path=model, num_cameras=num_cameras)


def pose2sim_joints(frames: int | None = None) -> np.ndarray:
    """``(N, 17, 3)`` Pose2Sim's 3D result of the clip (:data:`TRC`) as Human3.6M-17 joints, metres."""
    from crosspose import assets
    from crosspose.io import read_trc

    trc = read_trc(assets.extract(*TRC))
    n = trc.num_frames if frames is None else min(frames, trc.num_frames)
    return pose2sim_as_h36m(trc.markers, trc.frames[:n])


def pose2sim_as_h36m(trc_markers: tuple[str, ...], frames: np.ndarray) -> np.ndarray:
    """``(N, M, 3)`` Pose2Sim markers → ``(N, 17, 3)`` H36M-like joints (:data:`POSE2SIM_TO_H36M`)."""
    out = np.empty((frames.shape[0], H36M17.num_joints, 3))
    for j, name in enumerate(H36M17.joints):
        out[:, j] = frames[:, [trc_markers.index(m) for m in POSE2SIM_TO_H36M[name]]].mean(axis=1)
    return out


def bone_std(joints: np.ndarray) -> np.ndarray:
    """``(B,)`` standard deviation over frames of each H36M bone's length, metres."""
    return np.asarray(np.nanstd(H36M17.bone_lengths(joints), axis=0))


def summarize_3d(joints: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The solved ``joints (N, 17, 3)`` against Pose2Sim's ``reference (N', 17, 3)`` over their common
    frames, mm: median distance over the 15 joints without the proxies (neck, head), and the bone-length
    std (mean and worst bone; Pose2Sim's own beside it), the issue 18 accuracy target's 3D terms."""
    n = min(len(joints), len(reference))
    if n == 0:
        raise ValueError("no frame to compare with Pose2Sim")
    body = [j for j, name in enumerate(H36M17.joints) if name not in PROXIES]
    dist = np.linalg.norm(joints[:n, body] - reference[:n, body], axis=-1)
    ours, theirs = 1e3 * bone_std(joints[:n]), 1e3 * bone_std(reference[:n])
    return {"frames": n, "distance_mm": 1e3 * float(np.nanmedian(dist)),
            "bone_std_mean_mm": float(np.nanmean(ours)), "bone_std_worst_mm": float(np.nanmax(ours)),
            "pose2sim_bone_std_mean_mm": float(np.mean(theirs))}


def format_3d(summary: dict[str, float]) -> str:
    """:func:`summarize_3d`'s numbers as the line ``crosspose model evaluate`` prints."""
    s = summary
    return (f"3D against Pose2Sim's result, all {s['frames']} frames: median distance "
            f"{s['distance_mm']:.1f} mm (15 joints); bone-length std mean {s['bone_std_mean_mm']:.1f} "
            f"/ worst {s['bone_std_worst_mm']:.1f} mm (Pose2Sim's {s['pose2sim_bone_std_mean_mm']:.1f})")


def reference_keypoints(camera_names: list[str] | tuple[str, ...], frames: int | None = None) -> np.ndarray:
    """``(N, C, 17, 3)`` the clip's OpenPose BODY_25B keypoints as H36M-17 ``[x, y, confidence]``."""
    from crosspose import assets
    from crosspose.io import read_multiview
    from crosspose.skeleton import get_layout, map_keypoints

    layout = get_layout("openpose-body25b")
    views = read_multiview(assets.extract_tree(*KEYPOINTS), list(camera_names), layout.num_joints)
    keypoints = views.keypoints if frames is None else views.keypoints[:frames]
    return np.asarray(map_keypoints(keypoints, layout))


def detection_rates(predicted: np.ndarray, reference: np.ndarray,
                    min_confidence: float = MIN_CONFIDENCE) -> dict[str, np.ndarray]:
    """Hits of ``(N, C, J, 2)`` predictions against ``(N, C, J, 3)`` references.

    Returns ``hit``, ``swapped`` and ``counted`` ``(N, C, J)`` bool arrays: within half the head size of
    the reference; missed it but within half the head size of the mirror joint's reference; the
    reference is confident enough to count (and the frame's head size is known).
    """
    if predicted.shape[:-1] != reference.shape[:-1] or predicted.shape[-1] != 2 or reference.shape[-1] != 3:
        raise ValueError(f"expected predicted (N, C, J, 2) and reference (N, C, J, 3), got {predicted.shape} "
                         f"and {reference.shape}")
    xy, confidence = reference[..., :2], reference[..., 2]
    threshold = 0.5 * head_size(xy)[..., None]  # (N, C, 1)
    counted = (confidence >= min_confidence) & np.isfinite(xy).all(-1) & np.isfinite(threshold)
    error = np.linalg.norm(predicted - xy, axis=-1)
    mirrored = xy[..., list(H36M17.mirror), :]
    mirror_error = np.linalg.norm(predicted - mirrored, axis=-1)
    with np.errstate(invalid="ignore"):
        hit = counted & (error <= threshold)
        has_mirror = np.arange(H36M17.num_joints) != np.asarray(H36M17.mirror)
        swapped = counted & ~hit & (mirror_error <= threshold) & has_mirror
    return {"hit": hit, "swapped": swapped, "counted": counted}


def _rate(hit: np.ndarray, counted: np.ndarray, axis: tuple[int, ...] | int | None = None) -> np.ndarray:
    """Share of the ``counted`` entries that are ``hit`` (NaN where none is counted)."""
    total = counted.sum(axis=axis)
    return np.where(total > 0, (hit & counted).sum(axis=axis) / np.maximum(total, 1), np.nan)


def summarize(predictions: ClipPredictions, reference: np.ndarray, start: int) -> dict[str, Any]:
    """Rates over frames ``start:``: overall (without the proxy joints), per joint, per view, wrists."""
    n = min(predictions.raw.shape[0], reference.shape[0])
    if not 0 <= start < n:
        raise ValueError(f"start must be in [0, {n}), got {start}")
    scored = np.array([name not in PROXIES for name in H36M17.joints])
    wrists = np.array([name in WRISTS for name in H36M17.joints])
    out: dict[str, Any] = {"frames": [start, n], "cameras": list(predictions.camera_names)}
    for kind in ("raw", "fused"):
        r = detection_rates(getattr(predictions, kind)[start:n], reference[start:n])
        hit, swapped, counted = r["hit"], r["swapped"], r["counted"]
        body = counted & scored
        out[kind] = {
            "overall": float(_rate(hit, body)),
            "overall_all_joints": float(_rate(hit, counted)),
            "wrists": float(_rate(hit, counted & wrists)),
            "per_joint": dict(zip(H36M17.joints, _rate(hit, counted, (0, 1)).tolist(), strict=True)),
            "per_view": dict(zip(predictions.camera_names, _rate(hit, body, (0, 2)).tolist(), strict=True)),
            "swapped_per_view": dict(zip(predictions.camera_names, _rate(swapped, body, (0, 2)).tolist(),
                                         strict=True)),
            "counted": int(body.sum()),
        }
    return out


def format_report(summary: dict[str, Any]) -> str:
    """The summary as the table ``crosspose model evaluate`` prints."""
    raw, fused = summary["raw"], summary["fused"]
    lines = [
        f"frames {summary['frames'][0]}–{summary['frames'][1] - 1} evaluated; joint detection rate = heatmap "
        "maximum within half the head size of OpenPose BODY_25B (H36M-mapped)",
        f"{'':<26}{'raw':>8}{'fused':>8}",
        f"{'overall (15 joints)':<26}{raw['overall']:>8.3f}{fused['overall']:>8.3f}",
        f"{'all 17 (with proxies)':<26}{raw['overall_all_joints']:>8.3f}{fused['overall_all_joints']:>8.3f}",
        f"{'wrists':<26}{raw['wrists']:>8.3f}{fused['wrists']:>8.3f}",
    ]
    for name in H36M17.joints:
        note = "  (proxy)" if name in PROXIES else ""
        lines.append(f"{'  ' + name:<26}{raw['per_joint'][name]:>8.3f}{fused['per_joint'][name]:>8.3f}{note}")
    for cam in summary["cameras"]:
        lines.append(f"{'view ' + cam:<26}{raw['per_view'][cam]:>8.3f}{fused['per_view'][cam]:>8.3f}"
                     f"   left/right swapped: {raw['swapped_per_view'][cam]:.3f} → "
                     f"{fused['swapped_per_view'][cam]:.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The training frames (pseudo-labels for crosspose model train-fusion)


class _Recorder:
    """Wraps a network's ``run`` and keeps the inputs and raw heatmaps of each call (with ``inputs``, every
    input as given: crops, projections, valid, prior and window scale)."""

    def __init__(self, network: Any, inputs: bool = False) -> None:
        self.network = network
        self.info = network.info
        self.skeleton = network.skeleton
        self.inputs = inputs
        self.calls: list[dict[str, np.ndarray]] = []

    def prepare(self, num_cameras: int) -> None:
        self.network.prepare(num_cameras)

    def run(self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray,
            prior: np.ndarray, window_scale: float = 1.0) -> dict[str, np.ndarray]:
        from crosspose.inference.network import as_prior, as_root

        out: dict[str, np.ndarray] = self.network.run(crops, projections, valid, prior, window_scale)
        call = {"projections": projections.copy(), "valid": valid.copy(),
                "root": as_root(prior, self.skeleton), "heatmaps": out["heatmaps"].copy()}
        if self.inputs:
            call.update(crops=crops.copy(), prior=as_prior(prior, self.skeleton).copy(),
                        window_scale=np.asarray(window_scale, np.float32))
        self.calls.append(call)
        return out


def clip_network_inputs(network: Any = None, frames: int = 20, progress: bool = False
                        ) -> list[dict[str, np.ndarray]]:
    """The network's inputs for the clip's first ``frames`` frame sets, as the product's own loop makes them
    (crops from the tracked pose or the detector, the last solved pose as the prior): one dict a call
    (``crops (C, 256, 256, 3)``, ``projections``, ``valid``, ``prior (J, 3)``, ``window_scale``), what runtime
    comparisons feed every runtime alike. ``network`` runs the loop (default: ONNX Runtime on the CPU)."""
    from crosspose import assets
    from crosspose.calibration import load_rig
    from crosspose.core.videos import track_videos
    from crosspose.io.videos import SyncedVideos, video_files
    from crosspose.reconstruct import default_network
    from crosspose.solver import Solver

    rig = load_rig(assets.extract(*CALIBRATION))
    videos_dir = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam01.mp4").parent
    for c in range(2, len(rig) + 1):
        assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    recorder = _Recorder(default_network("cpu", len(rig)) if network is None else network, inputs=True)
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for _ in track_videos(rig, videos, recorder, Solver(recorder.skeleton), fused=True,
                              progress=progress):
            pass
    return [{key: call[key] for key in ("crops", "projections", "valid", "prior", "window_scale")}
            for call in recorder.calls]


def _clip_cache_path(frames: int) -> Path:
    from crosspose import assets
    from crosspose.nets.build import WHEEL

    tag = assets.ASSETS[WHEEL].sha256[:12]
    return assets.cache_dir() / "training" / f"pose2sim_frames0-{frames - 1}_{tag}.npz"


def real_clip(frames: int = EVALUATED_FROM, progress: bool = True, cache: bool = True) -> RealClip:
    """Run the Pose2Sim clip's first ``frames`` frames (≤ 60) through crops → frozen backbone → solver (raw).

    The videos are opened with a frame limit, so later frames are never decoded. Cached in
    ``$CROSSPOSE_CACHE/training/`` (float16 heatmaps) so training epochs never rerun the backbone.
    """
    if not 2 <= frames <= EVALUATED_FROM:
        raise ValueError(f"pseudo-labels use frames 0…{EVALUATED_FROM - 1} only (the evaluation reports "
                         f"frames {EVALUATED_FROM}–99); got frames={frames}")
    path = _clip_cache_path(frames)
    if cache and path.is_file():
        with np.load(path) as data:
            return RealClip(data["frames"], data["heatmaps"].astype(np.float32), data["projections"],
                            data["valid"], data["root"], data["joints"])
    from crosspose import assets
    from crosspose.calibration import load_rig
    from crosspose.core.videos import track_videos
    from crosspose.inference import TorchRunner
    from crosspose.io.videos import SyncedVideos, video_files
    from crosspose.nets.build import load_blazepose_landmarks
    from crosspose.nets.export import FusionNetwork
    from crosspose.solver import Solver

    rig = load_rig(assets.extract(*CALIBRATION))
    videos_dir = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam01.mp4").parent
    for c in range(2, len(rig) + 1):
        assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    recorder = _Recorder(TorchRunner(FusionNetwork(load_blazepose_landmarks())))
    joints, indices = [], []
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for frame in track_videos(rig, videos, recorder, Solver(recorder.skeleton), fused=False,
                                  progress=progress):
            if frame.index >= EVALUATED_FROM:  # SyncedVideos' limit makes this unreachable
                raise RuntimeError(f"frame {frame.index} is an evaluated frame")
            pose = frame.pose
            joints.append(np.full((H36M17.num_joints, 3), np.nan) if pose is None else
                          np.where((pose.views >= 2)[:, None], pose.joints, np.nan))
            indices.append(frame.index)
    if len(recorder.calls) != len(indices):
        raise RuntimeError("the network was not called once per frame (no view had a crop?)")
    calls = recorder.calls
    clip = RealClip(
        frames=np.array(indices), heatmaps=np.stack([c["heatmaps"] for c in calls]).astype(np.float32),
        projections=np.stack([c["projections"] for c in calls]).astype(np.float32),
        valid=np.stack([c["valid"] for c in calls]),
        root=np.stack([c["root"] for c in calls]).astype(np.float32),
        joints=np.stack(joints))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(tmp, frames=clip.frames, heatmaps=clip.heatmaps.astype(np.float16),
                            projections=clip.projections, valid=clip.valid, root=clip.root,
                            joints=clip.joints)
        tmp.replace(path)
    return clip
