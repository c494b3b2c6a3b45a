"""The windowed cross-view fusion (the exported layout): the whole-map fusion, evaluated only where
each joint's prior says it can be."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_fusion import SIZE, all_valid, detected, prior_near, studio
from torch.nn import functional

from crosspose.nets import CrossViewFusion
from crosspose.nets.epipolar import bilinear_scalars
from crosspose.skeleton import H36M17
from crosspose.studio import HeatmapErrors

WINDOW = {"window": 16, "window_stride": 2, "window_radius": 0.4, "window_samples": 8}


@pytest.mark.parametrize("nearest", [False, True])
def test_scalar_reads_equal_grid_sample(nearest: bool) -> None:
    generator = torch.Generator().manual_seed(1)
    maps = torch.rand(3, 9, 11, generator=generator)
    x = torch.rand(3, 200, generator=generator) * 15.0 - 3.0  # inside, across the border, outside
    y = torch.rand(3, 200, generator=generator) * 13.0 - 3.0
    x[0, :3] = torch.tensor([0.0, 10.0, -1.0])  # the first and last columns exactly, the zero border
    y[1, :3] = torch.tensor([0.0, 8.0, 9.0])
    x[2, 0], y[2, 0] = 1e4, -1e4  # far away
    padded = functional.pad(maps, (1, 1, 1, 1)).reshape(-1)
    base = (torch.arange(3) * (9 + 2) * (11 + 2))[:, None]
    got = bilinear_scalars(padded, base, x, y, 9, 11, nearest=nearest)
    grid = torch.stack([x / 10.0 * 2 - 1, y / 8.0 * 2 - 1], -1)[:, None]  # (3, 1, 200, 2)
    expected = functional.grid_sample(maps[:, None], grid, mode="nearest" if nearest else "bilinear",
                                      padding_mode="zeros", align_corners=True)[:, 0, 0]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert got[2, 0] == 0


def test_inside_its_windows_it_is_the_whole_map_fusion() -> None:
    """Every prior at the root, the root's sphere and every pixel: the same rays, the same values."""
    heatmaps, P, root, _, _ = studio(11, 4, 2, HeatmapErrors.realistic())
    whole = CrossViewFusion(query_stride=1, samples=12)
    window = CrossViewFusion(query_stride=1, samples=12, window=10, window_stride=1, window_radius=1.2,
                             window_samples=12)
    joints = root[:, None].expand(-1, H36M17.num_joints, -1).contiguous()
    valid = all_valid(heatmaps)
    with torch.no_grad():
        expected, support_a = whole.cross_evidence(heatmaps, P, valid, root, 1.2)
        got, support_b = window.windowed_cross_evidence(heatmaps, P, valid, joints)
    torch.testing.assert_close(support_b, support_a)
    # The window: 11 x 11 pixels around the root's projection in each view.
    hom = torch.einsum("ncij,nj->nci", P.double(), torch.cat([root, torch.ones(2, 1)], 1).double())
    centre = torch.floor(hom[..., :2] / hom[..., 2:] + 0.5).long()
    checked = 0
    for n in range(2):
        for c in range(4):
            x0, y0 = (centre[n, c] - 5).tolist()
            xs = slice(max(x0, 0), min(x0 + 11, SIZE))
            ys = slice(max(y0, 0), min(y0 + 11, SIZE))
            torch.testing.assert_close(got[n, c, :, ys, xs], expected[n, c, :, ys, xs], atol=5e-5, rtol=0)
            outside = torch.ones(SIZE, SIZE, dtype=torch.bool)
            outside[ys, xs] = False
            assert not got[n, c][:, outside].any()  # stride 1: nothing leaks out of the window
            checked += got[n, c, :, ys, xs].numel()
    assert checked > 4 * 17 * 100
    assert expected.amax() > 0.5


def test_left_right_swap_and_dropped_view() -> None:
    heatmaps, P, root, truth, joints3d = studio(5)
    prior = prior_near(joints3d, 5)
    swapped = heatmaps.clone()
    swapped[:, 1] = heatmaps[:, 1, list(H36M17.mirror)]
    sided = np.array([m != i for i, m in enumerate(H36M17.mirror)])
    fusion = CrossViewFusion(**WINDOW)
    with torch.no_grad():
        fused = fusion(swapped, P, all_valid(swapped), root, joints=prior)
    raw_ok, inside = detected(swapped, truth)
    fused_ok, _ = detected(fused, truth)
    mask = inside[:, 1][:, sided]
    assert raw_ok[:, 1][:, sided][mask].mean() < 0.3
    assert fused_ok[:, 1][:, sided][mask].mean() > 0.9

    dropped = heatmaps.clone()
    dropped[:, 2] = 0.0
    valid = all_valid(heatmaps)
    valid[:, 2] = False
    with torch.no_grad():
        fused = fusion(dropped, P, valid, root, joints=prior)
    ok, inside = detected(fused, truth)
    assert ok[:, 2][inside[:, 2]].mean() > 0.85


def test_a_joint_without_prior_keeps_its_own_maps() -> None:
    heatmaps, P, root, _, joints3d = studio(7, 3, 2)
    prior = prior_near(joints3d, 7)
    prior[:, 4] = float("nan")
    prior[1, 9] = float("nan")
    fusion = CrossViewFusion(**WINDOW)
    with torch.no_grad():
        fused = fusion(heatmaps, P, all_valid(heatmaps), root, joints=prior)
        _, support = fusion.windowed_cross_evidence(heatmaps, P, all_valid(heatmaps), prior)
    torch.testing.assert_close(fused[:, :, 4], heatmaps[:, :, 4])
    torch.testing.assert_close(fused[1, :, 9], heatmaps[1, :, 9])
    assert not support[:, :, 4].any()
    assert (support[0, :, 9] > 0).all()
    assert not torch.equal(fused[0, :, 9], heatmaps[0, :, 9])
    assert torch.isfinite(fused).all()
    # A prior behind every camera is no prior either.
    centre = P[0, 0, :, :3].double().inverse() @ -P[0, 0, :, 3].double()
    behind = prior.clone()
    behind[0, 2] = (2 * centre - torch.tensor(joints3d[0, 2])).float()  # mirrored through camera 0
    with torch.no_grad():
        _, support = fusion.windowed_cross_evidence(heatmaps, P, all_valid(heatmaps), behind)
    assert support[0, 0, 2] == 0


def test_gradients_and_arguments() -> None:
    heatmaps, P, root, _, joints3d = studio(8, 3, 2)
    fusion = CrossViewFusion(reduction="softmax", **WINDOW)
    x = heatmaps.clone().requires_grad_(True)
    fusion(x, P, all_valid(x), root, joints=prior_near(joints3d, 8)).square().mean().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
    for name, p in fusion.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="prior joints"):
        fusion(heatmaps, P, all_valid(heatmaps), root)
    with pytest.raises(ValueError, match="multiple of window_stride"):
        CrossViewFusion(window=15, window_stride=2)
    with pytest.raises(ValueError, match="consensus"):
        CrossViewFusion(window=16, consensus=False)
    with pytest.raises(ValueError, match="window_radius"):
        CrossViewFusion(window=16, window_radius=0.0)
    assert "window=16" in repr(CrossViewFusion(**WINDOW))


def test_an_older_prior_needs_a_wider_window() -> None:
    """Every joint 0.45 m from its prior (a limb at 4.5 m/s seen 0.1 s later): the trained window misses
    and the fused maps detect fewer joints than the raw ones; twice the window (``window_scale=2``:
    twice the span, stride and sphere, the same rays) finds them again, and costs little on a fresh prior."""
    from crosspose.nets.train import default_weights_path

    fusion = CrossViewFusion(**WINDOW)
    fusion.load_state_dict(torch.load(default_weights_path(), map_location="cpu", weights_only=True))
    hits = {"raw": 0, "fresh 1": 0, "fresh 2": 0, "stale 1": 0, "stale 2": 0}
    for seed in (3, 4):
        heatmaps, P, root, truth, joints3d = studio(seed, 4, 10, HeatmapErrors.realistic())
        raw_ok, _ = detected(heatmaps, truth)
        hits["raw"] += int(raw_ok.sum())
        for age, offset in (("fresh", 0.0), ("stale", 0.45)):
            prior = torch.tensor(joints3d + np.array([offset, 0.0, 0.0]), dtype=torch.float32)
            for scale in (1, 2):
                with torch.no_grad():
                    fused = fusion(heatmaps, P, all_valid(heatmaps), root, joints=prior, window_scale=scale)
                hits[f"{age} {scale}"] += int(detected(fused, truth)[0].sum())
    print(hits)
    assert hits["stale 1"] < 0.8 * hits["raw"]
    assert hits["stale 2"] > hits["raw"]
    assert hits["fresh 2"] > 0.97 * hits["fresh 1"]
    assert hits["fresh 1"] > 1.05 * hits["raw"]
