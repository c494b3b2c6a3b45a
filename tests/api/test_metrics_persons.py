"""Performers in /metrics (issue 21.5): how many are tracked, ids started and ended (the solver's
heartbeat) and switches of the top-level performer (the skeletons themselves), on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from api_service import running_service
from prometheus_client.parser import text_string_to_metric_families

from crosspose.runtime.api_stage import translate_status


def scrape(base_url: str) -> dict[str, float]:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    return {s.name: float(s.value) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith(("crosspose_person", "crosspose_persons"))}


def test_persons_ids_and_top_level_switches(tmp_path: Path, persons_scene: Any) -> None:
    def message(seq: int, ids: list[int]) -> dict[str, Any]:
        return persons_scene.message(seq, persons=[(i, persons_scene.pose(1, seq)) for i in ids])

    with running_service(tmp_path / "store") as service:
        hub = service.state.hub
        hub.publish({"v": 1, "type": "skeleton", "seq": 0})  # a producer before persons: says nothing
        before = scrape(service.base_url)
        # 3 alone; 4 joins; 3 ends (the top level goes to 4: one switch); nobody; 6 (new, not a switch)
        for seq, ids in enumerate([[3], [3, 4], [3, 4], [4], [4], [], [6], [6, 7]], start=1):
            hub.publish(message(seq, ids))
        from_skeletons = scrape(service.base_url)
        heartbeat = translate_status({"stage": "solver", "fps": 30.0, "persons": 1, "ids_started": 4,
                                      "ids_ended": 2, "outside_volume": 3})
        assert heartbeat is not None
        service.state.status.update(*heartbeat)
        from_heartbeat = scrape(service.base_url)
    assert "crosspose_persons" not in before
    assert before["crosspose_person_top_switches_total"] == 0
    assert "crosspose_person_ids_started_total" not in before  # no solver heartbeat says it yet
    assert from_skeletons["crosspose_persons"] == 2
    assert from_skeletons["crosspose_person_top_switches_total"] == 1
    assert from_heartbeat["crosspose_persons"] == 1  # the solver's word wins
    assert from_heartbeat["crosspose_person_ids_started_total"] == 4
    assert from_heartbeat["crosspose_person_ids_ended_total"] == 2
    assert from_heartbeat["crosspose_persons_outside_volume_total"] == 3
    assert "crosspose_persons_outside_volume_total" not in before
