"""A performer's lengths learnt over a whole take, to solve the take again with them known from frame 0.

Online, a performer's limb and foot lengths (:class:`.limbs.LimbLengthEstimate`, :class:`.feet.
FootLengthEstimate`) are a running median of the frames seen so far: the first frames of a take are solved
with the template, then with a length learnt from a handful of frames. Where those first frames happen to
read short (on the real Pose2Sim clip the left foot's heel → toe is ~4 cm short over its first quarter
second), the online length starts short and the hold pulls the later frames towards it. A motion-capture
studio takes a performer's proportions from the whole take (or a range-of-motion take) instead; offline,
``crosspose reconstruct --lengths take`` does the same:

1. a first pass solves the take as the live service would (online lengths);
2. :class:`TakeLengths` collects every solved pose's raw measured lengths (``bone_lengths_measured``,
   ``foot_lengths_measured`` of its diagnostics, where both ends are confidently solved: the same frames
   the online estimate learns from) and takes each one's median over the take, measurements further than
   the online estimate's ``max_deviation`` from it left out;
3. :meth:`TakeLengths.track` gives a fresh :class:`~.solver.SolverTrack` seeded with them, and a solver
   that does not learn (``online_limbs=False``, :func:`fixed_lengths_solver`) solves the take again from
   its first frame with those lengths known.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from crosspose.skeleton import Skeleton
from crosspose.solver.feet import FootLengthEstimate, foot_pairs
from crosspose.solver.pose import Pose3D

#: A joint is measured when at least two views support it with this confidence (as the solver's own
#: online learning, ``Solver._remember``).
MIN_CONFIDENCE = 0.3

#: Measurements further than this fraction from the take's median are a mislocalised end, not the
#: performer (the online estimate's ``max_deviation``).
MAX_DEVIATION = 0.25

#: Measurements further than this fraction from the template are never counted (as online).
MAX_FROM_TEMPLATE = 0.5

LENGTHS_FORMAT = "crosspose-performer-lengths"


class TakeLengths:
    """One performer's raw measured lengths over a take, and the lengths they give.

    Args:
        skeleton: the solver's layout.
    """

    def __init__(self, skeleton: Skeleton) -> None:
        self.skeleton = skeleton
        self._pairs = foot_pairs(skeleton)
        self._template = skeleton.template_bone_lengths()
        self._body_bones = skeleton.body.num_joints - 1
        parents = np.array([p for p, _ in skeleton.bones], dtype=np.int64)
        children = np.array([c for _, c in skeleton.bones], dtype=np.int64)
        self._ends = parents, children
        self._bones: list[np.ndarray] = []  # per pose (B,), NaN where not measured
        self._feet: list[np.ndarray] = []  # per pose (F,)

    @property
    def num_poses(self) -> int:
        """Poses added."""
        return len(self._bones)

    def add(self, pose: Pose3D) -> None:
        """One solved pose's measurements (its diagnostics' raw lengths, before any hold)."""
        confident = pose.supported() & (pose.confidence >= MIN_CONFIDENCE)
        parents, children = self._ends
        bones = pose.diagnostics.get("bone_lengths_measured")
        if bones is None:
            bones = np.linalg.norm(pose.joints[children] - pose.joints[parents], axis=-1)
        bones = np.where(confident[parents] & confident[children], bones, np.nan)
        feet = pose.diagnostics.get("foot_lengths_measured", np.full(len(self._pairs), np.nan))
        feet = np.where(confident[self._pairs[:, 0]] & confident[self._pairs[:, 1]], feet, np.nan)
        self._bones.append(np.asarray(bones, dtype=np.float64))
        self._feet.append(np.asarray(feet, dtype=np.float64))

    def bone_samples(self) -> np.ndarray:
        """``(S, B)`` every pose's confident bone lengths within :data:`MAX_DEVIATION` of the take's median
        (NaN elsewhere), metres."""
        raw = np.array(self._bones, dtype=np.float64).reshape(len(self._bones), len(self._template))
        with np.errstate(invalid="ignore"):
            raw = np.where(np.abs(raw / self._template - 1) < MAX_FROM_TEMPLATE, raw, np.nan)
        return _around_median(raw)

    def foot_samples(self) -> np.ndarray:
        """``(S, F)`` every pose's confident heel → big toe distances near the take's median, metres."""
        raw = np.array(self._feet, dtype=np.float64).reshape(len(self._feet), len(self._pairs))
        return _around_median(raw)

    def scale(self) -> float:
        """The performer's height relative to the template: the median over the body's bones measured of
        their take length / template length (1.0 when none was)."""
        with np.errstate(all="ignore"):
            ratio = _column_median(self.bone_samples())[:self._body_bones] / self._template[:self._body_bones]
        ratio = ratio[np.isfinite(ratio)]
        return float(np.median(ratio)) if ratio.size else 1.0

    def lengths(self) -> dict[str, Any]:
        """What a track is seeded with: ``bones (B,)`` and ``feet (F,)`` take medians (NaN: never measured),
        their sample counts and the ``scale``."""
        bones, feet = self.bone_samples(), self.foot_samples()
        return {"bones": _column_median(bones), "bone_samples": np.isfinite(bones).sum(0),
                "feet": _column_median(feet), "foot_samples": np.isfinite(feet).sum(0), "scale": self.scale()}

    def seed(self, track: Any) -> Any:
        """``track`` (a :class:`~.solver.SolverTrack`) with its limb and foot lengths replaced by the take's
        (its pose kept); returned."""
        track.limbs.seed(self.bone_samples(), self.scale())
        track.feet.seed(self.foot_samples())
        return track

    def to_json(self) -> dict[str, Any]:
        """The learnt lengths as a document (``--lengths-to``), by bone and foot name, metres: ``feet`` each
        foot's own take median, ``feet_held`` the length the second pass holds it to (both feet share one:
        :class:`.feet.FootLengthEstimate`)."""
        out = self.lengths()
        names = self.skeleton.joints
        held = FootLengthEstimate(self._pairs)
        held.seed(self.foot_samples())
        return {
            "format": LENGTHS_FORMAT, "v": 1, "skeleton": self.skeleton.name, "scale": round(out["scale"], 6),
            "bones": {f"{names[p]}-{names[c]}": _rounded(length)
                      for (p, c), length in zip(self.skeleton.bones, out["bones"], strict=True)},
            "feet": {f"{names[h]}-{names[t]}": _rounded(length)
                     for (h, t), length in zip(self._pairs, out["feet"], strict=True)},
            "feet_held": {f"{names[h]}-{names[t]}": _rounded(length)
                          for (h, t), length in zip(self._pairs, held.lengths, strict=True)},
        }


def fixed_lengths_solver(solver: Any) -> Any:
    """A :class:`~.solver.Solver` as ``solver`` that does not learn lengths (``online_limbs=False``): the
    second pass keeps the seeded ones from first frame to last."""
    from crosspose.solver.solver import Solver

    return Solver(solver.skeleton, options=dataclasses.replace(solver.options, online_limbs=False))


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def _column_median(samples: np.ndarray) -> np.ndarray:
    """``(K,)`` each column's median over its finite values (NaN for a column with none)."""
    out = np.full(samples.shape[1], np.nan)
    for k in range(samples.shape[1]):
        values = samples[np.isfinite(samples[:, k]), k]
        if values.size:
            out[k] = np.median(values)
    return out


def _around_median(raw: np.ndarray) -> np.ndarray:
    """``raw (S, K)`` with values further than :data:`MAX_DEVIATION` from their column's median NaN."""
    median = _column_median(raw)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(raw / median - 1) < MAX_DEVIATION, raw, np.nan)


