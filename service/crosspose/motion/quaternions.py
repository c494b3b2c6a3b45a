"""Small rotation maths for the motion package, vectorised over leading axes (numpy only).

Quaternions are ``(..., 4)`` unit ``(w, x, y, z)``; matrices ``(..., 3, 3)`` act on column vectors.
"""

from __future__ import annotations

import numpy as np

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices → ``(..., 4)`` unit quaternions ``(w, x, y, z)`` (Shepperd)."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    # four candidate (unnormalised) quaternions; pick the best-conditioned one per element
    cands = np.stack([
        np.stack([1.0 + trace, R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                  R[..., 1, 0] - R[..., 0, 1]], -1),
        np.stack([R[..., 2, 1] - R[..., 1, 2], 1.0 + m00 - m11 - m22, R[..., 0, 1] + R[..., 1, 0],
                  R[..., 0, 2] + R[..., 2, 0]], -1),
        np.stack([R[..., 0, 2] - R[..., 2, 0], R[..., 0, 1] + R[..., 1, 0], 1.0 - m00 + m11 - m22,
                  R[..., 1, 2] + R[..., 2, 1]], -1),
        np.stack([R[..., 1, 0] - R[..., 0, 1], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1],
                  1.0 - m00 - m11 + m22], -1),
    ], -2)  # (..., 4, 4)
    choice = np.argmax(np.stack([trace, m00, m11, m22], -1), axis=-1)
    q = np.take_along_axis(cands, choice[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternions ``(w, x, y, z)`` (normalised here) → ``(..., 3, 3)`` rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation of ``angle`` (rad, ``(...)``) about unit ``axis`` (``(..., 3)``) → ``(..., 3, 3)``."""
    x, y, z = np.moveaxis(axis, -1, 0)
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.stack([
        np.stack([t * x * x + c, t * x * y - s * z, t * x * z + s * y], -1),
        np.stack([t * x * y + s * z, t * y * y + c, t * y * z - s * x], -1),
        np.stack([t * x * z - s * y, t * y * z + s * x, t * z * z + c], -1),
    ], -2)


def swing_matrix(d: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shortest rotation taking unit ``d`` to unit ``u`` (both ``(..., 3)``) and a validity mask.

    Invalid (``(...)`` False) where ``u`` is (nearly) opposite to ``d``: the axis is undefined there.
    """
    d, u = np.broadcast_arrays(d, u)
    v = np.cross(d, u)
    c = np.einsum("...i,...i->...", d, u)
    ok = c > -0.999
    k = 1.0 / np.maximum(1.0 + c, 1e-3)
    vx, vy, vz = np.moveaxis(v, -1, 0)
    zero = np.zeros_like(vx)
    K = np.stack([np.stack([zero, -vz, vy], -1), np.stack([vz, zero, -vx], -1),
                  np.stack([-vy, vx, zero], -1)], -2)
    R = np.eye(3) + K + (K @ K) * k[..., None, None]
    return R, ok


def make_continuous(q: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Flip signs along axis 0 of ``(N, ..., 4)`` so each quaternion is nearest (``q·p ≥ 0``) the
    previous one.

    ``previous`` (``(..., 4)``) is the quaternion before the first; without it the first keeps ``w ≥ 0``.
    """
    if q.shape[0] == 0:
        return q
    dots = np.einsum("n...i,n...i->n...", q[1:], q[:-1])
    steps = np.where(dots < 0, -1.0, 1.0)
    if previous is None:
        first = np.where(q[0, ..., 0] < 0, -1.0, 1.0)
    else:
        first = np.where(np.einsum("...i,...i->...", q[0], previous) < 0, -1.0, 1.0)
    signs = np.cumprod(np.concatenate([first[None], steps], axis=0), axis=0)
    return q * signs[..., None]


def matrix_to_euler_zxy(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` → ``(..., 3)`` angles (rad) ``(z, x, y)`` with ``R = Rz(z) @ Rx(x) @ Ry(y)``.

    That is BVH's ``Zrotation Xrotation Yrotation`` channel order. ``x`` is in ``[-π/2, π/2]``.
    """
    x = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    y = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    return np.stack([z, x, y], -1)


def continuous_euler_zxy(R: np.ndarray) -> np.ndarray:
    """``(N, ..., 3, 3)`` → ``(N, ..., 3)`` ZXY angles (rad) continuous along axis 0.

    Each rotation has two ZXY decompositions, ``(z, x, y)`` and ``(z + π, π - x, y + π)``; per frame
    the one nearest the previous frame's angles is kept and shifted by whole turns to follow them, so
    the middle (X) angle may leave ``[-π/2, π/2]`` (a hip flexed past 90°) without the other two jumping.
    """
    a = matrix_to_euler_zxy(R)
    b = np.stack([a[..., 0] + np.pi, np.pi - a[..., 1], a[..., 2] + np.pi], -1)
    out = np.empty_like(a)
    if a.shape[0] == 0:
        return out
    out[0] = a[0]
    prev = a[0]
    for t in range(1, a.shape[0]):
        da = (a[t] - prev + np.pi) % (2 * np.pi) - np.pi
        db = (b[t] - prev + np.pi) % (2 * np.pi) - np.pi
        use_b = np.abs(db).sum(-1) < np.abs(da).sum(-1)
        prev = prev + np.where(use_b[..., None], db, da)
        out[t] = prev
    return out
