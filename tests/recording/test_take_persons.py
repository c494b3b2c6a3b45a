"""Takes of several performers (issue 21.5): the recorded messages keep every performer, BVH and TRC
are one file per performer (read back by bvhtoolbox, OpenSim and our TRC reader), C3D is one file with
labels prefixed by performer (read back by ezc3d and the pure-Python c3d reader)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from recording_helpers import CAMERAS, frameset

from crosspose.io.trc import read_trc
from crosspose.motion import zup_to_yup
from crosspose.recording import Take, TakeError, TakeWriter
from crosspose.recording.export import export_files, export_take, person_path
from crosspose.skeleton import H36M17

PELVIS = H36M17.index("pelvis")


def write_take(folder: Path, messages: list[dict[str, Any]]) -> Take:
    w = TakeWriter(folder, take_id=folder.name, name="duet", metadata={}, cameras=CAMERAS, config={})
    for m in messages:
        w.add_frameset(*frameset(int(m["seq"])))
        w.add_skeleton(m)
    w.close()
    return Take(folder)


@pytest.fixture
def duet(tmp_path: Path, persons_scene: Any) -> tuple[Take, Any]:
    return write_take(tmp_path / "duet", persons_scene.messages()), persons_scene


def test_the_take_keeps_every_performer_of_every_message(duet: tuple[Take, Any]) -> None:
    take, scene = duet
    assert take.skeleton_messages() == scene.messages()
    assert take.persons() == [1, 2, 5]
    assert take.summary()["persons"] == [1, 2, 5]  # the manifest's, for the takes list
    for pid in (1, 2, 5):
        stream = take.skeletons(pid)
        present = np.isfinite(stream.joints).all(-1).any(-1)
        assert present.tolist() == [i in scene.spans[pid] for i in range(scene.frames)]
        span = list(scene.spans[pid])
        np.testing.assert_allclose(stream.joints[span], scene.joints[pid][span], atol=1e-4)
    top = take.skeletons()  # the top level: the lowest live id (1 throughout here)
    np.testing.assert_allclose(top.joints, scene.joints[1], atol=1e-4)


def test_bvh_one_file_per_performer_read_by_bvhtoolbox(duet: tuple[Take, Any], tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bvhtoolbox imports pkg_resources (deprecated)
        from bvhtoolbox import BvhTree
    take, scene = duet
    paths = export_files(take, "bvh", tmp_path / "duet.bvh")
    assert paths == [tmp_path / f"duet_p{pid}.bvh" for pid in (1, 2, 5)]
    assert not (tmp_path / "duet.bvh").exists()
    for pid, path in zip((1, 2, 5), paths, strict=True):
        tree = BvhTree(path.read_text())
        span = list(scene.spans[pid])
        assert tree.nframes == len(span)  # that performer's frames, first to last
        assert float(tree.frame_time) == pytest.approx(1 / 30, rel=1e-6)
        hips = np.array(tree.frames_joint_channels("Hips", ["Xposition", "Yposition", "Zposition"]), float)
        np.testing.assert_allclose(hips, zup_to_yup(scene.joints[pid][span, PELVIS]), atol=1e-4)


def test_trc_one_file_per_performer_aligned_on_the_take_s_time(duet: tuple[Take, Any],
                                                              tmp_path: Path) -> None:
    take, scene = duet
    paths = export_files(take, "trc", tmp_path / "duet.trc")
    assert [p.name for p in paths] == ["duet_p1.trc", "duet_p2.trc", "duet_p5.trc"]
    for pid, path in zip((1, 2, 5), paths, strict=True):
        trc = read_trc(path)
        span = list(scene.spans[pid])
        assert trc.markers == H36M17.joints
        np.testing.assert_allclose(trc.times, np.array(span) / 30.0, atol=1e-6)  # from the take's start
        np.testing.assert_allclose(trc.frames, scene.joints[pid][span], atol=1e-4)
    opensim = pytest.importorskip("opensim", reason="OpenSim's Python wheel is missing")
    table = opensim.TimeSeriesTableVec3(str(paths[2]))
    assert list(table.getColumnLabels()) == list(H36M17.joints)
    np.testing.assert_allclose(list(table.getIndependentColumn()), np.arange(20, scene.frames) / 30.0,
                               atol=1e-6)
    row = table.getRowAtIndex(0)
    pelvis_yup = np.array([row[PELVIS][a] for a in range(3)])
    np.testing.assert_allclose(pelvis_yup, zup_to_yup(scene.joints[5][20, PELVIS]), atol=1e-4)


def test_c3d_one_file_with_labels_prefixed_by_performer(duet: tuple[Take, Any], tmp_path: Path) -> None:
    import c3d
    import ezc3d

    take, scene = duet
    assert export_files(take, "c3d", tmp_path / "duet.c3d") == [tmp_path / "duet.c3d"]
    labels = [f"p{pid}_{name}" for pid in (1, 2, 5) for name in H36M17.joints]
    f = ezc3d.c3d(str(tmp_path / "duet.c3d"))
    assert list(f["parameters"]["POINT"]["LABELS"]["value"]) == labels
    xyz = np.transpose(f["data"]["points"][:3], (2, 1, 0)) / 1000.0  # (N, 3 * 17, 3) metres
    wrist = H36M17.index("l_wrist")  # confidence 0.05 + 0.01 * id in the scene: below 0.1 is missing
    for k, pid in enumerate((1, 2, 5)):
        mine = xyz[:, k * 17:(k + 1) * 17]
        expected = np.full_like(scene.joints[pid], np.nan)
        span = list(scene.spans[pid])
        expected[span] = scene.joints[pid][span]
        if pid < 5:
            expected[:, wrist] = np.nan
        np.testing.assert_allclose(mine, expected, atol=1e-4, equal_nan=True)  # 0.1 mm in the message
    with (tmp_path / "duet.c3d").open("rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no analog data"
        reader = c3d.Reader(handle)
        assert [label.strip() for label in reader.point_labels] == labels
        assert reader.frame_count == scene.frames
        frames = [points for _, points, _ in reader.read_frames()]
    p2_pelvis = labels.index("p2_pelvis")
    assert frames[10][p2_pelvis, 3] >= 0  # performer 2 is there in frame 10, gone from frame 30
    assert frames[40][p2_pelvis, 3] == -1
    np.testing.assert_allclose(frames[40][labels.index("p5_pelvis"), :3] / 1000.0,
                               scene.joints[5][40, PELVIS], atol=1e-4)


def test_one_performer_on_request_and_clear_errors(duet: tuple[Take, Any], tmp_path: Path) -> None:
    take, scene = duet
    path = export_take(take, "trc", tmp_path / "only5.trc", person=5)
    np.testing.assert_allclose(read_trc(path).frames, scene.joints[5][20:], atol=1e-4)
    with pytest.raises(TakeError, match="holds performers 1, 2, 5: a bvh is one performer's"):
        export_take(take, "bvh", tmp_path / "x.bvh")
    with pytest.raises(TakeError, match=r"holds no performer 3 \(performers: 1, 2, 5\)"):
        export_take(take, "bvh", tmp_path / "x.bvh", person=3)
    with pytest.raises(TakeError, match="c3d is not written per performer"):
        export_take(take, "c3d", tmp_path / "x.c3d", person=1)
    assert person_path("out/walk.bvh", 12) == Path("out/walk_p12.bvh")


def test_a_take_of_one_performer_exports_as_before(tmp_path: Path, persons_scene: Any) -> None:
    import ezc3d

    solo = [persons_scene.message(i, persons=[(0, persons_scene.pose(1, i))]) for i in range(12)]
    take = write_take(tmp_path / "solo", solo)
    assert take.persons() == [0]
    assert export_files(take, "bvh", tmp_path / "solo.bvh") == [tmp_path / "solo.bvh"]
    export_files(take, "c3d", tmp_path / "solo.c3d")
    labels = list(ezc3d.c3d(str(tmp_path / "solo.c3d"))["parameters"]["POINT"]["LABELS"]["value"])
    assert labels == list(H36M17.joints)


def test_download_over_http_zips_one_file_per_performer(duet: tuple[Take, Any], tmp_path: Path) -> None:
    import io
    import zipfile

    import httpx

    from crosspose.api import ApiSettings, ServiceState, create_app
    from crosspose.api.testing import serve_in_thread
    from crosspose.calibration.store import CalibrationStore
    from crosspose.recording import TakeStore
    from crosspose.recording.control import RecordingControl

    take, scene = duet
    state = ServiceState(CalibrationStore(tmp_path / "calibration", CAMERAS), ApiSettings(token="t0ken"))
    state.recordings = RecordingControl(TakeStore(take.folder.parent), send=lambda command: None)
    with serve_in_thread(create_app(state)) as base, httpx.Client(
        base_url=f"{base}/api/v1/recordings/{take.id}", headers={"Authorization": "Bearer t0ken"}, timeout=30
    ) as http:
        both = http.get("/download", params={"format": "bvh"})
        one = http.get("/download", params={"format": "trc", "person": 2})
        c3d_file = http.get("/download", params={"format": "c3d"})
        missing = http.get("/download", params={"format": "trc", "person": 9})
        wrong = http.get("/download", params={"format": "jsonl", "person": 1})
    assert both.status_code == 200, both.text
    assert both.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(both.content)).namelist()
    assert names == [f"duet_p{pid}.bvh" for pid in (1, 2, 5)]
    assert one.status_code == 200
    (tmp_path / "p2.trc").write_bytes(one.content)
    np.testing.assert_allclose(read_trc(tmp_path / "p2.trc").frames, scene.joints[2][:30], atol=1e-4)
    assert c3d_file.status_code == 200
    assert c3d_file.headers["content-type"] == "application/octet-stream"
    assert missing.status_code == 422
    assert "holds no performer 9" in missing.text
    assert wrong.status_code == 422
    assert "jsonl is not written per performer" in wrong.text


def test_take_export_command_writes_one_file_per_performer(duet: tuple[Take, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crosspose.cli import app

    take, _ = duet
    out = tmp_path / "out" / "duet.trc"
    out.parent.mkdir()
    result = CliRunner().invoke(app, ["take", "export", take.id, "--format", "trc", "--out", str(out),
                                      "--store", str(take.folder.parent)])
    assert result.exit_code == 0, result.output
    written = [out.parent / f"duet_p{pid}.trc" for pid in (1, 2, 5)]
    assert result.output.split() == [w for p in written for w in ("wrote", str(p))]
    assert all(read_trc(p).markers == H36M17.joints for p in written)


def test_the_recorder_stage_keeps_every_performer_off_the_real_bus(tmp_path: Path,
                                                                   persons_scene: Any) -> None:
    from crosspose.bus import Publisher
    from crosspose.bus.schema import SKELETON
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.recorder_stage import RecorderStage

    config = synthetic_config(tmp_path / "work", "127.0.0.1", 0, cameras=2, frames=10, render=False)
    config = config.model_copy(update={"recording": config.recording.model_copy(
        update={"store": tmp_path / "takes"})})
    solver_side = Publisher(config.bus.skeletons_endpoint, bind=True, hwm=1000, count_drops=False)
    stage = RecorderStage(config)
    try:
        stage.start("duet", "duet", {})
        sent = persons_scene.messages()
        deadline = time.monotonic() + 20

        def written() -> int:
            stage.step()
            return stage.writer.manifest["skeletons"]["written"] if stage.writer else 0

        while written() == 0:  # the first message until the fresh subscription is connected
            assert time.monotonic() < deadline, "the recorder never got a skeleton"
            solver_side.send(SKELETON, sent[0])
            time.sleep(0.02)
        probes = written()
        for m in sent[1:]:
            solver_side.send(SKELETON, m)
        while written() < probes + len(sent) - 1:
            assert time.monotonic() < deadline, "the recorder lost skeletons"
            time.sleep(0.02)
        stage.stop()
    finally:
        stage.close()
        solver_side.close()
    got = Take(tmp_path / "takes" / "duet").skeleton_messages()
    got = [{k: v for k, v in m.items() if k not in ("v", "n_buffers")} for m in got]  # bus envelope
    assert all(m == sent[0] for m in got if m["seq"] == 0)  # the probes (some still in flight)
    assert [m for m in got if m["seq"] > 0] == sent[1:]  # every performer of every message, as sent
    assert Take(tmp_path / "takes" / "duet").persons() == [1, 2, 5]
