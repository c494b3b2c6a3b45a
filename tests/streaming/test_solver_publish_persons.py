"""The solver stage's per-performer outputs (issue 21.5): ``SolverStage.publish`` with several solved
performers puts them all on the real bus (``persons``, rotations per performer, the top level the lowest
id's) and sends each VMC receiver the performer ``streaming.vmc.targets`` maps to it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from osc_receiver import osc_receiver

from crosspose.bus import Subscriber
from crosspose.bus.schema import SKELETON, parse_skeleton
from crosspose.config.settings import FilterConfig, StreamingConfig, VmcConfig
from crosspose.motion import zup_to_yup
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.solver_stage import SolverStage
from crosspose.skeleton import H36M17
from crosspose.streaming import ROOT_ADDRESS


def test_publish_routes_every_performer(tmp_path: Path, persons_scene: Any) -> None:
    frames = 45
    with osc_receiver() as (port1, got1), osc_receiver() as (port5, got5):
        config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, frames=10, render=False)
        vmc = VmcConfig(enabled=True, targets={1: [f"127.0.0.1:{port1}"], 5: f"127.0.0.1:{port5}"},
                        root="pelvis")
        config = config.model_copy(update={
            "solver": config.solver.model_copy(update={"skeleton": H36M17.name}),
            "streaming": StreamingConfig(vmc=vmc), "filter": FilterConfig(enabled=True),
        })
        stage = SolverStage(config)
        listener = Subscriber(config.bus.skeletons_endpoint, [SKELETON], bind=False, hwm=1000)
        try:
            time.sleep(0.3)  # the subscription reaches the stage's publisher
            received = []
            for i in range(frames):
                header = {"seq": i, "t_capture_ns": persons_scene.t_capture_ns(i), "cameras": ["a", "b"],
                          "latency_ms": {"inference": 10.0}, "calibration_version": 1}
                stage.publish(header, persons_scene.persons(i), solve_ms=1.0)
                got = listener.recv(2000)  # read as published: the stage drops for a reader that lags
                assert got is not None, f"frame set {i} did not reach the bus"
                received.append(parse_skeleton(got.header))
            b1, b5 = got1.wait_for(frames), got5.wait_for(frames)
            stats = stage.live.stats()
        finally:
            listener.close()
            stage.close()
    assert [m["seq"] for m in received] == list(range(frames))
    for i, m in enumerate(received):
        assert [p["id"] for p in m["persons"]] == persons_scene.ids_at(i)
        assert m["joints"] == m["persons"][0]["joints"]  # the top level: the lowest id
        assert m["rotations"] == m["persons"][0]["rotations"]
    # the filter ran per performer: each one's joints stay near their own truth (never pulled to another)
    for pid in (1, 2, 5):
        span = [i for i in persons_scene.spans[pid] if i < frames]
        mine = [next(p for p in received[i]["persons"] if p["id"] == pid) for i in span]
        got = np.array([[row[:3] for row in p["joints"]] for p in mine], dtype=float)
        assert np.abs(got - persons_scene.joints[pid][span]).max() < 0.3  # performers stand 1.5 m apart
    # rotations per performer once their own rest pose is known (30 frames of warm-up each): 1 from frame
    # 29; 2 (frames 0-29) at its last frame only; 5 (from frame 20) has had 25 frames by the end
    rotated = {pid: [i for i, m in enumerate(received) for p in m["persons"]
                     if p["id"] == pid and p["rotations"] is not None] for pid in (1, 2, 5)}
    assert rotated[1] == list(range(29, frames))
    assert rotated[2] == [29]
    assert rotated[5] == []
    # VMC: receiver 1 gets performer 1's pelvis, receiver 5 status bundles (5 has no rest pose yet)
    roots1 = [next((a for addr, a in b if addr == ROOT_ADDRESS), None) for b in b1]
    assert [r is not None for r in roots1] == [i >= 29 for i in range(frames)]
    pelvis = np.array([received[i]["persons"][0]["rotations"]["root"] for i in range(29, frames)])
    np.testing.assert_allclose([[-r[1], r[2], r[3]] for r in roots1[29:]], pelvis, atol=1e-4)
    np.testing.assert_allclose(pelvis[0], zup_to_yup(persons_scene.joints[1][29, 0]), atol=0.05)
    assert all(addr != ROOT_ADDRESS for b in b5 for addr, _ in b)
    assert stats["persons"] == 3
    assert [t["person"] for t in stats["vmc"]["targets"]] == [1, 5]
