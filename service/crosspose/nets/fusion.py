"""Cross-view heatmap fusion derived from the calibration (epipolar sampling, DESIGN §1).

The paper learns one dense ``(h·w)×(h·w)`` matrix per ordered camera pair for one fixed rig. Here
the pairing is computed from the projection matrices every frame: each heatmap pixel of view ``u``
is back-projected to a ray, the ray's chord through a sphere around the current root estimate is
sampled at ``S`` depths, and those 3D points are projected into every other view ``v``, whose
heatmap is read there (bilinearly: ``grid_sample`` in eager torch, row gathers in the exported graph,
see :func:`bilinear_gather`) and reduced over the depths (max or a soft max). Only the
mixing is learned: a few hundred parameters that work for any rig and any camera count ``C ≥ 2``.

Conventions (DESIGN §4): projections map world metres to heatmap pixels with pixel centres at
integer coordinates; ``w > 0`` is in front of a camera. The forward pass has no data-dependent
Python control flow, so it exports to ONNX with a dynamic camera count.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional

# Grid coordinate (normalized, align_corners=True) of "no evidence": outside every heatmap.
_OUTSIDE = -4.0
_EPS = 1e-9


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the last axis (written out: exports to ONNX, unlike ``linalg.cross``)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim=-1)


def _inverse3(M: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` inverse by the adjugate (ONNX has no matrix inverse op)."""
    r0, r1, r2 = M[..., 0, :], M[..., 1, :], M[..., 2, :]
    adj_t = torch.stack([_cross(r1, r2), _cross(r2, r0), _cross(r0, r1)], dim=-1)  # columns
    det = (r0 * _cross(r1, r2)).sum(-1)
    return adj_t / det[..., None, None]


def _pixel_grid(
    heatmap_size: tuple[int, int], query_size: tuple[int, int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(hq·wq, 3)`` homogeneous query pixels spanning ``[0, w-1] × [0, h-1]`` row-major.

    With ``query_size == heatmap_size`` these are the pixel centres; a coarser query grid is placed
    so that ``interpolate(align_corners=True)`` maps it back exactly.
    """
    (h, w), (hq, wq) = heatmap_size, query_size
    ys = torch.linspace(0.0, float(h - 1), hq, dtype=dtype, device=device)
    xs = torch.linspace(0.0, float(w - 1), wq, dtype=dtype, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1), torch.ones_like(xx).reshape(-1)], dim=-1)


def pixel_rays(
    projections: torch.Tensor, heatmap_size: tuple[int, int], query_size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-projected ray of every heatmap pixel.

    Args:
        projections: ``(..., C, 3, 4)`` world metres → heatmap pixels (crop affine folded in).
        heatmap_size: ``(h, w)``.
        query_size: ``(hq, wq)`` rays on a coarser grid spanning the heatmap (default: every pixel).
    Returns:
        ``centres (..., C, 3)`` camera centres and ``directions (..., C, hq·wq, 3)`` unit vectors
        pointing into the scene (``w > 0``), pixels in row-major order.
    """
    if projections.shape[-2:] != (3, 4):
        raise ValueError(f"projections must have shape (..., C, 3, 4), got {tuple(projections.shape)}")
    Minv = _inverse3(projections[..., :3])
    centres = -(Minv @ projections[..., 3:]).squeeze(-1)
    pixels = _pixel_grid(heatmap_size, query_size or heatmap_size, projections.dtype, projections.device)
    # P (c + λ d) = λ [x, y, 1] for d = M⁻¹ [x, y, 1]: λ > 0 is in front of the camera.
    directions = torch.einsum("...ij,pj->...pi", Minv, pixels)
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    return centres, directions


def segment_depths(
    centres: torch.Tensor, directions: torch.Tensor, root: torch.Tensor, radius: float | torch.Tensor,
    samples: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depths of ``S`` points on each ray's chord through the sphere ``|X - root| ≤ radius``.

    Args:
        centres: ``(..., C, 3)``; directions: ``(..., C, Q, 3)`` unit; root: ``(..., 3)`` metres;
        radius: metres, a float or ``(...)``; samples: ``S``.
    Returns:
        ``depth (..., C, Q, S)`` metres along the ray, at the centres of ``S`` equal steps of the chord
        (the part in front of the camera), and ``hit (..., C, Q)`` bool: the ray meets the sphere in
        front of the camera (the depths of rays that miss are meaningless).
    """
    if root.shape[-1] != 3:
        raise ValueError(f"root must have shape (..., 3), got {tuple(root.shape)}")
    radius_t = torch.as_tensor(radius, dtype=centres.dtype, device=centres.device)
    radius_t = radius_t.reshape(*radius_t.shape, 1, 1)  # over (C, Q)
    offset = root[..., None, :].to(centres.dtype) - centres  # (..., C, 3) camera → root
    along = (directions * offset[..., None, :]).sum(-1)  # closest approach, metres
    miss2 = (offset * offset).sum(-1)[..., None] - along * along  # squared distance ray ↔ root
    half2 = radius_t * radius_t - miss2
    half = half2.clamp_min(0.0).sqrt()
    near = (along - half).clamp_min(0.0)
    far = along + half
    hit = (half2 > 0) & (far > near)
    steps = (torch.arange(samples, dtype=centres.dtype, device=centres.device) + 0.5) / samples
    return near[..., None] + (far - near)[..., None] * steps, hit


def _normalizing(projections: torch.Tensor, heatmap_size: tuple[int, int]) -> torch.Tensor:
    """Projections to ``grid_sample(align_corners=True)`` coordinates: pixel 0 → -1, w-1 → +1."""
    h, w = heatmap_size
    A = torch.tensor([[2.0 / max(w - 1, 1), 0.0, -1.0], [0.0, 2.0 / max(h - 1, 1), -1.0], [0.0, 0.0, 1.0]],
                     dtype=projections.dtype, device=projections.device)
    return A @ projections


def _segment_grid(
    centres: torch.Tensor, directions: torch.Tensor, depth: torch.Tensor, hit: torch.Tensor,
    targets: torch.Tensor, heatmap_size: tuple[int, int],
) -> torch.Tensor:
    """Ray points ``c + t d`` of view ``u`` projected by ``targets`` (other views) into grid coordinates.

    ``P (c + t d) = P c̃ + t P₃ d`` is linear in ``t``, so only two products per (pair, pixel) are needed.

    Args:
        centres: ``(..., 3)``; directions: ``(..., Q, 3)``; depth: ``(..., Q, S)``; hit: ``(..., Q)``;
        targets: ``(..., 3, 4)`` world → heatmap px (all leading axes broadcast).
    Returns:
        ``(..., Q, S, 2)``; missed rays and points behind the target camera sit at ``_OUTSIDE``.
    """
    G = _normalizing(targets, heatmap_size)
    a = (G[..., :3] @ centres[..., None]).squeeze(-1) + G[..., 3]  # (..., 3)
    b = (directions @ G[..., :3].transpose(-1, -2))  # (..., Q, 3)
    uvw = a[..., None, None, :] + depth[..., None] * b[..., :, None, :]  # (..., Q, S, 3)
    denom = uvw[..., 2:3]
    ok = (denom > _EPS) & hit[..., None, None]
    grid = (uvw[..., :2] / denom.clamp_min(_EPS)).clamp(_OUTSIDE, -_OUTSIDE)
    return torch.where(ok, grid, torch.full_like(grid, _OUTSIDE))


def epipolar_sampling_grid(
    projections: torch.Tensor,
    heatmap_size: tuple[int, int],
    root: torch.Tensor,
    radius: float | torch.Tensor,
    samples: int = 32,
) -> torch.Tensor:
    """Where each heatmap pixel of view ``u`` lands in view ``v`` along its ray inside the volume.

    Args:
        projections: ``(..., C, 3, 4)`` world metres → heatmap pixels (crop affines folded in), finite.
        heatmap_size: ``(h, w)``.
        root: ``(..., 3)`` current root (pelvis) estimate, metres; the depths sampled span the
            chord of the sphere of ``radius`` metres around it.
        radius: metres (a float or ``(...)``).
        samples: ``S`` depths per ray.
    Returns:
        ``grid (..., C_u, C_v, h·w, S, 2)`` normalized coordinates for
        ``grid_sample(align_corners=True, padding_mode="zeros")``; points of rays that miss the sphere
        or behind camera ``v`` are placed outside the heatmap. The diagonal ``u == v`` maps each
        pixel onto itself.
    """
    centres, directions = pixel_rays(projections, heatmap_size)
    depth, hit = segment_depths(centres, directions, root, radius, samples)
    return _segment_grid(centres[..., :, None, :], directions[..., :, None, :, :], depth[..., :, None, :, :],
                         hit[..., :, None, :], projections[..., None, :, :, :], heatmap_size)


def _exporting() -> bool:
    """True while ``torch.onnx.export`` / ``torch.export`` traces the module."""
    return bool(torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export())


def _bilinear_corners(grid: torch.Tensor, h: int, w: int, nearest: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``grid (..., 2)`` normalized ``x, y`` → ``index (..., 4)`` row-major pixel of each bilinear corner
    (clamped into the map) and ``weight (..., 4)`` (zero for a corner outside the map, as zero padding).

    ``nearest``: the one nearest pixel instead, ``index (..., 1)`` and ``weight (..., 1)`` (1 inside the
    map, 0 outside): a quarter of the memory traffic of the four corners.
    """
    x = (grid[..., 0] + 1.0) * (0.5 * (w - 1))
    y = (grid[..., 1] + 1.0) * (0.5 * (h - 1))
    if nearest:
        xn, yn = torch.floor(x + 0.5), torch.floor(y + 0.5)
        inside = (xn >= 0) & (xn <= w - 1) & (yn >= 0) & (yn <= h - 1)
        row = yn.clamp(0.0, float(h - 1)) * float(w) + xn.clamp(0.0, float(w - 1))
        return row.to(torch.int64)[..., None], inside.to(x.dtype)[..., None]
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    indices, weights = [], []
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        yy = y0 + dy
        inside_y = (yy >= 0) & (yy <= h - 1)
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            xx = x0 + dx
            inside = inside_y & (xx >= 0) & (xx <= w - 1)
            weights.append(wy * wx * inside.to(wx.dtype))
            row = yy.clamp(0.0, float(h - 1)) * float(w) + xx.clamp(0.0, float(w - 1))
            indices.append(row.to(torch.int64))
    return torch.stack(indices, -1), torch.stack(weights, -1)


def bilinear_gather(sources: torch.Tensor, grid: torch.Tensor, nearest: bool = False) -> torch.Tensor:
    """``grid_sample(sources, grid, "bilinear", padding_mode="zeros", align_corners=True)`` by row gathers.

    Same answer as ``grid_sample`` (to float rounding), laid out joints-last: the 4 corners of every
    sample point are rows of the ``(B·h·w, J)`` transposed maps (one ``Gather`` of whole ``J``-vectors),
    combined by one small matrix product. ONNX Runtime's CPU ``GridSample`` walks the ``J`` channels of
    each point separately and was measured several times slower.

    Args:
        sources: ``(B, J, h, w)``; grid: ``(B, Q, S, 2)`` normalized ``x, y`` (−1 … 1 = pixel 0 … w−1).
        nearest: read the nearest pixel (``grid_sample``'s ``mode="nearest"``) instead.
    Returns:
        ``(B, Q, S, J)``; points outside the maps read zeros (also partly, at the border).
    """
    b, j, h, w = sources.shape
    rows = sources.permute(0, 2, 3, 1).reshape(b * h * w, j)  # (B·h·w, J)
    index, weight = _bilinear_corners(grid, h, w, nearest)  # (B, Q, S, 4 or 1)
    index = index + (torch.arange(b, device=sources.device) * (h * w)).view(b, 1, 1, 1)
    corners = rows.index_select(0, index.reshape(-1)).reshape(*index.shape, j)  # (B, Q, S, 4, J)
    return (weight[..., None, :] @ corners).squeeze(-2)


def _consensus_gather(weighted: torch.Tensor, grid: torch.Tensor, others: torch.Tensor,
                      nearest: bool = False) -> torch.Tensor:
    """``Σ_v`` of the other views' bilinear samples, for every ray point of every view (one gather).

    Args:
        weighted: ``(N, C, J, h, w)`` heatmaps already multiplied by each view's confidence.
        grid: ``(N, C, Q, S, C-1, 2)`` where view ``u``'s ray points land in view ``others[u, k]``.
        others: ``(C, C-1)`` from :func:`other_views`.
    Returns:
        ``(N, C, Q, S, J)``: the views and the 4 bilinear corners summed by one ``(1×4(C-1)) @ (4(C-1)×J)``
        product per point, joints last.
    """
    n, c, j, h, w = weighted.shape
    rows = weighted.permute(0, 1, 3, 4, 2).reshape(n * c * h * w, j)  # (N·C·h·w, J)
    index, weight = _bilinear_corners(grid, h, w, nearest)  # (N, C, Q, S, C-1, 4 or 1)
    view = (torch.arange(n, device=grid.device).view(n, 1, 1) * c + others[None]) * (h * w)  # (N, C, C-1)
    index = (index + view[:, :, None, None, :, None]).flatten(-2)  # (N, C, Q, S, K = (C-1)·4)
    points = rows.index_select(0, index.reshape(-1)).reshape(*index.shape, j)  # (N, C, Q, S, K, J)
    return (weight.flatten(-2)[..., None, :] @ points).squeeze(-2)


def _bilinear_scalars(padded: torch.Tensor, base: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      h: int, w: int, nearest: bool = False) -> torch.Tensor:
    """Bilinear reads of single values (zero outside the map) from maps padded by one zero pixel.

    Args:
        padded: ``(M·(h+2)·(w+2),)`` the maps with a one-pixel zero border, flattened.
        base: index of each point's map's first padded pixel (broadcasts against ``x``), long.
        x, y: pixel coordinates (pixel centres at integers) of the points, any shape.
        nearest: read the nearest pixel instead.
    Returns:
        values shaped like ``x``: exactly ``grid_sample(..., padding_mode="zeros", align_corners=True)``.

    A coordinate clamped into ``[-1, w]`` moves a far-away point onto the zero border, so no point
    needs a mask and every corner index is valid. The four corners of a point are read by one
    gather of 4-value rows (pixel, right, below, below right), built by shifting the flat maps:
    one index per point instead of four (ONNX Runtime's Gather costs per index, not per byte).
    """
    xc = x.clamp(-1.0, float(w))
    yc = y.clamp(-1.0, float(h))
    stride = w + 2
    if nearest:
        xn, yn = torch.floor(xc + 0.5), torch.floor(yc + 0.5)
        index = base + ((yn + 1.0) * float(stride) + (xn + 1.0)).to(torch.int64)
        return padded.index_select(0, index.reshape(-1)).reshape(index.shape)
    x0 = torch.floor(xc).clamp_max(float(w - 1))
    y0 = torch.floor(yc).clamp_max(float(h - 1))
    fx, fy = xc - x0, yc - y0
    index = (base + ((y0 + 1.0) * float(stride) + (x0 + 1.0)).to(torch.int64)).reshape(-1)
    # Row i holds pixels i, i+1, i+stride, i+stride+1 of the flat maps (zeros past the end: only
    # the last map's bottom-right border pixels have such rows, and no corner index lands there).
    tail = functional.pad(padded, (0, stride + 1))
    size = padded.shape[0]
    # Stacked as (4, L) and transposed: ONNX Runtime interleaves 1-wide columns slowly.
    quads = torch.stack([padded, tail[1:size + 1], tail[stride:size + stride],
                         tail[stride + 1:size + stride + 1]], 0).T  # (L, 4)
    corners = quads.index_select(0, index).reshape(*x.shape, 4)
    top, right, bottom, diagonal = corners.unbind(-1)
    top = top + fx * (right - top)
    bottom = bottom + fx * (diagonal - bottom)
    return top + fy * (bottom - top)


def _dilate(heatmaps: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable ``(2r+1)²`` max filter over the last two axes (zero outside; inputs are ``≥ 0``).

    Shifted maxima: several times faster than ``max_pool2d`` on CPU and plain ONNX ops.
    """
    if radius <= 0:
        return heatmaps
    h, w = heatmaps.shape[-2:]
    pad = functional.pad(heatmaps, (radius, radius, radius, radius))
    rows = pad[..., radius:radius + w]
    for k in range(2 * radius + 1):
        if k != radius:
            rows = torch.maximum(rows, pad[..., k:k + w])
    out = rows[..., radius:radius + h, :]
    for k in range(2 * radius + 1):
        if k != radius:
            out = torch.maximum(out, rows[..., k:k + h, :])
    return out


def other_views(num_cameras: int, device: torch.device | None = None) -> torch.Tensor:
    """``(C, C-1)`` long: row ``u`` lists every other view, ``(u + 1) % C, (u + 2) % C, …``."""
    u = torch.arange(num_cameras, device=device)[:, None]
    k = torch.arange(1, num_cameras, device=device)[None, :]
    index = u + k
    # Not ``% num_cameras``: the ONNX exporter cannot take a remainder by a symbolic camera count.
    return torch.where(index >= num_cameras, index - num_cameras, index)


class CrossViewFusion(nn.Module):
    """Fuse each view's joint heatmaps with the evidence of the other views along epipolar segments.

    For view ``u``, joint ``j`` and heatmap pixel ``p``:

    * ``e_uv(p, s)`` — view ``v``'s heatmap of joint ``j`` at the ``s``-th of ``S`` points of ``p``'s ray
      inside the volume (the sphere of ``radius`` around ``root``);
    * ``cross_u(p) = max_s Σ_v c_vj e_uv(p, s) / Σ_v c_vj`` over the valid views ``v ≠ u``, with an
      AdaFuse-style confidence ``c_vj = softplus(a_j (peak_vj - b_j))`` from view ``v``'s own peak.
      ``consensus=True`` (default) averages the views at each depth before the max, so only a 3D
      point the other views agree on scores high; ``False`` takes each view's max along its
      epipolar segment first (AdaFuse's order), which lets the ridges of different views meet at
      a wrong pixel. ``reduction="softmax"`` replaces the max with a softmax-weighted mean of
      learned temperature (smooth, never above the max);
    * ``fused = own_j · H_u + cross_j · cross_u + agree_j · H_u · cross_u``.

    The default initialisation (``own=0``, ``cross=0.7``, ``agree=0.3``) makes a pixel high only where
    the other views agree: a wrong or left/right-swapped peak in one view gets no support and is
    suppressed, a joint the view missed is recovered from ``cross_u``, and where both agree the
    view's own sharper peak decides the location. ``own=α, cross=1-α, agree=0`` is the paper's
    linear form (``α = 0.4`` in its reference code); it corrects far fewer whole-body left/right swaps
    (measured 60% against 100%). About ``5·J + 1`` parameters; ``crosspose model train-fusion``
    (:mod:`crosspose.nets.train`) learns them, keeping ``own, cross, agree ≥ 0`` with a sum ``≤ 1``.
    The output is clipped to ``[0, 1]`` (a no-op for such weights).

    Heatmaps are expected in ``[0, 1]`` (probabilities; peaks near 1); pass ``from_logits=True`` to
    apply a sigmoid first (BlazePose's heatmaps are logits). The output is on the same scale.

    A view with ``valid=False`` contributes nothing to the others; its own output is ``cross_u``
    (cross-view evidence only; it needs a finite projection, else it is zero). A valid view with no
    valid other view is returned unchanged.

    Args:
        num_joints: ``J``.
        samples: ``S`` depths per ray (a ray's chord is ``≤ 2·radius`` long; keep its projected step
            near the heatmap sigma).
        reduction: ``"max"`` or ``"softmax"``.
        query_stride: cast rays from a grid ``stride`` times coarser than the heatmap and upsample the
            cross-view evidence bilinearly (2 costs ~1/4 of the time and measured no accuracy loss).
        dilation: radius of a max filter applied to the other views before sampling, so that a
            peak is not missed between two depth steps (1 with 16 samples ≈ 0 with 32).
        own, cross, agree: initial per-joint mixing weights.
        temperature: initial soft-max temperature (heatmap units).
        confidence_gain, confidence_threshold: initial ``a_j`` and ``b_j``.
        from_logits: apply ``sigmoid`` to the input heatmaps.
        window: ``0`` (default) evaluates the cross-view evidence on the whole map, along rays through the
            sphere of ``radius`` around the root. ``W > 0`` evaluates it only in a ``W``-pixel square
            window per view and joint, centred where the joint's prior 3D position (the previous pose)
            projects, along rays through a sphere of ``window_radius`` around that position
            (:meth:`windowed_cross_evidence`); outside its window a joint gets no cross-view evidence.
            The same parameters serve both modes (training uses the whole map).
        window_stride: rays from every ``stride``-th pixel of a window (interpolated in between).
        window_radius: metres around each joint's prior position that the window's rays sample.
        window_samples: depths per ray in a window.
        interpolation: how the other views are read at each ray point: ``"bilinear"`` or
            ``"nearest"`` (one pixel instead of four: a quarter of the gathered memory; with
            ``dilation`` ≥ 1 a peak is wide enough that the nearest pixel loses little).
        sampler: how the other views are read; all compute the same bilinear samples.
            ``"gather"``: :func:`bilinear_gather` (row gathers; faster in ONNX Runtime on CPU, whose
            ``GridSample`` is slow); ``"grid_sample"``: ``torch.nn.functional.grid_sample`` (faster in
            eager torch); ``"auto"`` (default): gather while being exported, grid_sample otherwise.
    """

    def __init__(
        self,
        num_joints: int = 17,
        samples: int = 16,
        reduction: Literal["max", "softmax"] = "max",
        *,
        query_stride: int = 2,
        dilation: int = 1,
        consensus: bool = True,
        own: float = 0.0,
        cross: float = 0.7,
        agree: float = 0.3,
        temperature: float = 0.1,
        confidence_gain: float = 8.0,
        confidence_threshold: float = 0.5,
        from_logits: bool = False,
        sampler: Literal["auto", "gather", "grid_sample"] = "auto",
        interpolation: Literal["bilinear", "nearest"] = "bilinear",
        window: int = 0,
        window_stride: int = 2,
        window_radius: float = 0.4,
        window_samples: int = 8,
    ) -> None:
        super().__init__()
        if window < 0 or window % max(window_stride, 1) or window_stride < 1:
            raise ValueError("window must be 0 or a positive multiple of window_stride >= 1, got "
                             f"window={window}, window_stride={window_stride}")
        if window and not consensus:
            raise ValueError("the windowed evidence is computed with consensus=True only")
        if window and (window_radius <= 0 or window_samples < 1):
            raise ValueError(f"window_radius must be > 0 m and window_samples >= 1, got {window_radius}, "
                             f"{window_samples}")
        self.window = int(window)
        self.window_stride = int(window_stride)
        self.window_radius = float(window_radius)
        self.window_samples = int(window_samples)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.interpolation = interpolation
        if sampler not in ("auto", "gather", "grid_sample"):
            raise ValueError(f"sampler must be 'auto', 'gather' or 'grid_sample', got {sampler!r}")
        self.sampler = sampler
        if reduction not in ("max", "softmax"):
            raise ValueError(f"reduction must be 'max' or 'softmax', got {reduction!r}")
        if query_stride < 1:
            raise ValueError(f"query_stride must be >= 1, got {query_stride}")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.num_joints = num_joints
        self.samples = samples
        self.query_stride = query_stride
        self.dilation = dilation
        self.consensus = consensus
        self.reduction = reduction
        self.from_logits = from_logits
        self.own = nn.Parameter(torch.full((num_joints,), float(own)))
        self.cross = nn.Parameter(torch.full((num_joints,), float(cross)))
        self.agree = nn.Parameter(torch.full((num_joints,), float(agree)))
        self.confidence_gain = nn.Parameter(torch.full((num_joints,), float(confidence_gain)))
        self.confidence_threshold = nn.Parameter(torch.full((num_joints,), float(confidence_threshold)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def extra_repr(self) -> str:
        text = (f"num_joints={self.num_joints}, samples={self.samples}, reduction={self.reduction!r}, "
                f"interpolation={self.interpolation!r}")
        if self.window:
            text += (f", window={self.window}, window_stride={self.window_stride}, "
                     f"window_radius={self.window_radius}, window_samples={self.window_samples}")
        return text

    def _reduce_depths(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Max (or soft max) over ``dim``, the ``S`` depths of a ray."""
        if self.reduction == "max":
            return x.amax(dim)
        weights = torch.softmax(x / self.log_temperature.exp(), dim=dim)
        return (weights * x).sum(dim)

    def cross_evidence(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        root: torch.Tensor,
        radius: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cross (N, C, J, h, w)`` and ``support (N, C, J)`` (summed confidence of the other views)."""
        n, c, j, h, w = heatmaps.shape
        hq, wq = -(-h // self.query_stride), -(-w // self.query_stride)
        s = self.samples
        others = other_views(c, heatmaps.device)  # (C, C-1)
        P = projections.to(heatmaps.dtype)
        # A missing view's projection may be NaN: keep the maths finite, its evidence is masked below.
        P_finite = torch.isfinite(P).flatten(2).all(-1)
        usable = valid & P_finite
        P = torch.where(P_finite[..., None, None], P, torch.eye(3, 4, dtype=P.dtype, device=P.device))
        centres, directions = pixel_rays(P, (h, w), (hq, wq))
        depth, hit = segment_depths(centres, directions, root.to(P.dtype), radius, s)
        grid = _segment_grid(centres[:, :, None], directions[:, :, None], depth[:, :, None], hit[:, :, None],
                             P[:, others], (h, w))  # (N, C, C-1, Q, S, 2)
        # A wider peak is not missed between two depth steps: fewer samples for the same recall.
        heatmaps = _dilate(heatmaps, self.dilation)

        peak = heatmaps.flatten(3).amax(-1)  # (N, C, J)
        confidence = functional.softplus(self.confidence_gain * (peak - self.confidence_threshold))
        confidence = confidence * usable[..., None].to(confidence.dtype)
        weight = confidence[:, others]  # (N, C, C-1, J)
        support = weight.sum(2)
        norm = support.clamp_min(_EPS)
        gather = self.sampler == "gather" or (self.sampler == "auto" and _exporting())
        nearest = self.interpolation == "nearest"
        if gather and self.consensus:
            # Joints last: confidence folded into the maps, views and corners summed by one product.
            # The grid's views next to its corners: (N, C, Q, S, C-1, 2), small next to what is gathered.
            by_point = grid.reshape(n, c, c - 1, hq * wq, s, 2).permute(0, 1, 3, 4, 2, 5)
            weighted = heatmaps * confidence[..., None, None]
            summed = _consensus_gather(weighted, by_point, others, nearest)  # (N, C, Q, S, J)
            if self.reduction == "max":  # the max commutes with the positive normalisation: divide less
                cross = summed.amax(-2) / norm[:, :, None, :]
            else:
                cross = self._reduce_depths(summed / norm[:, :, None, None, :], dim=-2)
            cross = cross.transpose(-1, -2)  # (N, C, J, Q)
        elif gather:
            sources = heatmaps[:, others].reshape(-1, j, h, w)  # (N·C·(C-1), J, h, w)
            sampled = bilinear_gather(sources, grid.reshape(-1, hq * wq, s, 2), nearest)
            sampled = sampled.reshape(n, c, c - 1, hq * wq, s, j)
            cross = (weight[:, :, :, None, :] * self._reduce_depths(sampled, dim=-2)).sum(2)
            cross = (cross / norm[:, :, None, :]).transpose(-1, -2)  # (N, C, J, Q)
        else:
            sources = heatmaps[:, others].reshape(-1, j, h, w)  # (N·C·(C-1), J, h, w)
            sampled = functional.grid_sample(
                sources, grid.reshape(-1, hq * wq, s, 2), mode=self.interpolation, padding_mode="zeros",
                align_corners=True,
            ).reshape(n, c, c - 1, j, hq * wq, s)
            if self.consensus:
                # Views combined at each depth first: only a 3D point that all views see scores high.
                at_depth = (weight[..., None, None] * sampled).sum(2) / norm[..., None, None]  # N,C,J,Q,S
                cross = self._reduce_depths(at_depth)
            else:
                cross = (weight[..., None] * self._reduce_depths(sampled)).sum(2) / norm[..., None]
        cross = cross.reshape(n * c, j, hq, wq)
        if self.query_stride > 1:
            cross = functional.interpolate(cross, size=(h, w), mode="bilinear", align_corners=True)
        cross = cross.reshape(n, c, j, h, w) * P_finite[..., None, None, None].to(cross.dtype)
        return cross, support

    def windowed_cross_evidence(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        joints: torch.Tensor,
        scale: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The consensus evidence of :meth:`cross_evidence`, only where each joint can be.

        For view ``u`` and joint ``j``: the rays of a ``window × window`` pixel square centred on the
        projection of ``joints[j]`` (every ``window_stride``-th pixel, ``K = window / stride + 1`` per
        side) are sampled at ``window_samples`` depths of their chord through the sphere of
        ``window_radius`` around ``joints[j]``; each point reads joint ``j``'s map of every other view
        (one scalar per bilinear corner, not a ``J``-vector), the views are averaged by confidence at
        each depth and the depths reduced, as the whole-map mode does. The ``K × K`` window is put
        back into the ``h × w`` map by two small matrix products (bilinear in between the rays, a
        tent falling to zero half a stride outside the window). A joint whose prior is not finite or
        lies behind a view gets no evidence in that view and zero support (the fusion then keeps the
        view's own map for it).

        Args:
            heatmaps: ``(N, C, J, h, w)`` in ``[0, 1]``, zero for invalid views.
            projections: ``(N, C, 3, 4)`` world metres → heatmap pixels.
            valid: ``(N, C)`` bool.
            joints: ``(N, J, 3)`` prior 3D joints (e.g. the previous pose), metres; NaN where unknown.
            scale: a float or ``(N,)``, ``≥ 1`` for an older prior: the window's pixel span, ray stride
                and sphere radius grow by this factor (same number of rays and depths, so coarser).
        Returns:
            ``cross (N, C, J, h, w)`` and ``support (N, C, J)``.
        """
        n, c, j, h, w = heatmaps.shape
        if joints.shape != (n, j, 3):
            raise ValueError(f"joints must have shape ({n}, {j}, 3), got {tuple(joints.shape)}")
        dtype, device = heatmaps.dtype, heatmaps.device
        s = self.window_samples
        k = self.window // self.window_stride + 1
        factor = torch.as_tensor(scale, dtype=dtype, device=device).reshape(-1, 1, 1, 1)  # (N or 1, 1, 1, 1)
        stride = self.window_stride * factor  # (N, 1, 1, 1) pixels between rays
        radius = self.window_radius * factor  # (N, 1, 1, 1) metres
        others = other_views(c, device)  # (C, C-1)
        P = projections.to(dtype)
        P_finite = torch.isfinite(P).flatten(2).all(-1)  # (N, C)
        usable = valid & P_finite
        P = torch.where(P_finite[..., None, None], P, torch.eye(3, 4, dtype=dtype, device=device))
        X = joints.to(dtype)
        known = torch.isfinite(X).all(-1)  # (N, J)
        X = torch.where(known[..., None], X, torch.zeros_like(X))

        # Where each joint's prior lands in each view: the window's centre pixel.
        uvw = (P[:, :, None, :, :3] @ X[:, None, :, :, None]).squeeze(-1) + P[:, :, None, :, 3]  # (N,C,J,3)
        front = uvw[..., 2] > _EPS
        centre = (uvw[..., :2] / uvw[..., 2:].clamp_min(_EPS)).clamp(-2.0 * max(h, w), 3.0 * max(h, w))
        ok = known[:, None, :] & front & P_finite[..., None]  # (N, C, J)
        origin = torch.floor(centre + 0.5) - 0.5 * (k - 1) * stride  # (N, C, J, 2) the window's corner
        steps = torch.arange(k, dtype=dtype, device=device) * stride  # (N, 1, 1, K)
        qx = origin[..., 0, None] + steps  # (N, C, J, K) ray columns, heatmap px
        qy = origin[..., 1, None] + steps  # (N, C, J, K) ray rows
        xx, yy = torch.broadcast_tensors(qx[..., None, :], qy[..., :, None])  # (N, C, J, K, K)
        pixels = torch.stack([xx, yy, torch.ones_like(xx)], -1)  # (N, C, J, K, K, 3)
        pixels = pixels.reshape(n, c, j, k * k, 3)

        # Rays through the window's pixels, and their chords through the sphere around the joint.
        Minv = _inverse3(P[..., :3])  # (N, C, 3, 3)
        centres = -(Minv @ P[..., 3:]).squeeze(-1)  # (N, C, 3)
        directions = (pixels @ Minv[:, :, None].transpose(-1, -2))  # (N, C, J, Q, 3)
        directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        offset = X[:, None] - centres[:, :, None]  # (N, C, J, 3) camera → prior joint
        along = (directions * offset[..., None, :]).sum(-1)  # (N, C, J, Q)
        half2 = radius * radius - ((offset * offset).sum(-1)[..., None] - along * along)
        half = half2.clamp_min(0.0).sqrt()
        near = (along - half).clamp_min(0.0)
        far = along + half
        hit = (half2 > 0) & (far > near)
        fractions = (torch.arange(s, dtype=dtype, device=device) + 0.5) / s
        depth = near[..., None] + (far - near)[..., None] * fractions  # (N, C, J, Q, S)

        # Confidence-weighted consensus of the other views at each depth: joint j reads only map j.
        heatmaps = _dilate(heatmaps, self.dilation)
        peak = heatmaps.flatten(3).amax(-1)  # (N, C, J)
        confidence = functional.softplus(self.confidence_gain * (peak - self.confidence_threshold))
        confidence = confidence * usable[..., None].to(confidence.dtype)
        support = confidence[:, others].sum(2) * ok.to(dtype)  # (N, C, J)
        norm = support.clamp_min(_EPS)
        # One zero pixel around every map, so that all four bilinear corners are always readable.
        padded = functional.pad(heatmaps * confidence[..., None, None], (1, 1, 1, 1)).reshape(-1)
        maps = (torch.arange(n, device=device).view(n, 1, 1) * c + others[None]) * j  # (N, C, C-1)
        maps = (maps[..., None] + torch.arange(j, device=device)) * ((h + 2) * (w + 2))  # (N, C, C-1, J)
        # Ray points c + t·d of view u in view v: P_v (c + t d) = a + t b, one product per ray.
        target = P[:, others]  # (N, C, C-1, 3, 4)
        a = (target[..., :3] @ centres[:, :, None, :, None]).squeeze(-1) + target[..., 3]  # (N, C, C-1, 3)
        b = directions[:, :, None] @ target[:, :, :, None, :, :3].transpose(-1, -2)  # (N, C, C-1, J, Q, 3)
        t = depth[:, :, None]  # (N, C, 1, J, Q, S)
        u_, v_, w_ = (a[:, :, :, None, None, None, i] + t * b[..., i, None] for i in range(3))
        seen = (w_ > _EPS) & hit[:, :, None, :, :, None]  # (N, C, C-1, J, Q, S)
        inv = 1.0 / w_.clamp_min(_EPS)
        x = torch.where(seen, u_ * inv, torch.full_like(u_, -1.0))
        y = torch.where(seen, v_ * inv, torch.full_like(v_, -1.0))
        sampled = _bilinear_scalars(padded, maps[..., None, None], x, y, h, w,
                                    nearest=self.interpolation == "nearest")
        summed = sampled.sum(2)  # (N, C, J, Q, S)
        if self.reduction == "max":
            window = summed.amax(-1) / norm[..., None]
        else:
            window = self._reduce_depths(summed / norm[..., None, None])
        window = (window * ok[..., None].to(dtype)).reshape(n, c, j, k, k)

        # Back into the map: bilinear between the rays, zero away from the window.
        xs = torch.arange(w, dtype=dtype, device=device)
        ys = torch.arange(h, dtype=dtype, device=device)
        tent = stride[..., None]  # (N, 1, 1, 1, 1)
        Rx = (1.0 - (xs[:, None] - qx[..., None, :]).abs() / tent).clamp_min(0.0)  # (N, C, J, w, K)
        Ry = (1.0 - (ys[:, None] - qy[..., None, :]).abs() / tent).clamp_min(0.0)  # (N, C, J, h, K)
        cross = Ry @ window @ Rx.transpose(-1, -2)  # (N, C, J, h, w)
        return cross * P_finite[..., None, None, None].to(dtype), support

    def forward(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        root: torch.Tensor,
        radius: float | torch.Tensor = 1.2,
        joints: torch.Tensor | None = None,
        window_scale: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Fused heatmaps.

        Args:
            heatmaps: ``(N, C, J, h, w)`` in ``[0, 1]`` (or logits with ``from_logits``).
            projections: ``(N, C, 3, 4)`` world metres → heatmap pixels, crop affines folded in.
            valid: ``(N, C)`` bool, False for a missing view.
            root: ``(N, 3)`` current root estimate (e.g. the previous frame's pelvis), metres.
            radius: metres around ``root`` that hold the whole body (float or ``(N,)``).
            joints: ``(N, J, 3)`` prior joints, metres, NaN where unknown; required with ``window > 0``
                (then ``root`` and ``radius`` are unused).
            window_scale: float or ``(N,)``, ``≥ 1`` to look further from an older prior
                (:meth:`windowed_cross_evidence`).
        Returns:
            ``(N, C, J, h, w)`` fused heatmaps, same scale as the input.
        """
        if heatmaps.dim() != 5 or heatmaps.shape[2] != self.num_joints:
            raise ValueError(f"heatmaps must have shape (N, C, {self.num_joints}, h, w), got "
                             f"{tuple(heatmaps.shape)}")
        n, c = heatmaps.shape[:2]
        if projections.shape != (n, c, 3, 4) or valid.shape != (n, c) or root.shape != (n, 3):
            raise ValueError(f"expected projections ({n}, {c}, 3, 4), valid ({n}, {c}), root ({n}, 3); got "
                             f"{tuple(projections.shape)}, {tuple(valid.shape)}, {tuple(root.shape)}")
        if self.from_logits:
            heatmaps = torch.sigmoid(heatmaps)
        valid = valid.to(torch.bool)
        own = heatmaps * valid[..., None, None, None].to(heatmaps.dtype)
        if self.window:
            if joints is None:
                raise ValueError(f"a windowed fusion (window={self.window}) needs the prior joints (N, J, 3)")
            cross, support = self.windowed_cross_evidence(own, projections, valid, joints, window_scale)
        else:
            cross, support = self.cross_evidence(own, projections, valid, root, radius)
        shape = (1, 1, self.num_joints, 1, 1)
        fused = (self.own.view(shape) * own + self.cross.view(shape) * cross
                 + self.agree.view(shape) * own * cross)
        # Trained weights need not sum to one: keep the documented [0, 1] scale of the output.
        fused = fused.clamp(0.0, 1.0)
        alone = (support <= _EPS)[..., None, None]
        fused = torch.where(alone, own, fused)
        return torch.where(valid[..., None, None, None], fused, cross)
