"""N-view triangulation (weighted linear DLT) and reprojection error, batched over points.

Missing views are data, not exceptions: a view with a NaN coordinate or a zero/NaN weight is left out,
and a point seen by fewer than two usable views comes back as NaN with ``valid=False``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from crosspose.geometry._tensor import ArrayLike, as_tensor, check_shape, result_dtype, to_like
from crosspose.geometry.projection import project_points

if TYPE_CHECKING:
    from crosspose.geometry.camera import CameraRig

# A point is only reported when the views constrain it in all three directions: the second-smallest
# singular value of the (row-normalised, weighted) DLT system relative to the largest. Two views
# along the same ray, or one usable view with a tiny weight, fall below it.
_MIN_CONDITIONING = 1e-9


def triangulate(
    points2d: ArrayLike, projections: ArrayLike, weights: ArrayLike | None = None
) -> tuple[ArrayLike, ArrayLike]:
    """Triangulate one 3D point per observation set from ``C`` views by weighted linear DLT.

    Each usable view contributes the two rows ``x·P₃ − P₁`` and ``y·P₃ − P₂``, each scaled to unit
    norm (so pixels and normalized coordinates condition alike) and then multiplied by the view's
    weight; the point is the right singular vector of the smallest singular value (float64 SVD).

    Args:
        points2d: ``(..., C, 2)`` image points in the coordinates ``projections`` map to (pixels for
            ``K [R | t]``, normalized coordinates for ``[R | t]``); already undistorted.
        projections: ``(C, 3, 4)`` (or ``(..., C, 3, 4)`` broadcasting with ``points2d``) world → image.
        weights: ``(..., C)`` non-negative per-view confidences broadcasting with ``points2d[..., 0]``;
            ``None`` weighs every view 1. Views with weight ``<= 0`` or NaN are ignored.
    Returns:
        ``points3d`` ``(..., 3)`` world coordinates (metres when the projections are), in the floating
        dtype and container of ``points2d``; NaN where not ``valid``.
        ``valid`` ``(...)`` bool: at least two usable views that fix the point (not all along one ray).
    """
    check_shape(points2d, ("C", 2), "points2d")
    C = np.shape(points2d)[-2]
    check_shape(projections, (C, 3, 4), "projections")
    if weights is not None:
        check_shape(weights, (C,), "weights")
    x = as_tensor(points2d, dtype=torch.float64)
    P = as_tensor(projections, like=x)
    w = torch.ones_like(x[..., 0]) if weights is None else as_tensor(weights, like=x)

    calibrated = torch.isfinite(P).flatten(-2).all(dim=-1)
    usable = torch.isfinite(x).all(dim=-1) & (w > 0) & torch.isfinite(w) & calibrated
    x = torch.where(usable[..., None], x, torch.zeros_like(x))
    w = torch.where(usable, w, torch.zeros_like(w))
    P = torch.where(torch.isfinite(P), P, torch.zeros_like(P))

    rows = x[..., :, None] * P[..., 2:3, :] - P[..., 0:2, :]  # (..., C, 2, 4)
    rows = rows / rows.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    A = (rows * w[..., None, None]).flatten(-3, -2)  # (..., 2C, 4)
    if A.shape[-2] < 4:  # one camera: pad so the SVD still yields a 4x4 right basis
        A = torch.cat([A, A.new_zeros((*A.shape[:-2], 4 - A.shape[-2], 4))], dim=-2)
    _, S, Vh = torch.linalg.svd(A, full_matrices=False)
    Xh = Vh[..., -1, :]
    X = Xh[..., :3] / Xh[..., 3:]

    valid = (
        (usable.sum(dim=-1) >= 2)
        & (S[..., 2] > _MIN_CONDITIONING * S[..., 0])
        & torch.isfinite(X).all(dim=-1)
    )
    X = torch.where(valid[..., None], X, torch.full_like(X, float("nan")))
    return to_like(X.to(result_dtype(points2d)), points2d), to_like(valid, points2d)


def reprojection_error(points3d: ArrayLike, pixels: ArrayLike, rig: CameraRig) -> ArrayLike:
    """Distance in pixels between each point's projection (with distortion) and its observation.

    Args:
        points3d: ``(..., 3)`` world points, metres.
        pixels: ``(..., C, 2)`` observed (distorted) pixels for the rig's ``C`` cameras.
        rig: the cameras.
    Returns:
        ``(..., C)`` pixels, in the container of ``points3d``; NaN where the point or the observation
        is NaN or the point is behind the camera.
    """
    check_shape(points3d, (3,), "points3d")
    check_shape(pixels, (len(rig), 2), "pixels")
    X = as_tensor(points3d, dtype=torch.float64)
    projected = project_points(X, rig.K, rig.dist, rig.R, rig.t)
    assert isinstance(projected, torch.Tensor)
    error = (projected - as_tensor(pixels, like=X)).norm(dim=-1)
    return to_like(error.to(result_dtype(points3d)), points3d)
