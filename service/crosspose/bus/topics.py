"""Topic names of the bus: dot-separated with a trailing dot, so a prefix never matches a longer name."""

from __future__ import annotations

import re

FRAME = b"frame."
FRAMESET = b"frameset."
HEATMAPS = b"heatmaps."
SKELETON = b"skeleton."
CONTROL = b"control."
STATUS = b"status."

_PART = re.compile(r"^[A-Za-z0-9_-]+$")


def _checked(part: str) -> bytes:
    if not _PART.match(part):
        raise ValueError(f"topic part {part!r} may only use letters, digits, '_' and '-'")
    return part.encode("ascii")


def frame_topic(camera: str) -> bytes:
    """``frame.<camera>.``: the frames of one camera."""
    return FRAME + _checked(camera) + b"."


def control_topic(*subject: str) -> bytes:
    """``control.<subject…>.``, e.g. ``control_topic("calibration", "updated")``."""
    return CONTROL + b"".join(_checked(s) + b"." for s in subject)


def status_topic(stage: str, *detail: str) -> bytes:
    """``status.<stage>.[<detail>.]``, e.g. ``status_topic("grabber", "cam1")``."""
    return STATUS + b"".join(_checked(s) + b"." for s in (stage, *detail))


CALIBRATION_UPDATED = control_topic("calibration", "updated")
