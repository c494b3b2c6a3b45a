"""Per-frame live motion in the solver stage: One Euro filter → joint rotations → VMC.

:class:`LiveMotion` holds the state the solver stage needs for its live outputs:

1. ``filter_joints`` — the optional One Euro filter (``crosspose.motion.OneEuroFilter``) on the joints
   that are published, keyed by the frame's capture time (seconds);
2. ``update`` — :class:`crosspose.motion.LiveRotations` on the (filtered) joints: root, local
   quaternions and the rest pose (None while the rest pose is being estimated);
3. ``send_vmc`` — one VMC bundle of the latest update to every target, right after the skeleton
   message has been published.

Failures of the motion code never stop the solver: they are counted (``errors``) and logged once;
that frame simply has no rotations. A performer lost for ``lost_reset_s`` seconds resets the rotations
(the next one gets a newly estimated rest pose) and the filter. Joints are those of the solver's layout
(``skeleton``): a layout the filter's groups or the humanoid bones have no entry for is refused when
the stage starts (``ValueError`` naming the joints), never filtered or rotated as another layout.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crosspose.skeleton import H36M17, Skeleton
from crosspose.streaming.sender import VmcSender

if TYPE_CHECKING:
    from crosspose.motion import FilterSettings

log = logging.getLogger(__name__)

JointFilter = Callable[[float, np.ndarray], np.ndarray]
"""``(t_s, joints (J, 3)) -> (J, 3)``: a stateful temporal filter."""


@dataclass(frozen=True)
class LiveFrame:
    """One frame's rotations: ``root (3,)`` Y-up m, ``rotations (B, 4)`` local wxyz, ``offsets (B, 3)``
    the rest pose's bone offsets (Y-up m)."""

    root: np.ndarray
    rotations: np.ndarray
    offsets: np.ndarray


class LiveMotion:
    """See the module doc.

    Args:
        rotations: compute rotations at all (False: ``update`` returns None and VMC sends status only).
        make_filter: builds a fresh filter (called at start and after a reset); None: no filtering.
        vmc: the VMC sender, or None.
        lost_reset_s: reset after this long without a usable root joint (the pelvis; seconds of capture
            time).
        warmup_frames: frames of a confident performer that estimate the rest pose.
        skeleton: the layout of the joints (the solver's).
    """

    def __init__(
        self,
        *,
        rotations: bool = True,
        make_filter: Callable[[], JointFilter] | None = None,
        vmc: VmcSender | None = None,
        lost_reset_s: float = 5.0,
        warmup_frames: int = 30,
        skeleton: Skeleton = H36M17,
    ) -> None:
        from crosspose.motion import BONE_PARENTS, BONES, UNITY_BONES, LiveRotations

        self.skeleton = skeleton
        self.bones = BONES
        self.parents = BONE_PARENTS
        self.unity_bones = tuple(UNITY_BONES[b] for b in BONES)
        self.rotations_enabled = rotations
        self._live = LiveRotations(warmup_frames=warmup_frames, skeleton=skeleton) if rotations else None
        self._make_filter = make_filter
        self._filter = make_filter() if make_filter is not None else None
        self.vmc = vmc
        self.lost_reset_s = lost_reset_s
        self._last_seen_s: float | None = None
        self.latest: LiveFrame | None = None
        self.frames = 0
        self.rotated = 0
        self.errors = 0
        self.resets = 0

    @classmethod
    def from_config(cls, config: Any, skeleton: Skeleton = H36M17) -> LiveMotion:
        """From the service config (``streaming``, ``filter``; duck-typed, no pydantic import here), for
        joints of ``skeleton`` (the solver's layout)."""
        streaming, filt = config.streaming, config.filter
        make_filter = None
        if filt.enabled:
            from crosspose.motion import OneEuroFilter

            settings = filter_settings(filt.groups)
            make_filter = lambda: OneEuroFilter(settings, skeleton)  # noqa: E731
        vmc = None
        if streaming.vmc.enabled:
            from crosspose.motion import BONES, UNITY_BONES

            vmc = VmcSender(
                streaming.vmc.targets,
                [UNITY_BONES[b] for b in BONES],
                rate_hz=streaming.vmc.send_hz,
                root_mode=streaming.vmc.root,
                diagnostics=streaming.vmc.diagnostics,
            )
        return cls(rotations=streaming.rotations or vmc is not None, make_filter=make_filter, vmc=vmc,
                   skeleton=skeleton)

    @property
    def filtering(self) -> bool:
        return self._filter is not None

    def filter_joints(self, t_s: float, joints: np.ndarray) -> np.ndarray:
        """``(J, 3)`` joints filtered at time ``t_s`` (unchanged when no filter is configured)."""
        if self._filter is None:
            return joints
        try:
            return np.asarray(self._filter(t_s, joints), dtype=np.float64)
        except Exception as err:  # e.g. time going backwards: restart the filter; never stop the stream
            self._error("filter", err)
            if self._make_filter is not None:
                self._filter = self._make_filter()
            return joints

    def update(self, t_s: float, joints: np.ndarray, confidence: np.ndarray) -> LiveFrame | None:
        """Rotations of one frame (``joints (J, 3)`` Z-up m, ``confidence (J,)`` of :attr:`skeleton`); None
        while unknown."""
        self.frames += 1
        self.latest = None
        if self._live is None:
            return None
        root = self.skeleton.root
        pelvis_ok = bool(np.isfinite(joints[root]).all() and confidence[root] > 0)
        if pelvis_ok:
            self._last_seen_s = t_s
        elif self._last_seen_s is not None and t_s - self._last_seen_s > self.lost_reset_s:
            self.reset()
        try:
            out = self._live.update(joints, confidence)
        except Exception as err:
            self._error("rotations", err)
            return None
        rest = self._live.rest
        if out is None or rest is None:
            return None
        self.rotated += 1
        self.latest = LiveFrame(out[0], out[1], rest.offsets)
        return self.latest

    def send_vmc(self, seq: int, t_publish_ns: int, tracking: bool = True) -> int:
        """Send the latest update (status only when there is none) to the VMC targets."""
        if self.vmc is None:
            return 0
        f = self.latest
        if f is None:
            return self.vmc.send_frame(seq, t_publish_ns, None, None, None)
        return self.vmc.send_frame(seq, t_publish_ns, f.root, f.rotations, f.offsets, tracking)

    def reset(self) -> None:
        """Performer lost for long: forget the rest pose and the filter state."""
        self.resets += 1
        self._last_seen_s = None
        if self._live is not None:
            self._live.reset()
        if self._make_filter is not None:
            self._filter = self._make_filter()
        log.info("live motion reset: performer lost for more than %.1f s", self.lost_reset_s)

    def _error(self, what: str, err: Exception) -> None:
        self.errors += 1
        if self.errors == 1:
            log.exception("live %s failed (counted; the skeleton stream continues): %s", what, err)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frames": self.frames,
            "rotated": self.rotated,
            "errors": self.errors,
            "resets": self.resets,
            "filter": self.filtering,
        }
        if self.vmc is not None:
            out["vmc"] = self.vmc.stats()
        return out

    def close(self) -> None:
        if self.vmc is not None:
            self.vmc.close()


def filter_settings(groups: Mapping[str, Any]) -> FilterSettings:
    """``crosspose.motion.FilterSettings`` from the config's per-group overrides (``{group: {min_cutoff,
    beta, d_cutoff}}``; unset values keep :meth:`FilterSettings.default`'s)."""
    from crosspose.motion import FilterSettings

    settings = FilterSettings.default()
    changes = {}
    for name, group in groups.items():
        if not hasattr(settings, name):
            raise ValueError(f"unknown filter group {name!r}; groups are torso, head, arms, legs")
        values = {k: v for k in ("min_cutoff", "beta", "d_cutoff") if (v := getattr(group, k)) is not None}
        changes[name] = dataclasses.replace(getattr(settings, name), **values)
    return dataclasses.replace(settings, **changes)
