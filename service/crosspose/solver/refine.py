"""Sub-pixel refinement: from the 3D search's answer to a confidence-weighted triangulation.

For each joint and view, start at the reprojection of the searched 3D joint and climb to the local
heatmap peak by mean shift (bilinear samples in a small window, so the answer is not tied to the
pixel grid). Views whose local evidence contradicts the 3D vote — little evidence there, or a peak
that pulls far away — are dropped; the rest are triangulated, weighted by their evidence, and views
that then reproject badly are dropped once more.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crosspose.solver.sampling import project, sample_per_joint


@dataclass(frozen=True)
class RefineOptions:
    """Tuning of :func:`refine`.

    Attributes:
        radius: half width of the mean-shift window, heatmap pixels.
        iterations: mean-shift steps.
        max_shift: a view whose local peak lies further than this from the searched reprojection
            disagrees with the 3D vote (pixels).
        min_evidence: absolute heatmap value below which a view does not support a joint.
        relative_evidence: a view supports a joint only with at least this fraction of the best
            view's evidence.
        max_residual: reprojection error (pixels) above which the worst view is dropped after
            triangulation (one view per round, while more than two remain).
        shift_sigma: scale (pixels) of the down-weighting of peaks away from the searched reprojection.
        reweight_rounds: after the views are chosen, re-centre the down-weighting on the refined
            joint's reprojection this many times (iteratively reweighted least squares): the search's
            answer is only as good as its last grid (a few centimetres), so weighting views by their
            distance from it biases the result towards whichever views happen to lie near it.
    """

    radius: int = 3
    iterations: int = 4
    max_shift: float = 2.5
    min_evidence: float = 0.05
    relative_evidence: float = 0.25
    max_residual: float = 1.5
    shift_sigma: float = 1.5
    reweight_rounds: int = 3


def local_peaks(heatmaps: torch.Tensor, uv: torch.Tensor, radius: int, iterations: int) -> torch.Tensor:
    """Mean shift from ``uv (N,C,J,2)`` towards the local peak of each joint's heatmap; same shape."""
    r = torch.arange(-radius, radius + 1, dtype=heatmaps.dtype, device=heatmaps.device)
    offsets = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)  # (M, 2)
    uv = uv.to(heatmaps.dtype)
    for _ in range(iterations):
        points = uv[..., None, :] + offsets  # (N, C, J, M, 2)
        w = sample_per_joint(heatmaps, points).clamp(min=0.0)  # (N, C, J, M)
        total = w.sum(-1, keepdim=True)
        moved = (w[..., None] * points).sum(-2) / total.clamp(min=1e-12)
        uv = torch.where(total > 1e-9, moved, uv)
    return uv


class DLTSystem:
    """Confidence-weighted linear triangulation (as :func:`crosspose.geometry.triangulate`) of every
    joint, for fixed pixels and changing view weights.

    The refinement triangulates the same peaks several times with different view weights. Each view's
    two unit-normalised DLT rows ``r`` are reduced once to their ``4x4`` normal matrix ``r r^T``; a
    solve is then one weighted sum and one batched ``4x4`` symmetric eigendecomposition (the smallest
    eigenvector of ``A^T A`` is the smallest right singular vector of ``A``), instead of building
    and decomposing the whole system each time.

    Args:
        uv: ``(N, C, J, 2)`` pixels; projections: ``(N, C, 3, 4)``.
    """

    # Second-smallest eigenvalue of A^T A relative to the largest below which the views do not fix the
    # point (two views along one ray); eigenvalues are squared singular values.
    MIN_CONDITIONING = 1e-12

    def __init__(self, uv: torch.Tensor, projections: torch.Tensor) -> None:
        x = uv.to(torch.float64)
        P = projections.to(torch.float64)
        self.usable = torch.isfinite(x).all(-1) & torch.isfinite(P).flatten(2).all(-1)[..., None]  # (N, C, J)
        x = torch.where(self.usable[..., None], x, 0.0)
        P = torch.nan_to_num(P)
        rows = x[..., :, None] * P[:, :, None, 2:3, :] - P[:, :, None, 0:2, :]  # (N, C, J, 2, 4)
        rows = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        self.normal = torch.einsum("ncjra,ncjrb->ncjab", rows, rows)  # (N, C, J, 4, 4)

    def solve(self, weights: torch.Tensor) -> torch.Tensor:
        """``(N, J, 3)`` float64 points for view weights ``(N, C, J)``; NaN where not fixed."""
        w = torch.where(self.usable & (weights > 0), weights.to(torch.float64), 0.0)
        M = torch.einsum("ncj,ncjab->njab", w * w, self.normal)
        values, vectors = torch.linalg.eigh(M)  # ascending
        Xh = vectors[..., :, 0]
        X = Xh[..., :3] / Xh[..., 3:]
        ok = ((w > 0).sum(1) >= 2) & (values[..., 1] > self.MIN_CONDITIONING * values[..., 3])
        return torch.where(ok[..., None], X, float("nan"))


@dataclass(frozen=True)
class Refinement:
    """Result of :func:`refine` (``N`` frames, ``C`` views, ``J`` joints)."""

    joints: torch.Tensor  # (N, J, 3) refined where views >= 2, else the searched position
    support: torch.Tensor  # (N, C, J) bool, the view supports the joint
    evidence: torch.Tensor  # (N, C, J) heatmap value at the view's refined peak
    peaks: torch.Tensor  # (N, C, J, 2) refined 2D peaks
    residual: torch.Tensor  # (N, C, J) reprojection error of the refined joint, pixels


def refine(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor, joints: torch.Tensor,
           options: RefineOptions = RefineOptions()) -> Refinement:
    """Refine searched joints ``(N, J, 3)`` to sub-pixel precision from the views that agree.

    Args:
        heatmaps: ``(N, C, J, h, w)``; projections: ``(N, C, 3, 4)``; valid: ``(N, C)`` usable cameras.
    """
    start = project(joints, projections)  # (N, C, J, 2)
    peaks = local_peaks(heatmaps, start, options.radius, options.iterations)
    evidence = sample_per_joint(heatmaps, peaks[..., None, :])[..., 0]  # (N, C, J)
    evidence = torch.nan_to_num(evidence, nan=0.0)
    best = evidence.masked_fill(~valid[..., None], 0.0).amax(1, keepdim=True)
    shift = (peaks - start).norm(dim=-1)
    support = (
        valid[..., None]
        & torch.isfinite(shift)
        & (shift <= options.max_shift)
        & (evidence >= options.min_evidence)
        & (evidence >= options.relative_evidence * best)
    )
    # Evidence far from where the 3D vote put the joint counts less: with two candidate peaks close
    # together (a left/right swap in one view) the vote, not the heatmap, decides.
    agreement = torch.exp(-0.5 * (torch.nan_to_num(shift, nan=1e9) / options.shift_sigma) ** 2)
    weight = evidence * agreement
    searched = joints.to(torch.float64)
    refined = searched
    residual = torch.full_like(evidence, float("nan"))
    enough = torch.zeros_like(support[:, 0])
    system = DLTSystem(peaks, projections)
    for attempt in range(valid.shape[1] - 1):
        X = system.solve(weight * support)
        residual = (project(X, projections.to(torch.float64)) - peaks.to(torch.float64)).norm(dim=-1).to(
            evidence.dtype)
        enough = (support.sum(1) >= 2) & torch.isfinite(X).all(-1)
        refined = torch.where(enough[..., None], X, searched)
        if attempt == valid.shape[1] - 2:
            break
        # Drop only the worst view per round: one bad view inflates every residual.
        masked = torch.where(support, torch.nan_to_num(residual, nan=1e9), torch.zeros_like(residual))
        worst_residual, worst = masked.max(1)  # (N, J)
        drop = (worst_residual > options.max_residual) & (support.sum(1) > 2)
        if not bool(drop.any()):
            break
        views = torch.arange(support.shape[1], device=support.device)[None, :, None]
        support = support & ~(drop[:, None] & (views == worst[:, None]))
    for _ in range(options.reweight_rounds):
        centre = project(refined, projections.to(torch.float64)).to(peaks.dtype)
        moved = torch.nan_to_num((peaks - centre).norm(dim=-1), nan=1e9)
        weight = evidence * torch.exp(-0.5 * (moved / options.shift_sigma) ** 2)
        X = system.solve(weight * support)
        ok = enough & torch.isfinite(X).all(-1)
        refined = torch.where(ok[..., None], X, refined)
    if options.reweight_rounds:
        residual = (project(refined, projections.to(torch.float64)) - peaks.to(torch.float64)).norm(
            dim=-1).to(evidence.dtype)
    support = support & enough[:, None]
    return Refinement(refined.to(joints.dtype), support, evidence, peaks, residual)
