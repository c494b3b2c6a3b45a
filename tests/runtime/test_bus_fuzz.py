"""Fuzzing what the stages receive: the parsers get 20,000 random and mutated real messages and every
stage's input at least 10,000 (seeded, :mod:`bus_mutations`). Nothing but ``MessageError`` leaves a parser;
no stage's ``step`` raises, each still works on a good message afterwards, and what it dropped is
counted by reason in its heartbeat's ``input_drops``.

Parse-passing mutants are expensive for the inference and solver stages (a simulated frame set, a pose
search): those two get every refused mutant and at most a few hundred accepted ones, so the whole
module runs in well under a minute on two busy cores.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import zmq
from bus_mutations import Mutator, Parts

from crosspose.bus import MessageError, decode
from crosspose.bus import schema as s
from crosspose.calibration import dumps_rig, load_rig
from crosspose.capture import decode_frame, encode_frame
from crosspose.config import Config
from crosspose.core import ImageSet, Track, backend_from_config
from crosspose.runtime.api_stage import BusBridge, build_state
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.inference_stage import InferenceStage
from crosspose.runtime.solver_stage import SolverStage
from crosspose.skeleton import H36M17
from crosspose.solver import Pose3D
from crosspose.sync import SyncStage

pytestmark = pytest.mark.timeout(300)
MESSAGES = 10_000
CAMERAS = ("cam1", "cam2", "cam3")
IMAGE = np.full((8, 8, 3), 9, np.uint8)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    # 100 fps: the inference stage waits at most 20 ms for a fresher frame set when one looks old.
    return synthetic_config(
        tmp_path_factory.mktemp("fuzz"), "127.0.0.1", 0, cameras=3, fps=100.0, frames=30, render=False
    )


# -- real messages -----------------------------------------------------------------------------------


def frame(camera: str, seq: int = 1, jpeg: int | None = None) -> tuple[dict[str, Any], list[Any]]:
    encoding, buf = encode_frame(IMAGE, jpeg)
    header = s.frame_message(
        camera,
        seq,
        IMAGE,
        t_capture_ns=time.monotonic_ns(),
        t_wall_ns=time.time_ns(),
        t_device_ns=seq * 10_000_000,
        encoding=encoding,
        fps=100.0,
    )
    return header, [bytes(buf)]


def frameset(seq: int = 1) -> tuple[dict[str, Any], list[Any]]:
    frames = [frame(c, seq, jpeg=90 if c == "cam2" else None) for c in CAMERAS[:2]]
    now = time.monotonic_ns()
    header = s.frameset_message(
        seq=seq,
        t_ref_ns=now,
        t_emit_ns=now,
        cameras=list(CAMERAS),
        present=[True, True, False],
        frames=[frames[0][0], frames[1][0], None],
        skew_ns=[0, 0, None],
    )
    return header, frames[0][1] + frames[1][1]


def pose() -> Pose3D:
    joints = np.linspace([0.0, 0.0, 0.1], [0.3, 0.2, 1.8], H36M17.num_joints)
    return Pose3D(
        joints=joints,
        confidence=np.full(17, 0.9),
        views=np.full(17, 2),
        support=np.ones((3, 17), bool),
        skeleton="h36m17",
        mode="tracked",
    )


def heatmaps(config: Config) -> tuple[dict[str, Any], list[Any]]:
    rig = load_rig(config.calibration.file or "")
    images = ImageSet(1, time.monotonic_ns(), [IMAGE] * 3, [{"t_device_ns": 0}] * 3)
    out = backend_from_config(config, rig).run(images, rig)
    return s.heatmaps_message(
        seq=1,
        t_capture_ns=time.monotonic_ns(),
        cameras=list(CAMERAS),
        present=[True] * 3,
        heatmaps=out.heatmaps,
        projections=out.projections,
        latency_ms={"sync": 1.0, "inference": 2.0},
        calibration_version=1,
        backend="simulated",
    )


def preview() -> tuple[dict[str, Any], list[Any]]:
    ok, jpeg = cv2.imencode(".jpg", IMAGE)
    assert ok
    header = s.preview_message(
        camera="cam1",
        seq=1,
        t_capture_ns=1,
        width=8,
        height=8,
        scale=1.0,
        joints2d=np.zeros((17, 2)),
        confidence=np.ones(17),
        crop=np.zeros((4, 2)),
    )
    return header, [jpeg.tobytes()]


def statuses() -> list[tuple[bytes, dict[str, Any]]]:
    sync = {
        "sets": 3,
        "pending": 0,
        "dropped_foreign": 1,
        "tolerance_ms": 5.0,
        "cameras": {
            c: {"received": 3, "missing": 1, "skew_ms": 0.5, "age_ms": 3.0, "fps": 100.0} for c in CAMERAS
        },
        "framesets_socket": {"sent": 3, "dropped_hwm": 0},
        "input_drops": {"cam1": {"future": 1, "malformed": 2}, "other": {"foreign": 1}},
    }
    return [
        (s.status_topic("sync"), s.status_message("sync", sync)),
        (
            s.status_topic("inference"),
            s.status_message(
                "inference",
                {"fps": 30.0, "drops": 1, "provider": "simulated", "input_drops": {"frameset": {"busy": 4}}},
            ),
        ),
        (
            s.status_topic("inference", "1"),
            s.status_message("inference", {"fps": 15.0, "drops": 0, "provider": "simulated"}, worker=1),
        ),
        (
            s.status_topic("solver"),
            s.status_message(
                "solver",
                {"fps": 30.0, "drops": 0, "live": {"vmc": {"targets": [{"target": "x", "sent": 1}]}}},
            ),
        ),
        (
            s.status_topic("grabber", "cam1"),
            s.status_message(
                "grabber",
                {"state": "running", "fps": 100.0, "dropped": 0, "frame_age_ms": 2.0},
                camera="cam1",
            ),
        ),
        (s.status_topic("recorder"), s.status_message("recorder", {"state": "idle", "take": None})),
    ]


# -- delivery ----------------------------------------------------------------------------------------


class Feed:
    """A raw PUB socket wired to one stage input; :meth:`deliver` sends one message and waits until the
    stage's socket holds it."""

    def __init__(self, endpoint: str, bind: bool, target: Any) -> None:
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        (self.sock.bind if bind else self.sock.connect)(endpoint)
        self.target = target.poll_socket()

    def deliver(self, parts: Parts, timeout_ms: int = 200) -> bool:
        self.sock.send_multipart(parts)
        return bool(self.target.poll(timeout_ms, zmq.POLLIN))

    def join(self, parts: Callable[[], Parts], step: Callable[[], Any]) -> None:
        """Send good messages until the stage gets one (a new subscription takes a moment to arrive)."""
        deadline = time.monotonic() + 10
        while not self.deliver(parts(), 50):
            assert time.monotonic() < deadline, "the stage never received a message"
        step()

    def close(self) -> None:
        self.sock.close()


def wire(topic: bytes, header: dict[str, Any], buffers: list[Any] | None = None) -> Parts:
    from crosspose.bus import encode

    return [
        bytes(memoryview(p).cast("B")) if not isinstance(p, bytes) else p
        for p in encode(topic, header, buffers or [])
    ]


def fuzz(
    feeds: list[tuple[Feed, bytes, Callable[[], tuple[dict[str, Any], list[Any]]]]],
    step: Callable[[], Any],
    seed: int,
    accepts: Callable[[bytes, Parts], bool] | None = None,
    max_accepted: int | None = None,
) -> Counter[str]:
    """Deliver ``MESSAGES`` mutants of the feeds' messages in turn, stepping the stage after each; at most
    ``max_accepted`` of those ``accepts`` lets through. A stage's exception fails with the message."""
    mutator = Mutator(seed)
    seen: Counter[str] = Counter()
    accepted = delivered = 0
    i = 0
    while delivered < MESSAGES:
        feed, topic, make = feeds[i % len(feeds)]
        i += 1
        header, buffers = make()
        parts = mutator.message(topic, header, buffers)
        if accepts is not None and max_accepted is not None and accepts(topic, parts):
            if accepted >= max_accepted:
                continue
            accepted += 1
        if not feed.deliver(parts):
            seen["not delivered"] += 1
            continue
        delivered += 1
        try:
            step()
        except Exception as err:
            raise AssertionError(f"the stage raised {err!r} on message {delivered} {parts[:2]!r}") from err
    seen["delivered"] = delivered
    seen["accepted"] = accepted
    return seen


def reasons(input_drops: dict[str, dict[str, int]]) -> set[str]:
    return {reason for counts in input_drops.values() for reason, n in counts.items() if n > 0}


# -- parsers -----------------------------------------------------------------------------------------


def parser_cases(
    config: Config,
) -> list[tuple[bytes, tuple[dict[str, Any], list[Any]], Callable[[Any], Any]]]:
    hm = heatmaps(config)
    track = Track.from_pose(pose(), id=0, seq=1, t_capture_ns=1).message()
    rig_json = dumps_rig(load_rig(config.calibration.file or ""), "crosspose").decode()
    pose_message = s.skeleton_message(
        pose(), seq=1, t_capture_ns=1, cameras=list(CAMERAS), latency_ms={"sync": 1}
    )

    def frame_and_image(m: Any) -> Any:
        parsed = s.parse_frame(m.header, m.buffers, cameras=CAMERAS)
        decode_frame(m.header, m.buffers[0])
        return parsed

    return [
        (b"frame.cam1.", frame("cam1"), frame_and_image),
        (b"frame.cam2.", frame("cam2", jpeg=90), frame_and_image),
        (b"frameset.1.", frameset(), lambda m: s.parse_frameset(m.header, m.buffers, cameras=CAMERAS)),
        (b"heatmaps.", hm, lambda m: s.parse_heatmaps(m.header, m.buffers, cameras=CAMERAS, joints=17)),
        (b"track.", track, lambda m: s.parse_track(m.header, m.buffers)),
        (b"inflight.", (s.inflight_message(worker=1, seq=2, t_capture_ns=3), []),
         lambda m: s.parse_inflight(m.header)),
        (b"skeleton.", (pose_message, []), lambda m: s.parse_skeleton(m.header)),
        (
            b"status.grabber.cam1.",
            (statuses()[4][1], []),
            lambda m: s.parse_status(m.header, m.topic, cameras=CAMERAS),
        ),
        (
            b"status.inference.1.",
            (statuses()[2][1], []),
            lambda m: s.parse_status(m.header, m.topic, cameras=CAMERAS),
        ),
        (b"preview.cam1.", preview(), lambda m: s.parse_preview(m.header, m.buffers)),
        (
            b"control.calibration.updated.",
            (s.calibration_message(1, "ab" * 32, rig_json), []),
            lambda m: s.parse_calibration(m.header),
        ),
        (
            b"control.recording.",
            (s.recording_message("start", "t1", name="a", metadata={"k": 1}), []),
            lambda m: s.parse_recording(m.header),
        ),
    ]


def test_parsers_raise_nothing_but_message_errors(config: Config) -> None:
    cases = parser_cases(config)
    mutator = Mutator(17)
    outcomes: Counter[str] = Counter()
    per_case = 2 * MESSAGES // len(cases)  # 20,000 in all
    for topic, (header, buffers), parse in cases:
        for _ in range(per_case):
            parts = mutator.message(topic, header, buffers)
            try:
                parse(decode(parts))
                outcomes["accepted"] += 1
            except MessageError as err:
                outcomes[err.reason] += 1
            except Exception as err:
                raise AssertionError(f"{topic!r}: {err!r} escaped the parser for {parts[:2]!r}") from err
    assert sum(outcomes.values()) == per_case * len(cases)
    assert {"malformed", "foreign", "oversize"} <= set(outcomes), outcomes
    assert outcomes["accepted"] > 0  # some mutants are still messages (extra keys, other good values)


# -- stages ------------------------------------------------------------------------------------------


def test_sync_survives_mutated_frames_and_counts_them_by_reason(config: Config) -> None:
    stage = SyncStage(config, status_interval_s=3600)
    feed = Feed(stage.frames.endpoint, bind=False, target=stage.frames)
    try:
        feed.join(lambda: wire(b"frame.cam1.", *frame("cam1")), lambda: stage.step(0))
        grabber = statuses()[4][1]
        feeds = [
            (feed, f"frame.{c}.".encode(), lambda c=c: frame(c, jpeg=90 if c == "cam3" else None))
            for c in CAMERAS
        ]
        feeds.append((feed, b"status.grabber.cam1.", lambda: (grabber, [])))
        seen = fuzz(feeds, lambda: stage.step(0), seed=1)
        assert seen["delivered"] >= MESSAGES
        # Still assembling: a good frame of every camera makes a set.
        for c in CAMERAS:
            time.sleep(0.002)
            assert feed.deliver(wire(f"frame.{c}.".encode(), *frame(c, seq=10**6)))
            stage.step(0)
        deadline = time.monotonic() + 5
        while stage.assembler.sets_emitted == 0 or stage.assembler.pending:
            stage.step(5)
            assert time.monotonic() < deadline, "sync stopped assembling after the fuzz"
        drops = stage.status()["input_drops"]
        assert {"malformed", "foreign", "future", "stale"} <= reasons(drops), drops
        assert set(drops) <= {*CAMERAS, "other"}  # sources never come from what the messages say
    finally:
        feed.close()
        stage.close()


def test_inference_survives_mutated_framesets_tracks_and_control(config: Config) -> None:
    # Worker 1 of several: its own frame-set topic, its own status topic.
    stage = InferenceStage(config, worker=1)
    bus = config.bus
    framesets = Feed(bus.framesets_endpoint, bind=True, target=stage.framesets)
    tracks = Feed(bus.skeletons_endpoint, bind=True, target=stage.tracks)
    control = Feed(bus.control_endpoint, bind=True, target=stage.control)
    track = Track.from_pose(pose(), id=0, seq=1, t_capture_ns=1).message()
    calibration = s.calibration_message(1, "ab" * 32, dumps_rig(stage.rig, "crosspose").decode())
    try:
        framesets.join(lambda: wire(b"frameset.1.", *frameset()), lambda: stage.step(0))
        tracks.join(lambda: wire(b"track.", *track), lambda: stage.step(0))
        control.join(lambda: wire(b"control.calibration.updated.", calibration), lambda: stage.step(0))

        def accepts(topic: bytes, parts: Parts) -> bool:
            if topic != b"frameset.1.":
                return False
            try:
                msg = decode(parts)
                s.parse_frameset(msg.header, msg.buffers, cameras=CAMERAS)
            except MessageError:
                return False
            return True

        seen = fuzz(
            [
                (framesets, b"frameset.1.", frameset),
                (framesets, b"frameset.1.", frameset),
                (tracks, b"track.", lambda: track),
                (control, b"control.calibration.updated.", lambda: (calibration, [])),
            ],
            lambda: stage.step(0),
            seed=2,
            accepts=accepts,
            max_accepted=300,
        )
        assert seen["delivered"] >= MESSAGES
        assert framesets.deliver(wire(b"frameset.1.", *frameset(seq=10**6)))
        sent = stage.step(0)
        assert sent is not None, "inference stopped producing heatmaps after the fuzz"
        assert sent["seq"] == 10**6
        drops = stage.payload()["input_drops"]
        assert {"frameset", "track", "control"} <= set(drops), drops
        assert {"malformed", "foreign"} <= reasons(drops), drops
    finally:
        for feed in (framesets, tracks, control):
            feed.close()
        stage.close()


def test_solver_survives_mutated_heatmaps(config: Config) -> None:
    stage = SolverStage(config)  # binds: the inference workers connect
    feed = Feed(config.bus.heatmaps_endpoint, bind=False, target=stage.heatmaps)
    good = heatmaps(config)
    try:
        feed.join(lambda: wire(b"heatmaps.", *good), lambda: stage.step(0))

        def accepts(topic: bytes, parts: Parts) -> bool:
            try:
                msg = decode(parts)
                s.parse_heatmaps(msg.header, msg.buffers, cameras=CAMERAS, joints=17)
            except MessageError:
                return False
            return True

        seen = fuzz(
            [(feed, b"heatmaps.", lambda: good)],
            lambda: stage.step(0),
            seed=3,
            accepts=accepts,
            max_accepted=60,
        )
        assert seen["delivered"] >= MESSAGES
        time.sleep(0.2)  # past any mutant stamped within the solver's tolerance of the future
        assert feed.deliver(wire(b"heatmaps.", *heatmaps(config)))  # a new set: captured now
        assert stage.step(0) is not None, "the solver stopped solving after the fuzz"
        drops = stage.payload()["input_drops"]
        # stale: the accepted mutants carry the capture time of a set already published.
        assert {"malformed", "foreign", "stale"} <= reasons(drops), drops
    finally:
        feed.close()
        stage.close()


@pytest.fixture
def bridge(config: Config) -> Iterator[BusBridge]:
    bridge = BusBridge(config, build_state(config))  # its thread is not started: the test steps it
    try:
        yield bridge
    finally:
        bridge.close()


def test_api_bridge_survives_mutated_skeletons_statuses_and_previews(
    config: Config, bridge: BusBridge
) -> None:
    skeletons = Feed(config.bus.skeletons_endpoint, bind=True, target=bridge.skeletons)
    status = Feed(bridge.status.endpoint, bind=False, target=bridge.status)
    skeleton = s.skeleton_message(
        pose(), seq=1, t_capture_ns=1, cameras=list(CAMERAS), latency_ms={"sync": 1}
    )
    try:
        skeletons.join(lambda: wire(b"skeleton.", skeleton), lambda: bridge.step(0))
        status.join(lambda: wire(*statuses()[0]), lambda: bridge.step(0))
        feeds: list[tuple[Feed, bytes, Callable[[], tuple[dict[str, Any], list[Any]]]]] = [
            (skeletons, b"skeleton.", lambda: (skeleton, []))
        ]
        feeds += [(status, topic, lambda h=h: (h, [])) for topic, h in statuses()]
        feeds.append((status, b"preview.cam1.", preview))
        seen = fuzz(feeds, lambda: bridge.step(0), seed=4)
        assert seen["delivered"] >= MESSAGES
        before = bridge.forwarded
        assert skeletons.deliver(wire(b"skeleton.", skeleton))
        bridge.step(0)
        assert bridge.forwarded == before + 1, "the bridge stopped forwarding skeletons after the fuzz"
        drops = bridge.input_drops()
        assert {"skeleton", "status", "preview"} <= set(drops), drops
        assert {"malformed", "foreign"} <= reasons(drops), drops
    finally:
        skeletons.close()
        status.close()
