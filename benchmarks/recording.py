"""Recording benchmark: what recording a take costs the live stream, and what the take loses.

One service (as ``benchmarks/pipeline.py``) is measured in three windows of ``--duration`` seconds
each, from a websocket client on loopback: A without recording, B while a take records (started
and stopped through the REST API), C without recording again (A and C bracket drift). Reported:

* capture → websocket latency median / p99 and solved sets/s in each window; the recording's cost
  is median(B) / median(A ∪ C) − 1 (target ≤ 10 %);
* the take: frame sets sync emitted during it (span of set numbers), received by the recorder,
  written, lost (gaps by set number; target 0), frames per camera, bytes, and how long the stop
  took (the recorder first writes every set emitted before the stop request).

Studios: ``pose2sim`` (the demo: 4 real cameras at 60 fps, 540x960, through the ONNX network) or
``synthetic`` (rendered cameras, the simulated backend: the network bypassed, named as such).

``--writer-only`` measures the recorder's own capacity instead: frame sets of ``--cameras`` raw
``--size`` frames (a real frame of the Pose2Sim clip when available, else a synthetic picture)
through :class:`TakeWriter` (encode, append, flush + fsync) as fast as it goes, in this process.

Usage: python benchmarks/recording.py [--studio pose2sim|synthetic] [--duration 300] [--frames jpeg|png|none]
       python benchmarks/recording.py --writer-only [--cameras 4] [--size 960x540] [--frames jpeg]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from crosspose.config import Config
from crosspose.recording import TakeStore
from crosspose.runtime.demo import pose2sim_config, synthetic_config
from pipeline import percentile, received_for, running_service  # benchmarks/ is the script's folder

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def window(url: str, duration: float) -> list[float]:
    """Capture → receive latencies (ms) of every skeleton message received for ``duration`` s."""
    return [(t - json.loads(raw)["t_capture_ns"]) / 1e6 for t, raw in await received_for(url, duration)]


def wait(cond: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def writer_only(args: argparse.Namespace) -> None:
    """Sets per second the take writer sustains (encode + append + fsync), no service."""
    import numpy as np

    from crosspose.bus.schema import frame_message
    from crosspose.capture.frames import encode_frame
    from crosspose.recording import TakeWriter

    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    base = cv2_test_image(w, h, rng)
    names = [f"cam{i}" for i in range(args.cameras)]
    quality = 90 if args.input == "jpeg" else None  # jpeg: as a grabber with jpeg_quality sends them
    jpegs = [encode_frame(np.roll(base, k, axis=1), quality) for k in range(8)] if quality else []
    with tempfile.TemporaryDirectory(prefix="crosspose-recbench-") as tmp:
        for threads in (1, 2):
            writer = TakeWriter(
                Path(tmp) / f"t{threads}",
                take_id="t",
                name="t",
                metadata=None,
                cameras=names,
                frames=args.frames,
                encode_threads=threads,
            )
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.duration:
                frames, bufs = [], []
                for i, cam in enumerate(names):
                    img = base
                    enc, buf = (
                        jpegs[(n + i) % 8] if jpegs else encode_frame(np.roll(base, n + i, axis=1), None)
                    )
                    frames.append(
                        frame_message(
                            cam, n, img, t_capture_ns=n, t_wall_ns=n, t_device_ns=None, encoding=enc, fps=60.0
                        )
                    )
                    bufs.append(buf)
                writer.add_frameset(
                    {
                        "seq": n,
                        "t_ref_ns": n,
                        "cameras": names,
                        "present": [True] * len(names),
                        "frames": frames,
                        "skew_ns": [0] * len(names),
                    },
                    bufs,
                )
                writer.maybe_flush()
                n += 1
            elapsed = time.perf_counter() - t0
            m = writer.close()
            print(
                f"writer: {args.cameras} cameras {w}x{h} {args.input} → {args.frames}, {threads} thread(s): "
                f"{n / elapsed:.1f} frame sets/s ({n * args.cameras / elapsed:.0f} frames/s), "
                f"{m['bytes'] / n / args.cameras / 1e3:.0f} kB per frame"
            )


def cv2_test_image(w: int, h: int, rng: Any) -> Any:
    """A real Pose2Sim frame resized to ``w x h`` when the clip is cached, else textured noise."""
    import cv2
    import numpy as np

    try:
        from crosspose import assets
        from crosspose.runtime.demo import POSE2SIM, POSE2SIM_VIDEOS

        cap = cv2.VideoCapture(str(assets.extract_tree(POSE2SIM, POSE2SIM_VIDEOS) / "cam01.mp4"))
        ok, frame = cap.read()
        cap.release()
        if ok:
            return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    except Exception:  # no cached clip: a synthetic picture
        pass
    img = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studio", choices=["pose2sim", "synthetic"], default="pose2sim")
    parser.add_argument("--cameras", type=int, default=4, help="synthetic cameras")
    parser.add_argument("--fps", type=float, default=30.0, help="synthetic camera rate")
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds per window (take = one window)"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after ready before measuring")
    parser.add_argument("--frames", choices=["jpeg", "png", "none"], default="jpeg", help="recording.frames")
    parser.add_argument("--store", type=Path, default=None, help="takes folder (default: a temporary one)")
    parser.add_argument("--writer-only", action="store_true", help="measure the take writer alone")
    parser.add_argument(
        "--render",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="synthetic: render HD camera images (--no-render: flat 64x48 placeholder frames)",
    )
    parser.add_argument("--size", default="540x960", help="--writer-only: frame WxH (the demo's 540x960)")
    parser.add_argument(
        "--input", choices=["raw", "jpeg"], default="raw", help="--writer-only: frames as sent"
    )
    args = parser.parse_args()
    if args.writer_only:
        writer_only(args)
        return

    with tempfile.TemporaryDirectory(prefix="crosspose-recbench-") as tmp:
        wd = Path(tmp)
        if args.studio == "synthetic":
            base_config = synthetic_config(
                wd, "127.0.0.1", 0, cameras=args.cameras, fps=args.fps, render=args.render
            )
        else:
            base_config = pose2sim_config(wd, "127.0.0.1", 0)
        data = base_config.model_dump(mode="json", by_alias=True)
        data["api"]["token"] = TOKEN
        store = args.store or wd / "takes"
        data["recording"] = {"store": str(store), "frames": args.frames}
        config = Config.model_validate(data)
        # The pose2sim studio builds the network on first use: minutes before the API answers.
        with running_service(config, wd, port_timeout=600, ready_timeout=300) as base:
            wait(
                lambda: httpx.get(f"{base}/api/v1/recordings", headers=AUTH).json()["recorder"]["running"],
                "the recorder",
                60,
            )
            time.sleep(args.warmup)
            ws = base.replace("http", "ws") + "/ws/skeletons"
            lat_a = asyncio.run(window(ws, args.duration))
            r = httpx.post(f"{base}/api/v1/recordings", headers=AUTH, json={"name": "bench"}, timeout=30)
            r.raise_for_status()
            take_id = r.json()["id"]
            lat_b = asyncio.run(window(ws, args.duration))
            t_stop = time.monotonic()
            r = httpx.post(f"{base}/api/v1/recordings/{take_id}/stop", headers=AUTH, timeout=60)
            r.raise_for_status()
            summary = wait(
                lambda: (
                    (s := httpx.get(f"{base}/api/v1/recordings/{take_id}", headers=AUTH).json())["state"]
                    != "recording"
                    and s
                ),
                "the end of the take",
                600,
            )
            stop_s = time.monotonic() - t_stop
            lat_c = asyncio.run(window(ws, args.duration))
        take = TakeStore(store).get(take_id)
        m = take.manifest

    fs = m["framesets"]
    span = (fs["last_seq"] - fs["first_seq"] + 1) if fs["first_seq"] is not None else 0
    ref = lat_a + lat_c
    cost = statistics.median(lat_b) / statistics.median(ref) - 1 if ref and lat_b else float("nan")
    print(
        f"# recording benchmark: studio {args.studio}, {len(config.cameras)} cameras "
        f"({config.cameras[0].fps or 'source'} fps), backend {config.inference.backend}, "
        f"frames {args.frames}, {args.duration:.0f} s per window"
    )
    print("| window | solved sets/s | latency median | latency p99 |\n|---|---|---|---|")
    for name, lat in (("A no recording", lat_a), ("B recording", lat_b), ("C no recording", lat_c)):
        print(
            f"| {name} | {len(lat) / args.duration:.1f} | {percentile(lat, 50):.1f} ms | "
            f"{percentile(lat, 99):.1f} ms |"
        )
    print(f"\nrecording adds {100 * cost:+.1f} % to the median latency (B vs A∪C; target ≤ +10 %)")
    print(
        f"take {take_id}: state {summary['state']}, {summary['duration_s']:.1f} s, sets emitted by sync "
        f"{span}, received {fs['received']}, written {fs['written']}, lost {fs['lost']} (target 0), "
        f"frames {summary['frames']}, camera seq gaps {summary['camera_seq_gaps']}, "
        f"{summary['size_bytes'] / 1e6:.1f} MB, stop took {stop_s:.1f} s"
    )


if __name__ == "__main__":
    main()
