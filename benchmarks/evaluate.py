"""Real-data benchmark of the images → 3D path: the Pose2Sim clip's videos through crops → BlazePose + fusion
(the exported ONNX network) → solver, against Pose2Sim's own 3D result and next to the keypoint path.

Same clip, frames and reference as ``benchmarks/reconstruct.py`` (Pose2Sim's TRC, Butterworth-filtered
offline; ours are causal and unfiltered). Rows:

* videos, fused — ``crosspose reconstruct --videos`` (the solver reads the fused heatmaps);
* videos, raw — the same with ``--raw`` (each view's own heatmaps; its crops follow its own poses);
* keypoints — ``crosspose reconstruct --keypoints`` on the clip's OpenPose BODY_25B detections.

Pose2Sim triangulates OpenPose's joints; BlazePose's joints are other points (its hips sit higher and
wider, its "neck" is the nose and its "head" the mid-eyes), so the video rows carry that detector
difference on top of their error. Then ``crosspose model evaluate``'s 2D detection table (frames
``--start``: on, see crosspose.evaluation) from the fused run's heatmaps.

``--model A.onnx B.onnx`` compares exported networks (e.g. untrained vs trained fusion): one fused row
and one 2D table each; the raw row (the backbone alone) is the same for all. ``--runtime`` and
``--precision`` run them on another inference runtime (default ONNX Runtime f32; ``auto`` is what the
service picks on this host): run it once per runtime to compare a runtime's accuracy with f32's.

Usage: python benchmarks/evaluate.py [--frames N] [--start S] [--device cpu] [--model A.onnx ...]
       [--runtime onnxruntime|openvino|auto] [--precision f32|bf16|auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from crosspose import assets
from crosspose import evaluation as evaluate
from crosspose.calibration import load_rig
from crosspose.core.videos import track_videos
from crosspose.geometry import CameraRig
from crosspose.inference.pipeline import FramePipeline
from crosspose.io import read_multiview, read_trc
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.reconstruct import solve_sequence
from crosspose.skeleton import H36M17, get_layout, map_keypoints
from crosspose.solver import Solver, use_one_thread
from reconstruct import CALIBRATION, POSE, TRC, bone_std, jitter, pose2sim_as_h36m


def run_videos(rig: CameraRig, network: Any, frames: int,
               fused: bool) -> tuple[np.ndarray, evaluate.ClipPredictions, float]:
    videos_dir = assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam01.mp4").parent
    pipeline = FramePipeline(rig, network)
    joints, raw, fus, presence, ms = [], [], [], [], []
    start = time.perf_counter()
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for frame in track_videos(rig, videos, network, Solver(network.skeleton), fused=fused,
                                  progress=False, pipeline=pipeline):
            pose = frame.pose
            # The Human3.6M-17 joints (every layout's first 17), which Pose2Sim's 3D is compared on.
            joints.append(np.full((17, 3), np.nan) if pose is None else
                          np.where((pose.views >= 2)[:17, None], pose.joints[:17], np.nan))
            raw.append(frame.result.argmax_pixels(fused=False)[:, :17])
            fus.append(frame.result.argmax_pixels(fused=True)[:, :17])
            presence.append(frame.result.presence)
            ms.append(frame.result.timings_ms["network"])
    wall = (time.perf_counter() - start) / max(len(joints), 1)
    predictions = evaluate.ClipPredictions(np.stack(raw), np.stack(fus), np.stack(presence), tuple(rig.names),
                                           pipeline.detector_runs, np.array(ms), network.provider)
    return np.stack(joints), predictions, wall


def open_network_on(args: argparse.Namespace, cameras: int, model: Path | None = None) -> Any:
    """The exported network (``model``, default the cached export) on ``args.runtime`` / ``.precision`` /
    ``.device``, as the service's ``inference`` section would open it (threads: the runtime's default)."""
    return evaluate.open_network_as(args.runtime, args.precision, args.device, model, cameras)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (max 100)")
    parser.add_argument("--start", type=int, default=60, help="first frame of the 2D detection table")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or tensorrt")
    parser.add_argument("--model", nargs="+", default=None,
                        help="exported .onnx file(s) to compare (default: the cached export)")
    parser.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "openvino", "auto"],
                        help="inference runtime (auto: the service's choice on this host)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16", "auto"])
    args = parser.parse_args()
    use_one_thread()

    rig = load_rig(assets.extract(*CALIBRATION))
    for c in range(1, len(rig) + 1):
        assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam{c:02d}.mp4")
    trc = read_trc(assets.extract(*TRC))
    n = min(args.frames, trc.num_frames)
    reference = pose2sim_as_h36m(trc.markers, trc.frames[:n])
    if args.model:
        networks = {Path(m).stem: open_network_on(args, len(rig), Path(m)) for m in args.model}
    else:
        networks = {"cached": open_network_on(args, len(rig))}
    fused_runs = {name: run_videos(rig, net, n, fused=True) for name, net in networks.items()}
    network = next(iter(networks.values()))
    raw, _, raw_wall = run_videos(rig, network, n, fused=False)
    layout = get_layout("openpose-body25b")
    views = read_multiview(assets.extract_tree(*POSE), rig.names, layout.num_joints)
    keypoints, _, support, _ = solve_sequence(map_keypoints(views.keypoints[:n], layout), rig, progress=False)
    keypoints = np.where((support >= 2)[..., None], keypoints, np.nan)

    columns = {k: ("videos, fused" if len(fused_runs) == 1 else f"fused {k}") for k in fused_runs}
    methods = {**{columns[k]: v[0] for k, v in fused_runs.items()}, "videos, raw": raw,
               "keypoints": keypoints}
    body = [j for j, name in enumerate(H36M17.joints) if name not in evaluate.PROXIES]

    def dist_mm(x: np.ndarray, joints: list[int] | int) -> float:
        return 1e3 * float(np.nanmedian(np.linalg.norm(x[:, joints] - reference[:, joints], axis=-1)))

    rows: list[tuple[str, list[str]]] = []
    for j, name in enumerate(H36M17.joints):
        rows.append((f"dist {name}", ["—", *(f"{dist_mm(m, j):.1f}" for m in methods.values())]))
    everyone = list(range(H36M17.num_joints))
    rows.append(("dist median, 15 joints (no neck/head)", ["—", *(f"{dist_mm(m, body):.1f}"
                                                                  for m in methods.values())]))
    rows.append(("dist median, all 17", ["—", *(f"{dist_mm(m, everyone):.1f}" for m in methods.values())]))
    everything = {"Pose2Sim": reference, **methods}
    stds = {k: 1e3 * bone_std(v) for k, v in everything.items()}
    rows.append(("bone std mean", [f"{v.mean():.1f}" for v in stds.values()]))
    rows.append(("bone std median", [f"{np.median(v):.1f}" for v in stds.values()]))
    rows.append(("bone std worst", [f"{v.max():.1f}" for v in stds.values()]))
    rows.append(("jitter (mm/frame²)", [f"{1e3 * jitter(v):.2f}" for v in everything.values()]))
    rows.append(("joints with ≥ 2 views (%)", ["—", *(f"{100 * np.isfinite(m).all(-1).mean():.1f}"
                                                     for m in methods.values())]))
    rows.append(("wall per frame (ms)", ["—", *(f"{1e3 * v[2]:.0f}" for v in fused_runs.values()),
                                         f"{1e3 * raw_wall:.0f}", "—"]))

    print(f"Pose2Sim clip, {n} frames, network on {network.provider}; distances to Pose2Sim's TRC and "
          "bone-length std, mm")
    header = ["", *everything]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{header[0]:<{width}}" + "".join(f"{h:>16}" for h in header[1:]))
    for label, cells in rows:
        print(f"{label:<{width}}" + "".join(f"{c:>16}" for c in cells))
    reference2d = evaluate.reference_keypoints(rig.names, n)
    for name, (_, predictions, _) in fused_runs.items():
        print(f"\n[{name}] network median {np.median(predictions.network_ms):.0f} ms per frame set; "
              f"detector ran {predictions.detector_runs} time(s)")
        print(evaluate.format_report(evaluate.summarize(predictions, reference2d, min(args.start, n - 1))))


if __name__ == "__main__":
    main()
