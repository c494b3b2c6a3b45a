"""The world frame: scale from a measured length, the floor from a board or from feet that barely move,
and the comparison of two rigs."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.calibration.world import (
    WorldError,
    body_up,
    compare_rigs,
    floor_from_board,
    floor_from_feet,
    scale_from_length,
)
from crosspose.geometry import CameraRig
from crosspose.skeleton import get_layout

JOINTS = get_layout("openpose-body25b").joints


def test_a_performer_on_one_foot_gets_the_legs_axis_and_a_warning(
    body: dict[str, tuple[float, float, float]],
) -> None:
    """Resting feet that span a few centimetres cannot tilt a plane: up is the legs' axis, and the user is
    told (the Pose2Sim take is such a take: 8.4° from Qualisys's vertical)."""
    template = np.array([body[j] for j in JOINTS])
    frames = 20
    points = np.concatenate([template] * frames)
    group = np.repeat(np.arange(frames), len(JOINTS))
    label = np.tile(np.arange(len(JOINTS)), frames)
    floor = floor_from_feet(points, group, label, JOINTS, forward=np.array([1.0, 0, 0]))
    assert any("under 0.5 m" in w and "legs' axis" in w for w in floor.warnings)
    np.testing.assert_allclose(floor.frame.R[2], body_up(points, group, label, JOINTS), atol=1e-9)
    world = floor.frame.apply(points)
    np.testing.assert_allclose(world[label == JOINTS.index("LHeel"), 2], body["LHeel"][2], atol=0.01)


def test_floor_from_a_board_lying_on_it() -> None:
    obj = np.stack(np.meshgrid(np.arange(4) * 0.1, np.arange(3) * 0.1), -1).reshape(-1, 2)
    obj = np.c_[obj, np.zeros(len(obj))]
    # the board face up on the floor: board x = world x, board y (down the page) = world -y
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # and the solved frame turned 90° about z
    world = obj * [1, -1, -1]
    solved = world @ R.T + [1.0, 2.0, 3.0]
    floor = floor_from_board(obj, solved)
    np.testing.assert_allclose(floor.frame.apply(solved), world, atol=1e-9)


def test_length_spec_errors_name_the_problem() -> None:
    centres = np.array([[0.0, 0, 0], [3.0, 0, 0]])
    assert scale_from_length("a-b=1.5", ["a", "b"], centres)[0] == pytest.approx(0.5)
    with pytest.raises(WorldError, match="CAMERA-CAMERA=METRES"):
        scale_from_length("a b 1.5", ["a", "b"], centres)
    with pytest.raises(WorldError, match=r"in \(0, 100\)"):
        scale_from_length("a-b=3000", ["a", "b"], centres)


def test_compare_rigs_is_blind_to_a_similarity_but_not_to_a_bump(rig: CameraRig) -> None:
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    moved = CameraRig([c.replace(R=c.R @ R.T, t=c.t * 2 - c.R @ R.T @ [2.0, 0, 0] * 2) for c in rig])
    report = compare_rigs(moved, rig)
    cams = report["cameras"]
    assert isinstance(cams, dict)
    assert max(c["rotation_deg"] for c in cams.values()) < 1e-6
    assert max(c["centre_mm_similarity"] for c in cams.values()) < 1e-3
    assert report["similarity_scale"] == pytest.approx(0.5)
    with pytest.raises(WorldError, match="no camera"):
        compare_rigs(CameraRig([rig[0].replace(name="other")]), rig)
