"""Person detector benchmark: eager torch vs the exported ONNX file in ONNX Runtime (CPU, 1 thread), each
opened by its runtime (``crosspose.inference.runtimes.open_detector``).

The detector runs on a cold start and on every view that lost the performer, inside the inference
loop, so its time is a latency spike the live stream sees. Both run the same BlazePose detector on
real Pose2Sim frames (half size, 540x960, as the demo sends them), 1, 2 and 4 views a call,
alternating within the same run; median of ``--repeats`` calls each, with the largest difference
of the raw outputs.

Usage: python benchmarks/detector.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from crosspose import assets
from crosspose.config import OnnxRuntimeInference, TorchInference
from crosspose.inference.detector import Letterbox
from crosspose.inference.runtimes import open_detector
from crosspose.nets import load_blazepose_detector
from crosspose.nets.export import export_detector_onnx


def frames() -> list[np.ndarray]:
    out = []
    for camera in (1, 2, 3, 4):
        video = assets.extract("pose2sim-0.10.49", f"Pose2Sim/Demo_SinglePerson/videos/cam{camera:02d}.mp4")
        cap = cv2.VideoCapture(str(video))
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise SystemExit(f"cannot read {video}")
        out.append(cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = frames()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_detector_onnx(load_blazepose_detector(), Path(tmp) / "crosspose_detector.onnx")
        network_path = path.with_name("crosspose_fusion.onnx")  # the detector is opened from beside it
        runners = {"torch": open_detector(TorchInference(threads=1)),
                   "onnxruntime": open_detector(OnnxRuntimeInference(device="cpu", threads=1),
                                                network_path=network_path)}
        print("| views a call | eager torch | ONNX Runtime | ratio | max raw difference |")
        print("|---:|---:|---:|---:|---:|")
        for n in (1, 2, 4):
            batch = np.stack([Letterbox.fit((im.shape[1], im.shape[0])).apply(im) for im in images[:n]])
            outs = {k: r._run(batch) for k, r in runners.items()}
            pairs = zip(outs["torch"], outs["onnxruntime"], strict=True)
            diff = max(float(np.abs(a - b).max()) for a, b in pairs)
            times: dict[str, list[float]] = {k: [] for k in runners}
            for _ in range(args.repeats):
                for name, runner in runners.items():
                    start = time.perf_counter()
                    runner.detect(images[:n])
                    times[name].append(1e3 * (time.perf_counter() - start))
            t, o = (statistics.median(times[k]) for k in ("torch", "onnxruntime"))
            print(f"| {n} | {t:.1f} ms | {o:.1f} ms | {t / o:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
