"""Liveness, readiness, cameras, metrics, docs and the index page, over a real server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_service import CALIBRATION, DEMO_NAMES, Service, running_service
from prometheus_client.parser import text_string_to_metric_families

import crosspose
from crosspose.api.status import StatusBoard

STAGES = [f"grabber.{c}" for c in DEMO_NAMES] + ["sync", "inference", "solver"]


def heartbeat_everything(
    service: Service, provider: str | None = "CPUExecutionProvider", delivering: list[str] = DEMO_NAMES
) -> None:
    """Every stage heartbeats (translated as the API stage does); sync receives the frames of the cameras
    ``delivering`` (the others' last frame reached it 10 s ago)."""
    status = service.state.status
    for cam in DEMO_NAMES:
        status.update(f"grabber.{cam}", {"fps": 60.0, "drops": 2, "state": "up", "frame_age_ms": 5.0})
    frames = {c: {"received": 600, "age_ms": 5.0 if c in delivering else 10_000.0, "fps": 59.5}
              for c in DEMO_NAMES}  # fmt: skip
    status.update(
        "sync",
        {"fps": 59.5, "drops": {"cam01": 3, "cam02": 0}, "skew_ms": {c: 1.5 for c in DEMO_NAMES},
         "frames": frames},
    )
    status.update("inference", {"fps": 30.0, "drops": 4, "detector_runs": 3, "detector_views": 7,
                                **({"provider": provider, "runtime": "onnxruntime", "device": provider,
                                    "precision": "f32"} if provider else {})})
    status.update("solver", {"fps": 30.0, "drops": 1, "held": 9, "held_in_time": 8, "live": {"vmc": {
        "send_delay_ms_p50": 0.25, "send_delay_ms_p99": 4.0,
        "targets": [{"target": "127.0.0.1:39539", "sent": 120, "refused": 0, "dropped": 0, "errors": 0,
                     "unresolved": 0},
                    {"target": "studio-pc:39539", "sent": 0, "refused": 7, "dropped": 0, "errors": 0,
                     "unresolved": 3}]}}})  # fmt: skip


def test_health_is_always_ok(service: Service) -> None:
    with service.client() as client:
        body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["version"] == crosspose.__version__
    assert body["uptime_s"] >= 0
    assert body["writes"] == {"enabled": True, "reason": None}


def test_health_says_writes_are_disabled_without_a_token_and_how_to_enable_them(tmp_path: Path) -> None:
    with running_service(tmp_path / "calibration", token=None) as svc, svc.client() as client:
        writes = client.get("/api/v1/health").json()["writes"]
        refused = client.put("/api/v1/calibration", content=b"{}", headers={"Authorization": "Bearer x"})
    assert writes["enabled"] is False
    assert "no API token is configured" in writes["reason"]
    assert "CROSSPOSE_API_TOKEN" in writes["reason"]
    assert refused.status_code == 403
    assert refused.json()["detail"] in writes["reason"]  # the same words as the refusal


def test_ready_needs_every_stage_a_provider_and_a_calibration(service: Service) -> None:
    with service.client() as client:
        r = client.get("/api/v1/ready")
        assert r.status_code == 503
        body = r.json()
        assert body["ready"] is False
        assert set(body["heartbeat_age_s"]) == set(STAGES)
        assert all(age is None for age in body["heartbeat_age_s"].values())
        assert any("sync: no heartbeat yet" in reason for reason in body["reasons"])
        assert any(reason.startswith("calibration:") for reason in body["reasons"])

        heartbeat_everything(service, provider=None)
        service.state.calibration.put((CALIBRATION / "pose2sim_demo.json").read_bytes())
        body = client.get("/api/v1/ready").json()
        assert body["reasons"] == ["inference: has not reported its ONNX Runtime provider",
                                   "skeletons: none published yet; 4 of 4 cameras deliver frames to sync"]

        heartbeat_everything(service)
        service.state.hub.publish({"v": 1, "type": "skeleton", "seq": 0})
        r = client.get("/api/v1/ready")
        assert r.status_code == 200
        body = r.json()
        assert (body["ready"], body["reasons"], body["provider"]) == (True, [], "CPUExecutionProvider")
        assert body["runtime"] == {"runtime": "onnxruntime", "device": "CPUExecutionProvider",
                                   "precision": "f32"}
        metrics = client.get("/metrics").text
        assert ('crosspose_inference_runtime{device="CPUExecutionProvider",precision="f32",'
                'runtime="onnxruntime"} 1.0') in metrics
        assert body["calibration_version"] == 1
        assert 0 <= body["skeleton_age_s"] < 2
        assert all(0 <= age < 2 for age in body["heartbeat_age_s"].values())

        # a solver silent for 10 s makes the service unready again
        service.state.status.update("solver", {"fps": 30.0}, now_ns=time.monotonic_ns() - 10_000_000_000)
        r = client.get("/api/v1/ready")
        assert r.status_code == 503
        assert [reason.split(":")[0] for reason in r.json()["reasons"]] == ["solver"]


def test_cameras_report_state_rate_drops_skew_and_age(service: Service) -> None:
    heartbeat_everything(service, delivering=["cam01", "cam02"])
    status = service.state.status
    status.update("grabber.cam03", {"state": "reconnecting", "fps": 0.0, "drops": 9})
    status.update("grabber.cam04", {"fps": 60.0}, now_ns=time.monotonic_ns() - 5_000_000_000)
    status.update("grabber.nosuchcam", {"fps": 1.0})
    with service.client() as client:
        body = client.get("/api/v1/cameras").json()
    cameras = body["cameras"]
    by_name = {c["name"]: c for c in cameras}
    assert [c["name"] for c in cameras] == DEMO_NAMES
    assert by_name["cam01"]["state"] == "up"
    assert by_name["cam01"]["fps"] == 59.5  # what reaches sync, not what the grabber says (60)
    assert (by_name["cam01"]["drops"], by_name["cam01"]["sync_drops"]) == (2, 3)
    assert by_name["cam01"]["skew_ms"] == 1.5
    assert 0.005 <= by_name["cam01"]["last_frame_age_s"] < 2
    assert by_name["cam03"]["state"] == "reconnecting"
    assert by_name["cam03"]["drops"] == 9
    assert by_name["cam03"]["last_frame_age_s"] >= 10
    assert by_name["cam04"]["state"] == "down"
    assert by_name["cam04"]["heartbeat_age_s"] >= 5
    assert by_name["cam04"]["fps"] == 0.0  # silent for 5 s: its last reported 60 fps is not shown
    assert status.unknown_updates == 1
    assert (body["restarts"], body["last_skeleton_age_s"]) == ({}, None)  # no supervisor, no skeleton yet


def test_a_live_cameras_frame_age_is_syncs_measurement_not_the_age_of_syncs_heartbeat() -> None:
    """Measured before: the real demo's four 60 fps cameras, whose frames reached sync 2-3 ms after
    capture, showed frame ages rising 0 -> 990 ms and back with every 1 s sync heartbeat (the viewer's
    tiles read 250-950 ms). A camera that stopped is still aged from its last known frame."""
    board = StatusBoard(["cam01", "cam02"], heartbeat_timeout_s=2.0)
    now = time.monotonic_ns()
    heard = now - 900_000_000  # sync's heartbeat, 0.9 s before the question (one heartbeat_s is 1 s)
    for cam in ("cam01", "cam02"):
        board.update(f"grabber.{cam}", {"state": "up"}, now_ns=now)
    board.update("sync", {"frames": {"cam01": {"age_ms": 12.0, "fps": 60.0},
                                     "cam02": {"age_ms": 1500.0, "fps": 0.0}}}, now_ns=heard)  # fmt: skip
    cam01, cam02 = board.cameras(now_ns=now)
    assert (cam01.state, cam01.last_frame_age_s) == ("up", pytest.approx(0.012))
    assert cam02.state == "stale"  # its last frame is 1.5 + 0.9 s old: past the 2 s frame timeout
    assert cam02.last_frame_age_s == pytest.approx(2.4)


def test_a_heartbeat_of_a_process_that_since_exited_does_not_count() -> None:
    """Measured before: after ``kill -9`` of an inference worker of the real demo, ``/ready`` said true for
    0.7 s (1.4-2.1 s after the kill) on the dead worker's last heartbeat, from the supervisor's word that it
    had restarted it until that heartbeat timed out, while the new worker still loaded its network."""
    board = StatusBoard(["cam01"], stages=["sync", "inference.0", "inference.1"], heartbeat_timeout_s=2.5)
    t0, second = time.monotonic_ns(), 1_000_000_000

    def heartbeats(at: int, *stages: str) -> None:
        for stage in stages:
            payload = {"frames": {"cam01": {"age_ms": 5.0, "fps": 60.0}}} if stage == "sync" else {
                "provider": "CPUExecutionProvider"}
            board.update(stage, payload, now_ns=at)

    def supervisor(at: int, restarts: dict[str, int], waiting: str | None = None) -> None:
        stages = {name: {"restarts": n, "consecutive_exits": 0,
                         "last_exit_code": -9 if n or name == waiting else None,
                         "restart_in_s": 0.5 if name == waiting else None} for name, n in restarts.items()}
        board.update("supervisor", {"stages": stages}, now_ns=at)  # fmt: skip

    heartbeats(t0, "sync", "inference.0", "inference.1")
    supervisor(t0, {"sync": 0, "inference.0": 0, "inference.1": 0})
    assert board.ready(now_ns=t0).ready
    supervisor(t0 + second // 2, {"sync": 0, "inference.0": 0, "inference.1": 0}, waiting="inference.1")
    assert board.ready(now_ns=t0 + second // 2).reasons == [
        "inference.1: exited with code -9; restarting in 0.5 s"]  # fmt: skip
    # restarted and loading: the old process's heartbeat (1.6 s old, under the 2.5 s timeout) is not its own
    heartbeats(t0 + 3 * second // 2, "sync", "inference.0")
    supervisor(t0 + 3 * second // 2, {"sync": 0, "inference.0": 0, "inference.1": 1})
    late = board.ready(now_ns=t0 + 16 * second // 10)
    assert late.reasons == ["inference.1: no heartbeat since its process exited"]
    assert late.heartbeat_age_s["inference.1"] is None
    heartbeats(t0 + 2 * second, "inference.1")
    assert board.ready(now_ns=t0 + 2 * second).ready

    # an exit and restart between two words of the supervisor: its restart count says so
    heartbeats(t0 + 29 * second // 10, "sync", "inference.0", "inference.1")
    supervisor(t0 + 3 * second, {"sync": 0, "inference.0": 1, "inference.1": 1})
    missed = board.ready(now_ns=t0 + 3 * second)
    assert missed.reasons == ["inference.0: no heartbeat since its process exited"]


def test_a_grabber_that_heartbeats_while_none_of_its_frames_reach_sync_is_stale_and_unready(
    service: Service,
) -> None:
    """Measured before: grabber heartbeats (forged onto the frames port) kept a frozen camera shown up at
    60 fps with ready true while the stream had 3 views. Its grabber's word is not enough any more."""
    service.state.calibration.put((CALIBRATION / "pose2sim_demo.json").read_bytes())
    heartbeat_everything(service, delivering=["cam01", "cam03", "cam04"])
    service.state.hub.publish({"v": 1, "type": "skeleton", "seq": 0})
    with service.client() as client:
        cam02 = next(c for c in client.get("/api/v1/cameras").json()["cameras"] if c["name"] == "cam02")
        ready = client.get("/api/v1/ready")
        metrics = client.get("/metrics").text
    assert (cam02["state"], cam02["fps"]) == ("stale", 0.0)
    assert ready.status_code == 503
    assert len(ready.json()["reasons"]) == 1
    assert ready.json()["reasons"][0].startswith("camera cam02: no frame of it reached sync for 10.")
    assert ready.json()["reasons"][0].endswith("s; its grabber reports running")
    assert 'crosspose_camera_up{camera="cam02"} 0.0' in metrics
    assert 'crosspose_camera_up{camera="cam01"} 1.0' in metrics
    assert "crosspose_ready 0.0" in metrics


def test_ready_turns_false_when_skeletons_stop_while_every_stage_heartbeats(service: Service) -> None:
    """Measured before: one frame stamped an hour ahead stopped every skeleton for 44.6 s while ready said
    true, every camera up. Now the stream's own age is a reason."""
    service.state.calibration.put((CALIBRATION / "pose2sim_demo.json").read_bytes())
    heartbeat_everything(service)
    three_s_ago = time.monotonic_ns() - 3_000_000_000
    service.state.hub.publish({"v": 1, "type": "skeleton", "seq": 0}, now_ns=three_s_ago)
    with service.client() as client:
        ready = client.get("/api/v1/ready")
        cameras = client.get("/api/v1/cameras").json()
        metrics = {s.name: s.value for f in text_string_to_metric_families(client.get("/metrics").text)
                   for s in f.samples}  # fmt: skip
    assert ready.status_code == 503
    (reason,) = ready.json()["reasons"]
    assert re.match(r"skeletons: none published for [34]\.\d s \(timeout 2 s\)", reason), reason
    assert reason.endswith("4 of 4 cameras deliver frames to sync")
    assert 3 <= ready.json()["skeleton_age_s"] < 5
    assert 3 <= cameras["last_skeleton_age_s"] < 5
    assert all(c["state"] == "up" for c in cameras["cameras"])
    assert 3 <= metrics["crosspose_skeleton_age_seconds"] < 5
    assert metrics["crosspose_ready"] == 0


def test_a_crash_looping_stage_makes_the_service_unready_and_restarts_show(service: Service) -> None:
    service.state.calibration.put((CALIBRATION / "pose2sim_demo.json").read_bytes())
    heartbeat_everything(service)
    service.state.hub.publish({"v": 1, "type": "skeleton", "seq": 0})
    stages = {
        "inference": {"restarts": 5, "consecutive_exits": 4, "crash_looping": True, "last_exit_code": 1,
                      "restart_in_s": 4.0},
        "grabber.cam02": {"restarts": 1, "consecutive_exits": 1, "crash_looping": False,
                          "last_exit_code": -9, "restart_in_s": 0.4},
        "sync": {"restarts": 2, "consecutive_exits": 0, "crash_looping": False, "last_exit_code": -9,
                 "restart_in_s": None},
    }  # fmt: skip
    service.state.status.update("supervisor", {"stages": stages})
    with service.client() as client:
        ready = client.get("/api/v1/ready")
        restarts = client.get("/api/v1/cameras").json()["restarts"]
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert ready.status_code == 503
    assert ready.json()["reasons"] == [
        "inference: crash-looping: exited 4 times in a row (last exit code 1); 5 restarts in all",
        "grabber.cam02: exited with code -9; restarting in 0.4 s",
    ]
    assert restarts == {"inference": 5, "grabber.cam02": 1, "sync": 2}
    samples = {s.labels["stage"]: s.value for s in families["crosspose_stage_restarts"].samples}
    assert samples == {"inference": 5, "grabber.cam02": 1, "sync": 2}
    looping = {s.labels["stage"]: s.value for s in families["crosspose_stage_crash_looping"].samples}
    assert looping == {"inference": 1, "grabber.cam02": 0, "sync": 0}


FORGED: list[dict[str, Any]] = [
    {"stage": "sync", "fps": 1e308, "cameras": {c: {"missing": 1e308, "skew_ms": 1e308, "received": 1e308,
     "arrival_age_ms": -1e308, "arrival_fps": 1e308} for c in DEMO_NAMES},
     "framesets_socket": {"dropped_hwm": 1e308}},
    {"stage": "sync", "cameras": {"cam01": {"missing": 2**64 - 1}}, "framesets_socket": 5},
    {"stage": "sync", "cameras": ["cam01"], "drops": [1, 2], "skew_ms": "x", "framesets_socket": None},
    {"stage": "sync", "cameras": {"cam01": {"missing": float("nan"), "arrival_age_ms": float("inf")}},
     "fps": float("-inf")},
    {"stage": "grabber", "camera": "cam01", "fps": 1e308, "drops": -5, "dropped": 1e308, "state": ["up"]},
    {"stage": "inference", "provider": ["x"] * 3, "fps": 1e308, "drops": 1e308, "detector_runs": -1e308},
    {"stage": "solver", "live": {"vmc": {"targets": 7, "send_delay_ms_p50": 1e308}}, "held": 1e308,
     "held_in_time": "x"},
    {"stage": "solver", "live": {"vmc": {"targets": [{"target": {"a": 1}, "sent": 1e308}, 3]}}},
    {"stage": "supervisor", "stages": {"inference": {"restarts": 1e308, "consecutive_exits": "x",
     "crash_looping": 1, "last_exit_code": 1e308, "restart_in_s": -1e308}, "x" * 1000: {}, "api": 5}},
    {"stage": "supervisor", "stages": [1, 2]},
]  # fmt: skip


@pytest.mark.parametrize("header", FORGED, ids=range(len(FORGED)))
def test_no_status_message_makes_metrics_cameras_or_ready_fail(
    service: Service, header: dict[str, Any]
) -> None:
    """Measured before: a forged sync status with huge numbers made /metrics answer 500 (an OverflowError
    summing drops); a non-dict socket counter raised in the API's bus thread, which feeds everything."""
    from crosspose.runtime.api_stage import translate_status

    heartbeat_everything(service)
    translated = translate_status(header)
    assert translated is not None
    service.state.status.update(*translated)
    with service.client() as client:
        metrics = client.get("/metrics")
        cameras = client.get("/api/v1/cameras")
        ready = client.get("/api/v1/ready")
    assert metrics.status_code == 200, metrics.text
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["crosspose_metrics_errors"].samples[0].value == 0  # no section even failed
    assert cameras.status_code == 200, cameras.text
    assert ready.status_code in (200, 503)
    assert isinstance(ready.json()["reasons"], list)


def test_metrics_parse_and_hold_every_family(service: Service) -> None:
    heartbeat_everything(service)
    service.state.calibration.put((CALIBRATION / "pose2sim_demo.json").read_bytes())
    for seq in range(5):
        service.state.hub.publish(
            {
                "v": 1,
                "type": "skeleton",
                "seq": seq,
                "latency_ms": {"sync": 2.0, "solve": 12.0, "total": 40.0},
            }
        )
    with service.client() as client:
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    expected = {
        "crosspose_solved_fps",
        "crosspose_skeletons_published",
        "crosspose_stage_latency_seconds",
        "crosspose_stage_drops",
        "crosspose_stage_fps",
        "crosspose_stage_heartbeat_age_seconds",
        "crosspose_camera_drops",
        "crosspose_camera_skew_seconds",
        "crosspose_camera_fps",
        "crosspose_camera_up",
        "crosspose_camera_frame_age_seconds",
        "crosspose_websocket_clients",
        "crosspose_websocket_dropped_messages",
        "crosspose_websocket_client_dropped_messages",
        "crosspose_websocket_client_queued_messages",
        "crosspose_calibration_version",
        "crosspose_ready",
        "crosspose_inference_provider",
        "crosspose_vmc_datagrams",
        "crosspose_vmc_send_delay_seconds",
        "crosspose_solver_held_sets",
        "crosspose_detector_runs",
        "crosspose_detector_views",
    }
    assert expected <= set(families)
    assert not any(name.startswith(("python_", "process_")) for name in families)  # own registry only

    def value(family: str, suffix: str = "", **labels: str) -> float:
        for s in families[family].samples:
            if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"{family}{suffix} {labels} not exported")

    assert value("crosspose_skeletons_published", "_total") == 5
    assert value("crosspose_stage_latency_seconds", "_count", stage="solve") == 5
    assert value("crosspose_stage_latency_seconds", "_sum", stage="total") == pytest.approx(0.2)
    assert value("crosspose_stage_latency_seconds", "_bucket", stage="solve", le="0.01") == 0
    assert value("crosspose_stage_latency_seconds", "_bucket", stage="solve", le="0.02") == 5
    assert value("crosspose_stage_drops", "_total", stage="inference") == 4
    assert value("crosspose_detector_runs", "_total") == 3
    assert value("crosspose_detector_views", "_total") == 7
    assert value("crosspose_stage_drops", "_total", stage="sync") == 3
    assert value("crosspose_camera_drops", "_total", camera="cam01", stage="sync") == 3
    assert value("crosspose_camera_drops", "_total", camera="cam02", stage="grabber") == 2
    assert value("crosspose_camera_skew_seconds", camera="cam04") == pytest.approx(0.0015)
    assert value("crosspose_camera_up", camera="cam02") == 1
    assert value("crosspose_calibration_version") == 1
    assert value("crosspose_ready") == 1
    assert value("crosspose_inference_provider", provider="CPUExecutionProvider") == 1
    assert value("crosspose_websocket_clients") == 0
    assert value("crosspose_vmc_datagrams", "_total", target="127.0.0.1:39539", result="sent") == 120
    assert value("crosspose_vmc_datagrams", "_total", target="studio-pc:39539", result="refused") == 7
    assert value("crosspose_vmc_send_delay_seconds", quantile="0.99") == pytest.approx(0.004)
    assert value("crosspose_solver_held_sets", "_total", outcome="held") == 9
    assert value("crosspose_solver_held_sets", "_total", outcome="in_time") == 8


def test_two_apps_keep_separate_metrics(tmp_path: Path) -> None:
    with running_service(tmp_path / "a") as a, running_service(tmp_path / "b") as b:
        a.state.hub.publish({"v": 1, "type": "skeleton", "seq": 0})
        texts = [httpx.get(svc.base_url + "/metrics").text for svc in (a, b)]
    published = [
        next(s.value for f in text_string_to_metric_families(t) for s in f.samples
             if s.name == "crosspose_skeletons_published_total")
        for t in texts
    ]  # fmt: skip
    assert published == [1, 0]


def test_index_docs_static_and_json_errors(service: Service) -> None:
    with service.client() as client:
        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert 'href="/docs"' in index.text
        assert client.get("/static/crosspose.css").status_code == 200
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
        for path in ("/api/v1/health", "/api/v1/ready", "/api/v1/cameras", "/api/v1/calibration", "/metrics"):
            for operation in spec["paths"][path].values():
                assert operation["summary"]
        assert "requestBody" in spec["paths"]["/api/v1/calibration"]["put"]
        missing = client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Not Found", "problems": []}
