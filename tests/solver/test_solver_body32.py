"""The full body (crosspose-body32): the extremities solved as leaves around their solved parents, the body
as Human3.6M-17 alone, feet and hands recovered from known poses, a joint no view sees missing."""

from __future__ import annotations

import numpy as np
import pytest
from solver_scene import project, random_pose, render, ring_projections

from crosspose.skeleton import BODY32, H36M17
from crosspose.solver import Solver
from crosspose.studio import extremities as ex

EXTREMITIES = slice(17, 32)


def _scene(seed: int, size: int, jitter: float = 0.0, scale: float = 1.0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(32, 3)`` full-body joints with random foot pitch / roll, hand roll and head yaw, ``(C, 3, 4)``
    projections and ``(C, 32, size, size)`` heatmaps (peaks moved by ``jitter`` px std, noise 0.02)."""
    rng = np.random.default_rng(seed)
    poses = ex.ExtremityPoses(foot_pitch=rng.uniform(-0.5, 0.5, (1, 2)),
                              foot_roll=rng.uniform(-0.35, 0.35, (1, 2)),
                              hand_roll=rng.uniform(-1.2, 1.2, (1, 2)), head_yaw=rng.uniform(-0.7, 0.7, 1))
    joints = ex.full_body(random_pose(seed)[None], poses, scale)[0]
    P = ring_projections(4, size=size, seed=seed)
    uv = project(joints, P) + rng.normal(0.0, jitter, (4, 32, 2))
    heatmaps = render(uv, size=size)
    if jitter:
        heatmaps += rng.uniform(0.0, 0.02, heatmaps.shape).astype(np.float32)
    return joints, P, heatmaps


def _orientation_errors(solved: np.ndarray, truth: np.ndarray) -> tuple[list[float], list[float]]:
    """Degrees between the solved and true foot frames and hand frames (both sides)."""
    feet, hands = [], []
    for side in "lr":
        for frames, out in ((ex.measured_foot_frames, feet), (ex.measured_hand_frames, hands)):
            angle = ex.rotation_angle(frames(solved[None], side), frames(truth[None], side))
            out.append(float(np.degrees(angle)[0]))
    return feet, hands


def test_clean_heatmaps_give_the_feet_hands_and_face_exactly_and_leave_the_body_as_h36m17_does() -> None:
    for seed in range(4):
        truth, P, heatmaps = _scene(seed, 64)
        full = Solver(BODY32).solve(heatmaps, P)
        body = Solver(H36M17).solve(heatmaps[:, :17], P)
        # The extremities never move the body: the same 17 joints as the Human3.6M-17 solve.
        np.testing.assert_allclose(full.joints[:17], body.joints, atol=1e-6)
        assert full.joints.shape == (32, 3)
        assert full.skeleton == "crosspose-body32"
        assert np.linalg.norm(full.joints[EXTREMITIES] - truth[EXTREMITIES], axis=-1).max() < 0.002
        assert (full.views[EXTREMITIES] == 4).all()
        assert (full.confidence[EXTREMITIES] > 0.9).all()
        feet, hands = _orientation_errors(full.joints, truth)
        assert max(feet) < 1.5
        assert max(hands) < 1.5


def test_noisy_heatmaps_recover_foot_and_hand_orientation_within_tolerance() -> None:
    """128-px maps (3.5 cm a pixel at the subject), peaks jittered 0.3 px, noise 0.02: measured over these
    8 scenes, extremities 11 mm median, feet 7.4° median (24° worst), hands 15° median (26° worst)."""
    errors, feet, hands = [], [], []
    for seed in range(8):
        truth, P, heatmaps = _scene(seed, 128, jitter=0.3)
        pose = Solver(BODY32).solve(heatmaps, P)
        errors += np.linalg.norm(pose.joints[EXTREMITIES] - truth[EXTREMITIES], axis=-1).tolist()
        f, h = _orientation_errors(pose.joints, truth)
        feet += f
        hands += h
    assert np.median(errors) < 0.015
    assert np.median(feet) < 10.0
    assert max(feet) < 40.0
    assert np.median(hands) < 20.0
    assert max(hands) < 35.0


def test_tracked_frames_follow_the_extremities() -> None:
    truth, P, heatmaps = _scene(2, 64)
    solver = Solver(BODY32)
    assert solver.solve(heatmaps, P).mode == "cold"
    moved = truth + np.array([0.03, -0.02, 0.0])  # the whole performer 3.6 cm further, feet and hands too
    pose = solver.solve(render(project(moved, P)), P)
    assert pose.mode == "tracked"
    assert np.linalg.norm(pose.joints - moved, axis=-1).max() < 0.003


def test_an_extremity_no_view_sees_is_missing_not_invented() -> None:
    truth, P, heatmaps = _scene(1, 64)
    thumb, ear = BODY32.index("l_thumb"), BODY32.index("r_ear")
    heatmaps[:, [thumb, ear]] = 0.0  # no view has a peak for them
    for solver in (Solver(BODY32), Solver(BODY32, tracking=False)):
        for _ in range(2):  # cold, then tracked from a pose that lacks them
            pose = solver.solve(heatmaps, P)
            assert np.isnan(pose.joints[[thumb, ear]]).all()
            assert (pose.confidence[[thumb, ear]] == 0).all()
            assert (pose.views[[thumb, ear]] == 0).all()
            others = np.ones(32, dtype=bool)
            others[[thumb, ear]] = False
            assert np.linalg.norm(pose.joints[others] - truth[others], axis=-1).max() < 0.002


def test_online_limb_lengths_learn_the_extremities() -> None:
    truth, P, heatmaps = _scene(3, 64, scale=1.15)  # feet and hands 15 % longer than the template's
    solver = Solver(BODY32, tracking=False)
    for _ in range(20):
        solver.solve(heatmaps, P)
    lengths = dict(zip(BODY32.bone_names, solver.limbs.lengths, strict=True))
    measured = dict(zip(BODY32.bone_names, BODY32.bone_lengths(truth), strict=True))
    for bone in ("l_ankle-l_heel", "r_ankle-r_big_toe", "l_wrist-l_index", "r_wrist-r_thumb"):
        template = BODY32.template_lengths[BODY32.index(bone.split("-")[1])]
        assert abs(measured[bone] - template) > 0.005  # the performer's own length, not the template's
        assert lengths[bone] == pytest.approx(measured[bone], abs=0.002), bone


def test_the_feet_keep_the_performers_length_where_their_heel_and_toe_points_wander() -> None:
    """A still performer whose heel and toe peaks are jittered 0.5 px a frame (~3 cm of foot length at
    64 px): after the foot's length is learnt (15 confident frames) each frame's heel–toe distance is pulled
    to it, so it spreads far less than the triangulated points' own distance does, around the learnt length,
    which is the true one within the running median's own error (3 standard errors of a median of 30)."""
    truth, P, _ = _scene(5, 64)
    rng = np.random.default_rng(0)
    solver = Solver(BODY32)
    held, raw = [], []
    pairs = [(BODY32.index(f"{s}_heel"), BODY32.index(f"{s}_big_toe")) for s in "lr"]
    for frame in range(45):
        heatmaps = render(project(truth, P) + rng.normal(0.0, 0.5, (4, 32, 2)), size=64)
        pose = solver.solve(heatmaps, P)
        if frame >= 15:
            held.append([np.linalg.norm(pose.joints[t] - pose.joints[h]) for h, t in pairs])
            raw.append(pose.diagnostics["foot_lengths_measured"])
    held_std, raw_std = np.std(held, axis=0), np.std(raw, axis=0)
    true = np.array([np.linalg.norm(truth[t] - truth[h]) for h, t in pairs])
    assert (raw_std > 0.004).all()  # the points do wander
    assert (held_std < 0.5 * raw_std).all(), (held_std, raw_std)
    learnt = solver.track.feet.lengths
    np.testing.assert_allclose(np.mean(held, axis=0), learnt, atol=0.003)
    assert (np.abs(learnt - true) < 3 * 1.25 * raw_std / np.sqrt(30)).all(), (learnt, true)


def test_holding_the_foot_length_moves_the_less_well_seen_end_more() -> None:
    from crosspose.solver.feet import hold_foot_lengths

    P = ring_projections(4, size=64, seed=0)[None]  # (1, 4, 3, 4)
    heel, toe = np.array([0.0, 0.0, 0.05]), np.array([0.25, 0.0, 0.05])  # 25 cm measured
    joints = np.stack([heel, toe])[None]  # (1, 2, 3)
    support = np.ones((1, 4, 2), dtype=bool)
    support[0, 2:, 1] = False  # the toe seen by two views only
    residual = np.full((1, 4, 2), 0.5)
    out = hold_foot_lengths(joints, P, support, residual, np.array([[0, 1]]), np.array([0.20]))
    moved = np.linalg.norm(out[0] - joints[0], axis=-1)
    length = np.linalg.norm(out[0, 1] - out[0, 0])
    assert 0.20 < length < 0.25  # between the measurement and the performer's, nearer the latter
    assert moved[1] > moved[0] > 0
    np.testing.assert_allclose(np.cross(out[0, 1] - out[0, 0], toe - heel), 0.0, atol=1e-9)  # same line
    unknown = hold_foot_lengths(joints, P, support, residual, np.array([[0, 1]]), np.array([np.nan]))
    np.testing.assert_array_equal(unknown, joints)


@pytest.mark.parametrize(("gap_ms", "kept"), [(90, True), (200, False)])
def test_a_wide_tracked_search_keeps_the_extremities_offsets_up_to_track_leaves_reach(gap_ms: int,
                                                                                   kept: bool) -> None:
    """90 ms after the previous pose (reach 0.225 m, within ``track_leaves_reach`` 0.25 m) each extremity
    starts at its previous offset from its searched parent and the refinement climbs to its peak; 200 ms
    after (reach 0.5 m) they are searched around their parents as when cold. Either way as exact."""
    truth, P, heatmaps = _scene(2, 64)
    solver = Solver(BODY32)
    assert solver.solve(heatmaps, P, t_ns=0).mode == "cold"
    moved = truth + np.array([0.08, -0.05, 0.0])  # the whole performer 9.4 cm further
    pose = solver.solve(render(project(moved, P)), P, t_ns=gap_ms * 1_000_000)
    assert pose.mode == "tracked"
    assert solver.track_reach(gap_ms / 1e3) > solver.options.track_spacing  # the wide search
    assert np.linalg.norm(pose.joints - moved, axis=-1).max() < 0.003
    searched = pose.diagnostics["searched"]
    parents = list(BODY32.parents[17:])
    offsets_kept = np.allclose(searched[EXTREMITIES] - searched[parents],
                               truth[EXTREMITIES] - truth[parents], atol=0.002)
    assert offsets_kept == kept
    with pytest.raises(ValueError, match="track_leaves_reach"):
        Solver(BODY32, track_leaves_reach=-1.0)
