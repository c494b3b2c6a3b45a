"""Per-frame live motion in the solver stage: One Euro filter → joint rotations → VMC.

:class:`LiveMotion` holds the state the solver stage needs for its live outputs:

1. ``filter_joints`` — the optional One Euro filter (``crosspose.motion.OneEuroFilter``) on the joints
   that are published, keyed by the frame's capture time (seconds);
2. ``update`` — :class:`crosspose.motion.LiveRotations` on the (filtered) joints: root, local
   quaternions and the rest pose (None while the rest pose is being estimated);
3. ``send_vmc`` — one VMC bundle of the latest update to every target, right after the skeleton
   message has been published.

Several performers: every step keeps its state per performer id (``person``; a single-person pipeline
is id 0): each performer has their own filter, rest pose and rotations, and VMC sends each target the
performer it follows (:meth:`LiveMotion.send_vmc_persons`). :meth:`LiveMotion.filter_persons`,
:meth:`LiveMotion.update_persons` and :meth:`LiveMotion.send_vmc_persons` take the frame set's performers
as ``[(id, pose)]`` (``pose.joints (J, 3)``, ``pose.confidence (J,)``).

Failures of the motion code never stop the solver: they are counted (``errors``) and logged once;
that frame simply has no rotations. A performer whose pelvis is not seen for ``lost_reset_s`` seconds
has their rotations (the next frames estimate a new rest pose) and filter reset; a performer absent from
the frame sets for ``lost_reset_s`` is forgotten (their state freed: ids are never reused). Joints
are those of the solver's layout (``skeleton``): a layout the filter's groups or the humanoid bones
have no entry for is refused when the stage starts (``ValueError`` naming the joints), never filtered or
rotated as another layout.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crosspose.skeleton import H36M17, Skeleton
from crosspose.streaming.sender import VmcFrame, VmcSender

if TYPE_CHECKING:
    from crosspose.motion import FilterSettings, LiveRotations

log = logging.getLogger(__name__)

JointFilter = Callable[[float, np.ndarray], np.ndarray]
"""``(t_s, joints (J, 3)) -> (J, 3)``: a stateful temporal filter."""
TRACKING_CONFIDENCE = 0.1
"""A pelvis at least this confident (and finite) counts as seen: VMC's tracking flag."""


class PoseLike(Protocol):
    """What the live outputs read of a solved pose (:class:`crosspose.solver.Pose3D`)."""

    @property
    def joints(self) -> np.ndarray: ...  # (J, 3) Z-up m

    @property
    def confidence(self) -> np.ndarray: ...  # (J,)


@dataclass(frozen=True)
class LiveFrame:
    """One frame's rotations: ``root (3,)`` Y-up m, ``rotations (B, 4)`` local wxyz, ``offsets (B, 3)``
    the rest pose's bone offsets (Y-up m), of the ``B`` bones the layout carries
    (:attr:`LiveMotion.bones`: the full body's include the toes, Human3.6M-17's do not)."""

    root: np.ndarray
    rotations: np.ndarray
    offsets: np.ndarray


class _Performer:
    """One performer's live state: filter, rotations (rest pose), when they were last seen."""

    def __init__(self, live: LiveRotations | None, joint_filter: JointFilter | None, t_s: float) -> None:
        self.live = live
        self.filter = joint_filter
        self.pelvis_seen_s: float | None = None
        self.last_frame_s = t_s
        self.latest: LiveFrame | None = None


class LiveMotion:
    """See the module doc.

    Args:
        rotations: compute rotations at all (False: ``update`` returns None and VMC sends status only).
        make_filter: builds a fresh filter (called per performer and after a reset); None: no filtering.
        vmc: the VMC sender, or None.
        lost_reset_s: reset a performer after this long without a usable root joint (the pelvis), forget
            one absent from the frame sets this long (seconds of capture time).
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
        from crosspose.motion import UNITY_BONES, LiveRotations, humanoid_map

        # Built once here so that a layout they cannot handle is refused when the stage starts.
        if rotations:
            LiveRotations(warmup_frames=warmup_frames, skeleton=skeleton)
        if make_filter is not None:
            make_filter()
        self.skeleton = skeleton
        carried = humanoid_map(skeleton) if rotations else None
        self.bones = carried.bones if carried else ()
        self.parents = carried.bone_parents if carried else ()
        self._index = list(carried.bone_index) if carried else []
        self.unity_bones = tuple(UNITY_BONES[b] for b in self.bones)
        self.rotations_enabled = rotations
        self.warmup_frames = warmup_frames
        self._make_filter = make_filter
        self.vmc = vmc
        self.lost_reset_s = lost_reset_s
        self._people: dict[int, _Performer] = {}
        self._current: list[int] = []  # ids of the last frame set, ascending
        self.frames = 0
        self.rotated = 0
        self.errors = 0
        self.resets = 0
        self.forgotten = 0

    @classmethod
    def from_config(cls, config: Any, skeleton: Skeleton = H36M17) -> LiveMotion:
        """From the service config (``streaming``, ``filter``; duck-typed, no pydantic import here), for
        joints of ``skeleton`` (the solver's layout); VMC receivers follow the performers
        ``streaming.vmc.routes()`` names."""
        streaming, filt = config.streaming, config.filter
        make_filter = None
        if filt.enabled:
            from crosspose.motion import OneEuroFilter

            settings = filter_settings(filt.groups)
            make_filter = lambda: OneEuroFilter(settings, skeleton)  # noqa: E731
        vmc = None
        if streaming.vmc.enabled:
            from crosspose.motion import UNITY_BONES, humanoid_map

            targets, persons = streaming.vmc.routes()
            vmc = VmcSender(
                targets,
                [UNITY_BONES[b] for b in humanoid_map(skeleton).bones],
                rate_hz=streaming.vmc.send_hz,
                root_mode=streaming.vmc.root,
                diagnostics=streaming.vmc.diagnostics,
                persons=persons,
            )
        return cls(rotations=streaming.rotations or vmc is not None, make_filter=make_filter, vmc=vmc,
                   skeleton=skeleton)

    @property
    def filtering(self) -> bool:
        return self._make_filter is not None

    @property
    def latest(self) -> LiveFrame | None:
        """The rotations of the lowest id of the last frame set (None: none known)."""
        return self._people[self._current[0]].latest if self._current else None

    def latest_of(self, person: int) -> LiveFrame | None:
        """Performer ``person``'s rotations of the last frame set they were in (None: none known)."""
        p = self._people.get(person)
        return None if p is None else p.latest

    @property
    def persons(self) -> list[int]:
        """Ids of the performers whose state is kept, ascending."""
        return sorted(self._people)

    def _performer(self, person: int, t_s: float) -> _Performer:
        p = self._people.get(person)
        if p is None:
            from crosspose.motion import LiveRotations

            live = LiveRotations(warmup_frames=self.warmup_frames, skeleton=self.skeleton) if (
                self.rotations_enabled) else None
            p = self._people[person] = _Performer(
                live, self._make_filter() if self._make_filter is not None else None, t_s
            )
        return p

    def filter_joints(self, t_s: float, joints: np.ndarray, person: int = 0) -> np.ndarray:
        """Performer ``person``'s ``(J, 3)`` joints filtered at time ``t_s`` (unchanged when no filter is
        configured)."""
        if self._make_filter is None:
            return joints
        p = self._performer(person, t_s)
        if p.filter is None:
            return joints
        try:
            return np.asarray(p.filter(t_s, joints), dtype=np.float64)
        except Exception as err:  # e.g. time going backwards: restart the filter; never stop the stream
            self._error("filter", err)
            p.filter = self._make_filter()
            return joints

    def filter_persons(self, t_s: float, persons: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """The frame set's performers ``[(id, pose)]`` with each pose's joints filtered by that
        performer's filter (the same list when no filter is configured). ``pose``: a dataclass such as
        :class:`crosspose.solver.Pose3D`."""
        if self._make_filter is None:
            return list(persons)
        return [(i, dataclasses.replace(pose, joints=self.filter_joints(t_s, pose.joints, i)))
                for i, pose in persons]

    def update(self, t_s: float, joints: np.ndarray, confidence: np.ndarray,
               person: int = 0) -> LiveFrame | None:
        """Performer ``person``'s rotations of one frame (``joints (J, 3)`` Z-up m, ``confidence (J,)`` of
        :attr:`skeleton`); None while unknown. With the default ``person`` this is the single-person
        pipeline's one call per frame set."""
        self._current = [person]
        self.frames += 1
        return self._update(self._performer(person, t_s), person, t_s, joints, confidence)

    def update_persons(
        self, t_s: float, persons: Sequence[tuple[int, PoseLike]]
    ) -> dict[int, LiveFrame | None]:
        """Rotations of every performer of one frame set (``[(id, pose)]``), by id; performers absent
        for ``lost_reset_s`` are forgotten."""
        self.frames += 1
        self._current = sorted(i for i, _ in persons)
        out = {i: self._update(self._performer(i, t_s), i, t_s, pose.joints, pose.confidence)
               for i, pose in persons}
        limit = self.lost_reset_s
        gone = [i for i, p in self._people.items() if i not in out and t_s - p.last_frame_s > limit]
        for i in gone:
            del self._people[i]
            self.forgotten += 1
        return out

    def _update(self, p: _Performer, person: int, t_s: float, joints: np.ndarray,
                confidence: np.ndarray) -> LiveFrame | None:
        p.latest = None
        p.last_frame_s = t_s
        if p.live is None:
            return None
        root = self.skeleton.root
        pelvis_ok = bool(np.isfinite(joints[root]).all() and confidence[root] > 0)
        if pelvis_ok:
            p.pelvis_seen_s = t_s
        elif p.pelvis_seen_s is not None and t_s - p.pelvis_seen_s > self.lost_reset_s:
            self._reset(p, person)
        try:
            out = p.live.update(joints, confidence)
        except Exception as err:
            self._error("rotations", err)
            return None
        rest = p.live.rest
        if out is None or rest is None:
            return None
        self.rotated += 1
        p.latest = LiveFrame(out[0], out[1][self._index], rest.offsets[self._index])
        return p.latest

    def send_vmc(self, seq: int, t_publish_ns: int, tracking: bool = True) -> int:
        """Send the latest update (status only when there is none) to the VMC targets (one performer:
        every target gets it, whoever it follows)."""
        if self.vmc is None:
            return 0
        f = self.latest
        if f is None:
            return self.vmc.send_frame(seq, t_publish_ns, None, None, None)
        return self.vmc.send_frame(seq, t_publish_ns, f.root, f.rotations, f.offsets, tracking)

    def send_vmc_persons(self, seq: int, t_publish_ns: int, persons: Sequence[tuple[int, PoseLike]]) -> int:
        """Send the frame set's performers (``[(id, pose)]``, after :meth:`update_persons`) to the VMC
        targets, each target the performer it follows; the tracking flag says whether that performer's
        pelvis is seen (finite, confidence >= :data:`TRACKING_CONFIDENCE`). Returns the targets reached."""
        if self.vmc is None:
            return 0
        root = self.skeleton.root
        frames: dict[int, VmcFrame | None] = {}
        for i, pose in persons:
            f = self.latest_of(i)
            seen = bool(np.isfinite(pose.joints[root]).all() and pose.confidence[root] >= TRACKING_CONFIDENCE)
            frames[i] = None if f is None else VmcFrame(f.root, f.rotations, f.offsets, seen)
        return self.vmc.send_persons(seq, t_publish_ns, frames)

    def reset(self, person: int | None = None) -> None:
        """Performer lost for long: forget their rest pose and filter state (None: every performer's)."""
        for i in [person] if person is not None else list(self._people):
            if i in self._people:
                self._reset(self._people[i], i)

    def _reset(self, p: _Performer, person: int) -> None:
        self.resets += 1
        p.pelvis_seen_s = None
        if p.live is not None:
            p.live.reset()
        if self._make_filter is not None:
            p.filter = self._make_filter()
        log.info("live motion reset: performer %d lost for more than %.1f s", person, self.lost_reset_s)

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
            "persons": len(self._people),
            "forgotten": self.forgotten,
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
