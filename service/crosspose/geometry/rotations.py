"""Rotations and camera orientation: rotation vectors ↔ matrices, the rotation check, ``look_at``.

Batched in torch (numpy in → numpy out). World frame: Z up, floor at ``z = 0`` (our choice); cameras
follow OpenCV: x right, y down, z forward (the viewing direction).
"""

from __future__ import annotations

from typing import Any

import torch

from crosspose.geometry._tensor import ArrayLike, as_tensor, check_shape, result_dtype, to_like

# Below this angle (rad) the closed forms are 0/0; their Taylor series are exact to float64 there.
_SMALL_ANGLE = 1e-4


def _skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` → ``(..., 3, 3)`` cross-product matrix ``[v]ₓ``."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], -2
    )


def rotvec_to_matrix(rotvec: ArrayLike) -> ArrayLike:
    """Rotation vectors (axis × angle, radians) → rotation matrices; same as ``cv2.Rodrigues``.

    Args:
        rotvec: ``(..., 3)``.
    Returns:
        ``(..., 3, 3)`` in the container and floating dtype of ``rotvec``.
    """
    check_shape(rotvec, (3,), "rotvec")
    r = as_tensor(rotvec, dtype=torch.float64)
    theta2 = (r * r).sum(-1)
    small = theta2 < _SMALL_ANGLE**2
    theta = torch.where(small, torch.ones_like(theta2), theta2).sqrt()  # safe: no 0/0 even in gradients
    a = torch.where(small, 1 - theta2 / 6 + theta2**2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2**2 / 720, (1 - torch.cos(theta)) / (theta * theta))
    S = _skew(r)
    eye = torch.eye(3, dtype=r.dtype, device=r.device)
    R = eye + a[..., None, None] * S + b[..., None, None] * (S @ S)
    return to_like(R.to(result_dtype(rotvec)), rotvec)


def matrix_to_rotvec(R: ArrayLike) -> ArrayLike:
    """Rotation matrices → rotation vectors with angle in ``[0, π]``; inverse of :func:`rotvec_to_matrix`.

    Goes through the unit quaternion (Shepperd's branch choice), which is accurate for every angle,
    including 0 and π (where the axis sign is arbitrary: ``v`` and ``−v`` are the same rotation).

    Args:
        R: ``(..., 3, 3)`` rotation matrices (not re-orthonormalised: pass rotations).
    Returns:
        ``(..., 3)`` radians, in the container and floating dtype of ``R``.
    """
    check_shape(R, (3, 3), "R")
    M = as_tensor(R, dtype=torch.float64)
    m00, m11, m22 = M[..., 0, 0], M[..., 1, 1], M[..., 2, 2]
    # 4·(component)² for w, x, y, z; the largest gives the best-conditioned branch (it is >= 1).
    quad = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    big = quad.clamp_min(1e-12).sqrt()  # 2·|component| for each branch
    # Products 4·wx, 4·wy, 4·wz from the antisymmetric part, 4·xy, 4·xz, 4·yz from the symmetric part.
    wx, wy, wz = M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]
    xy, xz, yz = M[..., 1, 0] + M[..., 0, 1], M[..., 0, 2] + M[..., 2, 0], M[..., 2, 1] + M[..., 1, 2]
    # Row i is 4·q_i·(w, x, y, z): dividing by 4·|q_i| = 2·big_i gives the quaternion (up to sign).
    rows = torch.stack(
        [
            torch.stack([quad[..., 0], wx, wy, wz], -1),
            torch.stack([wx, quad[..., 1], xy, xz], -1),
            torch.stack([wy, xy, quad[..., 2], yz], -1),
            torch.stack([wz, xz, yz, quad[..., 3]], -1),
        ],
        -2,
    )
    branch = quad.argmax(-1)
    q = torch.gather(rows, -2, branch[..., None, None].expand(*branch.shape, 1, 4))[..., 0, :]
    q = q / (2 * torch.gather(big, -1, branch[..., None]))
    q = torch.where(q[..., :1] < 0, -q, q)  # w >= 0: angle in [0, π]
    w, v = q[..., 0], q[..., 1:]
    n = v.norm(dim=-1)
    small = n < _SMALL_ANGLE
    n_safe = torch.where(small, torch.ones_like(n), n)
    # angle / |v| with angle = 2·atan2(|v|, w); its series near 0 is 2/w − 2|v|²/(3w³).
    scale = torch.where(small, 2 / w - 2 * n * n / (3 * w**3), 2 * torch.atan2(n_safe, w) / n_safe)
    return to_like((v * scale[..., None]).to(result_dtype(R)), R)


def is_rotation(R: ArrayLike, atol: float = 1e-6) -> ArrayLike:
    """Whether each matrix is a proper rotation: ``R Rᵀ = I`` and ``det R = +1`` within ``atol``.

    Args:
        R: ``(..., 3, 3)``.
    Returns:
        ``(...)`` bool in the container of ``R`` (a 0-d array/tensor for a single matrix); False for
        non-finite matrices and reflections.
    """
    check_shape(R, (3, 3), "R")
    M = as_tensor(R, dtype=torch.float64)
    eye = torch.eye(3, dtype=M.dtype, device=M.device)
    orthonormal = ((M @ M.transpose(-1, -2)) - eye).abs().flatten(-2).amax(-1) <= atol
    proper = (torch.linalg.det(M) - 1).abs() <= atol
    return to_like(orthonormal & proper, R)


def look_at(eye: Any, target: Any, up: Any = (0.0, 0.0, 1.0)) -> tuple[ArrayLike, ArrayLike]:
    """Extrinsics of an OpenCV camera at ``eye`` looking at ``target`` (x right, y down, z forward).

    "Right" is ``forward × up``, so with the default Z-up world the image's down direction points as
    close to −Z (the floor) as the view allows: the horizon is level.

    Args:
        eye: ``(..., 3)`` camera centre, world metres.
        target: ``(..., 3)`` a world point on the optical axis (broadcasts with ``eye``).
        up: ``(3,)`` or ``(..., 3)`` world up; the default is +Z.
    Returns:
        ``R`` ``(..., 3, 3)`` and ``t`` ``(..., 3)`` with ``x_cam = R X + t`` (so ``t = −R eye``), in the
        container of ``eye`` (numpy for sequences) and float64 unless ``eye`` is float32.
    Raises:
        ValueError: ``eye`` equals ``target``, or the view direction is parallel to ``up``.
    """
    check_shape(eye, (3,), "eye")
    check_shape(target, (3,), "target")
    check_shape(up, (3,), "up")
    e = as_tensor(eye, dtype=torch.float64)
    forward = as_tensor(target, like=e) - e
    up_t = as_tensor(up, like=e)
    right = torch.linalg.cross(forward, up_t.expand_as(forward))
    f_norm, r_norm = forward.norm(dim=-1), right.norm(dim=-1)
    if bool((f_norm <= 1e-12).any()):
        raise ValueError("look_at: eye and target coincide; the camera needs a viewing direction")
    if bool((r_norm <= 1e-9 * f_norm * up_t.norm(dim=-1)).any()):
        raise ValueError("look_at: viewing direction is parallel to up; pass another up vector")
    z = forward / f_norm[..., None]
    x = right / r_norm[..., None]
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z], dim=-2)
    t = -(R @ e.expand_as(z)[..., None])[..., 0]
    dtype = result_dtype(eye)
    return to_like(R.to(dtype), eye), to_like(t.to(dtype), eye)
