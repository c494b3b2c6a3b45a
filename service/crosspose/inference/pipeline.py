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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosspose.geometry import CameraRig
from crosspose.inference.association import (
    Person,
    Volume,
    associate,
    default_volume,
    mixed,
    ray_distance,
    root_rays,
)
from crosspose.inference.confusion import LastJoints, confused_joints
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
from crosspose.inference.occlusion import dropped_views, hidden_joints
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
#: Seconds a lost performer keeps their id (found again near where they were lost) before their track ends.
LOST_TIMEOUT_S = 1.0
#: Metres from where a lost performer was lost that a person found is taken to be them, plus
#: REFIND_SPEED_M_S for every second they have been lost.
REFIND_TOLERANCE_M = 0.5
REFIND_SPEED_M_S = 1.5
#: Frames between looks at one view (round-robin) for someone new, while fewer than max_persons are followed.
SEARCH_INTERVAL = 5
#: Fewest frames between two searches that a look at one view started.
SEARCH_COOLDOWN = 15
#: Most views the detector looks at per frame set while searching with someone followed (round-robin). With
#: nobody followed it looks at every view at once (no network runs then).
SEARCH_VIEWS = 2
#: Search rounds run after a cold search while a place is free (the detector misses a person in a view now
#: and then: one frame set's views may not agree on everyone there); their unfound candidates are then
#: turned down only after the last of them.
COLD_ROUNDS = 2
#: Seconds a view's candidates stay usable for cross-view association after the detector saw them (the
#: views of a search round are looked at over several frame sets): a person walking at 0.7 m/s moves
#: :data:`~crosspose.inference.association.RAY_TOLERANCE_M` in that time.
CANDIDATE_MAX_AGE_S = 0.35
#: Metres a newly found person's root must be from every followed performer's root: nearer, the candidates
#: are a second detection of that performer.
NEW_PERSON_MIN_M = 0.4
#: Metres between two performers' roots below which they follow one person (the newer one ends).
DUPLICATE_M = 0.2
#: Cosine of the angle within which a candidate's ray is the one an earlier search turned down (2 degrees).
IGNORED_RAY_COS = float(np.cos(np.radians(2.0)))
#: Frame rate assumed for the pipeline's clock when frame sets come without a capture time. The intervals
#: above counted in frames last that many frame sets or that many frames at this rate, whichever is sooner:
#: at a low live rate (a few frame sets per second) a search or a retry is not put off for seconds.
ASSUMED_FPS = 30.0


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
        hidden: ``(C, J)`` bool, the joints another performer hides in each view (depth order of the 3D
            tracks, :mod:`crosspose.inference.occlusion`) or whose heatmap peaks on another performer's
            joint (:mod:`crosspose.inference.confusion`): dropped from the solver's inputs; None: none.
        person: the performer's id.
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
    hidden: np.ndarray | None = None
    person: int = 0

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
        projections (the solver's "missing camera"); joints another performer hides in a view
        (:attr:`hidden`) get a zero heatmap there.
        """
        seen = self.seen(min_presence)
        heatmaps = np.where(seen[:, None, None, None], self.fused if fused else self.heatmaps, 0.0)
        if self.hidden is not None:
            heatmaps = np.where(self.hidden[:, :, None, None], 0.0, heatmaps)
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
        retry_at: ``(C,)`` the pipeline's clock (seconds) from which the detector may look at a view again.
        root: ``(3,)`` metres, the root the fusion uses, or None when not known.
        prior: ``(J, 3)`` float32 metres, the last pose's supported joints (NaN elsewhere), or None.
        prior_t_ns: the capture time of the frame set that prior was solved from, or None.
        id: the performer's id (never reused within a pipeline's run).
        last_root: ``(3,)`` metres, the root when the performer was last followed (kept while lost, to
            know them again), or None.
        lost_s: when the performer was lost (the pipeline's clock, seconds), or None while followed.
    """

    crops: list[Crop | None]
    sources: list[CropSource]
    retry_at: np.ndarray
    root: np.ndarray | None = None
    prior: np.ndarray | None = None
    prior_t_ns: int | None = None
    id: int = 0
    last_root: np.ndarray | None = None
    lost_s: float | None = None

    @classmethod
    def cold(cls, num_views: int, id: int = 0) -> PerformerCrops:
        """Nothing known yet: every view goes to the detector."""
        return cls([None] * num_views, ["none"] * num_views, np.full(num_views, -np.inf), id=id)

    @property
    def followed(self) -> bool:
        """Whether any view has a crop for the performer (else they are lost: only a search finds them)."""
        return any(crop is not None for crop in self.crops)

    def lose(self, now_s: float | None = None) -> None:
        """The performer is lost in every view (the detector's turn; detector retries stay scheduled); the
        root is kept as :attr:`last_root` to know them again."""
        n = len(self.crops)
        if self.root is not None:
            self.last_root = self.root.copy()
        self.crops, self.sources = [None] * n, ["none"] * n
        self.root = self.prior = self.prior_t_ns = None
        if self.lost_s is None:
            self.lost_s = now_s


def size_factors(old: CameraRig, new: CameraRig) -> np.ndarray | None:
    """``(C,)`` per camera how many times the size of ``old``'s images ``new``'s are (height ratio, the width
    ratio agreeing within 2 %, as :func:`crosspose.core.imageset.image_scale`), or None: another camera count
    or another shape of image."""
    if len(old) != len(new):
        return None
    ratio = np.asarray(new.image_size, np.float64) / np.asarray(old.image_size, np.float64)  # (C, 2) w, h
    if not (np.abs(ratio[:, 0] / ratio[:, 1] - 1.0) <= 0.02).all():
        return None
    return np.asarray(ratio[:, 1])


def rescaled_only(old: CameraRig, new: CameraRig) -> np.ndarray | None:
    """``(C,)`` per camera the scale ``new`` is ``old`` at, when ``new`` is ``old`` for resized images (the
    same names, poses and lenses, the intrinsics :meth:`~crosspose.geometry.Camera.resized`), else None.

    The scale is the focal lengths' ratio, exact where the image sizes are rounded (a calibration padded to
    1088 rows, frames of 1080 decoded at 1/2)."""
    if len(old) != len(new) or list(old.names) != list(new.names):
        return None
    if not all(np.allclose(getattr(old, f), getattr(new, f), rtol=1e-9, atol=1e-12)
               for f in ("R", "t", "dist")):
        return None
    factors = np.asarray(new.K, np.float64)[:, 1, 1] / np.asarray(old.K, np.float64)[:, 1, 1]
    if not all(np.allclose(a.resized(float(f)).K, b.K, rtol=1e-6, atol=1e-6)
               for a, b, f in zip(old, new, factors, strict=True)):
        return None
    return factors


def rescaled_crop(crop: Crop, factor: float) -> Crop:
    """``crop`` on an image ``factor`` times the size (pixel centres at integer coordinates)."""
    cx, cy = crop.center
    return Crop(((cx + 0.5) * factor - 0.5, (cy + 0.5) * factor - 0.5), crop.size * factor, crop.rotation)


class FramePipeline:
    """Crops → network → heatmaps for a rig, with the tracking state that chooses the next crops.

    Args:
        rig: the calibrated cameras (the images of :meth:`process` come in its order).
        network: anything with :class:`~crosspose.inference.runtimes.onnxruntime.OnnxRunner`'s ``run`` (an
            ``OnnxRunner``, or a :class:`~crosspose.inference.runtimes.torch.TorchRunner` around an eager
            ``FusionNetwork``); with ``run_persons`` every performer's crops go through it in one call.
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
        max_persons: most performers followed at once (1: the person most views agree on).
        lost_timeout_s: seconds a lost performer keeps their id (found again near where they were lost)
            before their track ends.
        search_interval: with fewer performers than ``max_persons``, frames between looks of the detector
            at one view (round-robin) for someone new; a candidate no performer explains starts a search.
        search_views: while someone is followed, most views a search looks at per frame set (round-robin; the
            views a followed performer needs the detector for count among them): the per-set cost of looking
            for someone lost or new stays bounded.
    Attributes:
        detector_runs: how many times the detector ran (one batched call over the views needing it).
        detector_views: how many view images it looked at in total.
        frames: frame sets processed.
        ids_started: performers started (ids handed out); ids_ended: performers whose track ended.
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
        max_persons: int = 1,
        lost_timeout_s: float = LOST_TIMEOUT_S,
        search_interval: int = SEARCH_INTERVAL,
        search_views: int = SEARCH_VIEWS,
    ) -> None:
        if len(rig) < 2:
            raise ValueError(f"the fusion network needs a rig of at least 2 cameras, got {len(rig)}")
        if max_persons < 1:
            raise ValueError(f"max_persons must be at least 1, got {max_persons}")
        self.rig = rig
        self.network = network
        #: The joint layout of the network's heatmaps (the exported file declares it): the tracks fed back
        #: and the priors handed to the fusion are in it.
        self.skeleton: Skeleton = network.skeleton
        self._detector = detector
        self.min_presence = float(min_presence)
        self.redetect_interval = int(redetect_interval)
        self.midpoints = midpoints
        self.max_persons = int(max_persons)
        self.lost_timeout_s = float(lost_timeout_s)
        self.search_interval = max(int(search_interval), 1)
        if search_views < 1:
            raise ValueError(f"search_views must be at least 1, got {search_views}")
        self.search_views = int(search_views)
        self.detector_runs = 0
        self.detector_views = 0
        self.frames = 0
        self._last_joints = LastJoints()  # each performer's joints where last known (the confusion check)
        self.ids_started = 0
        self.ids_ended = 0
        self._configured_volume = volume
        self.associate_views = associate_views
        self.volume = self._volume_for(rig)
        self._told_unassociated = False
        self._now_s = 0.0
        self._period_s = 1.0 / ASSUMED_FPS  # seconds between the last two frame sets
        self.performers: list[PerformerCrops] = []
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
        """Forget every performer (their tracks end): the next frame set starts cold (detector on every
        view)."""
        self.ids_ended += len(self.performers)
        self.performers = []
        c = len(self.rig)
        self._search_retry_at = np.full(c, -np.inf)  # per view: when (clock, s) a search may look at it again
        self._search_due = False  # a look at one view saw someone no performer explains
        self._next_search = -np.inf  # when (clock, s) such a look may start another search
        self._next_look = -np.inf
        self._look_view = 0
        self._ignored: list[np.ndarray] = [np.zeros((0, 3)) for _ in range(c)]  # rays of non-persons
        self._forget_candidates()
        self._round: set[int] = set()  # views a search round has still to look at
        self._round_start = -np.inf  # when (clock, s) that round (or the last cold search) began
        self._cold_rounds = 0  # rounds still to run after a cold search while a place is free

    def _forget_candidates(self) -> None:
        """Drop every view's kept candidates (a new start, or a new calibration: their rays are stale)."""
        c = len(self.rig)
        self._seen: list[list[Detection]] = [[] for _ in range(c)]  # per view the latest candidates
        self._seen_rays: list[np.ndarray] = [np.zeros((0, 3)) for _ in range(c)]  # their (D, 3) root rays
        self._seen_used: list[np.ndarray] = [np.zeros(0, bool) for _ in range(c)]  # explained, or someone's
        self._seen_s = np.full(c, -np.inf)  # when (clock, s) the detector saw them

    @property
    def detector(self) -> PersonDetector:
        if self._detector is None:
            self._detector = PersonDetector()
        return self._detector

    @property
    def ids(self) -> list[int]:
        """The ids of the performers followed now (lost ones not counted), ascending."""
        return [p.id for p in self.performers if p.followed]

    def performer(self, id: int) -> PerformerCrops | None:
        """The performer of ``id`` (followed or lost, not ended), or None."""
        return next((p for p in self.performers if p.id == id), None)

    @property
    def primary(self) -> PerformerCrops | None:
        """The lowest-id performer (followed before lost), or None."""
        followed = [p for p in self.performers if p.followed]
        pool = followed or self.performers
        return min(pool, key=lambda p: p.id) if pool else None

    @property
    def root(self) -> np.ndarray | None:
        """``(3,)`` metres: the root the next frame's fusion will use for the primary performer (None: not
        known yet)."""
        primary = self.primary
        root = None if primary is None else primary.root
        return None if root is None else root.copy()

    def set_rig(self, rig: CameraRig) -> None:
        """Swap the calibration (hot). Same cameras: the image-space crops are kept and the roots are
        re-derived from them under the new calibration; another camera count starts cold, the network and
        the detector made ready for it first (a runtime with static shapes compiles for the new count here,
        once). Images of another size (the same shape) move the crops with them; the same calibration at
        another size (frames decoded at another scale, :mod:`crosspose.core.decode`) keeps everything else
        too: tracking goes on."""
        if len(rig) < 2:
            raise ValueError(f"the fusion network needs a rig of at least 2 cameras, got {len(rig)}")
        if len(rig) != len(self.rig):
            self.network.prepare(len(rig))
            if self._detector is not None:
                self._detector.prepare(len(rig))
        exact = rescaled_only(self.rig, rig)
        factors = exact if exact is not None else size_factors(self.rig, rig)
        pure = exact is not None and not np.allclose(exact, 1.0)
        previous, self.rig = self.rig, rig
        if factors is None:  # other cameras, or another shape of image: start cold
            self.volume = self._volume_for(rig)
            self.reset()
            return
        if not np.allclose(factors, 1.0):  # the frames' scale changed (inference.decode, grabber size)
            self._rescale(factors)
            log.debug("set %d: frames at %s x the size of %s; crops rescaled", self.frames,
                      np.round(factors, 3).tolist(), previous.image_size.tolist())
        if pure:  # the same calibration at another size: the poses, roots and volume hold as they are
            return
        self.volume = self._volume_for(rig)
        # The previous poses live in the old calibration's world frame: re-derive the roots.
        self._ignored = [np.zeros((0, 3)) for _ in range(len(rig))]
        self._forget_candidates()
        for performer in self.performers:
            performer.prior = None
            performer.root = self._root_from_crops(performer.crops)
            performer.last_root = None

    def _rescale(self, factors: np.ndarray) -> None:
        """Every image-pixel position kept (performers' crops, views' candidates) moved to frames
        ``factors (C,)`` times the size (pixel centres at integer coordinates, as
        :meth:`~crosspose.geometry.Camera.resized`)."""
        for performer in self.performers:
            performer.crops = [None if crop is None else rescaled_crop(crop, float(f))
                               for crop, f in zip(performer.crops, factors, strict=True)]
        self._seen = [[Detection(d.score, (np.asarray(d.box) + 0.5) * f - 0.5,
                                 (np.asarray(d.keypoints) + 0.5) * f - 0.5) for d in seen]
                      for seen, f in zip(self._seen, factors, strict=True)]

    def planned_crop_sides(self) -> np.ndarray | None:
        """``(C,)`` pixels of this rig's images: per view the side of the smallest crop the next frame set
        will take, when every crop it takes is known now — every performer followed in every view, no place
        free, no search under way or due — else None (the person detector may run on that set: it needs the
        frames whole). :mod:`crosspose.core.decode` chooses the decode size from it."""
        followed = [p for p in self.performers if p.followed]
        if not followed or len(followed) < max(len(self.performers), self.max_persons):
            return None
        if self._round or self._search_due:
            return None
        sides = np.full(len(self.rig), np.inf)
        for p in followed:
            for v, crop in enumerate(p.crops):
                if crop is None:
                    return None
                sides[v] = min(sides[v], crop.size)
        return sides

    def feedback(self, track: Track | None) -> None:
        """Take the performer's track (the pose solved from the last frame set), or None: lost — one
        performer's form of :meth:`feedback_persons`: the track goes to the performer of its id, else to the
        primary performer (or, when none is known, starts one).

        With a usable track (at least :data:`MIN_POSE_JOINTS` joints supported by two views), each
        view's next crop is the pose projected into it and the fusion's prior is its supported joints,
        as old as its ``t_capture_ns`` (the clock :meth:`process` gets too; a prior older than
        :data:`PRIOR_REACH_S` gets wider fusion windows); views the pose does not place (out of view),
        and every view when the track is None or too thin, go back to the detector.

        Raises:
            ValueError: a track of another joint layout than the network's (never a silent loss of
                tracking).
        """
        performer = None if track is None else self.performer(track.id)
        performer = self.primary if performer is None else performer
        if performer is None:
            if track is None:
                return
            self._check_layout(track)
            performer = self._start(PerformerCrops.cold(len(self.rig), self._new_id()))
        self._feed(performer, track)

    def feedback_persons(self, tracks: dict[int, Track | None]) -> None:
        """Each performer's track by id (None: not solved, lost); ids no longer followed are ignored.

        Raises:
            ValueError: a track of another joint layout than the network's (no performer is changed).
        """
        for track in tracks.values():
            if track is not None:
                self._check_layout(track)
        for id, track in sorted(tracks.items()):
            performer = self.performer(id)
            if performer is not None:
                self._feed(performer, track)
        self._end_duplicates()

    def _check_layout(self, track: Track) -> None:
        skeleton = self.skeleton
        if track.joints.shape != (skeleton.num_joints, 3) or track.skeleton != skeleton.name:
            raise ValueError(f"track {track.id} has {track.num_joints} joints ({track.skeleton}); the "
                             f"network gives {skeleton.num_joints} ({skeleton.name})")

    def _feed(self, performer: PerformerCrops, track: Track | None) -> None:
        if track is None:
            performer.lose(self._now_s)
            return
        self._check_layout(track)
        skeleton = self.skeleton
        supported = track.supported()
        if int(supported.sum()) < MIN_POSE_JOINTS:
            performer.lose(self._now_s)
            return
        joints = np.where(supported[:, None], track.joints, np.nan)
        if not self.inside(joints[skeleton.root]):  # walked out of the capture volume: no longer followed
            performer.lose(self._now_s)
            return
        crops = crops_from_pose(joints, self.rig, skeleton=skeleton)
        if not any(crop is not None for crop in crops):
            # Too thin to place any crop (its hips or shoulders lack two views, as a cold solve from two views
            # can leave them): the crops that hold the performer now stay (their presence still checks them);
            # with none, the performer is lost — kept to be found again, not ended at once.
            if not performer.followed:
                performer.lose(self._now_s)
                return
            crops = list(performer.crops)
        for c, crop in enumerate(crops):
            kept = crop is not None and crop is performer.crops[c]
            performer.crops[c] = crop
            performer.sources[c] = "none" if crop is None else "previous" if kept else "pose"
        performer.prior = joints.astype(np.float32)
        performer.prior_t_ns = track.t_capture_ns
        root = joints[skeleton.root]
        performer.root = root.copy() if np.isfinite(root).all() else self._root_from_crops(performer.crops)
        performer.lost_s = None
        if performer.root is not None:
            performer.last_root = performer.root.copy()

    def inside(self, root: np.ndarray) -> bool:
        """Whether a ``(3,)`` root (metres) may be a performer's: inside the capture volume (without one, or
        for an unknown root: True)."""
        if self.volume is None or not np.isfinite(root).all():
            return True
        return bool(self.volume.contains(root))

    def _end_duplicates(self) -> None:
        """Two performers whose roots are within :data:`DUPLICATE_M` follow one person: the newer one ends."""
        kept: list[PerformerCrops] = []
        for p in sorted(self.performers, key=lambda p: p.id):
            older = next((k for k in kept if p.root is not None and k.root is not None
                          and np.linalg.norm(k.root - p.root) < DUPLICATE_M), None)
            if older is not None and p.root is not None and older.root is not None:
                self.ids_ended += 1
                log.info("set %d: performer %d at %s follows the same person as performer %d at %s: ended",
                         self.frames, p.id, np.round(p.root, 2).tolist(), older.id,
                         np.round(older.root, 2).tolist())
                self._place_freed()
                continue
            kept.append(p)
        self.performers = kept

    def _after(self, frames: int) -> float:
        """The clock (seconds) ``frames`` frame sets from now at the current rate, or ``frames`` frames at
        :data:`ASSUMED_FPS` if that is sooner (a low rate does not stretch an interval into seconds)."""
        return self._now_s + frames * min(self._period_s, 1.0 / ASSUMED_FPS)

    def _new_id(self) -> int:
        return self.ids_started

    def _start(self, performer: PerformerCrops) -> PerformerCrops:
        self.ids_started += 1
        self.performers = sorted([*self.performers, performer], key=lambda p: p.id)
        return performer

    def _place_freed(self) -> None:
        """A track ended, a place is free: whoever an earlier search turned down may be looked for again,
        now."""
        self._ignored = [np.zeros((0, 3)) for _ in range(len(self.rig))]
        self._next_search = self._next_look = self._now_s

    def _end_lost(self, every: bool = False) -> None:
        """End the lost performers lost longer than ``lost_timeout_s`` (``every``: all lost ones)."""
        kept = []
        for p in self.performers:
            expired = not p.followed and (every or p.last_root is None or p.lost_s is None
                                          or self._now_s - p.lost_s > self.lost_timeout_s)
            if expired:
                self.ids_ended += 1
                self._place_freed()
            else:
                kept.append(p)
        self.performers = kept

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

    # Finding people ------------------------------------------------------------------------------
    def _detect(self, images: Sequence[np.ndarray | None]) -> None:
        """Run the detector on the views some performer or a search needs, and use what it finds.

        * A followed performer's view without a crop (and not waiting for a retry) takes the candidate whose
          root ray passes nearest the performer's root, within :data:`REDETECT_TOLERANCE_M` (the nearest
          pairs first, no candidate to two performers), or nothing.
        * Each view's latest candidates are kept with the time the detector saw them. Whenever the detector
          runs while a place is free or someone is lost, the candidates no followed performer explains (whose
          ray passes within :data:`REDETECT_TOLERANCE_M` of a followed performer's root), of every view seen
          within :data:`CANDIDATE_MAX_AGE_S`, are associated across views
          (:func:`~crosspose.inference.association.associate`): a person found where a lost performer was
          (within :data:`REFIND_TOLERANCE_M` plus :data:`REFIND_SPEED_M_S` per second lost) is that performer
          again, same id; another one, while fewer than ``max_persons`` are followed or lost and at least
          :data:`NEW_PERSON_MIN_M` from every followed performer, is a new performer.
          With ``max_persons`` 1 and nobody agreed on, each view's most confident detection is taken if the
          root triangulated from them is inside the capture volume (said once in the log); without
          ``associate_views``, always (inside the volume, if one is set).
        * Nobody followed (a cold start, everyone lost): the detector looks at every view at once (no network
          runs then); a view that was missing is searched on the next frame sets, then, while a place is free,
          :data:`COLD_ROUNDS` more rounds.
        * Someone followed and someone lost, or a look saw someone unexplained: a search round, at most
          ``search_views`` views a frame set (the oldest looked at first), until every view has been looked
          at; back to back while someone is lost. The candidates a completed round found no one in are not
          looked for again while they stay where they are (bystanders, people outside the volume).
        * With fewer performers than ``max_persons`` and no search, every ``search_interval`` frames one
          view (round-robin) is looked at; a candidate there that no performer explains and that no earlier
          round turned down starts a round, at most every :data:`SEARCH_COOLDOWN` frames.
        """
        c, now = len(self.rig), self._now_s + 1e-6  # a deadline met to the microsecond is met
        self._end_lost()  # a lost track ends on time, whether or not any view could be searched
        present = [v for v in range(c) if images[v] is not None]
        followed = [p for p in self.performers if p.followed]
        lost = [p for p in self.performers if not p.followed]
        needs = {p.id: [v for v in present if p.crops[v] is None and now >= p.retry_at[v]]
                 for p in followed}
        retakes = sorted({v for vs in needs.values() for v in vs})
        cold = not followed
        free = len(self.performers) < self.max_persons
        if not cold and not self._round and (lost or (free and self._cold_rounds > 0)
                                             or (self._search_due and now >= self._next_search)):
            self._round, self._round_start = set(range(c)), self._now_s
            self._cold_rounds = max(self._cold_rounds - 1, 0)
            self._search_due = False
            self._next_search = self._after(SEARCH_COOLDOWN)
        self._round -= {v for v in self._round if now < self._search_retry_at[v]}  # found nobody lately
        in_round = bool(self._round)
        look = None
        if cold:
            searched = [v for v in present if now >= self._search_retry_at[v]]
        elif in_round:
            pending = sorted((v for v in present if v in self._round and v not in retakes),
                             key=lambda v: self._seen_s[v])
            searched = pending[:max(self.search_views - len(retakes), 0)]
        else:
            searched = []
            if free and now >= self._next_look and present:
                look = present[self._look_view % len(present)]
                self._look_view += 1
                self._next_look = self._after(self.search_interval)
        views = sorted(set(retakes) | set(searched) | ({look} if look is not None else set()))
        if views:
            self._run_detector(images, views, followed, lost, needs, look, now)
        if cold:  # a view that was missing is looked at on the next frame sets, then COLD_ROUNDS rounds
            self._round, self._round_start = set(range(c)) - set(present), self._now_s
            self._cold_rounds = COLD_ROUNDS
        elif in_round:
            self._round -= set(views)
            if not self._round & set(present):  # nothing left to look at (a missing view is not waited for)
                self._round = set()
                if not self._cold_rounds:
                    self._ignore_unfound()

    def _run_detector(self, images: Sequence[np.ndarray | None], views: list[int],
                      followed: list[PerformerCrops], lost: list[PerformerCrops], needs: dict[int, list[int]],
                      look: int | None, now: float) -> None:
        """The detector on ``views``; their candidates kept, retaken, looked at and associated (see
        :meth:`_detect`)."""
        c = len(self.rig)
        found = self.detector.detect([images[v] for v in views])  # type: ignore[misc]  # present views
        self.detector_runs += 1
        self.detector_views += len(views)
        candidates: list[list[Detection]] = [[] for _ in range(c)]
        for v, detections in zip(views, found, strict=True):
            candidates[v] = list(detections)
        rays = self._candidate_rays(candidates)
        for v in views:
            self._seen[v], self._seen_rays[v], self._seen_s[v] = candidates[v], rays[v], self._now_s
            self._seen_used[v] = np.zeros(len(candidates[v]), bool)
            if not candidates[v]:
                self._search_retry_at[v] = self._after(self.redetect_interval)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("set %d (%.3f s): detector on views %s: %s", self.frames, self._now_s, views,
                      {v: [(round(d.score, 2), np.round(d.keypoints[0]).astype(int).tolist())
                           for d in candidates[v]] for v in views})
        taken = [np.zeros(len(ds), bool) for ds in candidates]
        self._retake(followed, needs, candidates, rays, taken)
        for v in views:
            self._seen_used[v] |= taken[v]
        if look is not None and not self._search_due:
            self._search_due = self._unexplained(look, rays[look], taken[look])
        if not followed or lost or len(self.performers) < self.max_persons:
            self._search(views, any_followed=bool(followed), now=now)

    def _explained(self, followed: list[PerformerCrops], rays: list[np.ndarray]) -> list[np.ndarray]:
        """Per view ``(D_c,)`` bool: the candidates a followed performer explains — whose ray passes within
        :data:`REDETECT_TOLERANCE_M` of their root. (Only the nearest one per performer and view would let a
        second person just behind them through, but live, with roots a frame set or two old, it let the
        performer's own candidates start new ids at every jump of the looped clip: 14 ids in 30 s.)"""
        centres = self.rig.centers
        out = [np.zeros(len(r), bool) for r in rays]
        for p in followed:
            if p.root is None:
                continue
            for v, r in enumerate(rays):
                if not len(r):
                    continue
                dist = ray_distance(p.root, centres[v], r)
                dist = np.where(np.isfinite(dist), dist, np.inf)
                out[v] |= dist <= REDETECT_TOLERANCE_M
        return out

    def _retake(self, followed: list[PerformerCrops], wanted: dict[int, list[int]],
                candidates: list[list[Detection]], rays: list[np.ndarray], taken: list[np.ndarray]) -> None:
        """Followed performers take back their views without a crop (nearest candidates first), marking
        the candidates they take and those their roots explain (:meth:`_explained`)."""
        centres = self.rig.centers
        for v, explained in enumerate(self._explained(followed, rays)):
            taken[v] |= explained
        pairs = []
        for p in followed:
            if p.root is None:
                continue
            for v in wanted[p.id]:
                if not len(rays[v]) or p.crops[v] is not None:
                    continue
                dist = ray_distance(p.root, centres[v], rays[v])
                dist = np.where(np.isfinite(dist), dist, np.inf)
                pairs += [(float(d), p.id, v, i) for i, d in enumerate(dist) if d <= REDETECT_TOLERANCE_M]
        assigned = [set() for _ in candidates]  # type: list[set[int]]
        by_id = {p.id: p for p in followed}
        for _, pid, v, i in sorted(pairs):
            p = by_id[pid]
            if p.crops[v] is None and i not in assigned[v]:
                assigned[v].add(i)
                taken[v][i] = True
                p.crops[v], p.sources[v] = candidates[v][i].crop(), "detector"
        for p in followed:
            for v in wanted[p.id]:
                if p.crops[v] is not None:
                    continue
                if p.root is None:  # started from each view's best box (nothing agreed): the same again
                    best = next((i for i in range(len(candidates[v])) if not taken[v][i]), None)
                    if best is not None:
                        taken[v][best] = True
                        p.crops[v], p.sources[v] = candidates[v][best].crop(), "detector"
                        continue
                p.sources[v] = "none"
                p.retry_at[v] = self._after(self.redetect_interval)
            if p.root is None:
                p.root = self._root_from_crops(p.crops)

    def _unexplained(self, view: int, rays: np.ndarray, taken: np.ndarray) -> bool:
        """Whether a look at ``view`` saw a candidate no followed performer explains and no round turned
        down."""
        for ray, explained in zip(rays, taken, strict=True):
            if explained or not np.isfinite(ray).all():
                continue
            ignored = self._ignored[view]
            if len(ignored) and float((ignored @ ray).max()) >= IGNORED_RAY_COS:
                continue
            return True
        return False

    def _ignore_unfound(self) -> None:
        """A round (or a cold search) ended: the candidates of its views no one was found in are not looked
        for again while they stay where they are."""
        for v in range(len(self.rig)):
            if self._seen_s[v] >= self._round_start - 1e-9:
                r = self._seen_rays[v]
                self._ignored[v] = r[~self._seen_used[v] & np.isfinite(r).all(-1)]

    def _search(self, views: list[int], any_followed: bool, now: float) -> None:
        """People among the kept candidates (seen within :data:`CANDIDATE_MAX_AGE_S`) no followed performer
        explains: lost performers found again, new ones started (see :meth:`_detect`); ``views``: those the
        detector just looked at."""
        c = len(self.rig)
        lost = [p for p in self.performers if not p.followed]
        fresh = [self._seen_s[v] >= now - CANDIDATE_MAX_AGE_S - 1e-6 for v in range(c)]
        candidates = [self._seen[v] if fresh[v] else [] for v in range(c)]
        if not self.associate_views:
            if not any_followed:
                self._end_lost(every=True)
                self._take_best(candidates)
            return
        followed = [p for p in self.performers if p.followed]
        rays = [self._seen_rays[v] if fresh[v] else np.zeros((0, 3)) for v in range(c)]
        explained = self._explained(followed, rays)
        for v in range(c):
            if fresh[v]:
                self._seen_used[v] |= explained[v]
        index = [np.flatnonzero(~e) for e in explained]  # free candidates' indices into each view's list
        free = [[candidates[v][i] for i in index[v]] for v in range(c)]
        pixels = [np.array([d.keypoints[0] for d in ds]).reshape(-1, 2) for ds in free]
        scores = [np.array([d.score for d in ds]) for ds in free]
        people = associate(self.rig, pixels, scores, self.volume)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("set %d: association over views %s (just looked at %s), free candidates per view %s: "
                      "people %s", self.frames, [v for v in range(c) if fresh[v]], views,
                      [len(ds) for ds in free],
                      [(p.members.tolist(), np.round(p.root, 2).tolist()) for p in people])
        started: list[Person] = []  # the people this association started performers for
        for person in people:
            members = [(v, int(index[v][person.members[v]])) for v in range(c) if person.members[v] >= 0]
            near = [p.id for p in followed if p.root is not None
                    and np.linalg.norm(person.root - p.root) < NEW_PERSON_MIN_M]
            if near:  # a second detection of a followed performer
                log.debug("set %d: the person at %s is performer %s's own candidates", self.frames,
                          np.round(person.root, 2).tolist(), near)
                continue
            match = self._lost_match(person.root, lost)
            if match is None and any(max(person.num_views, q.num_views) == 2
                                     and mixed(self.rig, pixels, person, q, self.volume) for q in started):
                # Their candidates could pair with those of someone started just now the other way (two
                # people close together in a view), each agreed on by two views only: two tracks started
                # from them can both be one person, the newer one then ended as a duplicate, its id spent.
                # The first one's own pose settles which candidates are theirs; this person is looked for in
                # the next round (not ignored). A person three views agree on is not paired by chance, and
                # its candidates are its own (on the real clip's first frame the second performer, started
                # with the first one of four views, is followed from there; made to wait, her track started
                # one frame later and her long bones varied by 8.2 % instead of 5.4 %).
                log.debug("set %d: the person at %s waits: their candidates could be mixed with another's",
                          self.frames, np.round(person.root, 2).tolist())
                for v, i in members:
                    self._seen_used[v][i] = True
                continue
            if match is None and len(self.performers) >= self.max_persons and lost:
                # No free place, but someone lost holds one: the one lost longest ends now (someone is here
                # and they are not; a track that comes back later gets a new id either way).
                oldest = min(lost, key=lambda p: np.inf if p.lost_s is None else p.lost_s)
                lost.remove(oldest)
                self.performers.remove(oldest)
                self.ids_ended += 1
            if match is None and len(self.performers) >= self.max_persons:
                # No free place: this person is not a bystander (a later look may start them once a place is
                # free), so their candidates are not ignored.
                log.debug("set %d: no free place for the person at %s", self.frames,
                          np.round(person.root, 2).tolist())
                for v, i in members:
                    self._seen_used[v][i] = True
                continue
            if match is None:
                started.append(person)
            performer = match if match is not None else self._start(PerformerCrops.cold(c, self._new_id()))
            if match is not None:
                lost.remove(match)
            log.info("set %d: performer %d %s at %s, seen by views %s", self.frames, performer.id,
                     "found again" if match is not None else "started", np.round(person.root, 2).tolist(),
                     [v for v, _ in members])
            for v, i in members:
                self._seen_used[v][i] = True
                performer.crops[v], performer.sources[v] = self._seen[v][i].crop(), "detector"
            for v in views:
                if person.members[v] < 0:
                    performer.retry_at[v] = self._after(self.redetect_interval)
            performer.root, performer.last_root = person.root.copy(), person.root.copy()
            performer.lost_s = None
            followed.append(performer)
        self._end_lost()
        if self.max_persons == 1 and not any(p.followed for p in self.performers) and any(candidates):
            if sum(bool(ds) for ds in candidates) >= 2 and not self._told_unassociated:
                self._told_unassociated = True
                log.warning("cold start: no person is seen by two views with a root inside the capture "
                            "volume %s; trying each view's most confident detection, taken only if their "
                            "root is inside (said once)", self.volume)
            self._end_lost(every=True)
            self._take_best(candidates)

    def _take_best(self, candidates: list[list[Detection]]) -> None:
        """A new performer from each view's most confident detection, the root from their crops; with a
        capture volume, only when that root is known and inside it (else nobody: a person outside never
        starts a track)."""
        crops: list[Crop | None] = [ds[0].crop() if ds else None for ds in candidates]
        root = self._root_from_crops(crops)
        if self.volume is not None and (root is None or not self.inside(root)):
            return
        performer = self._start(PerformerCrops.cold(len(self.rig), self._new_id()))
        for v, crop in enumerate(crops):
            if crop is not None:
                performer.crops[v], performer.sources[v] = crop, "detector"
            else:
                performer.retry_at[v] = self._after(self.redetect_interval)
        performer.root = root
        if root is not None:
            performer.last_root = root.copy()

    def _lost_match(self, root: np.ndarray, lost: list[PerformerCrops]) -> PerformerCrops | None:
        """The lost performer nearest ``root`` within the re-finding tolerance (growing with time lost)."""
        best, best_d = None, np.inf
        for p in lost:
            if p.last_root is None:
                continue
            gone = max(self._now_s - (self._now_s if p.lost_s is None else p.lost_s), 0.0)
            d = float(np.linalg.norm(root - p.last_root))
            if d <= REFIND_TOLERANCE_M + REFIND_SPEED_M_S * gone and d < best_d:
                best, best_d = p, d
        return best

    def _candidate_rays(self, candidates: list[list[Detection]]) -> list[np.ndarray]:
        """Per view ``(D_c, 3)`` unit world rays through the candidates' hip centres."""
        rays = []
        for c, detections in enumerate(candidates):
            pixels = np.full((len(detections), len(self.rig), 2), np.nan)
            for d, detection in enumerate(detections):
                pixels[d, c] = detection.keypoints[0]
            rays.append(root_rays(self.rig, pixels)[1][:, c] if detections else np.zeros((0, 3)))
        return rays

    def window_scale(self, t_ns: int | None, performer: PerformerCrops | None = None) -> float:
        """How much wider than trained the fusion windows are for a frame set captured at ``t_ns`` (for
        ``performer``, default the primary one): 1 for a prior up to :data:`PRIOR_REACH_S` old (or of
        unknown age), then in proportion."""
        performer = self.primary if performer is None else performer
        prior_t_ns = None if performer is None else performer.prior_t_ns
        if t_ns is None or prior_t_ns is None:
            return 1.0
        age = (int(t_ns) - prior_t_ns) / 1e9
        return float(np.clip(age / PRIOR_REACH_S, 1.0, MAX_WINDOW_SCALE))

    # One frame set -------------------------------------------------------------------------------
    def process(self, images: Sequence[np.ndarray | None], t_ns: int | None = None) -> InferenceResult:
        """Heatmaps of one frame set for the primary performer (:meth:`process_persons`' lowest id; all
        views invalid when nobody is followed).

        Args:
            images: one BGR uint8 ``(H, W, 3)`` image per camera in rig order; None for a camera
                whose frame is missing (an invalid view: zero heatmaps, NaN projection).
            t_ns: the frame set's capture time (the clock of :meth:`feedback`'s tracks), to widen the
                fusion windows around an old prior; None: the prior is taken as fresh.
        Returns:
            the :class:`InferenceResult`. Views whose presence falls below ``min_presence`` go back
            to the detector on the next call.
        """
        t0 = time.perf_counter()
        results = self.process_persons(images, t_ns)
        if results:
            return results[0][1]
        c = len(self.rig)
        heatmaps = np.zeros((c, self.skeleton.num_joints, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
        primary = self.primary
        ms = 1e3 * (time.perf_counter() - t0)
        none: tuple[CropSource, ...] = tuple("none" for _ in range(c))
        return InferenceResult(heatmaps, heatmaps.copy(), np.full((c, 3, 4), np.nan), np.zeros(c, bool),
                               np.zeros(c, np.float32), (None,) * c, none, self.root,
                               {"detect": ms, "crop": 0.0, "network": 0.0, "total": ms},
                               person=0 if primary is None else primary.id)

    def process_persons(self, images: Sequence[np.ndarray | None],
                        t_ns: int | None = None) -> list[tuple[int, InferenceResult]]:
        """Heatmaps of one frame set for every performer followed, ``[(id, result)]`` ascending by id.

        Each performer's crops are placed from their own track; all performers' crops go through the
        network in one call (the person axis). Where performers overlap in a view, the farther one's
        joints the nearer one hides there (:mod:`crosspose.inference.occlusion`, from their last poses)
        are marked :attr:`InferenceResult.hidden` (dropped from the solver's inputs), and a view where most
        of them are hidden is not fed to that performer's fusion. So is a joint whose heatmap (the view's
        own or the fused one) peaks on another performer's joint, far from the performer's own
        (:mod:`crosspose.inference.confusion`).

        Raises:
            ValueError: not one image (or None) per camera.
        """
        if len(images) != len(self.rig):
            raise ValueError(f"got {len(images)} images for a rig of {len(self.rig)} cameras "
                             f"({', '.join(self.rig.names)}); pass None for a missing camera")
        now_s = self.frames / ASSUMED_FPS if t_ns is None else int(t_ns) / 1e9
        if self.frames and now_s > self._now_s:
            self._period_s = now_s - self._now_s
        self._now_s = now_s
        t0 = time.perf_counter()
        self._detect(images)
        t1 = time.perf_counter()
        performers = [p for p in self.performers if p.followed]
        c, j = len(self.rig), self.skeleton.num_joints
        hidden = hidden_joints([p.prior for p in performers], self.rig, self.skeleton)
        inputs = []
        for p, hide in zip(performers, hidden, strict=True):
            known = np.isfinite(p.prior).all(-1) if p.prior is not None else np.zeros(j, bool)
            drop = dropped_views(hide, known)
            crops: list[Crop | None] = [crop if image is not None and not drop[v] else None
                                        for v, (image, crop) in enumerate(zip(images, p.crops, strict=True))]
            sources: list[CropSource] = [s if crop is not None else "none"
                                         for s, crop in zip(p.sources, crops, strict=True)]
            batch = extract_crops(images, crops)
            projections = heatmap_projections(crops, self.rig)
            valid = np.array([crop is not None for crop in crops])
            prior = np.full((j, 3), np.nan, np.float32)
            if p.prior is not None:
                prior[:] = p.prior
            if p.root is not None:
                prior[self.skeleton.root] = p.root
            scale = self.window_scale(t_ns, p) if p.prior is not None else 1.0
            inputs.append((p, crops, sources, batch, projections, valid, prior, scale, hide & ~drop[:, None]))
        t2 = time.perf_counter()
        outputs = self._run_network([x for x in inputs if x[5].any()])
        t3 = time.perf_counter()
        results: list[tuple[int, InferenceResult]] = []
        self._last_joints.keep_only({p.id for p in self.performers})
        for p, crops, sources, _, projections, valid, _, scale, hide in inputs:
            out = outputs.get(p.id)
            if out is not None:
                heatmaps, fused, presence = out["heatmaps"], out["fused"], out["presence"]
                if p.root is None:  # no root, no fusion: the epipolar segments would be anywhere
                    fused = heatmaps.copy()
                if self.midpoints:
                    heatmaps = midpoint_heatmaps(heatmaps, skeleton=self.skeleton)
                    fused = midpoint_heatmaps(fused, skeleton=self.skeleton)
                heatmaps[~valid] = 0.0
                fused[~valid] = 0.0
                presence = np.where(valid, presence.reshape(c), 0.0).astype(np.float32)
                own, age_s = self._last_joints.update(p.id, p.prior, now_s)
                hide = hide | confused_joints((heatmaps, fused), projections, own,
                                              [q.prior for q in performers if q is not p], scale, age_s=age_s)
            else:
                heatmaps = np.zeros((c, j, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
                fused = heatmaps.copy()
                presence = np.zeros(c, np.float32)
            # A crop that lost the performer goes back to the detector next time.
            for v in range(c):
                if valid[v] and presence[v] < self.min_presence:
                    p.crops[v] = None
                    p.sources[v] = "none"
                elif sources[v] != "none":
                    p.sources[v] = "previous"
            if not p.followed:  # every view lost them: lost now (their id kept for a while, to find again)
                p.lose(self._now_s)
            root = None if p.root is None else p.root.copy()
            results.append((p.id, InferenceResult(heatmaps, fused, projections, valid, presence, tuple(crops),
                                                  tuple(sources), root, {}, scale,
                                                  hide if hide.any() else None, p.id)))
        self.frames += 1
        timings = {"detect": 1e3 * (t1 - t0), "crop": 1e3 * (t2 - t1), "network": 1e3 * (t3 - t2),
                   "total": 1e3 * (time.perf_counter() - t0)}
        for _, result in results:
            result.timings_ms.update(timings)
        return results

    def _run_network(self, inputs: list[Any]) -> dict[int, dict[str, np.ndarray]]:
        """Every performer's inputs through the network: one call (``run_persons``, the person axis), or
        one ``run`` for a single performer or a network without it."""
        if not inputs:
            return {}
        feeds = [np.where(x[5][:, None, None], np.nan_to_num(x[4]), np.eye(3, 4)).astype(np.float32)
                 for x in inputs]  # a missing view gets a finite stand-in projection (masked by ``valid``)
        run_persons = getattr(self.network, "run_persons", None)
        if len(inputs) == 1 or run_persons is None:
            return {x[0].id: self.network.run(x[3], feed, x[5], x[6], x[7])
                    for x, feed in zip(inputs, feeds, strict=True)}
        out = run_persons(np.stack([x[3] for x in inputs]), np.stack(feeds), np.stack([x[5] for x in inputs]),
                          np.stack([x[6] for x in inputs]), np.array([x[7] for x in inputs], np.float64))
        return {x[0].id: {name: value[i] for name, value in out.items()} for i, x in enumerate(inputs)}
