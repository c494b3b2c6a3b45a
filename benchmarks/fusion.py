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
left for the learned confidence to notice). Columns: the untrained initialisation (``init``) and each
``--weights`` file (default ``models/fusion_weights.pt``, ``crosspose model train-fusion``'s output),
same frames. The training scenes use other seeds (``(seed + 1)·1000 + k``) than these (100 + k).

Speed: one forward of 4 views x 17 joints x 64x64 on one torch thread, median of repeated runs,
next to the plain dense configuration (every pixel, 32 depths, no dilation) measured in the same run.
Then the fusion layer alone exported to ONNX twice — reading the other views with ``GridSample`` (the
old graph) and with row gathers (``sampler="gather"``, what ``crosspose model export`` now writes) —
and run alternately in ONNX Runtime on the CPU with 1 and 2 intra-op threads (same inputs, same run),
with the largest difference between the two graphs' outputs. ``--network A.onnx B.onnx …`` instead
times only exported full networks (backbone + fusion) the same way (40 alternating runs each).

``--layouts``: accuracy vs ONNX Runtime time (1 thread, layer alone) of cheaper layouts of the layer
(query stride, depth samples, dilation), all with the same trained weights.

Usage: python benchmarks/fusion.py [--quick] [--scenes K] [--frames N] [--no-onnx] [--no-speed]
       [--network A.onnx ...] [--weights A.pt ...] [--modes NAME ...] [--layouts]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
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
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "fusion_weights.pt"
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


def _fusions(weights: list[str]) -> dict[str, CrossViewFusion]:
    """The fusion layers compared: the untrained initialisation and each weights file."""
    out = {"init": CrossViewFusion()}
    for path in weights:
        fusion = CrossViewFusion()
        fusion.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        name = Path(path).stem
        out[name if name not in out else f"{Path(path).parent.name}/{name}"] = fusion.eval()
    return out


def accuracy(scenes: int, frames: int, fusions: dict[str, CrossViewFusion],
             modes: list[str] | None = None) -> None:
    solver = Solver()
    names = list(fusions)
    print(f"{scenes} scenes x {frames} frames x 4 views, 17 joints, 64x64 heatmaps; detection rate = argmax "
          "within half the head size; MPJPE (mm) = solver on raw vs fused heatmaps; fusions: "
          + ", ".join(names))
    header = (f"{'error mode':<26} {'raw ½head':>9} " + " ".join(f"{n[:11]:>11}" for n in names)
              + f" {'wrist raw':>9} " + " ".join(f"{'wr ' + n[:8]:>11}" for n in names)
              + f" {'MPJPE raw':>9} " + " ".join(f"{'mm ' + n[:8]:>11}" for n in names))
    print(header)
    print("-" * len(header))
    wrists = [H36M17.index("l_wrist"), H36M17.index("r_wrist")]
    for name, errors in MODES.items():
        if modes and name not in modes:
            continue
        hits: dict[str, list[np.ndarray]] = {k: [] for k in ("raw", "in", *names)}
        errs: dict[str, list[float]] = {k: [] for k in ("raw", *names)}
        for seed in range(scenes):
            batch = scene_batch(100 + seed, frames, errors)
            heatmaps, P = batch["heatmaps"], batch["projections"]
            assert isinstance(heatmaps, torch.Tensor)
            assert isinstance(P, torch.Tensor)
            truth, joints3d = batch["truth"], np.asarray(batch["joints3d"])
            raw_mm, raw_pose = mpjpe(solver, heatmaps, P, joints3d)
            errs["raw"].append(raw_mm)
            root = torch.tensor(raw_pose[:, H36M17.root], dtype=torch.float32)
            root = torch.nan_to_num(root, nan=0.0)
            targets = truth.targets  # type: ignore[attr-defined]
            inside = ~truth.has(HeatmapError.OUT_OF_VIEW)  # type: ignore[attr-defined]
            hits["raw"].append(detections(heatmaps, targets, inside)[1])
            hits["in"].append(inside)
            for label, fusion in fusions.items():
                with torch.no_grad():
                    fused = fusion(heatmaps, P, torch.ones(heatmaps.shape[:2], dtype=torch.bool), root, 1.2)
                errs[label].append(mpjpe(solver, fused.clamp_min(0.0), P, joints3d)[0])
                hits[label].append(detections(fused, targets, inside)[1])
        cat = {k: np.concatenate(v) for k, v in hits.items()}
        n = cat["in"].sum()
        nw = cat["in"][..., wrists].sum()
        keys = ["raw", *names]
        rate = [cat[k].sum() / n for k in keys]
        wrist = [cat[k][..., wrists].sum() / nw for k in keys]
        mm = [float(np.mean(errs[k])) for k in keys]
        print(f"{name:<26} {rate[0]:>9.3f} " + " ".join(f"{r:>11.3f}" for r in rate[1:])
              + f" {wrist[0]:>9.3f} " + " ".join(f"{r:>11.3f}" for r in wrist[1:])
              + f" {mm[0]:>9.1f} " + " ".join(f"{r:>11.1f}" for r in mm[1:]), flush=True)


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

    def __init__(self, sampler: str, **options: Any) -> None:
        super().__init__()
        self.fusion = CrossViewFusion(sampler=sampler, **options)  # type: ignore[arg-type]

    def forward(self, h: torch.Tensor, p: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.fusion(h[None], p[None], v[None], r[None], 1.2)[0]


class _WindowLayer(_Layer):
    """The same with the prior joints ``x (J, 3)`` as a fifth input (the windowed layouts)."""

    def forward(self, h: torch.Tensor, p: torch.Tensor, v: torch.Tensor, r: torch.Tensor,  # type: ignore[override]
                x: torch.Tensor) -> torch.Tensor:
        return self.fusion(h[None], p[None], v[None], r[None], 1.2, joints=x[None])[0]


def _alternate(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each call, the calls taking turns (a busy machine slows both alike)."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for call in calls.values():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
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
            ms = _alternate({k: functools.partial(s.run, None, feeds) for k, s in sessions.items()}, repeats)
            outputs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
            print(f"  {threads} thread(s): GridSample {ms['grid_sample']:6.1f} ms, gather "
                  f"{ms['gather']:6.1f} ms (x{ms['grid_sample'] / ms['gather']:.2f})")
    diff = float(np.abs(outputs["gather"] - outputs["grid_sample"]).max())
    print(f"  max |gather - GridSample| over the fused heatmaps: {diff:.1e}")
    if networks:
        network_speed(repeats, networks)


def network_speed(repeats: int, networks: list[str]) -> None:
    """Exported full networks (backbone + fusion) opened as the service opens them (ONNX Runtime, CPU),
    runs alternating, 1 and 2 intra-op threads."""
    from crosspose.config import OnnxRuntimeInference
    from crosspose.inference.runtimes import open_network
    from crosspose.nets.export import example_inputs

    # A file exported before the prior input gets the prior's pelvis row from the runner.
    crops, projections, valid, prior, _ = (t.numpy() for t in example_inputs(4))
    print(f"\nONNX Runtime CPU, full networks (backbone + fusion, 4 views), median of {repeats}:")
    for threads in (1, 2):
        settings = OnnxRuntimeInference(device="cpu", threads=threads)
        runners = {f"{Path(p).name} [{i}]": open_network(settings, path=Path(p), num_cameras=0)
                   for i, p in enumerate(networks)}
        ms = _alternate({k: functools.partial(r.run, crops, projections, valid, prior)
                         for k, r in runners.items()}, repeats)
        print(f"  {threads} thread(s): " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()))


#: Layouts of the fusion layer: (query stride, depth samples, dilation, interpolation, window px). With a
#: window (the exported default is 16), "stride" and "S" are the window's ray stride and depth samples.
CONFIGS = ((2, 16, 1, "bilinear", 0), (4, 16, 1, "nearest", 0), (2, 8, 1, "bilinear", 16),
           (4, 8, 1, "bilinear", 16), (2, 8, 1, "nearest", 16), (2, 8, 1, "bilinear", 24),
           (2, 6, 1, "bilinear", 16))


def _layout_layer(key: tuple[int, int, int, str, int]) -> _Layer:
    stride, samples, dilation, interpolation, window = key
    if window:
        return _WindowLayer("gather", dilation=dilation, interpolation=interpolation, window=window,
                            window_stride=stride, window_samples=samples)
    return _Layer("gather", query_stride=stride, samples=samples, dilation=dilation,
                  interpolation=interpolation)


def configurations(scenes: int, frames: int, weights: list[str], repeats: int) -> None:
    """Accuracy (realistic mix and 30% swaps) against ONNX Runtime time of the layer alone, per layout.

    Every layout gets the same (trained) mixing weights: they are per joint, not per layout. The
    whole-map layouts get the pelvis the solver finds on the raw heatmaps as their root; the windowed
    ones get, as their prior, the pose the solver found on the raw heatmaps of the previous frame
    (30 fps scenes; frame 0 uses its own), as a live service would with its last solved pose.
    """
    import onnxruntime as ort

    state = torch.load(weights[-1], map_location="cpu", weights_only=True) if weights else None
    solver = Solver()
    modes = ("realistic mix", "left/right swap 30%/view")
    batches = {m: [scene_batch(100 + s, frames, MODES[m]) for s in range(scenes)] for m in modes}
    timing = scene_batch(7, 1, HeatmapErrors.realistic())
    h, P = timing["heatmaps"], timing["projections"]
    assert isinstance(h, torch.Tensor)
    assert isinstance(P, torch.Tensor)
    root = torch.tensor(np.asarray(timing["joints3d"])[0, 0], dtype=torch.float32)
    prior = torch.tensor(np.asarray(timing["joints3d"])[0], dtype=torch.float32)
    inputs = (h[0], P[0], torch.ones(4, dtype=torch.bool), root, prior)
    feeds = dict(zip(("h", "p", "v", "r", "x"), (t.numpy() for t in inputs), strict=True))
    cameras = torch.export.Dim("C", min=2, max=64)
    print(f"\nfusion layouts ({Path(weights[-1]).name if weights else 'initialisation'}; {scenes} scenes x "
          f"{frames} frames per mode; ONNX Runtime CPU, 1 thread, layer alone, median of {repeats}):")
    columns = " ".join(f"{m[:12] + ' ½head':>19} {'mm':>6}" for m in modes)
    print(f"  {'window':>6} {'stride':>6} {'S':>3} {'dil':>3} {'interp':>5} {'ms':>7} " + columns)
    raw_cells = []
    for m in modes:
        hits, mm = [], []
        for b in batches[m]:
            heat, proj = b["heatmaps"], b["projections"]
            assert isinstance(heat, torch.Tensor)
            assert isinstance(proj, torch.Tensor)
            inside = ~b["truth"].has(HeatmapError.OUT_OF_VIEW)  # type: ignore[attr-defined]
            targets = b["truth"].targets  # type: ignore[attr-defined]
            hits.append(detections(heat, targets, inside)[1].sum() / inside.sum())
            mm.append(mpjpe(solver, heat, proj, np.asarray(b["joints3d"]))[0])
        raw_cells.append(f"{np.mean(hits):>19.3f} {np.mean(mm):>6.1f}")
    print(f"  {'raw':>6} {'':>6} {'':>3} {'':>3} {'':>5} {'':>7} " + " ".join(raw_cells))
    layers = {}
    for key in CONFIGS:
        layer = _layout_layer(key)
        if state is not None:
            layer.fusion.load_state_dict(state)
        layers[key] = layer.eval()
    with tempfile.TemporaryDirectory() as folder:
        sessions, session_feeds = {}, {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        for key, layer in layers.items():
            path = Path(folder) / "s{}_{}_{}_{}_{}.onnx".format(*key)
            names = ["h", "p", "v", "r", "x"][: 5 if key[4] else 4]
            with torch.no_grad():
                torch.onnx.export(layer, inputs[: len(names)], str(path), dynamo=True, input_names=names,
                                  opset_version=18, verbose=False,
                                  dynamic_shapes={"h": {0: cameras}, "p": {0: cameras}, "v": {0: cameras},
                                                  "r": None, "x": None}
                                  if key[4] else {"h": {0: cameras}, "p": {0: cameras}, "v": {0: cameras},
                                                  "r": None})
            sessions[str(key)] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session_feeds[str(key)] = {n: feeds[n] for n in names}
        # All layouts take turns, so a busy machine slows them alike.
        times = _alternate({k: functools.partial(s.run, None, session_feeds[k]) for k, s in sessions.items()},
                           repeats)
    for key, layer in layers.items():
        cells = []
        for m in modes:
            hits, mm = [], []
            for b in batches[m]:
                heat, proj = b["heatmaps"], b["projections"]
                assert isinstance(heat, torch.Tensor)
                assert isinstance(proj, torch.Tensor)
                joints3d = np.asarray(b["joints3d"])
                _, raw_pose = mpjpe(solver, heat, proj, joints3d)
                r = torch.nan_to_num(torch.tensor(raw_pose[:, H36M17.root], dtype=torch.float32), nan=0.0)
                previous = torch.tensor(np.concatenate([raw_pose[:1], raw_pose[:-1]]), dtype=torch.float32)
                with torch.no_grad():
                    fused = layer.fusion(heat, proj, torch.ones(heat.shape[:2], dtype=torch.bool), r, 1.2,
                                         joints=previous)
                inside = ~b["truth"].has(HeatmapError.OUT_OF_VIEW)  # type: ignore[attr-defined]
                targets = b["truth"].targets  # type: ignore[attr-defined]
                hits.append(detections(fused, targets, inside)[1].sum() / inside.sum())
                mm.append(mpjpe(solver, fused, proj, joints3d)[0])
            cells.append(f"{np.mean(hits):>19.3f} {np.mean(mm):>6.1f}")
        stride, samples, dilation, interpolation, window = key
        print(f"  {window or 'whole':>6} {stride:>6} {samples:>3} {dilation:>3} {interpolation[:4]:>5} "
              f"{times[str(key)]:>7.1f} " + " ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 scenes x 5 frames, few timing repeats")
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime comparison")
    parser.add_argument("--network", nargs="+", metavar="ONNX",
                        help="only time these exported networks (backbone + fusion), alternating")
    parser.add_argument("--weights", nargs="*", default=None,
                        help="fusion weights to compare with the initialisation (default: "
                             "models/fusion_weights.pt when it exists)")
    parser.add_argument("--modes", nargs="*", default=None, help="only these error-mode rows")
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    parser.add_argument("--layouts", action="store_true",
                        help="only the accuracy-vs-speed table of cheaper fusion layouts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenes, frames, repeats = (2, 5, 5) if args.quick else (args.scenes, args.frames, 20)
    weights = args.weights
    if weights is None:
        weights = [str(DEFAULT_WEIGHTS)] if DEFAULT_WEIGHTS.is_file() else []
    if args.layouts:
        configurations(scenes, frames, weights, repeats)
        return
    if args.network:
        network_speed(repeats if args.quick else 40, args.network)
        return
    accuracy(scenes, frames, _fusions(weights), args.modes)
    if args.no_speed:
        return
    speed(repeats)
    if not args.no_onnx:
        onnx_speed(repeats, None)


if __name__ == "__main__":
    main()
