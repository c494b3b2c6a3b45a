"""Several performers between the live stages (``capture.max_persons`` > 1): the heatmaps message's
``persons`` fields checked by the schema's parser, and the solver stage over real sockets solving each
performer with their own state, one track per performer back, the skeleton message's ``persons`` list,
the capture volume enforced and the heartbeat's person counts."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from crosspose.bus import SKELETON, TRACK, MessageError, Publisher, Subscriber, decode, encode
from crosspose.bus.schema import HEATMAPS, heatmaps_message, parse_heatmaps, parse_track
from crosspose.calibration import load_rig
from crosspose.config import Config, ConfigError, config_from_dict
from crosspose.core import BackendOutput, ImageSet, backend_from_config
from crosspose.inference.association import Volume
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.persons_bus import newest_tracks, persons_extra, read_persons, volume_field, volume_of
from crosspose.runtime.solver_stage import SolverStage
from crosspose.runtime.workers import worker_count

pytestmark = pytest.mark.timeout(120)
PERIOD_NS = 33_000_000
SHIFT = np.array([1.2, 0.0, 0.0])  # metres: the second performer, the first one moved aside
J = 32  # the default layout's joints (the synthetic studio's solver)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    base = synthetic_config(tmp_path_factory.mktemp("persons"), "127.0.0.1", 0, cameras=3, frames=5,
                            render=False)  # fmt: skip
    return base.model_copy(update={"capture": base.capture.model_copy(update={"max_persons": 2})})


def _outputs(config: Config, seq: int) -> list[tuple[int, BackendOutput]]:
    """Simulated heatmaps of the studio's performer (id 0) and of the same body moved by :data:`SHIFT`
    (id 1: its projections see the world shifted back)."""
    rig = load_rig(config.calibration.file or "")
    image = np.zeros((8, 8, 3), np.uint8)
    out = backend_from_config(config, rig, seed=seq).run(ImageSet(seq, 0, [image] * 3, [{}] * 3), rig)
    move = np.eye(4)
    move[:3, 3] = -SHIFT
    projections = (out.projections.astype(np.float64) @ move).astype(np.float32)
    shifted = BackendOutput(out.heatmaps, projections, {}, [])
    return [(0, out), (1, shifted)]


def _message(config: Config, seq: int, t0: int, volume: Volume | None) -> tuple[dict[str, Any], list[Any]]:
    outputs = _outputs(config, seq)
    main = outputs[0][1]
    fields, more = persons_extra(outputs[1:], 0, volume)
    header, buffers = heatmaps_message(
        seq=seq, t_capture_ns=t0 + seq * PERIOD_NS, cameras=config.camera_names, present=[True] * 3,
        heatmaps=main.heatmaps, projections=main.projections, latency_ms={"sync": 1.0}, calibration_version=1,
        backend="simulated", extra=fields)  # fmt: skip
    return header, [*buffers, *more]


def test_every_persons_heatmaps_cross_the_wire_checked(config: Config) -> None:
    volume = Volume(np.array([-3.0, -3, 0]), np.array([3.0, 3, 2.5]))
    header, buffers = _message(config, 1, 0, volume)
    parts = encode(HEATMAPS, header, buffers)
    assert len(parts[1]) < 16_384  # the header stays small: the arrays travel as buffers (1 MiB header limit)
    msg = decode(parts)
    assert len(msg.buffers) == 4  # the message's own two, then the other performer's
    main = parse_heatmaps(msg.header, msg.buffers[:2], cameras=config.camera_names, joints=J)
    persons = read_persons(msg.header, msg.buffers, main, cameras=config.camera_names, joints=J)
    assert [id for id, _ in persons] == [0, 1]
    want = _outputs(config, 1)[1][1]
    np.testing.assert_allclose(persons[1][1].heatmaps, want.heatmaps, atol=1e-3)  # float16 on the wire
    np.testing.assert_allclose(persons[1][1].projections, want.projections, rtol=1e-6)
    back = volume_of(msg.header)
    assert back is not None
    np.testing.assert_array_equal(back.hi, volume.hi)
    # A performer's arrays are checked as the message's own: a wrong joint count is foreign.
    wrong = {"dtype": "<f2", "shape": [3, 5, 64, 64]}
    bad = dict(msg.header, persons=[dict(msg.header["persons"][0], heatmaps=wrong)])
    with pytest.raises(MessageError):
        read_persons(bad, msg.buffers, main, cameras=config.camera_names, joints=J)
    twice = dict(msg.header, person=1)
    with pytest.raises(ValueError, match="repeat"):
        read_persons(twice, msg.buffers, main, cameras=config.camera_names, joints=J)
    with pytest.raises(ValueError, match="3 buffers"):
        read_persons(msg.header, msg.buffers[:3], main, cameras=config.camera_names, joints=J)


def test_several_persons_run_in_one_worker(config: Config) -> None:
    assert worker_count(config, cores=16, gpu=False) == 1
    cameras = [{"name": "a", "source": "0"}]
    with pytest.raises(ConfigError, match=r"inference\.workers 2 with capture\.max_persons 2"):
        config_from_dict({"cameras": cameras, "capture": {"max_persons": 2}, "inference": {"workers": 2}})


def test_the_solver_solves_each_person_and_sends_each_track_back(config: Config) -> None:
    stage = SolverStage(config)  # binds the heatmaps endpoint
    worker = Publisher(config.bus.heatmaps_endpoint, bind=False, hwm=4)
    skeletons = Subscriber(config.bus.skeletons_endpoint, [SKELETON], bind=False, hwm=100)
    tracks = Subscriber(config.bus.skeletons_endpoint, [TRACK], bind=False, hwm=100)
    t0 = time.monotonic_ns() - 10**9
    everywhere = Volume(np.array([-5.0, -5, 0]), np.array([5.0, 5, 2.5]))
    try:
        deadline = time.monotonic() + 10
        while not worker.wait_for_subscriber(0.02):
            stage.step(0)
            assert time.monotonic() < deadline, "the worker never connected"
        time.sleep(0.2)  # the subscribers' connections
        messages = []
        for seq in (1, 2, 3):
            assert worker.send(HEATMAPS, *_message(config, seq, t0, everywhere))
            message = stage.step(2000)
            assert message is not None
            messages.append(message)
        for message in messages:
            assert [p["id"] for p in message["persons"]] == [0, 1]
            assert message["joints"] == message["persons"][0]["joints"]  # one-person clients read id 0
            pelvis = [np.array(p["joints"][0][:3], float) for p in message["persons"]]
            np.testing.assert_allclose(pelvis[1] - pelvis[0], SHIFT, atol=0.05)
        assert messages[-1]["persons"][1]["mode"] == "tracked"  # each with their own tracking state
        got = []
        while (msg := tracks.recv(500)) is not None:
            got.append(parse_track(msg.header, msg.buffers))
        assert sorted((t.seq, t.id) for t in got)[-2:] == [(3, 0), (3, 1)]
        payload = stage.payload()
        assert (payload["persons"], payload["ids_started"], payload["ids_ended"]) == (2, 2, 0)

        # Performer 1 outside the capture volume: not reported, and its track goes back lost.
        narrow = Volume(np.array([-0.8, -5, 0]), np.array([0.8, 5, 2.5]))
        root = np.array(messages[-1]["persons"][0]["joints"][0][:3], float)
        assert narrow.contains(root)
        assert not narrow.contains(root + SHIFT)
        assert worker.send(HEATMAPS, *_message(config, 4, t0, narrow))
        message = stage.step(2000)
        assert message is not None
        assert [p["id"] for p in message["persons"]] == [0]
        got = []
        while (msg := tracks.recv(500)) is not None:
            got.append(parse_track(msg.header, msg.buffers))
        from crosspose.core import Track

        newest = newest_tracks([Track.from_message(t) for t in got])
        assert sorted(newest) == [0, 1]
        assert newest[0] is not None
        assert newest[1] is None
        assert stage.payload()["persons"] == 1
    finally:
        for sock in (worker, skeletons, tracks):
            sock.close()
        stage.close()


def _black_frameset(config: Config) -> Any:
    """One frame set of black 8x8 frames from every camera of ``config``, as the sync stage sends it."""
    from crosspose.bus import Message
    from crosspose.bus.schema import frame_message, frameset_message
    from crosspose.capture import encode_frame

    names = config.camera_names
    image = np.zeros((8, 8, 3), np.uint8)
    encoding, buf = encode_frame(image, None)
    now = time.monotonic_ns()
    frames = [frame_message(n, 1, image, t_capture_ns=now, t_wall_ns=time.time_ns(), t_device_ns=None,
                            encoding=encoding, fps=30.0) for n in names]  # fmt: skip
    header = frameset_message(seq=1, t_ref_ns=now, t_emit_ns=now, cameras=names, present=[True] * len(names),
                              frames=frames, skew_ns=[0] * len(names))  # fmt: skip
    return Message(b"frameset.0.", header, [memoryview(buf)] * len(names))


def test_the_inference_stage_sends_the_persons_fields(config: Config) -> None:
    """The simulated backend follows the studio's one performer (id 0): its heatmaps are the message's own,
    no other performer travels in the header, and no capture volume (nothing to enforce)."""
    from crosspose.runtime.inference_stage import InferenceStage

    stage = InferenceStage(config)
    try:
        sent = stage._process(_black_frameset(config))
        assert sent is not None
        assert (sent["person"], sent["persons"], sent["volume"]) == (0, [], None)
    finally:
        stage.close()


def test_one_performer_outside_the_volume_is_not_published_and_is_counted(config: Config) -> None:
    """``capture.max_persons`` 1: the heatmaps message carries the capture volume without ``persons``; the
    solver publishes its one performer only while their root is inside it, else nobody (the track goes back
    lost, so inference searches again), and counts it."""
    single = config.model_copy(update={"capture": config.capture.model_copy(update={"max_persons": 1})})
    stage = SolverStage(single)
    worker = Publisher(single.bus.heatmaps_endpoint, bind=False, hwm=4)
    tracks = Subscriber(single.bus.skeletons_endpoint, [TRACK], bind=False, hwm=100)
    t0 = time.monotonic_ns() - 10**9

    def message(seq: int, volume: Volume | None) -> tuple[dict[str, Any], list[Any]]:
        out = _outputs(single, seq)[0][1]
        header, buffers = heatmaps_message(
            seq=seq, t_capture_ns=t0 + seq * PERIOD_NS, cameras=single.camera_names, present=[True] * 3,
            heatmaps=out.heatmaps, projections=out.projections, latency_ms={}, calibration_version=1,
            backend="simulated", extra={"volume": volume_field(volume)})  # fmt: skip
        return header, buffers

    try:
        deadline = time.monotonic() + 10
        while not worker.wait_for_subscriber(0.02):
            stage.step(0)
            assert time.monotonic() < deadline, "the worker never connected"
        time.sleep(0.2)
        assert worker.send(HEATMAPS, *message(1, None))
        first = stage.step(2000)
        assert first is not None
        root = np.array(first["persons"][0]["joints"][0][:3], float)
        around = Volume(root - 1.0, root + np.array([1.0, 1.0, 1.5]))
        assert worker.send(HEATMAPS, *message(2, around))
        inside = stage.step(2000)
        assert inside is not None
        assert [p["id"] for p in inside["persons"]] == [0]
        elsewhere = Volume(root + 2.0, root + 3.0)  # the performer is outside it
        assert worker.send(HEATMAPS, *message(3, elsewhere))
        outside = stage.step(2000)
        assert outside is not None
        assert outside["persons"] == []
        assert outside["mode"] == "lost"
        assert all(j[0] is None for j in outside["joints"])
        got = []
        while (msg := tracks.recv(500)) is not None:
            got.append(parse_track(msg.header, msg.buffers))
        last = max(got, key=lambda t: t.seq)
        assert (last.seq, last.id) == (3, 0)
        assert not np.isfinite(last.joints).any()  # lost: inference searches again
        assert (stage.payload()["outside_volume"], stage.payload()["persons"]) == (1, 0)
        # The next set inside is searched cold (the previous pose was forgotten), and published again.
        assert worker.send(HEATMAPS, *message(4, around))
        again = stage.step(2000)
        assert again is not None
        assert again["mode"] == "cold"
        assert [p["id"] for p in again["persons"]] == [0]
        # A malformed volume is refused and counted, never solved.
        header, buffers = message(5, around)
        assert worker.send(HEATMAPS, dict(header, volume=[[0, 0, 0], [0, 0]]), buffers)
        assert stage.step(2000) is None
        assert stage.payload()["input_drops"]["heatmaps"]["malformed"] == 1
    finally:
        for sock in (worker, tracks):
            sock.close()
        stage.close()


def test_the_inference_stage_of_one_performer_sends_the_volume_field(config: Config) -> None:
    from crosspose.runtime.inference_stage import InferenceStage

    single = config.model_copy(update={"capture": config.capture.model_copy(update={"max_persons": 1})})
    stage = InferenceStage(single)
    try:
        sent = stage._process(_black_frameset(single))
        assert sent is not None
        assert sent["volume"] is None  # the simulated backend finds nobody: no volume to enforce
        assert "persons" not in sent  # one performer: the message's own arrays only
    finally:
        stage.close()


def test_a_performers_late_track_is_not_used_after_a_newer_one() -> None:
    """The solver sends one track message per performer: performer 1's track of set 5 arriving after both
    tracks of set 6 were used is dropped (their crops would come from an older pose), as is anything no newer
    than what each id last got; a new set's tracks, and a lost one, still go through."""
    from crosspose.core import Track
    from crosspose.runtime.persons_bus import FORGET_FED_SETS, fresh_tracks, lost_track

    def track(id: int, seq: int) -> Track:
        joints = np.zeros((17, 3)) + id
        return Track(id=id, seq=seq, t_capture_ns=seq, joints=joints, views=np.full(17, 2),
                     confidence=np.ones(17), skeleton="h36m17")

    fed: dict[int, int] = {}
    assert sorted(fresh_tracks([track(0, 5)], fed)) == [0]  # performer 1's track of set 5 is late
    got = fresh_tracks([track(0, 6), track(1, 6)], fed)
    assert sorted(got) == [0, 1]
    assert all(t is not None and t.seq == 6 for t in got.values())
    assert fresh_tracks([track(1, 5)], fed) == {}  # late: dropped (newest_tracks alone would take it)
    assert fresh_tracks([track(0, 6)], fed) == {}  # the same again
    got = fresh_tracks([track(1, 7), lost_track(0, 7, 7, "h36m17", 17)], fed)
    assert got[0] is None
    assert got[1] is not None
    assert got[1].seq == 7
    assert fed == {0: 7, 1: 7}
    fresh_tracks([track(2, 8 + FORGET_FED_SETS)], fed)  # ids 0 and 1 ended long ago: forgotten
    assert fed == {2: 8 + FORGET_FED_SETS}
