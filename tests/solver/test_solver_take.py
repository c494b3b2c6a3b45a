"""Lengths learnt over a whole take (``reconstruct --lengths take``): a first pass's measurements seeded into
a fresh track, the take solved again with them known from its first frame."""

from __future__ import annotations

import numpy as np
import pytest
from solver_scene import project, random_pose, render, ring_projections

from crosspose.reconstruct_take import HeatmapStore, check_lengths_mode, resolve_frames
from crosspose.skeleton import BODY32
from crosspose.solver import Solver
from crosspose.solver.limbs import LimbLengthEstimate, window_summary
from crosspose.solver.take import TakeLengths
from crosspose.studio import extremities as ex

PAIRS = [(BODY32.index(f"{s}_heel"), BODY32.index(f"{s}_big_toe")) for s in "lr"]


def test_a_window_summary_keeps_the_samples_median_and_spread() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(0.4, 0.01, (500, 2))
    samples[::3, 1] = np.nan
    window, counts = window_summary(samples, 90)
    np.testing.assert_array_equal(counts, np.isfinite(samples).sum(0))
    for k in range(2):
        kept = samples[np.isfinite(samples[:, k]), k]
        assert np.nanmedian(window[:, k]) == pytest.approx(np.median(kept), abs=2e-4)
        mad = np.median(np.abs(kept - np.median(kept)))
        assert np.nanmedian(np.abs(window[:, k] - np.nanmedian(window[:, k]))) == pytest.approx(mad, rel=0.05)
    few, counts = window_summary(samples[:10], 90)  # fewer than the window: kept as they are
    np.testing.assert_allclose(np.sort(few[:10, 0]), np.sort(samples[:10, 0]))
    assert np.isnan(few[10:]).all()


def test_a_seeded_limb_estimate_is_known_at_once_and_a_bone_never_measured_is_scaled_template() -> None:
    estimate = LimbLengthEstimate(BODY32)
    samples = np.full((40, len(BODY32.bones)), np.nan)
    samples[:, 0] = 0.13
    samples[:5, 1] = 0.5  # fewer than min_samples
    estimate.seed(samples, scale=1.1)
    assert estimate.known[0]
    assert not estimate.known[1:].any()
    assert estimate.lengths[0] == pytest.approx(0.13)
    np.testing.assert_allclose(estimate.lengths[2:], 1.1 * estimate.template[2:])


def _take(frames: int, short: int, shrink_px: float, jitter_px: float = 0.15,
          seed: int = 5) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A still performer's heatmaps over ``frames`` frame sets whose toe peaks are drawn ``shrink_px``
    pixels towards the heel in every view over the first ``short`` sets (a foot read short at the start of
    the take, as the real Pose2Sim clip's left foot is; a pixel is ~7 cm here), all peaks jittered
    ``jitter_px``; the true joints and the projections."""
    rng = np.random.default_rng(seed)
    level = ex.ExtremityPoses(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1))
    truth = ex.full_body(random_pose(seed)[None], level, 1.0)[0]
    P = ring_projections(4, size=64, seed=seed)
    uv = project(truth, P)  # (C, J, 2)
    sets = []
    for i in range(frames):
        peaks = uv + rng.normal(0.0, jitter_px, uv.shape)
        if i < short:
            for heel, toe in PAIRS:
                line = uv[:, heel] - uv[:, toe]
                peaks[:, toe] += shrink_px * line / np.linalg.norm(line, axis=-1, keepdims=True)
        sets.append(render(peaks, size=64))
    return sets, truth, P


def _foot_lengths(poses: list) -> np.ndarray:
    return np.array([[np.linalg.norm(p.joints[t] - p.joints[h]) for h, t in PAIRS] for p in poses])


def test_a_take_whose_first_frames_read_short_is_solved_with_the_takes_length_from_its_first_frame() -> None:
    sets, truth, P = _take(frames=32, short=11, shrink_px=0.4)
    true = np.array([np.linalg.norm(truth[t] - truth[h]) for h, t in PAIRS])
    solver = Solver(BODY32)
    online, learnt = [], TakeLengths(BODY32)
    with HeatmapStore() as store:
        stored = []
        for heatmaps in sets:
            pose = solver.solve(heatmaps, P)
            online.append(pose)
            learnt.add(pose)
            stored.append(store.add(heatmaps, P))
        again = [r.pose for r in resolve_frames(stored, store, solver, learnt)]
    assert all(p is not None for p in again)
    raw = np.array([p.diagnostics["foot_lengths_measured"] for p in online])
    assert (raw[:11].mean(0) < true - 0.015).all()  # the first frames do read short (by ~4 cm)
    # The take's length is near the later frames' (two thirds of the take), not the first frames'.
    take = learnt.lengths()["feet"]
    later = np.median(raw[11:], axis=0)
    assert (np.abs(take - later) < 0.25 * np.abs(take - raw[:11].mean(0))).all(), (take, later)
    assert (np.abs(take - true) < 0.01).all(), (take, true)
    # the document gives each foot's own median and the one length both are held to (feet share theirs)
    doc = learnt.to_json()
    own, held = list(doc["feet"].values()), list(doc["feet_held"].values())
    assert held[0] == held[1], doc
    assert min(own) - 1e-6 <= held[0] <= max(own) + 1e-6, doc
    first = _foot_lengths(online)[:11]
    first_again = _foot_lengths(again)[:11]  # type: ignore[arg-type]
    # Online the first frames are held to nothing (no length known yet) or to their own short one; with the
    # take's length known from frame 0 they are pulled towards it.
    assert (np.abs(first_again.mean(0) - take) < 0.5 * np.abs(first.mean(0) - take)).all()
    assert (_foot_lengths(again).std(0) < 0.6 * _foot_lengths(online).std(0)).all()
    # The body is solved as well as in the first pass.
    body = slice(0, 17)
    errors = [np.nanmedian(np.linalg.norm(np.array([p.joints[body] for p in poses]) - truth[body], axis=-1))
              for poses in (online, again)]
    assert errors[1] < errors[0] + 0.002


def test_a_second_pass_over_the_same_heatmaps_with_online_lengths_would_repeat_the_first() -> None:
    """The stored heatmaps (float16) are what the first pass solved: re-solved online they give its poses."""
    sets, _, P = _take(frames=6, short=0, shrink_px=0.0)
    first, again = Solver(BODY32), Solver(BODY32)
    with HeatmapStore() as store:
        for heatmaps in sets:
            a = first.solve(heatmaps, P)
            b = again.solve(store.get(store.add(heatmaps, P)), P)
            np.testing.assert_allclose(b.joints, a.joints, atol=5e-4)
        assert store.nbytes == 6 * sets[0].size * 2


def test_lengths_modes_are_named() -> None:
    assert check_lengths_mode("take") == "take"
    with pytest.raises(ValueError, match="use one of online, take"):
        check_lengths_mode("whole")


def test_a_layout_without_feet_and_a_take_without_poses_seed_nothing_known() -> None:
    from crosspose.skeleton import H36M17

    for skeleton in (H36M17, BODY32):
        track = TakeLengths(skeleton).seed(Solver(skeleton).new_track())
        assert not track.limbs.known.any()
        assert np.isnan(track.feet.lengths).all()
        assert track.limbs.scale == 1.0


def test_each_performer_of_a_take_is_solved_again_with_their_own_lengths() -> None:
    """``reconstruct --persons N --lengths take``'s second pass (:func:`crosspose.reconstruct_persons.
    resolve_persons`): two performers, one 15 % smaller than the other and coming in at the fourth frame set,
    solved by one solver through their own tracks; each id's lengths are learnt from its own poses alone and
    its frame sets are solved again with them, in their own frame sets; an id the first pass never solved
    is not reported."""
    from crosspose.reconstruct_persons import resolve_persons
    from crosspose.solver.lengths import long_bones

    rng = np.random.default_rng(7)
    level = ex.ExtremityPoses(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1))
    truths = [ex.full_body(random_pose(seed, scale=scale)[None], level, scale)[0]
              for seed, scale in ((5, 1.0), (11, 0.85))]
    P = ring_projections(4, size=64, seed=5)
    frames, late = 18, 3
    solver = Solver(BODY32)
    tracks = {id: solver.new_track() for id in (0, 1)}
    learnt = {id: TakeLengths(BODY32) for id in (0, 1)}
    with HeatmapStore() as store:
        stored: dict[int, list] = {0: [], 1: [], 2: []}
        for i in range(frames):
            for id, truth in enumerate(truths):
                if id == 1 and i < late:
                    stored[id].append(None)
                    continue
                heatmaps = render(project(truth, P) + rng.normal(0.0, 0.15, (4, BODY32.num_joints, 2)), 64)
                learnt[id].add(solver.solve(heatmaps, P, track=tracks[id]))
                stored[id].append(store.add(heatmaps, P))
            stored[2].append(stored[0][-1])  # heatmaps of an id never solved (no lengths learnt)
        again = resolve_persons(stored, learnt, store, solver, frames)
    assert [[id for id, _ in persons] for persons in again] == [[0]] * late + [[0, 1]] * (frames - late)
    ends = np.array(BODY32.bones)[long_bones(BODY32)]
    true = [np.linalg.norm(t[ends[:, 1]] - t[ends[:, 0]], axis=-1) for t in truths]  # (L,) each
    take = [learnt[id].lengths()["bones"][long_bones(BODY32)] for id in (0, 1)]
    for id in (0, 1):
        # learnt from the performer's own poses: within 1 cm of their bones, not the other's (3-8 cm apart)
        assert np.abs(take[id] - true[id]).max() < 0.01, (id, take[id], true[id])
        poses = np.array([dict(persons)[id].joints for persons in again if id in dict(persons)])
        solved = np.median(np.linalg.norm(poses[:, ends[:, 1]] - poses[:, ends[:, 0]], axis=-1), axis=0)
        assert np.abs(solved - take[id]).max() < 0.005, (id, solved, take[id])
        assert np.abs(solved - take[1 - id]).max() > 0.02
        assert np.nanmedian(np.linalg.norm(poses[:, :17] - truths[id][:17], axis=-1)) < 0.02  # ~7 cm a pixel

def test_a_take_that_would_not_fit_the_disk_is_refused_at_its_first_frame_set(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import shutil
    from collections import namedtuple

    from crosspose.reconstruct import ReconstructError

    heatmaps = np.zeros((4, 32, 64, 64), np.float32)  # one frame set: 1 MB as float16
    projections = np.zeros((4, 3, 4))
    usage = namedtuple("usage", "total used free")
    free = HeatmapStore.SPARE_BYTES + 50 * heatmaps.size * 2  # room for 50 frame sets, not for 3600
    # A disk this small cannot be made here: its free space is what the check reads.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(free, 0, free))
    with HeatmapStore(expected_sets=50, folder=str(tmp_path)) as fits:
        fits.add(heatmaps, projections)
        np.testing.assert_array_equal(fits.get(fits.add(heatmaps + 1, projections)), heatmaps + 1)
    with HeatmapStore(expected_sets=3600, folder=str(tmp_path)) as store:
        with pytest.raises(ReconstructError, match=r"3600 frame sets in .*--lengths online"):
            store.add(heatmaps, projections)
        assert store.nbytes == 0  # nothing written


def test_a_disk_that_fills_up_during_the_take_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from crosspose.reconstruct import ReconstructError

    store = HeatmapStore(folder=str(tmp_path))
    store._file.close()
    store._file = open("/dev/full", "wb")  # noqa: SIM115  # the kernel's always-full device: ENOSPC
    with pytest.raises(ReconstructError, match=r"second pass .*No space left on device.*TMPDIR"):
        store.add(np.zeros((4, 32, 64, 64), np.float32), np.zeros((4, 3, 4)))
    store.close()
