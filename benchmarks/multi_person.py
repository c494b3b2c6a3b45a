"""Several performers on real footage (issue 21's targets): Pose2Sim 0.10.49's ``Demo_MultiPerson`` clip (the
demo's 4-camera studio and calibration, 100 frames at 60 fps, two performers on the platform and a bystander
far behind them in two views) through ``crosspose reconstruct --videos --persons 2``'s function
(:func:`crosspose.reconstruct_persons.reconstruct_videos_persons`, the exported ONNX network on the CPU) with
its default lengths (``--lengths`` to choose: ``online`` is the live service's way).

Measured:

* persons reported per frame (share of frames 0–73 and 80–99 with exactly 2; the most in any frame) and
  every reported root inside the capture volume (the bystander stands outside it);
* ids: how many over the clip, the last frame a new one started; continuity: the largest pelvis jump
  between consecutive frames per id, and the share of (frame, person) whose bone lengths are closer to
  their own track's median lengths than to the other track's;
* per person the long bones' (thighs, shins, upper arms, forearms) variation over the clip (std / median, %,
  the worst bone) and the reprojection of the solved joints against each view's own heatmap maxima (image
  pixels, median over joints seen by ≥ 2 views and their views);
* the same clip with ``max_persons`` 1 (who it follows, its time per frame set) and throughput: frame sets
  per second with 2 persons against 1, and the cost of the extra person in ms per frame set (the runs
  alternate ``--repeat`` times in one process; the CPU is named).

``--single`` adds ``max_persons`` 1 on the single-person clip: the median distance to Pose2Sim's own 3D and
the bone-length std (the numbers of ``benchmarks/evaluate.py``'s fused row; run that benchmark on main to
compare with before).

``--every K`` instead: the live demo's low rate (K = 12: 5 frame sets per second), the clip's every K-th
frame set with its capture time, looped 3 times, through the core's multi-person path, with the solver's
defaults (the wide tracked search) and with the tracking rule before it (cold beyond 70 ms) in turn:
ids started, the share of sets with both performers, the share of solves tracked, each id's long-bone
variation and the median solve time.

Usage: python benchmarks/multi_person.py [--frames 100] [--repeat 1] [--single] [--lengths take|online]
       [--every K]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.geometry import CameraRig
from crosspose.inference.association import default_volume
from crosspose.inference.heatmaps import heatmap_maxima
from crosspose.inference.pipeline import FramePipeline
from crosspose.inference.runtimes.auto import host_cpu
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.reconstruct import default_network
from crosspose.reconstruct_persons import reconstruct_videos_persons
from crosspose.reconstruct_take import LENGTH_MODES, default_lengths
from crosspose.skeleton import BODY32, H36M17
from crosspose.solver import Pose3D, Solver, use_one_thread

CLIP = "pose2sim-0.10.49"
VIDEOS = "Pose2Sim/Demo_MultiPerson/videos"
CALIBRATION = "Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt"
LONG_BONES = [(a, b) for a, b in (("l_hip", "l_knee"), ("r_hip", "r_knee"), ("l_knee", "l_ankle"),
                                  ("r_knee", "r_ankle"), ("l_shoulder", "l_elbow"), ("r_shoulder", "r_elbow"),
                                  ("l_elbow", "l_wrist"), ("r_elbow", "r_wrist"))]


def clip() -> tuple[CameraRig, Path]:
    for c in range(1, 5):
        video = assets.extract(CLIP, f"{VIDEOS}/cam{c:02d}.mp4")
    return load_rig(assets.extract(CLIP, CALIBRATION)), video.parent


def run(rig: CameraRig, videos_dir: Path, network: Any, max_persons: int, frames: int,
        lengths: str) -> dict[str, Any]:
    """The clip through ``crosspose reconstruct --videos --persons N``'s function with ``lengths``: per
    frame ``[(id, pose)]`` and per id the view-image reprojection errors of the poses reported against the
    heatmap maxima of the views the network saw (the first pass's: a second pass solves the same
    heatmaps again); wall time per frame set (both passes)."""
    seen: list[dict[int, _Seen]] = []
    sample: tuple[list[Any], list[tuple[int, Any]]] | None = None

    def keep(frame: Any) -> None:
        nonlocal sample
        seen.append({id: _Seen.of(result) for id, result in frame.results})
        if frame.index == min(40, frames - 1):
            sample = (frame.images, frame.results)

    start = time.perf_counter()
    rec = reconstruct_videos_persons(rig, videos_dir, max_persons=max_persons, network=network,
                                     solver=Solver(BODY32), max_frames=frames, progress=False,
                                     lengths=lengths, on_frame=keep)
    wall = time.perf_counter() - start
    persons = [rec.persons(i) for i in range(rec.num_frames)]
    reprojection: dict[int, list[float]] = {}
    for frame, looks in zip(persons, seen, strict=True):
        for id, pose in frame:
            reprojection.setdefault(id, []).extend(looks[id].reprojection(pose))
    return {"persons": persons, "reprojection": reprojection, "ms": 1e3 * wall / max(len(persons), 1),
            "stats": rec.stats, "sample": sample}


@dataclass(frozen=True)
class _Seen:
    """What the network made of one performer's frame set, for the reprojection: ``maxima (C, J, 2)``
    heatmap pixels, each view's crop size (image pixels), ``projections (C, 3, 4)`` world → heatmap pixels,
    ``valid (C,)`` and ``hidden (C, J)`` (None: nothing hidden)."""

    maxima: np.ndarray
    crop_px: np.ndarray
    projections: np.ndarray
    valid: np.ndarray
    hidden: np.ndarray | None
    size: int

    @classmethod
    def of(cls, result: Any) -> _Seen:
        maxima, _ = heatmap_maxima(result.heatmaps)
        crop_px = np.array([np.nan if c is None else c.size for c in result.crops], dtype=np.float64)
        hidden = None if result.hidden is None else np.asarray(result.hidden, bool)
        projections = np.asarray(result.projections, np.float64)
        return cls(maxima, crop_px, projections, np.asarray(result.valid, bool), hidden,
                   int(result.heatmaps.shape[-1]))

    def reprojection(self, pose: Pose3D) -> list[float]:
        """Image-pixel distances between the solved joints (≥ 2 views) projected into each valid view's
        heatmap and that view's heatmap maxima (joints another performer hides there left out)."""
        out = []
        joints = np.c_[pose.joints, np.ones(len(pose.joints))]
        for v in np.flatnonzero(self.valid):
            hom = joints @ self.projections[v].T
            uv = hom[:, :2] / hom[:, 2:]
            ok = (pose.views >= 2) & np.isfinite(uv).all(-1)
            if self.hidden is not None:
                ok &= ~self.hidden[v]
            px_per_hm = self.crop_px[v] / self.size
            out.extend((np.linalg.norm(uv[ok] - self.maxima[v, ok], axis=-1) * px_per_hm).tolist())
        return out


def network_cost(rig: CameraRig, network: Any, sample: tuple[list[Any], list[tuple[int, Any]]],
                 rounds: int = 8) -> tuple[float, float]:
    """Median ms of one network call for 1 and for 2 performers on one real frame set's crops, the two
    alternating ``rounds`` times (the same minutes of a shared machine)."""
    from crosspose.inference.crops import extract_crops, heatmap_projections

    images, results = sample
    crops, feeds, valid, priors = [], [], [], []
    for _, result in results[:2]:
        batch = extract_crops(images, list(result.crops))
        projections = heatmap_projections(list(result.crops), rig)
        ok = np.asarray(result.valid, bool)
        crops.append(batch)
        feeds.append(np.where(ok[:, None, None], np.nan_to_num(projections), np.eye(3, 4)).astype(np.float32))
        valid.append(ok)
        prior = np.full((network.skeleton.num_joints, 3), np.nan, np.float32)
        if result.root is not None:
            prior[network.skeleton.root] = result.root
        priors.append(prior)
    if len(crops) < 2:
        return float("nan"), float("nan")
    one, two = [], []
    arrays = [np.stack(a) for a in (crops, feeds, valid, priors)]
    for _ in range(rounds):
        for p, times in ((1, one), (2, two)):
            t0 = time.perf_counter()
            network.run_persons(*(a[:p] for a in arrays), np.ones(p))
            times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(one)), float(np.median(two))


def tracks(persons: list[list[tuple[int, Pose3D]]]) -> dict[int, np.ndarray]:
    """Per id ``(N, J, 3)`` joints (NaN where not reported or fewer than 2 views)."""
    n = len(persons)
    out: dict[int, np.ndarray] = {}
    for i, frame in enumerate(persons):
        for id, pose in frame:
            track = out.setdefault(id, np.full((n, BODY32.num_joints, 3), np.nan))
            track[i] = np.where((pose.views >= 2)[:, None], pose.joints, np.nan)
    return out


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """``(..., J, 3)`` → ``(..., B)`` the Human3.6M-17 bones' lengths."""
    return np.asarray(H36M17.bone_lengths(joints[..., :17, :]))


def long_bone_variation(joints: np.ndarray) -> float:
    """``(N, J, 3)`` one performer over the clip → the worst long bone's std / median length (%)."""
    index = {name: j for j, name in enumerate(BODY32.joints)}
    variation = []
    for a, b in LONG_BONES:
        length = np.linalg.norm(joints[:, index[a]] - joints[:, index[b]], axis=-1)
        variation.append(100 * np.nanstd(length) / np.nanmedian(length))
    return float(max(variation))


def report(result: dict[str, Any], rig: CameraRig) -> list[tuple[str, str]]:
    persons = result["persons"]
    n = len(persons)
    counts = np.array([len(p) for p in persons])
    volume = default_volume(rig)
    roots = [pose.joints[BODY32.root] for frame in persons for _, pose in frame]
    by_id = tracks(persons)
    ids = sorted(by_id)
    first_seen = {id: int(np.flatnonzero([any(i == id for i, _ in f) for f in persons])[0]) for id in ids}
    rows = [("frames", f"{n}"),
            ("2 persons, frames 0-73 (%)", f"{100 * (counts[:74] == 2).mean():.1f}"),
            ("2 persons, frames 80-99 (%)", f"{100 * (counts[80:100] == 2).mean():.1f}" if n > 80 else "—"),
            ("most persons in a frame", f"{counts.max()}"),
            ("reported roots outside the volume", f"{int((~volume.contains(np.array(roots))).sum())}"),
            ("ids over the clip", f"{ids}"),
            ("last frame a new id started", f"{max(first_seen.values())}")]
    medians = {id: np.nanmedian(bone_lengths(j), axis=0) for id, j in by_id.items()}
    closer, total = 0, 0
    for id, joints in by_id.items():
        jump = np.linalg.norm(np.diff(joints[:, BODY32.root], axis=0), axis=-1)
        rows.append((f"id {id}: largest pelvis jump (m)", f"{np.nanmax(jump):.3f}"))
        lengths = bone_lengths(joints)  # (N, B)
        for other, m in medians.items():
            if other == id:
                continue
            own = np.nanmean(np.abs(lengths - medians[id]), axis=-1)
            theirs = np.nanmean(np.abs(lengths - m), axis=-1)
            seen = np.isfinite(own) & np.isfinite(theirs)
            closer += int((own[seen] < theirs[seen]).sum())
            total += int(seen.sum())
        rows.append((f"id {id}: long-bone variation, worst (%)", f"{long_bone_variation(joints):.1f}"))
        rows.append((f"id {id}: reprojection vs own heatmap maxima, median (px)",
                     f"{np.median(result['reprojection'][id]):.1f}"))
        pelvis = np.nanmedian(joints[:, BODY32.root], axis=0)
        rows.append((f"id {id}: median pelvis (m)", f"{np.round(pelvis, 2).tolist()}"))
    rows.append(("bone lengths closer to own track (%)", f"{100 * closer / max(total, 1):.1f}"))
    return rows


def single_clip(network: Any, frames: int) -> list[tuple[str, str]]:
    """``max_persons`` 1 on the single-person clip against Pose2Sim's 3D (Human3.6M-17 joints)."""
    import evaluate  # benchmarks/evaluate.py
    from crosspose import evaluation
    from crosspose.io import read_trc
    from reconstruct import CALIBRATION as SINGLE_CALIBRATION
    from reconstruct import TRC, bone_std, pose2sim_as_h36m

    rig = load_rig(assets.extract(*SINGLE_CALIBRATION))
    for c in range(1, len(rig) + 1):
        assets.extract(evaluation.VIDEOS[0], f"{evaluation.VIDEOS[1]}/cam{c:02d}.mp4")
    trc = read_trc(assets.extract(*TRC))
    n = min(frames, trc.num_frames)
    reference = pose2sim_as_h36m(trc.markers, trc.frames[:n])
    joints, _, wall = evaluate.run_videos(rig, network, n, fused=True)
    body = [j for j, name in enumerate(H36M17.joints) if name not in evaluation.PROXIES]
    dist = 1e3 * float(np.nanmedian(np.linalg.norm(joints[:, body] - reference[:, body], axis=-1)))
    every = 1e3 * float(np.nanmedian(np.linalg.norm(joints - reference, axis=-1)))
    std = 1e3 * bone_std(joints)
    return [("single clip: median distance to Pose2Sim, 15 joints (mm)", f"{dist:.1f}"),
            ("single clip: median distance to Pose2Sim, all 17 (mm)", f"{every:.1f}"),
            ("single clip: bone std mean / worst (mm)", f"{std.mean():.1f} / {std.max():.1f}"),
            ("single clip: ms per frame set", f"{1e3 * wall:.0f}")]


def network_rows(rig: CameraRig, network: Any, sample: Any) -> list[tuple[str, str]]:
    if sample is None or not hasattr(network, "run_persons"):
        return []
    one, two = network_cost(rig, network, sample)
    return [("network call, 1 / 2 performers, alternating (ms)", f"{one:.0f} / {two:.0f}"),
            ("network: 2 performers / 1 (time ratio)", f"{two / one:.2f}")]


OLD_TRACKING = {"track_max_speed": 0.0, "track_max_age_s": 0.07}


def every_kth(rig: CameraRig, videos_dir: Path, network: Any, k: int,
              loops: int = 3) -> list[tuple[str, str]]:
    """``--every K``: the clip's every ``k``-th frame set, ``loops`` times, the new and the old tracking
    rule in turn (each with its own pipeline and solver)."""
    from crosspose.core import ImageSet
    from crosspose.core.videos import video_core

    with SyncedVideos(video_files(videos_dir, rig.names), None) as frames:
        sets = [(i, images) for i, images in enumerate(frames) if i % k == 0]
    rules: dict[str, dict[str, float]] = {"new": {}, "old": OLD_TRACKING}
    state: dict[str, tuple[Any, Any, list[Any], list[str], list[float]]] = {}
    for name, options in rules.items():
        pipeline = FramePipeline(rig, network, max_persons=2)
        state[name] = (pipeline, video_core(rig, network, Solver(BODY32, **options), pipeline=pipeline),
                       [], [], [])
    for loop in range(loops):
        for seq, (i, images) in enumerate(sets):
            t_ns = round((loop * 100 + i) * 1e9 / 60)
            for name in rules:
                _, core, persons, modes, ms = state[name]
                solved = core.run_persons(ImageSet(loop * len(sets) + seq, t_ns, images))
                persons.append(solved.persons)
                modes.extend(pose.mode for _, pose in solved.persons)
                ms.extend(pose.diagnostics["solve_ms"] for _, pose in solved.persons)
    rows = []
    for name in rules:
        pipeline, _, persons, modes, ms = state[name]
        by_id = tracks(persons)
        variation = ", ".join(f"{id}: {long_bone_variation(j):.1f}" for id, j in sorted(by_id.items()))
        rows += [(f"every {k}th, {name} rule: ids started / sets with both performers",
                  f"{pipeline.ids_started} / {100 * np.mean([len(p) == 2 for p in persons]):.1f} %"),
                 (f"every {k}th, {name} rule: solves tracked / median solve ms",
                  f"{100 * np.mean([m == 'tracked' for m in modes]):.0f} % / {np.median(ms):.1f}"),
                 (f"every {k}th, {name} rule: long-bone variation per id, worst (%)", variation)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (max 100)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate 2-person and 1-person runs this often")
    parser.add_argument("--single", action="store_true", help="also max_persons 1 on the single-person clip")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", choices=LENGTH_MODES, default=None,
                        help="the performers' lengths, for both runs (default: what crosspose reconstruct "
                        "--persons 2 uses)")
    parser.add_argument("--every", type=int, default=None, metavar="K",
                        help="only the every-K-th-frame-set comparison of the tracking rules "
                        "(K = 12: 5 sets/s)")
    args = parser.parse_args()
    use_one_thread()
    rig, videos_dir = clip()
    network = default_network(args.device, len(rig), skeleton=BODY32)
    print(f"CPU: {host_cpu().describe()}; network: {getattr(network, 'provider', type(network).__name__)}")
    if args.every:
        for key, value in every_kth(rig, videos_dir, network, args.every):
            print(f"{key:<72}  {value}")
        return
    lengths = args.lengths or default_lengths(2)
    print(f"lengths: {lengths}")
    two_ms, one_ms = [], []
    two = one = None
    for _ in range(args.repeat):
        two = run(rig, videos_dir, network, 2, args.frames, lengths)
        two_ms.append(two["ms"])
        one = run(rig, videos_dir, network, 1, args.frames, lengths)
        one_ms.append(one["ms"])
    assert two is not None
    assert one is not None
    rows = report(two, rig)
    one_ids = sorted(tracks(one["persons"]))
    one_pelvis = np.nanmedian(tracks(one["persons"])[one_ids[0]][:, BODY32.root], axis=0) if one_ids else None
    one_variation = long_bone_variation(tracks(one["persons"])[one_ids[0]]) if one_ids else float("nan")
    rows += [("max_persons 1: ids / median pelvis (m)",
              f"{one_ids} / {None if one_pelvis is None else np.round(one_pelvis, 2).tolist()}"),
             ("max_persons 1: long-bone variation, worst (%)", f"{one_variation:.1f}"),
             ("ms per frame set, 2 persons (runs)", ", ".join(f"{m:.0f}" for m in two_ms)),
             ("ms per frame set, 1 person (runs)", ", ".join(f"{m:.0f}" for m in one_ms)),
             ("throughput 2 persons / 1 person", f"{np.median(one_ms) / np.median(two_ms):.2f}"),
             ("cost of the extra person (ms per frame set)", f"{np.median(two_ms) - np.median(one_ms):.0f}"),
             *network_rows(rig, network, two["sample"]),
             ("detector runs / views looked at (2 persons)",
              f"{two['stats']['detector_runs']} / {two['stats']['detector_views']}")]
    if args.single:
        rows += single_clip(network, args.frames)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
