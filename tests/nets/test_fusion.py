"""Cross-view fusion: epipolar geometry exact on synthetic rigs, then robustness on simulated heatmaps."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import torch

from crosspose.nets import CrossViewFusion, epipolar_sampling_grid
from crosspose.studio import (
    HeatmapError,
    HeatmapErrors,
    HeatmapTruth,
    heatmap_projection_matrices,
    make_scene,
    person_crops,
    random_rig,
    simulate_heatmap_sequence,
)

SIZE = 64


@cache
def studio(
    seed: int, cameras: int = 4, frames: int = 4, errors: HeatmapErrors | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, HeatmapTruth, np.ndarray]:
    """Heatmaps (N,C,J,h,w), projections (N,C,3,4), root (N,3) = truth + 5 cm, truth, joints3d."""
    rig = random_rig(seed, cameras, distortion=0.0)
    scene = make_scene(seed, frames, cameras, rig=rig)
    crops = np.stack([person_crops(scene.joints2d[f], (SIZE, SIZE)) for f in range(frames)])
    P = heatmap_projection_matrices(np.asarray(rig.projection_matrices())[None], crops)
    heatmaps, truth = simulate_heatmap_sequence(scene.joints2d, transforms=crops, heatmap_size=(SIZE, SIZE),
                                                errors=errors, rng=seed, visibility=scene.visibility)
    root = scene.joints3d[:, 0] + np.random.default_rng(seed).normal(0.0, 0.05, (frames, 3))
    return (torch.from_numpy(heatmaps), torch.tensor(P, dtype=torch.float32),
            torch.tensor(root, dtype=torch.float32), truth, scene.joints3d)


def argmax_xy(heatmaps: torch.Tensor) -> np.ndarray:
    idx = heatmaps.flatten(-2).argmax(-1)
    return torch.stack([idx % heatmaps.shape[-1], idx // heatmaps.shape[-1]], -1).numpy().astype(float)


def detected(heatmaps: torch.Tensor, truth: HeatmapTruth, tol: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """``(N,C,J)`` argmax within ``tol`` px of the truth, and where the truth is inside the heatmap."""
    inside = ~truth.has(HeatmapError.OUT_OF_VIEW)
    error = np.linalg.norm(argmax_xy(heatmaps) - truth.targets, axis=-1)
    return (error <= tol) & inside, inside


def all_valid(heatmaps: torch.Tensor) -> torch.Tensor:
    return torch.ones(heatmaps.shape[:2], dtype=torch.bool)


def test_grid_maps_a_joint_onto_its_epipolar_segment() -> None:
    _heatmaps, P, root, truth, _joints3d = studio(1)
    frame, joint = 0, 13
    grid = epipolar_sampling_grid(P[frame].double(), (SIZE, SIZE), root[frame].double(), 1.2, samples=256)
    assert grid.shape == (4, 4, SIZE * SIZE, 256, 2)
    target = truth.targets[frame, :, joint]  # (C, 2) sub-pixel truth in every view
    for u in range(4):
        x, y = np.round(target[u]).astype(int)
        for v in range(4):
            uv = (grid[u, v, y * SIZE + x].numpy() + 1.0) * (SIZE - 1) / 2  # back to pixels
            closest = np.linalg.norm(uv - target[v], axis=-1).min()
            # The pixel is up to 0.7 px from the joint's sub-pixel location in u; that offset, seen
            # from v, moves the line by a similar amount.
            assert closest < 1.5, (u, v, closest)
    # The diagonal maps a pixel onto itself.
    xs, ys = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="xy")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 2)
    hit = (grid[0, 0] > -3).all(-1)
    self_px = (grid[0, 0] + 1.0) * (SIZE - 1) / 2
    assert torch.allclose(self_px[hit], pixels[:, None, :].double().expand_as(self_px)[hit], atol=1e-6)


def test_rays_that_miss_the_volume_sample_nothing() -> None:
    _, P, root, _, _ = studio(1)
    grid = epipolar_sampling_grid(P[0], (SIZE, SIZE), root[0] + torch.tensor([0.0, 0.0, 50.0]), 1.0, 8)
    assert (grid == -4.0).all()


@pytest.mark.parametrize("cameras", [2, 4, 6])
def test_clean_heatmaps_keep_their_peaks(cameras: int) -> None:
    heatmaps, P, root, truth, _ = studio(2, cameras)
    fused = CrossViewFusion()(heatmaps, P, all_valid(heatmaps), root, 1.2)
    assert fused.shape == heatmaps.shape
    inside = ~truth.has(HeatmapError.OUT_OF_VIEW)
    # The raw argmax is the pixel nearest the sub-pixel joint (≤ 0.71 px); the fused one stays on it or
    # a neighbour (the cross-view evidence is coarser, query stride 2).
    moved = np.abs(argmax_xy(fused) - argmax_xy(heatmaps)).max(-1)[inside]
    error = np.linalg.norm(argmax_xy(fused) - truth.targets, axis=-1)[inside]
    assert moved.max() <= 1
    assert error.max() <= 1.5, error.max()
    assert np.mean(error <= 1.0) > 0.99
    assert torch.isfinite(fused).all()


def detection_rates(fuse: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, int], torch.Tensor]
                    ) -> tuple[float, float, float, float, int]:
    """Raw and fused detection within 2 px over two realistic studios (seeds 3, 4; 10 frames x 4 views),
    overall and on the swapped / wrong-peak joints: ``(raw, fused, raw_bad, fused_bad, bad)``.

    ``fuse(heatmaps, projections, root, joints3d, seed) -> fused`` (the truth only for a prior).
    """
    raw_hits, fused_hits, total = 0, 0, 0
    swapped_raw, swapped_fused, swapped = 0, 0, 0
    for seed in (3, 4):
        heatmaps, P, root, truth, joints3d = studio(seed, 4, 10, HeatmapErrors.realistic())
        with torch.no_grad():
            fused = fuse(heatmaps, P, root, joints3d, seed)
        raw_ok, inside = detected(heatmaps, truth)
        fused_ok, _ = detected(fused, truth)
        raw_hits += raw_ok.sum()
        fused_hits += fused_ok.sum()
        total += inside.sum()
        bad = (truth.has(HeatmapError.SWAPPED) | truth.has(HeatmapError.WRONG_PEAK)) & inside
        swapped_raw += raw_ok[bad].sum()
        swapped_fused += fused_ok[bad].sum()
        swapped += bad.sum()
    return raw_hits / total, fused_hits / total, swapped_raw / swapped, swapped_fused / swapped, int(swapped)


def prior_near(joints3d: np.ndarray, seed: int, metres: float = 0.05) -> torch.Tensor:
    """The true joints moved by ``metres`` (normal per axis): a previous frame's pose, roughly."""
    noise = np.random.default_rng(seed).normal(0.0, metres, joints3d.shape)
    return torch.tensor(joints3d + noise, dtype=torch.float32)


@pytest.mark.parametrize("window", [0, 16])
def test_fusion_beats_raw_detection_with_realistic_errors(window: int) -> None:
    """The whole-map fusion (root sphere) and the windowed one (prior = the truth moved ~5 cm)."""
    fusion = CrossViewFusion(window=window)

    def fuse(heatmaps: torch.Tensor, P: torch.Tensor, root: torch.Tensor, joints3d: np.ndarray,
             seed: int) -> torch.Tensor:
        prior = prior_near(joints3d, seed) if window else None
        return fusion(heatmaps, P, all_valid(heatmaps), root, 1.2, joints=prior)

    raw, fused, raw_bad, fused_bad, bad = detection_rates(fuse)
    print(f"window {window}, detection within 2 px, 20 frames x 4 views: raw {raw:.3f} fused {fused:.3f}; "
          f"swapped/wrong-peak joints ({bad}): raw {raw_bad:.3f} fused {fused_bad:.3f}")
    assert fused > raw + 0.03
    assert fused_bad > raw_bad + 0.3


def test_left_right_swap_in_one_view_is_corrected() -> None:
    heatmaps, P, root, truth, _ = studio(5)
    # Mirror the whole body in view 1 by hand: every left joint's channel shows the right joint.
    from crosspose.skeleton import H36M17
    swapped = heatmaps.clone()
    swapped[:, 1] = heatmaps[:, 1, list(H36M17.mirror)]
    sided = np.array([m != i for i, m in enumerate(H36M17.mirror)])
    fused = CrossViewFusion()(swapped, P, all_valid(swapped), root, 1.2)
    raw_ok, inside = detected(swapped, truth)
    fused_ok, _ = detected(fused, truth)
    mask = inside[:, 1][:, sided]
    assert raw_ok[:, 1][:, sided][mask].mean() < 0.3
    assert fused_ok[:, 1][:, sided][mask].mean() > 0.9


def test_a_dropped_view_is_recovered_from_the_others() -> None:
    heatmaps, P, root, truth, _ = studio(6, 4)
    dropped = heatmaps.clone()
    dropped[:, 2] = 0.0
    valid = all_valid(heatmaps)
    valid[:, 2] = False
    fused = CrossViewFusion()(dropped, P, valid, root, 1.2)
    ok, inside = detected(fused, truth)
    assert ok[:, 2][inside[:, 2]].mean() > 0.85
    # The dropped view contributes nothing: the others are as with clean heatmaps and 3 cameras.
    keep = [0, 1, 3]
    alone = CrossViewFusion()(heatmaps[:, keep], P[:, keep], valid[:, keep], root, 1.2)
    torch.testing.assert_close(fused[:, keep], alone)


def test_a_view_without_calibration_or_partners() -> None:
    heatmaps, P, root, _, _ = studio(7, 2)
    P = P.clone()
    P[:, 1] = float("nan")
    valid = torch.tensor([[True, False]]).expand(heatmaps.shape[0], 2)
    fused = CrossViewFusion()(heatmaps, P, valid, root, 1.2)
    torch.testing.assert_close(fused[:, 0], heatmaps[:, 0])  # nobody to fuse with: unchanged
    assert (fused[:, 1] == 0).all()


def test_gradients_reach_every_parameter_and_the_input() -> None:
    heatmaps, P, root, _, _ = studio(8, 3, 2)
    fusion = CrossViewFusion(reduction="softmax")
    x = heatmaps.clone().requires_grad_(True)
    fusion(x, P, all_valid(x), root, 1.2).square().mean().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
    for name, p in fusion.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert sum(p.numel() for p in fusion.parameters()) < 500


def test_logits_and_shape_checks() -> None:
    heatmaps, P, root, _, _ = studio(8, 3, 2)
    probs = heatmaps.clamp(1e-4, 1 - 1e-4)
    a = CrossViewFusion()(probs, P, all_valid(probs), root, 1.2)
    b = CrossViewFusion(from_logits=True)(torch.logit(probs), P, all_valid(probs), root, 1.2)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="heatmaps"):
        CrossViewFusion(num_joints=16)(heatmaps, P, all_valid(heatmaps), root)
    with pytest.raises(ValueError, match="projections"):
        CrossViewFusion()(heatmaps, P[:, :2], all_valid(heatmaps), root)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_device_agnostic(device: str) -> None:
    heatmaps, P, root, _, _ = studio(9, 4, 2)
    fusion = CrossViewFusion()
    expected = fusion(heatmaps, P, all_valid(heatmaps), root, 1.2)
    radius = torch.tensor([1.2, 1.2], device=device)
    fused = fusion.to(device)(heatmaps.to(device), P.to(device), all_valid(heatmaps).to(device),
                              root.to(device), radius)
    assert fused.device.type == device
    torch.testing.assert_close(fused.cpu(), expected, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# The gather sampler (what the ONNX graph uses) against grid_sample (eager torch)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_bilinear_gather_equals_grid_sample(mode: str) -> None:
    from torch.nn import functional

    from crosspose.nets.epipolar import bilinear_gather

    generator = torch.Generator().manual_seed(0)
    sources = torch.rand(3, 5, 16, 20, generator=generator)
    grid = torch.rand(3, 40, 7, 2, generator=generator) * 2.6 - 1.3  # inside, across the border, outside
    grid[0, 0] = -4.0  # the "no evidence" point
    grid[1, 1, :, 0] = 1.0  # the last column exactly
    grid[1, 2, :, 1] = -1.0  # the first row exactly
    expected = functional.grid_sample(sources, grid, mode=mode, padding_mode="zeros",
                                      align_corners=True)
    got = bilinear_gather(sources, grid, nearest=mode == "nearest")
    assert got.shape == (3, 40, 7, 5)
    torch.testing.assert_close(got.permute(0, 3, 1, 2), expected, atol=1e-6, rtol=0)
    assert not got[0, 0].any()


@pytest.mark.parametrize(("consensus", "reduction", "interpolation"),
                         [(True, "max", "bilinear"), (True, "softmax", "bilinear"),
                          (False, "max", "bilinear"), (True, "max", "nearest"), (False, "max", "nearest")])
def test_gather_and_grid_sample_fuse_the_same(consensus: bool, reduction: str, interpolation: str) -> None:
    heatmaps, P, root, _, _ = studio(21, cameras=4, frames=2, errors=HeatmapErrors.realistic())
    valid = all_valid(heatmaps)
    valid[1, 2] = False
    P = P.clone()
    P[1, 3] = float("nan")  # an uncalibrated view too
    options = {"consensus": consensus, "reduction": reduction, "interpolation": interpolation}
    slow = CrossViewFusion(sampler="grid_sample", **options)  # type: ignore[arg-type]
    fast = CrossViewFusion(sampler="gather", **options)  # type: ignore[arg-type]
    with torch.no_grad():
        expected = slow(heatmaps, P, valid, root)
        got = fast(heatmaps, P, valid, root)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    assert expected.amax() > 0.5
    with pytest.raises(ValueError, match="sampler"):
        CrossViewFusion(sampler="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interpolation"):
        CrossViewFusion(interpolation="cubic")  # type: ignore[arg-type]


@pytest.mark.slow  # the export alone takes 10-40 s here
def test_exported_fusion_gathers_and_matches_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ONNX (sampler auto → gather while exporting; no GridSample node) against eager torch (grid_sample)."""
    import onnx
    import onnxruntime as ort

    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fusion = CrossViewFusion()

        def forward(self, h: torch.Tensor, p: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            return self.fusion(h[None], p[None], v[None], r[None], 1.2)[0]

    layer = Layer().eval()
    heatmaps, P, root, _, _ = studio(22, cameras=5, frames=1, errors=HeatmapErrors.realistic())
    inputs = (heatmaps[0, :3], P[0, :3], torch.ones(3, dtype=torch.bool), root[0])
    path = tmp_path / "fusion.onnx"
    cameras = torch.export.Dim("C", min=2, max=16)
    with torch.no_grad():
        torch.onnx.export(layer, inputs, str(path), dynamo=True, input_names=["h", "p", "v", "r"],
                          dynamic_shapes={"h": {0: cameras}, "p": {0: cameras}, "v": {0: cameras}, "r": None},
                          opset_version=18, verbose=False)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "GridSample" not in ops
    assert "Gather" in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for c in (3, 5):
        valid = torch.ones(c, dtype=torch.bool)
        valid[1] = c != 5
        feeds = {"h": heatmaps[0, :c].numpy(), "p": P[0, :c].numpy(), "v": valid.numpy(),
                 "r": root[0].numpy()}
        with torch.no_grad():
            expected = layer(heatmaps[0, :c], P[0, :c], valid, root[0]).numpy()
        got = session.run(None, feeds)[0]
        assert float(np.abs(got - expected).max()) < 5e-5  # float rounding of two summation orders
