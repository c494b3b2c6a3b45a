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

``--skeletons`` runs the service in Human3.6M-17 and in the full body (crosspose-body32, issue 19) in turn
the same way: what the extremities cost the live service.

``--baseline`` runs the configuration before issue 18 (ONNX Runtime f32, one inference worker with one
thread) and the current default (``inference.runtime auto``, ``workers auto``) in turn on the same studio,
``--rounds`` times each, one row per run (sets/s, p50/p99, the inference and solve stages, the share of
sets solved cold, the load average), then the medians and their ratio, naming the CPU and its flags.
Its solver runs today's defaults; ``--old-tracking`` adds ``baseline-oldtrack`` (the baseline with the
solver's tracking rule before the wide tracked search: cold beyond 70 ms, ``OLD_TRACKING``), which is the
whole configuration before issue 18, and ``default-oldtrack`` (the default with that rule).

``--frame-size 1080x1920`` (pose2sim): the grabbers send the clip's full-HD frames instead of the demo's
540x960, e.g. with ``--variant auto:decode=auto`` to see ``inference.decode`` at work.

Usage: python benchmarks/pipeline.py [--studio synthetic|pose2sim] [--frame-size WxH] [--cameras 8] [--fps 60]
       [--duration 20] [--subscribers 1] [--baseline [--old-tracking] | --skeletons [--rounds 2]]
       [--skeleton h36m17] [--variant NAME:key=value,solver.options.key=value …]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from pydantic import TypeAdapter

from crosspose.config import Config
from crosspose.config.settings import InferenceConfig
from crosspose.runtime.demo import pose2sim_config, synthetic_config
from crosspose.runtime.service import make_supervisor
from crosspose.runtime.supervisor import Supervisor


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
                    "views": m["views"], "mode": m.get("mode")})


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
    with supervised_service(config, workdir, port_timeout, ready_timeout) as (base, _):
        yield base


@contextlib.contextmanager
def supervised_service(config: Config, workdir: Path, port_timeout: float = 120.0,
                       ready_timeout: float = 180.0) -> Iterator[tuple[str, Supervisor]]:
    """:func:`running_service`, also yielding its supervisor (the stages' process ids)."""
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
        yield base, sup
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
                        help="threads of each inference worker (default: the config's)")
    parser.add_argument("--inference-workers", type=int, default=None,
                        help="inference worker processes (default: the config's, auto)")
    parser.add_argument("--inference-runtime", default=None, choices=["onnxruntime", "openvino", "auto"],
                        help="inference runtime (default: the config's, auto)")
    parser.add_argument("--frame-size", default=None, metavar="WxH",
                        help="pose2sim: the grabbers' frame size (default the demo's 540x960; 1080x1920: the "
                        "clip's own, full HD)")


def studio_config(args: argparse.Namespace, workdir: Path) -> Config:
    """The demo's config for ``args.studio`` (API on 127.0.0.1, any free port)."""
    if args.studio == "synthetic":
        config = synthetic_config(
            workdir, "127.0.0.1", 0, cameras=args.cameras, fps=args.fps, render=args.render
        )
    else:
        config = pose2sim_config(workdir, "127.0.0.1", 0)
        if getattr(args, "frame_size", None):
            width, _, height = args.frame_size.partition("x")
            if not (width.isdigit() and height.isdigit()):
                raise SystemExit(f"--frame-size {args.frame_size!r}: expected WIDTHxHEIGHT, e.g. 1080x1920")
            size = {"width": int(width), "height": int(height)}
            cameras = [c.model_copy(update=size) for c in config.cameras]
            config = config.model_copy(update={"cameras": cameras})
    section = config.inference.model_dump(exclude_unset=True)
    if args.inference_runtime is not None:
        section = {**section, "runtime": args.inference_runtime}
        section.pop("device", None)
    for key, value in (("threads", args.inference_threads), ("workers", args.inference_workers)):
        if value is not None:
            section[key] = value
    if getattr(args, "skeleton", None) is not None:
        config.solver.skeleton = args.skeleton
    return config.model_copy(update={"inference": TypeAdapter(InferenceConfig).validate_python(section)})


@dataclass
class Run:
    """What one service run measured (``label``: which configuration, in words)."""

    label: str
    provider: str
    results: list[list[dict[str, Any]]]
    duration: float
    spreads: list[float]
    cameras: Any
    metrics_before: str
    metrics_after: str
    load: tuple[float, float]
    cpu: dict[str, float]  # cores each stage used while measured (grabbers summed)

    def counted(self, sample: str) -> float:
        """How much the /metrics sample (name and labels, as the text shows them) rose during the run."""
        def read(text: str) -> float:
            for line in text.splitlines():
                if line.startswith(sample + " "):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        return read(self.metrics_after) - read(self.metrics_before)

    def held(self) -> str:
        """``held / in time / stale``: sets the solver held for an older one in flight, older sets that came
        in time, older sets dropped as too late."""
        held = self.counted('crosspose_solver_held_sets_total{outcome="held"}')
        in_time = self.counted('crosspose_solver_held_sets_total{outcome="in_time"}')
        stale = self.counted('crosspose_input_drops_total{reason="stale",source="heatmaps",stage="solver"}')
        return f"{held:.0f} / {in_time:.0f} / {stale:.0f}"

    @property
    def first(self) -> list[dict[str, Any]]:
        return self.results[0]

    @property
    def rate(self) -> float:
        return len({m["seq"] for r in self.results for m in r}) / self.duration

    def latency(self, q: float) -> float:
        return percentile([(m["recv"] - m["capture"]) / 1e6 for m in self.first], q)

    def cold_share(self) -> float:
        """The share of skeletons the solver searched cold (not tracked from the previous pose)."""
        return statistics.mean(m["mode"] == "cold" for m in self.first) if self.first else float("nan")

    def stage_ms(self, stage: str) -> float:
        """The median of ``stage`` (a key of the messages' ``latency_ms``, or ``publish`` / ``websocket``:
        :meth:`parts`) over the sets received, ms."""
        vals = [p for m in self.first if (p := self.parts(m).get(stage)) is not None]
        return statistics.median(vals) if vals else float("nan")

    @staticmethod
    def parts(message: dict[str, Any]) -> dict[str, float]:
        """One message's ``latency_ms`` and the two parts after the solve: ``publish`` (the solve's end →
        the message stamped: the live outputs) and ``websocket`` (stamped → this client received it)."""
        lat = {k: float(v) for k, v in message["lat"].items() if isinstance(v, (int, float))}
        if "total" in lat:
            lat["websocket"] = (message["recv"] - message["capture"]) / 1e6 - lat["total"]
            path = [lat.get(k) for k in ("sync", "queue", "inference", "transport", "hold", "solve")]
            if all(v is not None for v in path):
                lat["publish"] = lat["total"] - sum(v for v in path if v is not None)
        return lat


def measure(config: Config, label: str, args: argparse.Namespace) -> Run:
    """Start the service of ``config``, wait ``args.warmup`` s after ready, listen ``args.duration`` s.

    The layout's network is exported first where the config names none, as ``crosspose serve`` does (the
    supervisor alone expects the file)."""
    if config.inference.backend == "network" and config.inference.model is None:
        from crosspose.nets.export import ensure_network

        ensure_network(progress=print, skeleton=config.solver.skeleton)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="crosspose-bench-") as tmp, \
            supervised_service(config, Path(tmp)) as (base, supervisor):
        time.sleep(args.warmup)
        provider = httpx.get(f"{base}/api/v1/ready").json().get("provider") or "?"
        metrics_before = httpx.get(f"{base}/metrics").text
        cpu_before, t_before = cpu_seconds(supervisor), time.monotonic()
        spreads: list[float] = []
        spread_thread = threading.Thread(
            target=view_spread, args=(config.bus.framesets_endpoint, args.duration, spreads), daemon=True
        )
        spread_thread.start()
        results = asyncio.run(
            clients(base.replace("http", "ws") + "/ws/skeletons", args.subscribers, args.duration)
        )
        spread_thread.join(args.duration + 5)
        cpu_after, t_after = cpu_seconds(supervisor), time.monotonic()
        metrics_after = httpx.get(f"{base}/metrics").text
        cameras = httpx.get(f"{base}/api/v1/cameras").json()
    span = t_after - t_before
    cpu = {stage: (cpu_after[stage] - cpu_before.get(stage, 0.0)) / span for stage in cpu_after}
    return Run(label, provider, results, args.duration, spreads, cameras, metrics_before, metrics_after,
               (load_before, os.getloadavg()[0]), cpu)


def cpu_seconds(supervisor: Supervisor) -> dict[str, float]:
    """CPU seconds (user + system) each stage's process has used so far, the grabbers summed as
    ``grabbers`` (Linux ``/proc/<pid>/stat``; a stage without a process is left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for stage, pid in supervisor.pids().items():
        if pid is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "grabbers" if stage.startswith("grabber.") else stage
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_summary(cpu: dict[str, float]) -> str:
    """``inference 1.32 (0.66 + 0.66), solver 0.30, …`` in cores, the busiest first."""
    workers = {s: v for s, v in cpu.items() if s == "inference" or s.startswith("inference.")}
    parts = {"inference": sum(workers.values()),
             **{s: v for s, v in cpu.items() if s not in workers}}
    text = []
    for stage, cores in sorted(parts.items(), key=lambda kv: -kv[1]):
        each = f" ({' + '.join(f'{v:.2f}' for v in workers.values())})" if stage == "inference" and \
            len(workers) > 1 else ""
        text.append(f"{stage} {cores:.2f}{each}")
    return f"{sum(cpu.values()):.2f} cores: " + ", ".join(text)


def print_run(run: Run, args: argparse.Namespace, config: Config) -> None:
    """The single run's full table, its cameras and every drop counter."""
    first = run.first
    produced = len({m["seq"] for r in run.results for m in r})
    print(
        f"# pipeline benchmark: studio {args.studio}, {len(config.cameras)} cameras, "
        f"backend {config.inference.backend} ({run.provider}), {args.duration:.0f} s measured, "
        f"{args.subscribers} subscriber(s)"
    )
    print("| metric | value |\n|---|---|")
    print(f"| solved frame sets / s (received) | {run.rate:.1f} |")
    print(f"| capture → websocket latency median | {run.latency(50):.1f} ms |")
    print(f"| capture → websocket latency p99 | {run.latency(99):.1f} ms |")
    for stage in ("sync", "inference", "solve", "total"):
        if first and run.stage_ms(stage) == run.stage_ms(stage):
            print(f"| stage {stage} median (server) | {run.stage_ms(stage):.1f} ms |")
    print(f"| solved cold (not tracked) | {100 * run.cold_share():.1f} % |")
    print(f"| CPU of the service while measured | {cpu_summary(run.cpu)} |")
    shares = [len(r) / max(produced, 1) for r in run.results]
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
    if run.spreads:
        # Do the views of a set show the same moment? (They did not before the shared replay timeline.)
        print(f"| views' device-time spread per set, median / max | {percentile(run.spreads, 50):.1f} / "
              f"{max(run.spreads):.1f} ms |")
    print("\ncameras:", json.dumps(run.cameras))
    print_drops(run)


def print_drops(run: Run) -> None:
    """Every drop and person-detector counter of /metrics that moved during the run, before → after."""
    print(f"\ndrop and detector counters (/metrics, before → after) of {run.label}:")
    before = {
        ln.rsplit(" ", 1)[0]: ln.rsplit(" ", 1)[1]
        for ln in run.metrics_before.splitlines()
        if ln and not ln.startswith("#")
    }
    for line in run.metrics_after.splitlines():
        if line and not line.startswith("#") and ("drop" in line or "detector" in line):
            key, value = line.rsplit(" ", 1)
            if before.get(key, "0") != value:
                print(f"  {key}: {before.get(key, '0')} → {value}")


def baseline_config(config: Config) -> Config:
    """The configuration before issue 18: ONNX Runtime f32, one inference worker with one thread."""
    from crosspose.config.settings import OnnxRuntimeInference

    shared = config.inference.model_dump(include={"model", "heatmaps", "backend"})
    inference = OnnxRuntimeInference(device="cpu", precision="f32", workers=1, threads=1, nice=0, **shared)
    return config.model_copy(update={"inference": inference})


# The solver's tracking rule before the wide tracked search: a previous pose older than 70 ms was searched
# cold, a younger one on the 3x3x3 grid of one frame's motion.
OLD_TRACKING = {"track_max_speed": 0.0, "track_max_age_s": 0.07}


def old_tracking_config(config: Config) -> Config:
    """``config`` with the solver's tracking rule before the wide tracked search (:data:`OLD_TRACKING`)."""
    from crosspose.config.settings import SolverConfig

    solver = config.solver.model_dump(exclude_unset=True)
    solver["options"] = {**solver.get("options", {}), **OLD_TRACKING}
    return config.model_copy(update={"solver": SolverConfig.model_validate(solver)})


def variant_config(config: Config, spec: str) -> tuple[str, Config]:
    """``NAME:key=value,key=value`` (``--variant``) → ``(NAME, config)`` with those ``inference`` fields
    (``solver.<field>``: the solver section's, ``solver.options.<field>``: a solver option) changed, e.g.
    ``1x2:workers=1,threads=2``, ``ort:runtime=onnxruntime``, ``nohold:solver.hold_ms=0``,
    ``age70:solver.options.track_max_age_s=0.07``; a bad field or value is the config's error."""
    from crosspose.config.settings import SolverConfig

    name, _, fields = spec.partition(":")
    if not name or not fields:
        raise SystemExit(f"--variant {spec!r}: expected NAME:key=value[,key=value…]")
    section = config.inference.model_dump(exclude_unset=True)
    solver = config.solver.model_dump(exclude_unset=True)
    for item in fields.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise SystemExit(f"--variant {spec!r}: {item!r} is not key=value")
        if key.startswith("solver.options."):
            solver.setdefault("options", {})[key.removeprefix("solver.options.")] = value
            continue
        if key.startswith("solver."):
            solver[key.removeprefix("solver.")] = value
            continue
        section[key] = value
        if key == "runtime":
            section.pop("device", None)
    inference = TypeAdapter(InferenceConfig).validate_python(section)
    return name, config.model_copy(update={"inference": inference,
                                           "solver": SolverConfig.model_validate(solver)})


def skeleton_configs(default: Config) -> dict[str, Config]:
    """``--skeletons``: the same service in Human3.6M-17 and in the full body (issue 19)."""
    out = {}
    for name in ("h36m17", "crosspose-body32"):
        solver = default.solver.model_copy(update={"skeleton": name})
        out[name] = default.model_copy(update={"solver": solver})
    return out


def compare(args: argparse.Namespace) -> None:
    """``--baseline`` (the previous configuration, the new default and each ``--variant``) or
    ``--skeletons`` (both layouts): the configurations in turn, ``args.rounds`` rounds, one row per run, then
    the medians of each and their ratio to the first (the reference), per round and overall."""
    from crosspose.inference.runtimes.auto import host_cpu
    from crosspose.runtime.workers import host_cores, worker_count

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="crosspose-bench-") as tmp:
        default = studio_config(args, Path(tmp))
        configs = (skeleton_configs(default) if args.skeletons
                   else {"baseline": baseline_config(default), "default": default,
                         **dict(variant_config(default, spec) for spec in args.variant)})
        if args.old_tracking:
            configs = {"baseline": configs["baseline"],
                       "baseline-oldtrack": old_tracking_config(configs["baseline"]),
                       "default": default, "default-oldtrack": old_tracking_config(default),
                       **{k: v for k, v in configs.items() if k not in ("baseline", "default")}}
        if args.only:
            unknown = [name for name in args.only if name not in configs]
            if unknown:
                raise SystemExit(f"--only {','.join(unknown)}: not among {', '.join(configs)}")
            configs = {name: configs[name] for name in args.only}
        for round_ in range(args.rounds):
            for label, config in configs.items():
                print(f"round {round_ + 1}/{args.rounds}: {label} …", flush=True)
                runs.append(measure(config, label, args))
    mode = "--skeletons" if args.skeletons else "--baseline"
    print(f"\n# pipeline benchmark, {mode}: studio {args.studio}, {args.duration:.0f} s measured per run "
          f"after {args.warmup:.0f} s, runs in turn")
    print(f"CPU: {host_cpu().describe()}, {host_cores()} cores; inference.workers auto = "
          f"{worker_count(default)} here\n")
    print("| run | configuration | runtime (as /ready reports it) | solved sets/s | latency p50 / p99 | "
          "stages inference / solve (median) | solved cold | held / in time / stale | "
          "load average before → after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for i, run in enumerate(runs):
        print(f"| {i + 1} | {run.label} | {run.provider} | {run.rate:.1f} | {run.latency(50):.0f} / "
              f"{run.latency(99):.0f} ms | {run.stage_ms('inference'):.0f} / {run.stage_ms('solve'):.0f} "
              f"ms | {100 * run.cold_share():.0f} % | {run.held()} | {run.load[0]:.1f} → {run.load[1]:.1f} |")
    summary = {}
    for label in configs:
        mine = [r for r in runs if r.label == label]
        summary[label] = (statistics.median(r.rate for r in mine),
                          statistics.median(r.latency(50) for r in mine),
                          statistics.median(r.latency(99) for r in mine))
    reference, (b_rate, b_p50, b_p99) = next(iter(summary.items()))
    print(f"\nmedians over {args.rounds} rounds: " + "; ".join(
        f"{label} {rate:.1f} sets/s at p50 {p50:.0f} / p99 {p99:.0f} ms"
        for label, (rate, p50, p99) in summary.items()))
    reference_runs = [r for r in runs if r.label == reference]
    for label, (rate, p50, p99) in summary.items():
        if label != reference:
            mine = [r for r in runs if r.label == label]
            ratios = [r2.rate / r1.rate for r1, r2 in zip(reference_runs, mine, strict=True)]
            print(f"ratio {label} / {reference}: throughput {rate / b_rate:.2f}x (per round: "
                  f"{', '.join(f'{r:.2f}' for r in ratios)}), p50 latency {p50 / b_p50:.2f}x, "
                  f"p99 latency {p99 / b_p99:.2f}x")
    print_breakdown(runs)
    print("\nCPU the service used while measured (cores, per stage):")
    for i, run in enumerate(runs):
        print(f"  run {i + 1} ({run.label}): {cpu_summary(run.cpu)}")
    for run in runs:
        print_drops(run)


#: A set's way from capture to the client, in order (``latency_ms`` keys, :meth:`Run.parts`); the
#: inference worker's own parts, within ``inference``, after.
PATH = ("sync", "queue", "inference", "transport", "hold", "solve", "publish", "websocket")
INFERENCE_PARTS = ("decode", "detect", "crop", "network")


def print_breakdown(runs: list[Run]) -> None:
    """Where each run's latency goes: the mean of each part of a set's way (means add up to the mean
    capture → client latency, which is printed beside the median) and the inference worker's parts."""
    print("\nlatency of a set by stage, mean ms over the sets received (the parts add up to the mean; "
          "decode … network are within inference):")
    print("| run | configuration | " + " | ".join(PATH) + " | mean / p50 | "
          + " | ".join(INFERENCE_PARTS) + " |")
    print("|---|---|" + "---:|" * (len(PATH) + 1 + len(INFERENCE_PARTS)))
    for i, run in enumerate(runs):
        parts = [Run.parts(m) for m in run.first]

        def mean(key: str, parts: list[dict[str, float]] = parts) -> str:
            vals = [p[key] for p in parts if key in p]
            return f"{statistics.mean(vals):.1f}" if vals else "–"

        total = [(m["recv"] - m["capture"]) / 1e6 for m in run.first]
        overall = f"{statistics.mean(total):.0f} / {run.latency(50):.0f}" if total else "–"
        print(f"| {i + 1} | {run.label} | " + " | ".join(mean(k) for k in PATH) + f" | {overall} | "
              + " | ".join(mean(k) for k in INFERENCE_PARTS) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_studio_arguments(parser, cameras=8, fps=60.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ready before measuring")
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--skeleton", default=None,
                        help="the solver's layout (crosspose-body32, h36m17; default: the config's)")
    parser.add_argument("--baseline", action="store_true",
                        help="run the previous configuration (ONNX Runtime f32, one worker, one thread) and "
                        "the new default in turn and print both and their ratio")
    parser.add_argument("--skeletons", action="store_true",
                        help="run the service in h36m17 and in crosspose-body32 in turn (issue 19) and print "
                        "both and their ratio")
    parser.add_argument("--rounds", type=int, default=2, help="--baseline, --skeletons: runs of each")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,…",
                        help="--baseline: also run the default with these inference fields changed, in turn "
                        "with the others (e.g. 1x2:workers=1,threads=2); repeatable")
    parser.add_argument("--old-tracking", action="store_true",
                        help="--baseline: also run the baseline and the default with the solver's tracking "
                        "rule before the wide tracked search (cold beyond 70 ms)")
    parser.add_argument("--only", type=lambda text: [x.strip() for x in text.split(",") if x.strip()],
                        default=None, metavar="NAME,NAME…",
                        help="--baseline, --skeletons: run only these configurations, in this order (the "
                        "first is the reference of the ratios), e.g. baseline-oldtrack,default")
    args = parser.parse_args()
    if args.old_tracking and not args.baseline:
        parser.error("--old-tracking adds rows to --baseline: give --baseline too")
    if args.baseline and args.skeletons:
        parser.error("--baseline and --skeletons are two comparisons: give one")
    if args.skeletons and args.skeleton is not None:
        parser.error("--skeletons runs both layouts: leave out --skeleton")
    if args.baseline or args.skeletons:
        compare(args)
        return
    with tempfile.TemporaryDirectory(prefix="crosspose-bench-") as tmp:
        config = studio_config(args, Path(tmp))
        run = measure(config, "this configuration", args)
    print_run(run, args, config)


if __name__ == "__main__":
    main()
