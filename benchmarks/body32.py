"""The full body on the real Pose2Sim clip (issue 19): what the extremities cost and bring.

The clip's four videos go through ``crosspose reconstruct --videos``'s path (crops → BlazePose + fusion →
solver, frame by frame, tracked) with the Human3.6M-17 network and solver and with the full body's
(crosspose-body32), the two taking turns on each decoded frame set (same load, same images). Against
Pose2Sim's own 3D of the clip (its TRC, from OpenPose BODY_25B, Butterworth-filtered offline; ours causal
and unfiltered):

* heels and big toes: median distance to Pose2Sim's RHeel/LHeel/RBigToe/LBigToe (BlazePose's heel and foot
  tip against OpenPose's: two detectors' points, not the same anatomical landmark to the millimetre), and
  the nose to Pose2Sim's Nose;
* foot length (heel–big toe) std over the clip, ours and Pose2Sim's;
* foot and hand rotations (crosspose.motion, 60 fps): the largest turn between consecutive frames, raw and
  with the product's One Euro filter (``filter.enabled``, default settings) on the joints first;
* the 17 body joints in both runs: median distance to Pose2Sim (15 joints, no neck/head, as
  benchmarks/evaluate.py), bone-length std mean and worst;
* solve time per set (median, the solver's own clock) and network time per set, both runs;
* CPU time per frame set of the whole core (crops, network, heatmaps, solver; the process's CPU clock, so
  other work on the host does not count): what bounds the live service's throughput on a CPU-bound host.

``--runtime openvino`` runs the network as the live service's ``auto`` picks on an Intel CPU (OpenVINO f32,
one thread) instead of ONNX Runtime.

Usage: python benchmarks/body32.py [--frames N] [--device cpu] [--runtime onnxruntime|openvino]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from crosspose import assets
from crosspose import evaluation as evaluate
from crosspose.calibration import load_rig
from crosspose.core.imageset import ImageSet
from crosspose.core.videos import video_core
from crosspose.geometry import CameraRig
from crosspose.io import read_trc
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.motion import BONES, FilterSettings, filter_joints, solve_rotations
from crosspose.motion.humanoid import BONE_PARENTS
from crosspose.motion.quaternions import quat_to_matrix
from crosspose.nets.export import ensure_network
from crosspose.reconstruct import default_network
from crosspose.reconstruct_take import HeatmapStore, resolve_frames
from crosspose.skeleton import BODY32, H36M17
from crosspose.solver import Solver, use_one_thread
from crosspose.solver.take import TakeLengths
from reconstruct import CALIBRATION, FPS, TRC, bone_std, pose2sim_as_h36m

#: Our joint → Pose2Sim's marker.
#: The full body's take solved again with its lengths learnt over the whole take (``--lengths take``).
TAKE = "crosspose-body32, --lengths take"

POSE2SIM_EXTREMITIES = {"l_heel": "LHeel", "r_heel": "RHeel", "l_big_toe": "LBigToe", "r_big_toe": "RBigToe",
                        "nose": "Nose"}


def run(rig: CameraRig, networks: dict[str, Any], frames: int) -> dict[str, dict[str, Any]]:
    """The clip through each layout's network and solver, frame set by frame set in turn: joints (NaN below
    two views), confidence, solve and network ms per set; then the full body's take solved again with the
    lengths learnt over it (``reconstruct --lengths take``'s second pass on the first pass's heatmaps), as
    :data:`TAKE`."""
    videos_dir = assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam01.mp4").parent
    cores = {name: video_core(rig, network, Solver(network.skeleton)) for name, network in networks.items()}
    out: dict[str, dict[str, list[Any]]] = {name: {"joints": [], "confidence": [], "solve_ms": [],
                                                   "network_ms": [], "cpu_ms": []} for name in networks}
    store, learnt, stored = HeatmapStore(), TakeLengths(BODY32), []
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for i, images in enumerate(videos):
            for name, core in cores.items():
                cpu = time.process_time()
                solved = core.run(ImageSet(i, None, images))
                pose, rows, j = solved.pose, out[name], networks[name].skeleton.num_joints
                rows["cpu_ms"].append(1e3 * (time.process_time() - cpu))
                rows["network_ms"].append(solved.heatmaps.result.timings_ms["network"])
                if name == BODY32.name:
                    stored.append(store.add(solved.heatmaps.heatmaps, solved.heatmaps.projections))
                    if pose is not None:
                        learnt.add(pose)
                if pose is None:
                    rows["joints"].append(np.full((j, 3), np.nan))
                    rows["confidence"].append(np.zeros(j))
                    continue
                rows["joints"].append(np.where((pose.views >= 2)[:, None], pose.joints, np.nan))
                rows["confidence"].append(np.where(pose.views >= 2, pose.confidence, 0.0))
                rows["solve_ms"].append(pose.diagnostics["solve_ms"])
    take: dict[str, list[Any]] = {"joints": [], "confidence": [], "solve_ms": [], "network_ms": [],
                                  "cpu_ms": []}
    inside = cores[BODY32.name].heatmaps.backend.inside  # type: ignore[attr-defined]
    start = time.perf_counter()
    with store:
        for again in resolve_frames(stored, store, cores[BODY32.name].pose.solver, learnt, inside):
            pose, j = again.pose, BODY32.num_joints
            take["joints"].append(np.full((j, 3), np.nan) if pose is None else
                                  np.where((pose.views >= 2)[:, None], pose.joints, np.nan))
            take["confidence"].append(np.zeros(j) if pose is None else
                                      np.where(pose.views >= 2, pose.confidence, 0.0))
            if pose is not None:
                take["solve_ms"].append(again.solve_ms)
    take["second_pass_s"] = [time.perf_counter() - start]
    out[TAKE] = take
    return {name: {k: np.array(v) for k, v in rows.items()} for name, rows in out.items()}


def global_rotations(rotations: np.ndarray, bone: str) -> np.ndarray:
    """``(N, 3, 3)`` a bone's global rotation from ``(N, B, 4)`` local quaternions."""
    R = quat_to_matrix(rotations)
    chain = []
    b = BONES.index(bone)
    while b >= 0:
        chain.append(b)
        b = BONE_PARENTS[b]
    G = np.broadcast_to(np.eye(3), (R.shape[0], 3, 3)).copy()
    for b in reversed(chain):
        G = G @ R[:, b]
    return G


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees of the rotations between frames ``a`` and ``b`` ``(N, 3, 3)``."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (max 100)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or tensorrt (ONNX Runtime)")
    parser.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "openvino"],
                        help="the network's runtime (openvino: f32, one thread, as the live service's auto "
                        "picks on this CPU)")
    args = parser.parse_args()
    use_one_thread()
    rig = load_rig(assets.extract(*CALIBRATION))
    trc = read_trc(assets.extract(*TRC))
    n = min(args.frames, trc.num_frames)
    if args.runtime == "openvino":
        from crosspose.config import OpenVinoInference
        from crosspose.inference.runtimes import open_network

        networks = {sk.name: open_network(OpenVinoInference(threads=1), path=ensure_network(skeleton=sk),
                                          num_cameras=len(rig)) for sk in (H36M17, BODY32)}
    else:
        networks = {sk.name: default_network(args.device, len(rig), ensure_network(skeleton=sk)) for sk in
                    (H36M17, BODY32)}
    start = time.perf_counter()
    runs = run(rig, networks, n)
    wall = time.perf_counter() - start
    second = float(runs[TAKE].pop("second_pass_s")[0])
    reference17 = pose2sim_as_h36m(trc.markers, trc.frames[:n])
    body = [j for j, name in enumerate(H36M17.joints) if name not in evaluate.PROXIES]

    print(f"Pose2Sim clip, {n} frames at {FPS:.0f} fps, every frame tracked, the two layouts in turn "
          f"({wall:.0f} s, the full body's second pass with the take's lengths {second:.1f} s); mm unless "
          "stated")
    print(f"| | h36m17 | crosspose-body32 (--lengths online) | {TAKE} |")
    print("|---|---:|---:|---:|")

    def row(label: str, cells: list[str]) -> None:
        print(f"| {label} | " + " | ".join(cells) + " |")

    dist = [1e3 * float(np.nanmedian(np.linalg.norm(r["joints"][:, body] - reference17[:, body], axis=-1)))
            for r in runs.values()]
    row("17 body joints: median distance to Pose2Sim (15 joints, no neck/head)", [f"{d:.1f}" for d in dist])
    stds = [1e3 * bone_std(r["joints"][:, :17]) for r in runs.values()]
    row("17 body joints: bone-length std, mean / worst", [f"{s.mean():.1f} / {s.max():.1f}" for s in stds])
    same = [np.nanmax(np.abs(runs[k]["joints"][:, :17] - runs[H36M17.name]["joints"]))
            for k in (BODY32.name, TAKE)]
    row("17 body joints: largest difference from the h36m17 run", ["—"] + [f"{1e3 * d:.2f}" for d in same])
    row("solve per set, median ms", [f"{np.median(r['solve_ms']):.1f}" for r in runs.values()])
    row(f"network per set, median ms ({args.runtime})",
        [f"{np.median(r['network_ms']):.0f}" for r in runs.values() if len(r["network_ms"])] + ["(kept)"])
    cpu = [float(np.median(r["cpu_ms"])) for r in runs.values() if len(r["cpu_ms"])]
    row("CPU per frame set (crops, network, solver), median ms; ratio",
        [f"{cpu[0]:.0f}", f"{cpu[1]:.0f} ({cpu[1] / cpu[0]:.2f}x)", "—"])
    fulls = {k: runs[k]["joints"] for k in (BODY32.name, TAKE)}
    for ours, theirs in POSE2SIM_EXTREMITIES.items():
        cells = []
        for full in fulls.values():
            d = np.linalg.norm(full[:, BODY32.index(ours)] - trc.frames[:n, trc.markers.index(theirs)],
                               axis=-1)
            cells.append(f"{1e3 * np.nanmedian(d):.1f}")
        row(f"{ours} vs Pose2Sim {theirs}: median distance", ["—", *cells])
    for side, name in (("l", "L"), ("r", "R")):
        theirs = np.linalg.norm(trc.frames[:n, trc.markers.index(f"{name}Heel")]
                                - trc.frames[:n, trc.markers.index(f"{name}BigToe")], axis=-1)
        cells = []
        for full in fulls.values():
            heel, toe = (full[:, BODY32.index(f"{side}_{j}")] for j in ("heel", "big_toe"))
            ours = np.linalg.norm(heel - toe, axis=-1)
            cells.append(f"{1e3 * np.nanstd(ours):.1f} ({1e3 * np.nanmean(ours):.0f})")
        row(f"{side} foot length (heel–big toe): std (mean) over the clip; Pose2Sim's: "
            f"{1e3 * np.std(theirs):.1f} ({1e3 * np.mean(theirs):.0f})", ["—", *cells])
    seen = {k: np.isfinite(full).all(-1) for k, full in fulls.items()}
    row("extremities with ≥ 2 views, % of frames",
        ["—"] + [f"{100 * v[:, 17:].mean():.1f}" for v in seen.values()])
    times = np.arange(n) / FPS
    motions = {}
    for k, full in fulls.items():
        confidence = runs[k]["confidence"]
        smooth = filter_joints(np.where(seen[k][..., None], full, np.nan), times, FilterSettings.default(),
                               BODY32)
        motions[k] = (solve_rotations(full, confidence=confidence, fps=FPS, skeleton=BODY32),
                      solve_rotations(smooth, confidence=confidence, fps=FPS, skeleton=BODY32))
    for bone in ("left_foot", "right_foot", "left_hand", "right_hand", "head"):
        columns = []
        for pair in motions.values():
            cells = []
            for motion in pair:
                G = global_rotations(motion.rotations, bone)
                turns = angles(G[1:], G[:-1])
                cells.append(f"{turns.max():.1f} / {np.percentile(turns, 99):.1f} / "
                             f"{angles(G, G[:1]).max():.0f}")
            columns.append("; ".join(cells))
        row(f"{bone} rotation, deg: largest turn between consecutive frames / 99th percentile / range over "
            "the clip — raw; filtered", ["—", *columns])


if __name__ == "__main__":
    main()
