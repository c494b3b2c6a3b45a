"""Heatmap backends: what turns a frame set's images into per-view heatmaps and projections.

* :class:`NetworkBackend` — the fusion network through :class:`~crosspose.inference.pipeline.FramePipeline`:
  crops from the performer's track, the person detector on a cold start or a lost view.
* :class:`SimulatedBackend` — **the network bypassed**: heatmaps simulated from the synthetic studio's
  ground truth for the frame each synthetic camera rendered (``crosspose.studio``, realistic error
  modes). It isolates transport, sync and solver cost; it is named as such everywhere it reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crosspose.core.imageset import ImageSet
from crosspose.core.track import Track
from crosspose.geometry import CameraRig

if TYPE_CHECKING:
    from crosspose.config import Config
    from crosspose.inference.detector import PersonDetector
    from crosspose.inference.network import RuntimeInfo
    from crosspose.inference.pipeline import FramePipeline, InferenceResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BackendOutput:
    """One frame set's heatmaps (``C`` views, ``J`` joints).

    Attributes:
        heatmaps: ``(C, J, h, w)`` float32 in [0, 1], what the solver gets (zeros for a view not seen).
        projections: ``(C, 3, 4)`` world metres → heatmap pixels, crop folded in (NaN for a view not seen).
        extra: what the backend reports with the heatmaps message (sources, presence, timings …).
        crop_corners: per view the crop square's ``(4, 2)`` image pixels, or None.
        result: the network's whole :class:`~crosspose.inference.pipeline.InferenceResult` (raw and fused
            heatmaps, crops, presence), or None for a simulated backend.
    """

    heatmaps: np.ndarray
    projections: np.ndarray
    extra: dict[str, Any]
    crop_corners: list[np.ndarray | None]
    result: InferenceResult | None = None

    def seen_views(self) -> int:
        """How many views hold heatmaps (a view not seen has a NaN projection)."""
        return int(np.isfinite(self.projections).all(axis=(1, 2)).sum())


class HeatmapBackend(Protocol):
    """What the core needs of a heatmap backend."""

    name: str
    #: Whether it reads the images (then it gets the calibration at the frames' scale).
    reads_pixels: bool

    @property
    def provider(self) -> str:
        """What the heartbeat's ``provider`` shows (ONNX Runtime's provider, another runtime's name)."""

    @property
    def info(self) -> RuntimeInfo | None:
        """What really runs the network (runtime, device, precision); None when no network runs."""

    def set_rig(self, rig: CameraRig) -> None:
        """The calibration in force from the next frame set (at the frames' scale)."""

    def run(self, images: ImageSet, rig: CameraRig) -> BackendOutput:
        """Heatmaps of one frame set."""

    def feedback(self, track: Track | None) -> None:
        """The performer's track from the last solved pose (None: lost)."""

    def run_persons(self, images: ImageSet, rig: CameraRig) -> list[tuple[int, BackendOutput]]:
        """Heatmaps of one frame set for every performer followed, ``[(id, output)]`` ascending by id."""

    def feedback_persons(self, tracks: dict[int, Track | None]) -> None:
        """Each performer's track by id from the poses solved last (None: not solved, lost)."""


class NetworkBackend:
    """The fusion network through a :class:`~crosspose.inference.pipeline.FramePipeline`.

    Args:
        pipeline: crops → network → heatmaps, with the performer's crop state.
        fused: give the solver the fused heatmaps (False: each view's own).
    """

    name = "network"
    reads_pixels = True

    def __init__(self, pipeline: FramePipeline, fused: bool = True) -> None:
        self.pipeline = pipeline
        self.fused = fused

    @property
    def info(self) -> RuntimeInfo | None:
        """What runs the network now (read at each heartbeat: a recompilation reports what it compiled)."""
        return getattr(self.pipeline.network, "info", None)

    @property
    def provider(self) -> str:
        info = self.info
        return "torch" if info is None else info.provider

    @classmethod
    def from_config(cls, config: Config, rig: CameraRig) -> NetworkBackend:
        """The network on the runtime ``inference.runtime`` names
        (:func:`crosspose.inference.runtimes.open_network`) and its person detector; without
        ``inference.model``, the cached export in the solver's layout (``solver.skeleton``)."""
        from crosspose.inference.association import Volume
        from crosspose.inference.pipeline import FramePipeline
        from crosspose.inference.runtimes import open_network
        from crosspose.nets.export import default_onnx_path
        from crosspose.skeleton import DEFAULT_SKELETON

        model = config.inference.model
        if model is None and config.solver.skeleton != DEFAULT_SKELETON.name:  # else the runtime's default
            model = default_onnx_path(config.solver.skeleton)
        network = open_network(config.inference, path=model, num_cameras=len(rig))
        detector = person_detector(model, config, num_cameras=len(rig))
        box = config.capture.volume
        volume = None if box is None else Volume(np.array(box.min), np.array(box.max))
        pipeline = FramePipeline(rig, network, detector=detector, volume=volume,
                                 max_persons=config.capture.max_persons,
                                 search_views=config.capture.search_views)
        return cls(pipeline, fused=config.inference.heatmaps == "fused")

    def set_rig(self, rig: CameraRig) -> None:
        self.pipeline.set_rig(rig)

    def planned_crop_sides(self) -> np.ndarray | None:
        """The next frame set's crop sides per view, pixels of the rig set last, or None (not all known):
        :meth:`~crosspose.inference.pipeline.FramePipeline.planned_crop_sides`."""
        return self.pipeline.planned_crop_sides()

    def run(self, images: ImageSet, rig: CameraRig) -> BackendOutput:
        return self._output(self.pipeline.process(images.images, images.t_capture_ns))

    def run_persons(self, images: ImageSet, rig: CameraRig) -> list[tuple[int, BackendOutput]]:
        """Every performer's heatmaps (:meth:`FramePipeline.process_persons`: one network call)."""
        results = self.pipeline.process_persons(images.images, images.t_capture_ns)
        return [(id, self._output(result)) for id, result in results]

    def feedback_persons(self, tracks: dict[int, Track | None]) -> None:
        self.pipeline.feedback_persons(tracks)

    def inside(self, root: np.ndarray) -> bool:
        """Whether a solved root (metres) is inside the capture volume (:meth:`FramePipeline.inside`)."""
        return self.pipeline.inside(root)

    def _output(self, result: InferenceResult) -> BackendOutput:
        heatmaps, projections = result.solver_inputs(fused=self.fused)
        corners = [None if crop is None else crop.corners() for crop in result.crops]
        extra = {
            "sources": list(result.sources),
            "presence": [round(float(p), 3) for p in result.presence],
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
            "window_scale": round(result.window_scale, 2),
        }
        if result.hidden is not None:  # joints another performer hides, per view
            extra["hidden"] = [int(n) for n in result.hidden.sum(1)]
        return BackendOutput(heatmaps, projections, extra, corners, result)

    def feedback(self, track: Track | None) -> None:
        self.pipeline.feedback(track)


def person_detector(network_path: Path | None, config: Config, num_cameras: int = 0) -> PersonDetector | None:
    """The cold-start detector on the network's runtime (for ONNX Runtime ``crosspose_detector.onnx``
    beside the network, same device and threads), or None — the pipeline then builds the eager torch one,
    ~2-2.5x slower on the CPU — when that file is missing (exported before the detector was) or does not
    load."""
    from crosspose.inference.runtimes import open_detector

    try:
        return open_detector(config.inference, network_path=network_path, num_cameras=num_cameras)
    except FileNotFoundError as err:
        log.warning("%s: the person detector runs in eager torch (slower)", err)
    except Exception as err:  # a bad detector file must not stop the network; torch still works
        log.warning("person detector did not load (%s): using eager torch", err)
    return None


class SimulatedBackend:
    """Network bypassed: heatmaps simulated from the synthetic studio's ground truth (see module doc).

    Each camera's source must be ``synthetic…`` of the same studio (seed, camera count, frames); the
    frame index is recovered from the frame's device timestamp (``seq / fps``).
    """

    name = "simulated"
    provider = "simulated (network bypassed)"
    info: RuntimeInfo | None = None  # no network runs
    reads_pixels = False  # grabbers may send placeholder frames

    def __init__(self, config: Config, seed: int = 0) -> None:
        from crosspose.capture.synthetic import parse_synthetic
        from crosspose.skeleton import get_skeleton
        from crosspose.studio import HeatmapErrors, make_scene
        from crosspose.studio.extremities import full_body, moving_poses

        params = [parse_synthetic(c.source) for c in config.cameras if c.source.startswith("synthetic")]
        if len(params) != len(config.cameras):
            raise ValueError("inference.backend 'simulated' needs every camera source to be synthetic")
        p = params[0]
        self.fps = config.cameras[0].fps or 30.0
        self.frames = p.get("frames", 300)
        self.scene = make_scene(p.get("seed", 0), self.frames, max(len(config.cameras), 2), fps=self.fps)
        #: The solver's layout; the full body's extremities are placed on the studio's motion.
        self.skeleton = get_skeleton(config.solver.skeleton)
        self.joints3d = self.scene.joints3d
        if self.skeleton.extremities:
            poses = moving_poses(self.frames, self.fps, p.get("seed", 0))
            self.joints3d = full_body(self.scene.joints3d, poses)
        self.errors = HeatmapErrors.realistic()
        self.rng = np.random.default_rng(seed)

    def set_rig(self, rig: CameraRig) -> None:
        """Nothing to keep: heatmaps are drawn for the rig each :meth:`run` gets."""

    def run(self, images: ImageSet, rig: CameraRig) -> BackendOutput:
        from crosspose.studio import heatmap_projection_matrices, person_crops, simulate_heatmaps

        c = len(images.images)
        if c != len(rig):
            raise ValueError(f"{c} images for a rig of {len(rig)} cameras")
        index = 0
        for frame in images.frames:
            if frame is not None and frame.get("t_device_ns") is not None:
                index = round(frame["t_device_ns"] * self.fps / 1e9) % self.frames
                break
        joints = self.joints3d[index]
        joints2d = np.asarray(rig.project(joints)).transpose(1, 0, 2)  # (C, J, 2)
        transforms = person_crops(joints2d, (64, 64))
        heatmaps, _ = simulate_heatmaps(
            joints2d, transforms=transforms, errors=self.errors, rng=self.rng, coarse_speckle=True,
            skeleton=self.skeleton,
        )
        projections = heatmap_projection_matrices(np.asarray(rig.projection_matrices()), transforms)
        present = np.array([im is not None for im in images.images])
        heatmaps = np.where(present[:, None, None, None], heatmaps, 0.0).astype(np.float32)
        projections = np.where(present[:, None, None], projections, np.nan)
        corners: list[np.ndarray | None] = []
        for v in range(c):
            T = np.vstack([transforms[v], [0.0, 0.0, 1.0]])
            if not present[v] or not np.isfinite(T).all():
                corners.append(None)
                continue
            inv = np.linalg.inv(T)
            square = np.array([[-0.5, -0.5, 1.0], [63.5, -0.5, 1.0], [63.5, 63.5, 1.0], [-0.5, 63.5, 1.0]])
            corners.append((square @ inv.T)[:, :2])
        return BackendOutput(heatmaps, projections, {"frame_index": int(index)}, corners)

    def feedback(self, track: Track | None) -> None:
        """Nothing to track: crops come from the ground truth."""

    def run_persons(self, images: ImageSet, rig: CameraRig) -> list[tuple[int, BackendOutput]]:
        """The studio's one performer, id 0."""
        return [(0, self.run(images, rig))]

    def feedback_persons(self, tracks: dict[int, Track | None]) -> None:
        """Nothing to track: crops come from the ground truth."""


def backend_from_config(config: Config, rig: CameraRig, seed: int = 0) -> HeatmapBackend:
    """The backend ``inference.backend`` names, for ``rig``."""
    if config.inference.backend == "simulated":
        return SimulatedBackend(config, seed=seed)
    return NetworkBackend.from_config(config, rig)
