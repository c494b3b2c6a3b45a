"""Heatmap evidence at 3D points: projection through ``(C,3,4)`` matrices and bilinear sampling.

Heatmap pixel centres are at integer coordinates; evidence outside a heatmap is zero. A camera is
missing when its projection has a non-finite entry or its heatmaps are all zero; a view has no signal
for a joint when that joint's heatmap has no peak that stands out of its noise (:func:`view_signal`).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

# A NaN pixel (point behind a camera, missing camera) is sent this far outside the grid: zero evidence.
_OUTSIDE = -4.0


def valid_cameras(heatmaps: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """``(N,C)`` bool: the camera has a finite projection and some non-zero heatmap evidence.

    Args:
        heatmaps: ``(N, C, J, h, w)`` with NaN already replaced; projections: ``(N, C, 3, 4)``.
    """
    finite = torch.isfinite(projections).flatten(2).all(-1)
    alive = heatmaps.flatten(2).amax(-1) > 0  # NaN (callers clean heatmaps first) counts as dead
    return finite & alive


def view_signal(heatmaps: torch.Tensor, projections: torch.Tensor, min_snr: float,
                peak: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Which cameras are usable, and which of their heatmaps hold a peak.

    Args:
        heatmaps: ``(N, C, J, h, w)`` with NaN already replaced; projections: ``(N, C, 3, 4)``.
        min_snr: a heatmap holds a peak when its maximum stands at least this many noise standard
            deviations above the map's mean.
        peak: ``(N, C, J)`` each map's maximum when the caller has it already (None: computed here).
    Returns:
        ``(N, C)`` :func:`valid_cameras` and ``(N, C, J)`` bool: the camera is valid and its heatmap
        of the joint holds a peak.

    A view that sees nothing (an occluded camera, a joint out of its crop) still gives maps of noise,
    and every noise map has a maximum: normalised, summed or climbed, it votes like a real peak. The
    noise is estimated from differences of horizontally neighbouring pixels on every 8th row (a few
    hundred differences are plenty, and a tracked frame cannot afford more): white noise of standard
    deviation s gives differences of rms ``s * sqrt(2)``, while a smooth peak adds little to them
    whatever its width. Measured on 64x64 maps (300 of each): the maximum of pure noise stands 2.8-5
    such deviations above the mean for normal noise, 4.3-7.5 for normal noise clipped at zero, under 2
    for uniform noise; a Gaussian peak (sigma 2 px) of height 10 s stands 8-12.5 above it, of height
    6.7 s 5.8-9.3, of height 1 over noise of 0.01, whatever its sigma from 1 to 8 px, 24 or more. An
    all-zero map holds none.
    """
    if peak is None:
        peak = heatmaps.flatten(3).amax(-1)  # (N, C, J)
    valid = torch.isfinite(projections).flatten(2).all(-1) & (peak.amax(-1) > 0)
    rows = heatmaps[..., ::8, :]
    steps = rows.diff(dim=-1)
    count = max(steps.shape[-2] * steps.shape[-1], 1)
    rms = torch.linalg.vector_norm(steps, dim=(-2, -1))
    # peak - mean > min_snr * (rms / sqrt(count)) / sqrt(2); an all-zero map: 0 > 0, no peak
    contrast = peak - rows.mean((-2, -1))
    return valid, (contrast > rms * (min_snr / math.sqrt(2.0 * count))) & valid[..., None]


def project(points: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """World points into every view.

    Args:
        points: ``(N, ..., 3)`` metres; projections: ``(N, C, 3, 4)``.
    Returns:
        ``(N, C, ..., 2)`` heatmap pixels; NaN behind a camera or for a missing camera.
    """
    n, c = points.shape[0], projections.shape[1]
    flat = points.reshape(n, -1, 3)
    P = projections.to(points.dtype).reshape(n, c * 3, 4)
    # One batched matmul for every view: (N, 3C, 3) @ (N, 3, M) + translation.
    uvw = torch.baddbmm(P[..., 3:], P[..., :3], flat.transpose(1, 2)).reshape(n, c, 3, -1)
    w = uvw[:, :, 2:3]
    uv = (uvw[:, :, :2] / w).masked_fill(w <= 1e-9, float("nan"))  # NaN w gives NaN already
    return uv.transpose(2, 3).reshape(n, c, *points.shape[1:-1], 2)


_SCALES: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}


def grid_scale(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(2,)`` pixels → ``grid_sample`` units (``align_corners=True``): ``grid = uv * scale - 1``.

    One small tensor per heatmap size, not one per call.
    """
    key = (h, w, dtype, device)
    scale = _SCALES.get(key)
    if scale is None:
        scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=dtype, device=device)
        _SCALES[key] = scale
    return scale


def to_grid(uv: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pixels ``(..., 2)`` → ``grid_sample`` coordinates; NaN or far outside → just outside (zero)."""
    g = uv * grid_scale(h, w, uv.dtype, uv.device) - 1.0
    return torch.nan_to_num(g, nan=_OUTSIDE, posinf=_OUTSIDE, neginf=_OUTSIDE).clamp(_OUTSIDE, -_OUTSIDE)


def sample_shared(heatmaps: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Every joint's heatmap at the same pixels.

    Args:
        heatmaps: ``(N, C, J, h, w)``; uv: ``(N, C, M, 2)`` pixels.
    Returns:
        ``(N, C, J, M)`` bilinear samples, zero outside.
    """
    n, c, j, h, w = heatmaps.shape
    grid = to_grid(uv.to(heatmaps.dtype), h, w).reshape(n * c, 1, -1, 2)
    out = functional.grid_sample(heatmaps.reshape(n * c, j, h, w), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=True)
    return out.reshape(n, c, j, -1)


def sample_per_joint(heatmaps: torch.Tensor, uv: torch.Tensor, first: int = 0) -> torch.Tensor:
    """Each joint's heatmap at its own pixels.

    Args:
        heatmaps: ``(N, C, J, h, w)``; uv: ``(N, C, K, M, 2)`` pixels of the ``K`` joints from ``first`` on
            (all of them, or a layout's body, its first joints, or its extremities, its last).
    Returns:
        ``(N, C, K, M)`` bilinear samples, zero outside.

    With ``K < J`` the other joints' maps are sampled outside their grid (zeros, dropped): copying the
    ``K`` joints' maps out of every view costs several times more than those few points.
    """
    n, c, j, h, w = heatmaps.shape
    k, m = uv.shape[2], uv.shape[3]
    grid = to_grid(uv.to(heatmaps.dtype), h, w)
    if k < j:
        parts = [grid]
        if first > 0:
            parts.insert(0, _outside_grid((n, c, first, m, 2), grid.dtype, grid.device))
        if first + k < j:
            parts.append(_outside_grid((n, c, j - first - k, m, 2), grid.dtype, grid.device))
        grid = torch.cat(parts, 2)
    out = torch.grid_sampler(heatmaps.reshape(n * c * j, 1, h, w), grid.reshape(n * c * j, 1, -1, 2), 0, 0,
                             True)  # functional.grid_sample(..., "bilinear", "zeros", align_corners=True)
    out = out.reshape(n, c, j, -1)
    return out[:, :, first:first + k] if k < j else out


def _outside_grid(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A ``grid_sample`` grid of ``shape`` every point of which is outside the maps (one per shape)."""
    key = (shape, dtype, device)
    cached = _OUTSIDE_GRIDS.get(key)
    if cached is None:
        cached = _OUTSIDE_GRIDS[key] = torch.full(shape, _OUTSIDE, dtype=dtype, device=device)
    return cached


_OUTSIDE_GRIDS: dict[tuple[tuple[int, ...], torch.dtype, torch.device], torch.Tensor] = {}


def mean_over_views(samples: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(N, C, J, M)`` samples → ``(N, J, M)`` mean over the valid views: ``(N, C)``, or ``(N, C, J)``
    per joint (:func:`view_signal`)."""
    weight = (valid if valid.ndim == 3 else valid[..., None]).to(samples.dtype)  # (N, C, J or 1)
    total = (samples * weight[..., None]).sum(1)  # not einsum: ~5x its overhead at these sizes
    return total / weight.sum(1).clamp(min=1.0)[..., None]


def log_unary(unary: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """The PSM works on sums of logs (a product of potentials); ``floor`` keeps empty bins finite."""
    return torch.log(unary.clamp(min=0.0) + floor)


def view_centre_point(projections: torch.Tensor, valid: torch.Tensor, sizes: tuple[int, int]) -> torch.Tensor:
    """``(N, 3)`` point closest (least squares) to the rays through every valid heatmap's centre.

    Heatmaps are crops around the performer or whole frames of cameras aimed at the volume, so
    this is a data-free guess of where to look. ``sizes`` is ``(h, w)``.
    """
    P = projections.to(torch.float64)
    M, p4 = P[..., :3], P[..., 3]
    ok = valid & (torch.linalg.det(torch.nan_to_num(M)).abs() > 1e-12)
    M = torch.where(ok[..., None, None], torch.nan_to_num(M), torch.eye(3, dtype=P.dtype, device=P.device))
    p4 = torch.where(ok[..., None], torch.nan_to_num(p4), torch.zeros_like(p4))
    centres = -torch.linalg.solve(M, p4[..., None])[..., 0]  # (N, C, 3)
    h, w = sizes
    pix = torch.tensor([(w - 1) / 2, (h - 1) / 2, 1.0], dtype=P.dtype, device=P.device)
    d = torch.linalg.solve(M, pix.expand(M.shape[:-1])[..., None])[..., 0]
    d = d / d.norm(dim=-1, keepdim=True)
    # sum_c (I - d d^T) (x - o_c) = 0
    A = torch.eye(3, dtype=P.dtype, device=P.device) - d[..., :, None] * d[..., None, :]
    A = A * ok[..., None, None]
    lhs = A.sum(1) + 1e-9 * torch.eye(3, dtype=P.dtype, device=P.device)
    rhs = (A @ centres[..., None]).sum(1)
    return torch.linalg.solve(lhs, rhs)[..., 0]
