"""Images → heatmaps for one frame set: where to crop each view, the network call, and the tracking state.

``FramePipeline`` is the inference stage without its sockets. Per frame set it crops every view
around the performer, runs backbone + fusion on all views at once and returns the raw and fused
heatmaps with the projection matrices (crop folded in) the solver takes. The crops come from the
solved 3D pose fed back with :meth:`FramePipeline.update` (projected into each view, DESIGN §2); the
BlazePose detector runs only where there is no such crop — a cold start, no pose, or a view whose
presence dropped — and every run is counted. The fusion's prior is the previous pose (each joint is
looked for around where it was), or on a cold start only a root: the hip centres of the person most
views' detections agree on inside the capture volume (:mod:`crosspose.inference.association`), never
ground truth. Where to look for the performer is one :class:`PerformerCrops`,
fed from the solver's :class:`~crosspose.core.track.Track` with :meth:`FramePipeline.feedback`.

Typical loop (:class:`crosspose.core.Core` runs it; the live stages split it across the bus)::

    pipeline = FramePipeline(rig, OnnxRunner(path))
    for images in frame_sets:
        result = pipeline.process(images)
        pose = solver.solve(*result.solver_inputs())
        pipeline.feedback(Track.from_pose(pose))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from crosspose.geometry import CameraRig
from crosspose.inference.association import Volume, associate, default_volume, ray_distance, root_rays
from crosspose.inference.crops import (
    CROP_SIZE,
    HEATMAP_SIZE,
    Crop,
    crops_from_pose,
    extract_crops,
    heatmap_projections,
)
from crosspose.inference.detector import Detection, PersonDetector
from crosspose.inference.heatmaps import heatmap_maxima, midpoint_heatmaps
from crosspose.inference.network import HeatmapNetwork
from crosspose.skeleton import Skeleton

if TYPE_CHECKING:
    from crosspose.core.track import Track

log = logging.getLogger(__name__)

CropSource = Literal["pose", "detector", "previous", "none"]

#: Presence (BlazePose's pose flag) below which a view counts as having lost the performer.
MIN_PRESENCE = 0.5
#: Frames to wait before running the detector again on a view where it found nobody.
REDETECT_INTERVAL = 10
#: Fewest joints a fed-back pose must have with two supporting views to place crops.
MIN_POSE_JOINTS = 8
#: Seconds of prior age the trained fusion window covers (a limb at 4 m/s moves 0.3 m); an older prior
#: gets a proportionally wider window (``window_scale = age / PRIOR_REACH_S``), up to MAX_WINDOW_SCALE.
PRIOR_REACH_S = 0.075
MAX_WINDOW_SCALE = 2.5
#: Metres a re-detected candidate's root ray may pass from the performer's known root (it has moved since).
REDETECT_TOLERANCE_M = 0.5


@dataclass(frozen=True, eq=False)
class InferenceResult:
    """One frame set through the network (``C`` views, ``J`` joints of the network's layout, ``64 × 64``
    heatmaps).

    Attributes:
        heatmaps: ``(C, J, h, w)`` float32 in [0, 1], each view's own (BlazePose) heatmaps.
        fused: ``(C, J, h, w)`` float32 in [0, 1], after cross-view fusion.
        projections: ``(C, 3, 4)`` world metres → heatmap pixels (crop folded in); NaN rows for
            views without a crop.
        valid: ``(C,)`` bool, the views the network saw (an image and a crop).
        presence: ``(C,)`` probability that each crop holds a person (0 for an invalid view).
        crops: per view the :class:`Crop` used (image pixels), or None.
        sources: per view where the crop came from: ``pose`` (the fed-back 3D pose), ``detector``,
            ``previous`` (the last frame's crop, no pose arrived since) or ``none``.
        root: ``(3,)`` metres, the fusion's root, or None when there was none (fused = raw then).
        timings_ms: ``detect``, ``crop``, ``network`` and ``total`` milliseconds of this call.
        window_scale: how much wider than trained the fusion windows were (an older prior).
    """

    heatmaps: np.ndarray
    fused: np.ndarray
    projections: np.ndarray
    valid: np.ndarray
    presence: np.ndarray
    crops: tuple[Crop | None, ...]
    sources: tuple[CropSource, ...]
    root: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    window_scale: float = 1.0

    @property
    def num_views(self) -> int:
        return int(self.valid.shape[0])

    def seen(self, min_presence: float = MIN_PRESENCE) -> np.ndarray:
        """``(C,)`` bool: valid views whose crop holds the performer."""
        return self.valid & (self.presence >= min_presence)

    def solver_inputs(
        self, fused: bool = True, min_presence: float = MIN_PRESENCE
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(heatmaps (C, J, h, w), projections (C, 3, 4))`` for ``Solver.solve``.

        Views that are invalid or whose presence is below ``min_presence`` get zero heatmaps and NaN
        projections (the solver's "missing camera").
        """
        seen = self.seen(min_presence)
        heatmaps = np.where(seen[:, None, None, None], self.fused if fused else self.heatmaps, 0.0)
        projections = np.where(seen[:, None, None], self.projections, np.nan)
        return heatmaps.astype(np.float32), projections

    def argmax_pixels(self, fused: bool = True) -> np.ndarray:
        """``(C, J, 2)`` image pixels of each heatmap's maximum (NaN for invalid views).

        Sub-pixel maxima (:func:`~crosspose.inference.heatmaps.heatmap_maxima`) mapped through the crops.
        """
        maps = self.fused if fused else self.heatmaps
        c, j, h, _ = maps.shape
        xy, _ = heatmap_maxima(maps)
        out = np.full((c, j, 2), np.nan)
        for v, crop in enumerate(self.crops):
            if crop is not None and self.valid[v]:
                A = crop.from_heatmap(CROP_SIZE, h)
                out[v] = xy[v] @ A[:, :2].T + A[:, 2]
        return out


@dataclass
class PerformerCrops:
    """Where one performer is looked for in each of ``C`` views, and the fusion's prior for them.

    Attributes:
        crops: per view the crop to use next (image pixels), or None (the detector's turn).
        sources: per view where that crop came from (see :data:`CropSource`).
        retry_at: ``(C,)`` frame count from which the detector may look at a view again.
        root: ``(3,)`` metres, the root the fusion uses, or None when not known.
        prior: ``(J, 3)`` float32 metres, the last pose's supported joints (NaN elsewhere), or None.
        prior_t_ns: the capture time of the frame set that prior was solved from, or None.
    """

    crops: list[Crop | None]
    sources: list[CropSource]
    retry_at: np.ndarray
    root: np.ndarray | None = None
    prior: np.ndarray | None = None
    prior_t_ns: int | None = None

    @classmethod
    def cold(cls, num_views: int) -> PerformerCrops:
        """Nothing known yet: every view goes to the detector."""
        return cls([None] * num_views, ["none"] * num_views, np.zeros(num_views, dtype=np.int64))

    def lose(self) -> None:
        """The performer is lost in every view (the detector's turn; detector retries stay scheduled)."""
        n = len(self.crops)
        self.crops, self.sources = [None] * n, ["none"] * n
        self.root = self.prior = self.prior_t_ns = None


class FramePipeline:
    """Crops → network → heatmaps for a rig, with the tracking state that chooses the next crops.

    Args:
        rig: the calibrated cameras (the images of :meth:`process` come in its order).
        network: anything with :class:`~crosspose.inference.runtimes.onnxruntime.OnnxRunner`'s ``run`` (an
            ``OnnxRunner``, or a :class:`~crosspose.inference.runtimes.torch.TorchRunner` around an eager
            ``FusionNetwork``).
        detector: the cold-start :class:`PersonDetector` (default: built on first use).
        volume: where a performer's root may be (world metres); default: the floor region seen by at
            least 3 cameras, 0–2.5 m high (:func:`~crosspose.inference.association.default_volume`),
            derived again when the rig changes.
        associate_views: on a cold start, take the person the views agree on (False: each view's most
            confident detection, for a rig whose extrinsics are not known yet).
        min_presence: presence below which a view has lost the performer (detector next frame).
        redetect_interval: frames between detector retries on a view where it found nobody.
        midpoints: redraw the pelvis, spine and thorax heatmaps as one peak at their sources' mean
            (:func:`~crosspose.inference.heatmaps.midpoint_heatmaps`), in both outputs.
    Attributes:
        detector_runs: how many times the detector ran (one batched call over the views needing it).
        detector_views: how many view images it looked at in total.
        frames: frame sets processed.
    """

    def __init__(
        self,
        rig: CameraRig,
        network: HeatmapNetwork,
        detector: PersonDetector | None = None,
        *,
        min_presence: float = MIN_PRESENCE,
        redetect_interval: int = REDETECT_INTERVAL,
        midpoints: bool = True,
        volume: Volume | None = None,
        associate_views: bool = True,
    ) -> None:
        if len(rig) < 2:
            raise ValueError(f"the fusion network needs a rig of at least 2 cameras, got {len(rig)}")
        self.rig = rig
        self.network = network
        #: The joint layout of the network's heatmaps (the exported file declares it): the tracks fed back
        #: and the priors handed to the fusion are in it.
        self.skeleton: Skeleton = network.skeleton
        self._detector = detector
        self.min_presence = float(min_presence)
        self.redetect_interval = int(redetect_interval)
        self.midpoints = midpoints
        self.detector_runs = 0
        self.detector_views = 0
        self.frames = 0
        self._configured_volume = volume
        self.associate_views = associate_views
        self.volume = self._volume_for(rig)
        self._told_unassociated = False
        self.reset()

    def _volume_for(self, rig: CameraRig) -> Volume | None:
        """The configured volume, else the rig's default; None (anywhere) for a rig that sees no floor, or
        when the views are not associated."""
        if self._configured_volume is not None or not self.associate_views:
            return self._configured_volume
        try:
            return default_volume(rig)
        except ValueError as e:
            log.warning("no capture volume: %s; a person is looked for anywhere in front of the cameras", e)
            return None

    # State ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the performer: the next frame set starts cold (detector on every view)."""
        self.performer = PerformerCrops.cold(len(self.rig))

    @property
    def detector(self) -> PersonDetector:
        if self._detector is None:
            self._detector = PersonDetector()
        return self._detector

    @property
    def root(self) -> np.ndarray | None:
        """``(3,)`` metres: the root the next frame's fusion will use (None: not known yet)."""
        root = self.performer.root
        return None if root is None else root.copy()

    def set_rig(self, rig: CameraRig) -> None:
        """Swap the calibration (hot). Same cameras: the image-space crops are kept and the root is
        re-derived from them under the new calibration; another camera count starts cold, the network and
        the detector made ready for it first (a runtime with static shapes compiles for the new count here,
        once)."""
        if len(rig) < 2:
            raise ValueError(f"the fusion network needs a rig of at least 2 cameras, got {len(rig)}")
        if len(rig) != len(self.rig):
            self.network.prepare(len(rig))
            if self._detector is not None:
                self._detector.prepare(len(rig))
        same_views = len(rig) == len(self.rig) and np.array_equal(rig.image_size, self.rig.image_size)
        self.rig = rig
        self.volume = self._volume_for(rig)
        if not same_views:
            self.reset()
            return
        # The previous pose lives in the old calibration's world frame: re-derive the root.
        performer = self.performer
        performer.prior = None
        performer.root = self._root_from_crops(performer.crops)

    def feedback(self, track: Track | None) -> None:
        """Take the performer's track (the pose solved from the last frame set), or None: lost.

        With a usable track (at least :data:`MIN_POSE_JOINTS` joints supported by two views), each
        view's next crop is the pose projected into it and the fusion's prior is its supported joints,
        as old as its ``t_capture_ns`` (the clock :meth:`process` gets too; a prior older than
        :data:`PRIOR_REACH_S` gets wider fusion windows); views the pose does not place (out of view),
        and every view when the track is None or too thin, go back to the detector.

        Raises:
            ValueError: a track of another joint layout than the network's (never a silent loss of
                tracking).
        """
        performer = self.performer
        if track is None:
            performer.lose()
            return
        skeleton = self.skeleton
        if track.joints.shape != (skeleton.num_joints, 3) or track.skeleton != skeleton.name:
            raise ValueError(f"track {track.id} has {track.num_joints} joints ({track.skeleton}); the "
                             f"network gives {skeleton.num_joints} ({skeleton.name})")
        supported = track.supported()
        if int(supported.sum()) < MIN_POSE_JOINTS:
            performer.lose()
            return
        joints = np.where(supported[:, None], track.joints, np.nan)
        crops = crops_from_pose(joints, self.rig, skeleton=skeleton)
        for c, crop in enumerate(crops):
            performer.crops[c] = crop
            performer.sources[c] = "pose" if crop is not None else "none"
        performer.prior = joints.astype(np.float32)
        performer.prior_t_ns = track.t_capture_ns
        root = joints[skeleton.root]
        performer.root = root.copy() if np.isfinite(root).all() else self._root_from_crops(performer.crops)

    def _root_from_crops(self, crops: Sequence[Crop | None]) -> np.ndarray | None:
        """The crops' centres (mid-hips in every view) triangulated; None with fewer than two views."""
        centres = np.full((len(self.rig), 2), np.nan)
        for c, crop in enumerate(crops):
            if crop is not None:
                centres[c] = crop.center
        if int(np.isfinite(centres).all(-1).sum()) < 2:
            return None
        point, ok = self.rig.triangulate(centres, np.isfinite(centres).all(-1).astype(np.float64))
        point = np.asarray(point, dtype=np.float64)
        return point.copy() if bool(np.asarray(ok)) and np.isfinite(point).all() else None

    # One frame set -------------------------------------------------------------------------------
    def _detect(self, images: Sequence[np.ndarray | None]) -> None:
        """Run the detector on the views with an image but no crop (and not waiting for a retry).

        Without a root (a cold start; unless ``associate_views`` is False, then each view takes its best
        detection) the views' candidates are associated across views
        (:func:`~crosspose.inference.association.associate`) and the person most views agree on inside
        the volume is taken; when no candidate pair agrees, each view's most confident detection is taken
        as before (said once in the log). With a root, each view takes the candidate whose root ray passes
        nearest it, within :data:`REDETECT_TOLERANCE_M`, or nothing.
        """
        performer = self.performer
        wanted = [c for c, (image, crop) in enumerate(zip(images, performer.crops, strict=True))
                  if image is not None and crop is None and self.frames >= performer.retry_at[c]]
        if not wanted:
            return
        found = self.detector.detect([im for c, im in enumerate(images) if c in wanted and im is not None])
        self.detector_runs += 1
        self.detector_views += len(wanted)
        candidates: list[list[Detection]] = [[] for _ in self.rig]
        for c, detections in zip(wanted, found, strict=True):
            candidates[c] = list(detections)
        if performer.root is None and not self.associate_views:
            chosen, root = [ds[0] if ds else None for ds in candidates], None
        elif performer.root is None:
            chosen, root = self._cold_start(candidates)
        else:
            chosen, root = self._nearest(candidates, performer.root), performer.root
        for c in wanted:
            detection = chosen[c]
            performer.crops[c] = None if detection is None else detection.crop()
            performer.sources[c] = "detector" if detection is not None else "none"
            if detection is None:
                performer.retry_at[c] = self.frames + self.redetect_interval
        performer.root = self._root_from_crops(performer.crops) if root is None else root

    def _candidate_rays(self, candidates: list[list[Detection]]) -> list[np.ndarray]:
        """Per view ``(D_c, 3)`` unit world rays through the candidates' hip centres."""
        rays = []
        for c, detections in enumerate(candidates):
            pixels = np.full((len(detections), len(self.rig), 2), np.nan)
            for d, detection in enumerate(detections):
                pixels[d, c] = detection.keypoints[0]
            rays.append(root_rays(self.rig, pixels)[1][:, c] if detections else np.zeros((0, 3)))
        return rays

    def _cold_start(
        self, candidates: list[list[Detection]]
    ) -> tuple[list[Detection | None], np.ndarray | None]:
        """The person most views agree on inside the volume (per view its detection, and its root), else
        each view's best detection and no root."""
        pixels = [np.array([d.keypoints[0] for d in ds]).reshape(-1, 2) for ds in candidates]
        scores = [np.array([d.score for d in ds]) for ds in candidates]
        people = associate(self.rig, pixels, scores, self.volume)
        if people:
            person = people[0]
            chosen = [ds[m] if m >= 0 else None for ds, m in zip(candidates, person.members, strict=True)]
            return chosen, person.root
        if not self._told_unassociated and sum(bool(ds) for ds in candidates) >= 2:
            self._told_unassociated = True
            log.warning("cold start: no person is seen by two views with a root inside the capture volume "
                        "%s; starting from each view's most confident detection (said once)", self.volume)
        return [ds[0] if ds else None for ds in candidates], None

    def _nearest(self, candidates: list[list[Detection]], root: np.ndarray) -> list[Detection | None]:
        """Per view the candidate whose root ray passes nearest ``root`` within
        :data:`REDETECT_TOLERANCE_M`, or None."""
        centres = self.rig.centers
        chosen: list[Detection | None] = []
        for c, rays in enumerate(self._candidate_rays(candidates)):
            dist = ray_distance(root, centres[c], rays)
            dist = np.where(np.isfinite(dist), dist, np.inf)
            best = int(np.argmin(dist)) if len(dist) else -1
            chosen.append(candidates[c][best] if best >= 0 and dist[best] <= REDETECT_TOLERANCE_M else None)
        return chosen

    def window_scale(self, t_ns: int | None) -> float:
        """How much wider than trained the fusion windows are for a frame set captured at ``t_ns``:
        1 for a prior up to :data:`PRIOR_REACH_S` old (or of unknown age), then in proportion."""
        prior_t_ns = self.performer.prior_t_ns
        if t_ns is None or prior_t_ns is None:
            return 1.0
        age = (int(t_ns) - prior_t_ns) / 1e9
        return float(np.clip(age / PRIOR_REACH_S, 1.0, MAX_WINDOW_SCALE))

    def process(self, images: Sequence[np.ndarray | None], t_ns: int | None = None) -> InferenceResult:
        """Heatmaps of one frame set.

        Args:
            images: one BGR uint8 ``(H, W, 3)`` image per camera in rig order; None for a camera
                whose frame is missing (an invalid view: zero heatmaps, NaN projection).
            t_ns: the frame set's capture time (the clock of :meth:`update`'s ``t_ns``), to widen the
                fusion windows around an old prior; None: the prior is taken as fresh.
        Returns:
            the :class:`InferenceResult`. Views whose presence falls below ``min_presence`` go back
            to the detector on the next call.
        """
        if len(images) != len(self.rig):
            raise ValueError(f"got {len(images)} images for a rig of {len(self.rig)} cameras "
                             f"({', '.join(self.rig.names)}); pass None for a missing camera")
        t0 = time.perf_counter()
        self._detect(images)
        t1 = time.perf_counter()
        performer = self.performer
        crops: list[Crop | None] = [crop if image is not None else None
                                    for image, crop in zip(images, performer.crops, strict=True)]
        sources: list[CropSource] = [s if crop is not None else "none"
                                     for s, crop in zip(performer.sources, crops, strict=True)]
        batch = extract_crops(images, crops)
        projections = heatmap_projections(crops, self.rig)
        valid = np.array([crop is not None for crop in crops])
        t2 = time.perf_counter()
        c = len(self.rig)
        scale = 1.0
        if valid.any():
            prior = np.full((self.skeleton.num_joints, 3), np.nan, np.float32)
            if performer.prior is not None:
                prior[:] = performer.prior
            if performer.root is not None:
                prior[self.skeleton.root] = performer.root
            # A missing view gets a finite stand-in projection (the fusion masks it out by ``valid``).
            feed = np.where(valid[:, None, None], np.nan_to_num(projections), np.eye(3, 4))
            scale = self.window_scale(t_ns) if performer.prior is not None else 1.0
            out = self.network.run(batch, feed.astype(np.float32), valid, prior, scale)
            heatmaps, fused, presence = out["heatmaps"], out["fused"], out["presence"]
            if performer.root is None:  # no root, no fusion: the epipolar segments would be anywhere
                fused = heatmaps.copy()
            if self.midpoints:
                heatmaps = midpoint_heatmaps(heatmaps, skeleton=self.skeleton)
                fused = midpoint_heatmaps(fused, skeleton=self.skeleton)
            zero = ~valid
            heatmaps[zero] = 0.0
            fused[zero] = 0.0
            presence = np.where(valid, presence.reshape(c), 0.0).astype(np.float32)
        else:
            heatmaps = np.zeros((c, self.skeleton.num_joints, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
            fused = heatmaps.copy()
            presence = np.zeros(c, np.float32)
        t3 = time.perf_counter()
        # A crop that lost the performer goes back to the detector next time.
        for v in range(c):
            if valid[v] and presence[v] < self.min_presence:
                performer.crops[v] = None
                performer.sources[v] = "none"
            elif sources[v] != "none":
                performer.sources[v] = "previous"
        self.frames += 1
        timings = {"detect": 1e3 * (t1 - t0), "crop": 1e3 * (t2 - t1), "network": 1e3 * (t3 - t2),
                   "total": 1e3 * (time.perf_counter() - t0)}
        return InferenceResult(heatmaps, fused, projections, valid, presence, tuple(crops), tuple(sources),
                               self.root, timings, scale)
