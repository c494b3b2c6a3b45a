"""Input drops by stage, source and reason: from the stages' heartbeats (``input_drops``) and the API's own
bus thread to ``/metrics`` and ``/api/v1/cameras`` — and a heartbeat's map is read as untrusted numbers."""

from __future__ import annotations

import httpx
from api_service import DEMO_NAMES, Service
from prometheus_client.parser import text_string_to_metric_families

from crosspose.api.status import StatusBoard


def drops(base_url: str) -> dict[tuple[str, str, str], float]:
    text = httpx.get(base_url + "/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "crosspose_input_drops")
    return {
        (s.labels["stage"], s.labels["source"], s.labels["reason"]): s.value
        for s in family.samples
        if s.name == "crosspose_input_drops_total"
    }


def test_drops_by_stage_source_and_reason_reach_metrics_and_cameras(service: Service) -> None:
    status = service.state.status
    status.update("sync", {"input_drops": {"cam01": {"future": 1, "malformed": 20, "stale": 3},
                                           "cam02": {"busy": 2}, "other": {"foreign": 5}}})  # fmt: skip
    status.update("inference", {"input_drops": {"frameset": {"busy": 40, "malformed": 1}}})
    status.update("solver", {"input_drops": {"heatmaps": {"oversize": 1}}})
    service.state.bus_input_drops = lambda: {"skeleton": {"malformed": 2}, "status": {"foreign": 3}}
    got = drops(service.base_url)
    assert got == {
        ("sync", "cam01", "future"): 1,
        ("sync", "cam01", "malformed"): 20,
        ("sync", "cam01", "stale"): 3,
        ("sync", "cam02", "busy"): 2,
        ("sync", "other", "foreign"): 5,
        ("inference", "frameset", "busy"): 40,
        ("inference", "frameset", "malformed"): 1,
        ("solver", "heatmaps", "oversize"): 1,
        ("api", "skeleton", "malformed"): 2,
        ("api", "status", "foreign"): 3,
    }
    cams = {c["name"]: c for c in httpx.get(service.base_url + "/api/v1/cameras").json()["cameras"]}
    assert cams["cam01"]["input_drops"] == {"malformed": 20, "stale": 3, "future": 1}
    assert cams["cam02"]["input_drops"] == {"busy": 2}
    assert cams["cam03"]["input_drops"] == {}


def test_a_heartbeat_map_that_is_not_counts_is_left_out() -> None:
    board = StatusBoard(DEMO_NAMES)
    many = {f"s{i}": {"malformed": 1} for i in range(1000)}
    board.update("sync", {"input_drops": {
        "cam01": {"future": 2, "invented": 9, "stale": -1, "busy": 1.5, "malformed": True,
                  "oversize": 2**80, "foreign": float("nan")},
        "cam02": [1, 2],
        "cam03": {"stale": 4},
        7: {"stale": 1},
    }})  # fmt: skip
    board.update("inference", {"input_drops": "lots"})
    board.update("solver", {"input_drops": many})
    got = board.input_drops()
    assert got["sync"] == {"cam01": {"future": 2}, "cam03": {"stale": 4}}
    assert "inference" not in got
    assert len(got["solver"]) == 64  # a stage's sources are a few: more is not a heartbeat of ours
    assert [c.input_drops for c in board.cameras()][:3] == [{"future": 2}, {}, {"stale": 4}]
