"""Synthetic-studio costs: rendering 4 views and simulating heatmaps, against a reference in the same run.

The reference is a plain ``cv2.resize`` of the same four 640x480 frames to 320x240 (a fixed, tiny
amount of image work), so the ratio column stays meaningful on a shared, noisy machine.

    python benchmarks/studio.py [--repeats 60]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np

from crosspose.studio import HeatmapErrors, Renderer, make_scene, random_rig, simulate_heatmaps


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    cv2.setNumThreads(1)

    rig = random_rig(0, 4, image_sizes=[(640, 480)], distortion=0.0)
    scene = make_scene(0, args.repeats, 4, rig=rig)
    renderer = Renderer(rig)
    frames = renderer.render(scene.joints3d[0])
    rng = np.random.default_rng(0)
    i = iter(range(10**9))

    rows = {
        "reference: resize 4x 640x480 → 320x240": lambda: [cv2.resize(f, (320, 240)) for f in frames],
        "render 4 views 640x480": lambda: renderer.render(scene.joints3d[next(i) % len(scene.joints3d)]),
        "heatmaps 4x17x64x64, clean": lambda: simulate_heatmaps(
            scene.joints2d[0], rig.image_size, (64, 64), rng=rng
        ),
        "heatmaps 4x17x64x64, realistic errors": lambda: simulate_heatmaps(
            scene.joints2d[0], rig.image_size, (64, 64), errors=HeatmapErrors.realistic(), rng=rng
        ),
    }
    results = {name: _median_ms(fn, args.repeats) for name, fn in rows.items()}
    ref = next(iter(results.values()))
    print(f"{'what':<42}{'median ms':>10}{'x reference':>13}{'of 33 ms':>10}")
    for name, ms in results.items():
        print(f"{name:<42}{ms:>10.2f}{ms / ref:>13.1f}{ms / 33.3:>10.0%}")


if __name__ == "__main__":
    main()
