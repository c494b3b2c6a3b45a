"""Several performers on WS /ws/skeletons against a real server and real websocket clients (issue 21.5):
every client gets ``persons``; a client that reads only the top-level ``joints`` gets the lowest live id
frame after frame (through an id ending and a new one starting); rotations travel per person to the
clients that ask and to no one else."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from api_service import running_service
from test_websocket import publish_at, wait_for_clients
from websockets.asyncio.client import connect

from crosspose.bus import schema as s
from crosspose.bus.codec import decode, encode
from crosspose.motion import BONE_PARENTS, BONES, UNITY_BONES


def _rotations(pid: int) -> dict[str, Any]:
    b = len(BONES)
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (b, 1))
    quats[1] = [np.cos(0.1 * pid), 0.0, np.sin(0.1 * pid), 0.0]
    return s.rotations_payload(BONES, [UNITY_BONES[n] for n in BONES], BONE_PARENTS, np.full((b, 3), 0.1),
                               np.array([0.0, 0.9, 0.1 * pid]), quats)


def _as_bus_delivers(message: dict[str, Any]) -> dict[str, Any]:
    """What the API's bus thread hands the hub: the message through the codec and the parser."""
    return s.parse_skeleton(decode(encode(s.SKELETON, message)).header)


def test_persons_reach_every_client_and_the_top_level_is_the_lowest_id(tmp_path: Path,
                                                                      persons_scene: Any) -> None:
    sent = []
    for frame in range(persons_scene.frames):
        message = persons_scene.message(frame)
        for entry in message["persons"]:
            entry["rotations"] = _rotations(entry["id"])
        message["rotations"] = message["persons"][0]["rotations"]
        sent.append(_as_bus_delivers(message))

    async def main(url: str, hub: Any) -> dict[str, list[dict[str, Any]]]:
        async with connect(url) as plain, connect(url + "?rotations=true") as rotations:
            await wait_for_clients(hub, 2)
            publish_at(hub, sent, hz=200).join()
            return {name: [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in sent]
                    for name, ws in (("plain", plain), ("rotations", rotations))}

    with running_service(tmp_path / "store") as service:
        got = asyncio.run(main(service.ws_url, service.state.hub))

    plain, rot = got["plain"], got["rotations"]
    assert [[p["id"] for p in m["persons"]] for m in plain] == [persons_scene.ids_at(i) for i in range(60)]
    for i, m in enumerate(plain):
        lowest = persons_scene.ids_at(i)[0]
        top = np.array(m["joints"], dtype=float)[:, :3]
        np.testing.assert_allclose(top, persons_scene.joints[lowest][i], atol=6e-5)  # a top-level client
        assert "rotations" not in m
        assert all("rotations" not in p for p in m["persons"])
        assert m == {k: v for k, v in rot[i].items() if k != "rotations"} | {
            "persons": [{k: v for k, v in p.items() if k != "rotations"} for p in rot[i]["persons"]]}
    for m in rot:
        assert m["rotations"] == m["persons"][0]["rotations"]
        assert [p["rotations"]["root"][2] for p in m["persons"]] == [0.1 * p["id"] for p in m["persons"]]


def test_a_client_that_asks_for_rotations_gets_null_per_person_when_none_is_known(
    tmp_path: Path, persons_scene: Any
) -> None:
    sent = [_as_bus_delivers(persons_scene.message(25))]

    async def main(url: str, hub: Any) -> dict[str, Any]:
        async with connect(url + "?rotations=true") as ws:
            await wait_for_clients(hub, 1)
            publish_at(hub, sent, hz=100).join()
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

    with running_service(tmp_path / "store") as service:
        got = asyncio.run(main(service.ws_url, service.state.hub))
    assert got["rotations"] is None
    assert [p["rotations"] for p in got["persons"]] == [None, None, None]
