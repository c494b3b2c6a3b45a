"""Limb lengths for the pairwise term: a template scaled to the performer, refined online.

No ground truth: the estimate starts from the skeleton's template, is rescaled by the performer's
height estimate (the median ratio of measured to template bone lengths) after a few confident
frames, and then becomes a per-bone running median over a window of confident measurements.
``reset()`` starts again for a new performer.
"""

from __future__ import annotations

import numpy as np

from crosspose.skeleton import Skeleton

#: Of a seeded estimate (a whole take's measurements, :meth:`LimbLengthEstimate.seed`), the spread is this
#: quantile of the measurements' distances from the length: 9 readings in 10 lie within it.
TAKE_SPREAD_QUANTILE = 0.9


class LimbLengthEstimate:
    """Robust online estimate of one performer's bone lengths (metres, in :attr:`Skeleton.bones` order).

    Args:
        skeleton: the joint tree and its template lengths.
        window: confident measurements kept per bone (a running median over them).
        min_samples: measurements of a bone before its own median replaces the scaled template.
        max_deviation: measurements further than this fraction from the current estimate are
            ignored (a mislocalised joint must not drag the estimate).
    """

    def __init__(self, skeleton: Skeleton, window: int = 90, min_samples: int = 15,
                 max_deviation: float = 0.25) -> None:
        self.template = skeleton.template_bone_lengths()
        # The performer's height comes from the body's bones (the first; a layout's extremities are short
        # and detector-dependent): a layout with extremities scales its body as the layout without them.
        self._body_bones = skeleton.body.num_joints - 1
        self.window = window
        self.min_samples = min_samples
        self.max_deviation = max_deviation
        self.reset()

    def reset(self) -> None:
        """Forget the performer: back to the unscaled template."""
        self._samples = np.full((self.window, self.template.size), np.nan)
        self._count = np.zeros(self.template.size, dtype=np.int64)
        self._scale_samples: list[float] = []
        self._scale = 1.0
        self._lengths: np.ndarray | None = None
        self._spread: np.ndarray | None = None
        self._seeded = False

    @property
    def scale(self) -> float:
        """Height estimate relative to the template (1.0 before any confident frame)."""
        return self._scale

    @property
    def lengths(self) -> np.ndarray:
        """``(B,)`` current estimate, metres."""
        if self._lengths is None:
            self._lengths = self._estimate()
        return self._lengths.copy()

    def _estimate(self) -> np.ndarray:
        est = self.template * self.scale  # a new array
        own = self._count >= self.min_samples
        if own.all():  # the settled case: every bone has its own median
            return _nanmedian(self._samples, self.num_samples)
        if own.any():
            est[own] = _nanmedian(self._samples[:, own], self.num_samples[own])
        return est

    @property
    def spread(self) -> np.ndarray:
        """``(B,)`` robust standard deviation (1.4826 x the median absolute deviation, metres) of each known
        bone's measurements about its length; NaN for a bone not :attr:`known`.

        Of a :meth:`seed` ed estimate (a whole take), :data:`TAKE_SPREAD_QUANTILE` of the distances instead:
        the detector's errors come in bursts (one network marks a wrong wrist in several views for a dozen
        frames, the views agreeing), which a median deviation does not see while they are under half the
        readings; over a whole take their share is known, and the hold (:mod:`.lengths`) that adds this
        spread to every reading's variance then trusts a reading no more than the take's readings deserve.
        Online, a window starts from ``min_samples`` readings, too few for a high quantile."""
        if self._spread is None:  # read every frame, changed by an update: computed once after each
            out = np.full(self.template.size, np.nan)
            own = self.known
            if own.any():
                count = self.num_samples[own]
                deviation = np.abs(self._samples[:, own] - _nanmedian(self._samples[:, own], count))
                out[own] = self._deviation_scale(deviation, count)
            self._spread = out
        return self._spread.copy()

    def spread_of(self, bones: np.ndarray) -> np.ndarray:
        """``(L,)`` :attr:`spread` of the ``(L,)`` ``bones`` (indices) alone: the same numbers, computed for
        those bones only (the lengths' hold reads its eight long bones' every frame, of a layout's 31)."""
        if self._spread is not None:
            return self._spread[bones]
        out = np.full(len(bones), np.nan)
        own = self.known[bones]
        if own.any():
            rows = np.asarray(bones)[own]
            count = self.num_samples[rows]
            samples = self._samples[:, rows]
            # a known bone's length is its samples' median already (the same numbers: sorted per column)
            median = (self._lengths if self._lengths is not None else self.lengths)[rows]
            deviation = np.abs(samples - median)
            out[own] = self._deviation_scale(deviation, count)
        return out

    def _deviation_scale(self, deviation: np.ndarray, count: np.ndarray) -> np.ndarray:
        """``(K,)`` the spread of ``(W, K)`` distances from the length (NaN: none), ``count`` (≥ 1) each."""
        if self._seeded:
            return np.nanquantile(deviation, TAKE_SPREAD_QUANTILE, axis=0)
        return 1.4826 * _nanmedian(deviation, count)

    @property
    def known(self) -> np.ndarray:
        """``(B,)`` bool: the bones whose length is their own median (``min_samples`` measurements seen)."""
        return self._count >= self.min_samples

    @property
    def num_samples(self) -> np.ndarray:
        """``(B,)`` confident measurements seen per bone (capped at the window)."""
        return np.minimum(self._count, self.window)

    def seed(self, samples: np.ndarray, scale: float) -> None:
        """Start from measurements made elsewhere (a first pass over the whole take, :mod:`.take`) instead
        of the template: each bone's ``(S, B)`` ``samples`` (metres, NaN where none), summarised by
        :func:`window_summary` so the running median and spread are the samples'; ``scale`` the height
        estimate. A bone with ``min_samples`` measurements or more is :attr:`known` at once."""
        self.reset()
        self._samples, self._count = window_summary(np.asarray(samples, dtype=np.float64), self.window)
        self._scale = float(scale)
        self._scale_samples = [self._scale]
        self._seeded = True

    def update(self, measured: np.ndarray, confident: np.ndarray) -> None:
        """Add one frame's bone lengths.

        Args:
            measured: ``(B,)`` bone lengths, metres.
            confident: ``(B,)`` bool, both ends well supported (≥ 2 views, high confidence).
        """
        measured = np.asarray(measured, dtype=np.float64)
        current = self.lengths
        # A gross error (50 % of the template) never counts, even before the estimate settles.
        ok = confident & np.isfinite(measured) & (np.abs(measured / self.template - 1) < 0.5)
        if self._scale_samples:
            ok &= np.abs(measured / current - 1) < self.max_deviation
        body = ok[:self._body_bones]
        if body.sum() >= max(3, self._body_bones // 2):
            ratio = _median(measured[:self._body_bones][body] / self.template[:self._body_bones][body])
            self._scale_samples = [*self._scale_samples, ratio][-self.window:]
            self._scale = _median(np.array(self._scale_samples))
        slot = self._count % self.window
        rows = np.nonzero(ok)[0]
        self._samples[slot[rows], rows] = measured[rows]
        self._count[rows] += 1
        self._lengths = self._spread = None


def window_summary(samples: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(window, K)`` a running-median window standing for each column's ``(S, K)`` samples (NaN: none)
    and ``(K,)`` their counts: all of a column's samples when they fit, else their quantiles at
    ``(k + 0.5) / window``, so the window's median and spread are the samples' own."""
    out = np.full((window, samples.shape[1]), np.nan)
    counts = np.isfinite(samples).sum(0)
    for k in range(samples.shape[1]):
        values = np.sort(samples[np.isfinite(samples[:, k]), k])
        if len(values) > window:
            values = np.quantile(values, (np.arange(window) + 0.5) / window)
        out[:len(values), k] = values
    return out, counts.astype(np.int64)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array without NaN (the same number, ~10x faster on a few dozen values)."""
    ordered = np.sort(values)
    n = ordered.size
    return float(0.5 * (ordered[(n - 1) // 2] + ordered[n // 2]))


def _nanmedian(samples: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN, for columns with ``count`` (≥ 1) numbers each (``np.nanmedian``
    is ~50x slower on these small arrays, and this runs every frame)."""
    ordered = np.sort(samples, axis=0)  # NaN last
    if count.size and (count == count[0]).all():  # every column as full (a settled window): two rows
        first = int(count[0])
        return 0.5 * (ordered[(first - 1) // 2] + ordered[first // 2])
    cols = np.arange(samples.shape[1])
    return 0.5 * (ordered[(count - 1) // 2, cols] + ordered[count // 2, cols])
