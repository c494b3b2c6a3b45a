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

    def run(self, images: ImageSet) -> BackendOutput:
        """Heatmaps of one frame set (ValueError when its images do not fit the rig)."""
        if len(images.images) != len(self.rig.rig):
            raise ValueError(f"{len(images.images)} images for a rig of {len(self.rig.rig)} cameras")
        return self.backend.run(images, self.rig_for(images))

    def feedback(self, track: Track | None) -> None:
        """The performer's track from the pose solved last (None: lost)."""
        self.backend.feedback(track)


class PoseStep:
    """Heatmaps → pose and track, with one :class:`~crosspose.solver.Solver`'s tracking state.

    Args:
        solver: the 3D solver.
        track_id: the id the performer's track carries.
    """

    def __init__(self, solver: Solver, track_id: int = 0) -> None:
        self.solver = solver
        self.track_id = track_id

    def run(self, heatmaps: np.ndarray, projections: np.ndarray, *, seq: int,
            t_capture_ns: int | None) -> tuple[Pose3D, Track]:
        """Solve ``heatmaps (C, J, h, w)`` with ``projections (C, 3, 4)`` of frame set ``seq``.

        ``t_capture_ns``: the capture time; a previous pose too old to track from is searched cold.
        """
        pose = self.solver.solve(heatmaps, projections, t_ns=t_capture_ns)
        return pose, Track.from_pose(pose, id=self.track_id, seq=seq, t_capture_ns=t_capture_ns)


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

    def run(self, images: ImageSet) -> Solved:
        out = self.heatmaps.run(images)
        pose, track, ms = None, None, math.nan
        if out.seen_views() >= self.min_views:
            t0 = time.perf_counter()
            pose, track = self.pose.run(out.heatmaps, out.projections, seq=images.seq,
                                        t_capture_ns=images.t_capture_ns)
            ms = 1e3 * (time.perf_counter() - t0)
        self.heatmaps.feedback(track)
        return Solved(images, out, pose, track, ms)
