"""``ImageSet``: one frame set as the core takes it — a decoded image per camera, its number and capture
time — and the calibration at the frames' scale."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crosspose.geometry import CameraRig

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """The images of one frame set, in rig order.

    Attributes:
        seq: the frame set's number (sync's).
        t_capture_ns: its capture time: the earliest present frame's ``t_capture_ns`` (host monotonic);
            None for frames known to be consecutive (video files read in order), whatever their rate.
        images: per camera a BGR uint8 ``(H, W, 3)`` image, or None for a missing camera.
        frames: per camera the frame message's header (None where missing): timestamps, device time.
    """

    seq: int
    t_capture_ns: int | None
    images: list[np.ndarray | None]
    frames: list[Mapping[str, Any] | None] = field(default_factory=list)

    @classmethod
    def from_frameset(cls, header: Mapping[str, Any], buffers: Sequence[Any], reduce: int = 1) -> ImageSet:
        """The decoded images of a ``frameset.`` message (ValueError/MessageError when they do not fit);
        ``reduce``: JPEG frames decoded at 1/``reduce`` size (:func:`frameset_images`)."""
        return cls(int(header["seq"]), capture_time_ns(header), frameset_images(header, buffers, reduce),
                   [f if p else None for f, p in zip(header["frames"], header["present"], strict=True)])


def frameset_images(header: Mapping[str, Any], buffers: Sequence[Any],
                    reduce: int = 1) -> list[np.ndarray | None]:
    """One image per camera of a ``frameset.`` message (None where the camera is missing).

    ``reduce`` (1, 2, 4, 8): JPEG frames decoded at 1/``reduce`` of their size per side
    (:func:`crosspose.capture.frames.decode_frame`); the set is then at that fraction of the scale it was
    sent at (:func:`image_scale`). Raw frames come whole: ``reduce`` other than 1 on a set holding raw frames
    is a ValueError (its views would arrive at different scales).
    """
    from crosspose.capture.frames import decode_frame

    present = header["present"]
    if sum(bool(p) for p in present) != len(buffers):
        raise ValueError(f"frame set has {len(buffers)} buffers for {sum(present)} present cameras")
    frames = header["frames"]
    if reduce != 1 and any(p and (f or {}).get("encoding") != "jpeg"
                           for p, f in zip(present, frames, strict=True)):
        raise ValueError(f"a frame set with raw frames cannot be decoded at 1/{reduce} size")
    it = iter(buffers)
    out: list[np.ndarray | None] = []
    for p, frame in zip(present, header["frames"], strict=True):
        out.append(decode_frame(frame, next(it), reduce) if p else None)
    return out


def capture_time_ns(header: Mapping[str, Any]) -> int:
    """A frame set's capture time: its earliest present frame's ``t_capture_ns`` (else ``t_ref_ns``)."""
    frames = [f for f, p in zip(header["frames"], header["present"], strict=True) if p and f]
    return min((int(f["t_capture_ns"]) for f in frames), default=int(header["t_ref_ns"]))


MIN_SCALE, MAX_SCALE = 1 / 32, 8.0  # frames this far from the calibration's size are not its cameras


def image_scale(rig: CameraRig, images: Sequence[np.ndarray | None]) -> float:
    """Scale of the frames relative to the calibration's image size (1.0, or e.g. 0.5 for half-size
    frames from a grabber configured with a smaller ``width``/``height``).

    Calibration tools pad sizes (Qualisys writes 1088 for 1080-pixel rows), so the scale is the
    height ratio, accepted when the width ratio agrees within 2 %.

    Raises:
        ValueError: frames whose size does not match the calibration at any single scale, or at a scale
            outside [1/32, 8] (a frame of a few pixels would reach the network as an empty crop).
    """
    scales = set()
    for camera, image in zip(rig, images, strict=True):
        if image is None:
            continue
        w, h = camera.image_size
        sy, sx = image.shape[0] / h, image.shape[1] / w
        if abs(sx / sy - 1.0) > 0.02:
            raise ValueError(
                f"camera {camera.name}: frame {image.shape[1]}x{image.shape[0]} does not match "
                f"its calibration's {w}x{h} at any single scale"
            )
        scales.add(round(sy, 3))
    if len(scales) > 1:
        raise ValueError(f"cameras deliver frames at different scales of their calibration: {sorted(scales)}")
    scale = scales.pop() if scales else 1.0
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"frames at {scale:g} x their calibration's size: not this rig's cameras (a scale "
                         f"from {MIN_SCALE:g} to {MAX_SCALE:g} is accepted)")
    return scale


class ScaledRig:
    """The calibration at the scale the frames arrive at (cached until the scale or the rig changes)."""

    def __init__(self, rig: CameraRig) -> None:
        self.rig = rig
        self._scaled: tuple[float, CameraRig] | None = None
        self._told: set[float] = set()  # scales logged (inference.decode auto goes back and forth)

    def set_rig(self, rig: CameraRig) -> None:
        self.rig = rig
        self._scaled = None

    @property
    def scale(self) -> float:
        """The scale of the rig handed out last (1.0 before any, and after :meth:`set_rig`)."""
        return 1.0 if self._scaled is None else self._scaled[0]

    def for_images(self, images: Sequence[np.ndarray | None]) -> tuple[CameraRig, bool]:
        """``(rig at the images' scale, whether that differs from the last call's)``."""
        scale = image_scale(self.rig, images)
        if self._scaled is not None and self._scaled[0] == scale:
            return self._scaled[1], False
        rig = self.rig if scale == 1.0 else self.rig.resized(scale)
        changed = self._scaled is not None or scale != 1.0
        if changed:
            level = logging.DEBUG if scale in self._told else logging.INFO
            log.log(level, "frames arrive at %.3g x the calibration's size; rig rescaled", scale)
            self._told.add(scale)
        self._scaled = (scale, rig)
        return rig, changed
