"""The two halves of the path from a frame set to a pose, and both together.

* :class:`HeatmapStep` (the inference half): an :class:`~crosspose.core.imageset.ImageSet` → per-view
  heatmaps and projections, through a heatmap backend, with the calibration at the frames' scale;
  :meth:`HeatmapStep.feedback` takes the performer's :class:`~crosspose.core.track.Track` for the next
  crops.
* :class:`PoseStep` (the solver half): heatmaps + projections → :class:`~crosspose.solver.Pose3D` and
  the track it leaves.
* :class:`Core`: both in one process, the track fed back at once — replay, ``crosspose reconstruct
  --videos``, the network's evaluation and training. The live service runs the halves in two stages
  (inference, solver) with the track going back over the bus.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from crosspose.core.backends import BackendOutput, HeatmapBackend
from crosspose.core.imageset import ImageSet, ScaledRig
from crosspose.core.track import Track
from crosspose.geometry import CameraRig
from crosspose.solver import Pose3D, Solver
from crosspose.solver.solver import SolverTrack

#: Seconds of capture time (or frame sets, without capture times) after which the solver forgets a performer
#: it has not solved: longer than the inference side keeps a lost performer's id.
FORGET_AFTER_S = 2.0
FORGET_AFTER = 120


class HeatmapStep:
    """Images → heatmaps for one rig (the calibration can be swapped between frame sets).

    Args:
        backend: the heatmap backend (network or simulated).
        rig: the calibration, at the size it was made for (frames of another size are handled).
    """

    def __init__(self, backend: HeatmapBackend, rig: CameraRig) -> None:
        self.backend = backend
        self.rig = ScaledRig(rig)
        self.backend.set_rig(rig)

    def set_rig(self, rig: CameraRig) -> None:
        """A new calibration, in force from the next frame set."""
        self.rig.set_rig(rig)
        self.backend.set_rig(rig)

    def rig_for(self, images: ImageSet) -> CameraRig:
        """The calibration the backend uses for ``images`` (at their scale when it reads pixels)."""
        if not self.backend.reads_pixels:
            return self.rig.rig
        rig, changed = self.rig.for_images(images.images)
        if changed:
            self.backend.set_rig(rig)
        return rig

    def planned_crop_sides(self) -> np.ndarray | None:
        """``(C,)`` pixels of the calibration's image size: per view the side of the smallest crop the next
        frame set will take, or None when they are not all known before it (a backend without crops, the
        person detector's turn somewhere: :meth:`~crosspose.inference.pipeline.FramePipeline
        .planned_crop_sides`)."""
        planned = getattr(self.backend, "planned_crop_sides", None)
        sides = None if planned is None else planned()
        if sides is None:
            return None
        # The backend's rig is the calibration at the scale of the frames it took last (ScaledRig).
        return np.asarray(sides, np.float64) / self.rig.scale

    def run(self, images: ImageSet) -> BackendOutput:
        """Heatmaps of one frame set (ValueError when its images do not fit the rig)."""
        if len(images.images) != len(self.rig.rig):
            raise ValueError(f"{len(images.images)} images for a rig of {len(self.rig.rig)} cameras")
        return self.backend.run(images, self.rig_for(images))

    def feedback(self, track: Track | None) -> None:
        """The performer's track from the pose solved last (None: lost)."""
        self.backend.feedback(track)

    def run_persons(self, images: ImageSet) -> list[tuple[int, BackendOutput]]:
        """Every performer's heatmaps of one frame set, ``[(id, output)]`` ascending by id."""
        if len(images.images) != len(self.rig.rig):
            raise ValueError(f"{len(images.images)} images for a rig of {len(self.rig.rig)} cameras")
        return self.backend.run_persons(images, self.rig_for(images))

    def feedback_persons(self, tracks: dict[int, Track | None]) -> None:
        """Each performer's track by id (None: not solved, lost)."""
        self.backend.feedback_persons(tracks)


class PoseStep:
    """Heatmaps → pose and track, with one :class:`~crosspose.solver.Solver`'s tracking state per performer.

    :meth:`run` solves one performer with the solver's own state; :meth:`run_person` keeps a
    :class:`~crosspose.solver.solver.SolverTrack` (previous pose, velocity, limb lengths) per id, forgotten
    when the id has not come for ``forget_after_s`` of capture time (or ``forget_after`` frame sets without
    capture times).

    Args:
        solver: the 3D solver.
        track_id: the id the performer's track carries (:meth:`run`).
    Attributes:
        ids_started: ids solved for the first time; ids_ended: ids forgotten.
    """

    def __init__(self, solver: Solver, track_id: int = 0, *, forget_after_s: float = FORGET_AFTER_S,
                 forget_after: int = FORGET_AFTER) -> None:
        self.solver = solver
        self.track_id = track_id
        self.forget_after_s = forget_after_s
        self.forget_after = forget_after
        self.tracks: dict[int, SolverTrack] = {}
        self._last_seen: dict[int, tuple[int, int | None]] = {}  # id → (seq, capture time) last solved
        self.ids_started = 0
        self.ids_ended = 0

    def run_person(self, id: int, heatmaps: np.ndarray, projections: np.ndarray, *, seq: int,
                   t_capture_ns: int | None) -> tuple[Pose3D, Track]:
        """Solve performer ``id`` (:meth:`run`'s arguments) with their own solver state."""
        track = self.tracks.get(id)
        if track is None:
            track = self.tracks[id] = self.solver.new_track()
            self.ids_started += 1
        self._last_seen[id] = (seq, t_capture_ns)
        pose = self.solver.solve(heatmaps, projections, t_ns=t_capture_ns, track=track)
        return pose, Track.from_pose(pose, id=id, seq=seq, t_capture_ns=t_capture_ns)

    def forget(self, seq: int, t_capture_ns: int | None) -> list[int]:
        """Forget the performers not solved for long before frame set ``seq``; returns their ids."""
        gone = []
        for id, (last_seq, last_t) in list(self._last_seen.items()):
            if t_capture_ns is not None and last_t is not None:
                old = t_capture_ns - last_t > self.forget_after_s * 1e9
            else:
                old = seq - last_seq > self.forget_after
            if old:
                gone.append(id)
                del self._last_seen[id], self.tracks[id]
        self.ids_ended += len(gone)
        return gone

    @property
    def persons(self) -> int:
        """How many performers the solver holds a state for (solved lately)."""
        return len(self.tracks)

    def run(self, heatmaps: np.ndarray, projections: np.ndarray, *, seq: int,
            t_capture_ns: int | None) -> tuple[Pose3D, Track]:
        """Solve ``heatmaps (C, J, h, w)`` with ``projections (C, 3, 4)`` of frame set ``seq``.

        ``t_capture_ns``: the capture time; a previous pose too old to track from is searched cold.
        """
        pose = self.solver.solve(heatmaps, projections, t_ns=t_capture_ns)
        return pose, Track.from_pose(pose, id=self.track_id, seq=seq, t_capture_ns=t_capture_ns)


@dataclass(frozen=True, eq=False)
class SolvedPersons:
    """One frame set through :meth:`Core.run_persons`.

    Attributes:
        images: the frame set.
        heatmaps: ``[(id, output)]`` every performer followed, ascending by id.
        persons: ``[(id, pose)]`` the performers solved (enough views), ascending by id; empty: nobody.
        tracks: per id of ``heatmaps`` the track fed back (None: not solved, lost).
        solve_ms: wall time of all the solves.
    """

    images: ImageSet
    heatmaps: list[tuple[int, BackendOutput]]
    persons: list[tuple[int, Pose3D]]
    tracks: dict[int, Track | None]
    solve_ms: float


@dataclass(frozen=True, eq=False)
class Solved:
    """One frame set through :class:`Core`: its images, heatmaps, pose (None: not solved) and track."""

    images: ImageSet
    heatmaps: BackendOutput
    pose: Pose3D | None
    track: Track | None
    solve_ms: float


class Core:
    """Frame set → heatmaps → pose in one process, the track fed back before the next frame set.

    Args:
        heatmaps: the inference half. pose: the solver half.
        min_views: solve only when at least this many views hold heatmaps (0: always; the live stream
            solves every set, offline reconstruction needs two views); otherwise the performer is lost.
    """

    def __init__(self, heatmaps: HeatmapStep, pose: PoseStep, *, min_views: int = 0) -> None:
        self.heatmaps = heatmaps
        self.pose = pose
        self.min_views = min_views
        #: Performers solved with their root outside the backend's capture volume (not reported, lost).
        self.outside_volume = 0

    def _outside(self, pose: Pose3D) -> bool:
        """Whether ``pose``'s root is known and outside the backend's capture volume (if it has one)."""
        inside = getattr(self.heatmaps.backend, "inside", None)
        root = pose.joints[self.pose.solver.skeleton.root]
        return inside is not None and bool(np.isfinite(root).all()) and not inside(root)

    def run(self, images: ImageSet) -> Solved:
        """One performer of one frame set (the solver's own state); a pose whose root is outside the
        backend's capture volume is not reported (pose None), the performer is lost and the solver's next
        search is cold (its limb lengths kept)."""
        out = self.heatmaps.run(images)
        pose, track, ms = None, None, math.nan
        if out.seen_views() >= self.min_views:
            t0 = time.perf_counter()
            pose, track = self.pose.run(out.heatmaps, out.projections, seq=images.seq,
                                        t_capture_ns=images.t_capture_ns)
            ms = 1e3 * (time.perf_counter() - t0)
            if self._outside(pose):
                self.outside_volume += 1
                self.pose.solver.track.forget_pose()
                pose = track = None
        self.heatmaps.feedback(track)
        return Solved(images, out, pose, track, ms)

    def run_persons(self, images: ImageSet) -> SolvedPersons:
        """Every performer of one frame set: all their heatmaps in one network call, each solved with their
        own solver state (when at least ``min_views`` views hold their heatmaps), the tracks fed back. A
        performer whose solved root is outside the backend's capture volume is not reported and is lost."""
        outputs = self.heatmaps.run_persons(images)
        persons: list[tuple[int, Pose3D]] = []
        tracks: dict[int, Track | None] = {}
        t0 = time.perf_counter()
        inside = getattr(self.heatmaps.backend, "inside", None)  # the capture volume, if the backend has one
        for id, out in outputs:
            tracks[id] = None
            if out.seen_views() >= max(self.min_views, 1):
                pose, track = self.pose.run_person(id, out.heatmaps, out.projections, seq=images.seq,
                                                   t_capture_ns=images.t_capture_ns)
                if inside is not None and not inside(pose.joints[self.pose.solver.skeleton.root]):
                    self.outside_volume += int(self._outside(pose))
                    continue  # a root outside the volume is never reported (and the performer is lost)
                tracks[id] = track
                persons.append((id, pose))
        ms = 1e3 * (time.perf_counter() - t0) if persons else math.nan
        self.pose.forget(images.seq, images.t_capture_ns)
        self.heatmaps.feedback_persons(tracks)
        return SolvedPersons(images, outputs, persons, tracks, ms)
