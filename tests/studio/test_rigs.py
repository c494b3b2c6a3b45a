"""Random studio rigs: seeded, C from 2 to 12, the whole capture volume in every view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosspose.calibration import save_rig
from crosspose.geometry import CameraRig
from crosspose.studio import IMAGE_SIZES, load_real_rig, random_rig
from crosspose.studio.rigs import volume_points


def _in_image(rig: CameraRig, points: np.ndarray) -> np.ndarray:
    """``(P, C)`` bool: point projects inside the image of camera c."""
    uv = np.asarray(rig.project(points))  # (P, C, 2)
    size = rig.image_size[None].astype(float)
    return np.isfinite(uv).all(-1) & (uv >= -0.5).all(-1) & (uv < size - 0.5).all(-1)


def test_same_seed_same_rig_and_different_seed_different_rig() -> None:
    assert random_rig(3, 5).allclose(random_rig(3, 5))
    assert random_rig(np.random.default_rng(9), 5).allclose(random_rig(np.random.default_rng(9), 5))
    assert not random_rig(3, 5).allclose(random_rig(4, 5))


@pytest.mark.parametrize("num_cameras", [2, 3, 4, 6, 8, 12])
def test_every_camera_sees_the_whole_volume(num_cameras: int) -> None:
    for seed in range(3):
        rig = random_rig(seed, num_cameras, volume_radius=1.8)
        assert rig.names == [f"cam{i + 1}" for i in range(num_cameras)]
        assert _in_image(rig, np.array([[0.0, 0.0, 1.0]])).all(), "volume centre out of view"
        assert _in_image(rig, volume_points(1.8, 2.2)).all(), "part of the capture volume out of view"
        # Looking at the centre: the optical axis passes within 10 cm of (0, 0, 1).
        for cam in rig:
            axis = cam.R[2]
            to_centre = np.array([0.0, 0.0, 1.0]) - cam.center
            miss = np.linalg.norm(to_centre - axis * (to_centre @ axis))
            assert miss < 0.1
            np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
            assert np.linalg.det(cam.R) > 0


def test_cameras_spread_around_the_volume_within_the_drawn_ranges() -> None:
    rig = random_rig(11, 6)
    centers = rig.centers
    assert ((centers[:, 2] >= 0.8) & (centers[:, 2] <= 2.8)).all()
    assert (np.hypot(centers[:, 0], centers[:, 1]) >= 3.0).all()
    az = np.unwrap(np.arctan2(centers[:, 1], centers[:, 0]))
    gaps = np.diff(np.concatenate([az, az[:1] + 2 * np.pi]))
    spacing = 2 * np.pi / 6
    assert (gaps > 0.2 * spacing).all()
    assert (gaps < 1.8 * spacing).all()
    assert {tuple(int(v) for v in s) for s in rig.image_size} <= set(IMAGE_SIZES)
    half_fov = np.degrees(np.arctan(0.5 * rig.image_size.max(1) / rig.K[:, 0, 0]))
    assert ((2 * half_fov > 44.9) & (2 * half_fov < 75.1)).all()
    assert (np.abs(rig.dist[:, :2]) < 0.2).all()
    assert (np.abs(rig.dist[:, 2:4]) < 1e-3).all()


def test_distortion_can_be_switched_off_and_sizes_chosen() -> None:
    rig = random_rig(1, 3, distortion=0.0, image_sizes=[(320, 240)])
    assert (rig.dist == 0).all()
    assert (rig.image_size == [320, 240]).all()


@pytest.mark.parametrize("num_cameras", [1, 13])
def test_camera_count_out_of_range_is_refused(num_cameras: int) -> None:
    with pytest.raises(ValueError, match="between 2 and 12"):
        random_rig(0, num_cameras)


def test_load_real_rig_reads_a_saved_calibration(tmp_path: Path) -> None:
    rig = random_rig(0, 3)
    path = tmp_path / "studio.json"
    save_rig(rig, path)
    assert load_real_rig(path).allclose(rig, atol=1e-6)
