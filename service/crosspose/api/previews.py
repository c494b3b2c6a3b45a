"""The latest small JPEG of every camera, with the 2D joints and crop box drawn over it by the viewer.

The inference stage publishes a preview per camera a few times a second (``api.preview_hz``); the bus
bridge calls ``PreviewBoard.update(camera, jpeg, meta)``. The API serves the latest one per camera
(``GET /api/v1/cameras/{name}/preview`` and ``…/preview.jpg``). Thread-safe.

``meta`` (all in preview pixels; anything else in the dict is ignored):

- ``seq`` (int): the frame set the preview was taken from.
- ``t_capture_ns`` (int): capture time of the camera's frame.
- ``width``, ``height`` (int): the preview's size (px).
- ``scale`` (float): preview px per image px.
- ``joints2d``: ``[[x, y, confidence], …]`` (the published layout's order; x/y may be None) or None.
- ``crop``: ``[[x, y] × 4]`` corners of the network's crop square, or None.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True)
class Preview:
    """One camera's preview.

    Attributes:
        camera: camera name.
        jpeg: the JPEG bytes.
        meta: the documented metadata keys (module docstring), cleaned.
        received_ns: ``time.monotonic_ns()`` when it arrived.
    """

    camera: str
    jpeg: bytes
    meta: dict[str, Any]
    received_ns: int


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _int(x: Any) -> int | None:
    v = _num(x)
    return int(v) if v is not None else None


def _points(value: Any, width: int) -> list[list[float | None]] | None:
    """A list of ``width``-long numeric rows (non-finite → None), or None if ``value`` is not one."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        return None
    out = []
    for row in value:
        if not isinstance(row, Sequence) or isinstance(row, (str, bytes)) or len(row) < width:
            return None
        out.append([_num(v) for v in row[:width]])
    return out


def clean_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The documented keys of ``meta`` with checked types (a wrong-typed value becomes None)."""
    crop = _points(meta.get("crop"), 2)
    return {
        "seq": _int(meta.get("seq")),
        "t_capture_ns": _int(meta.get("t_capture_ns")),
        "width": _int(meta.get("width")),
        "height": _int(meta.get("height")),
        "scale": _num(meta.get("scale")),
        "joints2d": _points(meta.get("joints2d"), 3),
        "crop": crop if crop is not None and len(crop) == 4 else None,
    }


class PreviewBoard:
    """The latest previews per camera (the last ``keep`` of each, so a seq seen in the metadata can still
    be fetched as an image a moment later).

    Args:
        cameras: configured camera names; previews of other cameras are counted and ignored.
        keep: previews kept per camera.
    """

    def __init__(self, cameras: Sequence[str], keep: int = 4) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.camera_names = list(cameras)
        self._lock = threading.Lock()
        self._latest: dict[str, collections.deque[Preview]] = {
            c: collections.deque(maxlen=keep) for c in self.camera_names
        }
        self.unknown_updates = 0
        self.rejected = 0
        self.received = 0

    def update(self, camera: str, jpeg: bytes, meta: Mapping[str, Any], now_ns: int | None = None) -> bool:
        """Record ``camera``'s newest preview (any thread). False (and counted) when the camera is not
        configured or ``jpeg`` is not a JPEG."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            if camera not in self._latest:
                self.unknown_updates += 1
                return False
            if not jpeg.startswith(JPEG_MAGIC):
                self.rejected += 1
                return False
            self._latest[camera].append(Preview(camera, bytes(jpeg), clean_meta(meta), now_ns))
            self.received += 1
            return True

    def latest(self, camera: str, seq: int | None = None) -> Preview | None:
        """``camera``'s newest preview, or the kept one of frame set ``seq``; None if there is none.

        Raises:
            KeyError: ``camera`` is not configured.
        """
        with self._lock:
            kept = self._latest[camera]
            if not kept:
                return None
            if seq is None:
                return kept[-1]
            for p in reversed(kept):
                if p.meta["seq"] == seq:
                    return p
            return None
