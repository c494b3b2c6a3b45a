"""The whole service with two inference workers, really started (synthetic studio, simulated backend: the
network bypassed): skeletons end to end in capture order, both workers reported, and the stream going on
while one worker is killed and restarted."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_service import Running, receive, start_service

pytestmark = pytest.mark.timeout(300)
WORKERS = ("inference.0", "inference.1")
NICE = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_service(tmp_path_factory.mktemp("workers"), workers=2, inference={"nice": NICE})
    try:
        yield running
    finally:
        running.stop()


def _in_capture_order(messages: list[dict]) -> bool:
    captures = [m["t_capture_ns"] for m in messages]
    return captures == sorted(captures) and len(set(captures)) == len(captures)


def test_two_workers_produce_skeletons_in_capture_order_and_both_are_reported(service: Running) -> None:
    msgs = receive(service.base, 40)
    assert len(msgs) == 40
    assert _in_capture_order(msgs)
    ready = httpx.get(f"{service.base}/api/v1/ready").json()
    assert ready["ready"] is True, ready["reasons"]
    assert {*WORKERS, "solver", "sync"} <= set(ready["heartbeat_age_s"])
    assert "inference" not in ready["heartbeat_age_s"]
    assert ready["provider"] == "simulated (network bypassed)"  # the same on both: shown once
    metrics = httpx.get(f"{service.base}/metrics").text
    for worker in WORKERS:
        assert f'crosspose_stage_fps{{stage="{worker}"}}' in metrics
        assert f'crosspose_stage_restarts_total{{stage="{worker}"}}' in metrics


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_workers_run_below_the_other_stages_and_each_set_tells_where_its_time_went(
    service: Running,
) -> None:
    pids = service.supervisor.pids()
    base = _nice(os.getpid())
    expected = {**dict.fromkeys(WORKERS, NICE), "recorder": service.config.recording.nice}
    for stage, pid in pids.items():
        assert pid is not None, stage
        assert _nice(pid) == base + expected.get(stage, 0), stage
    for message in receive(service.base, 10):
        latency = message["latency_ms"]
        assert {"sync", "queue", "inference", "decode", "transport", "hold", "solve", "total"} <= set(latency)
        way = sum(latency[k] for k in ("sync", "queue", "inference", "transport", "hold", "solve"))
        assert way <= latency["total"] + 0.1  # the parts in order, up to the live outputs' time
        assert all(latency[k] >= -0.05 for k in ("queue", "inference", "transport", "hold", "solve"))


def test_the_stream_goes_on_while_a_worker_is_killed_and_restarted(service: Running) -> None:
    pid = service.supervisor.pids()["inference.1"]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # While it is down (sync hands every set to the other worker) skeletons keep coming.
    during = receive(service.base, 15, timeout=30)
    assert len(during) == 15
    assert _in_capture_order(during)
    deadline = time.monotonic() + 90
    while service.supervisor.pids().get("inference.1") in (None, pid):
        assert time.monotonic() < deadline, "worker 1 not restarted"
        time.sleep(0.2)
    while not (ready := httpx.get(f"{service.base}/api/v1/ready").json())["ready"]:
        assert time.monotonic() < deadline, ready["reasons"]
        time.sleep(0.5)
    assert all(ready["heartbeat_age_s"][w] is not None for w in WORKERS)
    after = receive(service.base, 15)
    assert len(after) == 15
    assert _in_capture_order(after)
