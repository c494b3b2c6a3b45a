"""The take format: round trip, counters, exports, a truncated tail, a write error and a size cap."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from recording_helpers import CAMERAS, frameset, image, skeleton

from crosspose.io.trc import read_trc
from crosspose.recording import Take, TakeError, TakeStore, TakeWriteError, TakeWriter, check_name
from crosspose.recording.export import export_take
from crosspose.recording.log import RecordWriter, read_records
from crosspose.recording.take import skeleton_stream
from crosspose.skeleton import Skeleton


def write_take(folder: Path, n: int = 10, **kwargs: Any) -> dict[str, Any]:
    w = TakeWriter(
        folder,
        take_id=folder.name,
        name="walk 01",
        metadata={"actor": "A"},
        cameras=CAMERAS,
        config={"cameras": []},
        **kwargs,
    )
    w.set_calibration(3, "abc", '{"cameras": []}')
    for seq in range(n):
        w.add_frameset(*frameset(seq))
        w.add_skeleton(skeleton(seq))
    return w.close()


def test_round_trip_keeps_frames_timestamps_and_skeletons(tmp_path: Path) -> None:
    manifest = write_take(tmp_path / "t1", frames="png")
    assert manifest["state"] == "stopped"
    assert manifest["error"] is None
    take = Take(tmp_path / "t1")
    sets = list(take.framesets())
    assert [s.header["seq"] for s in sets] == list(range(10))
    for s in sets:
        imgs = s.images()
        for i, img in enumerate(imgs):
            assert img is not None
            np.testing.assert_array_equal(img, image(s.header["seq"], i))  # png: lossless
        for i, fh in enumerate(s.header["frames"]):
            assert fh["camera"] == CAMERAS[i]
            assert fh["seq"] == s.header["seq"]
            assert {"t_capture_ns", "t_wall_ns", "t_device_ns"} <= set(fh)
    stream = take.skeletons()
    assert stream.joints.shape == (10, 17, 3)
    assert stream.confidence.shape == (10, 17)
    assert np.isnan(stream.joints[:, 3]).all()
    assert (stream.views == 3).all()
    summary = take.summary()
    assert summary["framesets"] == 10
    assert summary["frames"] == {c: 10 for c in CAMERAS}
    assert summary["skeletons"] == 10
    assert summary["framesets_lost"] == 0
    assert summary["calibration_versions"] == [3]
    assert summary["duration_s"] == pytest.approx(9 / 30, abs=1e-6)
    assert summary["size_bytes"] > 0
    assert (tmp_path / "t1" / "calibration" / "v3.json").read_text() == '{"cameras": []}'
    assert json.loads((tmp_path / "t1" / "config.json").read_text()) == {"cameras": []}


def test_jpeg_frames_are_stored_as_received_raw_ones_encoded(tmp_path: Path) -> None:
    w = TakeWriter(tmp_path / "t", take_id="t", name="t", metadata=None, cameras=CAMERAS, jpeg_quality=95)
    h, bufs = frameset(0, jpeg=True)
    w.add_frameset(h, bufs)
    w.add_frameset(*frameset(1))
    w.close()
    sets = list(Take(tmp_path / "t").framesets())
    assert sets[0].data == bufs  # byte for byte what the grabber sent
    assert [f["stored"] for f in sets[1].header["frames"]] == ["jpeg"] * 3
    err = np.abs(sets[1].images()[0].astype(int) - image(1, 0).astype(int))  # type: ignore[union-attr]
    assert err.mean() < 3.0  # high-quality JPEG of a raw frame


def test_counters_report_lost_sets_missing_views_and_camera_gaps(tmp_path: Path) -> None:
    w = TakeWriter(tmp_path / "t", take_id="t", name="t", metadata=None, cameras=CAMERAS, frames="none")
    w.add_frameset(*frameset(0, cam_seq=0))
    w.add_frameset(*frameset(1, missing=("cam1",), cam_seq=1))
    w.add_frameset(*frameset(4, cam_seq=5))  # sets 2, 3 never reached the recorder; frames 2-4 lost
    m = w.close()
    assert m["framesets"]["received"] == 3
    assert m["framesets"]["written"] == 3
    assert m["framesets"]["lost"] == 2
    assert m["cameras_frames"]["cam1"] == {"written": 2, "missing_in_sets": 1, "seq_gaps": 4}
    assert m["cameras_frames"]["cam0"] == {"written": 3, "missing_in_sets": 0, "seq_gaps": 3}


def test_a_truncated_tail_is_skipped_and_everything_before_reads(tmp_path: Path) -> None:
    write_take(tmp_path / "t", n=5, frames="none")
    path = tmp_path / "t" / "framesets.rec"
    data = path.read_bytes()
    path.write_bytes(data + data[: len(data) // 7])  # a record cut mid-write
    with open(tmp_path / "t" / "skeletons.jsonl", "ab") as f:
        f.write(b'{"seq": 99, "joi')
    take = Take(tmp_path / "t")
    assert len(list(take.framesets())) == 5
    assert take.last_read.truncated
    assert len(take.skeleton_messages()) == 5
    # A writer appending after a clean end keeps the earlier records readable.
    w = RecordWriter(tmp_path / "log.rec")
    w.append({"a": 1}, [b"xyz"])
    w.close()
    assert [(h, b) for h, b in read_records(tmp_path / "log.rec")] == [({"a": 1}, [b"xyz"])]


def add_sets(w: TakeWriter, seqs: range) -> None:
    for seq in seqs:
        w.add_frameset(*frameset(seq))


class FailingFile:
    """A file whose writes fail with ENOSPC after ``budget`` bytes (a simulated full disk)."""

    def __init__(self, real: object, budget: int) -> None:
        self.real, self.budget = real, budget

    def write(self, data: bytes) -> int:
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(28, "No space left on device (simulated)")
        return self.real.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_a_write_error_fails_the_take_cleanly_and_it_stays_readable(tmp_path: Path) -> None:
    w = TakeWriter(tmp_path / "t", take_id="t", name="t", metadata=None, cameras=CAMERAS, frames="none")
    for seq in range(3):
        w.add_frameset(*frameset(seq))
    w.flush()
    w._sets._f = FailingFile(w._sets._f, budget=1500)  # type: ignore[assignment]
    with pytest.raises(TakeWriteError, match="No space left"):
        add_sets(w, range(3, 100))
    m = w.close("failed", "No space left on device (simulated)")
    assert m["state"] == "failed"
    take = Take(tmp_path / "t")
    assert take.manifest["state"] == "failed"
    assert "No space" in take.manifest["error"]
    assert len(list(take.framesets())) >= 3


def test_the_size_cap_stops_the_take(tmp_path: Path) -> None:
    w = TakeWriter(tmp_path / "t", take_id="t", name="t", metadata=None, cameras=CAMERAS, max_bytes=60_000)
    with pytest.raises(TakeWriteError, match="size cap"):
        add_sets(w, range(1000))
    assert w.bytes <= 60_000
    w.close("failed", "cap")


def test_exports_jsonl_trc_zip_and_bad_format(tmp_path: Path) -> None:
    write_take(tmp_path / "store" / "t", n=6)
    take = TakeStore(tmp_path / "store").get("t")
    lines = export_take(take, "jsonl", tmp_path / "t.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(6))
    trc = read_trc(export_take(take, "trc", tmp_path / "t.trc"))
    assert trc.num_frames == 6
    assert trc.markers[0] == "pelvis"
    assert trc.rate == pytest.approx(30.0)
    np.testing.assert_allclose(trc.frames[:, 0], take.skeletons().joints[:, 0], atol=1e-9)
    with zipfile.ZipFile(export_take(take, "zip", tmp_path / "t.zip")) as z:
        assert {"t/manifest.json", "t/framesets.rec", "t/skeletons.jsonl", "t/calibration/v3.json"} <= set(
            z.namelist()
        )
    with pytest.raises(TakeError, match="not one of"):
        export_take(take, "mp4", tmp_path / "x")


def test_motion_exports_when_the_motion_writer_is_there(tmp_path: Path) -> None:
    motion = pytest.importorskip("crosspose.motion")
    if not hasattr(motion, "write_motion"):
        pytest.skip("crosspose.motion.write_motion is not there yet (bvh/c3d export waits for it)")
    write_take(tmp_path / "store" / "t", n=6)
    take = TakeStore(tmp_path / "store").get("t")
    for fmt in ("bvh", "c3d"):
        assert export_take(take, fmt, tmp_path / f"t.{fmt}").stat().st_size > 0


def test_names_and_ids_are_checked(tmp_path: Path) -> None:
    assert check_name("walk 01") == "walk 01"
    for bad in ("", "../x", "a/b", " lead", "x" * 65):
        with pytest.raises(TakeError):
            check_name(bad)
    store = TakeStore(tmp_path)
    with pytest.raises(TakeError):
        store.get("../etc")
    with pytest.raises(TakeError, match="no take"):
        store.get("nothing")
    assert store.new_id("walk 01").endswith("-walk-01")


def layout_message(seq: int, layout: Skeleton) -> dict[str, Any]:
    """:func:`recording_helpers.skeleton` in another layout: one joint row and view count per joint."""
    message = skeleton(seq)
    message["skeleton"] = layout.name
    message["joints"] = [[0.1 * j, 0.01 * seq, 1.0 + 0.05 * j, 0.9] for j in range(layout.num_joints)]
    message["views"] = [3] * layout.num_joints
    return message


def test_a_take_reads_and_exports_the_layout_its_messages_name(tmp_path: Path, toes_skeleton: Skeleton
                                                               ) -> None:
    w = TakeWriter(tmp_path / "t", take_id="t", name="t", metadata=None, cameras=CAMERAS, frames="none")
    for seq in range(6):
        w.add_skeleton(layout_message(seq, toes_skeleton))
    with pytest.raises(ValueError, match="layout 'h36m17'; take t holds test-h36m17-toes"):
        w.add_skeleton(skeleton(6))  # the recorder counts it as malformed: a take holds one layout
    manifest = w.close()
    assert manifest["skeletons"]["skeleton"] == "test-h36m17-toes"
    assert manifest["skeletons"]["written"] == 6
    take = Take(tmp_path / "t")
    stream = take.skeletons()
    assert stream.skeleton == "test-h36m17-toes"
    assert stream.joints.shape == (6, 20, 3)
    assert stream.views.shape == (6, 20)
    trc = read_trc(export_take(take, "trc", tmp_path / "t.trc"))
    assert trc.markers == toes_skeleton.joints
    np.testing.assert_allclose(trc.frames, stream.joints, atol=1e-9)
    lines = export_take(take, "jsonl", tmp_path / "t.jsonl").read_text().splitlines()
    assert [len(json.loads(line)["joints"]) for line in lines] == [20] * 6
    assert export_take(take, "bvh", tmp_path / "t.bvh").read_text().startswith("HIERARCHY")


def test_a_stream_whose_joints_are_not_its_layout_s_is_refused(tmp_path: Path, toes_skeleton: Skeleton,
                                                              stick_skeleton: Skeleton) -> None:
    short = skeleton(1)
    short["joints"] = short["joints"][:16]
    with pytest.raises(TakeError, match="16 joints and 17 views; layout h36m17 has 17 joints"):
        skeleton_stream([skeleton(0), short])
    with pytest.raises(TakeError, match="a take holds one layout"):
        skeleton_stream([skeleton(0), layout_message(1, toes_skeleton)])
    with pytest.raises(TakeError, match="a take holds one layout"):
        skeleton_stream([skeleton(0)], toes_skeleton.name)  # the manifest's layout, not the messages'
    with pytest.raises(TakeError, match="unknown skeleton 'crosspose-body99'"):
        skeleton_stream([{**skeleton(0), "skeleton": "crosspose-body99"}])
    assert skeleton_stream([], toes_skeleton.name).joints.shape == (0, 20, 3)
    # a layout without a humanoid mapping exports its markers, and refuses rotations by name
    w = TakeWriter(tmp_path / "s", take_id="s", name="s", metadata=None, cameras=CAMERAS, frames="none")
    for seq in range(4):
        w.add_skeleton(layout_message(seq, stick_skeleton))
    w.close()
    take = Take(tmp_path / "s")
    assert read_trc(export_take(take, "trc", tmp_path / "s.trc")).markers == stick_skeleton.joints
    with pytest.raises(TakeError, match="as bvh: layout test-stick5 has no humanoid mapping"):
        export_take(take, "bvh", tmp_path / "s.bvh")
