"""Rest poses, swing-twist rotations, forward kinematics, and the live (per-frame) solver."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest

from crosspose.motion import (
    BONE_HEAD_JOINTS,
    BONE_PARENTS,
    BONES,
    UNITY_BONES,
    LiveRotations,
    RestPose,
    estimate_rest_pose,
    forward_kinematics,
    humanoid_map,
    joints_from_fk,
    rest_pose,
    solve_rotations,
    yup_to_zup,
    zup_to_yup,
)
from crosspose.motion.quaternions import matrix_to_quat, quat_to_matrix
from crosspose.skeleton import BODY32, H36M17
from crosspose.studio.motion import Motion as Clip
from crosspose.studio.motion import generate_motion

J = {name: i for i, name in enumerate(H36M17.joints)}
Bound = Callable[[np.ndarray, RestPose], np.ndarray]


def _globals(rotations: np.ndarray) -> np.ndarray:
    """``(N, B, 3, 3)`` world orientation of every bone (chained by hand from the local quaternions)."""
    R = quat_to_matrix(rotations)
    G = np.empty_like(R)
    for b, p in enumerate(BONE_PARENTS):
        G[:, b] = R[:, b] if p < 0 else G[:, p] @ R[:, b]
    return G


def test_hierarchy_is_consistent() -> None:
    assert len(BONES) == len(BONE_PARENTS) == len(BONE_HEAD_JOINTS) == len(set(BONES))
    assert all(p < b for b, p in enumerate(BONE_PARENTS))
    assert BONE_PARENTS.count(-1) == 1
    assert set(UNITY_BONES) == set(BONES)
    assert {"Hips", "Spine", "Chest", "Neck", "Head", "LeftUpperArm", "RightLowerLeg"} <= set(
        UNITY_BONES.values())
    assert set(BONE_HEAD_JOINTS) - {-1} | {J["head"]} == set(range(17))  # every joint is reproduced
    # Human3.6M-17 carries every bone but the toes (no toe point), the first 19 in their old order
    h36m = humanoid_map(H36M17)
    assert h36m.bones == BONES[:19]
    assert h36m.bone_parents == BONE_PARENTS[:19]
    assert BONES[19:] == ("left_toes", "right_toes")
    assert humanoid_map(BODY32).bones == BONES


def test_axes() -> None:
    z_up = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(zup_to_yup(z_up), [[0, 1, 0], [2, 3, 1]])
    np.testing.assert_allclose(yup_to_zup(zup_to_yup(z_up)), z_up)


def test_rest_pose_is_a_scaled_t_pose() -> None:
    rest = rest_pose(1.80)
    assert rest.height == pytest.approx(1.80)
    L = rest.bone_lengths
    assert L["left_upper_arm"] == L["right_upper_arm"] > 0.2
    off = dict(zip(BONES, rest.offsets, strict=True))
    assert off["left_upper_arm"][0] > 0 > off["right_upper_arm"][0]  # left arm along +X
    assert off["left_lower_arm"][0] == pytest.approx(L["left_upper_arm"])
    assert off["left_lower_leg"][1] == pytest.approx(-L["left_upper_leg"])  # legs down -Y
    assert off["chest"][1] > 0
    assert off["spine"].tolist() == [0, 0, 0]
    custom = rest_pose(1.80, {"left_upper_arm": 0.4})
    assert custom.bone_lengths["left_upper_arm"] == 0.4
    with pytest.raises(ValueError, match="unknown bone 'tail'"):
        rest_pose(bone_lengths={"tail": 1.0})
    with pytest.raises(ValueError, match="plausible stature"):
        rest_pose(17.5)


def test_estimated_rest_pose_is_robust(take: Clip) -> None:
    joints = take.joints.copy()
    truth = estimate_rest_pose(joints).bone_lengths
    rng = np.random.default_rng(0)
    confidence = np.ones(joints.shape[:2])
    bad = rng.random(joints.shape[:2]) < 0.2
    joints[bad] += rng.normal(0, 0.3, (int(bad.sum()), 3))  # wild outliers on 20 % of the joints ...
    confidence[bad] = 0.05  # ... that the solver flags
    joints[rng.random(joints.shape[:2]) < 0.1] = np.nan
    est = estimate_rest_pose(joints, confidence).bone_lengths
    for name, length in truth.items():
        assert est[name] == pytest.approx(length, abs=2e-3), name
    # the performer's own segment lengths (the generator keeps them exact in every frame)
    thigh = np.linalg.norm(take.joints[:, J["l_knee"]] - take.joints[:, J["l_hip"]], axis=-1)
    assert est["left_upper_leg"] == pytest.approx(float(np.median(thigh)), abs=2e-3)
    assert est["left_upper_arm"] == est["right_upper_arm"]  # symmetrised
    with pytest.raises(ValueError, match="no frame"):
        estimate_rest_pose(np.full((3, 17, 3), np.nan))


@pytest.mark.parametrize("clip", ["take", "mocap", "pose2sim"])
def test_forward_kinematics_reproduces_the_joints(clip: str, request: pytest.FixtureRequest,
                                                  bound: Bound) -> None:
    if clip != "take":
        request.applymarker(pytest.mark.network)
    joints = request.getfixturevalue(clip).joints
    motion = solve_rotations(joints, fps=60.0)
    assert motion.rotations.shape == (len(joints), len(BONES), 4)
    np.testing.assert_allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0, atol=1e-12)
    error = np.linalg.norm(joints_from_fk(motion) - joints, axis=-1)
    excess = error - 1e-3 - bound(joints, motion.rest)
    assert (excess <= 0).all(), float(excess.max())
    # and it is no free pass: the bound is small (markerless Pose2Sim's lengths vary by ~1 cm per bone)
    assert np.median(bound(joints, motion.rest)) < (0.01 if clip == "take" else 0.03)
    # bone heads from forward_kinematics are the Y-up joints
    heads = forward_kinematics(motion)
    np.testing.assert_allclose(heads[:, 0], zup_to_yup(joints[:, 0]), atol=1e-12)


def test_rotations_follow_the_body_planes(take: Clip) -> None:
    motion = solve_rotations(take.joints)
    G = _globals(motion.rotations)
    P = zup_to_yup(take.joints)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    hips, chest = BONES.index("hips"), BONES.index("chest")
    # hips: rest +X is the right → left hip line; chest: rest +X is the shoulder line, rest +Y the segment
    np.testing.assert_allclose(G[:, hips, :, 0], unit(P[:, J["l_hip"]] - P[:, J["r_hip"]]), atol=1e-9)
    np.testing.assert_allclose(G[:, chest, :, 1], unit(P[:, J["thorax"]] - P[:, J["spine"]]), atol=1e-9)
    shoulders = unit(P[:, J["l_shoulder"]] - P[:, J["r_shoulder"]])
    chest_x = G[:, chest, :, 0]
    assert ((chest_x * shoulders).sum(-1) > np.cos(np.radians(60))).all()
    off_plane = np.abs((shoulders * np.cross(chest_x, G[:, chest, :, 1])).sum(-1))
    assert off_plane.max() < 1e-9  # the shoulder line lies in the chest's x-y plane


def _spin(joints: np.ndarray, turns: float) -> np.ndarray:
    """Rotate each frame about the vertical through its pelvis, ``turns`` full turns over the clip."""
    n = joints.shape[0]
    a = np.linspace(0, 2 * np.pi * turns, n)
    c, s = np.cos(a), np.sin(a)
    R = np.zeros((n, 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1
    centre = joints[:, :1]
    return np.einsum("nij,nkj->nki", R, joints - centre) + centre


def test_no_sign_flips_on_a_spinning_performer(take: Clip) -> None:
    joints = _spin(take.joints[:300], turns=5.0)  # a turn per second at 60 fps
    motion = solve_rotations(joints, fps=60.0)
    q = motion.rotations
    dots = (q[1:] * q[:-1]).sum(-1)
    assert dots.min() > np.cos(np.radians(15) / 2), "a quaternion jumped (sign flip or a twist snap)"
    # the raw quaternions (w ≥ 0) do flip: the test would catch a solver that forgot continuity
    raw = matrix_to_quat(quat_to_matrix(q))
    assert ((raw[1:] * raw[:-1]).sum(-1) < 0).any()
    # and the hips really spin: five more turns of heading (about +Y) than the performer's own

    def heading(rotations: np.ndarray) -> np.ndarray:
        lateral = _globals(rotations)[:, 0, :, 0]
        return np.unwrap(np.arctan2(-lateral[:, 2], lateral[:, 0]))

    extra = heading(q) - heading(solve_rotations(take.joints[:300]).rotations)
    assert extra[-1] - extra[0] == pytest.approx(2 * np.pi * 5, abs=1e-6)


def _arm_frames() -> tuple[np.ndarray, np.ndarray]:
    """A standing frame whose left elbow bends 90° (forearm forward), straightens, stays straight
    (3 mm noise) and bends again in the same plane; returns joints and per-frame elbow flexion (deg)."""
    base = generate_motion(seed=1, num_frames=1, fps=60.0, actions=("walk",)).joints[0]
    flex = np.concatenate([np.full(20, 90.0), np.linspace(90, 0, 40), np.zeros(120), np.linspace(0, 90, 40)])
    rng = np.random.default_rng(4)
    frames = np.repeat(base[None], len(flex), 0)
    sho = base[J["l_shoulder"]]
    down = np.array([0.0, 0.0, -1.0])
    forward = np.array([1.0, 0.0, 0.0])
    upper = np.linalg.norm(base[J["l_elbow"]] - sho)
    fore = np.linalg.norm(base[J["l_wrist"]] - base[J["l_elbow"]])
    elbow = sho + upper * down
    a = np.radians(flex)[:, None]
    frames[:, J["l_elbow"]] = elbow + rng.normal(0, 0.003, (len(flex), 3))
    frames[:, J["l_wrist"]] = elbow + fore * (np.cos(a) * down + np.sin(a) * forward) + rng.normal(
        0, 0.003, (len(flex), 3))
    return frames, flex


def test_twist_is_stable_while_the_arm_is_straight() -> None:
    joints, flex = _arm_frames()
    motion = solve_rotations(joints, fps=60.0)
    G = _globals(motion.rotations)[:, BONES.index("left_upper_arm")]
    P = zup_to_yup(joints)
    # the upper arm's rest bend direction (+Z: elbow flexion brings the forearm forward in the T-pose)
    bend_axis = G[:, :, 2]
    forward_yup = zup_to_yup(np.array([1.0, 0.0, 0.0]))
    bent = flex >= 45
    assert ((bend_axis[bent] @ forward_yup) > np.cos(np.radians(8))).all()  # follows the bending plane
    straight = flex == 0
    drift = np.degrees(np.arccos(np.clip(bend_axis[straight] @ forward_yup, -1, 1)))
    assert drift.max() < 8, drift.max()
    # while the naive bending plane of the noisy straight arm points anywhere
    upper = P[:, J["l_elbow"]] - P[:, J["l_shoulder"]]
    lower = P[:, J["l_wrist"]] - P[:, J["l_elbow"]]
    naive = np.cross(np.cross(upper, lower), upper)
    naive /= np.linalg.norm(naive, axis=-1, keepdims=True)
    spread = np.degrees(np.arccos(np.clip(naive[straight] @ forward_yup, -1, 1)))
    assert spread.max() > 90
    # the lower arm keeps following the wrist (swing): the straight arm still reaches the wrist
    assert np.abs(joints_from_fk(motion) - joints).max() < 0.02


def test_missing_joints_hold_the_previous_rotation(take: Clip) -> None:
    joints = take.joints[:200].copy()
    confidence = np.ones((200, 17))
    joints[140:150, J["l_wrist"]] = np.nan
    confidence[160:170, J["r_knee"]] = 0.0
    motion = solve_rotations(joints, confidence=confidence)
    q = motion.rotations
    lower_arm = BONES.index("left_lower_arm")
    np.testing.assert_allclose(q[140:150, lower_arm], np.repeat(q[139:140, lower_arm], 10, 0), atol=1e-12)
    for name in ("right_upper_leg", "right_lower_leg"):
        b = BONES.index(name)
        np.testing.assert_allclose(q[160:170, b], np.repeat(q[159:160, b], 10, 0), atol=1e-12)
        assert not np.allclose(q[158, b], q[159, b])  # it was moving
    assert not np.allclose(q[138, lower_arm], q[139, lower_arm])
    assert np.isfinite(q).all()
    assert np.isfinite(motion.root).all()
    # a take whose first frames miss the pelvis: the root starts at the first seen position
    joints[:5, J["pelvis"]] = np.nan
    assert np.isfinite(solve_rotations(joints).root).all()


def test_live_agrees_with_the_batch_solver(take: Clip) -> None:
    joints = take.joints[:240].copy()
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.3, 1.0, (240, 17))
    confidence[rng.random((240, 17)) < 0.05] = 0.0
    joints[rng.random((240, 17)) < 0.05] = np.nan
    rest = estimate_rest_pose(joints, confidence)
    batch = solve_rotations(joints, rest, confidence)
    live = LiveRotations(rest)
    out = [live.update(joints[i], confidence[i]) for i in range(240)]
    assert all(o is not None for o in out)
    np.testing.assert_allclose(np.stack([o[1] for o in out]), batch.rotations, atol=1e-9)  # type: ignore[index]
    np.testing.assert_allclose(np.stack([o[0] for o in out]), batch.root, atol=1e-12)  # type: ignore[index]


def test_live_estimates_its_rest_pose_then_agrees(take: Clip) -> None:
    joints = take.joints[:120]
    confidence = np.ones((120, 17))
    confidence[:5] = 0.2  # not confident enough for the rest pose
    live = LiveRotations(warmup_frames=30)
    out = [live.update(joints[i], confidence[i]) for i in range(120)]
    assert all(o is None for o in out[:34])
    assert all(o is not None for o in out[34:])
    assert live.rest is not None
    np.testing.assert_allclose(live.rest.offsets, estimate_rest_pose(joints[5:35]).offsets, atol=1e-12)
    batch = solve_rotations(joints[34:], live.rest, confidence[34:])
    np.testing.assert_allclose(np.stack([o[1] for o in out[34:]]), batch.rotations, atol=1e-9)  # type: ignore[index]
    # a wrist the cameras never see confidently does not stall the warm-up; its side mirrors the other
    occluded = confidence.copy()
    occluded[:, J["l_wrist"]] = 0.0
    partial = LiveRotations(warmup_frames=30)
    assert sum(partial.update(joints[i], occluded[i]) is not None for i in range(40)) == 6
    assert partial.rest is not None
    lengths = partial.rest.bone_lengths
    assert lengths["left_lower_arm"] == lengths["right_lower_arm"] > 0.2
    live.reset()  # a new performer: estimate again
    assert live.rest is None
    assert live.update(joints[0], confidence[0]) is None
    given = LiveRotations(rest_pose(1.7))
    given.reset()
    assert given.rest is not None
    assert given.update(joints[0], confidence[0]) is not None
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        given.update(joints[:2], None)


def test_speed(take: Clip) -> None:
    """Generous bounds for a loaded 2-core machine (measured: ~0.4 ms per live frame, ~1 s for 18 000
    frames in a batch; see the report)."""
    joints = np.tile(take.joints, (10, 1, 1))  # 6000 frames
    rest = estimate_rest_pose(take.joints)
    t0 = time.perf_counter()
    solve_rotations(joints, rest)
    batch_s = time.perf_counter() - t0
    live = LiveRotations(rest)
    conf = np.ones(17)
    times = []
    for i in range(300):
        t0 = time.perf_counter()
        live.update(joints[i], conf)
        times.append(time.perf_counter() - t0)
    assert batch_s < 5.0
    assert float(np.median(times)) < 2e-3


def test_layering() -> None:
    code = ("import sys, crosspose.motion; "
            "bad = [m for m in ('zmq', 'fastapi', 'pydantic') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
