"""Solver benchmark: accuracy and speed of the 3D solvers on the same synthetic scenes, in one run.

Scenes: crosspose.studio motion (seeded performers and actions) seen by seeded random rigs of
256x256 px cameras 4-5 m from the volume axis, no lens distortion; 64x64 heatmaps (sigma 2 px) with
small peak jitter and pixel noise, plus the error modes of issue 3, a view without signal (its maps
noise only) and peaks jittered 0.6 px (a 2D network's realistic precision, see
crosspose.studio.HeatmapErrors.realistic) (issue 15). Compared on the same frames:

* PSM 16^3      — pictorial structure on a 16^3 grid over a 2 m cube, binary limb term ±150 mm;
* RPSM (paper)  — PSM then 10 recursions of 2x2x2 with halving spacing;
* DLT / wDLT    — soft-argmax in every view, plain / peak-weighted linear triangulation;
* window DLT    — soft-argmax (beta 10) in the 7x7 pixels around each view's maximum, linear
                  triangulation (the best of beta 1-20 and windows 5-11 px on the clean scenes);
* ours          — crosspose.solver.Solver (root from 3D voting, template limb lengths, no ground truth).

PSM and RPSM get the official demo's crutches: the ground-truth root and ground-truth limb lengths.
Their accuracy is computed with shell messages (the exact same MAP as dense messages, see
tests/solver); their time is measured with dense messages on a few frames.

``--full-body``: what the full body's extremities cost (issue 19): the tracked clip of the timing rows
with feet, hands and face added (crosspose.studio.extremities, smoothly moving foot pitch / roll, hand roll,
head yaw), its heatmaps solved in crosspose-body32 and their first 17 channels in Human3.6M-17, the two
solvers taking turns frame by frame in one process (cold solves: the same frames with tracking off).

Usage: python benchmarks/solver.py [--quick] [--frames N] [--threads T (default 1)] [--full-body [--rounds R]]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from crosspose.skeleton import BODY32, H36M17
from crosspose.solver import Solver
from crosspose.solver import reference as ref
from crosspose.studio import extremities
from crosspose.studio.motion import generate_motion
from crosspose.studio.rigs import random_rig

IMAGE = 256
SIGMA = 2.0
# Heatmap pixels, per view and joint: calibrated so that soft-argmax DLT on clean heatmaps lands near the
# 21.7 mm DESIGN §1 records for its benchmark.
JITTER = 0.22
NOISY_JITTER = 0.6  # the "jitter 0.6 px" condition
NOISE = 0.01  # pixel noise, heatmap units (peaks are 1)
WRIST = (H36M17.index("l_wrist"), H36M17.index("r_wrist"))


@dataclass
class Frame:
    joints: np.ndarray  # (J, 3)
    heatmaps: np.ndarray  # (C, J, s, s)
    projections: np.ndarray  # (C, 3, 4)


def heatmap_projections(rig_seed: int, cameras: int, size: int) -> np.ndarray:
    rig = random_rig(rig_seed, cameras, volume_radius=1.3, image_sizes=((IMAGE, IMAGE),),
                     distance_range=(4.0, 5.0), distortion=0.0)
    s = size / IMAGE  # image pixel centre x → heatmap (x + 0.5) s - 0.5
    A = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])
    return A @ rig.projection_matrices()


def project(joints: np.ndarray, P: np.ndarray) -> np.ndarray:
    uvw = np.einsum("cij,kj->cki", P, np.concatenate([joints, np.ones((len(joints), 1))], 1))
    return uvw[..., :2] / uvw[..., 2:3]


def render(peaks: np.ndarray, size: int, amplitude: np.ndarray) -> np.ndarray:
    r = np.arange(size, dtype=np.float64)
    gx = np.exp(-((r - peaks[..., 0:1]) ** 2) / (2 * SIGMA**2))
    gy = np.exp(-((r - peaks[..., 1:2]) ** 2) / (2 * SIGMA**2))
    return amplitude[..., None, None] * gy[..., :, None] * gx[..., None, :]


def condition_frame(name: str, joints: np.ndarray, P: np.ndarray, size: int,
                    rng: np.random.Generator) -> Frame:
    """Heatmaps of ``joints`` under one benchmark condition (one error placed in one random view)."""
    c, j = P.shape[0], joints.shape[0]
    peaks = project(joints, P)
    amp = np.ones((c, j))
    perfect = name == "perfect"
    if not perfect:
        peaks = peaks + rng.normal(0, NOISY_JITTER if name == "jitter 0.6 px" else JITTER, peaks.shape)
    view = int(rng.integers(c))
    extra = np.zeros((c, j, size, size))
    if name == "wrong wrist":  # the wrist is occluded in one view; a strong peak elsewhere instead
        w = int(rng.choice(WRIST))
        angle = rng.uniform(0, 2 * np.pi)
        wrong = peaks[view, w] + rng.uniform(8, 20) * np.array([np.cos(angle), np.sin(angle)]) * size / 64
        extra[view, w] = render(wrong[None], size, np.array([rng.uniform(0.8, 1.0)]))[0]
        amp[view, w] = 0.2
    elif name == "L/R swap":
        peaks[view] = peaks[view, list(H36M17.mirror)]
    elif name == "low confidence":  # a few joints barely visible in two views
        for v in rng.choice(c, 2, replace=False):
            amp[v, rng.choice(j, 4, replace=False)] = rng.uniform(0.1, 0.3, 4)
    elif name == "view without signal":  # the camera sees nothing: its maps are the noise alone
        amp[view] = 0.0
    heatmaps = render(peaks, size, amp) + extra
    if not perfect:
        heatmaps = heatmaps + rng.normal(0, NOISE, heatmaps.shape)
    projections = P.copy()
    if name == "camera missing":
        heatmaps[view] = 0.0
    return Frame(joints, heatmaps.astype(np.float32), projections)


def mpjpe(est: np.ndarray, truth: np.ndarray, joints: tuple[int, ...] | None = None) -> float:
    e = np.linalg.norm(np.nan_to_num(est, nan=1e3) - truth, axis=-1)
    return float(1e3 * (e[list(joints)] if joints else e).mean())


def scenes(count: int, cameras: int, size: int, name: str, seed: int = 0) -> list[Frame]:
    """``count`` frames from ``count // 4 + 1`` clips and rigs (seeded: every method sees the same)."""
    rng = np.random.default_rng(seed)
    out = []
    clips = max(1, count // 4)
    for k in range(count):
        clip = k % clips
        motion = generate_motion(1000 + clip, 90)
        P = heatmap_projections(2000 + clip, cameras, size)
        out.append(condition_frame(name, motion.joints[(k // clips) * 20 + 5], P, size, rng))
    return out


def timed(fn: Callable[[], np.ndarray], repeat: int = 1) -> tuple[np.ndarray, float]:
    """Result and time (ms); with ``repeat`` > 1 the fastest run, which is least disturbed by other
    load on a shared machine."""
    best = float("inf")
    out = np.empty(0)
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, 1e3 * (time.perf_counter() - t))
    return out, best


def solve_ours(f: Frame) -> np.ndarray:
    """A fresh solver (template limb lengths, no previous pose): a cold solve with nothing known."""
    return Solver(tracking=False, online_limbs=False).solve(f.heatmaps, f.projections).joints


def run_condition(name: str, frames: list[Frame], dense_frames: int) -> dict[str, tuple[float, float, float]]:
    """``method → (MPJPE mm, wrist mm, median ms)``."""
    rows: dict[str, list[tuple[float, float, float]]] = {}

    def add(method: str, est: np.ndarray, ms: float, truth: np.ndarray) -> None:
        rows.setdefault(method, []).append((mpjpe(est, truth), mpjpe(est, truth, WRIST), ms))

    for i, f in enumerate(frames):
        lengths = H36M17.bone_lengths(f.joints)
        root = f.joints[H36M17.root]
        crutches = (f.heatmaps, f.projections, root, lengths)
        add("PSM", ref.dense_psm(*crutches, messages="shell"), float("nan"), f.joints)
        rpsm = ref.paper_rpsm(*crutches, messages="shell")
        ms = float("nan")
        if i < dense_frames:
            ms = timed(partial(ref.paper_rpsm, *crutches, messages="dense"))[1]
        add("RPSM", rpsm, ms, f.joints)
        add("DLT", *timed(partial(ref.softargmax_dlt, f.heatmaps, f.projections), 3), f.joints)
        add("wDLT", *timed(partial(ref.softargmax_dlt, f.heatmaps, f.projections, True), 3), f.joints)
        windowed = partial(ref.softargmax_dlt, f.heatmaps, f.projections, beta=10.0, window=3)
        add("window DLT", *timed(windowed, 3), f.joints)
        add("ours", *timed(partial(solve_ours, f), 3), f.joints)
    out = {}
    for method, vals in rows.items():
        a = np.array(vals)
        ms = a[:, 2][np.isfinite(a[:, 2])]
        median = float(np.median(ms)) if ms.size else float("nan")
        out[method] = (float(a[:, 0].mean()), float(a[:, 1].mean()), median)
    return out


def tracked_timing(frames: int, condition: str = "clean", cameras: int = 4, size: int = 64
                   ) -> tuple[float, float, float, int]:
    """Median ms of cold and tracked solves and MPJPE over a clip solved in tracking mode; every frame
    gets ``condition``'s error in a random view (for "L/R swap": a different view swapped each frame; for
    "view without signal": a different view seeing nothing each frame)."""
    rng = np.random.default_rng(7)
    motion = generate_motion(4242, frames)
    P = heatmap_projections(4343, cameras, size)
    solver = Solver()
    cold, tracked, errs = [], [], []
    for joints in motion.joints:
        f = condition_frame(condition, joints, P, size, rng)
        pose = solver.solve(f.heatmaps, f.projections)
        (tracked if pose.mode == "tracked" else cold).append(pose.diagnostics["solve_ms"])
        errs.append(mpjpe(pose.joints, joints))
    return (statistics.median(cold), statistics.median(tracked) if tracked else float("nan"),
            float(np.mean(errs)), len(tracked))


def full_body_timing(frames: int, rounds: int) -> None:
    """Print the full body's solve times and errors against Human3.6M-17's on the same heatmaps."""
    rng = np.random.default_rng(19)
    motion = generate_motion(4242, frames)
    t = np.arange(frames)[:, None] / motion.fps
    wave = np.sin(2 * np.pi * 0.7 * t + np.array([0.0, 1.5]))  # (N, 2): left, right
    poses = extremities.ExtremityPoses(foot_pitch=0.4 * wave, foot_roll=0.2 * wave[:, ::-1],
                                       hand_roll=0.9 * wave, head_yaw=0.5 * wave[:, 0])
    joints = extremities.full_body(motion.joints, poses)
    P = heatmap_projections(4343, 4, 64)
    clip = [condition_frame("clean", j, P, 64, rng) for j in joints]
    ms: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}  # the process's CPU time: other work on the host not counted
    errors: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):
        solvers = {sk.name: (sk, Solver(sk), Solver(sk, tracking=False)) for sk in (H36M17, BODY32)}
        for f in clip:
            for name, (sk, tracking, cold) in solvers.items():
                maps = f.heatmaps[:, :sk.num_joints]
                start = time.process_time()
                pose = tracking.solve(maps, f.projections)
                cpu.setdefault((name, pose.mode), []).append(1e3 * (time.process_time() - start))
                ms.setdefault((name, pose.mode), []).append(pose.diagnostics["solve_ms"])
                error = np.linalg.norm(pose.joints - f.joints[:sk.num_joints], axis=-1)
                errors.setdefault(name, []).append(error)
                start = time.process_time()
                solved = cold.solve(maps, f.projections)
                cpu.setdefault((name, "cold only"), []).append(1e3 * (time.process_time() - start))
                ms.setdefault((name, "cold only"), []).append(solved.diagnostics["solve_ms"])
    print(f"# full body vs Human3.6M-17: {frames} frames x {rounds} rounds, clean heatmaps 64 px, 4 cameras, "
          f"{torch.get_num_threads()} torch thread(s)")
    print("| solve | h36m17 ms | crosspose-body32 ms | ratio | CPU ms h36m17 / body32 | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in ("tracked", "cold only"):
        a, b = (statistics.median(ms[(sk.name, mode)]) for sk in (H36M17, BODY32))
        ca, cb = (statistics.median(cpu[(sk.name, mode)]) for sk in (H36M17, BODY32))
        print(f"| {mode} (median of {len(ms[(BODY32.name, mode)])}) | {a:.2f} | {b:.2f} | {b / a:.2f} | "
              f"{ca:.2f} / {cb:.2f} | {cb / ca:.2f} |")
    body17 = 1e3 * np.mean([e.mean() for e in errors[H36M17.name]])
    body32 = np.array(errors[BODY32.name])
    print(f"MPJPE of the 17 body joints: {body17:.1f} mm (h36m17), {1e3 * body32[:, :17].mean():.1f} mm "
          f"(crosspose-body32); extremities {1e3 * np.nanmean(body32[:, 17:]):.1f} mm, per joint: "
          + ", ".join(f"{n} {1e3 * e:.0f}" for n, e in zip(BODY32.joints[17:], np.nanmean(body32[:, 17:], 0),
                                                          strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few frames per condition (~1-2 min)")
    parser.add_argument("--frames", type=int, default=None, help="frames per condition")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the solver's tensors are small, and several "
                             "OpenMP threads on a shared machine wait more than they work; 0 = torch's)")
    parser.add_argument("--full-body", action="store_true", help="only the full body's cost (issue 19)")
    parser.add_argument("--rounds", type=int, default=3, help="--full-body: passes over the clip")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full_body:
        full_body_timing(args.frames or 120, args.rounds)
        return
    n = args.frames or (8 if args.quick else 40)
    dense_frames = 1 if args.quick else 3
    conditions = [
        ("perfect", 4, 64), ("clean", 4, 64), ("wrong wrist", 4, 64), ("L/R swap", 4, 64),
        ("camera missing", 4, 64), ("view without signal", 4, 64), ("low confidence", 4, 64),
        ("clean", 6, 64), ("clean", 8, 64), ("clean", 4, 128),
        ("jitter 0.6 px", 4, 64), ("jitter 0.6 px", 6, 64), ("jitter 0.6 px", 8, 64),
    ]
    warm = scenes(1, 4, 64, "clean")[0]
    solve_ours(warm)  # first-call allocations and lazy imports stay out of the table
    print(f"# solver benchmark: {n} frames per condition, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, device cpu")
    print(f"# heatmaps sigma {SIGMA} px, jitter {JITTER} px, noise {NOISE}; MPJPE mm (wrist mm); median ms")
    header = "| condition | cams | hm | " + " | ".join(
        ["PSM 16^3*", "RPSM paper*", "soft-argmax DLT", "soft-argmax wDLT", "window soft-argmax DLT",
         "ours (cold)"]) + " | speed-up |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, cams, size in conditions:
        res = run_condition(name, scenes(n, cams, size, name, seed=cams * 1000 + size), dense_frames)
        cells = []
        for err, wrist, ms in res.values():
            timing = "" if np.isnan(ms) else f", {ms:.1f} ms" if ms < 100 else f", {ms:.0f} ms"
            cells.append(f"{err:.1f} ({wrist:.1f}){timing}")
        speedup = res["RPSM"][2] / res["ours"][2]
        print(f"| {name} | {cams} | {size} | " + " | ".join(cells) + f" | {speedup:.0f}x |")
    print()
    for condition in ("clean", "L/R swap", "view without signal"):
        cold, tracked, err, count = tracked_timing(30 if args.quick else 120, condition)
        print(f"tracking ({condition}, 4 cams, 64 px): cold {cold:.1f} ms median, tracked {tracked:.1f} ms "
              f"median ({count} tracked frames), MPJPE {err:.1f} mm")
    print("* PSM and RPSM are given the ground-truth root and limb lengths (the official demo's setting);"
          " ours uses neither. RPSM time is with dense messages.")
    if torch.cuda.is_available():
        frames = scenes(64, 4, 64, "clean")
        hm = torch.as_tensor(np.stack([f.heatmaps for f in frames])).cuda()
        P = torch.as_tensor(np.stack([f.projections for f in frames])).cuda()
        solver = Solver(tracking=False)
        solver.solve_batch(hm, P)
        torch.cuda.synchronize()
        t = time.perf_counter()
        poses = solver.solve_batch(hm, P)
        torch.cuda.synchronize()
        ms = 1e3 * (time.perf_counter() - t)
        err = np.mean([mpjpe(p.joints, f.joints) for p, f in zip(poses, frames, strict=True)])
        print(f"GPU batch of 64 frames: {ms:.1f} ms ({ms / 64:.2f} ms/frame), MPJPE {err:.1f} mm "
              f"on {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
