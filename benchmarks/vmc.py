"""VMC streaming benchmark: the whole service (synthetic studio, simulated heatmaps: the network bypassed)
with VMC on, one local UDP receiver and one websocket client, all on this host's monotonic clock.

Target (issue 7): every solved frame is sent within 2 ms of its websocket publication (median).
Each bundle carries ``/crosspose/frame (seq, t_publish_ns, t_send_ns)`` (``streaming.vmc.diagnostics``),
so per frame we get:

* send delay: ``t_send_ns - t_publish_ns`` (sender side: the solver stage stamps ``t_publish_ns`` in the
  skeleton message it publishes, then builds and sends the bundle);
* OSC arrival: receiver's clock at ``recvfrom`` minus ``t_publish_ns`` (loopback, upper bound);
* reference, the websocket: client's clock at receipt minus ``t_publish_ns``; and OSC arrival minus the
  websocket arrival of the same ``seq`` (negative: engines get the frame before websocket clients).

Usage: python benchmarks/vmc.py [--cameras 4] [--fps 60] [--duration 20] [--warmup 5] [--targets 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pythonosc.osc_bundle import OscBundle

from crosspose.config.settings import StreamingConfig, VmcConfig
from crosspose.runtime.demo import synthetic_config
from crosspose.streaming import BONE_ADDRESS, DIAGNOSTICS_ADDRESS
from pipeline import percentile, received_for, running_service  # benchmarks/ is the script's folder


class UdpRecorder:
    """Raw UDP receiver: (monotonic ns at receipt, datagram) for each datagram (decoded afterwards)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.got: list[tuple[int, bytes]] = []
        self.recording = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            t = time.monotonic_ns()
            if self.recording:
                self.got.append((t, data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


async def websocket_client(url: str, duration: float) -> list[tuple[int, dict[str, Any]]]:
    return [(t, json.loads(raw)) for t, raw in await received_for(url, duration)]


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {percentile(values, 50):.3f} | {percentile(values, 99):.3f} | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4, help="synthetic cameras")
    parser.add_argument("--fps", type=float, default=60.0, help="synthetic camera rate")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ready before measuring")
    parser.add_argument("--targets", type=int, default=1, help="VMC targets (each a local receiver)")
    args = parser.parse_args()

    receivers = [UdpRecorder() for _ in range(args.targets)]
    with tempfile.TemporaryDirectory(prefix="crosspose-bench-vmc-") as tmp:
        wd = Path(tmp)
        config = synthetic_config(wd, "127.0.0.1", 0, cameras=args.cameras, fps=args.fps, render=False)
        vmc = VmcConfig(enabled=True, targets=[f"127.0.0.1:{r.port}" for r in receivers], diagnostics=True)
        config = config.model_copy(update={"streaming": StreamingConfig(vmc=vmc)})
        try:
            with running_service(config, wd) as base:
                time.sleep(args.warmup)
                for r in receivers:
                    r.recording = True
                url = base.replace("http", "ws") + "/ws/skeletons"
                ws = asyncio.run(websocket_client(url, args.duration))
                for r in receivers:
                    r.recording = False
        finally:
            for r in receivers:
                r.close()

    ws_at = {m["seq"]: (t, m) for t, m in ws}
    send, arrive, arrive_vs_ws, bones = [], [], [], 0
    seen: set[int] = set()
    for r in receivers:
        for t_recv, data in r.got:
            bundle = OscBundle(data)
            diag = [m.params for m in bundle if m.address == DIAGNOSTICS_ADDRESS]
            if not diag:
                continue
            seq, t_publish, t_send = diag[0]
            bones += sum(m.address == BONE_ADDRESS for m in bundle) > 0
            seen.add(seq)
            send.append((t_send - t_publish) / 1e6)
            arrive.append((t_recv - t_publish) / 1e6)
            if seq in ws_at:
                arrive_vs_ws.append((t_recv - ws_at[seq][0]) / 1e6)
    ws_latency = [(t - m["t_publish_ns"]) / 1e6 for t, m in ws]
    frames = sorted(ws_at)
    in_window = [s for s in frames if s in seen or frames[0] <= s <= frames[-1]]
    missing = [s for s in in_window if s not in seen]
    print(
        f"# VMC benchmark: synthetic studio, {args.cameras} cameras at {args.fps:g} fps, backend simulated "
        f"(network bypassed), {args.duration:g} s measured, {args.targets} VMC target(s) on loopback"
    )
    print("| delay after t_publish_ns (ms) | median | p99 | n |\n|---|---|---|---|")
    print(row("VMC bundle sent (sender clock)", send))
    print(row("VMC bundle received (UDP receiver)", arrive))
    print(row("websocket message received (reference)", ws_latency))
    print(row("VMC received − websocket received, same seq", arrive_vs_ws))
    print(
        f"\nframes on the websocket: {len(frames)}; with a VMC bundle: {len(in_window) - len(missing)} "
        f"(missing {len(missing)}); bundles with bones: {bones}"
    )


if __name__ == "__main__":
    main()
