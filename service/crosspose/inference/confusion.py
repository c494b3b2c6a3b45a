"""Which of a performer's heatmaps peak on another performer's joint instead of their own.

Where two people are close in a view, the network, asked for one performer's right wrist in that
performer's crop, sometimes marks the other performer's wrist (or elbow, or hand) — even when the
performer asked about is the nearer one, so the depth order (:mod:`crosspose.inference.occlusion`) does
not apply. The solver then settles between the two joints. Here each view's heatmap maximum is compared
with both performers' last poses, projected through this performer's heatmap projections: a maximum
within :data:`NEAR_M` of another performer's joint and clearly farther from this performer's own joint
(by :data:`REACH_M`, the most the own joint can have moved since its pose) is the other's joint. That
view's joint is then hidden (the solver's "no evidence"), both for the view's own heatmap and for the
fused one the solver reads.

Distances are compared in heatmap pixels; the metre bounds become pixels per view and joint through the
projection's local scale at the own joint (the largest singular value of its 2 × 3 Jacobian: the most
pixels one metre can move it), so a far view and a near one, a small crop and a large one, get the same
bound in the world.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crosspose.inference.heatmaps import heatmap_maxima

#: Metres: a heatmap maximum this near another performer's (projected, last) joint is taken to be on it —
#: a limb's half width (the occlusion's body radius), which also covers that joint's motion in one frame.
NEAR_M = 0.12
#: Metres the performer's own joint may have moved since the pose it is compared with: the fusion's trained
#: reach (a limb at 4 m/s over 75 ms, :data:`~crosspose.inference.pipeline.PRIOR_REACH_S`), that is a wrist
#: at 9 m/s (a punch) between two frame sets at 30 fps. Scaled by the pipeline's window scale for an older
#: prior. A maximum this much farther from the own joint than from the other's is not the own joint moving.
REACH_M = 0.3
#: Fewest heatmap pixels of :data:`NEAR_M` (a far view's tiny blob still has the network's own spread).
MIN_NEAR_PX = 1.5
#: Seconds a joint's last known place is kept for the comparison after the pose stopped supporting it.
FORGET_S = 0.25
#: Seconds of pose age :data:`REACH_M` covers (the fusion's trained reach); an older joint's reach grows
#: in proportion.
REACH_S = 0.075
#: A heatmap whose maximum is below this carries no peak to judge (an empty view, a zeroed joint).
MIN_PEAK = 0.05


class LastJoints:
    """Each performer's joints where last known: a joint their last pose left unsupported (hidden in too
    many views, for one) keeps its earlier place, and how long ago that was, so that the next frame set's
    peaks are still compared with it (without it a hidden joint would be unknown, not checked, taken, and
    hidden again the frame set after)."""

    def __init__(self) -> None:
        self._joints: dict[int, np.ndarray] = {}  # id → (J, 3) metres
        self._seen_s: dict[int, np.ndarray] = {}  # id → (J,) seconds, when each was last known

    def keep_only(self, persons: set[int]) -> None:
        """Forget every performer not in ``persons`` (ended: ids are never reused, so a long run would
        otherwise keep one entry per id it ever started)."""
        for person in set(self._joints) - persons:
            del self._joints[person], self._seen_s[person]

    def update(self, person: int, prior: np.ndarray | None,
               now_s: float) -> tuple[np.ndarray | None, np.ndarray]:
        """Take ``person``'s ``(J, 3)`` last pose (NaN where unsupported; None: none) at ``now_s`` →
        ``(J, 3)`` joints where last known (NaN: never, or more than :data:`FORGET_S` ago) and ``(J,)`` their
        age in seconds (0 for the pose's own joints)."""
        if prior is None:
            return None, np.zeros(0)
        pose = np.asarray(prior, np.float64)
        known = np.isfinite(pose).all(-1)
        joints = self._joints.setdefault(person, np.full(pose.shape, np.nan))
        seen = self._seen_s.setdefault(person, np.full(len(pose), -np.inf))
        joints[known], seen[known] = pose[known], now_s
        age = now_s - seen
        out = np.where((age <= FORGET_S)[:, None], joints, np.nan)
        return out, np.where(np.isfinite(age), age, 0.0)


def _project(projections: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, 3, 4)`` projections and ``(J, 3)`` points → ``(C, J, 2)`` heatmap px and ``(C, J)`` pixels per
    metre (the largest singular value of the projection's Jacobian there); NaN where either is unknown."""
    P = np.asarray(projections, np.float64)
    hom = np.einsum("cik,jk->cji", P[:, :, :3], points) + P[:, None, :, 3]  # (C, J, 3)
    w = hom[..., 2:3]
    uv = hom[..., :2] / w
    # d(uv)/dX = (P[:2, :3] - uv ⊗ P[2, :3]) / w
    jac = (P[:, None, :2, :3] - uv[..., None] * P[:, None, 2:3, :3]) / w[..., None]  # (C, J, 2, 3)
    bad = ~np.isfinite(jac).all((-1, -2))
    scale = np.full(bad.shape, np.nan)
    if (~bad).any():
        scale[~bad] = np.linalg.svd(jac[~bad], compute_uv=False)[:, 0]
    uv[bad | ~(w[..., 0] > 0)] = np.nan
    return uv, scale


def confused_joints(maps: Sequence[np.ndarray], projections: np.ndarray, own: np.ndarray | None,
                    others: Sequence[np.ndarray | None], window_scale: float = 1.0,
                    near_m: float = NEAR_M, reach_m: float = REACH_M, age_s: np.ndarray | None = None,
                    ) -> np.ndarray:
    """The joints whose heatmap peaks on another performer's joint, per view.

    Args:
        maps: one or more ``(C, J, h, w)`` heatmaps of this performer (the views' own, the fused ones):
            a joint is confused where any of them is.
        projections: ``(C, 3, 4)`` world metres → this performer's heatmap pixels (NaN rows: no crop).
        own: ``(J, 3)`` this performer's last pose (metres, NaN where unknown), or None.
        others: the other performers' ``(J, 3)`` last poses (None: no pose).
        window_scale: ``≥ 1``, how much older than the trained reach the poses are (widens ``reach_m``).
        age_s: ``(J,)`` seconds since each own joint was known (:class:`LastJoints`): ``reach_m`` grows by
            ``age_s / REACH_S`` on top of ``window_scale``; None: all fresh.
    Returns:
        ``(C, J)`` bool; False wherever the own joint or the view's projection is unknown (nothing says
        the peak is not the own joint).
    """
    c, j = np.asarray(projections).shape[0], np.asarray(maps[0]).shape[1]
    out = np.zeros((c, j), bool)
    poses = [np.asarray(q, np.float64) for q in others if q is not None and np.isfinite(q).any()]
    if own is None or not poses:
        return out
    own_uv, scale = _project(projections, np.asarray(own, np.float64))  # (C, J, 2), (C, J)
    other_uv = np.concatenate([_project(projections, q)[0] for q in poses], axis=1)  # (C, Q·J, 2)
    near_px = np.maximum(scale * near_m, MIN_NEAR_PX)
    grow = max(float(window_scale), 1.0) + (0.0 if age_s is None else np.asarray(age_s, np.float64) / REACH_S)
    margin_px = scale * reach_m * grow
    for m in maps:
        peak, value = heatmap_maxima(m)  # (C, J, 2), (C, J)
        to_other = np.linalg.norm(peak[:, :, None] - other_uv[:, None], axis=-1)  # (C, J, Q·J)
        to_other = np.where(np.isfinite(to_other), to_other, np.inf).min(-1)
        to_own = np.linalg.norm(peak - own_uv, axis=-1)
        with np.errstate(invalid="ignore"):
            out |= (value >= MIN_PEAK) & (to_other <= near_px) & (to_own > to_other + margin_px)
    return out
