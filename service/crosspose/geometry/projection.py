"""Pinhole projection with OpenCV's distortion model, batched over points and cameras.

World→camera ``x_cam = R X + t``; distortion ``k1 k2 p1 p2 k3``; pixel centres at integer coordinates.
"""

from __future__ import annotations

import torch

from crosspose.geometry._tensor import ArrayLike, as_tensor, check_shape, to_like


def distort_normalized(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Apply OpenCV's radial-tangential distortion to normalized image coordinates.

    Args:
        xy: ``(..., C, 2)`` undistorted normalized coordinates (x/z, y/z).
        dist: ``(C, 5)`` ``k1 k2 p1 p2 k3``.
    Returns:
        ``(..., C, 2)`` distorted normalized coordinates.
    """
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, p1, p2, k3 = (dist[:, i] for i in range(5))
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def world_to_camera(points: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` world points → ``(..., C, 3)`` camera-frame points for ``R (C,3,3)``, ``t (C,3)``."""
    return torch.einsum("cij,...j->...ci", R, points) + t


def project_points(
    points: ArrayLike, K: ArrayLike, dist: ArrayLike, R: ArrayLike, t: ArrayLike
) -> ArrayLike:
    """Project world points into every camera.

    Args:
        points: ``(..., 3)`` world points, metres.
        K: ``(C, 3, 3)`` intrinsics; dist: ``(C, 5)``; R: ``(C, 3, 3)``; t: ``(C, 3)`` metres.
    Returns:
        ``(..., C, 2)`` pixel coordinates. Points behind a camera (z <= 0) give NaN for that camera.
    """
    check_shape(points, (3,), "points")
    P = as_tensor(points)
    Kt, Dt, Rt, Tt = (as_tensor(a, like=P) for a in (K, dist, R, t))
    check_shape(Kt, (None, 3, 3), "K")
    check_shape(Dt, (Kt.shape[0], 5), "dist")
    xc = world_to_camera(P, Rt, Tt)
    z = xc[..., 2:3]
    xy = xc[..., :2] / z
    xy = distort_normalized(xy, Dt)
    u = Kt[:, 0, 0] * xy[..., 0] + Kt[:, 0, 1] * xy[..., 1] + Kt[:, 0, 2]
    v = Kt[:, 1, 1] * xy[..., 1] + Kt[:, 1, 2]
    uv = torch.stack([u, v], dim=-1)
    uv = torch.where(z > 0, uv, torch.full_like(uv, float("nan")))
    return to_like(uv, points)


def projection_matrices(K: ArrayLike, R: ArrayLike, t: ArrayLike) -> ArrayLike:
    """``P = K [R | t]`` for each camera: ``(C, 3, 4)`` (distortion is not representable and ignored)."""
    Kt = as_tensor(K)
    Rt, Tt = as_tensor(R, like=Kt), as_tensor(t, like=Kt)
    Rtt = torch.cat([Rt, Tt[..., None]], dim=-1)
    return to_like(Kt @ Rtt, K)
