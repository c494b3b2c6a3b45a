"""Extrinsics of a rig from what its cameras see together (a performer's joints, or board corners), with the
intrinsics known: relative poses from essential matrices, the other cameras registered by PnP, then one
robust bundle adjustment over every camera and sighting. The result is up to a similarity (rotation,
translation, scale): :mod:`crosspose.calibration.world` fixes scale, floor and origin.

Refuses (``ExtrinsicsError``, naming the camera and what is missing) rather than return a rig the data
cannot constrain; what is merely weak (little motion, few shared sightings) becomes a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from crosspose.calibration.bundle import BundleResult, Observations, bundle_adjust, triangulate_normalized
from crosspose.geometry import CameraRig

log = logging.getLogger(__name__)

#: Sightings a camera must share with the cameras posed before it (PnP) or with its pair partner.
MIN_SHARED = 40
#: Essential-matrix and PnP inlier threshold, pixels (body keypoints are several pixels off).
PAIR_THRESHOLD_PX = 10.0
#: Sightings left further than this from their point after a solve are dropped before the next one.
OUTLIER_PX = 8.0
#: How far the performer's centre must wander, as a fraction of the body's own size, before the poses are
#: trusted; below ``REFUSE_MOTION`` the take is refused. Measured on the Pose2Sim take (reference
#: intrinsics, keypoints): 20 frames move 0.12 body sizes and solve 5.6° / 146 mm off; 40 frames 0.19,
#: 1.3° / 79 mm; 60 frames 0.24, 1.0° / 61 mm; 100 frames 0.38, 0.8° / 35 mm.
MIN_MOTION = 0.3
REFUSE_MOTION = 0.15


class ExtrinsicsError(ValueError):
    """Data that cannot constrain the extrinsics (the message names the camera and what is missing)."""


@dataclass(frozen=True, eq=False)
class Sightings:
    """What the cameras saw: ``P`` points (a joint in a frame, a board corner in a frame) in ``C`` cameras.

    Attributes:
        pixels: ``(P, C, 2)`` image pixels (distorted, as detected); NaN where unseen.
        weight: ``(P, C)`` confidence in [0, 1]; 0 where unseen.
        group: ``(P,)`` which frame each point belongs to (motion and per-frame checks).
        label: ``(P,)`` which joint or corner each point is (index into ``labels``).
        labels: names of the joints or corners.
    """

    pixels: np.ndarray
    weight: np.ndarray
    group: np.ndarray
    label: np.ndarray
    labels: tuple[str, ...]

    @classmethod
    def from_keypoints(
        cls, keypoints: np.ndarray, joints: tuple[str, ...], min_confidence: float = 0.5
    ) -> Sightings:
        """From ``(N, C, J, 3)`` ``[x, y, confidence]`` detections (NaN or confidence 0 where missing);
        joints below ``min_confidence`` are left out."""
        if keypoints.ndim != 4 or keypoints.shape[-1] != 3 or keypoints.shape[2] != len(joints):
            raise ValueError(f"keypoints must be (N, C, J={len(joints)}, 3), got {keypoints.shape}")
        n, c, j, _ = keypoints.shape
        kp = keypoints.transpose(0, 2, 1, 3).reshape(n * j, c, 3)
        ok = np.isfinite(kp).all(-1) & (kp[..., 2] >= min_confidence)
        pixels = np.where(ok[..., None], kp[..., :2], np.nan)
        weight = np.where(ok, kp[..., 2], 0.0)
        return cls(pixels, weight, np.repeat(np.arange(n), j), np.tile(np.arange(j), n), tuple(joints))

    @property
    def num_cameras(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def seen(self) -> np.ndarray:
        """``(P, C)`` bool."""
        return self.weight > 0

    def shared(self) -> np.ndarray:
        """``(C, C)`` how many points each pair of cameras sees together (diagonal: each camera's count)."""
        s = self.seen.astype(np.int64)
        return s.T @ s


@dataclass(frozen=True, eq=False)
class RelativeSolve:
    """Poses and points in an arbitrary similarity frame (camera ``reference`` at the origin).

    Attributes:
        R: ``(C, 3, 3)``, t: ``(C, 3)`` world→camera.
        points: ``(P, 3)`` (NaN where not triangulated).
        residuals_px: ``(C,)`` median reprojection error per camera after the final solve.
        rms_px: ``(C,)`` RMS of the inlier sightings per camera.
        inliers: ``(P, C)`` the sightings the final solve kept.
        warnings: weak data the caller should report.
    """

    R: np.ndarray
    t: np.ndarray
    points: np.ndarray
    residuals_px: np.ndarray
    rms_px: np.ndarray
    inliers: np.ndarray
    warnings: list[str] = field(default_factory=list)


def normalized_sightings(sightings: Sightings, intrinsics: CameraRig) -> np.ndarray:
    """``(P, C, 2)`` undistorted normalized coordinates of every sighting (NaN where unseen)."""
    out = np.full(sightings.pixels.shape, np.nan)
    for c, cam in enumerate(intrinsics):
        rows = np.flatnonzero(sightings.seen[:, c])
        if rows.size:
            pts = sightings.pixels[rows, c].reshape(-1, 1, 2).astype(np.float64)
            out[rows, c] = cv2.undistortPoints(pts, cam.K, cam.dist).reshape(-1, 2)
    return out


def _check_coverage(sightings: Sightings, names: list[str]) -> None:
    shared = sightings.shared()
    for c, name in enumerate(names):
        others = np.delete(shared[c], c)
        if shared[c, c] == 0:
            raise ExtrinsicsError(
                f"camera {name}: no usable sighting at all (nothing detected above the "
                "confidence threshold); check that it sees the volume"
            )
        if others.max() < MIN_SHARED:
            best = int(np.argmax(np.where(np.arange(len(names)) == c, -1, shared[c])))
            raise ExtrinsicsError(
                f"camera {name}: shares at most {int(others.max())} sightings with another camera "
                f"({names[best]}); at least {MIN_SHARED} are needed: make the performer (or board) visible "
                "to it and its neighbours at the same time"
            )


def _pair_pose(xa: np.ndarray, xb: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative pose of camera b from a (``x_b = R x_a + t``, ``|t| = 1``) and the inlier mask.

    MAGSAC with a wide threshold: body keypoints are several pixels off, and a 3 px RANSAC threshold keeps
    a third of them and can settle on a pose 15° wrong (measured on the Pose2Sim take)."""
    E, mask = cv2.findEssentialMat(
        xa,
        xb,
        np.eye(3),
        method=cv2.USAC_MAGSAC,
        prob=0.9999,
        threshold=PAIR_THRESHOLD_PX / focal,
        maxIters=5000,
    )
    if E is None:
        return np.eye(3), np.zeros(3), np.zeros(len(xa), bool)
    _, R, t, mask = cv2.recoverPose(E[:3], xa, xb, np.eye(3), mask=mask)
    return R, t.ravel(), mask.ravel() > 0


def _observations(norm: np.ndarray, mask: np.ndarray, weight: np.ndarray) -> Observations:
    pt, cam = np.nonzero(mask)
    return Observations(cam, pt, norm[pt, cam], weight[pt, cam])


def _adjust(
    rvecs: np.ndarray,
    tvecs: np.ndarray,
    points: np.ndarray,
    norm: np.ndarray,
    use: np.ndarray,
    weight: np.ndarray,
    focal: np.ndarray,
    fixed: tuple[int, ...],
    rescale: bool = True,
) -> BundleResult:
    """Bundle-adjust the posed cameras (finite ``rvecs``) but ``fixed`` on the sightings ``use`` ``(P, C)`` of
    points seen by two of them; returns full-size arrays (unposed cameras stay NaN). With ``rescale`` the
    result is scaled so that the furthest camera centre is at 1 (the free scale stays comparable between
    solves); without, the fixed cameras keep the world as it is."""
    posed = np.flatnonzero(np.isfinite(rvecs[:, 0]))
    mask = use[:, posed] & np.isfinite(points[:, :1])
    mask &= mask.sum(1, keepdims=True) >= 2
    obs = _observations(norm[:, posed], mask, weight[:, posed])
    start = np.where(np.isfinite(points), points, 0.0)
    held = tuple(int(np.flatnonzero(posed == f)[0]) for f in fixed)
    res = bundle_adjust(rvecs[posed], tvecs[posed], start, obs, focal[posed], fixed_cameras=held)
    r, t = rvecs.copy(), tvecs.copy()
    r[posed], t[posed] = res.rvecs, res.tvecs
    scale = max(np.linalg.norm(res.tvecs, axis=1).max(), 1e-12) if rescale else 1.0
    pts = np.where(mask.any(1, keepdims=True), res.points, np.nan) / scale
    full_res = np.full(use.shape, np.nan)
    full_res[obs.point, posed[obs.camera]] = res.residuals_px
    return BundleResult(r, t / scale, pts, full_res, res.cost, res.iterations)


def _initial_poses(
    norm: np.ndarray, seen: np.ndarray, weight: np.ndarray, focal: np.ndarray, names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Poses of every camera in the frame of the best-connected pair's first camera, and points: the pair
    from its essential matrix, then each camera by PnP on the points seen so far, each step bundle-adjusted
    (incremental structure from motion)."""
    c = seen.shape[1]
    best: tuple[int, int, int] = (0, 1, -1)
    pair: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for a in range(c):
        for b in range(a + 1, c):
            both = seen[:, a] & seen[:, b]
            if both.sum() < MIN_SHARED:
                continue
            R, t, inl = _pair_pose(norm[both, a], norm[both, b], float(np.mean(focal[[a, b]])))
            pair[a, b] = (R, t, np.flatnonzero(both)[inl])
            if inl.sum() > best[2]:
                best = (a, b, int(inl.sum()))
    a, b, _ = best
    if (a, b) not in pair:
        raise ExtrinsicsError(
            f"no two cameras share enough sightings to start from (at least {MIN_SHARED} needed)"
        )
    R, t, rows = pair[a, b]
    p = norm.shape[0]
    rvecs = np.full((c, 3), np.nan)
    tvecs = np.full((c, 3), np.nan)
    rvecs[a], tvecs[a] = 0.0, 0.0
    rvecs[b], tvecs[b] = cv2.Rodrigues(R)[0].ravel(), t
    in_pair = np.zeros(seen.shape, bool)
    in_pair[rows, a] = in_pair[rows, b] = True
    points = triangulate_normalized(rvecs, tvecs, _observations(norm, in_pair, weight), p)
    res = _adjust(rvecs, tvecs, points, norm, seen, weight, focal, (a,))
    rvecs, tvecs, points = res.rvecs, res.tvecs, _drop_far(res, points_of=res.points)
    while np.isnan(rvecs).any():
        posed = np.isfinite(rvecs[:, 0])
        known = np.isfinite(points[:, 0])
        counts = [(seen[:, k] & known).sum() if not posed[k] else -1 for k in range(c)]
        k = int(np.argmax(counts))
        rows_k = np.flatnonzero(seen[:, k] & known)
        if rows_k.size < MIN_SHARED:
            raise ExtrinsicsError(
                f"camera {names[k]}: only {rows_k.size} of its sightings are of points the cameras posed so "
                f"far ({', '.join(n for n, ok in zip(names, posed, strict=True) if ok)}) also see; at least "
                f"{MIN_SHARED} are needed: it needs more overlap with them"
            )
        rvecs[k], tvecs[k] = _place(points[rows_k], norm[rows_k, k], focal[k], names[k])
        posed[k] = True
        points = triangulate_normalized(rvecs, tvecs, _observations(norm, seen, weight), p)
        res = _adjust(rvecs, tvecs, points, norm, seen, weight, focal, (a,))
        rvecs, tvecs, points = res.rvecs, res.tvecs, _drop_far(res, points_of=res.points)
    return rvecs, tvecs, points, a


def _drop_far(res: BundleResult, points_of: np.ndarray) -> np.ndarray:
    """The points, NaN where a sighting of them is more than :data:`OUTLIER_PX` off (triangulated again
    later)."""
    far = np.nan_to_num(res.residuals_px, nan=0.0) > OUTLIER_PX
    out = points_of.copy()
    out[far.any(1)] = np.nan
    return out


def solve_relative(sightings: Sightings, intrinsics: CameraRig, rounds: int = 2) -> RelativeSolve:
    """Poses of every camera of ``intrinsics`` from ``sightings`` (same camera order), up to a similarity.

    Raises:
        ExtrinsicsError: a camera sees too little, or too little of what the others see.
    """
    names = intrinsics.names
    if sightings.num_cameras != len(names):
        raise ValueError(f"sightings have {sightings.num_cameras} cameras, the intrinsics {len(names)}")
    _check_coverage(sightings, names)
    norm = normalized_sightings(sightings, intrinsics)
    focal = 0.5 * (intrinsics.K[:, 0, 0] + intrinsics.K[:, 1, 1])
    seen, weight = sightings.seen, sightings.weight
    rvecs, tvecs, _, reference = _initial_poses(norm, seen, weight, focal, names)
    return _final_solve(rvecs, tvecs, norm, sightings, focal, (reference,), True, rounds, names)


def _final_solve(
    rvecs: np.ndarray,
    tvecs: np.ndarray,
    norm: np.ndarray,
    sightings: Sightings,
    focal: np.ndarray,
    fixed: tuple[int, ...],
    rescale: bool,
    rounds: int,
    names: list[str],
) -> RelativeSolve:
    """``rounds`` of triangulate → bundle-adjust → drop sightings over :data:`OUTLIER_PX`, and the result."""
    seen, weight = sightings.seen, sightings.weight
    inliers = seen.copy()
    p = seen.shape[0]
    res: BundleResult | None = None
    for _ in range(rounds):
        points = triangulate_normalized(rvecs, tvecs, _observations(norm, inliers, weight), p)
        res = _adjust(rvecs, tvecs, points, norm, inliers, weight, focal, fixed, rescale)
        rvecs, tvecs, points = res.rvecs, res.tvecs, res.points
        inliers &= ~(np.nan_to_num(res.residuals_px, nan=np.inf) > OUTLIER_PX)
        inliers[inliers.sum(1) < 2] = False
    assert res is not None
    err = np.where(inliers, res.residuals_px, np.nan)
    med = np.nanmedian(err, axis=0)
    rms = np.sqrt(np.nanmean(err**2, axis=0))
    R = np.stack([cv2.Rodrigues(r)[0] for r in rvecs])
    warnings = _motion_warnings(points, sightings) + _overlap_warnings(inliers, names)
    return RelativeSolve(R, tvecs, points, med, rms, inliers, warnings)


def refine_camera(rig: CameraRig, sightings: Sightings, camera: str, rounds: int = 2) -> RelativeSolve:
    """Re-solve one camera's pose (a bumped camera) against the others, whose poses and world (scale,
    floor, origin) are kept: points triangulated from the others, the camera placed by PnP on them, then
    bundle-adjusted with every other camera held.

    Raises:
        ExtrinsicsError: an unknown camera, or one that shares too little with the others (named).
    """
    names = rig.names
    if camera not in names:
        raise ExtrinsicsError(f"no camera {camera!r} to refine (cameras: {', '.join(names)})")
    k = names.index(camera)
    others = [c for c in range(len(names)) if c != k]
    norm = normalized_sightings(sightings, rig)
    focal = 0.5 * (rig.K[:, 0, 0] + rig.K[:, 1, 1])
    seen, weight = sightings.seen, sightings.weight
    rvecs = np.stack([cv2.Rodrigues(R)[0].ravel() for R in rig.R])
    tvecs = rig.t.astype(float).copy()
    rvecs[k] = tvecs[k] = np.nan
    points = triangulate_normalized(rvecs, tvecs, _observations(norm, seen, weight), seen.shape[0])
    rows = np.flatnonzero(seen[:, k] & np.isfinite(points[:, 0]))
    if rows.size < MIN_SHARED:
        raise ExtrinsicsError(
            f"camera {camera}: only {rows.size} of its sightings are of points two other cameras also see; "
            f"at least {MIN_SHARED} are needed to refine it against them"
        )
    rvecs[k], tvecs[k] = _place(points[rows], norm[rows, k], focal[k], camera)
    return _final_solve(rvecs, tvecs, norm, sightings, focal, tuple(others), False, rounds, names)


def _place(points: np.ndarray, normalized: np.ndarray, focal: float,
           name: str) -> tuple[np.ndarray, np.ndarray]:
    """One camera's ``(rvec (3,), tvec (3,))`` from the 3D points ``(N, 3)`` it sees at the normalized image
    points ``(N, 2)`` (RANSAC PnP, inliers within the pair threshold in pixels at focal length ``focal``).

    Raises:
        ExtrinsicsError: too few consistent sightings to place camera ``name``.
    """
    ok, rvec, tvec, inl = cv2.solvePnPRansac(
        points.astype(np.float64),
        normalized.astype(np.float64),
        np.eye(3),
        None,
        reprojectionError=PAIR_THRESHOLD_PX / focal,
        iterationsCount=1000,
        flags=cv2.SOLVEPNP_EPNP,
    )
    if not ok or inl is None or len(inl) < MIN_SHARED // 2:
        raise ExtrinsicsError(
            f"camera {name}: could not be placed from the points the other cameras see "
            f"({0 if inl is None else len(inl)} consistent sightings)"
        )
    return rvec.ravel(), tvec.ravel()


def motion_ratio(points: np.ndarray, group: np.ndarray) -> float:
    """How far the per-frame centre wanders (RMS about its mean) over the body's own size (median RMS
    spread of a frame's points about its centre): scale-free, so it is measured before the scale is known."""
    ok = np.isfinite(points[:, 0])
    groups = np.unique(group[ok])
    if groups.size < 2:
        return 0.0
    centres = np.stack([points[ok & (group == g)].mean(0) for g in groups])
    spread = np.median(
        [np.sqrt(((points[ok & (group == g)] - centres[i]) ** 2).sum(1).mean()) for i, g in enumerate(groups)]
    )
    wander = np.sqrt(((centres - centres.mean(0)) ** 2).sum(1).mean())
    return float(wander / max(spread, 1e-12))


def _motion_warnings(points: np.ndarray, sightings: Sightings) -> list[str]:
    """A warning when the take moved little; ``ExtrinsicsError`` when it moved too little to use."""
    ratio = motion_ratio(points, sightings.group)
    what = (
        f"the points' centre moved {ratio:.2f} body sizes over the take ({MIN_MOTION} or more are needed "
        "for poses good to ~1°; the reprojection error can look fine while the cameras are degrees off)"
    )
    if ratio < REFUSE_MOTION:
        raise ExtrinsicsError(
            f"too little motion to place the cameras: {what}. Walk the whole volume (or "
            "move the board through it) for longer"
        )
    if ratio >= MIN_MOTION:
        return []
    return [f"little motion: {what}. Walk the whole volume (or move the board through it)"]


def _overlap_warnings(inliers: np.ndarray, names: list[str]) -> list[str]:
    out = []
    for c, name in enumerate(names):
        n = int(inliers[:, c].sum())
        if n < 3 * MIN_SHARED:
            out.append(
                f"camera {name}: only {n} sightings kept after the solve; its pose rests on little data"
            )
    return out
