"""Where the performer is: 3D voting of pelvis and hip evidence over the capture volume.

Each view's evidence (pelvis and hips, max-pooled so a coarse grid cannot fall between peaks,
normalised by the view's own maximum) is clamped to 1 and summed over views: a point seen by
every camera collects one vote per camera, while a wrong peak in one view can never collect more
than one. A coarse grid over the volume finds the performer; a fine grid around it the root.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from crosspose.solver.options import RootSearchOptions
from crosspose.solver.sampling import project, sample_shared


def cube(centre: torch.Tensor, size: float, bins: int) -> torch.Tensor:
    """``(N, bins^3, 3)`` bin centres of a cube of edge ``size`` around ``centre (N, 3)`` (x slowest)."""
    spacing = size / bins
    r = (torch.arange(bins, dtype=centre.dtype, device=centre.device) - (bins - 1) / 2) * spacing
    g = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return centre[:, None, :] + g


def vote(evidence: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor,
         points: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` votes at ``points (N, M, 3)`` from per-view evidence maps ``(N, C, J', h, w)``."""
    s = sample_shared(evidence, project(points, projections))  # (N, C, J', M)
    per_view = s.mean(2).clamp(max=1.0) * valid[..., None]
    return per_view.sum(1)


def _max_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable max filter over the last two axes (shifted maxima: far cheaper than max_pool2d on CPU)."""
    if radius <= 0:
        return x
    for dim in (-1, -2):
        size = x.shape[dim]
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2] = radius
        pad[1 if dim == -1 else 3] = radius
        padded = functional.pad(x, pad)
        out = padded.narrow(dim, 0, size)
        for s in range(1, 2 * radius + 1):
            out = torch.maximum(out, padded.narrow(dim, s, size))
        x = out
    return x


def search_root(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor, centre: torch.Tensor,
                joints: tuple[int, ...], options: RootSearchOptions = RootSearchOptions()
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the root.

    Args:
        heatmaps: ``(N, C, J, h, w)``; projections ``(N, C, 3, 4)``.
        valid: ``(N, C)`` usable views, or ``(N, C, J)`` the views whose heatmap of each joint holds a
            peak (:func:`.sampling.view_signal`): a map without one votes nowhere, where normalising
            its noise by its own maximum would give it a full vote at random places.
        centre: ``(N, 3)`` centre of the capture volume, metres.
        joints: indices of the root evidence (pelvis, hips).
    Returns:
        ``(N, 3)`` root (metres) and ``(N,)`` its vote (the number of agreeing views, at most C).
    """
    counts = valid[:, :, list(joints)] if valid.ndim == 3 else valid[..., None]  # (N, C, J' or 1)
    ev = heatmaps[:, :, list(joints)].clamp(min=0.0)
    peak = ev.flatten(3).amax(-1).clamp(min=1e-6)
    ev = ev * (counts / peak)[..., None, None]
    views = counts.any(-1)
    n = ev.shape[0]
    dilated = _max_filter(ev, options.dilate)
    bins = max(round(options.volume_size / options.coarse_spacing), 1)
    points = cube(centre.to(heatmaps.dtype), options.volume_size, bins)
    votes = vote(dilated, projections, views, points)
    best = points[torch.arange(n), votes.argmax(-1)]
    points = cube(best, options.fine_spacing * options.fine_bins, options.fine_bins)
    votes = vote(ev, projections, views, points)
    score, arg = votes.max(-1)
    return points[torch.arange(n), arg], score
