"""CPU runtimes side by side: the exported network and the person detector in ONNX Runtime and OpenVINO.

Inputs: the network's real inputs for the first ``--sets`` frame sets of the Pose2Sim clip (4 views), as
the service's own tracking loop makes them (``crosspose.evaluation.clip_network_inputs``: crops from the
tracked pose, the solved pose as prior); the detector gets the clip's first frame of each camera (half
size, as the demo sends them), 4 views a call. Every row runs in this one process, taking turns set by set
(a busy machine slows every row alike), ``--repeats`` rounds over the sets; median ms a call, with one and
two threads. Rows:

* ONNX Runtime f32 (the service's previous default; camera axis dynamic);
* OpenVINO f32 compiled for 4 cameras (what ``runtime: openvino, precision: f32`` runs), and with the camera
  axis left dynamic (why the runtime compiles per camera count);
* OpenVINO bf16 backbone + f32 fusion (``precision: bf16``); on a CPU without native bf16 OpenVINO
  emulates it: its time is then no guide, its accuracy is (same rounding);
* detector: ONNX Runtime f32, OpenVINO compiled for the 4 views (what the runtime runs on a cold start),
  OpenVINO compiled for one image taking the 4 in turn (what it runs for a batch of another size),
  OpenVINO bf16.

Accuracy against ONNX Runtime f32 on the same inputs: share of fused heatmap argmaxes that moved more than
1 heatmap pixel (all joints of all views; and of those whose peak is ≥ 0.5), the largest absolute
difference, and for the detector whether the decoded detections are the same (best box within 2 px).
The CPU (model and the flags that matter) and the load average are printed with the tables.

Usage: python benchmarks/runtimes.py [--sets 20] [--repeats 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crosspose import assets
from crosspose.evaluation import CALIBRATION, clip_network_inputs
from crosspose.inference.detector import Letterbox, PersonDetector
from crosspose.inference.runtimes.auto import host_cpu
from crosspose.inference.runtimes.onnxruntime import OnnxDetectorModel, OnnxRunner
from crosspose.nets.export import ensure_network
from detector import frames  # the clip's first frame of each camera, half size (benchmarks/detector.py)

Call = Callable[[], Any]


def _alternate(rows: dict[str, list[Call]], repeats: int) -> dict[str, float]:
    """Median ms a call of each row; the rows take turns call by call (each row's calls cycle its inputs)."""
    times: dict[str, list[float]] = {k: [] for k in rows}
    for calls in rows.values():
        calls[0]()
    for _ in range(repeats):
        for i in range(max(len(c) for c in rows.values())):
            for name, calls in rows.items():
                start = time.perf_counter()
                calls[i % len(calls)]()
                times[name].append(1e3 * (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in times.items()}


def _bf16_row(compiled: str, native_bf16: bool) -> str:
    """The bf16 row's name: what OpenVINO compiled, and whether this CPU only emulates it."""
    return f"OpenVINO {compiled}" + (" (emulated: time no guide)" if "bf16" in compiled and not native_bf16
                                     else "")


def _argmax(maps: np.ndarray) -> np.ndarray:
    flat = maps.reshape(*maps.shape[:2], -1).argmax(-1)
    return np.stack(np.divmod(flat, maps.shape[-1]), -1)


def _moved(reference: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]) -> str:
    moved, peaks, diff = [], [], 0.0
    for ref, out in zip(reference, got, strict=True):
        moved.append(np.linalg.norm(_argmax(ref["fused"]) - _argmax(out["fused"]), axis=-1) > 1)
        peaks.append(ref["fused"].reshape(*ref["fused"].shape[:2], -1).max(-1) >= 0.5)
        diff = max(diff, float(np.abs(ref["fused"] - out["fused"]).max()))
    m, p = np.concatenate(moved), np.concatenate(peaks)
    return f"{100 * m.mean():.1f} % ({100 * m[p].mean():.1f} % of peaks ≥ 0.5) | {diff:.1e}"


def _dynamic_openvino(path: Path, threads: int) -> Callable[..., dict[str, np.ndarray]]:
    """The whole network compiled in f32 with its person and camera axes left dynamic."""
    from crosspose.inference.runtimes.openvino import DEVICE, _config, core

    request = core().compile_model(core().read_model(str(path)), DEVICE, _config("f32", threads)
                                   ).create_infer_request()

    def run(crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
            window_scale: float) -> dict[str, np.ndarray]:
        out = request.infer({"crops": crops[None], "projections": projections[None], "valid": valid[None],
                             "prior": prior[None], "window_scale": np.array([window_scale], np.float32)})
        return {name: out[name][0] for name in ("heatmaps", "fused", "presence")}

    return run


def network_table(path: Path, sets: list[dict[str, np.ndarray]], threads: int, repeats: int,
                  native_bf16: bool) -> None:
    from crosspose.inference.runtimes.openvino import OpenVinoRunner

    runners: dict[str, Callable[..., dict[str, np.ndarray]]] = {
        "ONNX Runtime f32": OnnxRunner(path, device="cpu", intra_op_threads=threads).run,
        "OpenVINO f32, 4 cameras compiled": OpenVinoRunner(path, "f32", threads).run,
        "OpenVINO f32, cameras dynamic": _dynamic_openvino(path, threads),
    }
    bf16 = OpenVinoRunner(path, "bf16", threads)
    runners[_bf16_row(bf16.info.precision, native_bf16)] = bf16.run
    args = [(s["crops"], s["projections"], s["valid"], s["prior"], float(s["window_scale"])) for s in sets]
    outputs = {name: [run(*a) for a in args] for name, run in runners.items()}
    ms = _alternate({name: [(lambda r=run, a=a: r(*a)) for a in args] for name, run in runners.items()},
                    repeats)
    reference = outputs["ONNX Runtime f32"]
    base = ms["ONNX Runtime f32"]
    print(f"\n| network, 4 views, {threads} thread(s) | ms a set | vs ONNX Runtime "
          "| fused argmax moved > 1 px | max abs diff |")
    print("|---|---:|---:|---|---:|")
    for name, value in ms.items():
        accuracy = "—" if name == "ONNX Runtime f32" else _moved(reference, outputs[name])
        print(f"| {name} | {value:.1f} | {base / value:.2f}x | {accuracy} |")


def detector_table(path: Path, threads: int, repeats: int, native_bf16: bool) -> None:
    from crosspose.inference.runtimes.openvino import OpenVinoDetectorModel

    images = frames()
    bf16 = OpenVinoDetectorModel(path, "bf16", threads, num_cameras=4)
    detectors = {
        "ONNX Runtime f32": PersonDetector(OnnxDetectorModel(path, device="cpu", intra_op_threads=threads)),
        "OpenVINO f32, compiled for 4 images": PersonDetector(
            OpenVinoDetectorModel(path, "f32", threads, num_cameras=4)),
        "OpenVINO f32, compiled for 1, the 4 in turn": PersonDetector(
            OpenVinoDetectorModel(path, "f32", threads)),
        _bf16_row(bf16.info.precision, native_bf16): PersonDetector(bf16),
    }
    batch = np.stack([Letterbox.fit((im.shape[1], im.shape[0])).apply(im) for im in images])
    found = {name: d.detect(images) for name, d in detectors.items()}
    reference = found["ONNX Runtime f32"]
    ms = _alternate({name: [lambda d=d: d.model(batch)] for name, d in detectors.items()}, 10 * repeats)
    base = ms["ONNX Runtime f32"]
    print(f"\n| detector, 4 views, {threads} thread(s) | ms a call | vs ONNX Runtime | same detections |")
    print("|---|---:|---:|---|")
    for name, value in ms.items():
        same = all(len(a) == len(b) and (not a or np.abs(a[0].box - b[0].box).max() <= 2.0)
                   for a, b in zip(reference, found[name], strict=True))
        print(f"| {name} | {value:.1f} | {base / value:.2f}x | {'yes' if same else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=20, help="frame sets of the clip (4 views each)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the sets")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cpu = host_cpu()
    path = ensure_network()
    assets.extract(*CALIBRATION)
    print(f"CPU: {cpu.describe()}, {os.cpu_count()} logical CPUs; load average before "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sets = clip_network_inputs(frames=args.sets)
    for threads in args.threads:
        network_table(path, sets, threads, args.repeats, cpu.native_bf16)
    for threads in args.threads:
        detector_table(path.with_name("crosspose_detector.onnx"), threads, args.repeats, cpu.native_bf16)
    print(f"\nload average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
