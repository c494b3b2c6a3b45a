"""A performer's two feet held to one length (:mod:`crosspose.solver.feet`): both feet's readings teach it,
and each frame's other foot is a second prior, so one foot read short for a while is balanced by the
other."""

from __future__ import annotations

import numpy as np
from solver_scene import project, random_pose, render, ring_projections

from crosspose.skeleton import BODY32
from crosspose.solver import Solver
from crosspose.solver.feet import FOOT_ASYMMETRY, FootLengthEstimate, foot_pairs, hold_foot_lengths
from crosspose.studio import extremities as ex

PAIRS = [(BODY32.index(f"{s}_heel"), BODY32.index(f"{s}_big_toe")) for s in "lr"]


def test_both_feet_learn_one_length_so_a_foot_read_short_at_first_is_balanced_by_the_other() -> None:
    """The left foot reads 4 cm short for its first 15 frames, the right its true 21 cm: ten frames on,
    the left's own median is still the short one; the shared one is the true length, for both feet, and
    known after 8 frames (15 readings of the two feet) instead of 15."""
    rng = np.random.default_rng(0)
    true = 0.21
    shared = FootLengthEstimate(foot_pairs(BODY32))
    apart = FootLengthEstimate(foot_pairs(BODY32), shared=False)
    assert shared.shared
    assert not apart.shared
    for frame in range(25):
        left = (true - 0.04 if frame < 15 else true) + rng.normal(0.0, 0.002)
        readings = np.array([left, true + rng.normal(0.0, 0.002)])
        for estimate in (shared, apart):
            estimate.update(readings, np.array([True, True]))
        if frame == 7:
            assert np.isfinite(shared.lengths).all()
            assert np.isnan(apart.lengths).all()
    assert shared.lengths[0] == shared.lengths[1]
    assert np.abs(shared.lengths - true).max() < 0.003, shared.lengths
    assert apart.lengths[0] < true - 0.03  # alone, the left foot keeps its first frames' length
    # one foot alone has nothing to share
    assert not FootLengthEstimate(foot_pairs(BODY32)[:1]).shared


def test_a_seeded_shared_length_weighs_both_feet_alike() -> None:
    estimate = FootLengthEstimate(foot_pairs(BODY32))
    samples = np.column_stack([np.full(300, 0.20), np.full(300, 0.22)])  # more than a window each
    samples[::2, 1] = np.nan
    estimate.seed(samples)
    np.testing.assert_allclose(estimate.lengths, 0.21)


def _feet(heel_x: tuple[float, float], toe_x: tuple[float, float]) -> np.ndarray:
    """``(1, 4, 3)`` left heel, left toe, right heel, right toe on lines along x, 30 cm apart in y."""
    return np.array([[[heel_x[0], 0.15, 0.05], [toe_x[0], 0.15, 0.05],
                      [heel_x[1], -0.15, 0.05], [toe_x[1], -0.15, 0.05]]])


def test_each_foot_is_held_towards_the_other_feet_measurement_before_any_length_is_known() -> None:
    P = ring_projections(4, size=64, seed=0)[None]  # (1, 4, 3, 4)
    joints = _feet((0.0, 0.0), (0.17, 0.21))  # left 17 cm, right 21 cm, equally seen
    support = np.ones((1, 4, 4), dtype=bool)
    residual = np.full((1, 4, 4), 0.5)
    pairs = np.array([[0, 1], [2, 3]])
    unknown = np.full(2, np.nan)
    held = hold_foot_lengths(joints, P, support, residual, pairs, unknown, asymmetry=FOOT_ASYMMETRY)
    lengths = np.linalg.norm(held[0, 1::2] - held[0, ::2], axis=-1)
    assert 0.17 + 0.005 < lengths[0] < lengths[1] < 0.21 - 0.005, lengths
    np.testing.assert_allclose(held[0, :, 1:], joints[0, :, 1:], atol=1e-12)  # along their own lines only
    # without the other foot, nothing is known: as they were
    np.testing.assert_array_equal(hold_foot_lengths(joints, P, support, residual, pairs, unknown), joints)
    # a learnt length and the other foot's measurement both pull: nearer the learnt one (5 mm prior)
    known = np.array([0.20, 0.20])
    alone = hold_foot_lengths(joints, P, support, residual, pairs, known)
    both = hold_foot_lengths(joints, P, support, residual, pairs, known, asymmetry=FOOT_ASYMMETRY)
    length_alone, length_both = (np.linalg.norm(j[0, 1] - j[0, 0]) for j in (alone, both))
    assert 0.17 < length_alone < length_both < 0.20, (length_alone, length_both)
    # a foot whose other foot is not seen (one end in a single view) is held to its learnt length alone
    support[0, 1:, 3] = False
    one = hold_foot_lengths(joints, P, support, residual, pairs, known, asymmetry=FOOT_ASYMMETRY)
    np.testing.assert_allclose(one[0, :2], alone[0, :2], atol=1e-12)


def _drifting_left_foot(frames: int, short: int,
                        seed: int = 5) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A still performer's heatmaps over ``frames`` sets whose left toe peak is drawn 0.4 px (~4 cm here)
    towards the heel in every view over the first ``short`` sets and back over the next ``short`` (the left
    foot read short at the start of a take and drifting to its length, as the real Pose2Sim clip's does),
    the right foot read true; every peak jittered 0.15 px. The true joints and the projections."""
    rng = np.random.default_rng(seed)
    level = ex.ExtremityPoses(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1))
    truth = ex.full_body(random_pose(seed)[None], level, 1.0)[0]
    P = ring_projections(4, size=64, seed=seed)
    uv = project(truth, P)
    heel, toe = PAIRS[0]
    line = uv[:, heel] - uv[:, toe]
    line /= np.linalg.norm(line, axis=-1, keepdims=True)
    sets = []
    for i in range(frames):
        peaks = uv + rng.normal(0.0, 0.15, uv.shape)
        peaks[:, toe] += 0.4 * float(np.clip(2 - i / short, 0, 1)) * line
        sets.append(render(peaks, size=64))
    return sets, truth, P


def test_online_a_left_foot_read_short_at_first_is_held_near_its_length_once_it_reads_true() -> None:
    """Online, both feet learning one length: once the left foot reads true again (after its first 2 x 10
    drifting sets) its held length stays within a centimetre of the truth, a median 5 mm; learnt from its
    own readings alone (``shared=False``, the behaviour before) the short start pulls it 1.5 cm short or
    more."""
    sets, truth, P = _drifting_left_foot(frames=36, short=10)
    true = np.linalg.norm(truth[PAIRS[0][1]] - truth[PAIRS[0][0]])
    held = {}
    for shared in (True, False):
        solver = Solver(BODY32)
        solver.track.feet = FootLengthEstimate(foot_pairs(BODY32), shared=shared)
        poses = [solver.solve(heatmaps, P) for heatmaps in sets]
        heel, toe = PAIRS[0]
        held[shared] = np.array([np.linalg.norm(p.joints[toe] - p.joints[heel]) for p in poses])
        raw = np.array([p.diagnostics["foot_lengths_measured"][0] for p in poses])
        assert raw[:10].mean() < true - 0.02  # the first sets do read short
        assert abs(np.median(raw[20:]) - true) < 0.004  # and the later ones true
    error = {shared: lengths - true for shared, lengths in held.items()}
    assert np.abs(error[True][20:]).max() < 0.01, error[True][20:]
    assert np.median(np.abs(error[True][20:])) < 0.005, error[True][20:]
    assert np.median(error[False][20:]) < -0.015, error[False][20:]  # alone: pulled to the short start
    # and while it reads short, the right foot's readings pull it up each frame
    assert np.abs(error[True][:10]).mean() < 0.75 * np.abs(error[False][:10]).mean()
