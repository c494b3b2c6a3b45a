"""The live One Euro filter in the solver stage, through its real sockets: on, it reduces the frame-to-frame
jitter of a static synthetic performer; off (the default), the published joints are the solver's own."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from osc_receiver import osc_receiver

from crosspose.bus import HEATMAPS, Publisher
from crosspose.bus.schema import heatmaps_message, parse_heatmaps
from crosspose.config import Config
from crosspose.config.settings import StreamingConfig, VmcConfig
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.solver_stage import SolverStage
from crosspose.solver import Solver
from crosspose.streaming import BONE_ADDRESS
from crosspose.studio import (
    HeatmapErrors,
    heatmap_projection_matrices,
    make_scene,
    person_crops,
    simulate_heatmaps,
)

FRAMES = 40
FPS = 30.0


def static_performer_heatmaps(seed: int = 0) -> list[tuple[dict, list]]:
    """``heatmaps.`` messages of one pose held still, seen by 3 cameras through jittery heatmaps."""
    scene = make_scene(seed, 1, 3, fps=FPS)
    rig, joints = scene.rig, scene.joints3d[0]
    joints2d = np.asarray(rig.project(joints)).transpose(1, 0, 2)  # (C, J, 2)
    transforms = person_crops(joints2d, (64, 64))
    projections = heatmap_projection_matrices(np.asarray(rig.projection_matrices()), transforms)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(FRAMES):
        errors = HeatmapErrors(jitter_px=0.8)
        hm, _ = simulate_heatmaps(joints2d, transforms=transforms, errors=errors, rng=rng)
        out.append(
            heatmaps_message(
                seq=i,
                t_capture_ns=int(1e9 + i * 1e9 / FPS),
                cameras=list(rig.names),
                present=[True] * 3,
                heatmaps=hm,
                projections=projections,
                latency_ms={"sync": 0.0, "inference": 0.0},
                calibration_version=1,
                backend="simulated",
            )
        )
    return out


def h36m17(config: Config) -> Config:
    """``config`` solving in Human3.6M-17, the layout of the simulated heatmaps here."""
    return config.model_copy(update={"solver": config.solver.model_copy(update={"skeleton": "h36m17"})})


def run_stage(config: Config, messages: list[tuple[dict, list]], status: dict | None = None) -> list[dict]:
    """Each message through a real ``SolverStage`` (heatmaps in over ZeroMQ, the published skeleton out);
    ``status`` gets the stage's heartbeat payload at the end."""
    stage = SolverStage(config)  # binds the heatmaps endpoint; inference workers connect to it
    pub = Publisher(config.bus.heatmaps_endpoint, bind=False, hwm=4)
    try:
        deadline = time.monotonic() + 10
        while not pub.wait_for_subscriber(0.05):  # a bound socket takes a connection as it is used
            stage.step(0)
            assert time.monotonic() < deadline, "the solver stage never subscribed"
        out = []
        for header, buffers in messages:
            assert pub.send(HEATMAPS, header, buffers)
            message = stage.step(5000)
            assert message is not None
            assert message["seq"] == header["seq"]
            out.append(message)
        if status is not None:
            status.update(stage.payload())
        return out
    finally:
        stage.close()
        pub.close()


def joints_of(messages: list[dict]) -> np.ndarray:
    return np.array([[j[:3] for j in m["joints"]] for m in messages], dtype=float)


@pytest.fixture(scope="module")
def heatmaps() -> list[tuple[dict, list]]:
    return static_performer_heatmaps()


def test_filter_off_publishes_the_solvers_own_joints(tmp_path: Path, heatmaps: list) -> None:
    config = h36m17(synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, fps=FPS, frames=FRAMES))
    assert config.filter.enabled is False  # off by default
    published = run_stage(config, heatmaps)

    solver = Solver(config.solver.skeleton, options=config.solver.options)
    for (header, buffers), message in zip(heatmaps, published, strict=True):
        received = parse_heatmaps(header, buffers)
        pose = solver.solve(received.heatmaps, received.projections)
        np.testing.assert_array_equal(joints_of([message])[0], np.round(pose.joints, 4))


def test_solver_stage_streams_vmc_and_counts_every_target(tmp_path: Path, heatmaps: list) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    refusing = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    base = h36m17(synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, fps=FPS, frames=FRAMES))
    status: dict = {}
    with osc_receiver() as (port, got):
        vmc = VmcConfig(enabled=True, targets=[refusing, f"127.0.0.1:{port}"])
        config = base.model_copy(update={"streaming": StreamingConfig(vmc=vmc)})
        published = run_stage(config, heatmaps, status)
        bundles = got.wait_for(FRAMES)
    assert len(bundles) == FRAMES  # one per solved frame, the refusing target notwithstanding
    with_rotations = [m for m in published if m["rotations"] is not None]
    assert with_rotations, "the static performer should get a rest pose within the frames"
    assert sum(any(a == BONE_ADDRESS for a, _ in b) for b in bundles) == len(with_rotations)
    live = status["live"]
    assert live["rotated"] == len(with_rotations)
    targets = {t["target"]: t for t in live["vmc"]["targets"]}
    assert targets[f"127.0.0.1:{port}"]["sent"] == FRAMES
    assert targets[refusing]["refused"] >= 1
    assert live["vmc"]["send_delay_ms_p50"] is not None


def test_filter_on_reduces_jitter_of_a_static_performer(tmp_path: Path, heatmaps: list) -> None:
    base = h36m17(synthetic_config(tmp_path / "raw", "127.0.0.1", 0, cameras=3, fps=FPS, frames=FRAMES))
    raw = joints_of(run_stage(base, heatmaps))
    on = base.model_copy(update={"filter": base.filter.model_copy(update={"enabled": True})})
    filtered = joints_of(run_stage(on, heatmaps))
    # Frame-to-frame motion of a performer who does not move is all jitter.
    skip = 4  # the filter's first frames equal the input
    raw_jitter = np.nanmean(np.linalg.norm(np.diff(raw[skip:], axis=0), axis=-1))
    filtered_jitter = np.nanmean(np.linalg.norm(np.diff(filtered[skip:], axis=0), axis=-1))
    assert raw_jitter > 1e-3, "the simulated heatmaps should make the raw solve jitter"
    assert filtered_jitter < 0.6 * raw_jitter, (filtered_jitter, raw_jitter)
    # ... without moving the performer: the filtered mean pose stays on the raw mean pose.
    offset = np.linalg.norm(np.nanmean(filtered[skip:], 0) - np.nanmean(raw[skip:], 0), axis=-1)
    assert np.nanmax(offset) < 0.02
