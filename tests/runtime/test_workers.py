"""Several inference workers: how many ``auto`` gives and the threads each gets, and the solver stage putting
their heatmaps back in capture order over real sockets (a newer set is held for an older one a worker
announced, within a bound; a set that finishes after a newer one was published is dropped and counted,
never sent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from crosspose.api.status import StatusBoard
from crosspose.bus import SKELETON, Message, Publisher, Subscriber
from crosspose.bus.schema import (
    HEATMAPS,
    INFLIGHT,
    frame_message,
    frameset_message,
    heatmaps_message,
    inflight_message,
)
from crosspose.calibration import load_rig
from crosspose.capture import encode_frame
from crosspose.config import Config, config_from_dict
from crosspose.core import ImageSet, Track, backend_from_config
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.inference_stage import InferenceStage
from crosspose.runtime.solver_stage import SolverStage, waited_ms
from crosspose.runtime.workers import (
    SEVERAL_WORKERS_NICE,
    inference_workers,
    with_workers,
    worker_count,
    worker_nice,
    worker_threads,
)
from crosspose.solver import Pose3D
from crosspose.sync.dispatch import WorkerDispatch

pytestmark = pytest.mark.timeout(120)
PERIOD_NS = 33_000_000


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return synthetic_config(tmp_path_factory.mktemp("workers"), "127.0.0.1", 0, cameras=3, frames=5,
                            render=False)  # fmt: skip


def _with(config: Config, **inference: Any) -> Config:
    return config.model_copy(update={"inference": config.inference.model_copy(update=inference)})


def test_auto_is_two_workers_on_a_multi_core_cpu_and_one_with_a_gpu_or_one_core(config: Config) -> None:
    assert config.inference.workers == "auto"
    assert worker_count(config, cores=2, gpu=False) == 2
    assert worker_count(config, cores=16, gpu=False) == 2
    assert worker_count(config, cores=1, gpu=False) == 1
    assert worker_count(config, cores=16, gpu=True) == 1
    assert worker_count(_with(config, workers=3), cores=1, gpu=True) == 3  # as configured
    resolved = with_workers(config, cores=2, gpu=False)
    assert resolved.inference.workers == 2
    assert inference_workers(resolved) == [("inference.0", 0), ("inference.1", 1)]
    assert inference_workers(_with(config, workers=1)) == [("inference", None)]


def test_several_workers_run_below_the_other_stages_unless_nice_is_set(config: Config) -> None:
    assert config.inference.nice == "auto"
    assert worker_nice(_with(config, workers=2)) == SEVERAL_WORKERS_NICE > 0
    assert worker_nice(_with(config, workers=1)) == 0
    assert worker_nice(_with(config, workers=2, nice=0)) == 0
    assert worker_nice(_with(config, workers=1, nice=7)) == 7
    for bad in (-1, 20, "high", True):
        with pytest.raises(ValueError, match=r"os\.nice increment from 0 to 19"):
            config_from_dict({**config.model_dump(mode="json", by_alias=True),
                              "inference": {**config.inference.model_dump(mode="json"), "nice": bad}})


def test_each_worker_gets_its_share_of_the_cores_unless_threads_are_set(config: Config) -> None:
    two = _with(config, workers=2)
    assert worker_threads(two, cores=2) == 1
    assert worker_threads(two, cores=16) == 8
    assert worker_threads(_with(config, workers=3), cores=2) == 1  # never 0
    assert worker_threads(_with(config, workers=1), cores=4) == 4
    assert worker_threads(_with(two, threads=3), cores=16) == 3


def _heatmaps(config: Config, seq: int, t0: int) -> tuple[dict[str, Any], list[Any]]:
    """Simulated heatmaps of frame set ``seq`` captured at ``t0 + seq`` frame periods."""
    rig = load_rig(config.calibration.file or "")
    image = np.zeros((8, 8, 3), np.uint8)
    out = backend_from_config(config, rig, seed=seq).run(ImageSet(seq, t0, [image] * 3, [{}] * 3), rig)
    return heatmaps_message(seq=seq, t_capture_ns=t0 + seq * PERIOD_NS, cameras=list(rig.names),
                            present=[True] * 3, heatmaps=out.heatmaps, projections=out.projections,
                            latency_ms={"sync": 1.0, "inference": 30.0}, calibration_version=1,
                            backend="simulated")  # fmt: skip


@contextmanager
def _solver_and_two_workers(
    config: Config,
) -> Iterator[tuple[SolverStage, list[Publisher], Subscriber, dict[int, Any], int]]:
    """A solver stage (it binds the heatmaps endpoint), two workers' heatmaps publishers connected to it, a
    listener of its skeletons, the heatmaps of sets 1–7 (captured ``t0 + seq * PERIOD_NS``) and ``t0``, a
    second ago; all closed after."""
    stage = SolverStage(config)
    workers = [Publisher(config.bus.heatmaps_endpoint, bind=False, hwm=4) for _ in range(2)]
    listener = Subscriber(config.bus.skeletons_endpoint, [SKELETON], bind=False, hwm=100)
    t0 = time.monotonic_ns() - 10**9
    try:
        deadline = time.monotonic() + 10
        while not all(w.wait_for_subscriber(0.02) for w in workers):  # a bound socket connects as it is used
            stage.step(0)
            assert time.monotonic() < deadline, "the workers never connected"
        yield stage, workers, listener, {seq: _heatmaps(config, seq, t0) for seq in range(1, 8)}, t0
    finally:
        listener.close()
        for worker in workers:
            worker.close()
        stage.close()


def test_the_solver_publishes_two_workers_sets_in_capture_order(config: Config) -> None:
    with _solver_and_two_workers(config) as (stage, workers, listener, sets, _):

        def solved(worker: int, seq: int) -> int | None:
            assert workers[worker].send(HEATMAPS, *sets[seq])
            message = stage.step(2000)
            return None if message is None else int(message["seq"])

        assert solved(0, 2) == 2  # worker 0 was faster with set 2 ...
        assert solved(1, 1) is None  # ... than worker 1 with set 1: too late, dropped
        assert solved(1, 3) == 3
        assert solved(0, 4) == 4
        # Both finished while the solver was busy, the newer one first: the newer one is solved, the older one
        # skipped (it would have been too late anyway).
        assert workers[1].send(HEATMAPS, *sets[6])
        assert workers[0].send(HEATMAPS, *sets[5])
        time.sleep(0.3)
        message = stage.step(2000)
        assert message is not None
        assert message["seq"] == 6
        assert stage.step(300) is None
        assert solved(1, 7) == 7

        published = []
        while (msg := listener.recv(500)) is not None:
            published.append(msg.header["seq"])
        assert published[-5:] == [2, 3, 4, 6, 7]  # capture order, the late ones never sent
        payload = stage.payload()
        drops = payload["input_drops"]["heatmaps"]
        assert drops.get("stale", 0) + drops.get("busy", 0) == 2, drops
        assert drops["stale"] >= 1, drops
        assert payload["drops"] >= 2
        # The count reaches the API's board (and so /metrics' crosspose_input_drops_total).
        board = StatusBoard(["cam1"], stages=["solver"])
        board.update("solver", payload)
        assert board.input_drops()["solver"]["heatmaps"]["stale"] == drops["stale"]


def test_a_newer_set_waits_for_an_older_one_in_flight_within_the_bound(config: Config) -> None:
    """Worker 0 announces set 1, worker 1 finishes set 2 first: set 2 is held until set 1 arrives and both go
    out, 1 then 2. Past the bound the newer set goes out alone and the older one is dropped as stale."""
    with _solver_and_two_workers(config) as (stage, workers, listener, sets, t0):

        def announce(worker: int, seq: int) -> None:
            assert workers[worker].send(INFLIGHT, inflight_message(worker=worker, seq=seq,
                                                                   t_capture_ns=t0 + seq * PERIOD_NS))
            assert stage.step(1000) is None  # nothing to solve: the announcement is noted
            assert stage._inflight[worker][0] == t0 + seq * PERIOD_NS

        stage.hold_ns = 10 * 10**9  # in time, however slow this machine
        announce(0, 1)
        assert workers[1].send(HEATMAPS, *sets[2])
        assert stage.step(2000) is None  # held for set 1
        assert stage.payload()["held"] == 1
        assert workers[0].send(HEATMAPS, *sets[1])
        first, second = stage.step(2000), stage.step(0)
        assert first is not None
        assert second is not None
        assert (first["seq"], second["seq"]) == (1, 2)  # both, in capture order
        # Where they waited: set 2 came first and waited at the solver for set 1 (its ``hold``); ``transport``
        # needs the worker's ``queue``, which these messages do not carry.
        assert second["latency_ms"]["hold"] > first["latency_ms"]["hold"] >= 0
        assert "transport" not in second["latency_ms"]

        stage.hold_ns = 50_000_000
        announce(0, 3)
        assert workers[1].send(HEATMAPS, *sets[4])
        started = time.monotonic()
        message = None
        while message is None and time.monotonic() - started < 5:
            message = stage.step(100)
        assert message is not None
        assert message["seq"] == 4  # the bound passed: the newer set goes out alone
        assert time.monotonic() - started >= 0.05
        assert workers[0].send(HEATMAPS, *sets[3])
        assert stage.step(2000) is None  # too late: dropped, never sent
        assert workers[1].send(HEATMAPS, *sets[5])  # no announcement of an older set: not held
        message = stage.step(2000)
        assert message is not None
        assert message["seq"] == 5

        stage.hold_ns = 0  # solver.hold_ms 0: never held
        announce(0, 6)
        assert workers[1].send(HEATMAPS, *sets[7])
        message = stage.step(2000)
        assert message is not None
        assert message["seq"] == 7

        published = []
        while (msg := listener.recv(500)) is not None:
            published.append(msg.header["seq"])
        assert published[-5:] == [1, 2, 4, 5, 7]
        payload = stage.payload()
        assert (payload["held"], payload["held_in_time"]) == (2, 1)
        assert payload["input_drops"]["heatmaps"] == {"stale": 1}


def test_the_solver_tells_how_long_a_set_took_to_come_and_waited_to_be_solved() -> None:
    t_capture = 1_000_000_000
    header = {"t_capture_ns": t_capture, "latency_ms": {"sync": 2.0, "queue": 3.0, "inference": 40.0}}
    waited = waited_ms(header, arrived_ns=t_capture + 46_000_000, t_solve_ns=t_capture + 50_000_000)
    assert waited == pytest.approx({"transport": 1.0, "hold": 4.0})
    short = {**header, "latency_ms": {"sync": 2.0}}
    assert waited_ms(short, t_capture + 46_000_000, t_capture + 50_000_000) == pytest.approx({"hold": 4.0})
    assert waited_ms(header, None, t_capture) == {}


def test_a_set_stamped_from_the_future_does_not_hold_back_the_stream(config: Config) -> None:
    stage = SolverStage(config)
    worker = Publisher(config.bus.heatmaps_endpoint, bind=False, hwm=4)
    now = time.monotonic_ns()
    try:
        deadline = time.monotonic() + 10
        while not worker.wait_for_subscriber(0.02):
            stage.step(0)
            assert time.monotonic() < deadline
        assert worker.send(HEATMAPS, *_heatmaps(config, 0, now + 3600 * 10**9))  # an hour ahead
        assert stage.step(2000) is None
        assert worker.send(HEATMAPS, *_heatmaps(config, 1, now - 10**9))
        message = stage.step(2000)
        assert message is not None
        assert message["seq"] == 1
        assert stage.payload()["input_drops"]["heatmaps"] == {"future": 1}
    finally:
        worker.close()
        stage.close()


def test_a_worker_skips_a_frame_set_older_than_what_the_solver_published(config: Config) -> None:
    """With several workers a set can be superseded before its worker starts: the network is not run for a
    set the solver would drop."""

    stage = InferenceStage(config, worker=1)
    now = time.monotonic_ns()
    # threads 0 (the default): what the backend is opened with is this worker's share of the cores.
    assert config.inference.threads == 0
    assert stage.config.inference.threads == stage.payload()["threads"] == worker_threads(config) >= 1

    def frameset(seq: int, t_capture_ns: int) -> Message:
        image = np.zeros((8, 8, 3), np.uint8)
        names = [c.name for c in config.cameras]
        encoding, buf = encode_frame(image, None)
        frames = [frame_message(n, seq, image, t_capture_ns=t_capture_ns, t_wall_ns=time.time_ns(),
                                t_device_ns=None, encoding=encoding, fps=30.0) for n in names]  # fmt: skip
        header = frameset_message(seq=seq, t_ref_ns=t_capture_ns, t_emit_ns=time.monotonic_ns(),
                                  cameras=names, present=[True] * 3, frames=frames, skew_ns=[0] * 3)
        return Message(b"frameset.1.", header, [memoryview(buf)] * 3)

    joints = np.linspace([0.0, 0.0, 0.1], [0.3, 0.2, 1.8], 17)
    pose = Pose3D(joints=joints, confidence=np.ones(17), views=np.full(17, 3), support=np.ones((3, 17), bool),
                  skeleton="h36m17", mode="tracked")  # fmt: skip
    published = Track.from_pose(pose, seq=5, t_capture_ns=now - 10 * PERIOD_NS).message()
    try:
        assert stage._process(frameset(4, now - 11 * PERIOD_NS)) is not None  # nothing published yet
        stage._feedback(Message(b"track.", *published))
        assert stage.published_ns == now - 10 * PERIOD_NS
        assert stage._process(frameset(4, now - 11 * PERIOD_NS)) is None
        assert stage.input_drops()["frameset"] == {"stale": 1}
        assert stage._process(frameset(6, now - 9 * PERIOD_NS)) is not None
    finally:
        stage.close()


def test_a_worker_is_subscribed_while_idle_and_not_while_it_works_on_a_set(config: Config) -> None:
    """The worker's side of sync's dispatch (crosspose.sync.dispatch): subscribed once its backend is up,
    unsubscribed from the set it takes until it is done with it; the set's ``latency_ms`` say where its time
    went."""
    framesets = Publisher(config.bus.framesets_endpoint, bind=True, hwm=1)
    dispatch = WorkerDispatch(framesets)
    solver = SolverStage(config)  # binds the heatmaps endpoint the worker sends to
    stage = InferenceStage(config, worker=1)
    try:
        deadline = time.monotonic() + 10
        while dispatch.idle != [1]:
            dispatch.poll()
            assert time.monotonic() < deadline, "the worker never subscribed"
        names = [c.name for c in config.cameras]
        image = np.zeros((8, 8, 3), np.uint8)
        encoding, buf = encode_frame(image, None)
        now = time.monotonic_ns()
        frames = [frame_message(n, 3, image, t_capture_ns=now - 5_000_000, t_wall_ns=time.time_ns(),
                                t_device_ns=None, encoding=encoding, fps=30.0) for n in names]  # fmt: skip
        header = frameset_message(seq=3, t_ref_ns=now - 5_000_000, t_emit_ns=now, cameras=names,
                                  present=[True] * 3, frames=frames, skew_ns=[0] * 3)
        assert dispatch.offer(header, [buf] * 3)
        sent = None
        while sent is None:
            sent = stage.step(200)
            assert time.monotonic() < deadline, "the worker never took the set"
        assert stage.processed == 1
        events = framesets.subscription_events()
        assert events == [(False, b"frameset.1."), (True, b"frameset.1.")]  # busy with it, then idle
        latency = sent["latency_ms"]
        assert set(latency) == {"sync", "queue", "inference", "decode"}  # the simulated backend: no network
        assert latency["sync"] == pytest.approx(5.0)
        assert latency["queue"] >= 0
        assert 0 <= latency["decode"] <= latency["inference"]
    finally:
        stage.close()
        solver.close()
        framesets.close()
