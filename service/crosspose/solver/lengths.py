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
measurements: their robust spread about the learnt length (:attr:`.limbs.LimbLengthEstimate.spread`) beyond
what the bone itself varies by. A measurement
further than ``max_deviation`` from the learnt length (the fraction the estimate itself refuses to learn
from) is a mislocalised end, not a measurement of the bone: the learnt length is used.

Only the child end moves, along the bone, and every joint below it moves with it (the wrist's hand points,
the ankle's heel and toe keep their offsets): the parent's position belongs to the bone above it (or the
torso), held first. Each bone's direction, hence its rotation, is untouched; a joint that is missing
stays missing, and a bone with an end missing or seen by fewer than two views is left as it is.
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


def bone_ancestry(skeleton: Skeleton) -> np.ndarray:
    """``(J, B)`` float: 1 where bone ``b`` lies on the path from the root to joint ``j`` (its child end is
    ``j`` or an ancestor of ``j``): a bone's child displacement moves every joint below it."""
    bones = skeleton.bones
    out = np.zeros((skeleton.num_joints, len(bones)))
    bone_of = {c: b for b, (_, c) in enumerate(bones)}
    for j in range(skeleton.num_joints):
        k = j
        while skeleton.parents[k] >= 0:
            out[j, bone_of[k]] = 1.0
            k = skeleton.parents[k]
    return out


def bone_directions(joints: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``(N, 2K, 3)`` the unit vector of each of the ``(K, 2)`` ``ends``' lines (first → second end), once
    per end, for :func:`.feet.along_variance`; NaN where an end is missing or the two coincide."""
    vector = joints[:, ends[:, 1]] - joints[:, ends[:, 0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = vector / np.sqrt((vector * vector).sum(-1, keepdims=True))
    return np.repeat(u, 2, axis=1)


def hold_bone_lengths(joints: np.ndarray, projections: np.ndarray, support: np.ndarray, noise_px: np.ndarray,
                      ends: np.ndarray, bones: np.ndarray, ancestry: np.ndarray, lengths: np.ndarray,
                      spread: np.ndarray | None = None, sigma: float = BONE_LENGTH_SIGMA,
                      max_deviation: float = 0.25, unit_variance: np.ndarray | None = None) -> np.ndarray:
    """Each bone's child (and everything below it) moved along the bone so that its length fuses the
    frame's measurement with ``lengths``.

    Args:
        joints: ``(N, J, 3)`` metres; projections: ``(N, C, 3, 4)``; support: ``(N, C, J)``.
        noise_px: ``(N,)`` each frame's localisation noise per image axis (:func:`.feet.view_noise_px`).
        ends: ``(B, 2)`` every bone's parent and child; bones: ``(L,)`` the bones held (rows of ``ends``);
        ancestry: ``(J, B)`` (:func:`bone_ancestry`); lengths: ``(L,)`` the performer's (NaN: not held).
        spread: ``(L,)`` the robust spread of the performer's measurements of each bone (metres; None or
            NaN: none known): the part of its square above ``sigma²`` adds to every measurement's variance.
        sigma: the spread of a performer's own bone length; max_deviation: beyond this fraction from
            ``lengths`` a measurement is discarded.
        unit_variance: ``(N, 2L)`` when already known, the held bones' parents' and children's variances
            along their bones for a localisation noise of one pixel (:func:`.feet.along_variance`).
    Returns:
        ``(N, J, 3)`` a copy, moved.
    """
    held = ends[bones]  # (L, 2)
    tips = held.reshape(-1)
    n, count = joints.shape[0], len(bones)
    parent, child = joints[:, held[:, 0]], joints[:, held[:, 1]]  # (N, L, 3)
    vector = child - parent
    measured = np.sqrt((vector * vector).sum(-1))  # (N, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = vector / measured[..., None]
        # each end's variance along the bone; the measured length's is their sum
        if unit_variance is None:
            unit_variance = along_variance(joints[:, tips], np.repeat(u, 2, axis=1), projections,
                                           support[:, :, tips], np.ones(n))
        var = unit_variance.reshape(n, count, 2).sum(-1) * np.square(noise_px)[:, None]
        if spread is not None:  # NaN (unknown) adds nothing
            var = var + np.where(spread > sigma, np.square(spread) - sigma ** 2, 0.0)
        target = (sigma ** 2 * measured + var * lengths) / (sigma ** 2 + var)
        # a measurement its own error model cannot explain (beyond OUTLIER_SIGMAS) is a mislocalised end
        outlier = (np.abs(measured / lengths - 1) > max_deviation) | (
            np.square(measured - lengths) > OUTLIER_SIGMAS ** 2 * (var + sigma ** 2))
        target = np.where(outlier, lengths, target)
        delta = (target / measured - 1)[..., None] * vector  # (N, L, 3) the child's move
    ok = np.isfinite(delta).all(-1) & np.isfinite(var) & (var > 0)
    # (J, L) @ (N, L, 3): each joint moved with the held bones above it
    out: np.ndarray = joints + ancestry[:, bones] @ np.where(ok[..., None], delta, 0.0)
    return out
