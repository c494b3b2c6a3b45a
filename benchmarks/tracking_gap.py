"""Tracking across gaps on real footage: the solver fed every k-th frame set of the Pose2Sim clip (60 fps)
with its capture time, as a live loop that solves fewer sets than the cameras take sees it.

The clip's 100 frame sets go once through the service's own path (crops placed from the tracked pose →
the exported network → fused heatmaps), and the solver's inputs of every set are kept (cached beside the
assets, ``--refresh`` redoes it). Then for each ``k`` and each start ``0 … k-1`` the sets ``start,
start + k, …`` are solved with capture times ``i / 60`` s by each variant, the variants taking turns set
by set in one process (one torch thread):

* ``new``  — the solver's defaults (the wide tracked search up to ``track_max_age_s``, the extremities
  kept at their predicted offsets up to ``track_leaves_reach``);
* ``leaves`` — the same with the extremities searched after every wide search (``track_leaves_reach=0``,
  the rule before);
* ``old``  — the rule before it: a 3x3x3 grid of ``track_spacing`` only, cold beyond 70 ms
  (``track_max_speed=0, track_max_age_s=0.07``);
* ``cold`` — every set searched cold (``tracking=False``): the reference a tracked solve should equal.

Per k and variant: the share of the 17 Human3.6M joints that two or more views support (the first 17 of
the solved layout; its worst joint; and the share over all the layout's joints, the full body's feet, hands
and face too), the median distance to Pose2Sim's own 3D over the 15 joints without the proxies
(neck, head; BlazePose's joints are other points than OpenPose's, so ~40 mm is the floor, see
``benchmarks/evaluate.py``), the median distance to the cold solve of the same set (mm, joints both
support; also over the joints after the first 17, the extremities: "ext mm"), the share of sets solved
tracked, and the median solve time (all sets, and cold / tracked).
The first set of each start has no previous pose: it is cold in every variant and counted.

The heatmaps are those of the every-frame loop (its crops placed from the previous frame's pose); a live
loop at every k-th frame places its crops from a pose k frames old, which this does not reproduce.

Usage: python benchmarks/tracking_gap.py [--k 1 3 6 12 15 18 24] [--network auto|onnxruntime]
       [--speed M_S] [--max-age S] [--refresh]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crosspose import assets
from crosspose import evaluation as evaluate
from crosspose.calibration import load_rig
from crosspose.core.videos import track_videos
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.skeleton import H36M17
from crosspose.solver import Pose3D, Solver, use_one_thread

FPS = 60.0
BODY = [j for j, name in enumerate(H36M17.joints) if name not in evaluate.PROXIES]


class RecordingSolver(Solver):
    """A solver that keeps every ``solve`` call's heatmaps and projections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []

    def solve(self, heatmaps: Any, projections: Any, t_ns: int | None = None, track: Any = None) -> Pose3D:
        self.inputs.append((np.array(heatmaps, np.float32), np.array(projections, np.float32)))
        return super().solve(heatmaps, projections, t_ns=t_ns, track=track)


def clip_inputs(runtime: str, refresh: bool) -> tuple[str, np.ndarray, np.ndarray]:
    """The solver's ``(N, C, J, h, w)`` heatmaps and ``(N, C, 3, 4)`` projections of the clip's 100 frame
    sets, the skeleton's name (cached)."""
    path = assets.cache_dir() / "benchmarks" / f"tracking_gap_{runtime}.npz"
    if path.is_file() and not refresh:
        with np.load(path) as data:
            return str(data["skeleton"]), data["heatmaps"].astype(np.float32), data["projections"]
    rig = load_rig(assets.extract(*evaluate.CALIBRATION))
    for c in range(1, len(rig) + 1):
        videos_dir = assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam{c:02d}.mp4").parent
    network = evaluate.open_network_as(runtime, "auto" if runtime == "auto" else "f32", "cpu",
                                       num_cameras=len(rig))
    solver = RecordingSolver(network.skeleton)
    with SyncedVideos(video_files(videos_dir, rig.names), None) as videos:
        frames = sum(1 for _ in track_videos(rig, videos, network, solver, fused=True, progress=True))
    if len(solver.inputs) != frames:
        raise RuntimeError(f"{len(solver.inputs)} solves for {frames} frame sets (a set without two views?)")
    heatmaps = np.stack([h for h, _ in solver.inputs])
    projections = np.stack([p for _, p in solver.inputs])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, skeleton=solver.skeleton.name, heatmaps=heatmaps.astype(np.float16),
                        projections=projections)
    return solver.skeleton.name, heatmaps, projections


def run(skeleton: str, heatmaps: np.ndarray, projections: np.ndarray, k: int,
        variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Every k-th set from each start, every variant in turn; per variant the per-set results."""
    fields = ("frame", "joints", "views", "all_views", "all_joints", "mode", "ms")
    out: dict[str, dict[str, list[Any]]] = {v: {f: [] for f in fields} for v in variants}
    order = list(variants)
    turn = 0
    for start in range(k):
        solvers = {v: Solver(skeleton, **options) for v, options in variants.items()}
        for i in range(start, len(heatmaps), k):
            t_ns = round(i * 1e9 / FPS)
            for v in order[turn:] + order[:turn]:  # rotate who goes first: the same minutes for all
                t0 = time.perf_counter()
                pose = solvers[v].solve(heatmaps[i], projections[i], t_ns=t_ns)
                ms = 1e3 * (time.perf_counter() - t0)
                rec = out[v]
                rec["frame"].append(i)
                rec["joints"].append(pose.joints[:17])
                rec["views"].append(pose.views[:17])
                rec["all_views"].append(pose.views)
                rec["all_joints"].append(pose.joints)
                rec["mode"].append(pose.mode)
                rec["ms"].append(ms)
            turn = (turn + 1) % len(order)
    return out


def summary(rec: dict[str, list[Any]], cold: dict[str, list[Any]], reference: np.ndarray) -> dict[str, float]:
    frames = np.array(rec["frame"])
    joints, views = np.stack(rec["joints"]), np.stack(rec["views"])
    supported = views >= 2
    seen = np.where(supported[..., None], joints, np.nan)
    to_pose2sim = np.linalg.norm(seen[:, BODY] - reference[frames][:, BODY], axis=-1)
    cold_joints, cold_supported = np.stack(cold["joints"]), np.stack(cold["views"]) >= 2
    both = supported & cold_supported
    to_cold = np.linalg.norm(joints - cold_joints, axis=-1)[both]
    rest = (np.stack(rec["all_views"])[:, 17:] >= 2) & (np.stack(cold["all_views"])[:, 17:] >= 2)
    to_cold_rest = np.linalg.norm(np.stack(rec["all_joints"])[:, 17:] - np.stack(cold["all_joints"])[:, 17:],
                                  axis=-1)[rest]
    tracked = np.array(rec["mode"]) == "tracked"
    ms = np.array(rec["ms"])
    return {
        "support": 100 * supported.mean(),
        "worst_joint": 100 * supported.mean(0).min(),
        "support_all": 100 * (np.stack(rec["all_views"]) >= 2).mean(),
        "pose2sim_mm": 1e3 * float(np.nanmedian(to_pose2sim)),
        "to_cold_mm": 1e3 * float(np.median(to_cold)) if to_cold.size else float("nan"),
        "to_cold_p95_mm": 1e3 * float(np.percentile(to_cold, 95)) if to_cold.size else float("nan"),
        "rest_to_cold_mm": 1e3 * float(np.median(to_cold_rest)) if to_cold_rest.size else float("nan"),
        "tracked": 100 * tracked.mean(),
        "ms": statistics.median(ms),
        "ms_tracked": statistics.median(ms[tracked]) if tracked.any() else float("nan"),
        "ms_cold": statistics.median(ms[~tracked]) if (~tracked).any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 6, 12, 15, 18, 24],
                        help="solve every k-th frame set (60 fps: k = 12 is 5 sets/s)")
    parser.add_argument("--network", default="auto", choices=["auto", "onnxruntime"],
                        help="runtime of the network making the heatmaps (auto: the service's choice)")
    parser.add_argument("--speed", type=float, default=None, help="new: track_max_speed (m/s)")
    parser.add_argument("--max-age", type=float, default=None, help="new: track_max_age_s (s)")
    parser.add_argument("--refresh", action="store_true", help="run the network again (else cached)")
    args = parser.parse_args()
    use_one_thread()
    torch.set_num_threads(1)
    skeleton, heatmaps, projections = clip_inputs(args.network, args.refresh)
    reference = evaluate.pose2sim_joints(len(heatmaps))
    new: dict[str, Any] = {}
    if args.speed is not None:
        new["track_max_speed"] = args.speed
    if args.max_age is not None:
        new["track_max_age_s"] = args.max_age
    variants = {"new": new, "leaves": {**new, "track_leaves_reach": 0.0},
                "old": {"track_max_speed": 0.0, "track_max_age_s": 0.07},
                "cold": {"tracking": False}}
    defaults = Solver(skeleton, **new).options
    print(f"Pose2Sim clip, {len(heatmaps)} frame sets ({skeleton}, network {args.network}); new: "
          f"track_max_speed {defaults.track_max_speed} m/s, track_max_age_s {defaults.track_max_age_s} s; "
          f"CPU {cpu_name()}")
    print(f"{'k':>3} {'gap ms':>6} {'variant':>7} {'support %':>9} {'worst j %':>9} {'all J %':>7} "
          f"{'P2S mm':>7} {'cold mm':>7} {'p95':>6} {'ext mm':>6} {'tracked %':>9} {'ms':>6} {'ms trk':>6} "
          f"{'ms cold':>7}")
    for k in args.k:
        result = run(skeleton, heatmaps, projections, k, variants)
        for v, rec in result.items():
            s = summary(rec, result["cold"], reference)
            print(f"{k:>3} {1e3 * k / FPS:>6.0f} {v:>7} {s['support']:>9.1f} {s['worst_joint']:>9.1f} "
                  f"{s['support_all']:>7.1f} "
                  f"{s['pose2sim_mm']:>7.1f} {s['to_cold_mm']:>7.1f} {s['to_cold_p95_mm']:>6.1f} "
                  f"{s['rest_to_cold_mm']:>6.1f} "
                  f"{s['tracked']:>9.0f} {s['ms']:>6.1f} {s['ms_tracked']:>6.1f} {s['ms_cold']:>7.1f}",
                  flush=True)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
