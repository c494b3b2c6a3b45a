"""At what size an inference worker decodes a frame set's JPEGs (``inference.decode``).

The network sees each view through a ``CROP_SIZE`` (256) pixel square cut from the performer's crop
(:mod:`crosspose.inference.crops`); a crop whose side spans more image pixels than that is downsampled on
the way in. libjpeg's scaled IDCT decodes a JPEG at 1/2 or 1/4 of its size for much less work, each output
pixel the mean of a 2x2 or 4x4 block. ``auto`` decodes a set at the largest of those reductions at which every
crop the set will take still spans at least ``CROP_SIZE`` decoded pixels (so the crop still downsamples, or
at worst samples 1:1), and in full whenever those crops are not all known before decoding: nothing
followed yet, someone lost, a view without a crop, a search for someone new (the person detector runs on
full-size frames then). The crops come from the performer's last track, placed before the set arrives
(:meth:`crosspose.inference.pipeline.FramePipeline.planned_crop_sides`).

Hysteresis: a larger reduction than the current one is taken only with a margin (its crops at least
``(1 + margin) x CROP_SIZE``); a smaller one is taken at once, the first set whose crops would fall below
``CROP_SIZE``. A change of scale rescales the rig and the performer's crops; it does not reset tracking.

Only the inference workers' decode changes: the recorder and the calibration feed decode the frames they
receive themselves, whole. A worker's previews come from the image the network got unless that is narrower
than the preview (320 px): then from the frame decoded again whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from crosspose.geometry import CameraRig

DecodeMode = Literal["auto", "full"]
DECODE_MODES: tuple[DecodeMode, ...] = ("auto", "full")

#: The reductions ``auto`` chooses from (1/8 would need crops over 2048 px before it paid off).
AUTO_REDUCTIONS = (1, 2, 4)
#: How much larger than the network input a crop must be, in the reduced pixels, to move to a larger
#: reduction (0.15: 15 %); staying needs only the input's size.
MARGIN = 0.15


class DecodeRule:
    """Chooses each frame set's JPEG reduction from the smallest crop it will take.

    Args:
        input_size: the network's crop input side, pixels (``CROP_SIZE``).
        reductions: the reductions allowed, ascending, starting at 1.
        margin: the hysteresis margin (a fraction of ``input_size``).
    Attributes:
        reduction: the reduction chosen last (1 before any set).
        changes: how many times it changed.
    """

    def __init__(self, input_size: int, reductions: Sequence[int] = AUTO_REDUCTIONS,
                 margin: float = MARGIN) -> None:
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        if not reductions or reductions[0] != 1 or list(reductions) != sorted(set(reductions)):
            raise ValueError(f"reductions must ascend from 1 without repeats, got {list(reductions)}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be a fraction in [0, 1), got {margin}")
        self.input_size = int(input_size)
        self.reductions = tuple(int(r) for r in reductions)
        self.margin = float(margin)
        self.reduction = 1
        self.changes = 0

    def choose(self, crop_px: float | None) -> int:
        """The reduction for a set whose smallest crop side is ``crop_px`` pixels of the frames as sent
        (None or NaN: not known before decoding → 1, full size)."""
        r = 1
        if crop_px is not None and math.isfinite(crop_px):
            for candidate in self.reductions:
                need = self.input_size * (1.0 + self.margin if candidate > self.reduction else 1.0)
                if crop_px / candidate >= need:
                    r = candidate
        if r != self.reduction:
            self.changes += 1
            self.reduction = r
        return r


def smallest_crop_px(header: Mapping[str, Any], rig: CameraRig, sides: np.ndarray | None) -> float | None:
    """The smallest crop side of a ``frameset.`` message's present views in pixels of its frames as sent.

    Args:
        header: the frame set's header (per camera ``present`` and the frame headers' ``shape``).
        rig: the calibration, at the size it was made for.
        sides: ``(C,)`` the crop sides the set will take in the calibration's pixels (NaN: none there), or
            None when they are not all known.
    Returns:
        pixels, or None: not known, a present view without a crop, or a frame that is not JPEG (raw frames
        are never reduced).
    """
    if sides is None:
        return None
    smallest = math.inf
    for c, (present, frame) in enumerate(zip(header["present"], header["frames"], strict=True)):
        if not present:
            continue
        if not frame or frame.get("encoding") != "jpeg" or not math.isfinite(float(sides[c])):
            return None
        height = float(frame["shape"][0])  # the sent frame's rows per calibration row (image_scale's rule)
        smallest = min(smallest, float(sides[c]) * height / float(rig.image_size[c][1]))
    return smallest if math.isfinite(smallest) else None
