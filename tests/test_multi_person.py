"""Several people in view, one performer captured: Pose2Sim's real multi-person clip (same studio and
calibration as the demo; two performers on the platform — a shirtless man in a cap and a woman in a grey
T-shirt — and a bystander behind them in two views).

At frame 0 the detector's most confident box is the woman in cam01, cam02 and cam04 and the man in cam03,
so the old cold start triangulated a root between them (0.53 m from the woman, reprojecting ~300 px off in
two views). Cross-view association finds the man in all four views (the woman in fewer) and starts there;
the solver then follows him for the whole clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosspose.calibration import load_rig
from crosspose.inference.association import associate, default_volume
from crosspose.io.videos import SyncedVideos, video_files
from crosspose.skeleton import H36M17

VIDEOS = ("pose2sim-0.10.49", "Pose2Sim/Demo_MultiPerson/videos")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt")
#: Measured on the clip (frame 0, image pixels): the hips of the man as each view's detector finds them.
MAN_AT_FRAME_0 = {"cam01": (443, 794), "cam03": (667, 899)}


@pytest.fixture(scope="module")
def clip() -> tuple[Path, Path]:
    from crosspose import assets

    for c in range(1, 5):
        video = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    return assets.extract(*CALIBRATION), video.parent


@pytest.mark.network
def test_frame_0_candidates_agree_on_the_man_in_all_views(clip: tuple[Path, Path]) -> None:
    from crosspose.inference.detector import PersonDetector

    calibration, videos = clip
    rig = load_rig(calibration)
    volume = default_volume(rig)
    with SyncedVideos(video_files(videos, rig.names), 1) as frames:
        images = next(iter(frames))
    assert all(image is not None for image in images)
    found = PersonDetector().detect([image for image in images if image is not None])
    tops = [f[0].keypoints[0] for f in found]
    pixels = [np.array([d.keypoints[0] for d in f]).reshape(-1, 2) for f in found]
    scores = [np.array([d.score for d in f]) for f in found]
    people = associate(rig, pixels, scores, volume)
    man = people[0]
    assert man.num_views == 4
    assert all(p.num_views < 4 for p in people[1:])
    for c, name in enumerate(rig.names):
        if name in MAN_AT_FRAME_0:
            assert np.linalg.norm(pixels[c][man.members[c]] - MAN_AT_FRAME_0[name]) < 30
    # The top boxes are two people: triangulated together they miss two views by hundreds of pixels.
    mixed, _ = rig.triangulate(np.array(tops))
    assert np.max(np.asarray(rig.reprojection_error(mixed, np.array(tops)))) > 200
    assert np.linalg.norm(np.asarray(mixed) - man.root) > 0.8


@pytest.mark.network
@pytest.mark.slow
def test_the_whole_clip_follows_the_man_never_the_others(clip: tuple[Path, Path]) -> None:
    """The clip through ``crosspose reconstruct --videos``'s path (eager torch network: CI has no exported
    ONNX file)."""
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network
    from crosspose.reconstruct import reconstruct_videos

    calibration, videos = clip
    rig = load_rig(calibration)
    from crosspose.solver import Solver

    rec = reconstruct_videos(calibration, videos, network=TorchRunner(build_fusion_network()),
                             solver=Solver(H36M17), progress=False)  # (the network's layout)
    assert rec.num_frames == 100
    assert rec.stats["detector_runs"] == 1  # one cold start, then the man's own poses place the crops
    pelvis = rec.joints[:, H36M17.root]
    assert np.isfinite(pelvis).all()
    # One person throughout: no jump to the woman (~1.5 m to his right) when he passes in front of her.
    assert np.max(np.linalg.norm(np.diff(pelvis, axis=0), axis=-1)) < 0.10
    assert default_volume(rig).contains(pelvis).all()
    # Him, not her: measured here, his pelvis stays at x < -0.5 m (hers at x ~ +0.1..0.3 m) and his thighs
    # are ~0.41 m long (hers ~0.34 m).
    assert (pelvis[:, 0] < -0.5).all()
    joints = rec.joints
    hips, knees = (joints[:, [H36M17.index(f"{s}_{j}") for s in "lr"]] for j in ("hip", "knee"))
    thighs = np.linalg.norm(hips - knees, axis=-1)
    assert np.median(thighs) > 0.38


@pytest.fixture(scope="module")
def body32_network():  # type: ignore[no-untyped-def]
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network
    from crosspose.skeleton import BODY32

    return TorchRunner(build_fusion_network(skeleton=BODY32))


def _pelvis(line: dict[str, object]) -> list[np.ndarray]:
    return [np.array(p["joints"][0][:3], float) for p in line["persons"]]  # type: ignore[index, union-attr]


@pytest.mark.network
def test_cli_persons_2_reports_both_performers_with_their_ids(  # type: ignore[no-untyped-def]
        clip: tuple[Path, Path], body32_network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``crosspose reconstruct --videos --persons 2`` on the first frames: both performers, ids 0 and 1, the
    lowest id's fields also at the top level (what a one-person reader of the line reads)."""
    import json

    from typer.testing import CliRunner

    import crosspose.reconstruct as module
    from crosspose.cli import app

    monkeypatch.setattr(module, "default_network", lambda device="auto", num_cameras=4, **_: body32_network)
    calibration, videos = clip
    out = tmp_path / "take.jsonl"
    result = CliRunner().invoke(app, ["reconstruct", "--calibration", str(calibration), "--videos",
                                      str(videos), "--frames", "3", "--persons", "2", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "ids [0, 1]" in result.output
    assert "each performer's lengths learnt over the take" in result.output  # --lengths take by default
    header, *lines = (json.loads(line) for line in out.read_text().splitlines())
    assert header["format"] == "crosspose-persons-jsonl"
    assert header["ids"] == [0, 1]
    assert len(header["joint_names"]) == 32
    volume = default_volume(load_rig(calibration))
    assert len(lines) == 3
    for line in lines:
        assert [p["id"] for p in line["persons"]] == [0, 1]
        assert line["joints"] == line["persons"][0]["joints"]
        man, woman = sorted(_pelvis(line), key=lambda p: p[0])
        # Measured on this clip: his pelvis at x < -0.5 m, hers at x ~ +0.1..0.3 m; the bystander stands
        # outside the volume.
        assert man[0] < -0.5
        assert woman[0] > -0.2
        assert volume.contains(np.stack([man, woman])).all()
    # --lengths online (the live service's one pass): the same performers in the same places.
    again = tmp_path / "again.jsonl"
    result = CliRunner().invoke(app, ["reconstruct", "--calibration", str(calibration), "--videos",
                                      str(videos), "--frames", "3", "--persons", "2", "--out", str(again),
                                      "--lengths", "online", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "ids [0, 1]" in result.output
    assert "lengths learnt over the take" not in result.output
    _, *twice = (json.loads(line) for line in again.read_text().splitlines())
    for line, other in zip(lines, twice, strict=True):
        assert [p["id"] for p in other["persons"]] == [0, 1]
        np.testing.assert_allclose(_pelvis(other), _pelvis(line), atol=0.1)
    for bad, hint in ((["--out", str(tmp_path / "take.trc")], ".jsonl"),
                      (["--keypoints", str(videos), "--out", str(out)], "--videos")):
        args = ["reconstruct", "--calibration", str(calibration), "--persons", "2", *bad]
        if "--keypoints" not in bad:
            args += ["--videos", str(videos)]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2
        assert hint in res.output


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.timeout(1800)  # the eager torch network, 2 performers x 100 frame sets: minutes on a busy CPU
def test_the_whole_clip_with_two_persons(  # type: ignore[no-untyped-def]
        clip: tuple[Path, Path], body32_network) -> None:
    """The issue's targets on the real clip through ``reconstruct_videos_persons`` (``--persons 2``'s path;
    the eager torch network: CI has no exported ONNX file). ``benchmarks/multi_person.py`` measures more."""
    from crosspose.reconstruct_persons import reconstruct_videos_persons
    from crosspose.skeleton import BODY32
    from crosspose.solver import Solver

    calibration, videos = clip
    rec = reconstruct_videos_persons(calibration, videos, max_persons=2, network=body32_network,
                                     solver=Solver(BODY32), progress=False)
    counts = np.array([len(p) for p in rec.frames])
    assert (counts[:74] == 2).mean() >= 0.98
    assert (counts[80:] == 2).mean() >= 0.90
    assert counts.max() <= 2
    assert rec.ids == [0, 1]
    volume = default_volume(load_rig(calibration))
    for id in rec.ids:
        joints, _, _ = rec.track(id)
        pelvis = joints[:, BODY32.root]
        seen = np.isfinite(pelvis).all(-1)
        assert volume.contains(pelvis[seen]).all()
        steps = np.linalg.norm(np.diff(pelvis, axis=0), axis=-1)
        # No switch between the two: they stand ~1.3 m apart, and 0.25 m in 1/60 s (15 m/s) is no human
        # motion. Issue 21's 0.10 m target is the benchmark's, on the exported network: 0.060 / 0.098 m
        # (benchmarks/multi_person.py); this eager torch one gave 0.103 m, and 0.128 m for her once the
        # feet's length hold and the four-gather fusion reads landed — a few centimetres, not a switch.
        assert np.nanmax(steps) <= 0.25


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_10th_frame_set_looped_keeps_the_two_ids(  # type: ignore[no-untyped-def]
        clip: tuple[Path, Path], body32_network) -> None:
    """The live demo on a slow CPU: the 60 fps clip looped, a frame set every 1/6 s of capture time (every
    10th frame: solved cold under the solver's old 70 ms rule, tracked by its wide search since) through the
    core's multi-person path: exactly two ids. Before ids held
    across such gaps (a pose solved from two views that could place no crop ended its track at once), this
    path churned at such rates — ids 0–3 in one run of this eager network at every 10th frame, and of the
    exported one at every 15th — but not in every run (this test once passed on that code): the pipeline
    tests at 3 frame sets per second are the ones that always failed there."""
    from crosspose.calibration import load_rig
    from crosspose.core import ImageSet
    from crosspose.core.videos import video_core
    from crosspose.inference.pipeline import FramePipeline
    from crosspose.skeleton import BODY32
    from crosspose.solver import Solver

    calibration, videos = clip
    rig = load_rig(calibration)
    with SyncedVideos(video_files(videos, rig.names), None) as frames:
        sets = [images for i, images in enumerate(frames) if i % 10 == 0]
    pipeline = FramePipeline(rig, body32_network, max_persons=2)
    core = video_core(rig, body32_network, Solver(BODY32), pipeline=pipeline)
    ids = []
    for loop in range(3):
        for k, images in enumerate(sets):
            seq = loop * len(sets) + k
            solved = core.run_persons(ImageSet(seq, round((loop * 100 + 10 * k) * 1e9 / 60), images))
            ids.append([id for id, _ in solved.persons])
    assert sorted({id for persons in ids for id in persons}) == [0, 1]
    assert pipeline.ids_started == 2
    assert np.mean([persons == [0, 1] for persons in ids]) >= 0.9
