"""The 3D search: a pictorial structure on a first grid around the root, then recursive refinement (RPSM).

First level: a ``G^3`` grid (paper: 16^3 over a 2 m cube) centred on the root; every joint's unary is
the heatmap evidence averaged over the valid views (``valid``: ``(N, C)`` cameras, or ``(N, C, J)`` the
views whose heatmap of each joint holds a peak, :func:`.sampling.view_signal`). Exact max-product
either on the whole grid (shell messages) or on each joint's top-K bins (candidate messages).
Recursion: a small grid of candidates around each joint (paper: 2x2x2 at ±s/2; ours 3x3x3 at
{-s, 0, s}, which can also stay put), spacing halved each time, the same tree inference each time.
"""

from __future__ import annotations

import torch

from crosspose.solver.root import cube
from crosspose.solver.sampling import log_unary, mean_over_views, project, sample_per_joint, sample_shared
from crosspose.solver.tree import TreeSchedule, max_product_candidates, max_product_grid


def grid_unary(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor,
               points: torch.Tensor) -> torch.Tensor:
    """``(N, J, M)`` log-unary of every joint at shared points ``(N, M, 3)``."""
    return log_unary(mean_over_views(sample_shared(heatmaps, project(points, projections)), valid))


def candidate_unary(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor,
                    candidates: torch.Tensor, first: int = 0) -> torch.Tensor:
    """``(N, J, K)`` log-unary of each joint at its own candidates ``(N, J, K, 3)``: the ``J`` joints of
    ``heatmaps`` from ``first`` on (it may hold more: :func:`.sampling.sample_per_joint`)."""
    samples = sample_per_joint(heatmaps, project(candidates, projections), first)
    return log_unary(mean_over_views(samples, valid))


def first_level(
    schedule: TreeSchedule,
    heatmaps: torch.Tensor,
    projections: torch.Tensor,
    valid: torch.Tensor,
    root: torch.Tensor,
    lengths: torch.Tensor,
    *,
    bins: int = 16,
    extent: float = 2.0,
    tolerance: float = 0.15,
    top_k: int | None = 64,
    slope: float = 0.0,
) -> torch.Tensor:
    """PSM on a ``bins^3`` grid of edge ``extent`` (m) around ``root (N, 3)``; returns ``(N, J, 3)``.

    ``top_k=None`` runs the exact whole-grid inference with shell messages (``lengths`` must then be
    the same for the whole batch); otherwise each joint keeps its ``top_k`` best bins.
    """
    points = cube(root.to(heatmaps.dtype), extent, bins)  # (N, G^3, 3)
    unary = grid_unary(heatmaps, projections, valid, points)  # (N, J, G^3)
    n, j = unary.shape[:2]
    if top_k is None:
        idx = max_product_grid(schedule, unary.reshape(n, j, bins, bins, bins), extent / bins, lengths[0],
                               tolerance)
        flat = (idx[..., 0] * bins + idx[..., 1]) * bins + idx[..., 2]  # (N, J)
        return points.gather(1, flat.reshape(n, j, 1).expand(n, j, 3))
    score, flat = unary.topk(min(top_k, unary.shape[-1]), dim=-1)  # (N, J, K)
    candidates = points.gather(1, flat.reshape(n, -1, 1).expand(-1, -1, 3)).reshape(n, j, -1, 3)
    choice, _ = max_product_candidates(schedule, candidates, score, lengths, tolerance, slope)
    return candidates.gather(2, choice[..., None, None].expand(n, j, 1, 3))[:, :, 0]


def corner_offsets(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(size^3, 3)`` unit offsets of a ``size``-per-axis local grid, centred on zero.

    ``size = 2`` gives the paper's corners at ±1/2; ``size = 3`` gives {-1, 0, 1}.
    """
    key = (size, dtype, device)
    cached = _OFFSETS.get(key)
    if cached is None:  # one small tensor per grid size, not one per recursion
        r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
        cached = _OFFSETS[key] = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return cached


_OFFSETS: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def local_candidates(joints: torch.Tensor, size: int, spacing: float) -> torch.Tensor:
    """``(N, J, size^3, 3)`` a ``size``-per-axis local grid of step ``spacing`` (m) around each joint
    of ``joints (N, J, 3)``."""
    key = (size, spacing, joints.dtype, joints.device)
    offsets = _SCALED.get(key)
    if offsets is None:
        offsets = _SCALED[key] = corner_offsets(size, joints.dtype, joints.device) * spacing
    return joints[:, :, None, :] + offsets


_SCALED: dict[tuple[int, float, torch.dtype, torch.device], torch.Tensor] = {}


def local_search(
    schedule: TreeSchedule,
    heatmaps: torch.Tensor,
    projections: torch.Tensor,
    valid: torch.Tensor,
    joints: torch.Tensor,
    lengths: torch.Tensor,
    *,
    size: int,
    spacing: float,
    tolerance: float,
    slope: float = 0.0,
    samples: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One tree inference over a ``size^3`` local grid of step ``spacing`` (m) around each joint.

    ``samples``: the ``(N, C, J, size^3)`` heatmap values at :func:`local_candidates` when the caller
    has read them already. Returns the new ``(N, J, 3)`` joints and the ``(N, J)`` chosen offset index.
    """
    candidates = local_candidates(joints, size, spacing)  # (N, J, K, 3)
    if samples is None:
        unary = candidate_unary(heatmaps, projections, valid, candidates)
    else:
        unary = log_unary(mean_over_views(samples, valid))
    choice, _ = max_product_candidates(schedule, candidates, unary, lengths, tolerance, slope)
    n, j = choice.shape
    return candidates.gather(2, choice[..., None, None].expand(n, j, 1, 3))[:, :, 0], choice


def recurse(
    schedule: TreeSchedule,
    heatmaps: torch.Tensor,
    projections: torch.Tensor,
    valid: torch.Tensor,
    joints: torch.Tensor,
    lengths: torch.Tensor,
    *,
    spacing: float,
    iterations: int,
    size: int = 2,
    tolerance: float = 0.15,
    slope: float = 0.0,
) -> torch.Tensor:
    """RPSM recursions: ``iterations`` local searches, the spacing halved after each."""
    for _ in range(iterations):
        joints, _ = local_search(schedule, heatmaps, projections, valid, joints, lengths, size=size,
                                 spacing=spacing, tolerance=tolerance, slope=slope)
        spacing /= 2
    return joints
