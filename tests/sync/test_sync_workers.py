"""Sync hands each frame set to one inference worker (``frameset.<k>.``), over real sockets: the workers take
sets in turn, and a worker whose process is gone (its subscription with it) gets none."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crosspose.bus import Publisher, Subscriber, frame_topic, frameset_topic
from crosspose.bus.schema import frame_message
from crosspose.capture import encode_frame
from crosspose.config import config_from_dict
from crosspose.sync import SyncStage

pytestmark = pytest.mark.timeout(60)
IMAGE = np.zeros((6, 8, 3), np.uint8)


def _wait(condition: Callable[[], bool], what: str, step: Callable[[], object] = lambda: None) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        step()
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_workers_take_sets_in_turn_and_a_gone_worker_gets_none(tmp_path: Path) -> None:
    config = config_from_dict({
        "cameras": [{"name": "cam1", "source": "synthetic", "fps": 100.0}],  # one camera: a set per frame
        "bus": {name: f"ipc://{tmp_path}/{name.split('_')[0]}" for name in
                ("frames_endpoint", "framesets_endpoint", "status_endpoint")},
    })  # fmt: skip
    stage = SyncStage(config)
    camera = Publisher(config.bus.frames_endpoint, bind=False, hwm=100)
    workers: list[Subscriber | None] = [
        Subscriber(config.bus.framesets_endpoint, [frameset_topic(k)], bind=False, hwm=100) for k in range(2)
    ]
    seq = 0

    def send_frame() -> None:
        nonlocal seq
        seq += 1
        encoding, buf = encode_frame(IMAGE, None)
        header = frame_message("cam1", seq, IMAGE, t_capture_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(),
                               t_device_ns=None, encoding=encoding, fps=100.0)  # fmt: skip
        camera.send(frame_topic("cam1"), header, [buf])

    def received(timeout_s: float) -> int | None:
        """The worker the next frame set went to (None: none within ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stage.step(5)
            for k, worker in enumerate(workers):
                if worker is not None and (msg := worker.recv(0)) is not None:
                    assert msg.topic == frameset_topic(k)
                    return k
        return None

    def one_set() -> int:
        send_frame()
        k = received(5.0)
        assert k is not None, "no worker got the frame set"
        return k

    try:
        wanted = {frameset_topic(0), frameset_topic(1)}
        _wait(lambda: wanted <= stage.framesets.subscriptions, "the workers never subscribed")
        deadline = time.monotonic() + 10
        while True:  # the frames link connects as sync runs
            send_frame()
            if received(0.2) is not None:
                break
            assert time.monotonic() < deadline, "sync never published a set"
        while received(0.2) is not None:
            pass
        got = [one_set() for _ in range(10)]
        assert sorted(set(got)) == [0, 1]
        assert all(a != b for a, b in itertools.pairwise(got)), got  # in turn
        closing, workers[1] = workers[1], None
        assert closing is not None
        closing.close()  # worker 1's process is gone: its connection and subscription with it
        _wait(lambda: frameset_topic(1) not in stage.framesets.subscriptions, "worker 1 still subscribed",
              step=lambda: stage.step(1))
        assert [one_set() for _ in range(6)] == [0] * 6  # none lost to the gone worker
        assert stage.status()["framesets_socket"]["dropped_hwm"] == 0
    finally:
        camera.close()
        for worker in workers:
            if worker is not None:
                worker.close()
        stage.close()
