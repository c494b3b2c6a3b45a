"""Epipolar geometry of the cross-view fusion: rays, their segments in the capture volume, where those
land in the other views, and the bilinear reads of the other views' heatmaps there.

Conventions (DESIGN §4): projections map world metres to heatmap pixels with pixel centres at integer
coordinates; ``w > 0`` is in front of a camera. Everything here exports to ONNX (no matrix inverse, no
cross product op, no data-dependent Python control flow): :class:`~crosspose.nets.fusion.CrossViewFusion`
is built from these pieces, whole-map and windowed alike.
"""

from __future__ import annotations

import torch

#: Grid coordinate (normalized, align_corners=True) of "no evidence": outside every heatmap.
OUTSIDE = -4.0
#: In front of a camera: a homogeneous ``w`` above this; also the floor of every division by a norm.
EPS = 1e-9


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


def homogeneous_projection(projections: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` homogeneous image points ``P [X, 1]`` of ``points (..., 3)`` by
    ``projections (..., 3, 4)`` (leading axes broadcast)."""
    return (projections[..., :3] @ points[..., None]).squeeze(-1) + projections[..., 3]


def rays_through(projections: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-projected rays through given pixels.

    Args:
        projections: ``(..., 3, 4)`` world metres → heatmap pixels.
        pixels: homogeneous ``[x, y, 1]``: ``(Q, 3)`` the same pixels for every camera, or ``(..., Q, 3)``
            whose leading axes broadcast against the projections' (e.g. one set per camera and joint).
    Returns:
        ``centres (..., 3)`` camera centres and ``directions (..., Q, 3)`` unit vectors pointing into the
        scene (``w > 0``).
    """
    Minv = _inverse3(projections[..., :3])
    centres = -(Minv @ projections[..., 3:]).squeeze(-1)
    # P (c + λ d) = λ [x, y, 1] for d = M⁻¹ [x, y, 1]: λ > 0 is in front of the camera. The same product
    # two ways: the norm below rounds by the memory layout of its input, and the einsum's is the one the
    # whole-map fusion was trained and tested with; per-camera pixels take a matmul, as ONNX Runtime's
    # Einsum is twice as slow as its MatMul there (the exported, windowed fusion).
    if pixels.dim() == 2:
        directions = torch.einsum("...ij,pj->...pi", Minv, pixels)
    else:
        directions = pixels @ Minv.transpose(-1, -2)
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(EPS)
    return centres, directions


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
    pixels = _pixel_grid(heatmap_size, query_size or heatmap_size, projections.dtype, projections.device)
    return rays_through(projections, pixels)


def segment_depths(
    centres: torch.Tensor, directions: torch.Tensor, root: torch.Tensor, radius: float | torch.Tensor,
    samples: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depths of ``S`` points on each ray's chord through the sphere ``|X - root| ≤ radius``.

    Args:
        centres: ``(..., 3)`` ray origins; directions: ``(..., Q, 3)`` unit;
        root: ``(..., 3)`` metres, the sphere's centre (broadcasts against ``centres``: one sphere for
            all rays, or one per joint); radius: metres, a float or a tensor broadcasting against the
            ``(..., Q)`` rays; samples: ``S``.
    Returns:
        ``depth (..., Q, S)`` metres along the ray, at the centres of ``S`` equal steps of the chord
        (the part in front of the camera), and ``hit (..., Q)`` bool: the ray meets the sphere in
        front of the camera (the depths of rays that miss are meaningless).
    """
    if root.shape[-1] != 3:
        raise ValueError(f"root must have shape (..., 3), got {tuple(root.shape)}")
    radius_t = torch.as_tensor(radius, dtype=centres.dtype, device=centres.device)
    offset = root.to(centres.dtype) - centres  # (..., 3) camera → root
    along = (directions * offset[..., None, :]).sum(-1)  # closest approach, metres
    miss2 = (offset * offset).sum(-1)[..., None] - along * along  # squared distance ray ↔ root
    half2 = radius_t * radius_t - miss2
    half = half2.clamp_min(0.0).sqrt()
    near = (along - half).clamp_min(0.0)
    far = along + half
    hit = (half2 > 0) & (far > near)
    steps = (torch.arange(samples, dtype=centres.dtype, device=centres.device) + 0.5) / samples
    return near[..., None] + (far - near)[..., None] * steps, hit


def epipolar_segments(
    projections: torch.Tensor, heatmap_size: tuple[int, int], root: torch.Tensor,
    radius: float | torch.Tensor, samples: int, query_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rays of every (query) pixel of every view and their segments inside the volume.

    Args:
        projections: ``(..., C, 3, 4)``; root: ``(..., 3)`` metres; radius: metres, a float or ``(...)``;
        samples: ``S``; heatmap_size, query_size: as :func:`pixel_rays`.
    Returns:
        ``centres (..., C, 3)``, ``directions (..., C, Q, 3)``, ``depth (..., C, Q, S)`` and
        ``hit (..., C, Q)`` (:func:`segment_depths` with the sphere of ``radius`` around ``root``).
    """
    centres, directions = pixel_rays(projections, heatmap_size, query_size)
    radius_t = torch.as_tensor(radius, dtype=centres.dtype, device=centres.device)
    radius_t = radius_t.reshape(*radius_t.shape, 1, 1)  # over (C, Q)
    depth, hit = segment_depths(centres, directions, root[..., None, :], radius_t, samples)
    return centres, directions, depth, hit


def _normalizing(projections: torch.Tensor, heatmap_size: tuple[int, int]) -> torch.Tensor:
    """Projections to ``grid_sample(align_corners=True)`` coordinates: pixel 0 → -1, w-1 → +1."""
    h, w = heatmap_size
    A = torch.tensor([[2.0 / max(w - 1, 1), 0.0, -1.0], [0.0, 2.0 / max(h - 1, 1), -1.0], [0.0, 0.0, 1.0]],
                     dtype=projections.dtype, device=projections.device)
    return A @ projections


def segment_projection(
    centres: torch.Tensor, directions: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray points ``c + t d`` in the views of ``targets``: ``P (c + t d) = P c̃ + t P₃ d = a + t b``.

    Linear in ``t``, so two products per (view, ray) serve every depth.

    Args:
        centres: ``(..., 3)``; directions: ``(..., Q, 3)``; targets: ``(..., 3, 4)`` (leading axes broadcast).
    Returns:
        ``a (..., 3)`` and ``b (..., Q, 3)``, homogeneous.
    """
    a = homogeneous_projection(targets, centres)
    b = directions @ targets[..., :3].transpose(-1, -2)
    return a, b


def segment_grid(
    centres: torch.Tensor, directions: torch.Tensor, depth: torch.Tensor, hit: torch.Tensor,
    targets: torch.Tensor, heatmap_size: tuple[int, int],
) -> torch.Tensor:
    """Ray points ``c + t d`` of view ``u`` projected by ``targets`` (other views) into grid coordinates.

    Args:
        centres: ``(..., 3)``; directions: ``(..., Q, 3)``; depth: ``(..., Q, S)``; hit: ``(..., Q)``;
        targets: ``(..., 3, 4)`` world → heatmap px (all leading axes broadcast).
    Returns:
        ``(..., Q, S, 2)``; missed rays and points behind the target camera sit at :data:`OUTSIDE`.
    """
    a, b = segment_projection(centres, directions, _normalizing(targets, heatmap_size))
    uvw = a[..., None, None, :] + depth[..., None] * b[..., :, None, :]  # (..., Q, S, 3)
    denom = uvw[..., 2:3]
    ok = (denom > EPS) & hit[..., None, None]
    grid = (uvw[..., :2] / denom.clamp_min(EPS)).clamp(OUTSIDE, -OUTSIDE)
    return torch.where(ok, grid, torch.full_like(grid, OUTSIDE))


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
    centres, directions, depth, hit = epipolar_segments(projections, heatmap_size, root, radius, samples)
    return segment_grid(centres[..., :, None, :], directions[..., :, None, :, :], depth[..., :, None, :, :],
                        hit[..., :, None, :], projections[..., None, :, :, :], heatmap_size)


def other_views(num_cameras: int, device: torch.device | None = None) -> torch.Tensor:
    """``(C, C-1)`` long: row ``u`` lists every other view, ``(u + 1) % C, (u + 2) % C, …``."""
    u = torch.arange(num_cameras, device=device)[:, None]
    k = torch.arange(1, num_cameras, device=device)[None, :]
    index = u + k
    # Not ``% num_cameras``: the ONNX exporter cannot take a remainder by a symbolic camera count.
    return torch.where(index >= num_cameras, index - num_cameras, index)


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


def consensus_gather(weighted: torch.Tensor, grid: torch.Tensor, others: torch.Tensor,
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


def bilinear_scalars(padded: torch.Tensor, base: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
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
    needs a mask and every corner index is valid. The four corners are four gathers of the flat maps at
    the same index shifted by one pixel, one row and both. (A table of 4-value rows, one gather per point,
    cost as much to build as all the maps hold: 29 ms of OpenVINO's 4-view, 32-joint windowed fusion on
    one CPU thread against 12 ms for the four gathers; ONNX Runtime, the same either way.)
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
    top, right, bottom, diagonal = (padded.index_select(0, index + shift).reshape(x.shape)
                                    for shift in (0, 1, stride, stride + 1))
    top = top + fx * (right - top)
    bottom = bottom + fx * (diagonal - bottom)
    return top + fy * (bottom - top)
