"""JPEG decode cost of one 4-view frame set, full size and reduced (libjpeg's scaled IDCT), on the Pose2Sim
clip's frames encoded as the grabbers encode them (:func:`crosspose.capture.frames.encode_frame`).

The inference workers decode every frame set's JPEGs with ``cv2.imdecode``, one OpenCV thread each
(``run_inference`` sets ``cv2.setNumThreads(1)``); ``inference.decode: auto`` decodes them at 1/2 or 1/4 size
when every crop of the set still downsamples there (:mod:`crosspose.inference.decode`). This script times
``frameset_images`` (the worker's own decode) at reductions 1, 2 and 4, milliseconds per 4-view set.

``--width/--height``: the grabbers' frame size (default the demo's: 540x960, half the clip's 1080x1920;
``--width 1080 --height 1920`` for full-HD frames). ``--quality``: the grabbers' ``jpeg_quality`` (demo: 90).

Usage: python benchmarks/decode.py [--sets 20] [--repeat 5] [--width 540 --height 960] [--quality 90]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from crosspose import assets
from crosspose.capture.frames import encode_frame
from crosspose.capture.source import resize_to
from crosspose.core.imageset import frameset_images
from crosspose.io.videos import SyncedVideos
from crosspose.runtime.demo import POSE2SIM, POSE2SIM_VIDEOS


def clip_sets(sets: int, width: int, height: int, quality: int) -> tuple[list[list[bytes]], list[int]]:
    """``sets`` frame sets of the clip's 4 views as the grabbers send them: JPEG bytes, and the frames'
    shape."""
    paths = [assets.extract(POSE2SIM, f"{POSE2SIM_VIDEOS}cam{i:02d}.mp4") for i in range(1, 5)]
    out: list[list[bytes]] = []
    shape: list[int] = []
    with SyncedVideos(paths, max_frames=sets) as videos:
        for images in videos:
            views = []
            for image in images:
                assert image is not None
                frame = np.ascontiguousarray(resize_to(image, width, height))
                shape = list(frame.shape)
                views.append(bytes(encode_frame(frame, quality)[1]))
            out.append(views)
    return out, shape


def time_decode(sets: list[list[bytes]], shape: list[int], reductions: tuple[int, ...],
                repeat: int) -> dict[int, list[float]]:
    """Milliseconds per set of :func:`frameset_images` at each reduction, each set decoded ``repeat`` times at
    each, the reductions taken in turn (a host whose load drifts slows them alike)."""
    frames = [{"camera": f"cam{c:02d}", "seq": 0, "encoding": "jpeg", "shape": shape} for c in range(4)]
    header = {"present": [True] * 4, "frames": frames}
    ms: dict[int, list[float]] = {r: [] for r in reductions}
    for buffers in sets:
        for _ in range(repeat):
            for reduce in reductions:
                t0 = time.perf_counter()
                frameset_images(header, buffers, reduce=reduce)
                ms[reduce].append(1e3 * (time.perf_counter() - t0))
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=20, help="frame sets of the clip")
    parser.add_argument("--repeat", type=int, default=5, help="decodes of each set per reduction")
    parser.add_argument("--width", type=int, default=540)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as an inference worker (run_inference)
    sets, shape = clip_sets(args.sets, args.width, args.height, args.quality)
    kb = statistics.mean(len(b) for s in sets for b in s) / 1024
    print(f"{len(sets)} sets of 4 views {shape[1]}x{shape[0]} JPEG q{args.quality} (mean {kb:.0f} KiB a "
          f"frame), {args.repeat} decodes each, 1 OpenCV thread")
    reductions = (1, 2, 4)
    time_decode(sets[:2], shape, reductions, 1)  # warm up
    timings = time_decode(sets, shape, reductions, args.repeat)
    full = statistics.median(timings[1])
    for reduce, ms in timings.items():
        med = statistics.median(ms)
        q = statistics.quantiles(ms, n=10)
        size = f"{-(-shape[1] // reduce)}x{-(-shape[0] // reduce)}"
        print(f"reduce {reduce}: {size}  median {med:6.2f} ms/set  p10 {q[0]:6.2f}  p90 {q[-1]:6.2f}  "
              f"({full / med:.2f}x faster than full)")

if __name__ == "__main__":
    main()
