"""Simulated heatmaps: exact peaks without errors, each error mode does what it says and is recorded."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crosspose.skeleton import H36M17
from crosspose.studio import (
    HeatmapError,
    HeatmapErrors,
    apply_affine,
    crop_to_heatmap,
    heatmap_projection_matrices,
    image_to_heatmap,
    person_crops,
    random_rig,
    simulate_heatmap_sequence,
    simulate_heatmaps,
)

IMAGE = (640, 480)
HM = (64, 48)  # same aspect as the image: heatmap px = image px / 10


def _joints2d(seed: int = 0, views: int = 4) -> np.ndarray:
    """``(C, 17, 2)`` image px, well inside the image and at least 40 px (4 heatmap px) apart."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(3)), -1).reshape(-1, 2)[:17]
    out = []
    for _ in range(views):
        order = rng.permutation(17)
        out.append(80 + grid[order] * [95, 140] + rng.uniform(-10, 10, (17, 2)))
    return np.stack(out)


def _argmax_xy(heatmaps: np.ndarray) -> np.ndarray:
    """``(..., h, w)`` → ``(..., 2)`` integer ``(x, y)`` of each map's maximum."""
    h, w = heatmaps.shape[-2:]
    flat = heatmaps.reshape(*heatmaps.shape[:-2], h * w).argmax(-1)
    return np.stack([flat % w, flat // w], -1)


def _centroid(heatmap: np.ndarray, radius: int = 7) -> np.ndarray:
    x0, y0 = _argmax_xy(heatmap)
    ys, xs = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    patch = heatmap[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(patch * xs).sum(), (patch * ys).sum()]) / patch.sum()


def test_perfect_heatmaps_peak_at_the_true_location() -> None:
    j2 = _joints2d()
    heatmaps, truth = simulate_heatmaps(j2, IMAGE, HM)
    assert heatmaps.shape == (4, 17, 48, 64)
    assert heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0
    assert heatmaps.max() <= 1
    targets = (j2 + 0.5) / 10 - 0.5
    np.testing.assert_allclose(truth.targets, targets, atol=1e-9)
    assert (np.abs(_argmax_xy(heatmaps) - targets) <= 0.5 + 1e-9).all()
    for c, j in [(0, 0), (1, 5), (3, 16)]:
        np.testing.assert_allclose(_centroid(heatmaps[c, j]), targets[c, j], atol=0.02)
    assert truth.flags.max() == 0
    assert truth.events() == []
    assert (heatmaps.reshape(4, 17, -1).max(-1) > 0.88).all()


def test_per_view_image_sizes_and_crop_transforms() -> None:
    j2 = _joints2d(views=2)
    _, per_view = simulate_heatmaps(j2, [[640, 480], [1280, 960]], HM)
    np.testing.assert_allclose(per_view.targets[1], (j2[1] + 0.5) / 20 - 0.5)
    crops = person_crops(j2, (64, 64))
    heatmaps, truth = simulate_heatmaps(j2, transforms=crops, heatmap_size=(64, 64))
    np.testing.assert_allclose(truth.transforms, crops)
    np.testing.assert_allclose(truth.targets, apply_affine(crops, j2))
    assert (truth.targets > -0.5).all()
    assert (truth.targets < 63.5).all()
    assert (np.abs(_argmax_xy(heatmaps) - truth.targets) <= 0.5 + 1e-9).all()


def test_affine_helpers() -> None:
    A = image_to_heatmap((640, 480), (64, 48))
    np.testing.assert_allclose(
        apply_affine(A, np.array([[-0.5, -0.5], [639.5, 479.5]])), [[-0.5, -0.5], [63.5, 47.5]]
    )
    B = crop_to_heatmap((300.0, 200.0), 128.0, (64, 64))
    np.testing.assert_allclose(
        apply_affine(B, np.array([[300.0, 200.0], [236.0, 136.0]])), [[31.5, 31.5], [-0.5, -0.5]]
    )
    rig = random_rig(0, 2, distortion=0.0)
    X = np.array([[0.1, 0.2, 1.0]])
    crops = np.stack([B, A])
    P = heatmap_projection_matrices(rig.projection_matrices(), crops)
    uvw = np.einsum("cij,j->ci", P, np.append(X[0], 1.0))
    expected = apply_affine(crops, np.swapaxes(np.asarray(rig.project(X)), 0, 1))[:, 0]
    np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], expected, atol=1e-6)


def test_jitter_moves_peaks_by_the_requested_spread() -> None:
    j2 = np.broadcast_to(_joints2d(), (25, 4, 17, 2))
    heatmaps, truth = simulate_heatmap_sequence(j2, IMAGE, HM, errors=HeatmapErrors(jitter_px=1.5), rng=1)
    offsets = truth.peaks - truth.targets
    assert 1.35 < offsets.std() < 1.65
    assert abs(offsets.mean()) < 0.1
    assert truth.has(HeatmapError.JITTER).all()
    assert not truth.corrupted.any()
    assert (np.abs(_argmax_xy(heatmaps) - truth.peaks) <= 0.5 + 1e-6).mean() > 0.97  # edge peaks may clip


def test_missed_joints_have_no_peak() -> None:
    heatmaps, truth = simulate_heatmaps(_joints2d(), IMAGE, HM, errors=HeatmapErrors(miss_prob=0.3), rng=2)
    missed = truth.has(HeatmapError.MISSED)
    assert 5 < missed.sum() < 40
    assert heatmaps[missed].max() == 0
    assert (heatmaps[~missed].max(axis=(-1, -2)) > 0.88).all()
    assert np.isnan(truth.peaks[missed]).all()
    assert (truth.amplitude[missed] == 0).all()
    recorded = sorted(idx for idx, mode in truth.events() if mode == "MISSED")
    assert recorded == [tuple(int(i) for i in idx) for idx in np.argwhere(missed)]


def test_whole_body_swap_puts_left_peaks_on_the_right_joints() -> None:
    j2 = _joints2d()
    errors = HeatmapErrors(swap_prob=1.0, swap_whole_body=1.0)
    heatmaps, truth = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=3)
    mirror = np.array(H36M17.mirror)
    np.testing.assert_array_equal(truth.source_joint, np.broadcast_to(mirror, (4, 17)))
    np.testing.assert_array_equal(
        truth.has(HeatmapError.SWAPPED), np.broadcast_to(mirror != np.arange(17), (4, 17))
    )
    l_wrist, r_wrist = H36M17.index("l_wrist"), H36M17.index("r_wrist")
    assert (np.abs(_argmax_xy(heatmaps[:, l_wrist]) - truth.targets[:, r_wrist]) <= 0.5 + 1e-9).all()


def test_limb_swap_swaps_exactly_one_limb_per_view() -> None:
    errors = HeatmapErrors(swap_prob=1.0, swap_whole_body=0.0)
    _, truth = simulate_heatmaps(_joints2d(views=12), IMAGE, HM, errors=errors, rng=4)
    limbs = [
        {H36M17.index(f"{s}_{j}") for s in "lr" for j in names}
        for names in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist"))
    ]
    seen = set()
    for view in truth.has(HeatmapError.SWAPPED):
        swapped = set(np.flatnonzero(view).tolist())
        assert swapped in limbs
        seen.add(frozenset(swapped))
    assert len(seen) == 2  # both kinds occur over 12 views


def test_wrong_peak_beats_the_weakened_true_peak() -> None:
    errors = HeatmapErrors(wrong_peak_prob=1.0, wrong_peak_other_joint=1.0)
    j2 = _joints2d()
    heatmaps, truth = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=5)
    assert truth.has(HeatmapError.WRONG_PEAK).all()
    np.testing.assert_allclose(truth.amplitude, 0.35)
    assert (truth.distractor_amplitude >= 0.8).all()
    argmax = _argmax_xy(heatmaps)
    assert (np.linalg.norm(argmax - truth.distractors, axis=-1) <= 1.0).mean() > 0.95
    # Each distractor sits on another joint of the same view.
    d = np.linalg.norm(truth.distractors[:, :, None] - truth.targets[:, None], axis=-1)  # (C, J, J)
    d[:, np.arange(17), np.arange(17)] = np.inf
    assert (d.min(-1) < 3.0).all()
    # Anywhere: some distractors land away from every joint (a wrong person, clutter).
    _, anywhere = simulate_heatmaps(j2, IMAGE, HM, errors=HeatmapErrors(wrong_peak_prob=1.0), rng=5)
    d = np.linalg.norm(anywhere.distractors[:, :, None] - anywhere.targets[:, None], axis=-1).min(-1)
    assert (d > 3.0).sum() > 5


@pytest.mark.parametrize("noise", [False, True])
def test_dropped_view_is_empty_or_noise_only(noise: bool) -> None:
    errors = HeatmapErrors(drop_view_prob=0.5, drop_view_noise=noise)
    heatmaps, truth = simulate_heatmaps(_joints2d(views=8), IMAGE, HM, errors=errors, rng=6)
    dropped = truth.has(HeatmapError.VIEW_DROPPED).all(-1)
    assert dropped.any()
    assert not dropped.all()
    assert (truth.has(HeatmapError.VIEW_DROPPED).any(-1) == dropped).all()  # whole views only
    if noise:
        assert 0 < heatmaps[dropped].max() < 0.6
        assert heatmaps[dropped].mean() > 0.01
    else:
        assert heatmaps[dropped].max() == 0
    assert (heatmaps[~dropped].max(axis=(-1, -2)) > 0.88).all()


def test_low_contrast_scales_peaks_down() -> None:
    errors = HeatmapErrors(low_contrast_prob=1.0, low_contrast_range=(0.2, 0.4))
    heatmaps, truth = simulate_heatmaps(_joints2d(), IMAGE, HM, errors=errors, rng=7)
    peak = heatmaps.max(axis=(-1, -2))
    assert truth.has(HeatmapError.LOW_CONTRAST).all()
    assert (peak <= 0.4 + 1e-6).all()
    assert (peak > 0.17).all()
    np.testing.assert_allclose(truth.amplitude, np.clip(truth.amplitude, 0.2, 0.4))


def test_background_blobs_and_speckle() -> None:
    j2 = _joints2d()
    clean, _ = simulate_heatmaps(j2, IMAGE, HM)
    errors = HeatmapErrors(blobs_per_map=2.0, blob_amplitude=(0.3, 0.5), speckle=0.05)
    noisy, truth = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=8)
    assert truth.blobs.sum() > 50
    far = clean < 1e-6  # pixels the joint's own peak does not reach
    assert noisy[far].min() >= 0
    assert 0.02 < noisy[far].mean() < 0.1
    assert noisy[far].max() > 0.3  # blobs
    assert not truth.corrupted.any()  # background noise is not a per-joint corruption


def test_coarse_speckle_is_the_same_noise_in_256_levels() -> None:
    j2 = np.full((4, 17, 2), np.nan)  # no peaks: the maps are the speckle alone
    errors = HeatmapErrors(speckle=0.05)
    fine, truth_fine = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=3)
    coarse, truth_coarse = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=3, coarse_speckle=True)
    again, _ = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=3, coarse_speckle=True)
    np.testing.assert_array_equal(coarse, again)  # reproducible by seed
    np.testing.assert_array_equal(truth_coarse.flags, truth_fine.flags)  # other draws unchanged
    levels = np.unique(np.round(coarse / (0.05 / 255)))
    assert 250 <= len(levels) <= 256
    assert levels.min() >= 0
    assert levels.max() <= 255
    # Uniform on [0, 0.05]: mean 0.025, std 0.05 / sqrt(12) ≈ 0.0144, as the float draws.
    for maps in (fine, coarse):
        assert abs(maps.mean() - 0.025) < 5e-4
        assert abs(maps.std() - 0.05 / 12**0.5) < 5e-4


def test_scene_visibility_weakens_hidden_joints_only_when_asked() -> None:
    j2 = _joints2d()
    visibility = np.ones((4, 17), bool)
    visibility[1, 3] = visibility[2, 7] = False
    heatmaps, truth = simulate_heatmaps(
        j2, IMAGE, HM, errors=HeatmapErrors(occluded_scale=0.0), visibility=visibility
    )
    assert heatmaps[1, 3].max() == 0
    assert heatmaps[2, 7].max() == 0
    np.testing.assert_array_equal(truth.has(HeatmapError.OCCLUDED), ~visibility)
    assert (1, 3) in [(v, j) for (v, j), mode in truth.events() if mode == "OCCLUDED"]
    ignored, truth = simulate_heatmaps(j2, IMAGE, HM, visibility=visibility)
    assert ignored[1, 3].max() > 0.88
    assert not truth.flags.any()


def test_out_of_view_and_behind_camera_joints() -> None:
    j2 = _joints2d()
    j2[0, 0] = (-500.0, 100.0)
    j2[0, 1] = np.nan
    heatmaps, truth = simulate_heatmaps(j2, IMAGE, HM)
    assert truth.has(HeatmapError.OUT_OF_VIEW)[0, :2].all()
    assert truth.has(HeatmapError.OUT_OF_VIEW).sum() == 2
    assert heatmaps[0, 0].max() < 1e-6
    assert heatmaps[0, 1].max() == 0


def test_seeded_and_modes_draw_independently() -> None:
    j2 = _joints2d()
    errors = HeatmapErrors.realistic()
    a, ta = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=9)
    b, tb = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=np.random.default_rng(9))
    c, _ = simulate_heatmaps(j2, IMAGE, HM, errors=errors, rng=10)
    assert np.array_equal(a, b)
    assert np.array_equal(ta.flags, tb.flags)
    assert not np.array_equal(a, c)
    # Switching a second mode on leaves the first mode's draws alone.
    _, jitter_only = simulate_heatmaps(j2, IMAGE, HM, errors=HeatmapErrors(jitter_px=1.0), rng=9)
    _, with_misses = simulate_heatmaps(
        j2, IMAGE, HM, errors=HeatmapErrors(jitter_px=1.0, miss_prob=0.3), rng=9
    )
    kept = ~with_misses.has(HeatmapError.MISSED)
    np.testing.assert_array_equal(jitter_only.peaks[kept], with_misses.peaks[kept])


def test_realistic_errors_record_their_events_and_sequence_frames() -> None:
    j2 = np.stack([_joints2d(s) for s in range(30)])
    heatmaps, truth = simulate_heatmap_sequence(j2, IMAGE, HM, errors=HeatmapErrors.realistic(), rng=11)
    assert heatmaps.shape == (30, 4, 17, 48, 64)
    assert truth.flags.shape == (30, 4, 17)
    modes = {mode for _, mode in truth.events()}
    assert {"MISSED", "SWAPPED", "WRONG_PEAK", "VIEW_DROPPED", "LOW_CONTRAST"} <= modes
    for (n, c, j), mode in truth.events()[:20]:
        assert truth.flags[n, c, j] & HeatmapError[mode]
    frame = truth.frame(3)
    assert frame.flags.shape == (4, 17)
    assert np.array_equal(frame.flags, truth.flags[3])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="miss_prob"):
        HeatmapErrors(miss_prob=1.5)
    with pytest.raises(ValueError, match="image_size"):
        simulate_heatmaps(_joints2d(), None, HM)
    with pytest.raises(ValueError, match=r"\(C, J, 2\)"):
        simulate_heatmaps(np.zeros((17, 2)), IMAGE, HM)


def test_timing_four_views_64x64() -> None:
    j2 = _joints2d()
    for errors in (HeatmapErrors(), HeatmapErrors.realistic()):
        simulate_heatmaps(j2, IMAGE, (64, 64), errors=errors)
        start = time.perf_counter()
        for i in range(50):
            simulate_heatmaps(j2, IMAGE, (64, 64), errors=errors, rng=i)
        ms = (time.perf_counter() - start) / 50 * 1e3
        mode = "realistic" if errors.miss_prob else "none"
        print(f"simulate_heatmaps 4 views x 17 joints x 64x64, errors={mode}: {ms:.2f} ms")
