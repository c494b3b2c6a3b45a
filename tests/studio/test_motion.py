"""The procedural motion generator: determinism, exact bone lengths, joint limits, smoothness, floor."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.skeleton import H36M17
from crosspose.studio.motion import ACTIONS, Motion, Performer, flexion_angle, generate_motion

H = {name: i for i, name in enumerate(H36M17.joints)}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def clips() -> dict[int, Motion]:
    return {seed: generate_motion(seed, 1200) for seed in SEEDS}


def test_signature_shapes_and_determinism(clips: dict[int, Motion]) -> None:
    m = clips[0]
    assert isinstance(m, Motion)
    assert m.joints.shape == (1200, 17, 3)
    assert m.joints.dtype == np.float64
    assert m.actions.shape == (1200,)
    assert m.fps == 30.0
    assert m.skeleton is H36M17
    again = generate_motion(
        seed=0, num_frames=1200, fps=30.0, performer=None, actions=ACTIONS, volume=(2.0, 2.0)
    )
    np.testing.assert_array_equal(again.joints, m.joints)
    np.testing.assert_array_equal(again.actions, m.actions)
    assert not np.allclose(clips[1].joints, m.joints)


@pytest.mark.parametrize("seed", SEEDS)
def test_bone_lengths_are_the_performers_every_frame(clips: dict[int, Motion], seed: int) -> None:
    m = clips[seed]
    lengths = H36M17.bone_lengths(m.joints)
    expected = np.array([m.performer.limb_lengths[c] for _, c in H36M17.bones])
    np.testing.assert_allclose(lengths, np.broadcast_to(expected, lengths.shape), rtol=0, atol=1e-9)


def test_given_performer_is_used() -> None:
    p = Performer.random(7, height=1.55)
    m = generate_motion(3, 200, performer=p)
    assert m.performer is p
    np.testing.assert_allclose(H36M17.bone_lengths(m.joints)[0], [p.limb_lengths[c] for _, c in H36M17.bones])
    assert m.joints[:, H["head"], 2].max() < 1.62


@pytest.mark.parametrize("seed", SEEDS)
def test_knees_and_elbows_flex_one_way_within_limits(clips: dict[int, Motion], seed: int) -> None:
    J = clips[seed].joints
    for a, b, c in [
        ("r_hip", "r_knee", "r_ankle"),
        ("l_hip", "l_knee", "l_ankle"),
        ("r_shoulder", "r_elbow", "r_wrist"),
        ("l_shoulder", "l_elbow", "l_wrist"),
    ]:
        angle = np.rad2deg(flexion_angle(J[:, H[a]], J[:, H[b]], J[:, H[c]]))
        assert angle.min() >= 0
        assert angle.max() <= 150 + 1e-6, (b, angle.min(), angle.max())
    # no hyperextension: each knee lies in front of its hip→ankle line (body forward from the hips)
    left = J[:, H["l_hip"]] - J[:, H["r_hip"]]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    for hip, knee, ankle in [("r_hip", "r_knee", "r_ankle"), ("l_hip", "l_knee", "l_ankle")]:
        h, k, a = J[:, H[hip]], J[:, H[knee]], J[:, H[ankle]]
        u = (a - h) / np.linalg.norm(a - h, axis=-1, keepdims=True)
        off = (k - h) - np.sum((k - h) * u, axis=-1, keepdims=True) * u
        assert (np.sum(off * forward, axis=-1) > 0).all()


@pytest.mark.parametrize("fps", [30.0, 60.0])
def test_smooth_velocity_and_acceleration(fps: float) -> None:
    for seed in SEEDS:
        m = generate_motion(seed, int(40 * fps), fps=fps)
        speed = np.linalg.norm(np.diff(m.joints, axis=0), axis=-1) * fps
        accel = np.linalg.norm(np.diff(m.joints, 2, axis=0), axis=-1) * fps**2
        assert speed.max() < 5.0, speed.max()
        assert accel.max() < 50.0, accel.max()  # limb peaks in gait are tens of m/s²; a kink is > 100


@pytest.mark.parametrize("volume", [(2.0, 2.0), (1.0, 1.0), (3.0, 1.5)])
def test_stays_in_the_volume(volume: tuple[float, float]) -> None:
    for seed in SEEDS:
        J = generate_motion(seed, 1500, volume=volume).joints
        assert (np.abs(J[..., 0]) <= volume[0]).all()
        assert (np.abs(J[..., 1]) <= volume[1]).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_feet_on_and_never_below_the_floor(clips: dict[int, Motion], seed: int) -> None:
    m = clips[seed]
    ankles = m.joints[:, [H["l_ankle"], H["r_ankle"]], 2]
    assert ankles.min() >= m.performer.ankle_height - 1e-9
    assert (ankles.min(axis=1) <= m.performer.ankle_height + 0.03).all()  # always a supporting foot
    assert (m.joints[..., 2] > 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_each_action_appears_and_does_what_it_says(clips: dict[int, Motion], seed: int) -> None:
    m = clips[seed]
    assert set(m.actions) == set(ACTIONS)
    pelvis = m.joints[:, H["pelvis"]]
    speed = np.linalg.norm(np.diff(pelvis[:, :2], axis=0), axis=-1) * m.fps
    walking = m.actions[1:] == "walk"
    assert speed[walking].max() > 0.7  # walks
    assert speed[m.actions[1:] == "reach"].min() < 0.05  # stands while reaching
    stand = pelvis[m.actions == "reach", 2].max()
    assert pelvis[m.actions == "crouch", 2].min() < 0.75 * stand  # crouches
    arm = m.performer.limb_lengths[H["l_elbow"]] + m.performer.limb_lengths[H["l_wrist"]]
    reach = np.maximum(
        np.linalg.norm(m.joints[:, H["l_wrist"]] - m.joints[:, H["l_shoulder"]], axis=-1),
        np.linalg.norm(m.joints[:, H["r_wrist"]] - m.joints[:, H["r_shoulder"]], axis=-1),
    )
    assert reach[m.actions == "reach"].max() > 0.8 * arm
    facing = m.joints[:, H["l_hip"], :2] - m.joints[:, H["r_hip"], :2]
    heading = np.unwrap(np.arctan2(facing[:, 1], facing[:, 0]))
    turns = m.actions == "turn"
    assert np.ptp(heading[turns]) > np.pi / 3  # turns


def test_action_subset_and_short_clips() -> None:
    m = generate_motion(4, 300, actions=("crouch", "reach"))
    assert set(m.actions) == {"crouch", "reach"}
    short = generate_motion(5, 300)
    assert set(short.actions) == set(ACTIONS)
    assert generate_motion(6, 1).joints.shape == (1, 17, 3)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="unknown"):
        generate_motion(0, 10, actions=("dance",))
    with pytest.raises(ValueError, match="num_frames"):
        generate_motion(0, 0)
    with pytest.raises(ValueError, match="volume"):
        generate_motion(0, 10, volume=(0.3, 0.3))
    with pytest.raises(ValueError, match="height"):
        Performer(height=17.0)


def test_performer_variation() -> None:
    a, b = Performer.random(1), Performer.random(2)
    assert a.limb_lengths.shape == (17,)
    assert a.limb_lengths[0] == 0
    assert not np.allclose(a.limb_lengths, b.limb_lengths)
    rel = a.limb_lengths[1:] / (np.asarray(H36M17.template_lengths[1:]) * a.scale)
    assert (rel >= 0.9 - 1e-12).all()
    assert (rel <= 1.1 * 1.01 + 1e-12).all()
    # left/right nearly symmetric
    for left, right in H36M17.left_right_pairs:
        assert abs(a.limb_lengths[left] / a.limb_lengths[right] - 1) < 0.025
    np.testing.assert_allclose(Performer().limb_lengths, H36M17.template_lengths)
