"""Live pipeline benchmark: the whole service (supervisor, grabbers, sync, inference, solver, API) on
this machine, measured from websocket clients on loopback.

Studios:
* ``synthetic`` — synthetic cameras (placeholder frames unless ``--render``), inference backend
  ``simulated`` (the network bypassed, named as such): isolates transport, sync and solver cost.
* ``pose2sim`` — the real 4-camera clip (1080x1920, 60 fps, looped) through the real ONNX network.

Reported: solved frame sets per second as the clients receive them, capture → websocket latency
(host monotonic clock, client side) median / p99, the per-stage latencies the messages carry, the
share of joints two or more views support (the solver's "views"), how far apart in device time the
views of a frame set are (0: the same moment in every view), the share of messages each
subscriber received, and every drop counter the service exposes (/metrics).

Usage: python benchmarks/pipeline.py [--studio synthetic|pose2sim] [--cameras 8] [--fps 60]
       [--duration 20] [--subscribers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import websockets

from crosspose.config import Config
from crosspose.runtime.demo import pose2sim_config, synthetic_config
from crosspose.runtime.service import make_supervisor


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


async def received_for(url: str, duration: float) -> list[tuple[int, str | bytes]]:
    """Every websocket message received from ``url`` for ``duration`` s, with its arrival time
    (host monotonic ns). Shared by the pipeline, recording and VMC benchmarks."""
    out: list[tuple[int, str | bytes]] = []
    async with websockets.connect(url, max_size=None) as ws:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.05, end - time.monotonic()))
            except TimeoutError:
                break
            out.append((time.monotonic_ns(), raw))
    return out


async def subscribe(url: str, duration: float, out: list[dict[str, Any]]) -> None:
    for now, raw in await received_for(url, duration):
        m = json.loads(raw)
        out.append({"seq": m["seq"], "capture": m["t_capture_ns"], "recv": now, "lat": m["latency_ms"],
                    "views": m["views"]})


async def clients(url: str, n: int, duration: float) -> list[list[dict[str, Any]]]:
    results: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    await asyncio.gather(*(subscribe(url, duration, r) for r in results))
    return results


def view_spread(endpoint: str, duration: float, out: list[float]) -> None:
    """Per frame set of ``endpoint`` (sync's ``frameset.`` PUB) for ``duration`` s: the spread of its
    present views' device timestamps (ms) — 0 when every view shows the same moment (replayed files on
    the service's timeline, live synthetic ticks)."""
    from crosspose.bus import FRAMESET, Subscriber

    with Subscriber(endpoint, [FRAMESET], bind=False, hwm=1000) as sub:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            msg = sub.recv(100)
            if msg is None:
                continue
            frames = [f for f, p in zip(msg.header["frames"], msg.header["present"], strict=True) if p and f]
            devices = [f["t_device_ns"] for f in frames if f.get("t_device_ns") is not None]
            if len(devices) >= 2:
                out.append((max(devices) - min(devices)) / 1e6)


def wait_ready(base: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/ready", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def running_service(config: Config, workdir: Path, port_timeout: float = 120.0,
                    ready_timeout: float = 180.0) -> Iterator[str]:
    """The whole service under its supervisor; yields the API's base URL once ready, stops it after.
    Shared by the pipeline, recording and VMC benchmarks."""
    port_file = workdir / "port"
    sup = make_supervisor(config, str(port_file))
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + port_timeout
        while not port_file.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"the API did not report its port within {port_timeout:.0f} s")
            time.sleep(0.1)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        if not wait_ready(base, ready_timeout):
            raise SystemExit(f"service not ready: {httpx.get(f'{base}/api/v1/ready').text}")
        yield base
    finally:
        sup.request_stop()
        thread.join(60)


def add_studio_arguments(parser: argparse.ArgumentParser, cameras: int, fps: float) -> None:
    """``--studio --cameras --fps --duration --render``: which service to run (:func:`studio_config`)."""
    parser.add_argument("--studio", choices=["synthetic", "pose2sim"], default="synthetic")
    parser.add_argument("--cameras", type=int, default=cameras, help="synthetic cameras")
    parser.add_argument("--fps", type=float, default=fps, help="synthetic camera rate")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument(
        "--render",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="synthetic: render camera images (default: flat placeholder frames, so the run "
        "measures transport, sync and solver, not the renderer)",
    )
    parser.add_argument("--inference-threads", type=int, default=None,
                        help="ONNX Runtime threads of the inference stage (default: the config's)")


def studio_config(args: argparse.Namespace, workdir: Path) -> Config:
    """The demo's config for ``args.studio`` (API on 127.0.0.1, any free port)."""
    if args.studio == "synthetic":
        config = synthetic_config(
            workdir, "127.0.0.1", 0, cameras=args.cameras, fps=args.fps, render=args.render
        )
    else:
        config = pose2sim_config(workdir, "127.0.0.1", 0)
    if args.inference_threads is not None:
        config.inference.threads = args.inference_threads
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_studio_arguments(parser, cameras=8, fps=60.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ready before measuring")
    parser.add_argument("--subscribers", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crosspose-bench-") as tmp:
        wd = Path(tmp)
        config = studio_config(args, wd)
        with running_service(config, wd) as base:
            time.sleep(args.warmup)
            metrics_before = httpx.get(f"{base}/metrics").text
            spreads: list[float] = []
            spread_thread = threading.Thread(
                target=view_spread, args=(config.bus.framesets_endpoint, args.duration, spreads), daemon=True
            )
            spread_thread.start()
            results = asyncio.run(
                clients(base.replace("http", "ws") + "/ws/skeletons", args.subscribers, args.duration)
            )
            spread_thread.join(args.duration + 5)
            metrics_after = httpx.get(f"{base}/metrics").text
            cameras = httpx.get(f"{base}/api/v1/cameras").json()

    first = results[0]
    seqs = sorted({m["seq"] for r in results for m in r})
    produced = len(seqs)
    rate = produced / args.duration
    latency = [(m["recv"] - m["capture"]) / 1e6 for m in first]
    print(
        f"# pipeline benchmark: studio {args.studio}, {len(config.cameras)} cameras, "
        f"backend {config.inference.backend}, {args.duration:.0f} s measured, "
        f"{args.subscribers} subscriber(s)"
    )
    print("| metric | value |\n|---|---|")
    print(f"| solved frame sets / s (received) | {rate:.1f} |")
    print(f"| capture → websocket latency median | {percentile(latency, 50):.1f} ms |")
    print(f"| capture → websocket latency p99 | {percentile(latency, 99):.1f} ms |")
    for stage in ("sync", "inference", "solve", "total"):
        vals = [m["lat"].get(stage) for m in first if m["lat"].get(stage) is not None]
        if vals:
            print(f"| stage {stage} median (server) | {statistics.median(vals):.1f} ms |")
    shares = [len(r) / max(produced, 1) for r in results]
    print(
        f"| subscribers receiving ≥ 95% of messages | {sum(s >= 0.95 for s in shares)}/{len(shares)} "
        f"(min {100 * min(shares):.1f}%) |"
    )
    views = [statistics.mean(m["views"]) for m in first]
    if views:
        print(f"| mean views per joint | {statistics.mean(views):.2f} |")
        # The solver's own measure of a usable joint: two or more views agree on it.
        supported = statistics.mean(statistics.mean(v >= 2 for v in m["views"]) for m in first)
        print(f"| joints with ≥ 2 supporting views | {100 * supported:.1f} % |")
    if spreads:
        # Do the views of a set show the same moment? (They did not before the shared replay timeline.)
        print(f"| views' device-time spread per set, median / max | {percentile(spreads, 50):.1f} / "
              f"{max(spreads):.1f} ms |")
    print("\ncameras:", json.dumps(cameras))
    print("\ndrop counters (/metrics, before → after):")
    before = {
        ln.rsplit(" ", 1)[0]: ln.rsplit(" ", 1)[1]
        for ln in metrics_before.splitlines()
        if ln and not ln.startswith("#")
    }
    for line in metrics_after.splitlines():
        if line and not line.startswith("#") and "drop" in line:
            key, value = line.rsplit(" ", 1)
            print(f"  {key}: {before.get(key, '0')} → {value}")


if __name__ == "__main__":
    main()
