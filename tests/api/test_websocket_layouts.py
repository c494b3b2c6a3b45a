"""``?skeleton=h36m17`` on WS /ws/skeletons (issue 19.1): a service publishing the full body gives a 17-joint
client exactly the message of a Human3.6M-17 service; other clients get the full body; a layout the
service cannot give is refused with 1008."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from api_service import running_service
from test_websocket import publish_at, wait_for_clients
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crosspose.bus.schema import skeleton_message
from crosspose.skeleton import BODY32, H36M17, Skeleton
from crosspose.solver.pose import Pose3D


def _message(skeleton: Skeleton, seq: int) -> dict[str, Any]:
    """A solver stage's message of a pose in ``skeleton`` (the full body's first 17 joints are the same
    numbers in both layouts); the full body's right thumb unseen."""
    rng = np.random.default_rng(seq)
    joints = rng.uniform(-1.0, 2.0, (BODY32.num_joints, 3))
    confidence = rng.uniform(0.5, 1.0, BODY32.num_joints)
    views = rng.integers(2, 5, BODY32.num_joints)
    thumb = BODY32.index("r_thumb")
    joints[thumb], confidence[thumb], views[thumb] = np.nan, 0.0, 0
    j = skeleton.num_joints
    pose = Pose3D(joints=joints[:j], confidence=confidence[:j], views=views[:j],
                  support=np.ones((2, j), dtype=bool), skeleton=skeleton.name, mode="tracked")
    message = skeleton_message(pose, seq=seq, t_capture_ns=1_000 + seq, cameras=["cam01", "cam02"],
                               latency_ms={"sync": 1.0, "inference": 20.0, "solve": 5.0},
                               t_publish_ns=2_000_000 + seq, calibration_version=3)
    return {"v": 1, **message}


def test_skeleton_h36m17_gets_exactly_the_h36m17_message(tmp_path: Path) -> None:
    full = [_message(BODY32, seq) for seq in range(3)]
    today = [_message(H36M17, seq) for seq in range(3)]

    async def main(url: str, hub: Any) -> dict[str, list[Any]]:
        async with (
            connect(url + "?skeleton=h36m17") as h36m,
            connect(url + "?skeleton=h36m17&format=msgpack") as h36m_msgpack,
            connect(url + "?skeleton=crosspose-body32") as asked_full,
            connect(url) as default,
        ):
            await wait_for_clients(hub, 4)
            publish_at(hub, full, hz=100).join()
            return {name: [await asyncio.wait_for(ws.recv(), 5) for _ in full]
                    for name, ws in (("h36m", h36m), ("h36m_msgpack", h36m_msgpack),
                                     ("asked_full", asked_full), ("default", default))}

    with running_service(tmp_path / "store", skeleton=BODY32) as service:
        got = asyncio.run(main(service.ws_url, service.state.hub))
    assert [json.loads(f) for f in got["h36m"]] == json.loads(json.dumps(today))
    expected = [msgpack.unpackb(msgpack.packb(m)) for m in today]
    assert [msgpack.unpackb(f) for f in got["h36m_msgpack"]] == expected
    for frames in (got["default"], got["asked_full"]):
        messages = [json.loads(f) for f in frames]
        assert [m["skeleton"] for m in messages] == ["crosspose-body32"] * 3
        assert [len(m["joints"]) for m in messages] == [32] * 3
        assert messages[0]["joints"][BODY32.index("r_thumb")] == [None, None, None, 0.0]
        assert messages == json.loads(json.dumps(full))


@pytest.mark.parametrize(("published", "asked"), [(BODY32, "coco17"), (BODY32, "h36m"),
                                                  (H36M17, "crosspose-body32")])
def test_a_layout_the_service_cannot_give_is_closed_with_1008(tmp_path: Path, published: Skeleton,
                                                               asked: str) -> None:
    async def main(url: str) -> ConnectionClosed:
        async with connect(url + f"?skeleton={asked}") as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            return info.value

    with running_service(tmp_path / "store", skeleton=published) as service:
        closed = asyncio.run(main(service.ws_url))
        assert service.state.hub.client_count == 0
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1008
    assert f"unsupported skeleton {asked!r}" in closed.rcvd.reason
    assert published.name in closed.rcvd.reason
