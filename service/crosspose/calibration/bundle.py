"""Robust bundle adjustment of camera poses and 3D points against 2D observations, with the intrinsics held
fixed: numpy only (a few cameras and thousands of points solve in about a second with the points
eliminated; scipy's generic sparse ``least_squares`` took ~25 s on the Pose2Sim take and is not needed).

Observations come undistorted to normalized image coordinates (``x / z, y / z`` in the camera frame), so
the residual is ``f · (projected − observed)``: pixels, with the camera's mean focal length ``f``. The
robust loss (``soft_l1`` with a scale of a few pixels) lets wrong detections (a swapped wrist, another
person) pull little; observations left far off after the solve are dropped by the caller and the solve
repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class Observations:
    """2D sightings of 3D points.

    Attributes:
        camera: ``(M,)`` camera index of each sighting.
        point: ``(M,)`` point index.
        xy: ``(M, 2)`` undistorted normalized image coordinates.
        weight: ``(M,)`` weight of each sighting in the fit (detector confidence; 1 for a board corner).
    """

    camera: np.ndarray
    point: np.ndarray
    xy: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.camera.shape[0])

    def subset(self, keep: np.ndarray) -> Observations:
        return Observations(self.camera[keep], self.point[keep], self.xy[keep], self.weight[keep])


@dataclass(frozen=True, eq=False)
class BundleResult:
    """The adjusted poses and points.

    Attributes:
        rvecs: ``(C, 3)`` world→camera rotation vectors.
        tvecs: ``(C, 3)`` world→camera translations.
        points: ``(P, 3)`` points (NaN where a point had fewer than two sightings).
        residuals_px: ``(M,)`` reprojection distance of each sighting after the fit, pixels.
        cost: final robust cost; ``iterations``: LM steps taken.
    """

    rvecs: np.ndarray
    tvecs: np.ndarray
    points: np.ndarray
    residuals_px: np.ndarray
    cost: float
    iterations: int


def rotate(rvecs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of ``(M, 3)`` points by ``(M, 3)`` rotation vectors (row by row)."""
    theta = np.linalg.norm(rvecs, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(theta > 1e-12, rvecs / theta, 0.0)
    cos, sin = np.cos(theta), np.sin(theta)
    dot = np.sum(k * points, axis=1, keepdims=True)
    return cos * points + sin * np.cross(k, points) + (1 - cos) * dot * k


def project_normalized(rvecs: np.ndarray, tvecs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(M, 2)`` normalized projections of ``(M, 3)`` points by per-row poses ``(M, 3)``, ``(M, 3)``."""
    cam = rotate(rvecs, points) + tvecs
    return cam[:, :2] / cam[:, 2:3]


def bundle_adjust(
    rvecs: np.ndarray,
    tvecs: np.ndarray,
    points: np.ndarray,
    obs: Observations,
    focal: np.ndarray,
    *,
    loss_scale_px: float = 3.0,
    fixed_cameras: tuple[int, ...] = (0,),
    max_iterations: int = 100,
) -> BundleResult:
    """Adjust ``(C, 3)`` poses and ``(P, 3)`` points to minimise the robust reprojection error in pixels.

    Levenberg–Marquardt with an analytic Jacobian, the points eliminated by the Schur complement (each
    step solves a ``6C × 6C`` system), and the soft-L1 loss by iteratively reweighted least squares.

    Args:
        rvecs, tvecs: ``(C, 3)`` initial world→camera poses.
        points: ``(P, 3)`` initial points; every observed point must be finite.
        obs: the sightings (normalized coordinates).
        focal: ``(C,)`` pixels per normalized unit (the residual's scale).
        loss_scale_px: where the soft-L1 loss turns from quadratic to linear, pixels.
        fixed_cameras: these cameras' poses are held: one holds the gauge's rotation and position (the
            overall scale is left as it comes and set by the caller afterwards); several hold the world of
            an existing rig while another camera is refined against it.
        max_iterations: cap on LM steps.
    """
    c, p = rvecs.shape[0], points.shape[0]
    problem = _Problem(obs, focal, c, p, loss_scale_px)
    R, t, X = _rotations(rvecs), tvecs.astype(float).copy(), points.astype(float).copy()
    cost = problem.cost(problem.residuals(R, t, X)[0])
    lam, steps = 1e-3, 0
    while steps < max_iterations:
        steps += 1
        dc, dp = problem.step(R, t, X, lam, fixed_cameras)
        R2, t2, X2 = _apply(R, t, X, dc, dp)
        r2, cam2 = problem.residuals(R2, t2, X2)
        new = problem.cost(r2) if np.all(cam2[:, 2] > 0) else np.inf
        if new < cost:
            done = cost - new < 1e-7 * cost
            R, t, X, cost, lam = R2, t2, X2, new, max(lam / 3, 1e-9)
            if done:
                break
        else:
            lam *= 5
            if lam > 1e8:
                break
    r, _ = problem.residuals(R, t, X)
    residual_px = np.linalg.norm(r / np.sqrt(obs.weight)[:, None], axis=1)
    rv = np.stack([cv2.Rodrigues(m)[0].ravel() for m in R])
    return BundleResult(rv, t, X, residual_px, cost, steps)


def _skew(v: np.ndarray) -> np.ndarray:
    """``(M, 3, 3)`` cross-product matrices of ``(M, 3)`` vectors."""
    z = np.zeros(v.shape[0])
    return np.stack(
        [
            np.stack([z, -v[:, 2], v[:, 1]], -1),
            np.stack([v[:, 2], z, -v[:, 0]], -1),
            np.stack([-v[:, 1], v[:, 0], z], -1),
        ],
        1,
    )


def _rotations(rvecs: np.ndarray) -> np.ndarray:
    return np.stack([cv2.Rodrigues(np.asarray(r, float))[0] for r in rvecs])


def _apply_rows(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(M, i)`` rows ``A_m x_m`` of ``(M, i, j)`` matrices and ``(M, j)`` vectors."""
    return np.matmul(A, x[:, :, None])[:, :, 0]


class _Grouping:
    """Sums of per-sighting rows by a key (the point or the camera), by one sort at set-up."""

    def __init__(self, key: np.ndarray, size: int) -> None:
        self.order = np.argsort(key, kind="stable")
        self.keys, self.starts = np.unique(key[self.order], return_index=True)
        self.size = size

    def sum(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros((self.size, *values.shape[1:]))
        if self.keys.size:
            out[self.keys] = np.add.reduceat(values[self.order], self.starts, axis=0)
        return out


class _Problem:
    """The normal equations of one Levenberg–Marquardt step, reduced to the cameras (Schur complement)."""

    def __init__(
        self, obs: Observations, focal: np.ndarray, num_cameras: int, num_points: int, loss_scale_px: float
    ) -> None:
        self.obs = obs
        self.scale = focal[obs.camera][:, None] * np.sqrt(obs.weight)[:, None]  # normalized → weighted px
        self.c, self.p = num_cameras, num_points
        self.sigma = loss_scale_px
        self.index = np.full((num_points, num_cameras), -1)
        self.index[obs.point, obs.camera] = np.arange(len(obs))
        # For each camera, the other cameras with the sightings of the points both see.
        self._pairs = [
            [
                (b, (self.index[both, a], self.index[both, b]))
                for b in range(num_cameras)
                if (both := (self.index[:, a] >= 0) & (self.index[:, b] >= 0)).any()
            ]
            for a in range(num_cameras)
        ]
        self._by_point = _Grouping(obs.point, num_points)
        self._by_camera = _Grouping(obs.camera, num_cameras)

    def residuals(self, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(M, 2)`` weighted pixel residuals and ``(M, 3)`` points in their camera's frame."""
        cam = _apply_rows(R[self.obs.camera], X[self.obs.point]) + t[self.obs.camera]
        proj = cam[:, :2] / cam[:, 2:3]
        return (proj - self.obs.xy) * self.scale, cam

    def cost(self, r: np.ndarray) -> float:
        s = (r**2).sum(1) / self.sigma**2
        return float(self.sigma**2 * np.sum(2 * (np.sqrt(1 + s) - 1)))

    def step(
        self, R: np.ndarray, t: np.ndarray, X: np.ndarray, lam: float, fixed: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(C, 6)`` camera updates (rotation ``δ`` as ``R ← exp(δ) R``, then translation) and ``(P, 3)``
        point updates of one damped Gauss–Newton step with soft-L1 (IRLS) weights."""
        obs = self.obs
        r, cam = self.residuals(R, t, X)
        w = 1 / np.sqrt(1 + (r**2).sum(1) / self.sigma**2)  # soft-L1's IRLS weight
        z = cam[:, 2]
        dproj = np.zeros((len(obs), 2, 3))
        dproj[:, 0, 0] = dproj[:, 1, 1] = 1 / z
        dproj[:, :, 2] = -cam[:, :2] / z[:, None] ** 2
        dproj *= self.scale[:, :, None]
        rot = cam - t[obs.camera]
        Jc = np.concatenate([dproj @ -_skew(rot), dproj], 2)  # (M, 2, 6)
        Jp = dproj @ R[obs.camera]  # (M, 2, 3)
        wr = w[:, None] * r
        wJc, wJp = Jc * w[:, None, None], Jp * w[:, None, None]
        U = self._by_camera.sum(np.matmul(Jc.transpose(0, 2, 1), wJc))
        V = self._by_point.sum(np.matmul(Jp.transpose(0, 2, 1), wJp))
        Wm = np.matmul(Jc.transpose(0, 2, 1), wJp)  # (M, 6, 3)
        gc = self._by_camera.sum(_apply_rows(Jc.transpose(0, 2, 1), wr))
        gp = self._by_point.sum(_apply_rows(Jp.transpose(0, 2, 1), wr))
        U += lam * np.eye(6) * np.diagonal(U, axis1=1, axis2=2)[:, None, :] + 1e-9 * np.eye(6)
        V += lam * np.eye(3) * np.diagonal(V, axis1=1, axis2=2)[:, None, :] + 1e-12 * np.eye(3)
        Vinv = np.linalg.inv(V)
        Y = Wm @ Vinv[obs.point]  # (M, 6, 3)
        S = np.zeros((6 * self.c, 6 * self.c))
        b = self._by_camera.sum(_apply_rows(Y, gp[obs.point])) - gc
        for a in range(self.c):
            S[6 * a : 6 * a + 6, 6 * a : 6 * a + 6] += U[a]
            for a2, (ia, ib) in self._pairs[a]:
                # the shared points' sum of Y_a W_bᵀ as one (6, 3m) × (3m, 6) product
                ya = Y[ia].transpose(1, 0, 2).reshape(6, -1)
                wb = Wm[ib].transpose(1, 0, 2).reshape(6, -1)
                S[6 * a : 6 * a + 6, 6 * a2 : 6 * a2 + 6] -= ya @ wb.T
        keep = np.ones(6 * self.c, bool)
        for f in fixed:
            keep[6 * f : 6 * f + 6] = False
        dc = np.zeros(6 * self.c)
        dc[keep] = np.linalg.solve(S[np.ix_(keep, keep)], b.ravel()[keep])
        dc6 = dc.reshape(self.c, 6)
        rhs = -gp - self._by_point.sum(_apply_rows(Wm.transpose(0, 2, 1), dc6[obs.camera]))
        return dc6, _apply_rows(Vinv, rhs)


def _apply(
    R: np.ndarray, t: np.ndarray, X: np.ndarray, dc: np.ndarray, dp: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _rotations(dc[:, :3]) @ R, t + dc[:, 3:], X + dp


def triangulate_normalized(
    rvecs: np.ndarray, tvecs: np.ndarray, obs: Observations, num_points: int, min_views: int = 2
) -> np.ndarray:
    """``(P, 3)`` linear (DLT) triangulation of every point seen by at least ``min_views`` of the given
    cameras (NaN otherwise); cameras whose ``rvecs`` row is NaN are not used."""
    posed = np.isfinite(rvecs).all(1)
    keep = posed[obs.camera]
    cam, pt, xy, w = obs.camera[keep], obs.point[keep], obs.xy[keep], obs.weight[keep]
    P = np.stack(
        [
            np.hstack([cv2.Rodrigues(r)[0], t[:, None]]) if ok else np.full((3, 4), np.nan)
            for r, t, ok in zip(rvecs, tvecs, posed, strict=True)
        ]
    )
    rows = np.concatenate([xy[:, :1] * P[cam, 2] - P[cam, 0], xy[:, 1:] * P[cam, 2] - P[cam, 1]]) * np.tile(
        np.sqrt(w)[:, None], (2, 1)
    )
    which = np.concatenate([pt, pt])
    order = np.argsort(which, kind="stable")
    which, rows = which[order], rows[order]
    starts = np.searchsorted(which, np.arange(num_points))
    ends = np.searchsorted(which, np.arange(num_points), side="right")
    out = np.full((num_points, 3), np.nan)
    for i in np.flatnonzero(ends - starts >= 2 * min_views):
        A = rows[starts[i] : ends[i]]
        _, _, vt = np.linalg.svd(A)
        X = vt[-1]
        if abs(X[3]) > 1e-12:
            out[i] = X[:3] / X[3]
    return out
