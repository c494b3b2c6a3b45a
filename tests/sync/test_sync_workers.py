"""Sync hands each frame set to one idle inference worker (``frameset.<k>.``), over real sockets: a worker is
idle while subscribed to its topic and busy from the set it takes until it subscribes again
(:class:`~crosspose.sync.dispatch.WorkerDispatch`); while every worker is busy only the newest set waits,
the older ones superseded (counted, never sent), and it goes to the first worker to come free; a worker
whose process is gone (its subscription with it) gets none."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from crosspose.bus import FRAMESET, Publisher, Subscriber, frame_topic, frameset_topic
from crosspose.bus.schema import frame_message
from crosspose.capture import encode_frame
from crosspose.config import config_from_dict
from crosspose.sync import SyncStage
from crosspose.sync.dispatch import WorkerDispatch

pytestmark = pytest.mark.timeout(60)
IMAGE = np.zeros((6, 8, 3), np.uint8)


def _wait(condition: Callable[[], bool], what: str, step: Callable[[], object] = lambda: None) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        step()
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


class Worker:
    """An inference worker's frame-set socket as the stage uses it: subscribed while idle, unsubscribed from
    the set it takes until :meth:`done`."""

    def __init__(self, endpoint: str, k: int) -> None:
        self.topic = frameset_topic(k)
        self.sub = Subscriber(endpoint, [self.topic], bind=False, hwm=1, conflate=True)

    def take(self, step: Callable[[], object], timeout_s: float = 2.0) -> int | None:
        """The number of the set that reaches it within ``timeout_s`` (then busy), or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            step()
            if (msg := self.sub.recv(5)) is not None:
                assert msg.topic == self.topic
                self.sub.unsubscribe(self.topic)
                return int(msg.header["seq"])
        return None

    def done(self) -> None:
        self.sub.subscribe(self.topic)


@contextmanager
def _dispatch(tmp_path: Path, busy_timeout_ns: int = 10**10) -> Iterator[tuple[WorkerDispatch, str]]:
    endpoint = f"ipc://{tmp_path}/framesets"
    pub = Publisher(endpoint, bind=True, hwm=1)
    try:
        yield WorkerDispatch(pub, busy_timeout_ns=busy_timeout_ns), endpoint
    finally:
        pub.close()


def _set(seq: int) -> dict[str, object]:
    return {"type": "frameset", "seq": seq}


def test_sets_go_to_idle_workers_only_and_the_newest_waits_for_the_first_free_one(tmp_path: Path) -> None:
    with _dispatch(tmp_path) as (dispatch, endpoint):
        listener = Subscriber(endpoint, [FRAMESET], bind=False, hwm=100)  # a tool listening to every set
        workers: list[Worker] = []
        try:
            # No worker yet: a set goes out on worker 0's topic, for listeners of frameset.
            _wait(lambda: bool(dispatch.publisher.subscription_events()), "the listener never subscribed")
            assert dispatch.offer(_set(1), [])
            seen = listener.recv(2000)
            assert seen is not None
            assert seen.header["seq"] == 1
            workers = [Worker(endpoint, k) for k in range(2)]
            _wait(lambda: sorted(dispatch.idle) == [0, 1], "the workers never subscribed", step=dispatch.poll)
            first, second = dispatch.idle  # the one idle longest first
            a, b = workers[first], workers[second]
            assert dispatch.offer(_set(2), [])
            assert a.take(dispatch.poll) == 2
            assert dispatch.offer(_set(3), [])  # a is busy: the other one
            assert b.take(dispatch.poll) == 3
            _wait(lambda: dispatch.idle == [], "a worker still idle", step=dispatch.poll)
            # Both busy: the sets wait at sync, only the newest kept.
            for seq in (4, 5, 6):
                assert not dispatch.offer(_set(seq), [])
            assert dispatch.waiting
            assert a.take(dispatch.poll, 0.3) is None
            assert b.take(dispatch.poll, 0.3) is None
            b.done()  # b comes free first: it gets the newest set at once
            assert b.take(dispatch.poll) == 6
            assert not dispatch.waiting
            a.done()
            _wait(lambda: dispatch.idle == [first], "a never came free", step=dispatch.poll)
            assert dispatch.offer(_set(7), [])
            assert a.take(dispatch.poll) == 7
            assert dispatch.counters == {"dispatched": 5, "waited": 1, "superseded": 2, "refused": 0}
            got = []
            while (msg := listener.recv(200)) is not None:
                got.append(msg.header["seq"])
            assert got == [2, 3, 6, 7]  # 4 and 5 never sent
        finally:
            listener.close()
            for w in workers:
                w.sub.close()


def test_a_gone_worker_gets_no_set_and_one_that_never_took_its_set_is_freed_in_time(tmp_path: Path) -> None:
    with _dispatch(tmp_path, busy_timeout_ns=300_000_000) as (dispatch, endpoint):
        workers = [Worker(endpoint, k) for k in range(2)]
        try:
            _wait(lambda: sorted(dispatch.idle) == [0, 1], "the workers never subscribed", step=dispatch.poll)
            workers[1].sub.close()  # worker 1's process is gone: its connection and subscription with it
            _wait(lambda: dispatch.idle == [0], "worker 1 still taken as idle", step=dispatch.poll)
            for seq in range(1, 5):
                assert dispatch.offer(_set(seq), [])
                assert workers[0].take(dispatch.poll) == seq
                workers[0].done()
                _wait(lambda: dispatch.idle == [0], "worker 0 never came free", step=dispatch.poll)
            # A worker that got a set and never said it took it (the set lost on its way): after the timeout
            # it is taken as idle again, not left out for ever.
            assert dispatch.offer(_set(5), [])
            assert workers[0].sub.recv(2000) is not None  # received, but not unsubscribed
            assert not dispatch.offer(_set(6), [])
            time.sleep(0.35)
            assert dispatch.poll()
            seen = workers[0].sub.recv(2000)
            assert seen is not None
            assert seen.header["seq"] == 6
        finally:
            workers[0].sub.close()


def test_the_sync_stage_hands_its_sets_to_idle_workers(tmp_path: Path) -> None:
    config = config_from_dict({
        "cameras": [{"name": "cam1", "source": "synthetic", "fps": 100.0}],  # one camera: a set per frame
        "bus": {name: f"ipc://{tmp_path}/{name.split('_')[0]}" for name in
                ("frames_endpoint", "framesets_endpoint", "status_endpoint")},
    })  # fmt: skip
    stage = SyncStage(config)
    camera = Publisher(config.bus.frames_endpoint, bind=False, hwm=100)
    workers = [Worker(config.bus.framesets_endpoint, k) for k in range(2)]
    seq = 0

    def send_frame() -> None:
        nonlocal seq
        seq += 1
        encoding, buf = encode_frame(IMAGE, None)
        header = frame_message("cam1", seq, IMAGE, t_capture_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(),
                               t_device_ns=None, encoding=encoding, fps=100.0)  # fmt: skip
        camera.send(frame_topic("cam1"), header, [buf])

    try:
        _wait(lambda: sorted(stage.dispatch.idle) == [0, 1], "the workers never subscribed",
              step=lambda: stage.step(1))
        deadline = time.monotonic() + 10
        taken: list[int] = []
        while not taken:  # the frames link connects as sync runs
            send_frame()
            taken = [k for k, w in enumerate(workers) if w.take(lambda: stage.step(5), 0.1) is not None]
            assert time.monotonic() < deadline, "sync never published a set"
        for k in taken:
            workers[k].done()
        _wait(lambda: sorted(stage.dispatch.idle) == [0, 1], "the workers never came free",
              step=lambda: stage.step(1))
        send_frame()
        busy = stage.dispatch.idle[0]  # the one idle longest gets the next set, and keeps it
        got = [workers[busy].take(lambda: stage.step(5))]
        for _ in range(3):  # the busy worker gets nothing; the idle one each set as it comes free
            send_frame()
            idle = workers[1 - busy]
            got.append(idle.take(lambda: stage.step(5)))
            idle.done()
            assert workers[busy].take(lambda: stage.step(5), 0.05) is None
        assert None not in got
        assert got == sorted(set(got)), got  # each set once, in order
        assert stage.status()["dispatch"]["dispatched"] >= 4
        assert stage.status()["framesets_socket"]["dropped_hwm"] == 0
    finally:
        camera.close()
        for w in workers:
            w.sub.close()
        stage.close()
