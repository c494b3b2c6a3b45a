"""Synchronized videos through the core, frame by frame: what ``crosspose reconstruct --videos``, the
network's evaluation on the real clip and the fusion training's pseudo-labels run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from crosspose.core.backends import BackendOutput, NetworkBackend
from crosspose.core.imageset import ImageSet
from crosspose.core.steps import Core, HeatmapStep, PoseStep
from crosspose.geometry import CameraRig
from crosspose.io.videos import SyncedVideos
from crosspose.solver import Pose3D, Solver

if TYPE_CHECKING:
    from crosspose.inference.detector import PersonDetector
    from crosspose.inference.network import HeatmapNetwork
    from crosspose.inference.pipeline import FramePipeline, InferenceResult


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One frame set of :func:`track_videos`: the images, what the network made of them, the solved pose."""

    index: int
    images: list[np.ndarray | None]
    result: InferenceResult
    pose: Pose3D | None  # None when fewer than two views saw the performer, or its root left the volume
    solve_ms: float
    outside_volume: bool = False  # solved with the root outside the capture volume: not reported
    output: BackendOutput | None = None  # the heatmaps and projections the solver got


@dataclass(frozen=True, eq=False)
class VideoPersonsFrame:
    """One frame set of :func:`track_videos_persons`: the images, what the network made of them for each
    performer followed (``[(id, result)]``), and the performers solved (``[(id, pose)]``, ascending ids)."""

    index: int
    images: list[np.ndarray | None]
    results: list[tuple[int, InferenceResult]]
    persons: list[tuple[int, Pose3D]]
    solve_ms: float
    outputs: list[tuple[int, BackendOutput]] = field(default_factory=list)  # what each one's solver got


def video_core(rig: CameraRig, network: HeatmapNetwork, solver: Solver, *, fused: bool = True,
               detector: PersonDetector | None = None, pipeline: FramePipeline | None = None) -> Core:
    """The core (:class:`crosspose.core.Core`) that :func:`track_videos` runs: ``network`` through a
    :class:`~crosspose.inference.pipeline.FramePipeline` (``pipeline`` if given), then ``solver``; a frame
    set is solved when at least two views see the performer."""
    from crosspose.inference.pipeline import FramePipeline

    pipeline = FramePipeline(rig, network, detector) if pipeline is None else pipeline
    return Core(HeatmapStep(NetworkBackend(pipeline, fused), rig), PoseStep(solver), min_views=2)


def track_videos(
    rig: CameraRig, videos: SyncedVideos, network: HeatmapNetwork, solver: Solver, *, fused: bool = True,
    detector: PersonDetector | None = None, progress: bool = True, pipeline: FramePipeline | None = None,
) -> Iterator[VideoFrame]:
    """Frame by frame through the live service's own path (:func:`video_core`): images → crops →
    network → solver, the performer's track placing the next crops."""
    from tqdm import tqdm

    core = video_core(rig, network, solver, fused=fused, detector=detector, pipeline=pipeline)
    for i, images in enumerate(tqdm(videos, total=videos.num_frames, desc="reconstruct", unit="frame",
                                    disable=not progress)):
        outside = core.outside_volume
        solved = core.run(ImageSet(i, None, images))  # video frames: consecutive, whatever their rate
        result = solved.heatmaps.result
        if result is None:  # video_core's backend is the network: it always returns its result
            raise TypeError("track_videos needs a network backend")
        yield VideoFrame(i, images, result, solved.pose, solved.solve_ms, core.outside_volume > outside,
                         solved.heatmaps)


def track_videos_persons(
    rig: CameraRig, videos: SyncedVideos, network: HeatmapNetwork, solver: Solver, *, max_persons: int,
    fused: bool = True, detector: PersonDetector | None = None, progress: bool = True,
    pipeline: FramePipeline | None = None,
) -> Iterator[VideoPersonsFrame]:
    """:func:`track_videos` for up to ``max_persons`` performers (:meth:`crosspose.core.Core.run_persons`):
    each one's crops from their own track, all through the network in one call per frame set, each solved
    with their own solver state."""
    from tqdm import tqdm

    from crosspose.inference.pipeline import FramePipeline

    if pipeline is None:
        pipeline = FramePipeline(rig, network, detector, max_persons=max_persons)
    core = video_core(rig, network, solver, fused=fused, pipeline=pipeline)
    for i, images in enumerate(tqdm(videos, total=videos.num_frames, desc="reconstruct", unit="frame",
                                    disable=not progress)):
        solved = core.run_persons(ImageSet(i, None, images))
        results = []
        for id, out in solved.heatmaps:
            if out.result is None:
                raise TypeError("track_videos_persons needs a network backend")
            results.append((id, out.result))
        yield VideoPersonsFrame(i, images, results, solved.persons, solved.solve_ms, solved.heatmaps)
