"""One path from a frame set to a pose, shared by the live stages, replay, reconstruction and training.

A frame set's images (:class:`ImageSet`) go through a heatmap backend (:class:`HeatmapStep`: the
network, or the synthetic studio's simulation) and the solver (:class:`PoseStep`); the pose leaves a
:class:`Track` that places the next frame set's crops. :class:`Core` runs both halves in one process.
"""

from crosspose.core.backends import (
    BackendOutput,
    HeatmapBackend,
    NetworkBackend,
    SimulatedBackend,
    backend_from_config,
)
from crosspose.core.imageset import ImageSet, ScaledRig, capture_time_ns, frameset_images, image_scale
from crosspose.core.steps import Core, HeatmapStep, PoseStep, Solved, SolvedPersons
from crosspose.core.track import Track

__all__ = [
    "BackendOutput",
    "Core",
    "HeatmapBackend",
    "HeatmapStep",
    "ImageSet",
    "NetworkBackend",
    "PoseStep",
    "ScaledRig",
    "SimulatedBackend",
    "Solved",
    "SolvedPersons",
    "Track",
    "backend_from_config",
    "capture_time_ns",
    "frameset_images",
    "image_scale",
]
