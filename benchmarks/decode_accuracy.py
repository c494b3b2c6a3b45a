"""What ``inference.decode: auto`` costs in accuracy and saves in time, through the core path on the Pose2Sim
clip: its frames resized and JPEG-encoded as the grabbers send them, then per frame set the inference
worker's decode (``frameset_images`` at the reduction :class:`crosspose.core.decode.DecodeRule` picks from
the crops the set will take) → crops → network → solver, the track fed back (:func:`crosspose.core.videos
.video_core`). Run once with ``full`` and once with ``auto`` decode, each its own closed loop.

Reported:

* per mode: sets decoded at each reduction, decode / crop / network ms per set (medians), the smallest
  crop side per set in the frames' pixels (what the rule reads);
* auto against full: per joint and view the fused heatmap maxima (image px of the calibration, in units of
  full's heatmap pixels: crop side / 64): share moved by more than 1 heatmap px; the 3D joints' difference
  (median / p95, mm);
* each mode against Pose2Sim (``crosspose model evaluate``'s terms): 2D detection rate (overall, wrists;
  fused heatmaps, frames ``--start`` on), 3D median distance and bone-length std.

``--width/--height``: the grabbers' frame size (default the demo's 540x960, half the clip's 1080x1920).

``--always 2``: a third run decoding every set at 1/2 whatever its crops, to see what the rule avoids.

Usage: python benchmarks/decode_accuracy.py [--frames 100] [--width 540 --height 960] [--quality 90]
       [--runtime auto|onnxruntime|openvino] [--precision auto|f32|bf16] [--start 60] [--always 2|4]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import cv2
import numpy as np

from crosspose import assets
from crosspose import evaluation as evaluate
from crosspose.calibration import load_rig
from crosspose.capture.frames import encode_frame
from crosspose.capture.source import resize_to
from crosspose.core import ImageSet, frameset_images
from crosspose.core.decode import DecodeRule, smallest_crop_px
from crosspose.core.videos import video_core
from crosspose.geometry import CameraRig
from crosspose.inference.crops import CROP_SIZE, HEATMAP_SIZE
from crosspose.inference.pipeline import FramePipeline
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.skeleton import H36M17
from crosspose.solver import Solver, use_one_thread


def clip_framesets(rig: CameraRig, frames: int, width: int, height: int,
                   quality: int) -> list[tuple[dict[str, Any], list[bytes]]]:
    """The clip's first ``frames`` sets as ``frameset.`` headers (the parts decode reads) and JPEG buffers."""
    videos_dir = assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam01.mp4").parent
    for c in range(2, len(rig) + 1):
        assets.extract(evaluate.VIDEOS[0], f"{evaluate.VIDEOS[1]}/cam{c:02d}.mp4")
    out = []
    with SyncedVideos(video_files(videos_dir, rig.names), frames) as videos:
        for i, images in enumerate(videos):
            buffers, headers = [], []
            for name, image in zip(rig.names, images, strict=True):
                assert image is not None
                frame = np.ascontiguousarray(resize_to(image, width, height))
                buffers.append(bytes(encode_frame(frame, quality)[1]))
                headers.append({"camera": name, "seq": i, "encoding": "jpeg", "shape": list(frame.shape)})
            out.append(({"seq": i, "present": [True] * len(rig), "frames": headers}, buffers))
    return out


def to_calibration_px(xy: np.ndarray, scale: float) -> np.ndarray:
    """Image px of frames at ``scale`` x the calibration's size → the calibration's px (centres kept)."""
    return (xy + 0.5) / scale - 0.5


def run(rig: CameraRig, network: Any, sets: list[tuple[dict[str, Any], list[bytes]]],
        mode: str) -> dict[str, Any]:
    """One closed loop over ``sets`` with ``mode`` decode (``full``, ``auto``, or ``always<N>``: every set at
    1/N whatever its crops); per set what the comparison needs."""
    pipeline = FramePipeline(rig, network)
    core = video_core(rig, network, Solver(network.skeleton), pipeline=pipeline)
    rule = DecodeRule(CROP_SIZE)
    keep: dict[str, list[Any]] = {k: [] for k in ("joints", "raw", "fused", "sides", "presence", "reduction",
                                                  "crop_px", "decode", "crop", "network")}
    for header, buffers in sets:
        sides = core.heatmaps.planned_crop_sides()
        crop_px = smallest_crop_px(header, rig, sides)
        reduction = rule.choose(crop_px) if mode == "auto" else 1 if mode == "full" else int(mode[6:])
        t0 = time.perf_counter()
        images = frameset_images(header, buffers, reduction)
        keep["decode"].append(1e3 * (time.perf_counter() - t0))
        solved = core.run(ImageSet(int(header["seq"]), None, images))
        result = solved.heatmaps.result
        assert result is not None
        scale = core.heatmaps.rig.scale  # the frames' scale of the calibration this set
        pose = solved.pose
        keep["joints"].append(np.full((17, 3), np.nan) if pose is None else
                              np.where((pose.views >= 2)[:17, None], pose.joints[:17], np.nan))
        keep["raw"].append(to_calibration_px(result.argmax_pixels(fused=False)[:, :17], scale))
        keep["fused"].append(to_calibration_px(result.argmax_pixels(fused=True)[:, :17], scale))
        keep["sides"].append(np.array([np.nan if c is None else c.size / scale for c in result.crops]))
        keep["presence"].append(result.presence)
        keep["reduction"].append(reduction)
        keep["crop_px"].append(np.nan if crop_px is None else crop_px)
        keep["crop"].append(result.timings_ms["crop"])
        keep["network"].append(result.timings_ms["network"])
    out: dict[str, Any] = {k: np.stack(v) if k in ("joints", "raw", "fused", "sides", "presence") else
                           np.asarray(v) for k, v in keep.items()}
    out["detector_runs"] = pipeline.detector_runs
    out["predictions"] = evaluate.ClipPredictions(out["raw"], out["fused"], out["presence"], tuple(rig.names),
                                                  pipeline.detector_runs, out["network"],
                                                  str(getattr(network, "provider", "?")), out["joints"])
    return out


def compare(mode: str, full: dict[str, Any], other: dict[str, Any]) -> None:
    """Print how far ``other``'s fused 2D maxima and 3D joints are from ``full``'s."""
    per_heatmap_px = full["sides"][:, :, None] / HEATMAP_SIZE  # calibration px per full's heatmap px
    moved = np.linalg.norm(other["fused"] - full["fused"], axis=-1) / per_heatmap_px  # (N, C, 17)
    both = np.isfinite(moved)
    reduced = (other["reduction"] > 1)[:, None, None] & both
    share = 100 * (moved[reduced] > 1).mean() if reduced.any() else float("nan")
    print(f"{mode} vs full, fused 2D maxima: {100 * (moved[both] > 1).mean():.2f} % of {both.sum()} "
          f"joint-views moved > 1 heatmap px ({share:.2f} % of the {reduced.sum()} in sets decoded reduced); "
          f"median {np.nanmedian(moved):.3f} heatmap px")
    d3 = 1e3 * np.linalg.norm(other["joints"] - full["joints"], axis=-1)
    wrists = d3[:, [H36M17.index(j) for j in evaluate.WRISTS]]
    print(f"{mode} vs full, 3D joints: median {np.nanmedian(d3):.1f} mm, p95 {np.nanpercentile(d3, 95):.1f} "
          f"mm; wrists median {np.nanmedian(wrists):.1f} mm, p95 {np.nanpercentile(wrists, 95):.1f} mm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (Pose2Sim's 3D: 100)")
    parser.add_argument("--start", type=int, default=60, help="first frame of the 2D detection rates")
    parser.add_argument("--width", type=int, default=540)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--runtime", default="auto", choices=["onnxruntime", "openvino", "auto"])
    parser.add_argument("--precision", default="auto", choices=["f32", "bf16", "auto"])
    parser.add_argument("--always", type=int, choices=[2, 4], default=None,
                        help="also run every set decoded at 1/N, crops too small or not (what the rule "
                        "avoids)")
    args = parser.parse_args()
    use_one_thread()
    cv2.setNumThreads(1)  # as an inference worker

    rig = load_rig(assets.extract(*evaluate.CALIBRATION))
    sets = clip_framesets(rig, args.frames, args.width, args.height, args.quality)
    network = evaluate.open_network_as(args.runtime, args.precision, "cpu", None, len(rig))
    shape = sets[0][0]["frames"][0]["shape"]
    print(f"Pose2Sim clip, {len(sets)} sets of {len(rig)} views {shape[1]}x{shape[0]} JPEG q{args.quality}; "
          f"network on {network.provider} ({args.runtime}, {args.precision}); 1 thread")
    modes = ["full", "auto", *([f"always{args.always}"] if args.always else [])]
    runs = {mode: run(rig, network, sets, mode) for mode in modes}

    for mode, r in runs.items():
        counts = {int(k): int(v) for k, v in zip(*np.unique(r["reduction"], return_counts=True), strict=True)}
        px = r["crop_px"][np.isfinite(r["crop_px"])]
        known = f"min {px.min():.0f} / median {np.median(px):.0f} / max {px.max():.0f}" if px.size else "—"
        print(f"[{mode}] sets per reduction {counts}; decode {np.median(r['decode']):.2f} ms, crop "
              f"{np.median(r['crop']):.2f} ms, network {np.median(r['network']):.1f} ms per set (medians); "
              f"smallest planned crop side {known} px of the sent frames; detector ran {r['detector_runs']}x")

    for mode, r in runs.items():
        if mode != "full":
            compare(mode, runs["full"], r)

    reference2d = evaluate.reference_keypoints(rig.names, len(sets))
    reference3d = evaluate.pose2sim_joints(len(sets))
    for mode, r in runs.items():
        s = evaluate.summarize(r["predictions"], reference2d, min(args.start, len(sets) - 1))
        s3 = evaluate.summarize_3d(r["joints"], reference3d)
        fused, raw = s["fused"], s["raw"]
        print(f"[{mode}] vs Pose2Sim: 2D detection (fused) overall {100 * fused['overall']:.1f} %, wrists "
              f"{100 * fused['wrists']:.1f} % (raw {100 * raw['overall']:.1f} / {100 * raw['wrists']:.1f} "
              "%); "
              f"{evaluate.format_3d(s3)}")


if __name__ == "__main__":
    main()
