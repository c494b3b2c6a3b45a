"""OpenPose JSON folders: numeric frame order, person choice, empty frames, camera matching, alignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crosspose.io.openpose import (
    KeypointsError,
    frame_number,
    match_cameras,
    read_multiview,
    read_openpose_folder,
)

J = 4


def _person(x: float, conf: float = 0.8) -> list[float]:
    return [v for j in range(J) for v in (x + j, 10.0 * j, conf)]


def _write(folder: Path, name: str, *people: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p} for p in people]}
    (folder / name).write_text(json.dumps(doc))


def test_frames_sorted_numerically_not_lexicographically(tmp_path: Path) -> None:
    for n in (10, 9, 100, 1):
        _write(tmp_path, f"cam1_{n}_keypoints.json", _person(float(n)))
    (tmp_path / "cam1_5_keypoints.json.old").write_text("not json")  # ignored: not *.json
    seq = read_openpose_folder(tmp_path)
    np.testing.assert_array_equal(seq.frame_numbers, [1, 9, 10, 100])
    np.testing.assert_array_equal(seq.keypoints[:, 0, 0], [1, 9, 10, 100])
    assert frame_number("cam01.0012.json") == 12


def test_empty_frames_and_missing_keypoints_are_nan(tmp_path: Path) -> None:
    missing = _person(0.0)
    missing[3:6] = [0.0, 0.0, 0.0]  # OpenPose's "not found"
    _write(tmp_path, "f0.json", missing)
    _write(tmp_path, "f1.json")  # nobody
    seq = read_openpose_folder(tmp_path)
    assert seq.keypoints.shape == (2, J, 3)
    assert np.isnan(seq.keypoints[0, 1, :2]).all()
    assert seq.keypoints[0, 1, 2] == 0
    assert np.isnan(seq.keypoints[1, :, :2]).all()
    assert (seq.keypoints[1, :, 2] == 0).all()
    np.testing.assert_array_equal(seq.people, [1, 0])


def test_person_choice(tmp_path: Path) -> None:
    # Frame 0: performer at x=100 (most confident). Frame 1: a more confident bystander at x=500.
    _write(tmp_path, "f0.json", _person(500.0, 0.5), _person(100.0, 0.9))
    _write(tmp_path, "f1.json", _person(500.0, 0.95), _person(103.0, 0.6))
    by_conf = read_openpose_folder(tmp_path, person="confidence")
    np.testing.assert_array_equal(by_conf.keypoints[:, 0, 0], [100.0, 500.0])
    nearest = read_openpose_folder(tmp_path, person="nearest")
    np.testing.assert_array_equal(nearest.keypoints[:, 0, 0], [100.0, 103.0])


def test_wrong_keypoint_count_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path, "f0.json", _person(0.0))
    with pytest.raises(KeypointsError, match="expected 25"):
        read_openpose_folder(tmp_path, num_joints=25)


def test_match_cameras_by_number() -> None:
    assert match_cameras(["cam2_json", "cam1_json"], ["cam_01", "cam_02"]) == [1, 0]
    assert match_cameras(["cam01_json", "cam10_json", "cam2_json"], ["cam2", "cam10", "cam01"]) == [2, 1, 0]
    # A camera without a folder is a missing view.
    assert match_cameras(["cam1_json", "cam3_json"], ["cam_01", "cam_02", "cam_03"]) == [0, None, 1]


def test_match_cameras_by_order() -> None:
    assert match_cameras(["left", "right"], ["a", "b"]) == [0, 1]
    assert match_cameras(["cam0_json", "cam1_json"], ["cam_01", "cam_02"]) == [0, 1]  # zero-based folders


def test_match_cameras_mismatch_names_both_lists() -> None:
    with pytest.raises(KeypointsError, match=r"folders \['left', 'mid', 'right'\], cameras \['a', 'b'\]"):
        match_cameras(["left", "mid", "right"], ["a", "b"])
    with pytest.raises(KeypointsError, match="cam7_json"):
        match_cameras(["cam1_json", "cam7_json", "cam9_json"], ["cam_01", "cam_02"])
    with pytest.raises(KeypointsError, match="cam7_json"):  # numbers contradict: never matched by order
        match_cameras(["cam1_json", "cam2_json", "cam7_json"], ["cam_01", "cam_02", "cam_03"])


def test_read_multiview_aligns_frames_by_number(tmp_path: Path) -> None:
    for n in (0, 1, 2):
        _write(tmp_path / "cam2_json", f"c2.{n:04d}.json", _person(200.0 + n))
    for n in (1, 2, 3):
        _write(tmp_path / "cam1_json", f"c1.{n:04d}.json", _person(100.0 + n))
    mv = read_multiview(tmp_path, ["cam_01", "cam_02"])
    np.testing.assert_array_equal(mv.frame_numbers, [0, 1, 2, 3])
    assert mv.keypoints.shape == (4, 2, J, 3)
    assert np.isnan(mv.keypoints[0, 0, :, 0]).all()
    assert np.isnan(mv.keypoints[3, 1, :, 0]).all()
    np.testing.assert_array_equal(mv.keypoints[1:3, 0, 0, 0], [101.0, 102.0])
    np.testing.assert_array_equal(mv.keypoints[1:3, 1, 0, 0], [201.0, 202.0])
    assert [f.name if f else None for f in mv.folders] == ["cam1_json", "cam2_json"]


def test_folder_without_camera_subfolders_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path, "f0.json", _person(0.0))
    with pytest.raises(KeypointsError, match="its own sub-folder"):
        read_multiview(tmp_path, ["a", "b"])
