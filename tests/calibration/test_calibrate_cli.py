"""``crosspose calibration board|intrinsics|extrinsics`` end to end through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from crosspose.calibration import load_rig, save_rig
from crosspose.calibration.boards import parse_board
from crosspose.cli import app
from crosspose.geometry import CameraRig

runner = CliRunner()
NAMES = ["cam01", "cam02", "cam03", "cam04"]


def _unboxed(output: str) -> str:
    """typer's error box without its frame and line breaks."""
    return " ".join(output.replace("│", " ").split())


def test_help_has_examples() -> None:
    for cmd in ("intrinsics", "extrinsics", "board"):
        result = runner.invoke(app, ["calibration", cmd, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example: crosspose calibration" in result.output


def test_board_command_writes_a_printable_board(tmp_path: Path) -> None:
    result = runner.invoke(app, ["calibration", "board", "--board", "charuco:5x7:0.03:0.022",
                                 "--out", str(tmp_path / "b.pdf")])
    assert result.exit_code == 0, result.output
    assert "150 x 210 mm" in result.output
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
    result = runner.invoke(app, ["calibration", "board", "--board", "charuco:5x7:0.03",
                                 "--out", str(tmp_path / "b.pdf")])
    assert result.exit_code != 0
    assert "expected charuco:COLSxROWS" in _unboxed(result.output)


def _board_images(folder: Path, K: np.ndarray, count: int, seed: int, photograph: Callable[..., np.ndarray]
                  ) -> None:
    """``count`` 960 × 540 photos of a printed 6 × 9 checkerboard (30 mm) at random tilts."""
    board = parse_board("checkerboard:6x9:0.03")
    rng = np.random.default_rng(seed)
    folder.mkdir()
    centre = board.object_points().mean(0)
    for i in range(count):
        R = cv2.Rodrigues(rng.normal(0, 0.3, 3))[0]
        t = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.05, 0.05), 0.55]) - R @ centre
        cv2.imwrite(str(folder / f"view{i:02d}.png"), photograph(board, K, R, t, (960, 540)))


def test_intrinsics_command_recovers_the_camera_and_reports(
    tmp_path: Path, photograph: Callable[..., np.ndarray]
) -> None:
    K = np.array([[820.0, 0, 470], [0, 820.0, 275], [0, 0, 1]])
    _board_images(tmp_path / "a", K, 7, 0, photograph)
    _board_images(tmp_path / "b", K, 7, 1, photograph)
    out, report = tmp_path / "intrinsics.toml", tmp_path / "report.json"
    result = runner.invoke(app, ["calibration", "intrinsics", "--board", "checkerboard:6x9:0.03",
                                 "--out", str(out), "--report", str(report),
                                 f"camA={tmp_path / 'a'}", f"camB={tmp_path / 'b'}"])
    assert result.exit_code == 0, result.output
    assert "camA: RMS" in result.output
    assert "coverage" in result.output
    rig = load_rig(out)
    assert rig.names == ["camA", "camB"]
    for cam in rig:
        np.testing.assert_allclose(cam.K[[0, 1], [0, 1]], 820.0, rtol=0.01)
        np.testing.assert_allclose(cam.K[:2, 2], K[:2, 2], atol=10)
        assert cam.image_size == (960, 540)
    data = json.loads(report.read_text())
    assert [c["camera"] for c in data["cameras"]] == ["camA", "camB"]
    assert all(c["rms_px"] < 0.3 and c["views_used"] >= 4 for c in data["cameras"])


def test_intrinsics_command_refuses_bad_arguments(tmp_path: Path) -> None:
    result = runner.invoke(app, ["calibration", "intrinsics", "--board", "checkerboard:6x9:0.03",
                                 "--out", str(tmp_path / "i.toml"), "camA"])
    assert result.exit_code != 0
    assert "NAME=PATH" in _unboxed(result.output)
    result = runner.invoke(app, ["calibration", "intrinsics", "--board", "checkerboard:6x9:0.03",
                                 "--out", str(tmp_path / "i.toml"), f"camA={tmp_path / 'missing'}"])
    assert result.exit_code == 1
    assert "camera camA" in result.output


def _write_openpose(root: Path, keypoints: np.ndarray) -> None:
    """One OpenPose JSON folder per camera (``cam01_json`` …), one file per frame."""
    n, c = keypoints.shape[:2]
    for v in range(c):
        folder = root / f"{NAMES[v]}_json"
        folder.mkdir(parents=True)
        for i in range(n):
            kp = np.nan_to_num(keypoints[i, v], nan=0.0)
            doc = {"version": 1.3, "people": [{"pose_keypoints_2d": kp.ravel().tolist()}]}
            (folder / f"{NAMES[v]}_{i:012d}_keypoints.json").write_text(json.dumps(doc))


@pytest.fixture
def studio(tmp_path: Path, rig_factory: Callable[..., CameraRig],
           take_factory: Callable[..., tuple[np.ndarray, tuple[str, ...], np.ndarray]]
           ) -> tuple[CameraRig, Path]:
    truth = rig_factory(NAMES, seed=5)
    keypoints, _, _ = take_factory(truth)
    _write_openpose(tmp_path / "pose", keypoints)
    intrinsics = CameraRig([c.replace(R=np.eye(3), t=np.zeros(3)) for c in truth])
    save_rig(intrinsics, tmp_path / "intrinsics.toml", "anipose")
    save_rig(truth, tmp_path / "truth.json")
    return truth, tmp_path


def test_extrinsics_from_keypoints_end_to_end(studio: tuple[CameraRig, Path]) -> None:
    truth, root = studio
    d = np.linalg.norm(truth["cam01"].center - truth["cam03"].center)
    out, report = root / "studio.yml", root / "ext.json"
    result = runner.invoke(app, [
        "calibration", "extrinsics", "--intrinsics", str(root / "intrinsics.toml"), "--keypoints",
        str(root / "pose"), "--length", f"cam01-cam03={d:.5f}", "--reference", str(root / "truth.json"),
        "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "vs reference cam02: rotation" in result.output
    assert "shared sightings: cam01-cam02" in result.output
    rig = load_rig(out)  # OpenCV FileStorage, validated on the way in
    assert rig.names == NAMES
    np.testing.assert_allclose(rig.centers[:, 2], truth.centers[:, 2], atol=0.03)  # floor at z = 0, +Z up
    data = json.loads(report.read_text())
    assert max(c["rotation_deg"] for c in data["reference"]["cameras"].values()) < 0.2
    assert max(c["centre_mm_rigid"] for c in data["reference"]["cameras"].values()) < 20


def test_extrinsics_refuses_a_camera_without_shared_views(studio: tuple[CameraRig, Path]) -> None:
    _, root = studio
    for f in (root / "pose" / "cam04_json").iterdir():
        doc = json.loads(f.read_text())
        doc["people"] = []
        f.write_text(json.dumps(doc))
    result = runner.invoke(app, [
        "calibration", "extrinsics", "--intrinsics", str(root / "intrinsics.toml"), "--keypoints",
        str(root / "pose"), "--height", "1.7", "--out", str(root / "s.toml")])
    assert result.exit_code == 1
    assert "camera cam04: no usable sighting" in result.output
    assert not (root / "s.toml").exists()


def test_extrinsics_needs_one_source_and_one_scale(studio: tuple[CameraRig, Path]) -> None:
    _, root = studio
    base = ["calibration", "extrinsics", "--intrinsics", str(root / "intrinsics.toml"), "--out",
            str(root / "s.toml")]
    result = runner.invoke(app, [*base, "--height", "1.7"])
    assert result.exit_code != 0
    assert "give one of --board" in _unboxed(result.output)
    result = runner.invoke(app, [*base, "--keypoints", str(root / "pose")])
    assert result.exit_code == 1
    assert "exactly one scale" in result.output


def _board_studio(root: Path, photograph: Callable[..., np.ndarray]) -> tuple[CameraRig, list[str]]:
    """Three cameras 2.5 m up around a ChArUco board (13 cm squares): frame 0 lies on the floor at the origin,
    then the board is carried face up through the volume at varied heights and tilts. One image folder per
    camera, frame ``i`` of each the same instant. Returns the true rig and the ``NAME=PATH`` arguments."""
    from crosspose.geometry import Camera
    from crosspose.geometry.rotations import look_at

    board = parse_board("charuco:6x5:0.13:0.1:DICT_4X4_50")
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    cams = []
    for i, a in enumerate((0.3, 2.3, 4.3)):
        eye = np.array([2.6 * np.cos(a), 2.6 * np.sin(a), 2.5])
        R, t = look_at(eye, np.array([0.0, 0.0, 0.3]))
        cams.append(Camera(f"cam{i + 1:02d}", K, np.zeros(5), np.asarray(R), np.asarray(t), (1280, 720), {}))
    rig = CameraRig(cams)
    rng = np.random.default_rng(4)
    centre = board.object_points().mean(0)
    poses = [(np.diag([1.0, -1.0, -1.0]), np.zeros(3))]  # on the floor, face up, board x = world x
    for _ in range(9):
        tilt = cv2.Rodrigues(np.r_[rng.normal(0, 0.25, 2), rng.uniform(-np.pi, np.pi)])[0]
        R = tilt @ np.diag([1.0, -1.0, -1.0])
        poses.append((R, rng.uniform([-0.5, -0.5, 0.2], [0.5, 0.5, 1.0]) - R @ centre))
    args = []
    for cam in rig:
        folder = root / cam.name
        folder.mkdir()
        for f, (Rb, tb) in enumerate(poses):
            pose = (cam.R @ Rb, cam.R @ tb + cam.t)  # board frame → camera
            image = photograph(board, K, *pose, (1280, 720), dpi=40.0, background=128)
            cv2.imwrite(str(folder / f"{f:03d}.png"), image)
        args.append(f"{cam.name}={folder}")
    return rig, args


def test_extrinsics_from_board_views_end_to_end(
    tmp_path: Path, photograph: Callable[..., np.ndarray]
) -> None:
    truth, args = _board_studio(tmp_path, photograph)
    intrinsics = CameraRig([c.replace(R=np.eye(3), t=np.zeros(3)) for c in truth])
    save_rig(intrinsics, tmp_path / "intrinsics.json")
    out = tmp_path / "studio.qca.txt"
    intrinsics_file = str(tmp_path / "intrinsics.json")
    result = runner.invoke(app, ["calibration", "extrinsics", "--intrinsics", intrinsics_file,
                                 "--board", "charuco:6x5:0.13:0.1:DICT_4X4_50", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "scale from the board's 130 mm squares" in result.output
    rig = load_rig(out)
    # The board on the floor fixes scale, floor, origin and heading: the rig as it is, no fit.
    np.testing.assert_allclose(rig.centers, truth.centers, atol=0.02)
    for ours, true in zip(rig.R, truth.R, strict=True):
        assert np.degrees(np.arccos(np.clip((np.trace(ours @ true.T) - 1) / 2, -1, 1))) < 0.3


def test_extrinsics_refines_a_bumped_camera(studio: tuple[CameraRig, Path]) -> None:
    truth, root = studio
    shift = np.array([0.05, 0.0, -0.05])
    bumped = CameraRig([c.replace(t=c.t + shift) if c.name == "cam02" else c for c in truth])
    save_rig(bumped, root / "bumped.json")
    out = root / "refined.json"
    base = ["calibration", "extrinsics", "--intrinsics", str(root / "bumped.json"), "--keypoints",
            str(root / "pose"), "--refine", "cam02", "--out", str(out)]
    result = runner.invoke(app, [*base, "--height", "1.7"])
    assert result.exit_code != 0
    assert "--refine keeps the rig's scale" in _unboxed(result.output)
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    assert "cam02 moved" in result.output
    refined = load_rig(out)
    np.testing.assert_allclose(refined["cam02"].center, truth["cam02"].center, atol=0.005)
    assert refined["cam04"].allclose(truth["cam04"])
