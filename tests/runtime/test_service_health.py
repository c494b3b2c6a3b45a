"""Readiness and status against the real stages on ipc sockets (issue 17's probes): a frozen camera kept
"up" by forged grabber heartbeats, a forged sync status with huge numbers, the skeleton stream stopping
while the cameras run, a stage crash-looping (on a service of its own, last). Each probe ends with the service
back to ready."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_service import Running, receive, start_service
from prometheus_client.parser import text_string_to_metric_families

from crosspose.bus import Publisher
from crosspose.bus.schema import SYNC_STATUS, status_message, status_topic
from polling import wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def service(default_service: Running) -> Running:
    """The default service, shared with test_service.py's tests before these (``conftest``)."""
    return default_service


def cameras(base: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in httpx.get(f"{base}/api/v1/cameras").json()["cameras"]}


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{base}/metrics")
    assert r.status_code == 200, r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(r.text) for s in f.samples}  # fmt: skip


def back_to_ready(service: Running) -> None:
    wait_until(lambda: httpx.get(f"{service.base}/api/v1/ready").status_code == 200, 90, "ready again")


def keep_sending(endpoint: str, message: Callable[[int], tuple[bytes, dict[str, Any]]],
                 stop: threading.Event, period_s: float) -> threading.Thread:  # fmt: skip
    """A forger: connects a publisher to ``endpoint`` and sends ``message(i)`` every ``period_s``."""

    def run() -> None:
        with Publisher(endpoint, bind=False, hwm=1000) as pub:
            i = 0
            while not stop.is_set():
                pub.send(*message(i))
                i += 1
                stop.wait(period_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_frozen_camera_is_not_kept_up_by_grabber_heartbeats_forged_onto_the_frames_link(
    service: Running,
) -> None:
    """Measured before: grabber heartbeats sent to the frames port kept a frozen camera shown up at 60 fps
    with ready true while the stream had 3 views."""
    cam = service.config.cameras[1].name
    pid = service.supervisor.pids()[f"grabber.{cam}"]
    assert pid is not None
    stop = threading.Event()

    def forged(i: int) -> tuple[bytes, dict[str, Any]]:
        fields = {"state": "running", "fps": 60.0, "frames": 10_000 + 60 * i, "dropped": 0,
                  "frame_age_ms": 1.0}  # fmt: skip
        return status_topic("grabber", cam), status_message("grabber", fields, camera=cam)

    os.kill(pid, signal.SIGSTOP)  # the camera freezes: its grabber neither sends frames nor heartbeats
    forger = keep_sending(service.config.bus.frames_endpoint, forged, stop, 0.2)
    try:
        state = wait_until(lambda: cameras(service.base)[cam]["state"] != "up" and cameras(service.base)[cam],
                           20, f"{cam} not up")  # fmt: skip
        assert state["state"] == "stale"  # its (forged) grabber heartbeats: fresh; its frames: none
        assert state["fps"] == 0.0
        assert state["heartbeat_age_s"] < 2
        ready = httpx.get(f"{service.base}/api/v1/ready")
        assert ready.status_code == 503
        assert any(re.match(rf"camera {cam}: no frame of it reached sync for \d+\.\d s; its grabber reports "
                            r"running$", r) for r in ready.json()["reasons"]), ready.json()  # fmt: skip
        values = samples(service.base)
        assert values[("crosspose_camera_up", (("camera", cam),))] == 0
        assert values[("crosspose_camera_fps", (("camera", cam),))] == 0
        assert values[("crosspose_ready", ())] == 0
        msgs = receive(service.base, 3)  # the other cameras keep the stream going
        assert len(msgs) == 3
    finally:
        stop.set()
        forger.join(5)
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: cameras(service.base)[cam]["state"] == "up", 60, f"{cam} up again")
    back_to_ready(service)


def test_a_forged_sync_status_with_huge_numbers_breaks_neither_metrics_nor_the_bus_bridge(
    service: Running,
) -> None:
    """Measured before: a forged sync status with huge numbers made /metrics answer 500. A socket counter
    of the wrong type also raised in the API's bus thread, after which no skeleton reached any client."""
    names = [c.name for c in service.config.cameras]
    huge = {"fps": 1e308, "sets": 2**64 - 1, "framesets_socket": {"dropped_hwm": 1e308},
            "cameras": {c: {"missing": 1e308, "skew_ms": -1e308, "received": 1e308, "arrival_age_ms": 1e308,
                            "arrival_fps": 1e308} for c in names}}  # fmt: skip
    wrong = {"cameras": {names[0]: {"missing": 1}}, "framesets_socket": 5}
    for fields in (huge, wrong):
        stop = threading.Event()
        forger = keep_sending(service.config.bus.status_endpoint,
                              lambda i, f=fields: (SYNC_STATUS, status_message("sync", f)), stop, 0.05)
        try:
            time.sleep(1.0)  # connected, subscribed, sending
            for _ in range(10):
                assert httpx.get(f"{service.base}/metrics").status_code == 200
                assert httpx.get(f"{service.base}/api/v1/cameras").status_code == 200
                assert httpx.get(f"{service.base}/api/v1/ready").status_code in (200, 503)
                time.sleep(0.1)
        finally:
            stop.set()
            forger.join(5)
        assert len(receive(service.base, 5, timeout=30)) == 5  # the bridge thread is alive
    values = samples(service.base)
    assert values[("crosspose_metrics_errors_total", ())] == 0
    back_to_ready(service)  # sync's real heartbeat replaces the forged one


def test_ready_turns_false_within_3_s_of_the_skeleton_stream_stopping_while_cameras_stay_up(
    service: Running,
) -> None:
    """Measured before: no skeleton for 44.6 s while ready said true, every camera up. The solver is
    frozen here (its process stopped; the supervisor sees it alive): grabbers and sync keep running."""
    back_to_ready(service)
    pid = service.supervisor.pids()["solver"]
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        while True:
            asked = time.monotonic()
            body = httpx.get(f"{service.base}/api/v1/ready").json()
            skeletons = [r for r in body["reasons"] if r.startswith("skeletons:")]
            if skeletons:
                break
            assert asked - stopped < 3.0, f"ready still without a skeleton reason 3 s on: {body}"
            time.sleep(0.05)
        assert asked - stopped < 3.0
        assert body["ready"] is False
        assert re.match(r"skeletons: none published for \d\.\d s \(timeout 2 s\); 3 of 3 cameras deliver "
                        r"frames to sync$", skeletons[0]), skeletons  # fmt: skip
        assert all(c["state"] == "up" for c in cameras(service.base).values())
        values = samples(service.base)
        assert values[("crosspose_skeleton_age_seconds", ())] >= 2
        assert values[("crosspose_ready", ())] == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    back_to_ready(service)


def test_a_crash_looping_stage_makes_ready_false_and_its_restarts_show(tmp_path: Path) -> None:
    """Supervisor restarts reached only the log before: ready stayed true between a crash-looping stage's
    lives. Here a grabber is killed three times in a row."""
    running = start_service(tmp_path, cameras=2)
    try:
        name = f"grabber.{running.config.cameras[1].name}"
        for _ in range(3):
            pid = running.supervisor.pids()[name]
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda p=pid: running.supervisor.pids().get(name) not in (None, p), 60, "restarted")
        reason = f"{name}: crash-looping: exited 3 times in a row (last exit code -9); 3 restarts in all"
        ready = wait_until(lambda: (body := httpx.get(f"{running.base}/api/v1/ready").json())
                           and reason in body["reasons"] and body, 10, reason)  # fmt: skip
        assert ready["ready"] is False
        values = samples(running.base)
        assert values[("crosspose_stage_restarts_total", (("stage", name),))] == 3
        assert values[("crosspose_stage_crash_looping", (("stage", name),))] == 1
        assert values[("crosspose_stage_restarts_total", (("stage", "sync"),))] == 0
        assert values[("crosspose_ready", ())] == 0
        assert httpx.get(f"{running.base}/api/v1/cameras").json()["restarts"][name] == 3
    finally:
        running.stop()
