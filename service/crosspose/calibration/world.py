"""The world frame of a rig solved up to a similarity: metric scale (a board, a measured length, or a body
height), the floor and origin (a board on the floor, or the performer's feet at rest), and the comparison of
a rig against a reference.

DESIGN's convention: +Z up, the floor at z = 0, metres. Transforms here map solved points ``X`` to world
points ``s · R X + t``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from crosspose.geometry import Camera, CameraRig

#: Height above the floor of foot keypoints when the foot rests (approximate, adult, shod), metres.
FOOT_HEIGHTS = {"heel": 0.04, "bigtoe": 0.025, "smalltoe": 0.025, "footindex": 0.025, "ankle": 0.08}
#: Keypoints that mark the top of the body, best first (for --height and the up direction's sign).
HEAD_TOPS = ("headtop", "head", "nose")
#: A foot point moving less than this between frames (metres per frame) is taken as resting.
REST_SPEED = 0.01
#: Floor inlier distance, metres.
FLOOR_TOLERANCE = 0.03
_LENGTH = re.compile(r"^\s*([^=\s]+)\s*-\s*([^=\s]+)\s*=\s*([0-9.eE+-]+)\s*$")


class WorldError(ValueError):
    """Scale or floor that the data cannot give (the message says what is missing)."""


@dataclass(frozen=True)
class Similarity:
    """``X ↦ s · R X + t``.

    Attributes:
        s: scale; R: ``(3, 3)`` rotation; t: ``(3,)`` translation.
    """

    s: float
    R: np.ndarray
    t: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` points mapped."""
        return self.s * points @ self.R.T + self.t

    def then(self, other: Similarity) -> Similarity:
        """This transform followed by ``other``."""
        return Similarity(other.s * self.s, other.R @ self.R, other.s * other.R @ self.t + other.t)


def fit_similarity(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Similarity:
    """Least-squares ``(N, 3)`` ``src`` → ``dst`` (Umeyama); rigid when ``with_scale`` is False."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    s = float((S * np.diag(D)).sum() / ((a**2).sum() / len(src))) if with_scale else 1.0
    return Similarity(s, R, md - s * R @ ms)


def transform_poses(R: np.ndarray, t: np.ndarray, sim: Similarity) -> tuple[np.ndarray, np.ndarray]:
    """World→camera poses ``(C, 3, 3)``, ``(C, 3)`` re-expressed after the world moves by ``sim``."""
    centres = np.einsum("cji,cj->ci", R, -t)
    R2 = R @ sim.R.T
    c2 = sim.apply(centres)
    return R2, -np.einsum("cij,cj->ci", R2, c2)


def camera_centres(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(C, 3)`` centres ``−Rᵀ t``."""
    return np.einsum("cji,cj->ci", R, -t)


# -- scale ---------------------------------------------------------------------------------------------


def scale_from_length(spec: str, names: list[str], centres: np.ndarray) -> tuple[float, str]:
    """``cam01-cam02=3.20`` (a measured distance between two camera centres, metres) → the factor that makes
    the solved distance that long, and a line for the report.

    Raises:
        WorldError: a malformed spec or an unknown camera (naming the known ones).
    """
    m = _LENGTH.match(spec)
    if m is None:
        raise WorldError(f"--length {spec!r}: use CAMERA-CAMERA=METRES, e.g. {names[0]}-{names[-1]}=3.2")
    a, b, value = m[1], m[2], float(m[3])
    for n in (a, b):
        if n not in names:
            raise WorldError(f"--length {spec!r}: no camera {n!r} (cameras: {', '.join(names)})")
    if not 0 < value < 100:
        raise WorldError(f"--length {spec!r}: the distance must be in metres, in (0, 100)")
    solved = float(np.linalg.norm(centres[names.index(a)] - centres[names.index(b)]))
    return value / solved, f"scale from the measured distance {a}–{b} = {value:g} m"


def _joint_keys(labels: tuple[str, ...]) -> list[str]:
    """Layout joint names reduced to ``l|r`` + part (``LHeel``, ``l_heel``, ``left_heel`` → ``lheel``)."""
    out = []
    for name in labels:
        k = name.lower().replace("_", "").replace("left", "l").replace("right", "r")
        out.append(k)
    return out


def _joints_named(labels: tuple[str, ...], parts: tuple[str, ...]) -> list[int]:
    keys = _joint_keys(labels)
    return [i for i, k in enumerate(keys) if k in parts or (k[1:] in parts and k[0] in "lr")]


def body_height(points: np.ndarray, group: np.ndarray, label: np.ndarray, labels: tuple[str, ...]) -> float:
    """The performer's stature in the points' units: per frame, the head top's distance from the lower
    foot point (plus that point's height), the 90th percentile over frames (standing upright).

    Raises:
        WorldError: the layout has no head or foot keypoints, or they were never seen together.
    """
    heads = next((ix for part in HEAD_TOPS if (ix := _joints_named(labels, (part,)))), [])
    feet = _joints_named(labels, tuple(FOOT_HEIGHTS))
    if not heads or not feet:
        raise WorldError(f"--height needs head and foot keypoints; the layout has {', '.join(labels)}")
    heights = []
    for g in np.unique(group):
        rows = group == g
        head = points[rows & np.isin(label, heads)]
        foot = points[rows & np.isin(label, feet)]
        head, foot = head[np.isfinite(head[:, 0])], foot[np.isfinite(foot[:, 0])]
        if len(head) and len(foot):
            heights.append(np.linalg.norm(head[:1] - foot, axis=1).max())
    if len(heights) < 5:
        raise WorldError("--height: the head and feet were seen together in fewer than 5 frames")
    return float(np.percentile(heights, 90))


# -- floor ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """A floor found in solved (metric) coordinates.

    Attributes:
        frame: the similarity (scale 1) that maps solved points to the world (floor z = 0, +Z up).
        source: how it was found, for the report.
        warnings: weak evidence the user should know about.
    """

    frame: Similarity
    source: str
    warnings: tuple[str, ...] = ()


def _frame_from_axes(up: np.ndarray, forward: np.ndarray, origin: np.ndarray) -> Similarity:
    z = up / np.linalg.norm(up)
    x = forward - z * (forward @ z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])  # rows: world axes in solved coordinates
    return Similarity(1.0, R, -R @ origin)


def _track(
    points: np.ndarray, group: np.ndarray, label: np.ndarray, joints: list[int], frames: np.ndarray
) -> np.ndarray:
    """``(N, len(joints), 3)`` the joints' points per frame (NaN where missing)."""
    out = np.full((frames.size, len(joints), 3), np.nan)
    for k, j in enumerate(joints):
        rows = np.flatnonzero(label == j)
        out[np.searchsorted(frames, group[rows]), k] = points[rows]
    return out


def body_up(points: np.ndarray, group: np.ndarray, label: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """``(3,)`` unit vector: the mean direction from the ankles' midpoint to the hips' midpoint (the legs'
    axis, within ~7° of vertical on the Pose2Sim take, where the trunk leans 20°).

    Raises:
        WorldError: the layout has no hips or ankles.
    """
    hips, ankles = _joints_named(labels, ("hip",)), _joints_named(labels, ("ankle",))
    if len(hips) != 2 or len(ankles) != 2:
        raise WorldError(f"the up direction needs both hips and ankles; the layout has {', '.join(labels)}")
    frames = np.unique(group)
    v = _track(points, group, label, hips, frames).mean(1) - _track(
        points, group, label, ankles, frames
    ).mean(1)
    v = v[np.isfinite(v).all(1)]
    if len(v) < 5:
        raise WorldError("hips and ankles were seen together in fewer than 5 frames: no up direction")
    u = (v / np.linalg.norm(v, axis=1, keepdims=True)).mean(0)
    return u / np.linalg.norm(u)


def floor_from_feet(
    points: np.ndarray, group: np.ndarray, label: np.ndarray, labels: tuple[str, ...], forward: np.ndarray
) -> Floor:
    """The floor under the performer's supporting feet (metric points).

    The legs' axis (:func:`body_up`) gives a first up direction. In each frame, the foot keypoints that
    rest (move less than :data:`REST_SPEED`) and lie within :data:`FLOOR_TOLERANCE` of the frame's lowest
    foot point along it are taken as on the floor, each raised by its :data:`FOOT_HEIGHTS` — a foot held
    still in the air is not. A plane through them gives the floor when they spread over at least 0.5 m
    and it stays within 25° of the legs' axis; otherwise the legs' axis is the up direction (warned:
    good to a few degrees). The origin is the supporting feet's centre on the floor; +X is ``forward``
    (e.g. the first camera's view direction) laid flat.

    Raises:
        WorldError: no hips, ankles or foot keypoints in the layout, or fewer than 20 resting foot points.
    """
    keys = _joint_keys(labels)
    foot = _joints_named(labels, tuple(FOOT_HEIGHTS))
    if not foot:
        raise WorldError(f"the floor from the feet needs foot keypoints; the layout has {', '.join(labels)}")
    up = body_up(points, group, label, labels)
    frames = np.unique(group)
    track = _track(points, group, label, foot, frames)  # (N, F, 3)
    lift = np.array([FOOT_HEIGHTS[k[1:] if k[1:] in FOOT_HEIGHTS else k] for k in (keys[j] for j in foot)])
    speed = np.linalg.norm(np.diff(track, axis=0), axis=2)
    still = np.zeros(track.shape[:2], bool)
    still[1:] |= speed < REST_SPEED
    still[:-1] |= speed < REST_SPEED
    sole = track @ up - lift  # (N, F) height of the floor under each point, along the legs' axis
    lowest = np.min(np.where(np.isfinite(sole), sole, np.inf), axis=1, keepdims=True)
    support = still & (sole - lowest < FLOOR_TOLERANCE)
    pts, heights = track[support], np.broadcast_to(lift, support.shape)[support]
    if len(pts) < 20:
        raise WorldError(
            f"only {len(pts)} resting foot points: the feet must rest on the floor in part of "
            "the take (stand still for a second), or give the floor with a board"
        )
    floor_pts = pts - up * heights[:, None]
    centre = floor_pts.mean(0)
    _, sv, vt = np.linalg.svd(floor_pts - centre)
    spread = float(sv[1] / np.sqrt(len(pts)) * 2)  # ~ the extent along the plane's narrower direction
    n = vt[2] if vt[2] @ up > 0 else -vt[2]
    warnings = []
    if spread >= 0.5 and np.degrees(np.arccos(np.clip(n @ up, -1, 1))) < 25:
        how = f"a plane through the supporting feet ({len(pts)} points over {spread:.1f} m)"
    else:
        n = up
        how = "the legs' axis as up, the supporting feet for the height"
        warnings.append(
            f"the supporting feet cover {spread:.2f} m (under 0.5 m): up comes from the legs' axis, "
            "good to a few degrees; pause in several places of the volume, or lay a board on the "
            "floor (--floor board)"
        )
    origin = centre - n * ((centre - floor_pts) @ n).mean()
    return Floor(_frame_from_axes(n, forward, origin), how, tuple(warnings))


def floor_from_board(board_points: np.ndarray, solved: np.ndarray, forward_hint: str = "board") -> Floor:
    """The floor from a board lying on it: ``board_points`` ``(K, 3)`` in the board frame (z = 0), ``solved``
    ``(K, 3)`` the same corners solved (metric). World +X is the board's x, +Z the side of the board's face
    (toward the cameras), the origin corner 0."""
    fit = fit_similarity(board_points, solved, with_scale=False)  # board → solved
    # Board frame: x right, y down the printed page, z into the board; the world flips y and z.
    flip = np.diag([1.0, -1.0, -1.0])
    R = flip @ fit.R.T
    return Floor(Similarity(1.0, R, -R @ fit.t), f"the {forward_hint} on the floor")


# -- comparison ----------------------------------------------------------------------------------------


def _angle(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def compare_rigs(
    rig: CameraRig,
    reference: CameraRig,
    points: np.ndarray | None = None,
    pixels: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> dict[str, object]:
    """How far ``rig`` is from ``reference`` (same camera names, any order).

    Per camera: rotation after the best common rotation (orientations only), centre after the best
    similarity of the centres, centre after the best rigid fit (scale as solved), and centre as given (no
    fit: only meaningful when both share a world frame). With ``pixels`` ``(N, C, 2)`` (rig order) and
    ``weights`` ``(N, C)``, the points triangulated with each rig are compared after the similarity.
    """
    missing = [n for n in rig.names if n not in reference.names]
    if missing:
        raise WorldError(
            f"--reference has no camera {', '.join(missing)} (it has {', '.join(reference.names)})"
        )
    ref = reference.subset(rig.names)
    M = sum(r.T @ s for r, s in zip(ref.R, rig.R, strict=True))
    U, _, Vt = np.linalg.svd(M)
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    G = U @ D @ Vt
    rot = [_angle(s @ G.T @ r.T) for s, r in zip(rig.R, ref.R, strict=True)]
    sim = fit_similarity(rig.centers, ref.centers)
    rigid = fit_similarity(rig.centers, ref.centers, with_scale=False)
    out: dict[str, object] = {
        "cameras": {
            name: {
                "rotation_deg": round(rot[c], 3),
                "centre_mm_similarity": round(
                    1000 * float(np.linalg.norm(sim.apply(rig.centers[c]) - ref.centers[c])), 1
                ),
                "centre_mm_rigid": round(
                    1000 * float(np.linalg.norm(rigid.apply(rig.centers[c]) - ref.centers[c])), 1
                ),
                "centre_mm_as_is": round(1000 * float(np.linalg.norm(rig.centers[c] - ref.centers[c])), 1),
                "rotation_deg_as_is": round(_angle(rig.R[c] @ ref.R[c].T), 3),
            }
            for c, name in enumerate(rig.names)
        },
        "similarity_scale": round(sim.s, 5),
    }
    if pixels is not None:
        ours, ok_a = rig.triangulate(pixels, weights)
        theirs, ok_b = ref.triangulate(pixels, weights)
        ok = np.asarray(ok_a) & np.asarray(ok_b)
        d = np.linalg.norm(sim.apply(np.asarray(ours)[ok]) - np.asarray(theirs)[ok], axis=-1)
        out["points_mm"] = {
            "median": round(1000 * float(np.median(d)), 1),
            "mean": round(1000 * float(np.mean(d)), 1),
            "count": int(d.size),
        }
    return out


def rig_from_poses(
    intrinsics: CameraRig, R: np.ndarray, t: np.ndarray, metadata: dict[str, object]
) -> CameraRig:
    """The intrinsics' cameras with these world→camera poses."""
    return CameraRig(
        [
            Camera(c.name, c.K, c.dist, R[i], t[i], c.image_size, dict(c.metadata))
            for i, c in enumerate(intrinsics)
        ],
        metadata,
    )
