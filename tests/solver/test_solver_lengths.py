"""The long bones held to the performer's learnt lengths (crosspose.solver.lengths): a noisy bone is pulled
towards its length along its own direction, a bone that already agrees is not moved, a missing joint stays
missing, and in the solver a still performer's jittered forearms spread less than without the hold."""

from __future__ import annotations

import numpy as np
from solver_scene import project, random_pose, render, ring_projections

from crosspose.skeleton import BODY32, H36M17
from crosspose.solver import LimbLengthEstimate, Solver
from crosspose.solver.feet import view_noise_px, view_noises_px
from crosspose.solver.lengths import bone_levels, hold_bone_lengths, long_bones

PARENTS = np.array([p for p, _ in H36M17.bones])
CHILDREN = np.array([c for _, c in H36M17.bones])
ENDS = np.stack([PARENTS, CHILDREN], 1)
LONG = long_bones(H36M17)


def _hold(joints: np.ndarray, lengths: np.ndarray, views: int = 4, spread: np.ndarray | None = None,
          noise_px: float = 0.5) -> np.ndarray:
    """``hold_bone_lengths`` of ``(N, 17, 3)`` joints seen by ``views`` ring cameras (64 px)."""
    n = len(joints)
    P = np.repeat(ring_projections(4, size=64, seed=0)[None], n, 0)
    support = np.zeros((n, 4, 17), bool)
    support[:, :views] = True
    return hold_bone_lengths(joints, P, support, np.full(n, noise_px), ENDS, LONG, lengths, spread)


def test_long_bones_are_the_thighs_shins_upper_arms_and_forearms() -> None:
    names = [H36M17.bone_names[b] for b in LONG]
    assert sorted(names) == sorted(["l_hip-l_knee", "r_hip-r_knee", "l_knee-l_ankle", "r_knee-r_ankle",
                                    "l_shoulder-l_elbow", "r_shoulder-r_elbow", "l_elbow-l_wrist",
                                    "r_elbow-r_wrist"])
    np.testing.assert_array_equal(long_bones(BODY32), LONG)  # the body's bones come first


def test_a_bone_that_agrees_with_its_length_is_not_moved() -> None:
    truth = random_pose(1)[None]
    out = _hold(truth, H36M17.bone_lengths(truth)[0][LONG])
    np.testing.assert_allclose(out, truth, atol=1e-12)


def test_noisy_joints_are_pulled_to_the_length_along_their_bones_and_the_parents_stay() -> None:
    rng = np.random.default_rng(0)
    truth = random_pose(2)
    joints = np.repeat(truth[None], 200, 0) + rng.normal(0.0, 0.015, (200, 17, 3))
    true_lengths = H36M17.bone_lengths(truth)[LONG]
    out = _hold(joints, true_lengths)
    raw, held = H36M17.bone_lengths(joints)[:, LONG], H36M17.bone_lengths(out)[:, LONG]
    assert (held.std(0) < 0.75 * raw.std(0)).all(), (held.std(0), raw.std(0))
    assert (np.abs(np.median(held, 0) - true_lengths) < 0.005).all()
    # each child moved along the line from its parent as held: the upper bones keep their directions
    after = out[:, CHILDREN] - out[:, PARENTS]
    along = joints[:, CHILDREN] - out[:, PARENTS]
    np.testing.assert_allclose(np.cross(along, after), 0.0, atol=1e-9)
    assert (np.einsum("nbi,nbi->nb", along, after) > 0).all()
    # only the long bones' children move (knees, ankles, elbows, wrists)
    moved = np.linalg.norm(out - joints, axis=-1).max(0)
    children = [H36M17.index(n) for n in ("l_knee", "r_knee", "l_ankle", "r_ankle", "l_elbow", "r_elbow",
                                          "l_wrist", "r_wrist")]
    assert (moved[children] > 0).all()
    assert (np.delete(moved, children) == 0).all()


def test_the_upper_bones_are_held_before_the_lower() -> None:
    levels = [sorted(H36M17.bone_names[b] for b in level) for level in bone_levels(ENDS, LONG)]
    assert levels == [sorted(["l_hip-l_knee", "r_hip-r_knee", "l_shoulder-l_elbow", "r_shoulder-r_elbow"]),
                      sorted(["l_knee-l_ankle", "r_knee-r_ankle", "l_elbow-l_wrist", "r_elbow-r_wrist"])]


def test_the_bone_spread_seen_by_the_performer_weights_the_length_more() -> None:
    rng = np.random.default_rng(1)
    truth = random_pose(3)
    joints = np.repeat(truth[None], 100, 0) + rng.normal(0.0, 0.015, (100, 17, 3))
    true_lengths = H36M17.bone_lengths(truth)[LONG]
    plain = H36M17.bone_lengths(_hold(joints, true_lengths))[:, LONG].std(0)
    spread = H36M17.bone_lengths(_hold(joints, true_lengths, spread=np.full(len(LONG), 0.02)))[:, LONG].std(0)
    assert (spread < plain).all()


def test_an_outlier_takes_the_learnt_length_and_a_poorly_seen_or_missing_joint_is_left() -> None:
    truth = random_pose(4)[None]
    lengths = H36M17.bone_lengths(truth)[0][LONG]
    wrist, elbow = H36M17.index("l_wrist"), H36M17.index("l_elbow")
    short = truth.copy()
    short[0, wrist] = truth[0, elbow] + 0.5 * (truth[0, wrist] - truth[0, elbow])  # half the forearm
    out = _hold(short, lengths)
    np.testing.assert_allclose(out[0, wrist], truth[0, wrist], atol=1e-9)  # back along its own line
    np.testing.assert_allclose(_hold(short, lengths, views=1), short)  # one view: no measurement to fuse
    # 15 % short, well within the estimate's 25 %: an outlier where the views see the bone sharply (0.1 px),
    # beyond 3 standard deviations of its difference; fused where they see it as 2 px of noise
    less = truth.copy()
    less[0, wrist] = truth[0, elbow] + 0.85 * (truth[0, wrist] - truth[0, elbow])
    np.testing.assert_allclose(_hold(less, lengths, noise_px=0.1)[0, wrist], truth[0, wrist], atol=1e-9)
    fused = np.linalg.norm(_hold(less, lengths, noise_px=2.0)[0, wrist] - truth[0, elbow])
    forearm = lengths[list(LONG).index(H36M17.bone_names.index("l_elbow-l_wrist"))]
    assert 0.85 * forearm < fused < forearm - 1e-4
    missing = short.copy()
    missing[0, wrist] = np.nan
    out = _hold(missing, lengths)
    assert np.isnan(out[0, wrist]).all()
    others = np.arange(17) != wrist
    assert np.isfinite(out[0, others]).all()
    unknown = _hold(short, np.full(len(LONG), np.nan))
    np.testing.assert_array_equal(unknown, short)


def test_a_still_performers_jittered_limbs_spread_less_with_the_hold() -> None:
    """Wrist, elbow, knee and ankle peaks jittered 0.7 px a frame: once the bones are learnt (15 confident
    frames) the held forearms and shins spread less than the same frames solved without the hold, and the
    untouched joints are the same."""
    truth = random_pose(5)
    P = ring_projections(4, size=64, seed=5)
    jittered = [H36M17.index(n) for n in ("l_wrist", "r_wrist", "l_elbow", "r_elbow", "l_knee", "r_ankle")]
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(40):
        uv = project(truth, P)
        uv[:, jittered] += rng.normal(0.0, 0.7, (4, len(jittered), 2))
        frames.append(render(uv, size=64))
    lengths = {}
    for hold in (True, False):
        solver = Solver(H36M17, hold_lengths=hold)
        poses = [solver.solve(h, P) for h in frames]
        lengths[hold] = np.array([H36M17.bone_lengths(p.joints)[LONG] for p in poses[15:]])
    assert (lengths[True].std(0) <= lengths[False].std(0) + 1e-9).all()
    assert lengths[True].std(0).sum() < 0.8 * lengths[False].std(0).sum(), (lengths[True].std(0),
                                                                             lengths[False].std(0))


def test_a_layouts_extremities_follow_their_held_wrist_or_ankle() -> None:
    rng = np.random.default_rng(2)
    truth = random_pose(6)
    body = np.repeat(truth[None], 20, 0) + rng.normal(0.0, 0.015, (20, 17, 3))
    extremities = body[:, [H36M17.index("l_wrist")]] + rng.normal(0.0, 0.05, (20, 3, 3))  # three hand points
    joints = np.concatenate([body, extremities], 1)  # (20, 20, 3)
    ends = np.concatenate([ENDS, [[H36M17.index("l_wrist"), 17], [H36M17.index("l_wrist"), 18],
                                  [H36M17.index("l_wrist"), 19]]])
    P = np.repeat(ring_projections(4, size=64, seed=0)[None], 20, 0)
    carried = np.r_[np.full(17, -1), np.full(3, H36M17.index("l_wrist"))]
    out = hold_bone_lengths(joints, P, np.ones((20, 4, 20), bool), np.full(20, 0.5), ends, LONG,
                            H36M17.bone_lengths(truth)[LONG], carried=carried)
    wrist = H36M17.index("l_wrist")
    assert (np.linalg.norm(out[:, wrist] - joints[:, wrist], axis=-1) > 0).any()
    np.testing.assert_allclose(out[:, 17:] - out[:, [wrist]], joints[:, 17:] - joints[:, [wrist]], atol=1e-12)


def test_the_spread_of_some_bones_is_their_part_of_the_whole_spread() -> None:
    """``spread_of`` computes only the bones asked for (the hold's long bones), the same numbers, before and
    after every bone is known, with missing and unconfident measurements."""
    rng = np.random.default_rng(1)
    estimate = LimbLengthEstimate(BODY32)
    count = len(BODY32.bones)
    bones = np.array([3, 5, 0, count - 1, 12, 7])
    for _ in range(40):
        measured = estimate.template * (1 + 0.05 * rng.normal(size=count))
        measured[rng.random(count) < 0.05] = np.nan
        estimate.update(measured, rng.random(count) > 0.2)
        alone = estimate.spread_of(bones)  # before the whole spread is computed
        assert np.array_equal(alone, estimate.spread[bones], equal_nan=True)
        assert np.array_equal(estimate.spread_of(bones), alone, equal_nan=True)  # and after
    assert np.isfinite(alone).all()


def test_the_bodys_and_every_joints_noise_in_one_pass_are_each_alone() -> None:
    rng = np.random.default_rng(2)
    residual = rng.rayleigh(0.8, (3, 4, 32))
    support = rng.random((3, 4, 32)) > 0.3
    support[1] = False  # a frame no view supports: NaN
    residual[0, 2, 5] = np.nan
    body, every = view_noises_px(residual, support, 17)
    assert np.array_equal(body, view_noise_px(residual[..., :17], support[..., :17]), equal_nan=True)
    assert np.array_equal(every, view_noise_px(residual, support), equal_nan=True)
    assert np.isnan(body[1])
    assert np.isfinite(body[[0, 2]]).all()



def test_a_takes_burst_of_wrong_readings_shows_in_its_spread_and_the_hold_trusts_them_less() -> None:
    """A third of a take reads the bones 12 % short (the network marking a wrong wrist in several views for a
    while, the views agreeing): the median absolute deviation does not see the burst; the spread of an
    estimate seeded with the take does (its 90 % quantile), and the hold then pulls such a sharply seen
    reading most of the way back to the length. Online, the spread stays the median deviation."""
    rng = np.random.default_rng(5)
    truth = random_pose(4)[None]
    true_lengths = H36M17.bone_lengths(truth)[0]  # (B,)
    good = true_lengths * (1 + 0.008 * rng.normal(size=(60, len(true_lengths))))
    samples = np.concatenate([good, np.repeat(0.88 * true_lengths[None], 30, 0)])
    forearm = H36M17.bone_names.index("l_elbow-l_wrist")
    online = LimbLengthEstimate(H36M17)
    for row in samples[rng.permutation(len(samples))]:
        online.update(row, np.ones(len(row), bool))
    take = LimbLengthEstimate(H36M17)
    take.seed(samples, 1.0)
    length = take.lengths[forearm]
    median_deviation = 1.4826 * np.median(np.abs(samples[:, forearm] - length))
    assert median_deviation < 0.005  # blind to the burst
    np.testing.assert_allclose(online.spread[forearm], median_deviation, rtol=1e-9)
    assert take.spread[forearm] > 0.025  # a third of the take 30 mm off
    wrist, elbow = H36M17.index("l_wrist"), H36M17.index("l_elbow")
    burst = truth.copy()
    burst[0, wrist] = truth[0, elbow] + 0.88 * (truth[0, wrist] - truth[0, elbow])
    lengths = take.lengths[LONG]

    def error(spread: np.ndarray) -> float:
        held = _hold(burst, lengths, spread=spread, noise_px=0.1)
        return abs(np.linalg.norm(held[0, wrist] - held[0, elbow]) / length - 1)

    assert error(take.spread_of(LONG)) < 0.03 < error(online.spread_of(LONG))
