"""Whether a frame's capture time is plausible, and where it lies on this host's clock.

Sync checks every frame's ``t_capture_ns`` against its own monotonic clock at arrival (``now``) and
against what the camera's recent frames said, before the frame may anchor or join a set: one frame
stamped an hour ahead once anchored a set on itself and made every real frame after it stale.

* **Local camera** (its grabber runs on this host and stamps with this host's monotonic clock): the
  delay ``now - t_capture`` is a transport delay. A frame stamped more than ``future_ns`` ahead of
  ``now`` is dropped as ``future``, one older than ``max_age_ns`` on arrival as ``stale``. This clock
  does not step, so nothing is re-synchronised.
* **Remote camera** (another host's clock): the camera's offset is the smallest ``now - t_capture``
  of its last ``window`` accepted frames (the network's minimum delay folded in; it follows slow
  drift). A frame is placed at ``t_capture + offset``; one that would lie more than ``future_ns``
  ahead of ``now`` (``future``) or arrive more than ``max_age_ns`` late (``stale``) is dropped and the
  offset does not move for it, so no single stamp shifts the camera's timeline. When ``resync_frames``
  frames in a row are dropped and agree with one another (offsets within ``agree_ns``: not noise, the
  camera host's clock stepped — a reboot restarts its monotonic clock), the offset is re-estimated from
  them and the camera rejoins; ``resyncs`` counts it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Placement = int | Literal["stale", "future"]
"""A frame's capture time on this host's clock, or why it is dropped."""


@dataclass
class CameraClock:
    """One camera's capture times checked and mapped onto this host's monotonic clock (module docstring).

    Args:
        remote: the camera's grabber stamps with another host's clock.
        future_ns: how far ahead of arrival a frame may be placed.
        max_age_ns: how late after its capture a frame may arrive.
        agree_ns: how close the offsets of dropped frames must be to re-synchronise on them.
        resync_frames: dropped frames in a row that re-synchronise a remote camera.
        window: accepted frames the remote offset is the minimum over.
    """

    remote: bool
    future_ns: int
    max_age_ns: int
    agree_ns: int
    resync_frames: int = 5
    window: int = 300
    resyncs: int = 0
    _offsets: deque[int] = field(default_factory=deque)
    _candidate: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if min(self.future_ns, self.max_age_ns, self.agree_ns) < 0 or self.resync_frames < 1:
            raise ValueError("CameraClock needs non-negative margins and resync_frames >= 1")

    @property
    def offset_ns(self) -> int | None:
        """What is added to this camera's stamps (0 for a local camera; None before a remote one's
        first frame)."""
        if not self.remote:
            return 0
        return min(self._offsets) if self._offsets else None

    def place(self, t_capture_ns: int, now_ns: int) -> Placement:
        """``t_capture_ns`` on this host's clock, or ``"future"`` / ``"stale"`` for a frame to drop."""
        offset = self.offset_ns
        sample = now_ns - t_capture_ns  # arrival - capture: this frame's own offset
        if offset is None:  # a remote camera's first frame sets its offset
            offset = sample
        delay = sample - offset  # how late the frame arrives, on its camera's mapped clock
        verdict: Placement
        if delay < -self.future_ns:
            verdict = "future"
        elif delay > self.max_age_ns:
            verdict = "stale"
        else:
            self._candidate.clear()
            if self.remote:
                self._offsets.append(sample)
                while len(self._offsets) > self.window:
                    self._offsets.popleft()
            return t_capture_ns + (self.offset_ns or 0)
        if self.remote and self._resynchronised(sample):
            return t_capture_ns + (self.offset_ns or 0)
        return verdict

    def _resynchronised(self, sample: int) -> bool:
        """Keep a dropped frame's offset as evidence of a clock step; True once enough agree (then
        the offset is theirs)."""
        candidate = self._candidate
        if candidate and max(abs(sample - min(candidate)), abs(sample - max(candidate))) > self.agree_ns:
            candidate.clear()
        candidate.append(sample)
        if len(candidate) < self.resync_frames:
            return False
        self._offsets = deque(candidate)
        candidate.clear()
        self.resyncs += 1
        return True
