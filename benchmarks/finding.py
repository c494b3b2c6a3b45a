"""Finding performers on the live multi-person path (issue 21, item 2): how soon a cold start finds both
performers, and what looking for someone costs while one of two is lost.

Pose2Sim 0.10.49's ``Demo_MultiPerson`` clip as ``crosspose demo --studio pose2sim-multi`` serves it (540x960
frames, the demo's runtime and detector from its config, ``capture.max_persons`` 2), through the core's
multi-person path frame set by frame set, with capture times.

* ``cold``: cold starts at every ``--step``-th frame of the clip, the clip sampled every ``--every`` frames
  (60 fps / 12 = 5 frame sets per second, the live rate on a 2-core CPU), each once with every view and once
  with one view missing from the first frame set (a camera that is late on start-up); the frame sets (and
  capture seconds) until both performers are reported.
* ``lost``: both followed from frame 20, then the woman painted out (her solved joints' box in each view,
  from a first pass, grey; the man's box kept) for ``--gone`` seconds of capture time, then back; the clip
  played forth and back between frames 20 and 70 (the two stand apart there) at 60 fps. Per frame set
  while she is gone: the time of the whole set, of the detector (with association) and the detector's view
  images; then the frame sets until she is reported again, and the ids.

``--before FILE``: also run the ``FramePipeline`` of another version of ``crosspose/inference/pipeline.py``
(``git show main:service/crosspose/inference/pipeline.py > /tmp/before.py``) on the same network, detector and
frames; ``lost`` alternates the two frame set by frame set (which runs first alternating too), so their times
compare under the same load.

Usage: python benchmarks/finding.py [cold|lost|both] [--every 12] [--step 10] [--gone 0.5] [--before FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crosspose.calibration import load_rig
from crosspose.core import ImageSet
from crosspose.core.backends import NetworkBackend
from crosspose.core.steps import Core, HeatmapStep, PoseStep
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.runtime.demo import pose2sim_config
from crosspose.skeleton import BODY32
from crosspose.solver import Solver

FPS = 60.0
SIZE = (540, 960)  # the demo's frames (width, height)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def setup(work: Path) -> tuple[Any, Any, list[list[np.ndarray]]]:
    """The demo's config, its network backend and the clip's frames at the demo's size."""
    config = pose2sim_config(work, "127.0.0.1", 1, multi=True)
    assert config.calibration.file is not None  # the demo's config names its calibration
    rig = load_rig(config.calibration.file)
    with SyncedVideos(video_files(Path(config.cameras[0].source).parent, rig.names), None) as frames:
        clip = [[cv2.resize(im, SIZE, interpolation=cv2.INTER_AREA) for im in images if im is not None]
                for images in frames]
    return rig, NetworkBackend.from_config(config, rig), clip


def before_backend(path: Path, backend: Any) -> Any:
    """``backend``'s network and detector in the ``FramePipeline`` of the module file ``path``."""
    spec = importlib.util.spec_from_file_location("crosspose_pipeline_before", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    new = backend.pipeline
    pipeline = module.FramePipeline(new.rig, new.network, detector=new.detector, max_persons=new.max_persons)
    return NetworkBackend(pipeline, fused=backend.fused)


def new_core(rig: Any, backend: Any) -> Core:
    backend.pipeline.reset()
    return Core(HeatmapStep(backend, rig), PoseStep(Solver(BODY32)), min_views=2)


def cold(rig: Any, backend: Any, clip: list[list[np.ndarray]], every: int, step: int, most: int,
         name: str = "") -> None:
    print(f"{name}cold starts, the clip every {every} frames ({FPS / every:.1f} frame sets/s), first frame "
          f"set with every view or one missing; frame sets until both performers are reported:")
    rows: dict[str, list[int | None]] = {}
    for missing in (None, 0, 1, 2, 3):
        label = "all views" if missing is None else f"cam{missing + 1:02d} missing"
        rows[label] = []
        for start in range(0, len(clip), step):
            core = new_core(rig, backend)
            found = None
            for i in range(most):
                frame = start + i * every
                images: list[np.ndarray | None] = list(clip[frame % len(clip)])
                if i == 0 and missing is not None:
                    images[missing] = None
                solved = core.run_persons(ImageSet(i, round(frame * 1e9 / FPS), images))
                if len(solved.persons) == 2:
                    found = i
                    break
            rows[label].append(found)
        got = [f for f in rows[label] if f is not None]
        print(f"  {label:>13}: {rows[label]}  never {len(rows[label]) - len(got)}, worst "
              f"{max(got) if got else '-'} sets ({(max(got) if got else 0) * every / FPS:.2f} s)")
    every_start = [f for r in rows.values() for f in r]
    got = [f for f in every_start if f is not None]
    print(f"  all {len(every_start)} starts: at the first set {got.count(0)}, within 1 / 2 / 3 sets "
          f"{sum(f <= 1 for f in got)} / {sum(f <= 2 for f in got)} / {sum(f <= 3 for f in got)}, never "
          f"{len(every_start) - len(got)}; mean {np.mean(got):.2f} sets")


def ping_pong(first: int, last: int) -> Iterator[int]:
    while True:
        yield from range(first, last)
        yield from range(last, first, -1)


def boxes(rig: Any, joints: np.ndarray, margin: float = 0.15) -> list[tuple[int, int, int, int] | None]:
    """Per view the ``x0, y0, x1, y1`` image box of ``(J, 3)`` joints, widened by ``margin`` of its size."""
    uv = np.asarray(rig.project(joints[np.isfinite(joints).all(-1)]))  # (J, C, 2)
    out: list[tuple[int, int, int, int] | None] = []
    for v in range(uv.shape[1]):
        p = uv[:, v][np.isfinite(uv[:, v]).all(-1)]
        if not len(p):
            out.append(None)
            continue
        lo, hi = p.min(0), p.max(0)
        pad = margin * (hi - lo)
        out.append(tuple(int(x) for x in (*(lo - pad), *(hi + pad))))  # type: ignore[arg-type]
    return out


def lost(rig: Any, backends: dict[str, Any], clip: list[list[np.ndarray]], gone_s: float,
         after_s: float) -> None:
    scaled = rig.resized(SIZE[0] / rig.image_size[0][0])
    # First pass: both followed; each frame's solved joints per person.
    core = new_core(rig, next(iter(backends.values())))
    poses: dict[int, dict[int, np.ndarray]] = {}
    for i, frame in enumerate(range(0, 71)):
        solved = core.run_persons(ImageSet(i, round(i * 1e9 / FPS), list(clip[frame])))
        poses[frame] = {id: pose.joints for id, pose in solved.persons}
    ids = sorted({id for p in poses.values() for id in p})
    woman = max(ids, key=lambda id: np.mean([p[id][BODY32.root, 0] for p in poses.values() if id in p]))
    man = min(ids)
    if woman == man or any(len(poses[f]) != 2 for f in range(20, 71)):
        raise SystemExit(f"the first pass did not follow both performers on frames 20-70: ids {ids}")
    cores = {name: new_core(rig, backend) for name, backend in backends.items()}
    frames = ping_pong(20, 70)
    t = 0.0
    stats: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in backends}
    back_at: dict[str, float | None] = {name: None for name in backends}
    seen_ids: dict[str, set[int]] = {name: set() for name in backends}
    i = 0
    print(f"one of two lost: the woman painted out for {gone_s:.2f} s of capture time from 0.25 s "
          f"(frames 20-70 forth and back at {FPS:.0f} fps)")
    while t < 0.25 + gone_s + after_s:
        frame = next(frames)
        images = [im.copy() for im in clip[frame]]
        painted = 0.25 <= t < 0.25 + gone_s
        if painted:
            keep = boxes(scaled, poses[frame][man])
            for v, box in enumerate(boxes(scaled, poses[frame][woman])):
                if box is None:
                    continue
                x0, y0, x1, y1 = box
                saved = images[v].copy()
                images[v][max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 128
                if keep[v] is not None:
                    a0, b0, a1, b1 = (max(x, 0) for x in keep[v])  # type: ignore[union-attr]
                    images[v][b0:b1, a0:a1] = saved[b0:b1, a0:a1]
        order = list(cores) if i % 2 == 0 else list(cores)[::-1]
        for name in order:
            pipeline = backends[name].pipeline
            views0 = pipeline.detector_views
            t0 = time.perf_counter()
            solved = cores[name].run_persons(ImageSet(i, round(t * 1e9), list[np.ndarray | None](images)))
            total = 1e3 * (time.perf_counter() - t0)
            detect = max((out.extra.get("timings_ms", {}).get("detect", 0.0) for _, out in solved.heatmaps),
                         default=0.0)
            seen_ids[name] |= {id for id, _ in solved.persons}
            if painted and t >= 0.25 + 0.1:  # she is lost by then (her crops' presence dropped)
                stats[name].append((total, detect, pipeline.detector_views - views0, len(solved.persons)))
            if t >= 0.25 + gone_s and back_at[name] is None and len(solved.persons) == 2:
                back_at[name] = t - 0.25 - gone_s
        i += 1
        t += 1.0 / FPS
    for name, rows in stats.items():
        arr = np.array(rows)
        back = back_at[name]
        print(f"  {name}: while she is gone ({len(arr)} sets) whole set median {np.median(arr[:, 0]):.0f} ms "
              f"({1e3 / np.median(arr[:, 0]):.1f} sets/s), detector {np.median(arr[:, 1]):.0f} ms median / "
              f"{arr[:, 1].mean():.0f} ms mean, {arr[:, 2].mean():.2f} detector views per set (most "
              f"{arr[:, 2].max():.0f}), 2 persons reported in {int((arr[:, 3] == 2).sum())} of them (her "
              f"part the man's box leaves unpainted); back in view: reported again after "
              f"{'never' if back is None else f'{back:.3f} s'}; ids {sorted(seen_ids[name])} (started "
              f"{backends[name].pipeline.ids_started})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("cold", "lost", "both"), default="both")
    parser.add_argument("--every", type=int, default=12, help="cold: frames between frame sets")
    parser.add_argument("--step", type=int, default=10, help="cold: frames between cold starts")
    parser.add_argument("--sets", type=int, default=12, help="cold: most frame sets per start")
    parser.add_argument("--gone", type=float, default=0.5, help="lost: seconds the woman is painted out")
    parser.add_argument("--after", type=float, default=0.5, help="lost: seconds run after she is back")
    parser.add_argument("--work", type=Path, default=Path("/tmp/crosspose-finding"))
    parser.add_argument("--before", type=Path, default=None, help="another pipeline.py to compare with")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}")
    rig, backend, clip = setup(args.work)
    backends: dict[str, Any] = {"this": backend}
    if args.before is not None:
        backends = {"before": before_backend(args.before, backend), **backends}
    if args.what in ("cold", "both"):
        for name, b in backends.items():
            cold(rig, b, clip, args.every, args.step, args.sets, name=f"{name}: ")
    if args.what in ("lost", "both"):
        lost(rig, backends, clip, args.gone, args.after)


if __name__ == "__main__":
    main()
