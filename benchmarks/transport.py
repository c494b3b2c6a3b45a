"""Transport benchmark: grabber processes → ZeroMQ → sync → frame sets, with the real bus and sync code.

Each camera is a process publishing a pre-made frame (no decoding, no rendering: only transport is
measured) at a fixed rate through :class:`crosspose.bus.Publisher`; :func:`crosspose.sync.run_sync`
runs in its own process; this process subscribes to the frame sets. Per set:

* ``sync``     — ``t_emit − max t_capture`` of its frames: the wait for the last frame plus its transport;
* ``delivery`` — receive time here ``− min t_capture``: the whole hop, frame-set transport included.

Scenarios (one run, so the rows compare): a tiny-frame reference (transport floor), 4 cameras of
1080x1920 raw BGR at 60 fps (the Pose2Sim demo's geometry) and 8 synthetic-studio-sized cameras
(640x480) at 60 fps. Drops are counted where they happen (grabber HWM, sync stale/overflow, lost seq).

Usage: python benchmarks/transport.py [--seconds S] [--hwm N] [--only NAME]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from crosspose.bus import FRAMESET, STATUS, Publisher, Subscriber, frame_topic, shutdown
from crosspose.bus.schema import frame_message
from crosspose.capture import encode_frame
from crosspose.config import Config, config_from_dict
from crosspose.sync import run_sync


@dataclass(frozen=True)
class Scenario:
    name: str
    cameras: int
    height: int
    width: int
    fps: float


SCENARIOS = (
    Scenario("reference 4x 48x64 @60", 4, 48, 64, 60.0),
    Scenario("4x 1080x1920 @60", 4, 1920, 1080, 60.0),
    Scenario("8x 480x640 @60", 8, 480, 640, 60.0),
)


def _camera(endpoint: str, name: str, shape: tuple[int, int, int], fps: float, seconds: float,
            hwm: int, go: Any, out: Any) -> None:  # fmt: skip
    frame = np.random.default_rng(int(name[3:])).integers(0, 255, shape, dtype=np.uint8)
    encoding, buf = encode_frame(frame, None)
    with Publisher(endpoint, bind=False, hwm=hwm) as pub:
        out.put(("ready", name))
        go.wait()
        seq = 0
        next_t = time.monotonic()
        end = next_t + seconds
        while (now := time.monotonic()) < end:
            if now < next_t:
                time.sleep(next_t - now)
            t_cap = time.monotonic_ns()
            header = frame_message(name, seq, frame, t_capture_ns=t_cap, t_wall_ns=time.time_ns(),
                                  t_device_ns=None, encoding=encoding, fps=fps)  # fmt: skip
            pub.send(frame_topic(name), header, [buf])
            seq += 1
            next_t += 1 / fps
            if time.monotonic() - next_t > 1 / fps:
                next_t = time.monotonic()  # fell behind: skip rather than burst
        counters = pub.counters
    shutdown()  # let the I/O thread finish with the zero-copy frame before the process exits
    out.put((name, seq, counters))


def _sync(cfg: Config, stop: Any) -> None:
    run_sync(cfg, stop)
    shutdown()


def _config(s: Scenario, folder: str, hwm: int) -> Config:
    return config_from_dict(
        {
            "cameras": [{"name": f"cam{i}", "source": "synthetic", "fps": s.fps} for i in range(s.cameras)],
            "bus": {
                "frames_endpoint": f"ipc://{folder}/frames",
                "framesets_endpoint": f"ipc://{folder}/framesets",
                "status_endpoint": f"ipc://{folder}/status",
                "hwm": hwm,
            },
            "supervisor": {"heartbeat_s": 0.5},
        }
    )


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(s: Scenario, seconds: float, hwm: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="xp-bench-") as folder:
        cfg = _config(s, folder, hwm)
        stop = ctx.Event()
        status = Subscriber(cfg.bus.status_endpoint, [STATUS], bind=True, hwm=1000)
        sync = ctx.Process(target=_sync, args=(cfg, stop), daemon=True)
        sync.start()
        sets = Subscriber(cfg.bus.framesets_endpoint, [FRAMESET], bind=False, hwm=hwm)
        warmup = 1.0
        out = ctx.Queue()
        go = ctx.Event()
        shape = (s.height, s.width, 3)
        cams = [
            ctx.Process(
                target=_camera,
                args=(cfg.bus.frames_endpoint, f"cam{i}", shape, s.fps, warmup + seconds, hwm, go, out),
                daemon=True,
            )
            for i in range(s.cameras)
        ]
        for p in cams:
            p.start()
        for _ in cams:
            out.get(timeout=120)  # every camera process imported and connected
        while status.recv(100) is None:  # sync is up: its heartbeat arrives
            pass
        start = time.monotonic()
        go.set()
        end = start + warmup + seconds
        sync_lat: list[float] = []
        delivery: list[float] = []
        present: list[int] = []
        last_status: dict[str, Any] | None = None
        while time.monotonic() < end + 0.5:
            while (m := status.recv(0)) is not None:
                if m.topic == b"status.sync.":
                    last_status = m.header
            msg = sets.recv(50)
            if msg is None:
                continue
            t_recv = time.monotonic_ns()
            h = msg.header
            caps = [f["t_capture_ns"] for f in h["frames"] if f is not None]
            if min(caps) < (start + warmup) * 1e9:
                continue
            sync_lat.append((h["t_emit_ns"] - max(caps)) / 1e6)
            delivery.append((t_recv - min(caps)) / 1e6)
            present.append(sum(h["present"]))
        sent = {}
        for _ in cams:
            name, seq, counters = out.get(timeout=30)
            sent[name] = (seq, counters)
        for p in cams:
            p.join(10)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the final status of sync
            stop.set()
            m = status.recv(100)
            if m is not None and m.topic == b"status.sync.":
                last_status = m.header
            if not sync.is_alive() and m is None:
                break
        sync.join(10)
        codes = [p.exitcode for p in cams] + [sync.exitcode]
        if any(codes):
            print(f"warning: a process exited abnormally (cameras…, sync): {codes}")
        sets.close()
        status.close()
    cams_status = (last_status or {}).get("cameras", {})
    return {
        "scenario": s,
        "sets": len(sync_lat),
        "sets_per_s": len(sync_lat) / seconds,
        "complete": sum(p == s.cameras for p in present) / max(1, len(present)),
        "sync_med": statistics.median(sync_lat) if sync_lat else float("nan"),
        "sync_p99": _pct(sync_lat, 99),
        "del_med": statistics.median(delivery) if delivery else float("nan"),
        "del_p99": _pct(delivery, 99),
        "grabber_hwm_drops": sum(c["dropped_hwm"] for _, c in sent.values()),
        "frames_sent": sum(n for n, _ in sent.values()),
        "sync_drops": sum(
            c.get("dropped_stale", 0) + c.get("dropped_overflow", 0) for c in cams_status.values()
        ),
        "lost": sum(c.get("lost", 0) for c in cams_status.values()),
        "framesets_hwm_drops": (last_status or {}).get("framesets_socket", {}).get("dropped_hwm", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="Measured seconds per scenario.")
    ap.add_argument("--hwm", type=int, default=4, help="High-water mark of every socket.")
    ap.add_argument("--only", default=None, help="Run the scenarios whose name contains this.")
    args = ap.parse_args()
    rows = [run(s, args.seconds, args.hwm) for s in SCENARIOS if args.only is None or args.only in s.name]
    head = (
        f"{'scenario':<24} {'sets/s':>7} {'complete':>8} {'sync med':>9} {'sync p99':>9} "
        f"{'deliv med':>9} {'deliv p99':>9} {'frames':>7} {'grab drop':>9} {'sync drop':>9} {'lost':>5}"
    )
    print(f"transport benchmark: {args.seconds:g} s per scenario, hwm {args.hwm}; latencies in ms")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['scenario'].name:<24} {r['sets_per_s']:>7.1f} {r['complete']:>8.1%} {r['sync_med']:>9.2f} "
            f"{r['sync_p99']:>9.2f} {r['del_med']:>9.2f} {r['del_p99']:>9.2f} {r['frames_sent']:>7} "
            f"{r['grabber_hwm_drops']:>9} {r['sync_drops']:>9} {r['lost']:>5}"
        )
    ref = rows[0]
    for r in rows[1:]:
        if ref["scenario"].name.startswith("reference") and ref["del_med"] > 0:
            print(f"{r['scenario'].name}: delivery median {r['del_med'] / ref['del_med']:.1f}x the reference")


if __name__ == "__main__":
    main()
