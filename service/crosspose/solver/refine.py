"""Sub-pixel refinement: from the 3D search's answer to a confidence-weighted triangulation.

For each joint and view, start at the reprojection of the searched 3D joint and climb to the local
heatmap peak by mean shift (bilinear samples in a small window, so the answer is not tied to the
pixel grid). Views whose local evidence contradicts the 3D vote — no peak in the heatmap, little
evidence there, or a peak that pulls far away — are dropped; the rest are triangulated, weighted by
their evidence, and views that then reproject worse than the frame's own noise allows are dropped one
by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from crosspose.solver.limbs import _nanmedian
from crosspose.solver.options import RefineOptions
from crosspose.solver.sampling import grid_scale, project, to_grid


def local_peaks(heatmaps: torch.Tensor, uv: torch.Tensor, radius: int, iterations: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean shift from ``uv (N,C,J,2)`` towards the local peak of each joint's heatmap.

    Returns the ``(N, C, J, 2)`` peaks and the ``(N, C, J)`` heatmap value there; a start whose window
    holds no evidence never moves and is returned as given (NaN stays NaN). Maps on the host climb in
    numpy (:func:`_climb_host`: a few hundred numbers a step, where a torch operation costs several
    microseconds and numpy's one); elsewhere in ``grid_sample`` coordinates (:func:`_climb_device`).
    The two are the same bilinear mean shift.
    """
    if heatmaps.device.type != "cpu":
        return _climb_device(heatmaps, uv, radius, iterations)
    peaks, evidence = _climb_host(heatmaps.detach().numpy(), uv.to(heatmaps.dtype).detach().numpy(), radius,
                                  iterations)
    return torch.from_numpy(peaks), torch.from_numpy(evidence)


def _climb_host(heatmaps: np.ndarray, uv: np.ndarray, radius: int, iterations: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`local_peaks` in numpy: ``(N, C, J, 2)`` peaks and ``(N, C, J)`` the maps' values there, from
    ``heatmaps (N, C, J, h, w)`` and ``uv (N, C, J, 2)`` (of the maps' dtype).

    Each step reads one ``(2r+2) x (2r+2)`` patch of every map at whole pixels (zero outside the map) and
    interpolates the window's ``(2r+1) x (2r+1)`` bilinear samples from it: all samples of a window share
    one fractional offset, so these are ``grid_sample``'s samples (bilinear, zeros, aligned corners)
    without touching the rest of the maps. The maps run along the last axis. The value at the peak is the
    same bilinear sample, from the four pixels around it.
    """
    n, c, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1)
    starts = np.arange(n * c * j) * (h * w)  # (B,) each map's first element in ``flat``
    far = float(max(h, w) + 2 * radius + 4)  # NaN or far outside: a window that sees nothing
    start = np.fmax(np.fmin(uv.reshape(-1, 2).T, far), -far)  # (2, B); NaN: far (fmin ignores a NaN)
    p = start
    span = np.arange(-radius, radius + 2)  # (S,) the patch's pixels from the window's whole-pixel centre
    offsets = (span[:, None, None] * w + span[:, None])  # (S, S, 1) the patch's elements from its centre's
    last = np.array([w - 1, h - 1])[:, None]  # the last column and row
    # a patch spans centre - r .. centre + r + 1: it crosses the map's edge when its middle, centre + 0.5,
    # lies further than this from the map's
    middle, reach = last / 2.0 - 0.5, last / 2.0 - radius - 0.5
    summing = _summing(radius, p.dtype)  # (3, M)
    moved: np.ndarray | None = None
    for _ in range(iterations):
        base = np.floor(p)
        frac = p - base  # (2, B) in [0, 1)
        centre = base.astype(np.int64)  # (2, B) the whole pixel, x and y
        # (S, S, B): y, x, map; an index past either end of the maps is clipped, and zeroed below
        values = flat.take(offsets + (centre[1] * w + centre[0] + starts), mode="clip")
        crossing = (np.abs(centre - middle) > reach).any(0)  # (B,) the patches across their map's edge
        if crossing.any():  # zeros outside the map, in those patches alone
            k = np.flatnonzero(crossing)
            at = centre[:, None, k] + span[:, None]  # (2, S, K) the patch's columns and rows
            inside = (at >= 0) & (at <= last[:, :, None])
            values[:, :, k] = np.where(inside[1][:, None] & inside[0], values[:, :, k], 0.0)
        across = values[:, :-1] + frac[0] * (values[:, 1:] - values[:, :-1])  # (S, S-1, B): x + dx
        window = across[:-1] + frac[1] * (across[1:] - across[:-1])  # (S-1, S-1, B): y + dy too
        sums = summing @ np.maximum(window.reshape(summing.shape[1], -1), 0.0)  # (3, B): offsets, weight
        moving = sums[2] > 1e-9
        # the weighted mean offset; a window without evidence stays put
        p = p + sums[:2] / np.where(moving, sums[2], np.inf)
        moved = moving if moved is None else moved  # no evidence at the start: no evidence ever
    if moved is None:
        peaks, p = uv.reshape(-1, 2), start
    else:
        p = np.where(moved, p, start)
        peaks = np.where(moved[:, None], p.T, uv.reshape(-1, 2))
    return (peaks.reshape(n, c, j, 2).astype(uv.dtype, copy=False),
            _bilinear(flat, starts, h, w, p).reshape(n, c, j))


def _bilinear(flat: np.ndarray, starts: np.ndarray, h: int, w: int, p: np.ndarray) -> np.ndarray:
    """``(B,)`` each ``(h, w)`` map of ``flat`` (map ``b`` from ``starts[b]`` on) at its pixel ``p (2, B)``
    (x, y; finite), bilinear, zero outside: ``grid_sample``'s sample (zeros, aligned corners)."""
    base = np.floor(p)
    frac = (p - base).astype(flat.dtype, copy=False)
    x = base[0].astype(np.int64) + _CORNERS[0]  # (4, B) the four pixels around each point
    y = base[1].astype(np.int64) + _CORNERS[1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    v = np.where(inside, flat.take(starts + y * w + x, mode="clip"), 0.0).astype(flat.dtype, copy=False)
    top = v[0] + frac[0] * (v[1] - v[0])
    bottom = v[2] + frac[0] * (v[3] - v[2])
    return top + frac[1] * (bottom - top)


#: The four pixels around a point, from its whole-pixel corner: ``(x, y)`` offsets of shape ``(2, 4, 1)``.
_CORNERS = np.array([[0, 1, 0, 1], [0, 0, 1, 1]])[..., None]


def _summing(radius: int, dtype: np.dtype) -> np.ndarray:
    """``(3, M)``: the mean-shift window's pixel offsets ``dx``, ``dy`` (row by row: y outer, x inner) and
    ones, so one matmul sums the weighted offsets and the weights."""
    key = (radius, np.dtype(dtype))
    cached = _SUMMING.get(key)
    if cached is None:
        r = np.arange(-radius, radius + 1, dtype=dtype)
        ones = np.ones(r.size**2, dtype)
        cached = _SUMMING[key] = np.stack([np.tile(r, r.size), np.repeat(r, r.size), ones])
    return cached


_SUMMING: dict[tuple[int, np.dtype], np.ndarray] = {}


def _climb_device(heatmaps: torch.Tensor, uv: torch.Tensor, radius: int, iterations: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`local_peaks` with ``grid_sample``, for maps on a device other than the host.

    Returns the ``(N, C, J, 2)`` peaks and the ``(N, C, J)`` heatmap value there. The climb runs in
    ``grid_sample`` coordinates (one conversion, not one per step); a start whose window holds no
    evidence never moves and is returned as given (NaN stays NaN).
    """
    n, c, j, h, w = heatmaps.shape
    uv = uv.to(heatmaps.dtype)
    scale = grid_scale(h, w, uv.dtype, uv.device)
    offsets, summing = _window(radius, h, w, scale)  # (M, 2) grid units; (M, 3) the same and ones
    maps = heatmaps.reshape(n * c * j, 1, h, w)
    g = to_grid(uv, h, w).reshape(n * c * j, 1, 1, 2)
    moved: torch.Tensor | None = None
    for _ in range(iterations):
        weights = _sample(maps, g + offsets).clamp(min=0.0)  # (NCJ, 1, 1, M)
        sums = weights @ summing  # (NCJ, 1, 1, 3): weighted offsets, total weight
        moving = sums[..., 2:] > 1e-9
        # the weighted mean offset; a window without evidence stays put (divided by infinity)
        g = torch.addcdiv(g, sums[..., :2], torch.where(moving, sums[..., 2:], math.inf))
        moved = moving if moved is None else moved  # no evidence at the start: no evidence ever
    evidence = _sample(maps, g).reshape(n, c, j)
    if moved is None:
        return uv, evidence
    peaks = torch.where(moved, (g + 1.0) / scale, uv.reshape(n * c * j, 1, 1, 2))
    return peaks.reshape(n, c, j, 2), evidence


def _sample(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``functional.grid_sample(maps, grid, "bilinear", "zeros", align_corners=True)`` without the
    wrapper's argument checks."""
    return torch.grid_sampler(maps, grid, 0, 0, True)


def _window(radius: int, h: int, w: int, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M, 2)`` offsets of the mean-shift window in grid units (``scale``: :func:`.grid_scale`) and
    ``(M, 3)`` the same with a column of ones (one matmul sums the weighted offsets and the weights)."""
    key = (radius, h, w, scale.dtype, scale.device)
    cached = _WINDOWS.get(key)
    if cached is None:
        r = torch.arange(-radius, radius + 1, dtype=scale.dtype, device=scale.device)
        offsets = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2) * scale
        cached = _WINDOWS[key] = (offsets, torch.cat([offsets, torch.ones_like(offsets[:, :1])], 1))
    return cached


_WINDOWS: dict[tuple[int, int, int, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


class DLTSystem:
    """Confidence-weighted linear triangulation (as :func:`crosspose.geometry.triangulate`) of every
    joint, for fixed pixels and changing view weights (numpy, float64, on the host).

    The refinement triangulates the same peaks several times with different view weights. Each view's
    two unit-normalised DLT rows ``r`` are reduced once to their ``4x4`` normal matrix ``r r^T``; a
    solve is then one weighted sum and one batched ``4x4`` symmetric eigendecomposition (the smallest
    eigenvector of ``A^T A`` is the smallest right singular vector of ``A``), instead of building
    and decomposing the whole system each time. These are a few hundred numbers a frame: numpy does
    each step in a microsecond or two where a torch operation costs several.

    Args:
        uv: ``(N, C, J, 2)`` pixels; projections: ``(N, C, 3, 4)``.
    """

    # Second-smallest eigenvalue of A^T A relative to the largest below which the views do not fix the
    # point (two views along one ray); eigenvalues are squared singular values.
    MIN_CONDITIONING = 1e-12

    def __init__(self, uv: np.ndarray, projections: np.ndarray) -> None:
        x = np.asarray(uv, dtype=np.float64)
        P = np.asarray(projections, dtype=np.float64)
        cameras = np.isfinite(P).reshape(*P.shape[:2], -1).all(axis=-1, keepdims=True)  # (N, C, 1)
        self.usable = np.asarray(np.isfinite(x).all(-1) & cameras)  # (N, C, J)
        x = np.where(self.usable[..., None], x, 0.0)
        P = np.where(np.isfinite(P), P, 0.0)  # a missing camera: its rows get no weight
        rows = x[..., :, None] * P[:, :, None, 2:3, :] - P[:, :, None, 0:2, :]  # (N, C, J, 2, 4)
        rows = rows / np.maximum(np.sqrt((rows * rows).sum(-1, keepdims=True)), 1e-300)
        self.normal = rows.swapaxes(-1, -2) @ rows  # (N, C, J, 4, 4)

    def solve(self, weights: np.ndarray) -> np.ndarray:
        """``(N, J, 3)`` float64 points for view weights ``(N, C, J)``; NaN where not fixed."""
        w = np.where(self.usable & (weights > 0), weights, 0.0).astype(np.float64)
        M = ((w * w)[..., None, None] * self.normal).sum(1)  # (N, J, 4, 4)
        values, vectors = np.linalg.eigh(M)  # ascending
        Xh = vectors[..., :, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            X = Xh[..., :3] / Xh[..., 3:]
        ok = ((w > 0).sum(1) >= 2) & (values[..., 1] > self.MIN_CONDITIONING * values[..., 3])
        return np.where(ok[..., None], X, np.nan)


def _fill_nan(x: np.ndarray, value: float) -> np.ndarray:
    """``x`` with NaN replaced by ``value`` (``np.nan_to_num`` costs ~20x more on these small arrays)."""
    return np.where(np.isnan(x), np.asarray(value, dtype=x.dtype), x)


def project_points(points: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """:func:`.sampling.project` in numpy: ``(N, J, 3)`` world → ``(N, C, J, 2)`` pixels, NaN behind a
    camera or for a missing one."""
    uvw = points[:, None] @ projections[..., :3].swapaxes(-1, -2) + projections[:, :, None, :, 3]
    # (N, C, J, 3)
    w = uvw[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / w
    return np.where(w > 1e-9, uv, np.nan)


@dataclass(frozen=True)
class Refinement:
    """Result of :func:`refine` (``N`` frames, ``C`` views, ``J`` joints), numpy arrays on the host."""

    joints: np.ndarray  # (N, J, 3) float64, refined where views >= 2, else the searched position
    support: np.ndarray  # (N, C, J) bool, the view supports the joint
    evidence: np.ndarray  # (N, C, J) heatmap value at the view's refined peak
    peaks: np.ndarray  # (N, C, J, 2) refined 2D peaks
    residual: np.ndarray  # (N, C, J) reprojection error of the refined joint, pixels
    projections: np.ndarray | None = None  # (N, C, 3, 4) float64, as triangulated


def _outlier_limits(residual: np.ndarray, support: np.ndarray, options: RefineOptions) -> np.ndarray:
    """``(N, J)`` reprojection error (pixels) above which a supporting view disagrees with the others.

    Every view's peak is off by localisation noise of some standard deviation ``s`` per axis, the same
    for a frame's views and joints (the 2D network's precision at this scale). A triangulation from
    ``n`` views absorbs 3 of their ``2n`` coordinates, so an agreeing view's error is Rayleigh
    distributed with scale ``s * sqrt((2n - 3) / 2n)``; ``s`` is read off the median of the frame's
    errors so scaled (Rayleigh median ``s * sqrt(2 ln 2)``; the median ignores the few views that
    disagree), and a view disagrees beyond ``outlier_sigmas`` times that scale (4: one agreeing view in
    3000 crosses it), never below ``max_residual``.

    Args:
        residual: ``(N, C, J)`` pixels; support: ``(N, C, J)`` the views triangulated.
    """
    n = support.sum(1)  # (N, J)
    share = np.sqrt(np.maximum(2 * n - 3, 1) / np.maximum(2 * n, 1))  # (N, J)
    scaled = residual / share[:, None]
    counted = support & np.isfinite(scaled)
    count = counted.reshape(len(scaled), -1).sum(1)  # (N,)
    flat = np.where(counted, scaled, np.nan).reshape(len(scaled), -1).T  # (C·J, N), NaN where not counted
    noise = np.where(count > 0, _nanmedian(flat, np.maximum(count, 1)), 0.0) / math.sqrt(2.0 * math.log(2.0))
    return np.maximum(options.max_residual, options.outlier_sigmas * noise[:, None] * share)


def refine(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor, joints: torch.Tensor,
           options: RefineOptions = RefineOptions()) -> Refinement:
    """Refine searched joints ``(N, J, 3)`` to sub-pixel precision from the views that agree.

    Args:
        heatmaps: ``(N, C, J, h, w)``; projections: ``(N, C, 3, 4)``; valid: ``(N, C)`` usable cameras,
            or ``(N, C, J)`` the views whose heatmap of each joint holds a peak
            (:func:`.sampling.view_signal`): only those may support the joint.

    The peaks are climbed on the heatmaps' device; the choice of views and the triangulation work on
    ``N x C x J`` numbers and run in numpy after one transfer of them (the caller reads the result on
    the host anyway).
    """
    P = projections.cpu().numpy().astype(np.float64)
    searched = joints.cpu().numpy().astype(np.float64)
    if heatmaps.device.type == "cpu":  # the climb runs in numpy, from the joints projected in numpy
        maps = heatmaps.detach().numpy()
        starts = project_points(searched, P).astype(maps.dtype)  # (N, C, J, 2)
        peaks, evidence = _climb_host(maps, starts, options.radius, options.iterations)
    else:
        start = project(joints, projections)  # (N, C, J, 2)
        peaks_t, evidence_t = local_peaks(heatmaps, start, options.radius, options.iterations)
        host = torch.cat([peaks_t, start, evidence_t[..., None]], -1).cpu().numpy()  # (N, C, J, 5)
        peaks, evidence, starts = host[..., :2], host[..., 4], host[..., 2:4]
    evidence = _fill_nan(evidence, 0.0)
    valid_np = valid.cpu().numpy()
    if valid_np.ndim == 2:
        valid_np = valid_np[..., None]
    best = np.where(valid_np, evidence, 0.0).max(1, keepdims=True)
    shift = np.sqrt(((peaks - starts) ** 2).sum(-1))
    support = (  # a NaN or infinite shift fails the first comparison
        (shift <= options.max_shift)
        & valid_np
        & (evidence >= options.min_evidence)
        & (evidence >= options.relative_evidence * best)
    )
    refined = searched
    peaks64 = peaks.astype(np.float64)
    residual = np.full_like(evidence, np.nan)
    enough = np.zeros_like(support[:, 0])
    system = DLTSystem(peaks64, P)
    views = support.shape[1]
    limits: np.ndarray | None = None
    for attempt in range(views - 1):
        X = system.solve(evidence * support)
        residual = np.linalg.norm(project_points(X, P) - peaks64, axis=-1).astype(evidence.dtype)
        enough = (support.sum(1) >= 2) & np.isfinite(X).all(-1)
        refined = np.where(enough[..., None], X, searched)
        if attempt == views - 2:
            break
        if limits is None:  # from the first triangulation, with every candidate view
            limits = _outlier_limits(residual, support, options)
        # Drop only the worst view per round: one bad view inflates every residual.
        masked = np.where(support, _fill_nan(residual, 1e9), 0.0)
        worst = masked.argmax(1)  # (N, J)
        worst_residual = np.take_along_axis(masked, worst[:, None], 1)[:, 0]
        drop = (worst_residual > limits) & (support.sum(1) > 2)
        if not drop.any():
            break
        support = support & ~(drop[:, None] & (np.arange(views)[None, :, None] == worst[:, None]))
    support = support & enough[:, None]
    return Refinement(refined, support, evidence, peaks, residual, P)
