"""Pinhole projection with OpenCV's distortion model, batched over points and cameras.

World→camera ``x_cam = R X + t``; distortion ``k1 k2 p1 p2 k3``; pixel centres at integer coordinates.
"""

from __future__ import annotations

import numpy as np
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


def pixels_to_normalized(pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """``(..., C, 2)`` pixels → ``(..., C, 2)`` normalized coordinates by ``K⁻¹`` (``K (C,3,3)``, skew)."""
    y = (pixels[..., 1] - K[:, 1, 2]) / K[:, 1, 1]
    x = (pixels[..., 0] - K[:, 0, 2] - K[:, 0, 1] * y) / K[:, 0, 0]
    return torch.stack([x, y], dim=-1)


def normalized_to_pixels(xy: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """``(..., C, 2)`` normalized coordinates → ``(..., C, 2)`` pixels through ``K (C,3,3)``."""
    u = K[:, 0, 0] * xy[..., 0] + K[:, 0, 1] * xy[..., 1] + K[:, 0, 2]
    v = K[:, 1, 1] * xy[..., 1] + K[:, 1, 2]
    return torch.stack([u, v], dim=-1)


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
        ``(..., C, 2)`` pixel coordinates (pixel centres at integers), in the dtype of ``points`` (float64
        for integer input). Points behind a camera (z <= 0) give NaN for that camera. A skew ``K[0, 1]``
        is honoured (``cv2.projectPoints`` ignores it); with zero skew the two agree.
    """
    check_shape(points, (3,), "points")
    check_shape(K, ("C", 3, 3), "K", exact=True)
    C = np.shape(K)[0]
    check_shape(dist, (C, 5), "dist", exact=True)
    check_shape(R, (C, 3, 3), "R", exact=True)
    check_shape(t, (C, 3), "t", exact=True)
    P = as_tensor(points)
    Kt, Dt, Rt, Tt = (as_tensor(a, like=P) for a in (K, dist, R, t))
    xc = world_to_camera(P, Rt, Tt)
    z = xc[..., 2:3]
    xy = xc[..., :2] / z
    xy = distort_normalized(xy, Dt)
    uv = normalized_to_pixels(xy, Kt)
    uv = torch.where(z > 0, uv, torch.full_like(uv, float("nan")))
    return to_like(uv, points)


def projection_matrices(K: ArrayLike, R: ArrayLike, t: ArrayLike) -> ArrayLike:
    """``P = K [R | t]`` for each camera: ``(C, 3, 4)`` (distortion is not representable and ignored).

    Args:
        K: ``(C, 3, 3)`` intrinsics; R: ``(C, 3, 3)``; t: ``(C, 3)`` metres.
    Returns:
        ``(C, 3, 4)`` mapping homogeneous world metres to homogeneous (undistorted) pixels.
    """
    check_shape(K, ("C", 3, 3), "K", exact=True)
    check_shape(R, (np.shape(K)[0], 3, 3), "R", exact=True)
    check_shape(t, (np.shape(K)[0], 3), "t", exact=True)
    Kt = as_tensor(K)
    Rt, Tt = as_tensor(R, like=Kt), as_tensor(t, like=Kt)
    Rtt = torch.cat([Rt, Tt[..., None]], dim=-1)
    return to_like(Kt @ Rtt, K)
