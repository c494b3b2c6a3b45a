"""Tracking mode: consistent with cold solves, falls back on jumps, and CPU/CUDA parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from solver_scene import make_scene, project, random_pose, render

from crosspose.skeleton import H36M17
from crosspose.solver import Solver


def _moving_frames(count: int, step: float = 0.02, size: int = 64):  # type: ignore[no-untyped-def]
    """A pose gliding along x by ``step`` m per frame, perfect heatmaps."""
    scene = make_scene(20, size=size)
    frames = []
    for k in range(count):
        joints = scene.joints + np.array([k * step, 0.5 * k * step, 0.0])
        frames.append((joints, render(project(joints, scene.projections), size)))
    return scene.projections, frames


def test_tracking_matches_cold_solves() -> None:
    P, frames = _moving_frames(8)
    tracker, cold = Solver(), Solver(tracking=False)
    modes = []
    for joints, hm in frames:
        a, b = tracker.solve(hm, P), cold.solve(hm, P)
        modes.append(a.mode)
        assert 1e3 * np.abs(a.joints - joints).max() < 1.0
        np.testing.assert_allclose(a.joints, b.joints, atol=1e-3)
        np.testing.assert_array_equal(a.views, b.views)
    assert modes[0] == "cold"
    assert modes[1:] == ["tracked"] * (len(frames) - 1)


def test_tracking_swaps_back_a_left_right_swap_in_one_view() -> None:
    P, frames = _moving_frames(6)
    solver = Solver()
    for k, (joints, hm) in enumerate(frames):
        hm = hm.copy()
        view = k % 4  # a different view each frame, as a flickering 2D network does
        hm[view] = hm[view, list(H36M17.mirror)]
        pose = solver.solve(hm, P)
        assert pose.mode == ("cold" if k == 0 else "tracked")
        assert 1e3 * np.abs(pose.joints - joints).max() < 1.0
        assert (pose.views == 4).all()
        assert pose.diagnostics["relabelled"][view].tolist() == list(H36M17.mirror)


def test_tracking_runs_the_full_swap_test_only_when_the_prediction_leaves_a_doubt() -> None:
    """Limbs well apart in the views (128-pixel heatmaps): a clean tracked frame skips the epipolar
    left/right test; a frame with one view swapped runs it and relabels that view."""
    P, frames = _moving_frames(8, size=128)
    solver = Solver()
    tests = []
    for k, (joints, hm) in enumerate(frames):
        swapped = k in (4, 6)
        if swapped:
            hm = hm.copy()
            hm[1] = hm[1, list(H36M17.mirror)]
        pose = solver.solve(hm, P)
        tests.append(pose.diagnostics["swap_test"])
        assert 1e3 * np.abs(pose.joints - joints).max() < 1.0
        relabelled = pose.diagnostics["relabelled"]
        assert (relabelled is not None and relabelled[1].tolist() == list(H36M17.mirror)) == swapped
    assert tests[0] == "full"  # cold
    assert tests[4] == tests[6] == "full"
    assert tests.count("skipped") >= 4, tests


def test_a_view_without_signal_raises_no_left_right_doubt() -> None:
    """A camera that sees nothing (its maps noise only) has no limbs to cross: tracked frames skip the
    full left/right test as with every camera seeing, where its noise below the peak threshold raised a
    doubt in every frame and the test ran each time."""
    P, frames = _moving_frames(6, size=128)
    solver = Solver()
    rng = np.random.default_rng(0)
    tests = []
    for joints, hm in frames:
        hm = hm.copy()
        hm[2] = rng.normal(0.0, 0.01, hm[2].shape)
        pose = solver.solve(hm, P)
        tests.append(pose.diagnostics["swap_test"])
        assert 1e3 * np.abs(pose.joints - joints).max() < 1.0
        assert not pose.support[2].any()
    assert tests[1:] == ["skipped"] * (len(frames) - 1), tests


def test_jump_falls_back_to_cold_search() -> None:
    P, frames = _moving_frames(3)
    solver = Solver()
    for _, hm in frames:
        solver.solve(hm, P)
    other = random_pose(99)  # a different performer elsewhere in the volume
    other[:, :2] += np.array([0.6, -0.6]) - other[0, :2]
    pose = solver.solve(render(project(other, P), 64), P)
    assert pose.mode == "cold"
    assert pose.diagnostics["fallback"] in ("jump", "confidence")
    assert 1e3 * np.linalg.norm(pose.joints - other, axis=-1).max() < 1.0


def test_lost_performer_is_not_tracked() -> None:
    P, frames = _moving_frames(2)
    solver = Solver()
    solver.solve(frames[0][1], P)
    empty = solver.solve(np.zeros_like(frames[1][1]), P)
    assert (empty.views == 0).all()
    assert (empty.confidence == 0).all()
    again = solver.solve(frames[1][1], P)
    assert again.mode == "cold"


def test_reset_forgets_the_previous_pose() -> None:
    P, frames = _moving_frames(2)
    solver = Solver()
    solver.solve(frames[0][1], P)
    solver.reset()
    assert solver.solve(frames[1][1], P).mode == "cold"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    scene = make_scene(21, jitter=0.25, noise=0.01)
    cpu = Solver(tracking=False).solve(scene.heatmaps, scene.projections)
    gpu = Solver(tracking=False).solve(torch.as_tensor(scene.heatmaps).cuda(),
                                       torch.as_tensor(scene.projections).cuda())
    np.testing.assert_allclose(gpu.joints, cpu.joints, atol=1e-3)
    np.testing.assert_array_equal(gpu.views, cpu.views)
    np.testing.assert_allclose(gpu.confidence, cpu.confidence, atol=1e-3)


def _kick(size: int = 64):  # type: ignore[no-untyped-def]
    """Two frames of one pose, the right knee and ankle 0.3 m further forward in the second (a kick
    sampled 200 ms apart, as a live loop at 5 sets/s sees a 60 fps take)."""
    scene = make_scene(20, size=size)
    second = scene.joints.copy()
    second[[2, 3]] += np.array([0.0, 0.3, 0.1])  # H36M-17: 2 right knee, 3 right ankle
    frames = [(j, render(project(j, scene.projections), size)) for j in (scene.joints, second)]
    return scene.projections, frames


def test_a_previous_pose_too_old_to_track_from_is_searched_cold() -> None:
    P, ((_, hm0), (second, hm1)) = _kick()
    # Frames 200 ms apart: too old to search a few centimetres around (on real heatmaps, with their
    # other peaks, that loses fast limbs: the solver option's docstring has the numbers); cold search.
    solver = Solver()
    solver.solve(hm0, P, t_ns=1_000_000_000)
    pose = solver.solve(hm1, P, t_ns=1_200_000_000)
    assert pose.mode == "cold"
    assert pose.diagnostics["fallback"] == "previous pose too old"
    assert 1e3 * np.abs(pose.joints - second).max() < 1.0
    assert (pose.views == 4).all()
    # Frames one 60 fps period apart stay tracked.
    recent = Solver()
    recent.solve(hm0, P, t_ns=1_000_000_000)
    assert recent.solve(hm0, P, t_ns=1_016_666_667).mode == "tracked"


def test_one_solver_follows_two_performers_through_their_own_tracks() -> None:
    """Each performer's previous pose, velocity and limb lengths live in its SolverTrack: one solver
    alternating between two performers gives exactly what two solvers give."""
    P, frames = _moving_frames(6)
    other_scene = make_scene(21)
    others = [render(project(other_scene.joints + np.array([0.0, -0.01 * k, 0.0]), P), 64) for k in range(6)]
    shared = Solver()
    first, second = shared.new_track(), shared.new_track()
    alone_a, alone_b = Solver(), Solver()
    for (_, hm_a), hm_b in zip(frames, others, strict=True):
        a, b = shared.solve(hm_a, P, track=first), shared.solve(hm_b, P, track=second)
        ref_a, ref_b = alone_a.solve(hm_a, P), alone_b.solve(hm_b, P)
        np.testing.assert_array_equal(a.joints, ref_a.joints)
        np.testing.assert_array_equal(b.joints, ref_b.joints)
        assert (a.mode, b.mode) == (ref_a.mode, ref_b.mode)
    assert a.mode == b.mode == "tracked"
    np.testing.assert_array_equal(first.limbs.lengths, alone_a.limbs.lengths)
    np.testing.assert_array_equal(second.limbs.lengths, alone_b.limbs.lengths)
    assert not np.array_equal(first.limbs.lengths, second.limbs.lengths)
    assert shared.track.previous is None  # its own track was never used
