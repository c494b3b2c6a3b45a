"""Offline reconstruction of several performers: synchronized videos → every performer's 3D skeleton per
frame set (``crosspose reconstruct --videos --persons N``).

The live service's own path (:func:`crosspose.core.videos.track_videos_persons`): per-view detection and
cross-view association inside the capture volume find the people, each is followed with their own crops,
fusion prior and solver state, everyone's crops go through the network in one call per frame set, and ids
are stable (kept through short losses, never reused). :func:`reconstruct_videos_persons` returns a
:class:`PersonsReconstruction`: per frame set the performers solved as ``[(id, Pose3D)]`` ascending by id
(:meth:`PersonsReconstruction.persons`); :func:`write_persons_jsonl` writes one line per frame set with the
``persons`` list of the websocket message (the top-level fields are those of the lowest id, as there).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosspose.geometry import CameraRig
from crosspose.skeleton import DEFAULT_SKELETON, Skeleton
from crosspose.solver import Pose3D

if TYPE_CHECKING:
    from crosspose.core.videos import VideoPersonsFrame
    from crosspose.reconstruct_take import HeatmapStore, StoredSet
    from crosspose.solver.take import TakeLengths

PERSONS_JSONL_FORMAT = "crosspose-persons-jsonl"
#: The top-level fields of a frame line taken from the skeleton message (the lowest id's performer).
PERSON_FIELDS = ("joints", "views", "mode")


@dataclass(frozen=True, eq=False)
class PersonsReconstruction:
    """A reconstructed take of several performers (``N`` frame sets, ``J`` joints of :attr:`skeleton`).

    Attributes:
        frames: per frame set the performers solved, ``[(id, pose)]`` ascending by id (empty: nobody).
        camera_names: the calibration's cameras, in the order solved.
        fps: frames per second of the take.
        stats: the run's extras (inference timings, detector runs, ids started and ended, the provider).
        skeleton: the joint layout (the solver's).
    """

    frames: list[list[tuple[int, Pose3D]]]
    camera_names: tuple[str, ...]
    fps: float = 30.0
    stats: dict[str, Any] = field(default_factory=dict)
    skeleton: Skeleton = DEFAULT_SKELETON

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def persons(self, index: int) -> list[tuple[int, Pose3D]]:
        """Frame set ``index``'s performers, ``[(id, pose)]`` ascending by id."""
        return list(self.frames[index])

    @property
    def ids(self) -> list[int]:
        """Every id reported over the take, ascending."""
        return sorted({id for persons in self.frames for id, _ in persons})

    def track(self, id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Performer ``id`` over the take: ``joints (N, J, 3)`` metres (NaN where not reported),
        ``confidence (N, J)`` and ``views (N, J)`` (0 there)."""
        n, j = self.num_frames, self.skeleton.num_joints
        joints, confidence = np.full((n, j, 3), np.nan), np.zeros((n, j))
        views = np.zeros((n, j), np.int64)
        for i, persons in enumerate(self.frames):
            for pid, pose in persons:
                if pid == id:
                    joints[i], confidence[i], views[i] = pose.joints, pose.confidence, pose.views
        return joints, confidence, views


def persons_frame(persons: list[tuple[int, Pose3D]], *, frame: int, t_s: float,
                  cameras: tuple[str, ...], skeleton: str) -> dict[str, Any]:
    """One frame set as a line of :func:`write_persons_jsonl`: ``{"frame", "t", "joints", "views", "mode",
    "persons": [{"id", "joints", "views", "mode"}, …]}`` — the websocket message's own per-person list and
    top level (the lowest id's; nobody tracked: the lost shape), built by the same
    :func:`~crosspose.bus.schema.skeleton_message` (joints ``[x, y, z, confidence]`` rows, metres, null
    where unknown; ``skeleton`` the layout's name)."""
    from crosspose.bus.schema import skeleton_message

    t_ns = round(t_s * 1e9)
    message = skeleton_message(persons=persons, skeleton=skeleton, seq=frame, t_capture_ns=t_ns,
                               cameras=cameras, latency_ms={}, t_publish_ns=t_ns)
    line: dict[str, Any] = {"frame": int(frame), "t": round(float(t_s), 6)}
    line.update({k: message[k] for k in PERSON_FIELDS})
    line["persons"] = message["persons"]
    return line


def write_persons_jsonl(rec: PersonsReconstruction, path: str | Path) -> Path:
    """JSON lines: a header object (format, fps, units, layout and joint names, cameras, ids), then one
    :func:`persons_frame` object per frame set."""
    path = Path(path)
    header = {"format": PERSONS_JSONL_FORMAT, "v": 1, "fps": rec.fps, "units": "m",
              "axes": "z-up, right-handed (crosspose world)", "skeleton": rec.skeleton.name,
              "joint_names": list(rec.skeleton.joints), "cameras": list(rec.camera_names), "ids": rec.ids}
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for i, persons in enumerate(rec.frames):
            line = persons_frame(persons, frame=i, t_s=i / rec.fps, cameras=rec.camera_names,
                                 skeleton=rec.skeleton.name)
            f.write(json.dumps(line) + "\n")
    return path


def reconstruct_videos_persons(
    calibration: str | Path | CameraRig,
    videos_dir: str | Path,
    *,
    max_persons: int,
    network: Any = None,
    fused: bool = True,
    max_frames: int | None = None,
    progress: bool = True,
    solver: Any = None,
    detector: Any = None,
    device: str = "auto",
    volume: Any = None,
    lengths: str = "take",
    on_frame: Callable[[VideoPersonsFrame], None] | None = None,
) -> PersonsReconstruction:
    """Reconstruct up to ``max_persons`` performers from synchronized videos
    (:func:`crosspose.reconstruct.reconstruct_videos`'s arguments; ``volume``: a
    :class:`~crosspose.inference.association.Volume`, default the floor seen by at least 3 cameras;
    ``on_frame``: called with each frame set of the first pass as it is solved, with what the network made
    of it, :class:`~crosspose.core.videos.VideoPersonsFrame`).
    ``lengths="take"`` (the default): each performer id's lengths learnt over the take, their frame sets
    solved again with them from the id's first frame (:func:`resolve_persons`); ``online``: one pass,
    lengths learnt as the take goes, as the live service does (on the real multi-person clip its worst long
    bone varies 5.5 % against 1.8 % with ``take``, README issue 21).

    Raises:
        ReconstructError, CalibrationError: bad inputs, with a message saying which.
    """
    from crosspose.core.videos import track_videos_persons
    from crosspose.inference.pipeline import FramePipeline
    from crosspose.reconstruct import ReconstructError, _check_lengths, open_videos, video_inputs
    from crosspose.reconstruct_take import HeatmapStore, lengths_stats
    from crosspose.solver.take import TakeLengths

    _check_lengths(lengths)
    if max_persons < 1:
        raise ReconstructError(f"--persons must be at least 1, got {max_persons}")
    rig, paths, solver, network = video_inputs(calibration, videos_dir, solver, network, device)
    skeleton: Skeleton = solver.skeleton
    pipeline = FramePipeline(rig, network, detector, volume=volume, max_persons=max_persons)
    frames: list[list[tuple[int, Pose3D]]] = []
    timings: list[dict[str, float]] = []
    store: HeatmapStore | None = None
    stored: dict[int, list[StoredSet | None]] = {}  # per id, per frame set
    learnt: dict[int, TakeLengths] = {}
    start = time.perf_counter()
    with open_videos(paths, max_frames) as videos:
        fps = videos.fps
        if lengths == "take":  # at most max_persons performers' heatmaps a frame set
            store = HeatmapStore(expected_sets=videos.num_frames * max_persons)
        for frame in track_videos_persons(rig, videos, network, solver, max_persons=max_persons, fused=fused,
                                          progress=progress, pipeline=pipeline):
            frames.append(frame.persons)
            if on_frame is not None:
                on_frame(frame)
            if frame.results:
                timings.append(frame.results[0][1].timings_ms)
            if store is not None:
                for id, out in frame.outputs:
                    stored.setdefault(id, [None] * (len(frames) - 1)).append(store.add(out.heatmaps,
                                                                                       out.projections))
                for id, pose in frame.persons:
                    learnt.setdefault(id, TakeLengths(skeleton)).add(pose)
                for sets in stored.values():
                    sets.extend([None] * (len(frames) - len(sets)))
    lengths_run: dict[str, Any] = {"mode": "online"}
    if store is not None:
        first_pass_s, start = time.perf_counter() - start, time.perf_counter()
        with store:
            frames = resolve_persons(stored, learnt, store, solver, len(frames), pipeline.inside,
                                     progress=progress)
            lengths_run = lengths_stats({id: take.to_json() for id, take in sorted(learnt.items())}, store,
                                        first_pass_s, time.perf_counter() - start)
    stats: dict[str, Any] = {
        "lengths": lengths_run,
        "heatmaps": "fused" if fused else "raw",
        "provider": getattr(network, "provider", type(network).__name__),
        "max_persons": max_persons,
        "detector_runs": pipeline.detector_runs,
        "detector_views": pipeline.detector_views,
        "ids_started": pipeline.ids_started,
        "ids_ended": pipeline.ids_ended,
        "inference_ms": {k: float(np.median([t[k] for t in timings])) if timings else math.nan
                         for k in ("detect", "crop", "network", "total")},
        "videos": [None if p is None else p.name for p in paths],
    }
    return PersonsReconstruction(frames, tuple(rig.names), float(fps), stats, skeleton)


def resolve_persons(stored: dict[int, list[StoredSet | None]], learnt: dict[int, TakeLengths],
                    store: HeatmapStore, solver: Any, num_frames: int,
                    inside: Callable[[np.ndarray], bool] | None = None,
                    progress: bool = False) -> list[list[tuple[int, Pose3D]]]:
    """The second pass of ``lengths="take"``: each performer id's recorded frame sets (``stored``, per id
    one entry per frame set, None where the id had none) solved again with that id's own lengths
    (``learnt``; an id without: never solved, nothing reported) from a fresh track
    (:func:`~crosspose.reconstruct_take.resolve_frames`). Returns per frame set (``num_frames``)
    ``[(id, pose)]`` ascending by id; a root outside the capture volume (``inside`` False) is not reported
    there."""
    from crosspose.reconstruct_take import resolve_frames

    again: list[list[tuple[int, Pose3D]]] = [[] for _ in range(num_frames)]
    for id in sorted(stored):
        if id not in learnt:
            continue
        for i, done in enumerate(resolve_frames(stored[id], store, solver, learnt[id], inside,
                                                forget_outside=False, progress=progress)):
            if done.pose is not None:
                again[i].append((id, done.pose))
    return again
