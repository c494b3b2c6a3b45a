"""Replay of a take of two performers (issue 21): Pose2Sim's real multi-person clip (two performers on the
platform, a bystander behind them) recorded through the live inference and solver stages over real
sockets, then replayed: each performer re-solved with their own state, the take's ids kept, and the
comparison per performer. The network is the eager torch one (CI has no exported ONNX file).

The live side ran before the take started and its performers were reset (a calibration of another frame
size does that), so the take's ids are 2 and 3 while the replay, starting cold, hands out 0 and 1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from crosspose.bus import SKELETON, Message, Subscriber
from crosspose.bus.schema import frame_message, frameset_message
from crosspose.calibration import load_rig, save_rig
from crosspose.capture import encode_frame
from crosspose.config import Config
from crosspose.core import HeatmapStep, NetworkBackend
from crosspose.inference.pipeline import FramePipeline
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.recording import Take, TakeWriter
from crosspose.recording.replay import compare, replay
from crosspose.runtime.demo import pose2sim_config
from crosspose.runtime.inference_stage import InferenceStage
from crosspose.runtime.solver_stage import SolverStage

pytestmark = [pytest.mark.network, pytest.mark.timeout(900)]
VIDEOS = ("pose2sim-0.10.49", "Pose2Sim/Demo_MultiPerson/videos")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt")
WARMUP, TAKE = 2, 4  # frame sets the live side runs before the take, and in it
PERIOD_NS = 1_000_000_000 // 60  # the clip's 60 fps


@pytest.fixture(scope="module")
def clip() -> tuple[Path, list[list[np.ndarray]]]:
    """The calibration and the clip's first frame sets at the demo's size (960 x 540, as its grabbers)."""
    from crosspose import assets

    for c in range(1, 5):
        video = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    calibration = assets.extract(*CALIBRATION)
    rig = load_rig(calibration)
    sets = []
    with SyncedVideos(video_files(video.parent, rig.names), WARMUP + TAKE) as frames:
        for images in frames:
            assert all(image is not None for image in images)
            sets.append([cv2.resize(image, (540, 960), interpolation=cv2.INTER_AREA) for image in images])
    return calibration, sets


def _network() -> Any:
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network
    from crosspose.skeleton import BODY32

    return TorchRunner(build_fusion_network(skeleton=BODY32))


def _backend(rig: Any, network: Any) -> NetworkBackend:
    return NetworkBackend(FramePipeline(rig, network, max_persons=2))


def _frameset(seq: int, images: list[np.ndarray], names: list[str],
              t_ns: int) -> tuple[dict[str, Any], list[Any]]:
    """A frame set as sync publishes it: each camera's frame JPEG-encoded (quality 90, as the demo's
    grabbers send them)."""
    frames, buffers = [], []
    for name, image in zip(names, images, strict=True):
        encoding, buf = encode_frame(image, 90)
        frames.append(frame_message(name, seq, image, t_capture_ns=t_ns, t_wall_ns=time.time_ns(),
                                    t_device_ns=seq * PERIOD_NS, encoding=encoding, fps=60.0))
        buffers.append(bytes(buf))
    header = frameset_message(seq=seq, t_ref_ns=t_ns, t_emit_ns=time.monotonic_ns(), cameras=names,
                              present=[True] * len(names), frames=frames, skew_ns=[0] * len(names))
    return header, buffers


def _record(tmp_path: Path, calibration: Path, sets: list[list[np.ndarray]]) -> Take:
    """The live stages over real sockets (inference → heatmaps → solver → skeleton and tracks back), the
    take written from what sync and the solver publish."""
    config = pose2sim_config(tmp_path / "work", "127.0.0.1", 0, multi=True)
    config = Config.model_validate({**config.model_dump(mode="json", by_alias=True),
                                    "calibration": {"file": None, "store": str(tmp_path / "store")}})
    rig = load_rig(calibration)
    save_rig(rig, tmp_path / "rig.json")
    names = list(config.camera_names)
    assert names == list(rig.names)
    solver = SolverStage(config)  # binds the heatmaps endpoint
    inference = InferenceStage(config)  # no calibration in its store: given here, with the torch network
    inference.rig, inference.calibration_version = rig, 1
    inference.heatmap_step = HeatmapStep(_backend(rig, _network()), rig)
    # The performers' tracks of a set come as one message each: the stage feeds what has arrived. Which ids
    # of which set it fed, so the next set waits for all of them (as on a host where they come in time).
    fed: dict[int, set[int]] = {}
    feed = inference.heatmap_step.feedback_persons

    def spy(tracks: dict[int, Any]) -> None:
        for id, track in tracks.items():
            if track is not None:
                fed.setdefault(track.seq, set()).add(id)
        feed(tracks)

    inference.heatmap_step.feedback_persons = spy  # type: ignore[method-assign]
    skeletons = Subscriber(config.bus.skeletons_endpoint, [SKELETON], bind=False, hwm=100)
    writer = None
    try:
        deadline = time.monotonic() + 20
        while not inference.out.wait_for_subscriber(0.02):
            solver.step(0)
            assert time.monotonic() < deadline, "inference never connected to the solver"
        time.sleep(0.3)  # the subscribers' connections
        t0 = time.monotonic_ns() - 5 * 10**9
        for i, images in enumerate(sets):
            if i == WARMUP:  # the take starts; the live performers were reset before it (new ids)
                pipeline = inference.heatmap_step.backend.pipeline  # type: ignore[attr-defined]
                assert pipeline.ids == [0, 1]
                pipeline.reset()
                writer = TakeWriter(tmp_path / "takes" / "duo", take_id="duo", name="duo", metadata={},
                                    cameras=names, config=config.model_dump(mode="json", by_alias=True))
                writer.set_calibration(1, None, (tmp_path / "rig.json").read_text())
            t_ns = t0 + i * PERIOD_NS
            header, buffers = _frameset(i, images, names, t_ns)
            sent = inference._process(Message(b"frameset.0.", header, [memoryview(b) for b in buffers]))
            assert sent is not None
            published = solver.step(30_000)
            assert published is not None
            # Every reported performer's track reaches inference before the next frame set (as a replay
            # feeds them back at once).
            while not {p["id"] for p in published["persons"]} <= fed.get(i, set()):
                inference._feedback_persons()
                assert time.monotonic() < deadline + 600, "the tracks never came back"
            if writer is not None:
                writer.add_frameset(header, buffers)
                message = skeletons.recv(5000)
                while message is not None and message.header["seq"] < i:
                    message = skeletons.recv(5000)
                assert message is not None
                writer.add_skeleton({k: v for k, v in message.header.items() if k not in ("v", "n_buffers")})
    finally:
        if writer is not None:
            writer.close()
        for sock in (skeletons,):
            sock.close()
        inference.close()
        solver.close()
    return Take(tmp_path / "takes" / "duo")


def test_a_take_of_two_performers_replays_each_with_the_recorded_ids(tmp_path: Path, clip: Any) -> None:
    calibration, sets = clip
    take = _record(tmp_path, calibration, sets)
    recorded = take.skeleton_messages()
    assert [m["seq"] for m in recorded] == list(range(WARMUP, WARMUP + TAKE))
    assert take.persons() == [2, 3]
    assert all([p["id"] for p in m["persons"]] == [2, 3] for m in recorded)

    rig = load_rig(take.calibration_files()[0])
    replayed = replay(take, backend=_backend(rig, _network()))
    assert [m["seq"] for m in replayed] == [m["seq"] for m in recorded]
    for mine, theirs in zip(replayed, recorded, strict=True):
        assert [p["id"] for p in mine["persons"]] == [2, 3]  # the take's ids, not the replay's own 0 and 1
        assert mine["joints"] == mine["persons"][0]["joints"]  # the top level: the lowest id, as live
        for a, b in zip(mine["persons"], theirs["persons"], strict=True):
            pa, pb = (np.array(p["joints"][0][:3], float) for p in (a, b))
            assert np.linalg.norm(pa - pb) < 0.02, (mine["seq"], a["id"], pa, pb)
    cmp = compare(replayed, recorded)
    print(cmp.text())
    assert cmp.common == TAKE
    assert cmp.identical  # the stages' own code, the same inputs: the live stream to 0.1 mm
    assert cmp.same_ids == TAKE
    assert [(p.id, p.recorded, p.replayed, p.both) for p in cmp.persons] == [(2, TAKE, TAKE, TAKE),
                                                                            (3, TAKE, TAKE, TAKE)]
    assert all(p.median_m < 0.01 for p in cmp.persons), cmp.text()
    assert "person 2:" in cmp.text()
    assert "person 3:" in cmp.text()
    # Two different people: their pelvises ~1 m apart on the platform (the man at x < -0.5 m).
    pelvis = {p["id"]: np.array(p["joints"][0][:3], float) for p in replayed[0]["persons"]}
    assert np.linalg.norm(pelvis[2] - pelvis[3]) > 0.5
