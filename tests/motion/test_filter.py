"""The One Euro filter: jitter, lag, NaN safety, per-group settings."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.motion import JOINT_GROUPS, FilterSettings, GroupFilter, OneEuroFilter, filter_joints
from crosspose.skeleton import BODY32, H36M17

FPS = 60.0


def test_groups_cover_every_joint_once() -> None:
    names = [n for group in JOINT_GROUPS.values() for n in group]
    assert sorted(names) == sorted(BODY32.joints)  # the full body's, Human3.6M-17's among them
    settings = FilterSettings.default()
    toe, thumb, ear = (BODY32.index(j) for j in ("r_big_toe", "l_thumb", "l_ear"))
    _, full_beta, _ = settings.per_joint(BODY32)
    assert (full_beta[toe], full_beta[thumb], full_beta[ear]) == (settings.legs.beta, settings.arms.beta,
                                                                  settings.head.beta)
    min_cutoff, beta, _ = settings.per_joint()
    wrist, pelvis = H36M17.index("l_wrist"), H36M17.index("pelvis")
    assert beta[wrist] == settings.arms.beta
    assert beta[pelvis] == settings.torso.beta
    assert min_cutoff.shape == (17,)
    with pytest.raises(ValueError, match="min_cutoff > 0"):
        GroupFilter(min_cutoff=0.0, beta=1.0)


def test_reduces_jitter_on_a_static_joint() -> None:
    rng = np.random.default_rng(0)
    n = 600
    truth = np.array([0.3, -0.2, 1.1])
    noisy = truth + rng.normal(0, 0.01, (n, 17, 3))  # 1 cm solver jitter
    out = filter_joints(noisy, np.arange(n) / FPS, FilterSettings.default())
    raw_err = np.linalg.norm(noisy[60:] - truth, axis=-1)
    err = np.linalg.norm(out[60:] - truth, axis=-1)
    assert err.std() < raw_err.std() / 3
    assert np.sqrt((err ** 2).mean()) < np.sqrt((raw_err ** 2).mean()) / 3
    # frame-to-frame jitter (what a viewer sees) drops even more
    assert np.abs(np.diff(out, axis=0)).mean() < np.abs(np.diff(noisy, axis=0)).mean() / 5


def test_step_lag_is_bounded() -> None:
    n = 120
    x = np.zeros((n, 17, 3))
    x[30:, :, 0] = 0.5  # every joint jumps 50 cm at frame 30
    out = filter_joints(x, np.arange(n) / FPS, FilterSettings.default())
    wrist, pelvis = H36M17.index("l_wrist"), H36M17.index("pelvis")
    for j, max_frames in ((wrist, 4), (pelvis, 12)):
        reached = np.flatnonzero(out[:, j, 0] >= 0.45)[0] - 30  # 90 % of the step
        assert 0 <= reached <= max_frames, (H36M17.joints[j], reached)
    assert (out[:, :, 0] <= 0.5 + 1e-12).all()  # no overshoot
    assert out[29, 0, 0] == 0.0  # and nothing before the step
    # the arms (high beta) follow faster than the torso
    assert out[31, wrist, 0] > out[31, pelvis, 0]


def test_nan_safe() -> None:
    f = OneEuroFilter(FilterSettings.uniform(1.0, 0.5))
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, (17, 3))
    f(0.0, x)
    gap = x.copy()
    gap[3] = np.nan
    out = f(1 / FPS, gap)
    assert np.isnan(out[3]).all()
    assert np.isfinite(np.delete(out, 3, axis=0)).all()
    back = f(2 / FPS, x)  # the joint returns: filtered from its last state, finite
    assert np.isfinite(back).all()
    np.testing.assert_allclose(back[3], x[3], atol=0.02)
    # a joint first seen late starts at its value
    g = OneEuroFilter(FilterSettings.default())
    first = np.full((17, 3), np.nan)
    first[0] = 1.0
    assert np.isnan(g(0.0, first)[1]).all()
    np.testing.assert_array_equal(g(0.1, np.ones((17, 3)))[1], 1.0)
    # a repeated timestamp changes nothing; time going backwards is an error
    np.testing.assert_array_equal(g(0.1, np.full((17, 3), 2.0)), g(0.1, np.full((17, 3), 3.0)))
    with pytest.raises(ValueError, match="backwards"):
        g(0.05, np.ones((17, 3)))


def test_filter_joints_equals_the_streaming_filter() -> None:
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(0, 0.01, (50, 17, 3)), axis=0)
    t = np.cumsum(rng.uniform(0.01, 0.03, 50))
    f = OneEuroFilter(FilterSettings.default())
    np.testing.assert_array_equal(filter_joints(x, t, FilterSettings.default()), np.stack(
        [f(float(t[i]), x[i]) for i in range(50)]))
    with pytest.raises(ValueError, match="times_s"):
        filter_joints(x, t[:3], FilterSettings.default())
