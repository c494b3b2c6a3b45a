"""Viewer benchmark: does the browser viewer keep up with the solved rate?

Starts the whole service (as ``benchmarks/pipeline.py``), opens the viewer in headless Chromium (Debian
``chromium``, the flags of the browser tests) and, over ``--duration`` seconds, counts the skeletons the
page received and the 3D frames it drew (``window.crosspose``), next to the skeletons a Python websocket
client received from the same service. A viewer that keeps up draws one frame per skeleton received (it
redraws only when something changed). Also reported: Chromium's CPU over the window (all its processes).

Usage: python benchmarks/viewer.py [--studio synthetic|pose2sim] [--cameras 4] [--fps 30] [--duration 20]
       [--render]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipeline import add_studio_arguments, received_for, running_service, studio_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "viewer"))
from viewer_browser import Browser, find_chromium


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of ``root_pid`` and every descendant (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_studio_arguments(parser, cameras=4, fps=30.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the page loads")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found (make browser-deps, or set CROSSPOSE_CHROMIUM)")

    with tempfile.TemporaryDirectory(prefix="crosspose-viewerbench-") as tmp:
        wd = Path(tmp)
        config = studio_config(args, wd)
        with running_service(config, wd) as base:
            browser = Browser(chromium)
            try:
                browser.open(base + "/")
                browser.wait_for("window.crosspose && window.crosspose.stats.received > 0", timeout_s=60)
                time.sleep(args.warmup)
                counted: list[int] = []
                client = threading.Thread(
                    target=lambda: counted.append(
                        len(asyncio.run(received_for(base.replace("http", "ws") + "/ws/skeletons",
                                                     args.duration)))
                    ),
                    daemon=True,
                )
                read = "[window.crosspose.stats.received, window.crosspose.scene.draws || 0]"
                client.start()
                r0, d0 = browser.evaluate(read)
                c0, t0 = cpu_seconds(browser.proc.pid), time.monotonic()
                client.join(args.duration + 10)
                r1, d1 = browser.evaluate(read)
                c1, t1 = cpu_seconds(browser.proc.pid), time.monotonic()
            finally:
                browser.close()

    span = t1 - t0
    solved = counted[0] / args.duration if counted else float("nan")
    print(f"# viewer benchmark: studio {args.studio}, {len(config.cameras)} cameras, {span:.0f} s measured")
    print("| metric | value |\n|---|---|")
    print(f"| skeletons / s (Python websocket client) | {solved:.1f} |")
    print(f"| skeletons / s received by the page | {(r1 - r0) / span:.1f} |")
    print(f"| 3D frames / s drawn by the page | {(d1 - d0) / span:.1f} |")
    print(f"| frames drawn per skeleton received | {(d1 - d0) / max(r1 - r0, 1):.2f} |")
    print(f"| Chromium CPU (all its processes) | {100 * (c1 - c0) / span:.0f} % of a core |")


if __name__ == "__main__":
    main()
