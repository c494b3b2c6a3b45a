"""The solver's parts: exact messages, root voting, limb-length estimate, keypoints, shapes and units."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from solver_scene import make_scene, project, render

from crosspose.skeleton import H36M17
from crosspose.solver import LimbLengthEstimate, Pose3D, RefineOptions, Solver, SolverOptions
from crosspose.solver import reference as ref
from crosspose.solver import refine as refine_module
from crosspose.solver.labels import (
    epipolar_swaps,
    fundamental_matrices,
    mirror_groups,
    relabel,
    view_permutation,
)
from crosspose.solver.root import RootSearchOptions, search_root
from crosspose.solver.sampling import sample_per_joint, sample_shared, valid_cameras, view_centre_point
from crosspose.solver.search import first_level
from crosspose.solver.tree import TreeSchedule, max_product_candidates, max_product_grid, shell_offsets
from crosspose.studio.rigs import random_rig


def _tensors(scene):  # type: ignore[no-untyped-def]
    hm = torch.as_tensor(scene.heatmaps)[None]
    P = torch.as_tensor(scene.projections, dtype=torch.float32)[None]
    return hm, P, valid_cameras(hm, P)


@pytest.mark.parametrize(("first", "count"), [(0, 6), (0, 4), (2, 4), (3, 3)])
def test_per_joint_sampling_of_some_joints_reads_their_maps_in_place_as_their_copy_would(first: int,
                                                                                        count: int) -> None:
    """The body's first joints, a layout's last (extremities) or a middle run: the same samples as the
    joints' maps copied out, NaN and far-off pixels zero."""
    rng = np.random.default_rng(3)
    hm = torch.as_tensor(rng.random((2, 3, 6, 9, 11), dtype=np.float32))
    uv = torch.as_tensor(rng.uniform(-2.0, 12.0, (2, 3, count, 5, 2)), dtype=torch.float32)
    uv[0, 1, 0, 2] = float("nan")
    copied = sample_per_joint(hm[:, :, first:first + count].contiguous(), uv)
    in_place = sample_per_joint(hm, uv, first)
    assert in_place.shape == (2, 3, count, 5)
    assert torch.equal(in_place, copied)
    assert in_place[0, 1, 0, 2] == 0.0


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_heatmaps_holding_nan_or_inf_solve_as_cleaned_and_the_callers_maps_stay_as_they_were(
        value: float) -> None:
    # (the maps' maxima find a NaN or an infinity; it is then cleaned as np.nan_to_num does)
    scene = make_scene(4)
    hm = scene.heatmaps.copy()
    hm[1, 3, 10:20, 5:9] = value
    given = hm.copy()
    zeros = np.nan_to_num(hm, nan=0.0)
    pose = Solver().solve(hm, scene.projections)
    assert np.array_equal(pose.joints, Solver().solve(zeros, scene.projections).joints)
    assert np.array_equal(hm, given, equal_nan=True)
    clean = Solver().solve(scene.heatmaps, scene.projections)  # no NaN: the caller's maps read in place
    assert 1e3 * np.abs(clean.joints - scene.joints).max() < 30.0


def test_bilinear_sampling_reads_pixel_centres_and_is_zero_outside() -> None:
    hm = torch.zeros(1, 1, 1, 5, 7)
    hm[0, 0, 0, 2, 3] = 1.0
    uv = torch.tensor([[[[3.0, 2.0], [3.5, 2.0], [-3.0, 2.0], [float("nan"), 1.0]]]])
    out = sample_shared(hm, uv)[0, 0, 0]
    assert out.tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_host_climb_is_the_grid_sample_climb_up_to_the_maps_edges(seed: int) -> None:
    """Maps on the host climb in numpy from whole-pixel patches; a device climbs with grid_sample over the
    whole maps. Evidence reaching the edges, starts inside, across and outside them, NaN and far away
    starts: the same peaks (a start with no evidence is returned as given) and the same evidence."""
    g = torch.Generator().manual_seed(seed)
    hm = torch.rand(2, 3, 4, 11, 13, generator=g) - 0.2  # negative values too: clipped as weights
    uv = torch.rand(2, 3, 4, 2, generator=g) * 21.0 - 4.0
    uv[0, 0, 0] = float("nan")
    uv[0, 1, 1] = torch.tensor([1e9, 5.0])
    uv[1, 2, 3] = torch.tensor([-40.0, -40.0])
    host = refine_module.local_peaks(hm, uv, 3, 4)
    device = refine_module._climb_device(hm, uv, 3, 4)
    assert torch.equal(host[0].isnan(), device[0].isnan())
    torch.testing.assert_close(host[0], device[0], rtol=0.0, atol=1e-4, equal_nan=True)
    torch.testing.assert_close(host[1], device[1], rtol=0.0, atol=1e-5)
    assert host[0][1, 2, 3].tolist() == [-40.0, -40.0]
    assert host[1][0, 0, 0] == 0.0
    assert host[1][1, 2, 3] == 0.0
    for k in range(uv.shape[2]):  # one map a call: a patch at an edge is the only one there
        maps, start = hm[1:, 1:2, k:k + 1], uv[1:, 1:2, k:k + 1]
        torch.testing.assert_close(refine_module.local_peaks(maps, start, 3, 4)[0],
                                   refine_module._climb_device(maps, start, 3, 4)[0], rtol=0.0, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_shell_messages_give_the_dense_map(seed: int) -> None:
    scene = make_scene(seed, jitter=0.3, noise=0.01)
    lengths = H36M17.bone_lengths(scene.joints)
    args = (scene.heatmaps, scene.projections, scene.joints[0], lengths)
    dense = ref.dense_psm(*args, bins=8, extent=1.6)
    shell = ref.dense_psm(*args, bins=8, extent=1.6, messages="shell")
    np.testing.assert_allclose(shell, dense, atol=1e-6)


def test_top_k_with_every_bin_is_the_exact_grid_map() -> None:
    scene = make_scene(2, jitter=0.3, noise=0.01)
    hm, P, valid = _tensors(scene)
    root = torch.as_tensor(scene.joints[:1], dtype=torch.float32)
    lengths = torch.as_tensor(H36M17.template_bone_lengths(), dtype=torch.float32)[None]
    schedule = TreeSchedule.from_skeleton(H36M17)
    exact = first_level(schedule, hm, P, valid, root, lengths, bins=8, extent=1.6, top_k=None)
    every = first_level(schedule, hm, P, valid, root, lengths, bins=8, extent=1.6, top_k=512)
    torch.testing.assert_close(every, exact)


def test_shell_offsets_match_the_limb_length() -> None:
    off = shell_offsets(16, 0.125, 0.45, 0.15).double() * 0.125
    d = off.norm(dim=-1)
    assert ((d >= 0.3 - 1e-9) & (d <= 0.6 + 1e-9)).all()
    assert len(off) > 100


def test_max_product_follows_limb_lengths_over_unary() -> None:
    # Two joints, two candidates each: the unary prefers a pair 1 m apart, the limb says 0.3 m.
    from crosspose.skeleton import Skeleton

    sk = Skeleton("pair", ("a", "b"), (-1, 0), (0.0, 0.3))
    cands = torch.tensor([[[[0.0, 0, 0], [5.0, 0, 0]], [[1.0, 0, 0], [5.3, 0, 0]]]])
    unary = torch.tensor([[[0.0, -0.5], [0.0, -0.5]]])
    schedule = TreeSchedule.from_skeleton(sk)
    choice, _ = max_product_candidates(schedule, cands, unary, torch.tensor([[0.3]]), 0.05)
    assert choice.tolist() == [[1, 1]]
    bins = max_product_grid(TreeSchedule.from_skeleton(sk), torch.zeros(1, 2, 4, 4, 4), 0.1,
                            torch.tensor([0.3]), 0.02)
    assert float((bins[0, 1] - bins[0, 0]).double().norm()) == pytest.approx(3.0)


def test_root_vote_ignores_a_wrong_pelvis_in_one_view() -> None:
    scene = make_scene(3)
    hm, P, valid = _tensors(scene)
    peaks = project(scene.joints, scene.projections)
    for j in (0, 1, 4):  # pelvis and hips of view 0 moved far away
        hm[0, 0, j] = torch.as_tensor(render(peaks[:1, j:j + 1] + 15.0, hm.shape[-1]))[0, 0]
    centre = view_centre_point(P, valid, (64, 64)).float()
    root, votes = search_root(hm, P, valid, centre, (0, 1, 4), RootSearchOptions())
    assert float((root[0] - torch.as_tensor(scene.joints[0]).float()).norm()) < 0.08
    assert 2.5 < float(votes[0]) <= 3.01


def test_limb_estimate_learns_the_performer_ignores_outliers_and_resets() -> None:
    rng = np.random.default_rng(0)
    est = LimbLengthEstimate(H36M17, window=40, min_samples=10)
    truth = H36M17.template_bone_lengths(0.92)
    for _ in range(40):
        measured = truth + rng.normal(0, 0.005, truth.shape)
        measured[rng.integers(truth.size)] *= 1.4  # one mislocalised bone per frame
        est.update(measured, np.ones(truth.size, bool))
    np.testing.assert_allclose(est.lengths, truth, atol=0.006)
    assert est.scale == pytest.approx(0.92, abs=0.01)
    est.reset()
    np.testing.assert_allclose(est.lengths, H36M17.template_bone_lengths())


def test_solver_learns_limb_lengths_online() -> None:
    scene = make_scene(12, scale=0.9)
    solver = Solver(tracking=False)
    for _ in range(20):
        solver.solve(scene.heatmaps, scene.projections)
    np.testing.assert_allclose(solver.limbs.lengths, H36M17.bone_lengths(scene.joints), atol=0.002)
    solver.reset()
    np.testing.assert_allclose(solver.limbs.lengths, H36M17.template_bone_lengths())


def test_solve_keypoints_undistorts_and_triangulates() -> None:
    rig = random_rig(3, 4, volume_radius=1.2)
    assert np.abs(rig.dist).max() > 0  # a rig with lens distortion
    joints = make_scene(13).joints
    uv = np.swapaxes(np.asarray(rig.project(joints)), 0, 1)  # (C, J, 2) distorted pixels
    keypoints = np.concatenate([uv, np.full((*uv.shape[:2], 1), 0.9)], -1)
    keypoints[1, 5] = np.nan  # a missed detection
    keypoints[2, :, 2] = 0.0  # a camera without detections
    pose = Solver().solve_keypoints(keypoints, rig)
    err = 1e3 * np.linalg.norm(pose.joints - joints, axis=-1)
    assert err.max() < 1.0, err
    assert not pose.support[2].any()
    assert pose.views[5] == 2
    assert pose.views[0] == 3


def test_solve_keypoints_swaps_back_the_keypoints_of_a_swapped_view() -> None:
    rig = random_rig(3, 4, volume_radius=1.2)
    joints = make_scene(13).joints
    uv = np.swapaxes(np.asarray(rig.project(joints)), 0, 1)
    keypoints = np.concatenate([uv, np.full((*uv.shape[:2], 1), 0.9)], -1)
    keypoints[3] = keypoints[3, list(H36M17.mirror)]
    pose = Solver().solve_keypoints(keypoints, rig)
    assert pose.diagnostics["relabelled"][3].tolist() == list(H36M17.mirror)
    assert 1e3 * np.linalg.norm(pose.joints - joints, axis=-1).max() < 1.0
    assert (pose.views == 4).all()
    assert np.abs(pose.diagnostics["keypoint_residual_px"]).max() < 0.1


def test_mirror_groups_are_the_limbs() -> None:
    groups = mirror_groups(H36M17)
    names = sorted(sorted(H36M17.joints[j] for j in range(17) if g[j]) for g in groups.members)
    assert names == [["l_ankle", "l_hip", "l_knee", "r_ankle", "r_hip", "r_knee"],
                     ["l_elbow", "l_shoulder", "l_wrist", "r_elbow", "r_shoulder", "r_wrist"]]


def test_relabel_swaps_the_flagged_groups_of_the_flagged_views_only() -> None:
    groups = mirror_groups(H36M17)
    heatmaps = torch.rand(2, 3, H36M17.num_joints, 5, 6)
    flips = torch.zeros(2, 3, groups.num_groups, dtype=torch.bool)
    flips[1, 2, 0] = True  # frame 1, view 2: the first limb group's left and right crossed
    out = relabel(heatmaps, view_permutation(flips, groups))
    members = [j for j, m in enumerate(groups.members[0]) if m]
    mirror = torch.tensor(groups.mirror)
    for n in range(2):
        for c in range(3):
            for j in range(H36M17.num_joints):
                src = int(mirror[j]) if (n, c) == (1, 2) and j in members else j
                assert torch.equal(out[n, c, j], heatmaps[n, c, src]), (n, c, j)
    assert members
    assert any(int(mirror[j]) != j for j in members)


def test_fundamental_matrices_map_matching_pixels_to_epipolar_lines() -> None:
    scene = make_scene(2)
    P = torch.as_tensor(scene.projections, dtype=torch.float64)[None]
    F = fundamental_matrices(P)[0]
    x = torch.as_tensor(project(scene.joints, scene.projections))  # (C, J, 2)
    x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1)
    for u in range(4):
        for v in range(4):
            if u != v:
                line = x1[u] @ F[u, v].T  # (J, 3)
                distance = (line * x1[v]).sum(-1).abs() / line[:, :2].norm(dim=-1)
                assert distance.max() < 1e-6


@pytest.mark.parametrize("cameras", [3, 4, 8])
def test_epipolar_test_finds_the_swapped_view_and_only_it(cameras: int) -> None:
    scene = make_scene(5, num_cameras=cameras, jitter=0.2, noise=0.01)
    hm = torch.as_tensor(scene.heatmaps)[None].clone()
    P = torch.as_tensor(scene.projections, dtype=torch.float32)[None]
    valid = valid_cameras(hm, P)
    groups = mirror_groups(H36M17)
    assert not epipolar_swaps(hm, P, valid, groups).any()
    hm[0, 1] = hm[0, 1, list(H36M17.mirror)]
    flips = epipolar_swaps(hm, P, valid, groups)[0]  # (C, G)
    assert flips[1].all()
    assert not flips[[c for c in range(cameras) if c != 1]].any()


def test_pose_shapes_units_and_types() -> None:
    scene = make_scene(14)
    pose = Solver().solve(torch.as_tensor(scene.heatmaps), torch.as_tensor(scene.projections))
    assert isinstance(pose, Pose3D)
    assert pose.joints.shape == (17, 3)
    assert pose.joints.dtype == np.float64
    assert pose.confidence.shape == (17,)
    assert pose.views.shape == (17,)
    assert pose.views.dtype == np.int64
    assert pose.support.shape == (4, 17)
    assert 0.7 < pose.joints[0, 2] < 1.2  # pelvis height in metres, not millimetres
    assert pose.skeleton == "h36m17"
    assert pose.mode == "cold"


def test_bad_inputs_are_rejected_clearly() -> None:
    scene = make_scene(0)
    with pytest.raises(ValueError, match="heatmaps"):
        Solver().solve(scene.heatmaps[:, :5], scene.projections)
    with pytest.raises(ValueError, match="projections"):
        Solver().solve(scene.heatmaps, scene.projections[:3])
    with pytest.raises(TypeError, match="unknown solver option"):
        Solver(grid_size=3)


def test_options_come_whole_or_as_keywords() -> None:
    options = SolverOptions(top_k=8, refine_options=RefineOptions(radius=2))
    assert Solver(options=options).options == options
    assert Solver(top_k=8, refine_options=RefineOptions(radius=2)).options == options
    assert Solver(options=options, top_k=4).options == dataclasses.replace(options, top_k=4)
    with pytest.raises(TypeError, match="refine_options must be a RefineOptions, got dict"):
        Solver(refine_options={"radius": 2})
    with pytest.raises(TypeError, match="options must be a SolverOptions"):
        Solver(options={"top_k": 8})  # type: ignore[arg-type]


def test_batch_solves_match_single_solves() -> None:
    scenes = [make_scene(s, jitter=0.2) for s in (15, 16)]
    hm = np.stack([s.heatmaps for s in scenes])
    projections = np.stack([s.projections for s in scenes])  # per-frame projections (crops move)
    batch = Solver(tracking=False).solve_batch(hm, projections)
    assert len(batch) == len(scenes)
    for pose, scene in zip(batch, scenes, strict=True):
        single = Solver(tracking=False, online_limbs=False).solve(scene.heatmaps, scene.projections)
        np.testing.assert_allclose(pose.joints, single.joints, atol=1e-5)
        assert 1e3 * np.linalg.norm(pose.joints - scene.joints, axis=-1).mean() < 40.0
