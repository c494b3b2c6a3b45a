"""A performer's long bones (thighs, shins, upper arms, forearms) held to their learnt lengths.

The search ties a bone's ends only loosely (the pairwise term's tolerance, 0.15 m), and the refinement
triangulates each joint on its own, so a frame's limb length follows its joints' localisation errors: on
the real multi-person clip a forearm read 9-15 % std/median over 100 frames, with frames where a wrist sat
half-way to its elbow. A bone is rigid, so, as for the feet (:mod:`.feet`), each frame's length is fused
with the performer's learnt length (:class:`.limbs.LimbLengthEstimate`, once the bone has its own median) by
their variances: the measurement's from the two ends' triangulation covariance along the bone
(:func:`.feet.along_variance`) plus the detector's share that the views' reprojection errors do not
show (the views' errors are not independent: one network marks every view's wrist the same way), the
performer's length a prior of :data:`BONE_LENGTH_SIGMA`. That hidden share is read off the performer's own
measurements: their robust spread about the learnt length (:attr:`.limbs.LimbLengthEstimate.spread`; of a
whole take's lengths, a high quantile that sees bursts of wrong readings) beyond what the bone itself
varies by. A measurement further from the learnt length than ``max_deviation`` (the fraction the estimate
itself refuses to learn from) or than :data:`OUTLIER_SIGMAS` standard deviations of the difference is a
mislocalised end, not a measurement of the bone: the learnt length is used.

Only the child end moves, along the line from its parent, which belongs to the bone above it (or the
torso) and is held first: thighs and upper arms, then shins and forearms from the knees and elbows as
held. The body's joints below a child stay where their own views put them (an ankle is not carried by its
knee's move: it is triangulated on its own, and carried it took the knee's correction as its error). A
layout's extremities do follow their wrist or ankle (``carried``), although they too are triangulated on
their own (on the solver benchmark's synthetic clip they are 2.1 mm further from the truth for it): left in
place, a hand's points and a wrist moved by several centimetres make another hand, whose rotation on the
real Pose2Sim clip then turned by 139° between two frames. A joint that is missing stays missing, and a
bone with an end missing or seen by fewer than two views is left as it is.
"""

from __future__ import annotations

import numpy as np

from crosspose.skeleton import Skeleton
from crosspose.solver.feet import along_variance

#: The bones held, by their child joint's name (their parent is the skeleton's).
LONG_BONES: tuple[str, ...] = ("l_knee", "r_knee", "l_ankle", "r_ankle", "l_elbow", "r_elbow", "l_wrist",
                               "r_wrist")

#: Spread of a performer's own long-bone length over a take, metres: the bones are rigid, but the centre
#: of rotation of a knee or elbow is not a fixed point of the bone (the femur rolls back on the tibia by
#: about a centimetre over a knee's flexion), and the detector marks the joint's surface landmark, which
#: slides with the skin. A judgement of that order, not fitted to any clip.
BONE_LENGTH_SIGMA = 0.01

#: A measurement further from the learnt length than this many standard deviations of their difference
#: (the measurement's variance and the bone's own) is not one of the bone: 3, one good frame in 370.
OUTLIER_SIGMAS = 3.0


def long_bones(skeleton: Skeleton) -> np.ndarray:
    """``(L,)`` indices into :attr:`Skeleton.bones` of ``skeleton``'s long bones (those it has)."""
    children = [c for _, c in skeleton.bones]
    names = set(skeleton.joints)
    return np.array([children.index(skeleton.index(n)) for n in LONG_BONES if n in names], dtype=np.int64)


def bone_levels(ends: np.ndarray, bones: np.ndarray) -> list[np.ndarray]:
    """``bones`` (rows of the ``(B, 2)`` parent, child ``ends``) in groups, each after those whose child is
    its parent (thighs and upper arms, then shins and forearms): held level by level."""
    remaining = [int(b) for b in bones]
    levels = []
    while remaining:
        children = {int(ends[b, 1]) for b in remaining}
        level = [b for b in remaining if int(ends[b, 0]) not in children]
        levels.append(np.array(level, dtype=np.int64))
        remaining = [b for b in remaining if b not in level]
    return levels


def _level_indices(ends: np.ndarray, bones: np.ndarray) -> _Levels:
    """:func:`bone_levels` as index arrays, computed once per held set (the same every frame once the
    lengths are known): ``(L,)`` the rows of ``bones`` in level order, then per level ``(start, stop)`` of
    its bones in that order, their parents and their children (a level's per-bone numbers are then a slice,
    not a gather)."""
    key = (ends.tobytes(), ends.shape, ends.dtype.str, bones.tobytes(), bones.dtype.str)
    cached = _LEVELS.get(key)
    if cached is None:
        row = {int(b): i for i, b in enumerate(bones)}
        levels = bone_levels(ends, bones)
        order = np.array([row[int(b)] for level in levels for b in level], dtype=np.int64)
        steps, start = [], 0
        for level in levels:
            steps.append((start, start + len(level), ends[level, 0], ends[level, 1]))
            start += len(level)
        cached = _LEVELS[key] = (order, steps)
    return cached


_Levels = tuple[np.ndarray, list[tuple[int, int, np.ndarray, np.ndarray]]]
_LEVELS: dict[tuple[bytes, tuple[int, ...], str, bytes, str], _Levels] = {}


def _carried_moves(carried: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M,)`` the joints that follow another's move and ``(M,)`` the joint each follows (once per array)."""
    key = carried.tobytes()
    cached = _CARRIED.get(key)
    if cached is None:
        follow = np.flatnonzero(carried >= 0)
        cached = _CARRIED[key] = (follow, carried[follow])
    return cached


_CARRIED: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def bone_directions(joints: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``(N, 2K, 3)`` the unit vector of each of the ``(K, 2)`` ``ends``' lines (first → second end), once
    per end, for :func:`.feet.along_variance`; NaN where an end is missing or the two coincide."""
    vector = joints[:, ends[:, 1]] - joints[:, ends[:, 0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = vector / np.sqrt((vector * vector).sum(-1, keepdims=True))
    return np.repeat(u, 2, axis=1)


def hold_bone_lengths(joints: np.ndarray, projections: np.ndarray, support: np.ndarray, noise_px: np.ndarray,
                      ends: np.ndarray, bones: np.ndarray, lengths: np.ndarray,
                      spread: np.ndarray | None = None, sigma: float = BONE_LENGTH_SIGMA,
                      max_deviation: float = 0.25, unit_variance: np.ndarray | None = None,
                      carried: np.ndarray | None = None) -> np.ndarray:
    """Each bone's child moved along the line from its (already held) parent so that its length fuses the
    frame's measurement with ``lengths``.

    Args:
        joints: ``(N, J, 3)`` metres; projections: ``(N, C, 3, 4)``; support: ``(N, C, J)``.
        noise_px: ``(N,)`` each frame's localisation noise per image axis (:func:`.feet.view_noise_px`).
        ends: ``(B, 2)`` every bone's parent and child; bones: ``(L,)`` the bones held (rows of ``ends``);
        lengths: ``(L,)`` the performer's (NaN: not held).
        spread: ``(L,)`` the robust spread of the performer's measurements of each bone (metres; None or
            NaN: none known): the part of its square above ``sigma²`` adds to every measurement's variance.
        sigma: the spread of a performer's own bone length; max_deviation: beyond this fraction from
            ``lengths`` a measurement is discarded.
        unit_variance: ``(N, 2L)`` when already known, the held bones' parents' and children's variances
            along their bones for a localisation noise of one pixel (:func:`.feet.along_variance`).
        carried: ``(J,)`` for each joint the joint whose move it copies (-1: none): a layout's extremities
            follow their parent, so a hand or a foot keeps its shape around its wrist or ankle.
    Returns:
        ``(N, J, 3)`` a copy, moved.
    """
    n, count = joints.shape[0], len(bones)
    if unit_variance is None:
        held = ends[bones]  # (L, 2)
        tips = held.reshape(-1)
        unit_variance = along_variance(joints[:, tips], bone_directions(joints, held), projections,
                                       support[:, :, tips], np.ones(n))
    # the bones in level order (each level's numbers a slice): elementwise, the same numbers in any order
    order, steps = _level_indices(ends, bones)
    # each end's variance along the bone (from the refined joints); the measured length's is their sum
    var = unit_variance.reshape(n, count, 2).sum(-1)[:, order] * np.square(noise_px)[:, None]  # (N, L)
    lengths = lengths[order]
    if spread is not None:  # NaN (unknown) adds nothing
        spread = spread[order]
        var = var + np.where(spread > sigma, np.square(spread) - sigma ** 2, 0.0)
    out = joints.copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # what does not depend on the moved parents, for every bone at once: the total variance, the outlier
        # gate, the bones whose variance is usable
        total = sigma ** 2 + var  # (N, L)
        weighted = var * lengths
        gate = OUTLIER_SIGMAS ** 2 * total
        usable = np.isfinite(var) & (var > 0)
        for start, stop, parents, children in steps:
            parent, child = out[:, parents], out[:, children]  # (N, K, 3) the parents held already
            vector = child - parent
            measured = np.sqrt((vector * vector).sum(-1))  # (N, K)
            length = lengths[start:stop]
            target = (sigma ** 2 * measured + weighted[:, start:stop]) / total[:, start:stop]
            # a measurement its own error model cannot explain (beyond OUTLIER_SIGMAS) is a mislocalised end
            outlier = ((np.abs(measured / length - 1) > max_deviation)
                       | (np.square(measured - length) > gate[:, start:stop]))
            target = np.where(outlier, length, target)
            delta = (target / measured - 1)[..., None] * vector  # (N, K, 3) the child's move
            ok = np.isfinite(delta).all(-1) & usable[:, start:stop]
            out[:, children] = child + np.where(ok[..., None], delta, 0.0)
    if carried is not None:
        follow, source = _carried_moves(carried)
        out[:, follow] += out[:, source] - joints[:, source]
    return out
