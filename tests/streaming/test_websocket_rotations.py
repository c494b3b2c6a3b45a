"""``WS /ws/skeletons?rotations=true`` against a real uvicorn server with real websocket clients: clients
that ask get the rotations payload, the others exactly the old message; each variant encoded once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from websockets.asyncio.client import connect

import crosspose.api.hub as hub_module
from crosspose.api import ApiSettings, ServiceState, create_app
from crosspose.api.testing import serve_in_thread
from crosspose.bus.schema import rotations_payload
from crosspose.calibration.store import CalibrationStore
from crosspose.motion import BONE_PARENTS, BONES, UNITY_BONES


def skeleton(seq: int, with_rotations: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": 1,
        "type": "skeleton",
        "seq": seq,
        "t_capture_ns": 1_000_000 + seq,
        "t_publish_ns": 2_000_000 + seq,
        "skeleton": "h36m17",
        "units": "m",
        "joints": [[0.1 * j, 0.2, 0.9, 0.8] for j in range(17)],
        "views": [3] * 17,
        "latency_ms": {"sync": 1.0, "inference": 2.0, "solve": 3.0, "total": 7.0},
    }
    if with_rotations:
        b = len(BONES)
        quats = np.tile([1.0, 0.0, 0.0, 0.0], (b, 1))
        quats[3] = [np.cos(0.3), 0.0, np.sin(0.3), 0.0]
        unity = [UNITY_BONES[n] for n in BONES]
        root = np.array([0.2, 0.9, 0.1])
        offsets = np.full((b, 3), 0.1)
        message["rotations"] = rotations_payload(BONES, unity, BONE_PARENTS, offsets, root, quats)
    return message


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[tuple[str, ServiceState]]:
    state = ServiceState(CalibrationStore(tmp_path / "store", ["cam1", "cam2"]), ApiSettings(token="t"))
    with serve_in_thread(create_app(state)) as url:
        yield url.replace("http://", "ws://") + "/ws/skeletons", state


async def _clients(state: ServiceState, n: int) -> None:
    deadline = time.monotonic() + 10
    while state.hub.client_count != n:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_rotations_only_for_clients_that_ask(
    base_url: tuple[str, ServiceState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = base_url
    encoded: list[tuple[str, bool]] = []
    real_encode = hub_module.encode

    def counting_encode(message: Any, fmt: Any) -> Any:
        encoded.append((fmt, "rotations" in message))
        return real_encode(message, fmt)

    monkeypatch.setattr(hub_module, "encode", counting_encode)
    sent = [skeleton(0, with_rotations=True), skeleton(1, with_rotations=False)]

    async def main() -> dict[str, list[Any]]:
        async with (
            connect(url) as plain1,
            connect(url + "?format=json") as plain2,
            connect(url + "?rotations=true") as rot1,
            connect(url + "?format=json&rotations=1") as rot2,
            connect(url + "?format=msgpack&rotations=true") as rot_mp,
        ):
            await _clients(state, 5)
            for m in sent:
                state.hub.publish(m)
            out = {}
            for name, ws in (
                ("plain1", plain1),
                ("plain2", plain2),
                ("rot1", rot1),
                ("rot2", rot2),
                ("rot_mp", rot_mp),
            ):
                out[name] = [await asyncio.wait_for(ws.recv(), 5) for _ in sent]
            return out

    got = asyncio.run(main())
    # Three variants in use (json plain, json + rotations, msgpack + rotations): each encoded once per
    # message, whatever the number of clients.
    assert sorted(encoded) == sorted([("json", False), ("json", True), ("msgpack", True)] * 2)
    plain = [json.loads(f) for f in got["plain1"]]
    assert got["plain2"] == got["plain1"]
    assert plain == [{k: v for k, v in m.items() if k != "rotations"} for m in sent]  # the old message
    assert got["rot2"] == got["rot1"]
    rich = [json.loads(f) for f in got["rot1"]]
    assert rich[0]["rotations"] == sent[0]["rotations"]
    assert rich[1]["rotations"] is None  # asked, but none known for that frame
    assert msgpack.unpackb(got["rot_mp"][0])["rotations"]["bones"] == list(BONES)
    local = np.array(rich[0]["rotations"]["local"])
    np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, atol=1e-6)


def test_rotations_payload_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"rest_offsets \(19, 3\)"):
        rotations_payload(BONES[:19], BONES[:19], BONE_PARENTS[:19], np.zeros((3, 3)), np.zeros(3),
                          np.zeros((19, 4)))
