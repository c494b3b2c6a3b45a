"""``crosspose reconstruct --videos``: video ↔ camera matching, synchronized reading, and the real Pose2Sim
clip through detector → crops → BlazePose + fusion (eager torch) → solver, against Pose2Sim's result."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from crosspose.calibration import load_rig
from crosspose.cli.reconstruct import reconstruct_command
from crosspose.io.videos import SyncedVideos, VideoError, video_files
from crosspose.reconstruct import (
    ReconstructError,
    read_reconstruction,
    reconstruct_videos,
)
from crosspose.skeleton import BODY32, H36M17

VIDEOS = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/videos")
CALIBRATION = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
TRC = ("pose2sim-0.4.15", "Pose2Sim/Demo/opensim/Balancing_for_IK.trc")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("reconstruct")(reconstruct_command)
    app.command("other")(lambda: None)
    return app


def _text(output: str) -> str:
    """CLI output with rich's box drawing and line wrapping undone."""
    return " ".join(output.replace("│", " ").split())


def _write_video(path: Path, frames: int, value: int = 0, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (value + 20 * i) % 256, np.uint8))
    writer.release()
    return path


def test_videos_match_cameras_by_number_else_by_order(tmp_path: Path) -> None:
    for name in ("cam03.mp4", "cam01.mp4", "cam02.avi", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = video_files(tmp_path, ["cam_01", "cam_02", "cam_03"])
    assert [p.name if p else None for p in found] == ["cam01.mp4", "cam02.avi", "cam03.mp4"]
    # A camera without a video is a missing view.
    assert [p.name if p else None for p in video_files(tmp_path, ["c1", "c2", "c3", "c4"])] == [
        "cam01.mp4", "cam02.avi", "cam03.mp4", None]
    by_order = tmp_path / "order"
    by_order.mkdir()
    for name in ("left.mp4", "right.mp4"):
        (by_order / name).write_bytes(b"")
    assert [p.name if p else None for p in video_files(by_order, ["a", "b"])] == ["left.mp4", "right.mp4"]


def test_video_matching_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not a folder"):
        video_files(tmp_path / "missing", ["cam_01", "cam_02"])
    (tmp_path / "cam07.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="found 1 video"):
        video_files(tmp_path, ["cam_01", "cam_02"])
    (tmp_path / "cam08.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"cannot match the videos.*cam07\.mp4.*cam_01.*number"):
        video_files(tmp_path, ["cam_01", "cam_02", "cam_03", "cam_04"])
    unnamed = tmp_path / "unnamed"
    unnamed.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (unnamed / name).write_bytes(b"")
    with pytest.raises(VideoError, match="cannot match"):
        video_files(unnamed, ["x", "y", "z"])


def test_reconstruct_videos_refuses_an_unknown_lengths_mode(tmp_path: Path) -> None:
    with pytest.raises(ReconstructError, match="lengths 'first': use one of online, take"):
        reconstruct_videos(tmp_path / "c.toml", tmp_path, lengths="first")


def test_synced_videos_stop_at_the_shortest(tmp_path: Path) -> None:
    a = _write_video(tmp_path / "cam1.mp4", 5, 0)
    b = _write_video(tmp_path / "cam2.mp4", 3, 100)
    with SyncedVideos([a, None, b]) as videos:
        assert videos.num_frames == 3
        assert videos.fps == pytest.approx(25.0)
        sets = list(videos)
    assert len(sets) == 3
    assert sets[0][1] is None
    assert sets[2][0].shape == (48, 64, 3)
    # The frames are read in step: frame i of each file (mp4v is lossy, so compare the grey level).
    assert abs(float(sets[2][0].mean()) - 40) < 6
    assert abs(float(sets[2][2].mean()) - 140) < 6
    with SyncedVideos([a, b], max_frames=2) as videos:
        assert len(list(videos)) == 2
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="OpenCV cannot open"):
        SyncedVideos([a, tmp_path / "broken.mp4"])


def test_cli_video_errors_are_messages(tmp_path: Path) -> None:
    runner = CliRunner()
    out = ["--out", str(tmp_path / "x.trc")]
    both = runner.invoke(_app(), ["reconstruct", "--calibration", "c.toml", "--keypoints", ".",
                                  "--videos", ".", *out])
    assert both.exit_code == 2
    assert "either --keypoints DIR or --videos DIR" in _text(both.output)
    neither = runner.invoke(_app(), ["reconstruct", "--calibration", "c.toml", *out])
    assert neither.exit_code == 2
    overlays = runner.invoke(_app(), ["reconstruct", "--calibration", "c.toml", "--keypoints", ".",
                                      "--save-overlays", str(tmp_path), *out])
    assert overlays.exit_code == 2
    assert "need --videos" in _text(overlays.output)
    lengths = runner.invoke(_app(), ["reconstruct", "--calibration", "c.toml", "--videos", ".",
                                     "--lengths", "whole", *out])
    assert lengths.exit_code == 2
    assert "'whole': use take or online" in _text(lengths.output)
    no_folder = runner.invoke(_app(), ["reconstruct", "--calibration", "c.toml", "--videos", ".",
                                       "--out", str(tmp_path / "nope" / "x.trc")])
    assert no_folder.exit_code == 1
    assert "does not exist" in _text(no_folder.output)


@pytest.mark.network
def test_cli_reports_unmatched_videos(tmp_path: Path) -> None:
    from crosspose import assets

    calibration = assets.extract(*CALIBRATION)
    for name in ("cam07.mp4", "cam09.mp4"):
        _write_video(tmp_path / name, 2)
    result = CliRunner().invoke(_app(), ["reconstruct", "--calibration", str(calibration), "--videos",
                                         str(tmp_path), "--out", str(tmp_path / "x.json"), "--no-progress"])
    assert result.exit_code == 1
    assert "cannot match the videos" in _text(result.output)
    assert "cam07.mp4" in result.output
    assert not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# The real clip through the real networks (eager torch: CI has no exported ONNX file)


@pytest.fixture(scope="module")
def torch_network():  # type: ignore[no-untyped-def]
    from crosspose.inference.runtimes.torch import TorchRunner
    from crosspose.nets.export import build_fusion_network

    return TorchRunner(build_fusion_network(skeleton=BODY32))  # the default layout's network


@pytest.fixture(scope="module")
def clip() -> tuple[Path, Path]:
    from crosspose import assets

    for c in range(1, 5):
        video = assets.extract(VIDEOS[0], f"{VIDEOS[1]}/cam{c:02d}.mp4")
    return assets.extract(*CALIBRATION), video.parent


def _pose2sim_h36m(frames: int) -> np.ndarray:
    from crosspose import assets
    from crosspose.io.trc import read_trc

    trc = read_trc(assets.extract(*TRC))
    derived = {"pelvis": ("RHip", "LHip"), "spine": ("RHip", "LHip", "RShoulder", "LShoulder"),
               "thorax": ("RShoulder", "LShoulder"), "neck": ("Neck",), "head": ("Head",)}
    out = []
    for name in H36M17.joints:
        side, _, part = name.partition("_")
        markers = derived.get(name, (side.upper() + part.capitalize(),))
        out.append(np.mean([trc.marker(m)[:frames] for m in markers], axis=0))
    return np.stack(out, axis=1)


@pytest.mark.network
def test_real_clip_from_videos_close_to_pose2sim(  # type: ignore[no-untyped-def]
        clip: tuple[Path, Path], torch_network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crosspose.inference.overlays as overlays_module

    drawn: list[np.ndarray | None] = []  # every overlay's reprojected joints, in the order written
    draw = overlays_module.draw_overlay

    def spy(image, crop=None, reprojected=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(None if reprojected is None else np.array(reprojected))
        return draw(image, crop, reprojected, *args, **kwargs)

    monkeypatch.setattr(overlays_module, "draw_overlay", spy)
    calibration, videos = clip
    n = 4
    rec = reconstruct_videos(calibration, videos, network=torch_network, max_frames=n, progress=False,
                             overlays_dir=tmp_path / "overlays")
    assert rec.joints.shape == (n, 32, 3)  # the full body by default
    assert rec.fps == pytest.approx(60.0, abs=0.1)
    assert rec.stats["detector_runs"] == 1  # cold start only; then crops from the solved pose
    assert rec.stats["heatmaps"] == "fused"
    # Solved twice by default (--lengths take), the second time from the first pass's heatmaps, kept.
    assert rec.stats["lengths"]["mode"] == "take"
    assert rec.stats["lengths"]["stored_mb"] > 0
    assert (rec.views >= 2).all()
    reference = _pose2sim_h36m(n)
    distance_mm = 1e3 * np.linalg.norm(rec.joints[:, :17] - reference, axis=-1)
    limbs = [j for j, name in enumerate(H36M17.joints) if name not in ("neck", "head")]
    # Measured on the clip (100 frames, ONNX): ~45 mm median per limb joint — BlazePose's joints are not
    # OpenPose's (Pose2Sim triangulates OpenPose), so this is a different detector's answer, not noise.
    # 120 mm fails on a wrong crop fold, camera order, axis or left/right mapping (those cost metres).
    assert np.median(distance_mm[:, limbs]) < 80, np.median(distance_mm, axis=0)
    assert np.max(np.median(distance_mm[:, limbs], axis=0)) < 150, np.median(distance_mm, axis=0)
    rig = load_rig(calibration)
    written = sorted((tmp_path / "overlays").rglob("*.jpg"))
    assert len(written) == n * len(rig)
    first = cv2.imread(str(tmp_path / "overlays" / rig.names[0] / "000000.jpg"))
    assert first.shape == (1920, 1080, 3)
    # The overlays show the final (second-pass) joints, not the first pass's: view by view, frame by frame.
    assert len(drawn) == n * len(rig)
    shown = np.where((rec.views >= 2)[..., None], rec.joints, np.nan)
    for i in range(n):
        expected = np.swapaxes(np.asarray(rig.project(shown[i]), dtype=np.float64), 0, 1)
        for c in range(len(rig)):
            got = drawn[i * len(rig) + c]
            assert got is not None
            np.testing.assert_allclose(got, expected[c], atol=1e-6)


@pytest.mark.network
def test_cli_videos_end_to_end(clip: tuple[Path, Path], torch_network, tmp_path: Path,  # type: ignore[no-untyped-def]
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import crosspose.reconstruct as module

    monkeypatch.setattr(module, "default_network", lambda device="auto", num_cameras=4, **_: torch_network)
    calibration, videos = clip
    result = CliRunner().invoke(_app(), [
        "reconstruct", "--calibration", str(calibration), "--videos", str(videos), "--frames", "2", "--raw",
        "--out", str(tmp_path / "take.json"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "solved from raw heatmaps" in result.output
    assert "detector ran 1 time" in result.output
    assert "lengths learnt over the take" in result.output
    rec = read_reconstruction(tmp_path / "take.json")
    assert rec.num_frames == 2
    assert rec.fps == pytest.approx(60.0, abs=0.1)
    doc = json.loads((tmp_path / "take.json").read_text())
    assert doc["cameras"] == load_rig(calibration).names
