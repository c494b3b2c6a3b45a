"""WS /ws/skeletons over a real server with real websocket clients: the contract, slow and many clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack
import pytest
from api_service import Service, running_service
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crosspose.api import SkeletonHub

H36M17 = 17


def skeleton(seq: int, pad_bytes: int = 0) -> dict[str, Any]:
    """A skeleton message exactly as DESIGN §5 defines it (``pad`` only to make messages big)."""
    message: dict[str, Any] = {
        "v": 1,
        "type": "skeleton",
        "seq": seq,
        "t_capture_ns": 1_700_000_000_000_000_000 + seq * 16_666_667,
        "t_publish_ns": 1_700_000_000_040_000_000 + seq * 16_666_667,
        "skeleton": "h36m17",
        "units": "m",
        "joints": [[0.1 * j, -0.2 + 0.01 * seq, 0.9 + 0.05 * j, 0.8] for j in range(H36M17)],
        "views": [4] * (H36M17 - 1) + [3],
        "latency_ms": {"sync": 1.5, "inference": 21.0, "solve": 12.5, "total": 38.0},
    }
    if pad_bytes:
        message["pad"] = "x" * pad_bytes
    return message


def publish_at(hub: SkeletonHub, messages: Sequence[dict[str, Any]], hz: float) -> threading.Thread:
    """Publish from a foreign thread at a steady rate, as the bus receiver does."""

    def run() -> None:
        start = time.perf_counter()
        for i, message in enumerate(messages):
            hub.publish(message)
            delay = start + (i + 1) / hz - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


async def wait_for_clients(hub: SkeletonHub, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while hub.client_count != n:
        assert time.monotonic() < deadline, f"{hub.client_count} clients registered, expected {n}"
        await asyncio.sleep(0.01)


def test_json_and_msgpack_messages_match_the_contract(service: Service) -> None:
    hub = service.state.hub
    sent = [skeleton(seq) for seq in range(3)]
    sent[2]["joints"][16] = [math.nan, math.nan, math.nan, 0.0]  # a joint no view supports

    async def main() -> tuple[list[str | bytes], list[str | bytes]]:
        async with (
            connect(service.ws_url + "?format=json") as as_json,
            connect(service.ws_url + "?format=msgpack") as as_msgpack,
            connect(service.ws_url) as default,
        ):
            await wait_for_clients(hub, 3)
            publish_at(hub, sent, hz=100).join()
            got_json = [await asyncio.wait_for(as_json.recv(), 5) for _ in sent]
            got_msgpack = [await asyncio.wait_for(as_msgpack.recv(), 5) for _ in sent]
            got_default = [await asyncio.wait_for(default.recv(), 5) for _ in sent]
            assert got_default == got_json
        return got_json, got_msgpack

    got_json, got_msgpack = asyncio.run(main())
    assert all(isinstance(f, str) for f in got_json)
    assert all(isinstance(f, bytes) for f in got_msgpack)
    assert [json.loads(f) for f in got_json[:2]] == sent[:2]
    assert [msgpack.unpackb(f) for f in got_msgpack[:2]] == sent[:2]
    last_json = json.loads(got_json[2])
    assert last_json["joints"][16] == [None, None, None, 0.0]  # JSON has no NaN
    assert last_json["joints"][:16] == sent[2]["joints"][:16]
    last_msgpack = msgpack.unpackb(got_msgpack[2])
    assert all(math.isnan(v) for v in last_msgpack["joints"][16][:3])
    for message in (last_json, last_msgpack):
        assert set(message) == set(sent[2])
        assert (message["v"], message["type"], message["skeleton"], message["units"]) == (
            1, "skeleton", "h36m17", "m",
        )  # fmt: skip
        assert set(message["latency_ms"]) == {"sync", "inference", "solve", "total"}
    assert asyncio.run(_settle(hub)) == 0  # clients that left are unsubscribed


async def _settle(hub: SkeletonHub, timeout_s: float = 5.0) -> int:
    deadline = time.monotonic() + timeout_s
    while hub.client_count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return hub.client_count


def test_an_unsupported_format_is_closed_with_1008(service: Service) -> None:
    async def main() -> ConnectionClosed:
        async with connect(service.ws_url + "?format=protobuf") as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            return info.value

    closed = asyncio.run(main())
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1008
    assert "unsupported format 'protobuf'" in closed.rcvd.reason
    assert service.state.hub.client_count == 0


def test_subscribers_beyond_the_limit_are_refused_with_1013(tmp_path: Path) -> None:
    async def main(service: Service) -> int | None:
        async with connect(service.ws_url), connect(service.ws_url) as second:
            await wait_for_clients(service.state.hub, 1)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(second.recv(), 5)
            return info.value.rcvd.code if info.value.rcvd else None

    with running_service(tmp_path / "store", ws_max_clients=1) as service:
        assert asyncio.run(main(service)) == 1013


def raw_websocket_that_never_reads(base_url: str) -> socket.socket:
    """A real websocket client (handshake done) with a tiny receive buffer that never reads a frame."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/skeletons?format=json HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)  # byte by byte: read the handshake and not one byte of any frame
        assert chunk, "server closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


SUBSCRIBERS_SCRIPT = """
import asyncio, json, sys
import msgpack
from websockets.asyncio.client import connect

url, clients, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def collect(ws):
    seqs = []
    while True:
        try:
            frame = await asyncio.wait_for(ws.recv(), timeout=3)
        except Exception:
            return seqs
        message = msgpack.unpackb(frame) if isinstance(frame, bytes) else json.loads(frame)
        seqs.append(message["seq"])
        if message["seq"] == last:
            return seqs

async def main():
    sockets = [await connect(url + ("?format=msgpack" if i % 2 else "")) for i in range(clients)]
    results = await asyncio.gather(*(collect(ws) for ws in sockets))
    await asyncio.gather(*(ws.close() for ws in sockets))
    print(json.dumps(results))

asyncio.run(main())
"""


@contextlib.contextmanager
def subscribers_in_another_process(url: str, clients: int, last_seq: int) -> Iterator[list[list[int]]]:
    """Real websocket clients in their own interpreter (as remote subscribers are: no shared GIL).

    Yields a list filled on exit with each client's received sequence numbers.
    """
    results: list[list[int]] = []
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBERS_SCRIPT, url, str(clients), str(last_seq)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield results
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.extend(json.loads(out))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_client_that_never_reads_costs_only_its_own_messages(tmp_path: Path) -> None:
    queue, n, pad = 32, 200, 96 * 1024  # ~19 MB in all: more than any socket buffer holds
    with running_service(tmp_path / "store", ws_queue=queue) as service:
        hub = service.state.hub
        slow = raw_websocket_that_never_reads(service.base_url)
        try:
            asyncio.run(wait_for_clients(hub, 1))
            (slow_id,) = (s["id"] for s in hub.subscribers())
            with subscribers_in_another_process(service.ws_url, 1, n - 1) as results:
                asyncio.run(wait_for_clients(hub, 2))
                publisher = publish_at(hub, [skeleton(seq, pad) for seq in range(n)], hz=60)
                peak_queued = 0
                while publisher.is_alive():  # memory: no queue ever grows past its bound
                    peak_queued = max([peak_queued, *(s["queued"] for s in hub.subscribers())])
                    time.sleep(0.02)
            stats = {s["id"]: s for s in hub.subscribers()}
        finally:
            slow.close()
    (fast_seqs,) = results
    assert len(fast_seqs) >= 0.95 * n, f"fast client got {len(fast_seqs)} of {n}"
    assert fast_seqs == sorted(fast_seqs)
    slow_stats = stats[slow_id]  # still connected: it never read, so it never noticed anything
    assert slow_stats["dropped"] > 0
    assert peak_queued <= queue
    # every message is accounted for: handed to the socket, dropped, queued, or the one being sent
    accounted = slow_stats["delivered"] + slow_stats["dropped"] + slow_stats["queued"]
    assert n - 1 <= accounted <= n
    assert hub.dropped_total >= slow_stats["dropped"]


@pytest.mark.timeout(60)
def test_fifty_subscribers_each_get_95_percent(service: Service) -> None:
    clients, n = 50, 200
    hub = service.state.hub
    with subscribers_in_another_process(service.ws_url, clients, n - 1) as results:
        asyncio.run(wait_for_clients(hub, clients, timeout_s=30))
        publish_at(hub, [skeleton(seq) for seq in range(n)], hz=60).join()
    assert len(results) == clients
    counts = sorted(len(seqs) for seqs in results)
    assert counts[0] >= 0.95 * n, f"worst subscriber got {counts[0]} of {n}"
    assert all(seqs == sorted(set(seqs)) for seqs in results)
    assert hub.published == n
