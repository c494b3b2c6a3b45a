"""Intrinsics from board views: synthetic views of a known camera, bad-view rejection, the coverage warning,
and the Pose2Sim studio's real checkerboard images against its Qualisys calibration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from crosspose import assets
from crosspose.calibration import load_rig
from crosspose.calibration.boards import BoardSpec, BoardView, parse_board
from crosspose.calibration.intrinsics import (
    CameraViews,
    IntrinsicsError,
    calibrate_intrinsics,
    coverage,
    find_views,
)

BOARD = parse_board("checkerboard:6x9:0.04")
SIZE = (1280, 720)
K = np.array([[1000.0, 0, 652], [0, 1001.0, 355], [0, 0, 1]])
DIST = np.array([-0.12, 0.08, 0.0005, -0.0008, 0.0])


def synthetic_views(n: int, seed: int = 0, spread: float = 1.0, noise_px: float = 0.1) -> CameraViews:
    """``n`` views of the board at random tilts; ``spread`` scales how far from the centre it wanders."""
    rng = np.random.default_rng(seed)
    obj = BOARD.object_points()
    centre = obj.mean(0)
    views = []
    while len(views) < n:
        rvec = rng.normal(0, 0.35, 3)
        R = cv2.Rodrigues(rvec)[0]
        target = np.array([rng.uniform(-0.35, 0.35) * spread, rng.uniform(-0.2, 0.2) * spread, 0.9])
        t = target - R @ centre
        pix, _ = cv2.projectPoints(obj, rvec, t, K, DIST)
        pix = pix.reshape(-1, 2) + rng.normal(0, noise_px, (len(obj), 2))
        if (pix.min(0) < 0).any() or (pix.max(0) >= SIZE).any():
            continue
        views.append(BoardView(np.arange(len(obj)), pix, 100.0))
    return CameraViews("cam_test", SIZE, tuple(views), tuple(f"view{i}" for i in range(n)), n)


def test_known_camera_is_recovered() -> None:
    result = calibrate_intrinsics(synthetic_views(12), BOARD)
    assert result.rms < 0.2
    np.testing.assert_allclose(result.K[[0, 1], [0, 1]], K[[0, 1], [0, 1]], rtol=3e-3)
    np.testing.assert_allclose(result.K[:2, 2], K[:2, 2], atol=4.0)
    assert result.dist[4] == 0.0  # k3 held at zero
    np.testing.assert_allclose(result.dist[:2], DIST[:2], atol=0.03)
    assert result.used.all()
    assert (result.principal_point_std > 0).all()
    assert (result.principal_point_std < 4).all()


def test_a_bad_view_is_rejected_and_named() -> None:
    views = synthetic_views(10, seed=1)
    bent = views.views[3].pixels.copy()
    bent[: len(bent) // 2] += 3.0  # half the corners 3 px off: a misdetection
    bad = (*views.views[:3], BoardView(views.views[3].ids, bent, 100.0), *views.views[4:])
    result = calibrate_intrinsics(CameraViews(views.camera, SIZE, bad, views.sources, 10), BOARD)
    assert not result.used[3]
    assert result.used.sum() == 9
    assert result.summary()["rejected"] == ["view3"]
    assert result.rms < 0.2


def test_views_bunched_in_the_centre_warn_about_coverage() -> None:
    result = calibrate_intrinsics(synthetic_views(10, spread=0.05), BOARD)
    assert result.coverage < 0.5
    assert any("cam_test" in w and "covered" in w for w in result.warnings)
    wide = calibrate_intrinsics(synthetic_views(10, spread=1.0), BOARD)
    assert wide.coverage > coverage(synthetic_views(10, spread=0.05).views, SIZE)


def test_too_few_views_refused_naming_the_camera() -> None:
    views = synthetic_views(3)
    with pytest.raises(IntrinsicsError, match=r"camera cam_test: the board .* found in 3 of 3"):
        calibrate_intrinsics(views, BOARD)


def test_missing_source_named(tmp_path: Path) -> None:
    with pytest.raises(IntrinsicsError, match=r"camera cam9: .*neither an image folder nor a video"):
        find_views("cam9", tmp_path / "nope", BOARD)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntrinsicsError, match=r"camera cam9: .*holds no image"):
        find_views("cam9", tmp_path / "empty", BOARD)


QCA = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt")
IMAGES = ("pose2sim-0.10.49", "Pose2Sim/Demo_SinglePerson/calibration/intrinsics")


@pytest.mark.network
@pytest.mark.slow
def test_pose2sim_checkerboard_images_match_qualisys() -> None:
    """Issue 20's target on one camera (the benchmark runs all four): RMS ≤ 0.30 px, focal within 0.6 %."""
    reference = load_rig(assets.extract(*QCA))["cam02"]
    board: BoardSpec = parse_board("checkerboard:4x7:0.06")
    views = find_views("cam02", assets.extract_tree(*IMAGES) / "int_cam02_img", board)
    assert len(views.views) >= 6
    result = calibrate_intrinsics(views, board)
    assert result.rms <= 0.30
    focal_error = np.abs(result.K[[0, 1], [0, 1]] / reference.K[[0, 1], [0, 1]] - 1)
    assert focal_error.max() <= 0.006
    assert result.image_size == (1088, 1920)


def test_a_board_video_gives_its_sharpest_widest_views(
    tmp_path: Path, photograph: Callable[..., np.ndarray]
) -> None:
    """A video: frames searched at even steps, the views kept chosen for coverage, at most ``max_views``."""
    board = parse_board("checkerboard:6x9:0.03")
    K = np.array([[820.0, 0, 320], [0, 820.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(2)
    video = tmp_path / "board.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480), isColor=False)
    centre = board.object_points().mean(0)
    for _ in range(24):
        R = cv2.Rodrigues(rng.normal(0, 0.3, 3))[0]
        t = np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.08, 0.08), 0.6]) - R @ centre
        writer.write(photograph(board, K, R, t, (640, 480)))
    writer.release()
    views = find_views("cam_video", video, board, max_views=6, candidates=12)
    assert views.looked_at == 12
    assert views.image_size == (640, 480)
    assert 4 <= len(views.views) <= 6
    assert all(s.startswith("frame ") for s in views.sources)
    result = calibrate_intrinsics(views, board)
    np.testing.assert_allclose(result.K[[0, 1], [0, 1]], 820.0, rtol=0.02)
