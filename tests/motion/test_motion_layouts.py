"""Rotations, the filter and every motion file take the joints' layout (issue 16.3): a layout with more
joints than Human3.6M-17 drives the same bones and names its own markers; one without a humanoid mapping
is refused by name, never read as 17 joints."""

from __future__ import annotations

import json
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from crosspose.io.trc import read_trc
from crosspose.motion import (
    FilterSettings,
    LiveRotations,
    OneEuroFilter,
    estimate_rest_pose,
    filter_joints,
    joints_from_fk,
    solve_rotations,
    write_motion,
)
from crosspose.skeleton import H36M17, Skeleton
from crosspose.studio.motion import generate_motion


def _with_leaves(joints17: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``(N, 17, 3)`` → ``(N, 20, 3)``: toes 15 cm ahead of the ankles, the nose 10 cm ahead of the head."""
    ahead = np.array([0.15, 0.0, -0.05])
    extra = [joints17[:, H36M17.index("l_ankle")] + ahead, joints17[:, H36M17.index("r_ankle")] + ahead,
             joints17[:, H36M17.index("head")] + [0.10, 0.0, -0.05]]
    out = np.concatenate([joints17, np.stack(extra, 1)], axis=1)
    assert out.shape[1] == skeleton.num_joints
    return out


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return generate_motion(seed=5, num_frames=90, fps=30.0).joints


def test_a_layout_with_extra_leaves_drives_the_same_bones(clip: np.ndarray, toes_skeleton: Skeleton) -> None:
    joints = _with_leaves(clip, toes_skeleton)
    reference = solve_rotations(clip, fps=30.0)
    motion = solve_rotations(joints, fps=30.0, skeleton=toes_skeleton)
    assert motion.skeleton is toes_skeleton
    np.testing.assert_array_equal(motion.rotations, reference.rotations)
    np.testing.assert_array_equal(motion.rest.offsets, reference.rest.offsets)
    back = joints_from_fk(motion)
    assert back.shape == joints.shape
    np.testing.assert_array_equal(back[:, :17], joints_from_fk(reference))
    assert np.isnan(back[:, 17:]).all()  # no bone reads the toes or the nose: not invented
    live = LiveRotations(skeleton=toes_skeleton, rest=motion.rest)
    frames = [live.update(j, None) for j in joints]
    np.testing.assert_allclose(np.stack([f[1] for f in frames if f is not None]), motion.rotations, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(20, 3\) \(test-h36m17-toes"):
        live.update(clip[0], None)  # 17 joints given to a 20-joint solver: refused, not read as H36M-17


def test_a_layout_without_a_humanoid_mapping_is_refused_by_name(stick_skeleton: Skeleton, tmp_path: Path
                                                                ) -> None:
    from crosspose.motion import humanoid_map

    with pytest.raises(ValueError, match=r"layout test-stick5 has no humanoid mapping: bone hips needs the "
                                         r"joints l_hip, r_hip"):
        humanoid_map(stick_skeleton)
    joints = np.zeros((4, 5, 3)) + np.arange(5)[:, None] * 0.1
    with pytest.raises(ValueError, match="test-stick5 has no humanoid mapping"):
        solve_rotations(joints, skeleton=stick_skeleton)
    with pytest.raises(ValueError, match="test-stick5 has no humanoid mapping"):
        estimate_rest_pose(joints, skeleton=stick_skeleton)
    with pytest.raises(ValueError, match="test-stick5 has no humanoid mapping"):
        LiveRotations(skeleton=stick_skeleton)
    for fmt in ("bvh", "jsonl"):
        with pytest.raises(ValueError, match="test-stick5 has no humanoid mapping"):
            write_motion(tmp_path / f"x.{fmt}", joints, np.ones((4, 5)), np.arange(4) / 30,
                         skeleton=stick_skeleton)
        assert not (tmp_path / f"x.{fmt}").exists()
    # markers need no bones: TRC and C3D carry any layout under its own names
    trc = read_trc(write_motion(tmp_path / "x.trc", joints, np.ones((4, 5)), np.arange(4) / 30,
                                skeleton=stick_skeleton))
    assert trc.markers == stick_skeleton.joints


def test_motion_files_name_the_layouts_joints(clip: np.ndarray, toes_skeleton: Skeleton, tmp_path: Path
                                              ) -> None:
    joints = _with_leaves(clip, toes_skeleton)
    conf = np.ones(joints.shape[:2])
    times = np.arange(len(joints)) / 30.0
    trc = read_trc(write_motion(tmp_path / "t.trc", joints, conf, times, skeleton=toes_skeleton))
    assert trc.markers == toes_skeleton.joints
    np.testing.assert_allclose(trc.marker("l_toe"), joints[:, 17], atol=1e-5)  # read back into our Z-up world
    c3d = ezc3d.c3d(str(write_motion(tmp_path / "t.c3d", joints, conf, times, skeleton=toes_skeleton)))
    assert tuple(c3d["parameters"]["POINT"]["LABELS"]["value"]) == toes_skeleton.joints
    assert c3d["data"]["points"].shape[1] == 20
    lines = (write_motion(tmp_path / "t.jsonl", joints, conf, times, skeleton=toes_skeleton)
             .read_text().splitlines())
    header, first = json.loads(lines[0]), json.loads(lines[1])
    assert header["joint_names"] == list(toes_skeleton.joints)
    assert len(first["joints"]) == 20
    # the BVH drives the same bones as Human3.6M-17's: the same file
    bvh = write_motion(tmp_path / "t.bvh", joints, conf, times, skeleton=toes_skeleton).read_text()
    assert bvh == write_motion(tmp_path / "h.bvh", clip, conf[:, :17], times).read_text()
    # a 17-joint take is not a take of this layout
    with pytest.raises(ValueError, match=r"\(N, 20, 3\) \(test-h36m17-toes"):
        write_motion(tmp_path / "bad.trc", clip, conf[:, :17], times, skeleton=toes_skeleton)


def test_the_filter_takes_each_joint_s_group_by_name(toes_skeleton: Skeleton, clip: np.ndarray) -> None:
    joints = _with_leaves(clip, toes_skeleton)
    times = np.arange(len(joints)) / 30.0
    # the toes and the nose belong to no group: refused by name, not filtered with a guess
    with pytest.raises(ValueError, match="do not name l_toe, r_toe of layout test-h36m17-toes"):
        filter_joints(joints, times, FilterSettings.default(), toes_skeleton)
    with pytest.raises(ValueError, match="do not name l_toe"):
        OneEuroFilter(FilterSettings.default(), toes_skeleton)
    # joints of another layout than the filter's are refused too (was: every joint got the torso's settings)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\) \(h36m17\)"):
        filter_joints(joints, times, FilterSettings.default())
