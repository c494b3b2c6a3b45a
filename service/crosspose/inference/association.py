"""Which detections of different views are the same person: cross-view association by ray consistency.

Each view's detector returns a few candidates (a root pixel — BlazePose's hip centre — and a score).
A candidate's root pixel back-projects to a ray in the world. Two candidates of two views are one
person when their rays pass within ``tolerance`` metres of each other and the point between them lies
inside the capture :class:`Volume`; a third or fourth view joins when its candidate's ray passes within
``tolerance`` of that point, and stays only while its ray passes within ``tolerance`` of the point the
other members' rays give without it. People are ranked by how many views agree, then by summed score; a
person whose root is outside the volume is never returned.

The default volume (:func:`default_volume`) is the floor region seen by at least 3 cameras of the rig,
0–2.5 m high (world Z up, floor at z = 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from crosspose.geometry import CameraRig

#: Metres two candidates' root rays (or a ray and the triangulated root) may miss each other by.
RAY_TOLERANCE_M = 0.25
#: Fewest cameras that must see a floor point for it to be in the default volume.
VOLUME_MIN_VIEWS = 3
#: Height of the default volume, metres.
VOLUME_HEIGHT_M = 2.5
#: Floor grid spacing used to find the default volume, metres.
_FLOOR_STEP_M = 0.05
#: Most floor samples :func:`default_volume` projects (memory: samples x cameras x 2 floats).
_MAX_FLOOR_SAMPLES = 250_000


@dataclass(frozen=True)
class Volume:
    """An axis-aligned box in world metres: ``lo (3,)`` and ``hi (3,)`` corners, ``lo < hi``."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.lo, np.float64), np.asarray(self.hi, np.float64)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError(f"a volume needs finite (3,) corners, got {self.lo!r} and {self.hi!r}")
        if not (lo < hi).all():
            raise ValueError(f"volume min {lo.tolist()} must be below max {hi.tolist()} on every axis")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` metres → ``(...)`` bool: inside the box (borders included; NaN is outside)."""
        p = np.asarray(points, np.float64)
        return np.asarray(((p >= self.lo) & (p <= self.hi)).all(-1))

    def __repr__(self) -> str:
        return f"Volume(min={np.round(self.lo, 2).tolist()}, max={np.round(self.hi, 2).tolist()})"


def default_volume(rig: CameraRig, min_views: int = VOLUME_MIN_VIEWS, height: float = VOLUME_HEIGHT_M,
                   step: float = _FLOOR_STEP_M) -> Volume:
    """The bounding box of the floor (z = 0) seen by at least ``min_views`` cameras, ``0..height`` high.

    The floor is sampled every ``step`` metres (coarser where that would exceed 250 000 samples) over the
    cameras' footprint (their centres' x-y bounding box, widened by its own size on each side); a sample
    is seen by a camera when it projects in front of it and inside its image. ``min_views`` is lowered to
    the rig's camera count for smaller rigs.

    Raises:
        ValueError: no floor sample is seen by that many cameras (the rig does not look at one floor).
    """
    centres = rig.centers[:, :2]
    lo, hi = centres.min(0), centres.max(0)
    reach = np.maximum(hi - lo, 1.0)
    step = max(step, float(np.sqrt(np.prod(3 * reach) / _MAX_FLOOR_SAMPLES)))  # a vast rig: a coarser grid
    xs = np.arange(lo[0] - reach[0], hi[0] + reach[0] + step / 2, step)
    ys = np.arange(lo[1] - reach[1], hi[1] + reach[1] + step / 2, step)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    floor = np.concatenate([grid, np.zeros((len(grid), 1))], 1)
    pixels = np.asarray(rig.project(floor))  # (N, C, 2), NaN behind a camera
    size = np.asarray(rig.image_size, np.float64)
    inside = np.isfinite(pixels).all(-1) & (pixels >= -0.5).all(-1) & (pixels <= size - 0.5).all(-1)
    # Distortion folds far-off points back into the image: also ask the ideal pinhole to agree.
    cam = np.einsum("cij,nj->nci", rig.R, floor) + rig.t
    pinhole = np.einsum("cij,ncj->nci", rig.K, cam)
    with np.errstate(divide="ignore", invalid="ignore"):
        ideal = pinhole[..., :2] / pinhole[..., 2:]
    margin = size  # a lens may push points by up to an image size, never fold them in from infinity
    inside &= (cam[..., 2] > 0) & (ideal > -margin).all(-1) & (ideal < 2 * margin).all(-1)
    seen = inside.sum(1) >= min(min_views, len(rig))
    if not seen.any():
        raise ValueError(f"no floor point (z = 0) is seen by {min(min_views, len(rig))} cameras of the rig")
    xy = grid[seen]
    return Volume(np.array([*xy.min(0), 0.0]), np.array([*xy.max(0), float(height)]))


def root_rays(rig: CameraRig, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, 2)`` observed pixels → ``origins (C, 3)`` and unit ``directions (N, C, 3)`` in the world.

    NaN directions where a pixel is NaN or the lens model cannot invert it.
    """
    normalized = np.asarray(rig.undistort(np.asarray(pixels, np.float64), output="normalized"))
    cam = np.concatenate([normalized, np.ones((*normalized.shape[:-1], 1))], -1)
    world = np.einsum("cji,ncj->nci", rig.R, cam)  # R^T d
    return rig.centers, world / np.linalg.norm(world, axis=-1, keepdims=True)


def closest_point(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``(V, 3)`` ray origins and unit directions → ``(3,)`` the point nearest all rays (least squares);
    NaN where the rays are (nearly) parallel and fix no point."""
    proj = np.eye(3) - directions[:, :, None] * directions[:, None, :]  # (V, 3, 3)
    normal = proj.sum(0)
    if np.linalg.cond(normal) > 1e8:
        return np.full(3, np.nan)
    point: np.ndarray = np.linalg.solve(normal, np.einsum("vij,vj->i", proj, origins))
    return point


def ray_distance(point: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``(3,)`` point, ``(..., 3)`` origins and unit directions → ``(...)`` metres from the point to each
    ray; ``inf`` where the point is behind the ray's origin."""
    offset = point - origins
    along = np.einsum("...i,...i->...", offset, directions)
    dist = np.linalg.norm(offset - along[..., None] * directions, axis=-1)
    return np.where(along > 0, dist, np.inf)


@dataclass(frozen=True)
class Person:
    """One person the views agree on.

    Attributes:
        root: ``(3,)`` metres, the point nearest the members' root rays (inside the volume).
        members: per view the index of its candidate that is this person, or -1 (``(C,)`` int).
        score: the members' summed detector scores.
        spread: metres, the largest distance from ``root`` to a member's ray.
    """

    root: np.ndarray
    members: np.ndarray
    score: float
    spread: float

    @property
    def num_views(self) -> int:
        return int((self.members >= 0).sum())


def associate(rig: CameraRig, pixels: Sequence[np.ndarray], scores: Sequence[np.ndarray],
              volume: Volume | None, tolerance: float = RAY_TOLERANCE_M) -> list[Person]:
    """The people several views agree on, best first (most views, then highest summed score).

    Args:
        rig: the cameras, ``C`` of them.
        pixels: per view ``(D_c, 2)`` candidate root pixels (image pixels, distorted as observed);
            ``(0, 2)`` for a view without candidates.
        scores: per view ``(D_c,)`` candidate scores in [0, 1].
        volume: where a person's root may be; None: anywhere (a rig whose volume is not known).
        tolerance: metres a member's root ray may miss the person's root by.
    Returns:
        people seen by at least 2 views with their root inside ``volume``; no candidate belongs to two
        of them (of the hypotheses sharing a candidate, the one of most views, then of the tightest
        rays, is kept).
    """
    num_views = len(rig)
    if len(pixels) != num_views or len(scores) != num_views:
        raise ValueError(f"expected candidates for {num_views} views, got {len(pixels)} and {len(scores)}")
    origins = rig.centers
    rays: list[np.ndarray] = []
    for c in range(num_views):
        px = np.asarray(pixels[c], np.float64).reshape(-1, 2)
        if len(px) != len(scores[c]):
            raise ValueError(f"view {c}: {len(px)} candidate pixels but {len(scores[c])} scores")
        full = np.full((len(px), num_views, 2), np.nan)
        full[:, c] = px
        rays.append(root_rays(rig, full)[1][:, c] if len(px) else np.zeros((0, 3)))
    found: dict[tuple[int, ...], Person] = {}
    for a, b in combinations(range(num_views), 2):
        for i in range(len(rays[a])):
            for j in range(len(rays[b])):
                members = np.full(num_views, -1)
                members[a], members[b] = i, j
                person = _grow(members, rays, scores, origins, volume, tolerance)
                if person is not None:
                    found.setdefault(tuple(person.members.tolist()), person)
    # Hypotheses sharing a candidate explain the same person: keep the one of most views whose rays meet
    # most tightly (a ghost mixing two people's candidates meets loosely), then rank the people.
    people: list[Person] = []
    for person in sorted(found.values(), key=lambda p: (-p.num_views, p.spread)):
        if not any(((person.members == p.members) & (person.members >= 0)).any() for p in people):
            people.append(person)
    return sorted(people, key=lambda p: (-p.num_views, -p.score, p.spread))


def mixed(rig: CameraRig, pixels: Sequence[np.ndarray], first: Person, second: Person, volume: Volume | None,
          tolerance: float = RAY_TOLERANCE_M) -> bool:
    """Whether two people :func:`associate` returned could be paired the other way: a candidate of ``first``
    and one of ``second``, in two different views, whose root rays also meet (within ``tolerance``, inside
    ``volume``). Then the views alone cannot tell which candidates are whose (two people close together
    from some view, a candidate whose root is placed between them); each person's own first pose can.

    Args:
        pixels: per view ``(D_c, 2)`` the candidates' root pixels, as given to :func:`associate`.
    """
    origins = rig.centers
    for a in np.flatnonzero(first.members >= 0).tolist():
        for b in np.flatnonzero(second.members >= 0).tolist():
            if a == b:
                continue
            full = np.full((1, len(rig), 2), np.nan)
            full[0, a] = np.asarray(pixels[a], np.float64).reshape(-1, 2)[first.members[a]]
            full[0, b] = np.asarray(pixels[b], np.float64).reshape(-1, 2)[second.members[b]]
            dirs = root_rays(rig, full)[1][0, [a, b]]
            if not np.isfinite(dirs).all():
                continue
            root = closest_point(origins[[a, b]], dirs)
            if np.isfinite(root).all() and (ray_distance(root, origins[[a, b]], dirs) <= tolerance).all() \
                    and _inside(volume, root):
                return True
    return False


def _grow(members: np.ndarray, rays: list[np.ndarray], scores: Sequence[np.ndarray], origins: np.ndarray,
          volume: Volume | None, tolerance: float) -> Person | None:
    """A pair of candidates, if they agree, with every other view's nearest agreeing candidate added."""
    views = np.flatnonzero(members >= 0)
    dirs = np.stack([rays[v][members[v]] for v in views])
    if not np.isfinite(dirs).all():
        return None
    root = closest_point(origins[views], dirs)
    if not np.isfinite(root).all() or (ray_distance(root, origins[views], dirs) > tolerance).any() \
            or not _inside(volume, root):
        return None
    for c in range(len(rays)):
        if members[c] >= 0 or not len(rays[c]):
            continue
        dist = ray_distance(root, origins[c], rays[c])
        dist = np.where(np.isfinite(dist), dist, np.inf)
        best = int(np.argmin(dist))
        if dist[best] <= tolerance:
            members[c] = best
    # Each member must agree with the others without it: a ray that only passes near the root because it
    # pulled the root towards itself (another person's candidate) leaves.
    while (members >= 0).sum() > 2:
        views = np.flatnonzero(members >= 0)
        misses = []
        for v in views:
            rest = views[views != v]
            others = closest_point(origins[rest], np.stack([rays[u][members[u]] for u in rest]))
            miss = float(ray_distance(others, origins[v], rays[v][members[v]]))
            misses.append(miss if np.isfinite(miss) else np.inf)
        worst = int(np.argmax(misses))
        if misses[worst] <= tolerance:
            break
        members[views[worst]] = -1
    views = np.flatnonzero(members >= 0)
    dirs = np.stack([rays[v][members[v]] for v in views])
    root = closest_point(origins[views], dirs)
    spread = ray_distance(root, origins[views], dirs)
    if not np.isfinite(root).all() or (spread > tolerance).any() or not _inside(volume, root):
        return None
    score = float(sum(scores[int(v)][members[v]] for v in views))
    return Person(root, members, score, float(spread.max()))


def _inside(volume: Volume | None, point: np.ndarray) -> bool:
    return volume is None or bool(volume.contains(point))
