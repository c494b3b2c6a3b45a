"""The whole service really started (synthetic studio, simulated heatmaps) with VMC streaming on: a real
OSC server decodes the bundles, real websocket clients (uvicorn) ask with and without ``?rotations=true``."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from osc_receiver import Received, osc_receiver

from crosspose.config.settings import StreamingConfig, VmcConfig
from crosspose.motion import BONE_PARENTS, BONES, UNITY_BONES, zup_to_yup
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import make_supervisor
from crosspose.runtime.supervisor import Supervisor
from crosspose.streaming import (
    BONE_ADDRESS,
    DIAGNOSTICS_ADDRESS,
    OK_ADDRESS,
    ROOT_ADDRESS,
    TIME_ADDRESS,
    to_unity_position,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # starting the whole service: 15-50 s here
UNITY = [UNITY_BONES[b] for b in BONES]


@dataclass
class Running:
    supervisor: Supervisor
    thread: threading.Thread
    base: str
    received: Received
    refusing: str


def closed_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("streaming")
    with osc_receiver() as (port, received):
        refusing = f"127.0.0.1:{closed_udp_port()}"
        # Placeholder frames (render=False): the simulated heatmaps come from the studio's ground truth.
        config = synthetic_config(workdir, "127.0.0.1", 0, cameras=3, fps=15.0, frames=90, render=False)
        vmc = VmcConfig(enabled=True, targets=[refusing, f"127.0.0.1:{port}"], diagnostics=True)
        config = config.model_copy(update={"streaming": StreamingConfig(vmc=vmc)})
        port_file = workdir / "port"
        sup = make_supervisor(config, str(port_file))
        thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
        thread.start()
        try:
            base = wait_ready(port_file)
            yield Running(sup, thread, base, received, refusing)
        finally:
            sup.request_stop()
            thread.join(60)


def wait_ready(port_file: Path) -> str:
    deadline = time.monotonic() + 120
    while not port_file.exists():
        assert time.monotonic() < deadline, "the API never reported its port"
        time.sleep(0.1)
    base = f"http://127.0.0.1:{int(port_file.read_text())}"
    while httpx.get(f"{base}/api/v1/ready").status_code != 200:
        assert time.monotonic() < deadline, "service not ready"
        time.sleep(0.5)
    return base


def receive_both(base: str, count: int, timeout: float = 90.0) -> tuple[list[dict], list[dict]]:
    """``count`` messages with rotations (once they carry some) and the plain stream meanwhile."""

    async def run() -> tuple[list[dict], list[dict]]:
        ws = base.replace("http", "ws") + "/ws/skeletons"
        plain: list[dict[str, Any]] = []
        rich: list[dict[str, Any]] = []
        async with websockets.connect(ws) as a, websockets.connect(ws + "?format=json&rotations=true") as b:

            async def read_plain() -> None:
                while True:
                    plain.append(json.loads(await a.recv()))

            task = asyncio.create_task(read_plain())
            end = time.monotonic() + timeout
            try:
                while time.monotonic() < end:
                    m = json.loads(await asyncio.wait_for(b.recv(), end - time.monotonic()))
                    if m["rotations"] is not None or rich:
                        rich.append(m)
                    if len(rich) >= count:
                        break
                await asyncio.sleep(0.3)  # let the plain client catch up
            finally:
                task.cancel()
        return plain, rich

    return asyncio.run(run())


def pelvis_seen(message: dict[str, Any]) -> bool:
    """The pelvis is supported (LiveRotations' default ``min_confidence`` 0.1) in this message."""
    x, _, _, c = message["joints"][0]
    return x is not None and c is not None and c >= 0.1


def test_vmc_bundles_and_websocket_rotations_from_the_running_service(service: Running) -> None:
    plain, rich = receive_both(service.base, 20)
    assert len(rich) == 20, "no rotations within the time limit (rest pose never estimated?)"

    # -- websocket: clients that did not ask get exactly the old message; those that asked, rotations
    assert plain
    assert all("rotations" not in m for m in plain)
    by_seq = {m["seq"]: m for m in plain}
    common = [m for m in rich if m["seq"] in by_seq]
    assert common
    for m in common:
        assert [p["rotations"] for p in m["persons"]] == [m["rotations"]]  # one performer, id 0
        persons = [{k: v for k, v in p.items() if k != "rotations"} for p in m["persons"]]
        assert {**{k: v for k, v in m.items() if k != "rotations"}, "persons": persons} == by_seq[m["seq"]]
    for m in rich:
        rot = m["rotations"]
        assert rot["frame"] == "y_up_rh"
        assert rot["bones"] == list(BONES)
        assert rot["unity"] == UNITY
        assert rot["parents"] == list(BONE_PARENTS)
        assert np.shape(rot["rest_offsets"]) == (len(BONES), 3)
        local = np.array(rot["local"], dtype=float)
        np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, atol=1e-5)
        if pelvis_seen(m):  # (an unsupported pelvis holds the previous root)
            pelvis = np.array(m["joints"][0][:3], dtype=float)
            np.testing.assert_allclose(rot["root"], zup_to_yup(pelvis), atol=2e-4)

    # -- VMC: one bundle per solved frame, every bone, unit quaternions, root + hips at the pelvis (Unity)
    bundles = service.received.wait_for(1)
    with service.received.lock:
        bundles = list(service.received.bundles)
    full = [b for b in bundles if any(addr == BONE_ADDRESS for addr, _ in b)]
    assert len(full) >= 20
    publish = {m["seq"]: m for m in rich}
    matched = 0
    for bundle in full:
        addresses = [addr for addr, _ in bundle]
        assert addresses[:3] == [OK_ADDRESS, TIME_ADDRESS, ROOT_ADDRESS]
        assert addresses.count(BONE_ADDRESS) == len(BONES)
        assert addresses.count(ROOT_ADDRESS) == 1
        ok = dict(bundle)[OK_ADDRESS]
        assert ok[0] == 1
        assert ok[1] == 3
        names = [args[0] for addr, args in bundle if addr == BONE_ADDRESS]
        assert names == UNITY
        quats = np.array([args[4:8] for addr, args in bundle if addr == BONE_ADDRESS], dtype=float)
        np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-5)
        root = np.array(dict(bundle)[ROOT_ADDRESS][1:4], dtype=float)
        seq, t_publish_ns, t_send_ns = dict(bundle)[DIAGNOSTICS_ADDRESS]
        assert t_send_ns >= t_publish_ns
        m = publish.get(seq)
        if m is not None and pelvis_seen(m):
            assert t_publish_ns == m["t_publish_ns"]
            pelvis = np.array(m["joints"][0][:3], dtype=float)
            hips = np.array(next(args[1:4] for addr, args in bundle if addr == BONE_ADDRESS), dtype=float)
            # Default root "floor": the root on the floor under the pelvis, Hips at the pelvis height.
            assert root[1] == 0.0
            np.testing.assert_allclose(root + hips, to_unity_position(zup_to_yup(pelvis)), atol=2e-4)
            matched += 1
    assert matched >= 10
    seqs = [dict(b)[DIAGNOSTICS_ADDRESS][0] for b in full]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    # Every frame published with rotations left as a bundle, although another target refuses them all.
    assert {m["seq"] for m in rich if m["seq"] <= seqs[-1]} <= set(seqs)


def test_bad_rotations_parameter_is_refused(service: Running) -> None:
    async def run() -> int | None:
        url = service.base.replace("http", "ws") + "/ws/skeletons?rotations=maybe"
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(run()) == 1008
