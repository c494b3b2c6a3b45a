"""The GPU path measured on one CUDA host (issue 18.5): run by ``benchmarks/gpu_check.sh``.

Sections (``--sections``, default all), each printing a markdown table and writing ``<out>/<section>.json``:

* ``providers`` — the GPU, torch and its CUDA, ONNX Runtime's providers, and what the network really runs
  on when the service asks for each runtime (its ``RuntimeInfo``: runtime, device, precision).
* ``network`` — the fusion network through its torch modules on CUDA (the service's ``runtime: torch,
  device: cuda``), ms per 4-view and 8-view set in f32 and f16 (autocast), on the real clip's inputs as the
  service's tracking loop makes them (8 views: the clip's 4 views twice); its heatmaps against ONNX Runtime
  f32 on the CPU (parity: largest difference, share of fused argmaxes moved > 1 heatmap pixel).
* ``solver`` — the solver on the network's fused heatmaps of the clip, cold (no previous pose) and tracked,
  on CUDA against the CPU (ms per set), and the 3D of the two devices against each other (mm).
* ``pipeline`` — the whole service (supervisor, grabbers, sync, inference, solver, API) with the real clip's
  4 cameras at 60 fps, and with 8 synthetic cameras at 60 fps rendered and sent through the real network
  (the renderer's figures are not people the network was trained on: throughput and latency only),
  inference and solver on CUDA: solved sets/s at the websocket, capture → websocket p50/p99.

Which network runs on the GPU: the torch modules (``runtime: torch``), not ONNX Runtime's CUDA provider —
the onnxruntime-gpu wheel is 255 MB and the lent device has none; a host with onnxruntime-gpu installed
gets an ``ONNX Runtime CUDA`` row in ``network`` too.

Usage: python benchmarks/gpu.py --out DIR [--sections providers network solver pipeline] [--duration 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Sets = list[dict[str, np.ndarray]]


def _median_ms(call: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n### {title}\n\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")


#: The device measured: ``cuda`` (``--device cpu`` only checks the script on a host without a GPU).
DEVICE = "cuda"


def _sync() -> None:
    """Wait for the device's queued work (nothing to wait for on the CPU)."""
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _no_sync() -> None:
    """The CPU rows: nothing queued."""


def providers() -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    from crosspose.config.settings import TorchInference
    from crosspose.inference.runtimes import open_network
    from crosspose.nets.export import ensure_network

    info: dict[str, Any] = {
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "onnxruntime": ort.__version__, "onnxruntime_providers": ort.get_available_providers(),
    }
    path = ensure_network()
    network = open_network(TorchInference(runtime="torch", device=DEVICE), path=path, num_cameras=4)
    info["torch_runtime_runs"] = dataclasses.asdict(network.info)
    cuda, why = _onnx_cuda(path)
    info["onnxruntime_cuda"] = cuda.providers if cuda is not None else why
    _table("providers", ["what", "value"], [[k, v] for k, v in info.items()])
    return info


def _onnx_cuda(path: Path) -> tuple[Any, str]:
    """ONNX Runtime's CUDA session of the network, or None and why it cannot start here."""
    from crosspose.inference.runtimes.onnxruntime import OnnxRunner, ProviderUnavailableError

    if DEVICE != "cuda":
        return None, "not asked (--device cpu)"
    try:
        return OnnxRunner(path, device="cuda"), ""
    except ProviderUnavailableError as err:
        return None, str(err)


def _clip_sets(frames: int) -> Sets:
    from crosspose.evaluation import clip_network_inputs

    return clip_network_inputs(frames=frames, progress=True)


def _eight(s: dict[str, np.ndarray]) -> tuple[Any, ...]:
    """The 4-view set as 8 views (each view twice: the cost of 8 cameras, not their geometry)."""
    return (np.concatenate([s["crops"]] * 2), np.concatenate([s["projections"]] * 2),
            np.concatenate([s["valid"]] * 2), s["prior"], float(s["window_scale"]))


def _args(s: dict[str, np.ndarray]) -> tuple[Any, ...]:
    return s["crops"], s["projections"], s["valid"], s["prior"], float(s["window_scale"])


def _moved(reference: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]) -> tuple[float, float]:
    """Share of fused argmaxes moved > 1 px (%), largest absolute difference of the fused heatmaps."""
    moved, diff = [], 0.0
    for ref, out in zip(reference, got, strict=True):
        a = ref["fused"].reshape(*ref["fused"].shape[:2], -1).argmax(-1)
        b = out["fused"].reshape(*out["fused"].shape[:2], -1).argmax(-1)
        w = ref["fused"].shape[-1]
        moved.append(np.hypot(a // w - b // w, a % w - b % w) > 1)
        diff = max(diff, float(np.abs(ref["fused"] - out["fused"].astype(np.float32)).max()))
    return 100 * float(np.concatenate(moved).mean()), diff


def network(sets: Sets, repeats: int) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    import torch

    from crosspose.inference.runtimes.onnxruntime import OnnxRunner
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network, ensure_network

    path = ensure_network()
    cpu = OnnxRunner(path, device="cpu", intra_op_threads=os.cpu_count() or 1)
    reference = [cpu.run(*_args(s)) for s in sets]
    gpu = TorchRunner(build_fusion_network(skeleton=cpu.skeleton), device=DEVICE)  # the export's layout
    half = torch.float16 if DEVICE == "cuda" else torch.bfloat16

    def f16(*a: Any) -> dict[str, np.ndarray]:
        with torch.autocast(DEVICE, dtype=half):
            return gpu.run(*a)

    rows, result = [], {}
    runs: dict[str, Callable[..., dict[str, np.ndarray]]] = {
        f"torch {DEVICE} f32": gpu.run, f"torch {DEVICE} {'f16' if DEVICE == 'cuda' else 'bf16'}": f16}
    cuda, _ = _onnx_cuda(path)
    if cuda is not None:
        runs["ONNX Runtime CUDA f32"] = cuda.run
    runs["ONNX Runtime CPU f32 (all cores)"] = cpu.run
    gpu_outputs: list[dict[str, np.ndarray]] = []
    for name, run in runs.items():
        outputs = [run(*_args(s)) for s in sets]
        if name == f"torch {DEVICE} f32":
            gpu_outputs = [{**out, "skeleton": cpu.skeleton.name} for out in outputs]
        sync = _sync if name.startswith("torch") or "CUDA" in name else _no_sync
        each = max(1, repeats // len(sets))
        ms4 = statistics.median(_median_ms(lambda s=s, run=run: run(*_args(s)), each, sync) for s in sets)
        ms8 = statistics.median(_median_ms(lambda s=s, run=run: run(*_eight(s)), each, sync) for s in sets)
        moved, diff = _moved(reference, outputs)
        result[name] = {"ms_4_views": ms4, "ms_8_views": ms8, "moved_pct": moved, "max_abs_diff": diff}
        rows.append([name, ms4, ms8, f"{moved:.2f} %", f"{diff:.1e}"])
    _table(f"network, real clip inputs ({len(sets)} sets)",
           ["runtime", "ms / 4-view set", "ms / 8-view set", "fused argmax moved > 1 px vs CPU f32",
            "max abs diff"], rows)
    return result, gpu_outputs


def solver(sets: Sets, fused: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    import torch

    from crosspose.skeleton import get_skeleton
    from crosspose.solver import Solver

    skeleton = get_skeleton(fused[0]["skeleton"])

    period_ns = int(1e9 / 60)
    result: dict[str, Any] = {}
    poses: dict[str, list[np.ndarray]] = {}
    devices = ("cpu", DEVICE) if DEVICE != "cpu" else ("cpu",)
    for device in devices:
        sync = _sync if device == "cuda" else _no_sync
        cold_solver = Solver(skeleton, device=device)
        cold = [
            _median_ms(lambda s=s, f=f, cs=cold_solver: cs.solve(f["fused"], s["projections"]), 3, sync)
            for s, f in zip(sets, fused, strict=True)
        ]
        tracked_solver = Solver(skeleton, device=device)
        track = tracked_solver.new_track()
        tracked, modes, joints = [], [], []
        for i, (s, f) in enumerate(zip(sets, fused, strict=True)):
            start = time.perf_counter()
            pose = tracked_solver.solve(f["fused"], s["projections"], t_ns=i * period_ns, track=track)
            sync()
            tracked.append(1e3 * (time.perf_counter() - start))
            modes.append(pose.mode)
            joints.append(pose.joints)
        poses[device] = joints
        result[device] = {"cold_ms": statistics.median(cold), "tracked_ms": statistics.median(tracked[1:]),
                          "tracked_share": modes.count("tracked") / len(modes)}
    diff = [np.nanmax(np.linalg.norm(a - b, axis=-1)) * 1e3 for a, b in zip(poses["cpu"], poses[DEVICE],
                                                                            strict=True)]
    result["cpu_vs_cuda_max_mm"] = float(np.nanmax(diff))
    result["cpu_vs_cuda_median_mm"] = float(np.nanmedian(diff))
    _table("solver on the clip's fused heatmaps", ["device", "cold ms", "tracked ms", "tracked share"],
           [[d, result[d]["cold_ms"], result[d]["tracked_ms"], f"{100 * result[d]['tracked_share']:.0f} %"]
            for d in devices])
    print(f"\n3D CPU vs {DEVICE}: largest joint difference per set median "
          f"{result['cpu_vs_cuda_median_mm']:.3f} mm, "
          f"max {result['cpu_vs_cuda_max_mm']:.3f} mm (torch {torch.__version__})")
    return result


def pipeline(duration: float, warmup: float) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    import asyncio

    from crosspose.runtime.demo import pose2sim_config, synthetic_config
    from pipeline import clients, percentile, running_service  # type: ignore[import-not-found]

    gpu = {"CROSSPOSE__INFERENCE__RUNTIME": "torch", "CROSSPOSE__INFERENCE__DEVICE": DEVICE,
           "CROSSPOSE__SOLVER__OPTIONS__DEVICE": DEVICE}
    studios: dict[str, Callable[[Path], Any]] = {
        "pose2sim, 4 real cameras, 60 fps": lambda wd: pose2sim_config(wd, "127.0.0.1", 0, environ=gpu),
        "synthetic, 8 rendered cameras, 60 fps": lambda wd: synthetic_config(
            wd, "127.0.0.1", 0, cameras=8, fps=60.0, render=True,
            environ={**gpu, "CROSSPOSE__INFERENCE__BACKEND": "network"}),
    }
    result, rows = {}, []
    for name, make in studios.items():
        with tempfile.TemporaryDirectory(prefix="crosspose-gpu-") as tmp:
            config = make(Path(tmp))
            with running_service(config, Path(tmp)) as base:
                time.sleep(warmup)
                received = asyncio.run(clients(base.replace("http", "ws") + "/ws/skeletons", 1, duration))[0]
        latency = [(m["recv"] - m["capture"]) / 1e6 for m in received]
        row = {"sets_per_s": len({m["seq"] for m in received}) / duration,
               "p50_ms": percentile(latency, 50), "p99_ms": percentile(latency, 99),
               "inference_p50_ms": percentile([m["lat"]["inference"] for m in received
                                               if m["lat"].get("inference") is not None], 50),
               "solve_p50_ms": percentile([m["lat"]["solve"] for m in received
                                           if m["lat"].get("solve") is not None], 50)}
        result[name] = row
        rows.append([name, row["sets_per_s"], row["p50_ms"], row["p99_ms"], row["inference_p50_ms"],
                     row["solve_p50_ms"]])
    _table(f"live pipeline, inference and solver on {DEVICE} ({duration:.0f} s measured)",
           ["studio", "solved sets/s", "p50 ms", "p99 ms", "inference p50 ms", "solve p50 ms"], rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sections", nargs="+", default=["providers", "network", "solver", "pipeline"],
                        choices=["providers", "network", "solver", "pipeline"])
    parser.add_argument("--sets", type=int, default=20, help="frame sets of the real clip")
    parser.add_argument("--repeats", type=int, default=200, help="timed network runs per row")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per live studio")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: check the script on a host without a GPU (its figures are no GPU figures)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    args.out.mkdir(parents=True, exist_ok=True)

    def save(section: str, value: Any) -> None:
        (args.out / f"{section}.json").write_text(json.dumps(value, indent=2, default=str))

    from crosspose.nets.export import ensure_network

    ensure_network(progress=print)  # the detector's file is exported here where it was not carried
    if "providers" in args.sections:
        save("providers", providers())
    if {"network", "solver"} & set(args.sections):
        sets = _clip_sets(args.sets)
        result, fused = network(sets, args.repeats)
        save("network", result)
        if "solver" in args.sections:
            save("solver", solver(sets, fused))
    if "pipeline" in args.sections:
        save("pipeline", pipeline(args.duration, args.warmup))


if __name__ == "__main__":
    main()
