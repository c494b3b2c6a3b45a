"""The full body's rotations (issue 19.4): feet from ankle, heel and big toe, hands from wrist, index and
pinky, the head from the ears; carried by BVH (read back by bvhtoolbox), C3D and TRC (VMC:
tests/streaming/test_vmc_body32.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_motion_export import bvh_positions

from crosspose.io.trc import ZUP_TO_YUP, read_trc
from crosspose.motion import BONES, BVH_NAMES, LiveRotations, solve_rotations, write_motion
from crosspose.motion.humanoid import BONE_PARENTS
from crosspose.motion.quaternions import quat_to_matrix
from crosspose.skeleton import BODY32, H36M17
from crosspose.studio import extremities as ex
from crosspose.studio.motion import generate_motion

FPS = 30.0
EXTREMITY_BONES = ("left_foot", "right_foot", "left_hand", "right_hand")


def full_body_take(frames: int = 90) -> tuple[np.ndarray, ex.ExtremityPoses]:
    """A full-body take: feet pitching and rolling, palms turning, the head yawing (radians)."""
    motion = generate_motion(seed=5, num_frames=frames, fps=FPS)
    t = np.arange(frames)[:, None] / FPS
    wave = np.sin(2 * np.pi * 0.5 * t + np.array([0.0, 1.2]))
    poses = ex.ExtremityPoses(foot_pitch=0.5 * wave, foot_roll=0.25 * wave[:, ::-1], hand_roll=1.0 * wave,
                              head_yaw=0.6 * wave[:, 0])
    return ex.full_body(motion.joints, poses), poses


@pytest.fixture(scope="module")
def take() -> tuple[np.ndarray, ex.ExtremityPoses]:
    return full_body_take()


def _conf_times(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full confidence and the frames' times (s) for :func:`write_motion`."""
    return np.ones(joints.shape[:2]), np.arange(len(joints)) / FPS


def _global(motion, bone: str) -> np.ndarray:
    """``(N, 3, 3)`` the bone's global rotation (Y-up export world) from the local quaternions."""
    R = quat_to_matrix(motion.rotations)
    chain = []
    b = BONES.index(bone)
    while b >= 0:
        chain.append(b)
        b = BONE_PARENTS[b]
    G = np.broadcast_to(np.eye(3), (*R.shape[:1], 3, 3)).copy()
    for b in reversed(chain):
        G = G @ R[:, b]
    return G


def _relative(frames: np.ndarray) -> np.ndarray:
    """Each frame's rotation from frame 0: ``F_i F_0^T`` (a constant offset between two definitions of the
    same rigid frame cancels)."""
    return frames @ np.swapaxes(frames[:1], -1, -2)


def test_foot_and_hand_rotations_follow_the_known_poses(take) -> None:
    joints, _ = take
    motion = solve_rotations(joints, fps=FPS, skeleton=BODY32)
    to_yup = ZUP_TO_YUP
    for bone, side, frames in (("left_foot", "l", ex.measured_foot_frames),
                               ("right_foot", "r", ex.measured_foot_frames),
                               ("left_hand", "l", ex.measured_hand_frames),
                               ("right_hand", "r", ex.measured_hand_frames)):
        truth = to_yup @ frames(joints, side) @ to_yup.T  # the true frames in the export world
        solved = _global(motion, bone)
        error = np.degrees(ex.rotation_angle(_relative(solved), _relative(truth)))
        assert error.max() < 1e-4, bone  # exact: the points are exact
        # As continuous as the motion itself (the studio's palm-down reference flips where a forearm
        # points straight down, so its frames may jump; the solved ones jump exactly as much, no more).
        turn = ex.rotation_angle(solved[1:], solved[:-1])
        np.testing.assert_allclose(turn, ex.rotation_angle(truth[1:], truth[:-1]), atol=1e-6)
        assert np.degrees(ex.rotation_angle(solved, solved[:1])).max() > 20.0, bone  # and they do move
    # Human3.6M-17's feet and hands keep the identity: nothing to turn them with.
    h36m = solve_rotations(joints[:, :17], fps=FPS, skeleton=H36M17)
    for bone in EXTREMITY_BONES:
        np.testing.assert_allclose(np.abs(h36m.rotations[:, BONES.index(bone), 0]), 1.0)


def test_head_yaw_comes_from_the_ears(take) -> None:
    joints, poses = take
    motion = solve_rotations(joints, fps=FPS, skeleton=BODY32)
    head = _global(motion, "head")
    hips = _global(motion, "hips")
    forward = lambda G: G[:, [0, 2], 2]  # noqa: E731 - the rest forward (+Z) on the floor (x, z)
    yaw = np.unwrap(np.arctan2(forward(head)[:, 0], forward(head)[:, 1])
                    - np.arctan2(forward(hips)[:, 0], forward(hips)[:, 1]))
    # the head's turn from the hips' follows the given yaw up to the neck's own (constant-ish) lean
    assert np.corrcoef(yaw, poses.head_yaw)[0, 1] > 0.95
    assert np.ptp(yaw) == pytest.approx(np.ptp(poses.head_yaw), rel=0.2)


def test_live_rotations_equal_the_take_s(take) -> None:
    joints, _ = take
    motion = solve_rotations(joints, fps=FPS, skeleton=BODY32)
    live = LiveRotations(rest=motion.rest, skeleton=BODY32)
    frames = np.stack([live.update(j, None)[1] for j in joints])
    np.testing.assert_allclose(frames, motion.rotations, atol=1e-9)


def test_bvh_read_back_has_the_foot_and_hand_channels_moving(take, tmp_path: Path) -> None:
    joints, _ = take
    path = write_motion(tmp_path / "take.bvh", joints, *_conf_times(joints), fps=FPS, skeleton=BODY32)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        from bvhtoolbox import BvhTree
    tree = BvhTree(path.read_text())
    for bone in (*EXTREMITY_BONES, "head"):
        name = BVH_NAMES[bone]
        values = np.array(tree.frames_joint_channels(name, tree.joint_channels(name)), dtype=float)
        assert values.std(0).max() > 5.0, name  # degrees
    positions, _, frames, _ = bvh_positions(path)
    assert frames == len(joints)
    # the toes joint (at the big toe) turns with the foot: it moves relative to the ankle
    toe = positions["LeftToeBase"] - positions["LeftFoot"]
    assert np.ptp(np.degrees(np.arctan2(toe[:, 1], np.linalg.norm(toe[:, [0, 2]], axis=1)))) > 20.0


def test_bvh_carries_the_toes_at_the_solved_big_toes(take, tmp_path: Path) -> None:
    """The toes joints, children of the feet, read back by bvhtoolbox: their positions are the solved big
    toes (forward kinematics through the foot's frame, up to the rest pose's one foot shape for both
    sides), and their channels stay at rest (one toe point gives no toe flexion)."""
    joints, _ = take
    path = write_motion(tmp_path / "take.bvh", joints, *_conf_times(joints), fps=FPS, skeleton=BODY32)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        from bvhtoolbox import BvhTree
    tree = BvhTree(path.read_text())
    positions, _, _, names = bvh_positions(path)
    for side, foot, toes in (("l", "LeftFoot", "LeftToeBase"), ("r", "RightFoot", "RightToeBase")):
        assert tree.joint_parent(toes).name == foot
        assert tree.joint_channels(toes) == ["Zrotation", "Xrotation", "Yrotation"]
        values = np.array(tree.frames_joint_channels(toes, tree.joint_channels(toes)), dtype=float)
        np.testing.assert_allclose(values, 0.0, atol=1e-4)
        truth = joints[:, BODY32.index(f"{side}_big_toe")] @ ZUP_TO_YUP.T
        error = np.linalg.norm(positions[toes] - truth, axis=-1)
        assert error.max() < 0.005, (toes, float(error.max()))  # metres
        assert f"{toes}_End" in positions
        assert f"{foot}_End" not in positions
    assert names[-1] == "LeftToeBase"
    assert len(names) == len(BONES)
    # Human3.6M-17 has no toe point: no toes joint (its hierarchy as before the toes)
    h36m = write_motion(tmp_path / "h36m.bvh", joints[:, :17], *_conf_times(joints[:, :17]), fps=FPS)
    assert "ToeBase" not in h36m.read_text()


def test_toes_keep_the_identity_and_hold_with_the_foot(take) -> None:
    """The toes' local rotation is the identity in every frame, also while the toe point is missing (the
    foot then holds its last rotation, as every bone with a missing joint does: nothing is invented)."""
    joints, _ = take
    joints = joints.copy()
    joints[30:35, BODY32.index("l_big_toe")] = np.nan
    motion = solve_rotations(joints, fps=FPS, skeleton=BODY32)
    for bone in ("left_toes", "right_toes"):
        np.testing.assert_allclose(np.abs(motion.rotations[:, BONES.index(bone), 0]), 1.0, atol=1e-12)
    foot = BONES.index("left_foot")
    for frame in range(30, 35):
        np.testing.assert_allclose(motion.rotations[frame, foot], motion.rotations[29, foot], atol=1e-12)
    live = LiveRotations(rest=motion.rest, skeleton=BODY32)
    frames = np.stack([live.update(j, None)[1] for j in joints])
    np.testing.assert_allclose(frames, motion.rotations, atol=1e-9)


def test_trc_and_c3d_name_the_markers_as_the_issue_does(take, tmp_path: Path) -> None:
    import ezc3d

    joints, _ = take
    trc = read_trc(write_motion(tmp_path / "take.trc", joints, *_conf_times(joints), fps=FPS,
                                skeleton=BODY32))
    names = ("l_heel", "l_big_toe", "r_heel", "r_big_toe", "l_index", "l_pinky", "l_thumb", "r_index",
             "r_pinky", "r_thumb", "nose", "l_eye", "r_eye", "l_ear", "r_ear")
    assert trc.markers == (*H36M17.joints, *names)
    np.testing.assert_allclose(trc.marker("r_big_toe"), joints[:, BODY32.index("r_big_toe")], atol=1e-5)
    c3d = ezc3d.c3d(str(write_motion(tmp_path / "take.c3d", joints, *_conf_times(joints), fps=FPS,
                                     skeleton=BODY32)))
    assert tuple(c3d["parameters"]["POINT"]["LABELS"]["value"]) == BODY32.joints


def test_a_hand_whose_palm_line_is_short_turns_without_a_catch_up(take) -> None:
    """The palm rolls fast (50° over four frames, on top of the take's motion) while index and pinky come
    within 7 mm of each other (as BlazePose's did on the real clip, where the hand turned ~40° over the two
    frames its palm line was shortest): the roll read off a short line is blended with the previous
    frame's by the line's length (ROLL_TRUST), so no frame turns the hand by more than 30°. (Holding the
    rotation below 1 cm, as before, ended the hold with a catch-up of the whole turn in one frame.) With
    the line back to its length the rotation is the measured one again, in the take and frame by frame."""
    from crosspose.motion.quaternions import axis_angle_matrix

    joints, _ = take
    joints = joints.copy()
    wrist, index, pinky = (BODY32.index(n) for n in ("l_wrist", "l_index", "l_pinky"))
    lengths = np.array([0.03, 0.022, 0.016, 0.012, 0.008, 0.007, 0.014, 0.018, 0.024, 0.03])
    frames = 40 + np.arange(len(lengths))
    extra = np.radians(np.cumsum([0.0, 0.0, 0.0, 5.0, 15.0, 15.0, 15.0, 0.0, 0.0, 0.0]))  # the added roll
    after = np.arange(frames[-1] + 1, len(joints))
    frames, extra = np.concatenate([frames, after]), np.concatenate([extra, np.full(len(after), extra[-1])])
    lengths = np.concatenate([lengths, np.full(len(after), np.nan)])  # after: the take's own length
    axis = joints[frames, index] - joints[frames, wrist]
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    line = joints[frames, pinky] - joints[frames, index]
    turned = (axis_angle_matrix(axis, extra) @ line[..., None])[..., 0]
    scale = np.where(np.isnan(lengths), 1.0, lengths / np.linalg.norm(turned, axis=-1))
    joints[frames, pinky] = joints[frames, index] + turned * scale[:, None]
    motion = solve_rotations(joints, fps=FPS, skeleton=BODY32)
    hand = _global(motion, "left_hand")
    turn = np.degrees(ex.rotation_angle(hand[1:], hand[:-1]))
    assert 15.0 < turn[35:60].max() < 30.0  # it does turn (15° a frame and the take's own motion)
    # once the line is long again, the measured rotation (as from those frames alone)
    alone = solve_rotations(joints[55:], fps=FPS, skeleton=BODY32, rest=motion.rest)
    np.testing.assert_allclose(_global(motion, "left_hand")[55:], _global(alone, "left_hand"), atol=1e-9)
    live = LiveRotations(rest=motion.rest, skeleton=BODY32)
    frames_live = np.stack([live.update(j, None)[1] for j in joints])
    np.testing.assert_allclose(frames_live, motion.rotations, atol=1e-9)


def test_the_toes_rest_offset_is_measured_where_a_foot_has_a_frame(take) -> None:
    """The rest pose's toes: the big toe's offset from the ankle in the foot's frame, both sides averaged
    (mirrored); a foot whose sole has no length in every frame gives none (no warning, no NaN), and a layout
    without the toe points (Human3.6M-17) keeps the nominal one."""
    import warnings

    from crosspose.motion import estimate_rest_pose

    joints, _ = take
    both = estimate_rest_pose(joints, skeleton=BODY32).offsets[BONES.index("left_toes")]
    flat = joints.copy()
    flat[:, BODY32.index("l_heel")] = flat[:, BODY32.index("l_big_toe")]  # the left sole: no length
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        right_only = estimate_rest_pose(flat, skeleton=BODY32).offsets
    np.testing.assert_allclose(right_only[BONES.index("left_toes")],
                               right_only[BONES.index("right_toes")] * [-1.0, 1.0, 1.0])
    np.testing.assert_allclose(right_only[BONES.index("left_toes")], both, atol=0.01)
    assert abs(both[0]) < 1e-9  # the toe lies in the foot's plane
    nominal = estimate_rest_pose(joints[:, :17]).offsets[BONES.index("left_toes")]
    assert np.abs(nominal - both).max() > 0.02  # the template's, not the measured one


def test_json_lines_carry_the_toes(take, tmp_path: Path) -> None:
    """JSON lines of the full body name the toes bones (their parents the feet) and give them the identity;
    Human3.6M-17's carry no toes."""
    import json

    joints, _ = take
    path = write_motion(tmp_path / "take.jsonl", joints[:10], *_conf_times(joints[:10]), fps=FPS,
                        skeleton=BODY32)
    header, *frames = (json.loads(line) for line in path.read_text().splitlines())
    assert header["bones"][-2:] == ["left_toes", "right_toes"]
    assert header["unity_bones"][-2:] == ["LeftToes", "RightToes"]
    assert [header["bones"][p] for p in header["bone_parents"][-2:]] == ["left_foot", "right_foot"]
    toes = np.array([f["rotations"][-2:] for f in frames])
    np.testing.assert_allclose(np.abs(toes[..., 0]), 1.0, atol=1e-6)
    h36m = write_motion(tmp_path / "h36m.jsonl", joints[:10, :17], *_conf_times(joints[:10, :17]), fps=FPS)
    assert "left_toes" not in json.loads(h36m.read_text().splitlines()[0])["bones"]
