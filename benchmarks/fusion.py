"""Cross-view fusion benchmark: 2D detection and 3D accuracy of raw vs fused heatmaps, and speed.

Scenes: crosspose.studio motion seen by seeded random 4-camera rigs (no distortion), person crops
onto 64x64 heatmaps (sigma 2 px) with one error mode of ``HeatmapErrors`` switched on per row (at
rates far above realistic ones, so that each row measures that mode) plus the ``realistic`` mix.
For every frame:

* 2D detection rate: share of joints (inside the heatmap) whose argmax lies within 2 heatmap px of
  the truth, and within half the head size (neck→head distance in that view, as the paper's JDR);
* 3D: MPJPE (mm, absolute) of ``crosspose.solver.Solver.solve_batch`` on the raw heatmaps and on
  the fused ones, same frames.

Fusion gets no ground truth: its root is the pelvis the solver finds on the raw heatmaps (a live
service would use the previous frame's), radius 1.2 m, every view marked valid (dropped views are
left for the learned confidence to notice). Parameters are the untrained initialisation.

Speed: one forward of 4 views x 17 joints x 64x64 on one torch thread, median of repeated runs,
next to the plain dense configuration (every pixel, 32 depths, no dilation) measured in the same run.
Then the fusion layer alone exported to ONNX twice — reading the other views with ``GridSample`` (the
old graph) and with row gathers (``sampler="gather"``, what ``crosspose model export`` now writes) —
and run alternately in ONNX Runtime on the CPU with 1 and 2 intra-op threads (same inputs, same run),
with the largest difference between the two graphs' outputs. ``--network OLD.onnx NEW.onnx`` also
times two exported full networks (backbone + fusion) the same way.

Usage: python benchmarks/fusion.py [--quick] [--scenes K] [--frames N] [--no-onnx]
       [--network OLD.onnx NEW.onnx]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crosspose.nets import CrossViewFusion
from crosspose.skeleton import H36M17
from crosspose.solver import Solver
from crosspose.studio import (
    HeatmapError,
    HeatmapErrors,
    heatmap_projection_matrices,
    make_scene,
    person_crops,
    random_rig,
    simulate_heatmap_sequence,
)

SIZE = 64
MODES: dict[str, HeatmapErrors] = {
    "clean (jitter 0.7 px)": HeatmapErrors(jitter_px=0.7),
    "left/right swap 30%/view": HeatmapErrors(jitter_px=0.7, swap_prob=0.3),
    "wrong peak 20%": HeatmapErrors(jitter_px=0.7, wrong_peak_prob=0.2),
    "missed joint 20%": HeatmapErrors(jitter_px=0.7, miss_prob=0.2),
    "low contrast 30%": HeatmapErrors(jitter_px=0.7, low_contrast_prob=0.3),
    "view dropped 20%": HeatmapErrors(jitter_px=0.7, drop_view_prob=0.2),
    "clutter (blobs, speckle)": HeatmapErrors(jitter_px=0.7, blobs_per_map=2.0, speckle=0.1),
    "realistic mix": HeatmapErrors.realistic(),
}
NECK, HEAD = H36M17.index("neck"), H36M17.index("head")


def scene_batch(seed: int, frames: int, errors: HeatmapErrors) -> dict[str, object]:
    rig = random_rig(seed, 4, distortion=0.0)
    scene = make_scene(seed, frames, 4, rig=rig)
    crops = np.stack([person_crops(scene.joints2d[f], (SIZE, SIZE)) for f in range(frames)])
    P = heatmap_projection_matrices(np.asarray(rig.projection_matrices())[None], crops)
    heatmaps, truth = simulate_heatmap_sequence(scene.joints2d, transforms=crops, heatmap_size=(SIZE, SIZE),
                                                errors=errors, rng=seed, visibility=scene.visibility)
    return dict(heatmaps=torch.from_numpy(heatmaps), projections=torch.tensor(P, dtype=torch.float32),
                truth=truth, joints3d=scene.joints3d)


def detections(
    heatmaps: torch.Tensor, targets: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(N,C,J)`` hits within 2 px and within half the head size."""
    idx = heatmaps.flatten(-2).argmax(-1)
    xy = torch.stack([idx % SIZE, idx // SIZE], -1).numpy().astype(float)
    error = np.linalg.norm(xy - targets, axis=-1)
    half_head = 0.5 * np.linalg.norm(targets[..., HEAD, :] - targets[..., NECK, :], axis=-1)[..., None]
    return (error <= 2.0) & inside, (error <= half_head) & inside


def mpjpe(solver: Solver, heatmaps: torch.Tensor, projections: torch.Tensor, joints3d: np.ndarray) -> tuple[
        float, np.ndarray]:
    poses = solver.solve_batch(heatmaps, projections)
    estimate = np.stack([p.joints for p in poses])
    return float(np.nanmean(np.linalg.norm(estimate - joints3d, axis=-1)) * 1000), estimate


def accuracy(scenes: int, frames: int) -> None:
    solver = Solver()
    fusion = CrossViewFusion()
    print(f"{scenes} scenes x {frames} frames x 4 views, 17 joints, 64x64 heatmaps; detection rate = argmax "
          "within 2 px / within half the head size; MPJPE = solver on raw vs fused heatmaps")
    header = (f"{'error mode':<26} {'raw 2px':>8} {'fused 2px':>9} {'raw ½head':>9} {'fused ½head':>11} "
              f"{'wrist raw':>9} {'wrist fus':>9} {'MPJPE raw':>9} {'MPJPE fus':>9}")
    print(header)
    print("-" * len(header))
    wrists = [H36M17.index("l_wrist"), H36M17.index("r_wrist")]
    for name, errors in MODES.items():
        hits: dict[str, list[np.ndarray]] = {k: [] for k in ("r2", "f2", "rh", "fh", "in")}
        errs_raw, errs_fused = [], []
        for seed in range(scenes):
            batch = scene_batch(100 + seed, frames, errors)
            heatmaps, P = batch["heatmaps"], batch["projections"]
            assert isinstance(heatmaps, torch.Tensor)
            assert isinstance(P, torch.Tensor)
            truth, joints3d = batch["truth"], np.asarray(batch["joints3d"])
            raw_mm, raw_pose = mpjpe(solver, heatmaps, P, joints3d)
            root = torch.tensor(raw_pose[:, H36M17.root], dtype=torch.float32)
            root = torch.nan_to_num(root, nan=0.0)
            with torch.no_grad():
                fused = fusion(heatmaps, P, torch.ones(heatmaps.shape[:2], dtype=torch.bool), root, 1.2)
            fused_mm, _ = mpjpe(solver, fused.clamp_min(0.0), P, joints3d)
            errs_raw.append(raw_mm)
            errs_fused.append(fused_mm)
            targets = truth.targets  # type: ignore[attr-defined]
            inside = ~truth.has(HeatmapError.OUT_OF_VIEW)  # type: ignore[attr-defined]
            r2, rh = detections(heatmaps, targets, inside)
            f2, fh = detections(fused, targets, inside)
            for key, value in (("r2", r2), ("f2", f2), ("rh", rh), ("fh", fh), ("in", inside)):
                hits[key].append(value)
        cat = {k: np.concatenate(v) for k, v in hits.items()}
        n = cat["in"].sum()
        nw = cat["in"][..., wrists].sum()
        rate = {k: cat[k].sum() / n for k in ("r2", "f2", "rh", "fh")}
        wrist = {k: cat[k][..., wrists].sum() / nw for k in ("rh", "fh")}
        print(f"{name:<26} {rate['r2']:>8.3f} {rate['f2']:>9.3f} {rate['rh']:>9.3f} {rate['fh']:>11.3f} "
              f"{wrist['rh']:>9.3f} {wrist['fh']:>9.3f} {np.mean(errs_raw):>9.1f} "
              f"{np.mean(errs_fused):>9.1f}")


def speed(repeats: int) -> None:
    batch = scene_batch(7, 1, HeatmapErrors.realistic())
    heatmaps, P = batch["heatmaps"], batch["projections"]
    assert isinstance(heatmaps, torch.Tensor)
    assert isinstance(P, torch.Tensor)
    root = torch.tensor(np.asarray(batch["joints3d"])[:, 0], dtype=torch.float32)
    valid = torch.ones(1, 4, dtype=torch.bool)
    print(f"\nspeed, 4 views x 17 joints x 64x64, 1 torch thread, median of {repeats}:")
    for label, fusion in (("CrossViewFusion() default (stride 2, S=16, dilation 1)", CrossViewFusion()),
                          ("dense reference (every pixel, S=32, no dilation)",
                           CrossViewFusion(samples=32, query_stride=1, dilation=0))):
        times = []
        with torch.no_grad():
            fusion(heatmaps, P, valid, root, 1.2)
            for _ in range(repeats):
                t = time.perf_counter()
                fusion(heatmaps, P, valid, root, 1.2)
                times.append((time.perf_counter() - t) * 1000)
        print(f"  {label:<58} {statistics.median(times):7.1f} ms per frame set")


class _Layer(torch.nn.Module):
    """The fusion layer with the exported network's calling convention (one frame set, no batch axis)."""

    def __init__(self, sampler: str) -> None:
        super().__init__()
        self.fusion = CrossViewFusion(sampler=sampler)  # type: ignore[arg-type]

    def forward(self, h: torch.Tensor, p: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.fusion(h[None], p[None], v[None], r[None], 1.2)[0]


def _alternate(runs: dict[str, Any], feeds: dict[str, dict[str, np.ndarray]],
               repeats: int) -> dict[str, float]:
    """Median ms of each session's run, the sessions taking turns (a busy machine slows both alike)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for name, session in runs.items():
        session.run(None, feeds[name])
    for _ in range(repeats):
        for name, session in runs.items():
            t = time.perf_counter()
            session.run(None, feeds[name])
            times[name].append((time.perf_counter() - t) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def onnx_speed(repeats: int, networks: list[str] | None) -> None:
    import onnxruntime as ort

    batch = scene_batch(7, 1, HeatmapErrors.realistic())
    heatmaps, P = batch["heatmaps"], batch["projections"]
    assert isinstance(heatmaps, torch.Tensor)
    assert isinstance(P, torch.Tensor)
    root = torch.tensor(np.asarray(batch["joints3d"])[0, 0], dtype=torch.float32)
    inputs = (heatmaps[0], P[0], torch.ones(4, dtype=torch.bool), root)
    feeds = dict(zip(("h", "p", "v", "r"), (t.numpy() for t in inputs), strict=True))
    cameras = torch.export.Dim("C", min=2, max=64)
    outputs = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for sampler in ("grid_sample", "gather"):
            paths[sampler] = Path(folder) / f"{sampler}.onnx"
            with torch.no_grad():
                torch.onnx.export(_Layer(sampler).eval(), inputs, str(paths[sampler]), dynamo=True,
                                  input_names=["h", "p", "v", "r"], opset_version=18, verbose=False,
                                  dynamic_shapes={"h": {0: cameras}, "p": {0: cameras}, "v": {0: cameras},
                                                  "r": None})
        print(f"\nONNX Runtime CPU, fusion layer alone (4 views), median of {repeats}, sessions alternating:")
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            sessions = {k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"])
                        for k, v in paths.items()}
            ms = _alternate(sessions, {k: feeds for k in sessions}, repeats)
            outputs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
            print(f"  {threads} thread(s): GridSample {ms['grid_sample']:6.1f} ms, gather "
                  f"{ms['gather']:6.1f} ms (x{ms['grid_sample'] / ms['gather']:.2f})")
    diff = float(np.abs(outputs["gather"] - outputs["grid_sample"]).max())
    print(f"  max |gather - GridSample| over the fused heatmaps: {diff:.1e}")
    if networks:
        from crosspose.nets.export import example_inputs

        full = dict(zip(("crops", "projections", "valid", "root"), (t.numpy() for t in example_inputs(4)),
                        strict=True))
        print(f"\nONNX Runtime CPU, full networks (backbone + fusion, 4 views), median of {repeats}:")
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            sessions = {f"{Path(p).name} [{i}]": ort.InferenceSession(p, options,
                                                                       providers=["CPUExecutionProvider"])
                        for i, p in enumerate(networks)}
            ms = _alternate(sessions, {k: full for k in sessions}, repeats)
            print(f"  {threads} thread(s): " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 scenes x 5 frames, few timing repeats")
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime comparison")
    parser.add_argument("--network", nargs=2, metavar=("OLD", "NEW"), help="also time two exported networks")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenes, frames, repeats = (2, 5, 5) if args.quick else (args.scenes, args.frames, 20)
    accuracy(scenes, frames)
    speed(repeats)
    if not args.no_onnx:
        onnx_speed(repeats, args.network)


if __name__ == "__main__":
    main()
