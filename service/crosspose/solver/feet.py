"""The foot's length (heel → big toe) held to the performer's own, after the refinement.

Heel and big toe are leaves of the ankle: each is searched and triangulated on its own, so nothing ties
the distance between them. On the real Pose2Sim clip that distance wandered by ±3 cm over a second
(std 17 mm; Pose2Sim's own OpenPose feet 16-25 mm): not frame-to-frame jitter but slow drifts of the
detector's heel and toe points with the foot's pose in each view, which smoothing in time cannot remove.
A foot is rigid to within its toes' bend, so its length is a measurement of the performer, like a limb:

* :class:`FootLengthEstimate` keeps the performer's foot length, a running median of the confidently
  solved frames' raw heel–toe distances (as :class:`.limbs.LimbLengthEstimate` does for the bones), of
  both feet together: a performer's two feet are the same length to a few millimetres
  (:data:`FOOT_ASYMMETRY`), so each foot's readings are readings of the other's length too;
* :func:`hold_foot_lengths` then moves the heel and the toe of each frame along the line between them
  so that the measured length and the performer's are fused by their variances: the measurement's from
  the views that support the two points (each view's localisation noise, the frame's own as the
  refinement estimates it, through the projection's Jacobian), the performer's length a prior with the
  spread a real foot's heel–toe distance has (:data:`FOOT_LENGTH_SIGMA`), and the other foot's
  measurement in the same frame a second prior (its own variance plus the two feet's difference).
  Each point moves in proportion to its variance along that line (the least-squares correction of the two
  points held to their line under the fused length): the better seen point stays.

Why both feet: the detector's heel and toe drift with the foot's pose, and a foot can read short for its
first quarter second (the real Pose2Sim clip's left foot: ~172 mm over its first 15 frames, ~213 mm after;
its right foot ~199 mm throughout). Learnt from one foot's own readings, the length is the short one and
every later frame is pulled to it; with both feet's readings, and the other foot's each frame, one foot's
drift is balanced by the other (online, that clip's heel–toe std, left / right, fell from 15.1 / 6.1 mm to
9.4 / 7.2 mm, ``benchmarks/body32.py``; the take's from 5.5 / 5.6 to 4.9 / 4.8).
The price: where the detector reads one foot steadily longer than the other (on that clip the take's
medians are 215 and 199 mm), each is held nearer their common length.

The direction of the foot (its pitch, yaw and the ankle's roll about it) is untouched.
"""

from __future__ import annotations

import math

import numpy as np

from crosspose.skeleton import Skeleton
from crosspose.solver.limbs import _nanmedian, window_summary

#: The heel → big toe pairs held, by joint name (a layout without them holds nothing).
FOOT_PAIRS: tuple[tuple[str, str], ...] = (("l_heel", "l_big_toe"), ("r_heel", "r_big_toe"))

#: Spread of a real foot's heel → big-toe-tip distance over a take, metres: the toes bending 30° up about
#: the ball (~70 % of the way from the heel) shorten it by ~0.3 L (1 - cos 30°) ≈ 1 cm for a 25 cm foot,
#: so about half a centimetre is what a performer's own foot varies by; the rest is the detector.
FOOT_LENGTH_SIGMA = 0.005

#: Spread of the difference between a performer's left and right foot lengths, metres: adults' two feet
#: differ by a few millimetres. Only the true lengths' difference: the toes' bend of each foot in the frame
#: (:data:`FOOT_LENGTH_SIGMA` each) is added where one foot's measurement stands for the other.
FOOT_ASYMMETRY = 0.004


def foot_pairs(skeleton: Skeleton) -> np.ndarray:
    """``(F, 2)`` joint indices of ``skeleton``'s heel → big toe pairs (``(0, 2)`` when it has none)."""
    names = set(skeleton.joints)
    rows = [(skeleton.index(h), skeleton.index(t)) for h, t in FOOT_PAIRS if h in names and t in names]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


class FootLengthEstimate:
    """Robust online heel → big toe distance of one performer's feet (metres).

    Args:
        pairs: ``(F, 2)`` joint indices (:func:`foot_pairs`).
        window: confident measurements kept per foot (a running median over them).
        min_samples: measurements before a foot's length is known (no prior is applied before); of both
            feet together when ``shared``.
        max_deviation: measurements further than this fraction from the known length are ignored.
        shared: with two feet, both have one length: the median of both feet's kept measurements
            (a performer's feet are equally long to within :data:`FOOT_ASYMMETRY`); False: each foot its own.
            A layout with one foot (or none) has nothing to share.
    """

    def __init__(self, pairs: np.ndarray, window: int = 90, min_samples: int = 15,
                 max_deviation: float = 0.25, shared: bool = True) -> None:
        self.pairs = pairs
        self.window = window
        self.min_samples = min_samples
        self.max_deviation = max_deviation
        self.shared = shared and len(pairs) == 2
        self.reset()

    def reset(self) -> None:
        """Forget the performer's feet."""
        self._samples = np.full((self.window, len(self.pairs)), np.nan)
        self._count = np.zeros(len(self.pairs), dtype=np.int64)
        self._lengths: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        """``(F,)`` each foot's length (the same for both when ``shared``), NaN while fewer than
        ``min_samples`` measurements were seen."""
        if self._lengths is None:  # read twice a frame, changed once: computed after each update
            out = np.full(len(self.pairs), np.nan)
            kept = np.minimum(self._count, self.window)
            if self.shared:
                if self._count.sum() >= self.min_samples:  # every kept measurement of either foot
                    out[:] = _nanmedian(self._samples.reshape(-1, 1), kept.sum(keepdims=True))[0]
            else:
                known = self._count >= self.min_samples
                if known.any():
                    out[known] = _nanmedian(self._samples[:, known], kept[known])
            self._lengths = out
        return self._lengths.copy()

    def seed(self, samples: np.ndarray) -> None:
        """Start from a first pass's ``(S, F)`` measurements (metres, NaN where none) instead of nothing
        (:meth:`.limbs.LimbLengthEstimate.seed`): a foot with ``min_samples`` of them is known at once (when
        ``shared``, both feet as soon as they have as many together; a foot with more readings than
        ``window`` stands for them by their quantiles, so the two feet weigh as much)."""
        self.reset()
        self._samples, self._count = window_summary(np.asarray(samples, dtype=np.float64), self.window)

    def update(self, measured: np.ndarray, confident: np.ndarray) -> None:
        """Add one frame's ``(F,)`` raw heel–toe distances where ``confident (F,)`` (both ends well seen)."""
        measured = np.asarray(measured, dtype=np.float64)
        current = self.lengths
        ok = confident & np.isfinite(measured)
        settled = np.isfinite(current)
        ok &= ~settled | (np.abs(measured / np.where(settled, current, 1.0) - 1) < self.max_deviation)
        rows = np.nonzero(ok)[0]
        self._samples[self._count[rows] % self.window, rows] = measured[rows]
        self._count[rows] += 1
        self._lengths = None


def view_noise_px(residual: np.ndarray, support: np.ndarray) -> np.ndarray:
    """``(N,)`` each frame's localisation noise per image axis, pixels: the Rayleigh scale read off the
    median reprojection error of its supporting views (as :func:`.refine._outlier_limits`).

    Args:
        residual: ``(N, C, J)`` pixels; support: ``(N, C, J)``.
    """
    return _median_noise(*_scaled_residuals(residual, support))


def view_noises_px(residual: np.ndarray, support: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` :func:`view_noise_px` of the first ``first`` joints (a layout's body) and ``(N,)`` of all
    of them, the per-joint scaling done once."""
    scaled, counted = _scaled_residuals(residual, support)
    return _median_noise(scaled[:, :, :first], counted[:, :, :first]), _median_noise(scaled, counted)


def _scaled_residuals(residual: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, J)`` each supporting view's error scaled to the noise's Rayleigh scale (NaN elsewhere), and
    ``(N, C, J)`` where it counts."""
    n = support.sum(1)
    share = np.sqrt(np.maximum(2 * n - 3, 1) / np.maximum(2 * n, 1))  # (N, J)
    scaled = residual / share[:, None]
    counted = support & np.isfinite(scaled)
    return np.where(counted, scaled, np.nan), counted


def _median_noise(scaled: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """``(N,)`` the Rayleigh scale of ``(N, C, J)`` scaled errors where ``counted``; NaN where none."""
    flat = scaled.reshape(len(scaled), -1).T  # (C·J, N), NaN where not counted
    count = counted.reshape(len(scaled), -1).sum(1)  # (N,)
    median = np.where(count > 0, _nanmedian(flat, np.maximum(count, 1)), np.nan)
    return median / math.sqrt(2.0 * math.log(2.0))


def point_covariance(points: np.ndarray, projections: np.ndarray, support: np.ndarray,
                     noise_px: np.ndarray) -> np.ndarray:
    """``(N, K, 3, 3)`` covariance (m²) of triangulated points from their supporting views' pixel noise.

    Args:
        points: ``(N, K, 3)`` metres; projections: ``(N, C, 3, 4)`` world → pixels.
        support: ``(N, C, K)`` the views that fixed each point; noise_px: ``(N,)`` per image axis.
    Returns:
        the inverse of ``Σ_views Jᵀ J / σ²`` (``J`` the ``2x3`` Jacobian of the view's projection at the
        point); infinite where fewer than two views fix the point.
    """
    P = np.where(np.isfinite(projections), projections, 0.0)[:, :, None]  # (N, C, 1, 3, 4); a missing view 0
    X = np.concatenate([points, np.ones_like(points[..., :1])], -1)[:, None, :, :, None]  # (N, 1, K, 4, 1)
    uvw = (P @ X)[..., 0]  # (N, C, K, 3)
    w = uvw[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / w
        jac = (P[..., :2, :3] - uv[..., None] * P[..., 2:3, :3]) / w[..., None]  # (N, C, K, 2, 3)
    use = support & (w[..., 0] > 1e-9) & np.isfinite(jac).all((-1, -2))
    jac = np.where(use[..., None, None], jac, 0.0)
    # (N, K, 3, 3) the information each point gets from its views
    information = (jac.swapaxes(-1, -2) @ jac).sum(1) / np.square(noise_px)[:, None, None, None]
    fixed = (use.sum(1) >= 2) & np.isfinite(information).all((-1, -2))
    eye = np.eye(3)
    safe = np.where(fixed[..., None, None], information, eye)
    return np.where(fixed[..., None, None], np.linalg.inv(safe), np.inf)


def along_variance(points: np.ndarray, directions: np.ndarray, projections: np.ndarray, support: np.ndarray,
                   noise_px: np.ndarray) -> np.ndarray:
    """``(N, K)`` each triangulated point's variance (m²) along a unit direction: ``uᵀ Σ u`` with ``Σ`` the
    :func:`point_covariance` of the point, computed without forming ``Σ`` (the adjugate of the ``3x3``
    information over its determinant, a few dozen element-wise operations instead of a batched inverse
    and two batched products: this runs every frame on a handful of points).

    Args:
        points: ``(N, K, 3)`` metres; directions: ``(N, K, 3)`` unit vectors; projections: ``(N, C, 3, 4)``.
        support: ``(N, C, K)``; noise_px: ``(N,)`` per image axis.
    Returns:
        infinite where fewer than two views fix the point (or their rays are parallel), NaN where a
        point or direction is NaN.
    """
    P = np.where(np.isfinite(projections), projections, 0.0)  # (N, C, 3, 4); a missing view 0
    M = P[:, :, None, :, :3]  # (N, C, 1, 3, 3)
    uvw = (M @ points[:, None, :, :, None])[..., 0] + P[:, :, None, :, 3]  # (N, C, K, 3)
    w = uvw[..., 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_w = 1.0 / w
        uv = uvw[..., :2] * inv_w[..., None]
        jac = (M[..., :2, :] - uv[..., None] * M[..., 2:3, :]) * inv_w[..., None, None]  # (N, C, K, 2, 3)
        use = support & (w > 1e-9) & np.isfinite(jac).all((-1, -2))
        jac = np.where(use[..., None, None], jac, 0.0)
        a = (jac[..., :, :, None] * jac[..., :, None, :]).sum((1, 3))  # (N, K, 3, 3) Σ_views Jᵀ J
        a = a / np.square(noise_px)[:, None, None, None]
        a00, a01, a02, a11, a12, a22 = (a[..., 0, 0], a[..., 0, 1], a[..., 0, 2], a[..., 1, 1], a[..., 1, 2],
                                        a[..., 2, 2])
        c00, c11, c22 = a11 * a22 - a12 * a12, a00 * a22 - a02 * a02, a00 * a11 - a01 * a01
        c01, c02, c12 = a02 * a12 - a01 * a22, a01 * a12 - a02 * a11, a01 * a02 - a00 * a12
        det = a00 * c00 + a01 * c01 + a02 * c02
        x, y, z = directions[..., 0], directions[..., 1], directions[..., 2]
        quad = x * x * c00 + y * y * c11 + z * z * c22 + 2 * (x * y * c01 + x * z * c02 + y * z * c12)
        var = quad / det
    fixed = (use.sum(1) >= 2) & (det > 0) & np.isfinite(det)
    out: np.ndarray = np.where(fixed, var, np.inf)
    return np.where(np.isnan(var) & fixed, np.nan, out)


def hold_foot_lengths(joints: np.ndarray, projections: np.ndarray, support: np.ndarray, residual: np.ndarray,
                      pairs: np.ndarray, lengths: np.ndarray, sigma: float = FOOT_LENGTH_SIGMA,
                      unit_variance: np.ndarray | None = None,
                      noise_px: np.ndarray | None = None, asymmetry: float | None = None) -> np.ndarray:
    """Heel and toe moved along their line so their distance fuses the measurement with ``lengths``
    (and, with ``asymmetry``, with the other foot's measurement).

    Args:
        joints: ``(N, J, 3)`` refined joints, metres; projections: ``(N, C, 3, 4)``.
        support: ``(N, C, J)`` views that support each joint; residual: ``(N, C, J)`` their reprojection
            errors (pixels), whose median gives the frame's localisation noise.
        pairs: ``(F, 2)`` heel, toe indices; lengths: ``(F,)`` the performer's (NaN: unknown, untouched).
        sigma: the spread of a real foot's length, metres.
        unit_variance: ``(N, 2F)`` when already known, the heels' and toes' variances along their feet for
            a localisation noise of one pixel (:func:`along_variance`; the variance grows as its square).
        noise_px: ``(N,)`` when already known, :func:`view_noise_px` of ``residual`` and ``support``.
        asymmetry: with two pairs (left, right), the spread of the two feet's true lengths' difference,
            metres (:data:`FOOT_ASYMMETRY`): each foot's prior is then its ``lengths`` (variance
            ``sigma²``) fused with the other foot's measured length in the same frame (variance: that
            measurement's, plus ``asymmetry² + 2 sigma²``), so a foot is held before any length is known
            too. None: ``lengths`` alone.
    Returns:
        ``(N, J, 3)`` a copy with the heels and toes moved (a pair with an end fixed by fewer than two
        views, or nothing to fuse with, as it was).
    """
    out = joints.copy()
    symmetric = asymmetry is not None and len(pairs) == 2
    if not len(pairs) or not (symmetric or np.isfinite(lengths).any()):
        return out
    noise = view_noise_px(residual, support) if noise_px is None else noise_px  # (N,)
    ends = pairs.reshape(-1)  # heel, toe, heel, toe ...
    n, f = joints.shape[0], len(pairs)
    heel, toe = joints[:, pairs[:, 0]], joints[:, pairs[:, 1]]  # (N, F, 3)
    measured = np.sqrt(np.square(toe - heel).sum(-1))  # (N, F)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (toe - heel) / measured[..., None]  # heel → toe
        if unit_variance is None:
            unit_variance = along_variance(joints[:, ends], np.repeat(u, 2, axis=1), projections,
                                           support[:, :, ends], np.ones(n))
        # (N, F, 2) each end's variance along the foot's line; the measured length's is their sum
        along = unit_variance.reshape(n, f, 2) * np.square(noise)[:, None, None]
        var = along.sum(-1)  # (N, F)
        if asymmetry is not None and symmetric:
            prior, prior_var = _with_other_foot(measured, var, lengths, sigma, asymmetry)  # (N, F)
        else:
            prior, prior_var = np.broadcast_to(lengths, measured.shape), np.full(measured.shape, sigma ** 2)
        target = (prior_var * measured + var * prior) / (prior_var + var)
        step = (target - measured) / var  # Lagrange multiplier of the length, the ends held to the line
    ok = (np.isfinite(prior) & np.isfinite(var) & (var > 0) & np.isfinite(step)
          & np.isfinite(heel).all(-1) & np.isfinite(toe).all(-1))
    step = np.where(ok, step, 0.0)
    along = np.where(ok[..., None], along, 0.0)
    out[:, pairs[:, 0]] = heel - (step * along[..., 0])[..., None] * u
    out[:, pairs[:, 1]] = toe + (step * along[..., 1])[..., None] * u
    return out


def _with_other_foot(measured: np.ndarray, var: np.ndarray, lengths: np.ndarray, sigma: float,
                     asymmetry: float) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 2)`` each foot's prior length (metres) and its variance (m²): the learnt ``lengths (2,)``
    (variance ``sigma²``; NaN: unknown) fused with the other foot's ``measured (N, 2)`` length of variance
    ``var (N, 2)`` plus the feet's difference (``asymmetry² + 2 sigma²``: their true lengths' and each one's
    toe bend); NaN where neither is there."""
    other, other_var = measured[:, ::-1], var[:, ::-1] + asymmetry ** 2 + 2 * sigma ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        learnt_weight = np.broadcast_to(np.where(np.isfinite(lengths), 1 / sigma ** 2, 0.0), measured.shape)
        seen = np.isfinite(other) & np.isfinite(other_var) & (other_var > 0)
        other_weight = np.where(seen, 1 / other_var, 0.0)
        weight = learnt_weight + other_weight
        prior = (np.where(learnt_weight > 0, lengths, 0.0) * learnt_weight
                 + np.where(other_weight > 0, other, 0.0) * other_weight) / weight
        return np.where(weight > 0, prior, np.nan), 1 / weight
