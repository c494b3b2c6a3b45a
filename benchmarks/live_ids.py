"""Ids of the live multi-person demo: runs ``crosspose demo --studio pose2sim-multi`` (the two-performer clip
looped as four live cameras), logs every websocket message's ``persons`` (ids and modes) for ``--seconds``
from the first message with a person, and prints how long after it both performers were first reported, the
messages per second, the share with both performers, the most persons in one message, the distinct ids and the
messages per id.

Usage: python benchmarks/live_ids.py [--seconds 120] [--port 8765] [--log ids.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets


async def listen(url: str, seconds: float, demo: subprocess.Popen[bytes]) -> list[tuple[float, list[Any]]]:
    """``[(time, [(id, mode), …])]`` per message, for ``seconds`` from the first message with a person."""
    out: list[tuple[float, list[Any]]] = []
    end = None
    while True:
        try:
            async with websockets.connect(url, max_size=None) as ws:
                while True:
                    message = json.loads(await ws.recv())
                    persons = [(p["id"], p.get("mode")) for p in message.get("persons", [])]
                    if end is None:
                        if not persons:
                            continue
                        end = time.monotonic() + seconds
                    out.append((time.monotonic(), persons))
                    if time.monotonic() > end:
                        return out
        except (OSError, websockets.exceptions.WebSocketException):
            if demo.poll() is not None:
                raise SystemExit("the demo stopped before the measurement ended") from None
            await asyncio.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--log", type=Path, default=None, help="write every message's persons here (JSON)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        demo = subprocess.Popen([sys.executable, "-m", "crosspose", "demo", "--studio", "pose2sim-multi",
                                 "--port", str(args.port), "--workdir", work])
        try:
            url = f"ws://127.0.0.1:{args.port}/ws/skeletons?format=json"
            messages = asyncio.run(listen(url, args.seconds, demo))
        finally:
            demo.terminate()
            demo.wait(60)
    n = len(messages)
    span = messages[-1][0] - messages[0][0]
    counts = [len(p) for _, p in messages]
    per_id = collections.Counter(id for _, persons in messages for id, _ in persons)
    modes = collections.Counter(mode for _, persons in messages for _, mode in persons)
    both = next((t for t, persons in messages if len(persons) >= 2), None)
    print("both performers first in a message " + ("never" if both is None else
          f"{both - messages[0][0]:.2f} s after the first message with a person "
          f"({sum(t < both for t, _ in messages)} messages with one before)"))
    print(f"{n} messages over {span:.0f} s ({n / span:.1f}/s); both performers in {counts.count(2) / n:.1%}, "
          f"one in {counts.count(1) / n:.1%}, most in one message {max(counts)}; {len(per_id)} distinct ids, "
          f"messages per id {dict(sorted(per_id.items()))}; modes {dict(modes)}")
    if args.log is not None:
        args.log.write_text(json.dumps(messages))


if __name__ == "__main__":
    main()
