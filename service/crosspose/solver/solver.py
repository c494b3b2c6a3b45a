"""``Solver``: multi-view heatmaps + projections → one 3D skeleton, cold or tracked.

Pipeline per frame: undo a left/right swap in any view (:mod:`.labels`), find the root by 3D voting
(:mod:`.root`), a pictorial structure on a 16^3 grid around it with exact max-product over each
joint's best bins, RPSM recursions with 3x3x3 local grids (:mod:`.search`), then sub-pixel refinement
from the views that agree (:mod:`.refine`). A layout's extremities (the full body's feet, hand and face
points) are searched after the body, each around its solved parent (:mod:`.leaves`), and refined like
every joint. Limb lengths come from the skeleton template, rescaled and refined online for the performer
(:mod:`.limbs`).
With a previous pose, the search is a local grid around each joint instead, as wide as the joints can
have moved since that pose (``track_max_speed`` times its age, when frame times are given); it falls back
to the cold search when confidence drops, several joints jump, or the previous pose is older than
``track_max_age_s``.

What the solver remembers of a performer (previous pose, velocity, limb lengths) is a
:class:`SolverTrack`, kept apart from the solver's caches: one solver serves several performers by
passing each one's track to :meth:`Solver.solve`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from crosspose.geometry import CameraRig
from crosspose.skeleton import Skeleton, get_skeleton
from crosspose.solver.feet import (
    FOOT_ASYMMETRY,
    FootLengthEstimate,
    along_variance,
    foot_pairs,
    hold_foot_lengths,
    view_noise_px,
    view_noises_px,
)
from crosspose.solver.keypoints import keypoints_to_heatmaps
from crosspose.solver.labels import (
    MirrorGroups,
    epipolar_swaps,
    fundamental_matrices,
    mirror_groups,
    relabel,
    view_permutation,
)
from crosspose.solver.leaves import place_leaves
from crosspose.solver.lengths import bone_directions, hold_bone_lengths, long_bones
from crosspose.solver.limbs import LimbLengthEstimate
from crosspose.solver.options import RefineOptions, SolverOptions
from crosspose.solver.pose import Pose3D
from crosspose.solver.refine import Refinement, refine
from crosspose.solver.root import search_root
from crosspose.solver.sampling import (
    log_unary,
    mean_over_views,
    project,
    sample_per_joint,
    view_centre_point,
    view_signal,
)
from crosspose.solver.search import first_level, local_candidates, local_search, recurse
from crosspose.solver.tree import TreeSchedule, max_product_candidates

# Confidence given to a joint fewer than two views support, relative to its best single-view evidence.
UNSUPPORTED_CONFIDENCE = 0.1
# A velocity is extrapolated at most this many times its own time span (damped by half, see
# Solver._predict): beyond, the wide search's reach, not the prediction, has to find the joint.
MAX_PREDICTED_STEPS = 4.0


@dataclass
class SolverTrack:
    """One performer as the solver follows them.

    Attributes:
        limbs: the performer's limb lengths, refined online from confident frames.
        previous: the last pose good enough to search around (most joints seen), or None.
        previous_t_ns: that pose's capture time when :meth:`Solver.solve` got one, else None.
        velocity: ``(J, 3)`` metres of the well-seen joints between the last two good poses (per frame).
        velocity_s: seconds between those two poses when both had capture times, else None (the
            prediction then takes the next frame to be as far ahead).
        feet: the performer's foot lengths (heel → big toe), likewise (:mod:`.feet`); :meth:`new` gives the
            layout's feet, a track built without it holds none.
    """

    limbs: LimbLengthEstimate
    previous: Pose3D | None = None
    previous_t_ns: int | None = None
    velocity: np.ndarray | None = None
    velocity_s: float | None = None
    feet: FootLengthEstimate = dataclasses.field(
        default_factory=lambda: FootLengthEstimate(np.zeros((0, 2), dtype=np.int64)))

    @classmethod
    def new(cls, skeleton: Skeleton) -> SolverTrack:
        """A performer not seen yet: template limb lengths, nothing to track from."""
        return cls(LimbLengthEstimate(skeleton), feet=FootLengthEstimate(foot_pairs(skeleton)))

    def forget_pose(self) -> None:
        """Forget the previous pose (the next solve searches cold), keeping the limb lengths."""
        self.previous = self.previous_t_ns = self.velocity = None

    def reset(self) -> None:
        """Forget the previous pose and the limb lengths (a new performer)."""
        self.previous = self.previous_t_ns = self.velocity = self.velocity_s = None
        self.limbs.reset()
        self.feet.reset()


@dataclass
class _Batch:
    heatmaps: torch.Tensor  # (N, C, J, h, w)
    projections: torch.Tensor  # (N, C, 3, 4)
    valid: torch.Tensor  # (N, C) usable cameras
    signal: torch.Tensor  # (N, C, J) valid and the heatmap holds a peak: the views that vote for a joint
    refine_options: RefineOptions | None = None  # overrides the solver's (keypoint input)
    permutation: torch.Tensor | None = None  # (N, C, J) channel read for each joint (relabelled views)

    def relabelled(self, flips: torch.Tensor, groups: MirrorGroups) -> _Batch:
        """The batch with the flagged ``(N, C, G)`` mirror groups of each view swapped back."""
        step = view_permutation(flips, groups)
        perm = step if self.permutation is None else self.permutation.gather(2, step)
        return _Batch(relabel(self.heatmaps, step), self.projections, self.valid, self.signal.gather(2, step),
                      self.refine_options, perm)


class Solver:
    """Multi-view RPSM solver with sub-pixel refinement, online limb lengths and tracking.

    Args:
        skeleton: joint layout name (``h36m17``) or a :class:`~crosspose.skeleton.Skeleton`.
        options: every option at once, e.g. the config's validated ``solver.options``
            (default: :class:`SolverOptions`' defaults).
        **overrides: fields of :class:`SolverOptions`, over ``options``.

    ``solve`` keeps the performer's state (previous pose for tracking, limb lengths) in a
    :class:`SolverTrack`: its own :attr:`track` by default, or the one passed (one per performer);
    ``reset()`` forgets its own. ``solve_batch`` solves independent frames cold, without state.
    """

    def __init__(self, skeleton: str | Skeleton = "h36m17", *, options: SolverOptions | None = None,
                 **overrides: Any) -> None:
        self.skeleton = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
        if options is not None and not isinstance(options, SolverOptions):
            raise TypeError(f"options must be a SolverOptions, got {type(options).__name__}")
        known = {f.name for f in dataclasses.fields(SolverOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown solver option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        self.options = dataclasses.replace(SolverOptions() if options is None else options, **overrides)
        # The tree searched with the RPSM: the layout without its extremities (placed after, :mod:`.leaves`).
        self.body = self.skeleton.body.num_joints
        self.schedule = TreeSchedule.from_skeleton(self.skeleton.body)
        self._leaf_parents = torch.tensor(self.skeleton.parents[self.body:], dtype=torch.long)
        # (J,) each joint's own index for the body, its parent's for an extremity (placed from the parent)
        self._placed_from = np.array([*range(self.body), *self.skeleton.parents[self.body:]], dtype=np.int64)
        self._placed_from_t = torch.as_tensor(self._placed_from)
        root = self.skeleton.root
        self.root_joints = (root, *self.skeleton.children(root))
        self.track = SolverTrack.new(self.skeleton)
        self.groups = mirror_groups(self.skeleton)
        # Caches (shared by every performer): fundamental matrices of the last projections, etc.
        self._fundamental: tuple[torch.Tensor, np.ndarray] | None = None  # (projections, their F)
        self._mirror: torch.Tensor | None = None
        self._lateral = np.array(self.groups.mirror) != np.arange(self.skeleton.num_joints)  # (J,)
        self._bone_ends = (np.array([p for p, _ in self.skeleton.bones]),
                           np.array([c for _, c in self.skeleton.bones]))  # (B,) parents, children
        self._bone_pairs = np.stack(self._bone_ends, 1).reshape(-1, 2)  # (B, 2)
        self._long_bones = long_bones(self.skeleton)  # (L,) rows of the bones held to their lengths
        # a held wrist's or ankle's move carries its extremities (hand points, heel, toe)
        self._carried = np.where(np.arange(self.skeleton.num_joints) >= self.body, self.skeleton.parents, -1)
        self._lengths_cache: tuple[np.ndarray, torch.Tensor] | None = None  # (estimate, on the device)
        self._lines_cache: dict[tuple[bytes, bytes | None], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def limbs(self) -> LimbLengthEstimate:
        """The limb lengths of the solver's own track."""
        return self.track.limbs

    def new_track(self) -> SolverTrack:
        """A fresh track for another performer (pass it to :meth:`solve`)."""
        return SolverTrack.new(self.skeleton)

    def reset(self) -> None:
        """Forget the previous pose and the limb lengths of the solver's own track."""
        self.track.reset()

    # Public entry points ---------------------------------------------------------------------------
    @torch.inference_mode()
    def solve(self, heatmaps: np.ndarray | torch.Tensor, projections: np.ndarray | torch.Tensor,
              t_ns: int | None = None, track: SolverTrack | None = None) -> Pose3D:
        """Solve one frame.

        Args:
            heatmaps: ``(C, J, h, w)`` per-view joint heatmaps (a missing camera: all zeros).
            projections: ``(C, 3, 4)`` world metres → heatmap pixels, pixel centres at integers
                (a missing camera: NaN).
            t_ns: the frame's capture time (any monotonic clock, nanoseconds): the tracked search then
                reaches as far as a joint can have moved since the previous pose
                (``track_max_speed``), and a previous pose older than ``track_max_age_s`` is searched
                cold. None: frames are taken as consecutive.
            track: the performer's :class:`SolverTrack` (default: the solver's own, :attr:`track`).
        Returns:
            the :class:`Pose3D`; the track's previous pose and limb lengths are updated.
        """
        return self._solve_frame(self._batch(heatmaps, projections, frames=False), t_ns=t_ns,
                                 track=self.track if track is None else track)

    def _solve_frame(self, batch: _Batch, keypoints: np.ndarray | None = None,
                     rig: CameraRig | None = None, t_ns: int | None = None,
                     track: SolverTrack | None = None) -> Pose3D:
        """Search (tracked or cold), optionally finish from exact keypoints, update the track."""
        track = self.track if track is None else track
        t0 = time.perf_counter()
        pose: Pose3D | None = None
        fallback = None
        previous = track.previous if self.options.tracking else None
        # Seconds since the previous pose, when both frames have capture times.
        age_s = (None if previous is None or t_ns is None or track.previous_t_ns is None
                 else 1e-9 * (t_ns - track.previous_t_ns))
        if age_s is not None and age_s > self.options.track_max_age_s:
            previous, fallback = None, "previous pose too old"
        # Whether `batch` went through the full left/right test: tracking runs it only when the
        # prediction leaves a doubt, a cold search always.
        tested = False
        if previous is not None:
            pose, fallback, batch, tested = self._tracked(batch, previous, track, age_s)
        if pose is None or fallback == "missed":
            tracked = pose
            pose = self._cold(batch if tested else self._relabel(batch), track)[0]
            k = self.body
            if tracked is not None and pose.supported()[:k].sum() <= tracked.supported()[:k].sum():
                # the cold search found no more of the body than tracking: the tracked pose stays
                pose, fallback = tracked, None
        if keypoints is not None and rig is not None:
            relabelled = pose.diagnostics.get("relabelled")
            if relabelled is not None:  # the keypoints of a relabelled view, in the order it was read
                keypoints = np.take_along_axis(keypoints, relabelled[..., None], axis=1)
            pose = _finish_from_keypoints(pose, keypoints, rig)
        pose.diagnostics["fallback"] = fallback
        pose.diagnostics["swap_test"] = "full" if tested or pose.mode == "cold" else "skipped"
        pose.diagnostics["solve_ms"] = 1e3 * (time.perf_counter() - t0)
        self._remember(pose, track, age_s)
        track.previous_t_ns = t_ns if track.previous is not None else None
        return pose

    @torch.inference_mode()
    def solve_batch(self, heatmaps: np.ndarray | torch.Tensor,
                    projections: np.ndarray | torch.Tensor) -> list[Pose3D]:
        """Solve ``N`` independent frames at once (cold, no state used or changed).

        Args:
            heatmaps: ``(N, C, J, h, w)``; projections: ``(C, 3, 4)`` or ``(N, C, 3, 4)``.
        """
        return self._cold(self._relabel(self._batch(heatmaps, projections, frames=True)), self.track)

    @torch.inference_mode()
    def solve_keypoints(self, keypoints: np.ndarray | torch.Tensor, rig: CameraRig,
                        heatmap_size: int = 64, sigma: float = 2.0,
                        track: SolverTrack | None = None) -> Pose3D:
        """Solve one frame of 2D detections.

        Args:
            keypoints: ``(C, J, 3)`` ``[x, y, confidence]`` image pixels as detected (distorted), in the
                solver's joint order; NaN or zero confidence for a missing keypoint.
            rig: the calibrated cameras in the same order.
            track: the performer's :class:`SolverTrack` (default: the solver's own).

        The keypoints are drawn as heatmaps for the robust 3D search (root vote, limb prior, which
        views agree); the final position of each joint is then triangulated from the exact keypoints
        of the views that support it, weighted by their confidence, so the heatmaps' resolution
        (a 64-pixel map over a whole body is ~3 cm a pixel) does not limit the answer.
        """
        device = self.options.device or (keypoints.device if isinstance(keypoints, torch.Tensor) else "cpu")
        heatmaps, projections = keypoints_to_heatmaps(keypoints, rig, heatmap_size, sigma, device=device)
        kp = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, torch.Tensor) else keypoints)
        batch = self._batch(heatmaps, projections, frames=False)
        batch.refine_options = dataclasses.replace(
            self.options.refine_options, max_residual=self.options.keypoint_max_residual
        )
        return self._solve_frame(batch, kp, rig, track=track)

    # Stages --------------------------------------------------------------------------------------
    def _batch(self, heatmaps: Any, projections: Any, frames: bool) -> _Batch:
        hm = torch.as_tensor(heatmaps)
        device = torch.device(self.options.device) if self.options.device else hm.device
        hm = hm.to(device=device, dtype=torch.float32)
        if not frames:
            hm = hm[None]
        P = torch.as_tensor(projections).to(device=device, dtype=torch.float32)
        j = self.skeleton.num_joints
        if hm.ndim != 5 or hm.shape[2] != j:
            want = "(N, C, J, h, w)" if frames else "(C, J, h, w)"
            raise ValueError(f"heatmaps must have shape {want} with J = {j}, got {tuple(heatmaps.shape)}")
        if P.ndim == 3:
            P = P[None].expand(hm.shape[0], -1, -1, -1)
        if P.shape != (hm.shape[0], hm.shape[1], 3, 4):
            raise ValueError(f"projections must have shape ({hm.shape[1]}, 3, 4) (one per camera), "
                             f"got {tuple(projections.shape)}")
        # A copy without NaN (and infinities clamped) only when a map holds one: copying every map costs more
        # than the test that finds none (the maps are read, never written, so the caller's may be shared).
        # The test is the maps' maxima, which the peak test needs anyway (a NaN or +inf pixel makes its map's
        # maximum one): one pass over the maps, not a sum and then the maxima.
        peak = hm.flatten(3).amax(-1)  # (N, C, J)
        if not bool(torch.isfinite(peak).all()):
            hm = torch.nan_to_num(hm, nan=0.0)
            return _Batch(hm, P, *view_signal(hm, P, self.options.min_peak_snr))
        return _Batch(hm, P, *view_signal(hm, P, self.options.min_peak_snr, peak))

    def _lengths(self, limbs: LimbLengthEstimate, n: int, device: torch.device) -> torch.Tensor:
        """``(n, B)`` a limb-length estimate on ``device`` (converted once per estimate)."""
        lengths = limbs.lengths
        cached = self._lengths_cache
        if cached is None or cached[1].device != device or not np.array_equal(cached[0], lengths):
            cached = (lengths, torch.as_tensor(lengths, dtype=torch.float32, device=device)[None])
            self._lengths_cache = cached
        return cached[1].expand(n, -1)

    def _cold(self, b: _Batch, track: SolverTrack) -> list[Pose3D]:
        joints, root, votes = self._search(b, track.limbs)
        return self._finish(b, joints, "cold", root=root, root_votes=votes, track=track)

    def _relabel(self, b: _Batch) -> _Batch:
        """``b`` with the views whose left and right of a limb were swapped swapped back
        (:func:`.labels.epipolar_swaps`)."""
        if not self.options.relabel_swaps:
            return b
        P = b.projections
        cached = self._fundamental
        if cached is None or cached[0].shape != P.shape or cached[0].device != P.device or not torch.equal(
                cached[0], P):
            cached = (P.clone(), fundamental_matrices(P).cpu().numpy())  # used on the host
            self._fundamental = cached
        flips = epipolar_swaps(b.heatmaps, P, b.valid, self.groups, self.options.relabel_options, cached[1],
                               b.signal)
        return b.relabelled(flips, self.groups) if bool(flips.any()) else b

    def _search(self, b: _Batch,
                limbs: LimbLengthEstimate) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Root vote, first-level PSM and RPSM recursions, each joint from the views with its peak."""
        o = self.options
        n = b.heatmaps.shape[0]
        if o.volume_centre is not None:
            centre = torch.tensor(o.volume_centre, dtype=torch.float32, device=b.heatmaps.device).expand(n, 3)
        else:
            size = (int(b.heatmaps.shape[-2]), int(b.heatmaps.shape[-1]))
            # A camera without a single peak is looking elsewhere (or at nothing): it has no say either.
            centre = view_centre_point(b.projections, b.signal.any(-1), size).to(torch.float32)
        root, votes = search_root(b.heatmaps, b.projections, b.signal, centre, self.root_joints,
                                  o.root_options)
        lengths = self._lengths(limbs, n, b.heatmaps.device)
        k, bones = self.body, self.body - 1  # the body's joints and bones come first
        signal = b.signal[:, :, :k]
        # the body's maps (a view: sampled at shared points, the first level reads them per view)
        joints = first_level(self.schedule, b.heatmaps[:, :, :k], b.projections, signal, root,
                             lengths[:, :bones], bins=o.grid_bins, extent=o.grid_extent,
                             tolerance=o.tolerance, top_k=o.top_k)
        spacing = o.grid_extent / o.grid_bins
        # every joint's maps: per-joint sampling reads the first K (sample_per_joint)
        joints = recurse(self.schedule, b.heatmaps, b.projections, signal, joints, lengths[:, :bones],
                         spacing=spacing if o.recursion_size == 2 else spacing / 2,
                         iterations=o.recursion_iterations, size=o.recursion_size, tolerance=o.tolerance)
        return self._with_leaves(b, joints, lengths), root, votes

    def _with_leaves(self, b: _Batch, joints: torch.Tensor, lengths: torch.Tensor,
                     predicted: np.ndarray | None = None) -> torch.Tensor:
        """``(N, J, 3)``: the body's ``(N, K, 3)`` joints and the extremities placed around them.

        Cold, each extremity is searched over its limb's shell around its parent
        (:func:`.leaves.place_leaves`). Tracked (``predicted (J, 3)``, every extremity known), each keeps its
        predicted offset from its parent, which has just been searched; the refinement then climbs to its
        peak in every view, as it does for the body's joints after their local search. (Searching the
        leaves in tracked frames too cost ~1.5 ms of a ~7 ms frame on a 40-frame synthetic clip, for the
        same extremity errors.)
        """
        k = self.body
        if k == self.skeleton.num_joints:
            return joints
        if predicted is not None:
            # (J, 3): zero for the body, each extremity's offset from its parent
            offsets = predicted - predicted[self._placed_from]
            offsets[:k] = 0.0
            if np.isfinite(offsets[k:]).all():
                return joints[:, self._placed_from_t.to(joints.device)] + torch.as_tensor(
                    offsets, dtype=joints.dtype, device=joints.device)[None]
        parents = joints[:, self._leaf_parents.to(joints.device)]
        leaves = place_leaves(b.heatmaps, b.projections, b.signal[:, :, k:], parents, lengths[:, k - 1:],
                              tolerance=self.options.tolerance, first=k)  # the maps read in place
        return torch.cat([joints, leaves], 1)

    @staticmethod
    def _predict(previous: Pose3D, track: SolverTrack, age_s: float | None = None) -> np.ndarray:
        """``(J, 3)`` where the joints should be now: the previous pose moved by half its last
        velocity (damped: a wrong velocity costs less than a missed joint), over ``age_s`` seconds
        when the velocity's own time is known too, else over one frame."""
        if track.velocity is None:
            return previous.joints
        steps = 1.0
        if age_s is not None and track.velocity_s:
            # Capped: a velocity measured over a frame or two, extrapolated much further, is a guess.
            steps = min(age_s / track.velocity_s, MAX_PREDICTED_STEPS)
        return previous.joints + 0.5 * steps * track.velocity

    def track_reach(self, age_s: float | None) -> float:
        """How far (m) the tracked search looks around each predicted joint of a pose ``age_s`` seconds
        old: ``track_max_speed * age_s``, at least the ``track_spacing`` of the 3x3x3 grid searched
        between consecutive frames (also when the age is unknown, and up to ``track_narrow_age_s``)."""
        o = self.options
        if age_s is None or age_s <= o.track_narrow_age_s:
            return o.track_spacing
        return max(o.track_spacing, o.track_max_speed * age_s)

    def _swap_suspected(self, b: _Batch, uv: torch.Tensor, samples: torch.Tensor) -> bool:
        """Could any view have left and right crossed, judged from the predicted pose?

        Args:
            uv: ``(C, K, 2, 2)`` where each view sees each predicted joint of the body (the layout without
                its extremities) and its mirror (pixels).
            samples: ``(C, K, 2)`` each joint's heatmap there.

        Each view's heatmap of each lateral joint is read where the prediction projects that joint
        and where it projects the joint's mirror. Unless every lateral joint of every view clearly
        favours its own side (evidence ≥ ``relabel_options.min_peak`` there, and more than 1.25 times
        the evidence at the mirror's place when the two are ``track_swap_separation`` pixels apart or
        more), the full prediction-free test (:func:`.labels.epipolar_swaps`) runs. The samples come
        with the first tracked recursion's (:meth:`_tracked`), so the check costs a few small
        operations; on the benchmark's clean tracked clip it is all that runs in 9 frames of 10, and a
        view with left and right swapped raises a doubt in 117 of 119 frames.
        """
        # C x J x 6 numbers: decided on the host, one transfer.
        host = torch.cat([uv.flatten(-2), samples], -1).cpu().numpy()  # (C, J, 6)
        own, crossed = host[..., 4], host[..., 5]
        # Where a view sees a joint and its mirror nearly on top of each other, crossing them changes
        # little and the epipolar test abstains there as well.
        apart = np.square(host[..., 0:2] - host[..., 2:4]).sum(-1) >= self.options.track_swap_separation ** 2
        doubt = (own < self.options.relabel_options.min_peak) | (apart & (crossed > 0.8 * own))
        # A view without a joint's peak has nothing to cross (the full test ignores it as well).
        k = self.body  # the body's joints: the extremities follow their limbs
        return bool((doubt & self._lateral[:k] & b.signal[0, :, :k].cpu().numpy()).any())

    def _mirror_index(self, device: torch.device) -> torch.Tensor:
        cached = self._mirror
        if cached is None or cached.device != device:
            cached = self._mirror = torch.tensor(self.groups.mirror, device=device)
        return cached

    def _tracked(self, b: _Batch, previous: Pose3D, track: SolverTrack,
                 age_s: float | None = None) -> tuple[Pose3D | None, str | None, _Batch, bool]:
        """Search near the prediction from ``previous`` (``age_s`` seconds old, None: one frame).

        Within :meth:`track_reach` of one frame's motion, a 3x3x3 grid of ``track_spacing`` around each
        predicted joint and ``track_iterations`` recursions; further back, a wide grid: each joint's
        unary on a local grid of the cold search's first-level spacing covering the reach, its
        ``top_k`` best points, the exact tree inference over them, then the cold search's recursions
        (the cold search's first level, centred on the prediction instead of the whole volume), and the
        extremities searched around their parents as in a cold solve beyond ``track_leaves_reach``.
        Tracking is lost when the pose jumped or lost confidence. A pose that left unsupported a body joint
        two views show and the previous pose had no view for either (predicted where it is not) comes back
        with "missed": :meth:`_solve_frame` searches cold too and keeps the cold pose when it supports more
        of the body.
        Returns the pose (``None`` when tracking is lost) with the reason for falling back, the batch
        as searched (views relabelled when the full left/right test ran) and whether that test ran.
        """
        o = self.options
        device = b.heatmaps.device
        predicted = self._predict(previous, track, age_s)  # (J, 3) float64
        reach = self.track_reach(age_s)
        wide = reach > o.track_spacing
        k = self.body  # the body is tracked; the extremities are placed around it afterwards
        prev = torch.as_tensor(predicted[:k], dtype=torch.float32, device=device)[None]  # (1, K, 3)
        all_lengths = self._lengths(track.limbs, 1, device)
        lengths = all_lengths[:, :k - 1]
        # The first grid around each predicted joint: the 3x3x3 of the first RPSM recursion, or the
        # wide grid; the same projection and sampling also read each joint's heatmap at its own and
        # its mirror's prediction for the left/right check (one batch with one frame here).
        wide_spacing = o.grid_extent / o.grid_bins
        size = 2 * math.ceil(reach / wide_spacing) + 1 if wide else 3
        candidates = local_candidates(prev, size, wide_spacing if wide else o.track_spacing)  # (1, K, S^3, 3)
        n_candidates = candidates.shape[2]
        check = o.relabel_swaps and b.heatmaps.shape[0] == 1  # (solve() passes one frame)
        points = candidates
        if check:
            mirrors = prev[:, self._mirror_index(device)[:k], None]
            points = torch.cat([candidates, prev[:, :, None], mirrors], 2)
        uv = project(points, b.projections)  # (1, C, K, K', 2)
        heatmaps = b.heatmaps  # every joint's: the body's are its first K (sampling reads only those)
        samples = sample_per_joint(heatmaps, uv)  # (1, C, K, K')
        tested = o.relabel_swaps and (
            not check or self._swap_suspected(b, uv[0, :, :, n_candidates:], samples[0, :, :, n_candidates:]))
        if tested:
            relabelled = self._relabel(b)
            if relabelled is not b:  # a view's maps were swapped back: read them again
                b = relabelled
                heatmaps = b.heatmaps
                samples = sample_per_joint(heatmaps, uv)
        joints = prev
        signal = b.signal[:, :, :k]
        if wide:
            unary = log_unary(mean_over_views(samples[..., :n_candidates], signal))  # (1, K, S^3)
            score, best = unary.topk(min(o.top_k or n_candidates, n_candidates), dim=-1)
            kept = candidates.gather(2, best[..., None].expand(-1, -1, -1, 3))
            choice, _ = max_product_candidates(self.schedule, kept, score, lengths, o.tolerance)
            joints = kept.gather(2, choice[..., None, None].expand(-1, -1, 1, 3))[:, :, 0]
            joints = recurse(self.schedule, heatmaps, b.projections, signal, joints, lengths,
                             spacing=wide_spacing if o.recursion_size == 2 else wide_spacing / 2,
                             iterations=o.recursion_iterations, size=o.recursion_size, tolerance=o.tolerance)
        elif o.track_iterations > 0:
            # RPSM recursions from the prediction: 3x3x3 local grids, spacing halved each time.
            joints, _ = local_search(self.schedule, heatmaps, b.projections, signal, prev, lengths,
                                     size=3, spacing=o.track_spacing, tolerance=o.tolerance,
                                     samples=samples[..., :n_candidates])
            joints = recurse(self.schedule, heatmaps, b.projections, signal, joints, lengths,
                             spacing=o.track_spacing / 2, iterations=o.track_iterations - 1, size=3,
                             tolerance=o.tolerance)
        # Across a wide gap a hand or foot has turned about its parent as well: beyond
        # track_leaves_reach searched as when cold, nearer kept at its predicted offset.
        keep_leaves = not wide or reach <= o.track_leaves_reach
        joints = self._with_leaves(b, joints, all_lengths, predicted if keep_leaves else None)
        pose = self._finish(b, joints, "tracked", root=joints[:, self.skeleton.root],
                            root_votes=None, track=track)[0]
        # Tracking is kept or lost on the body's joints (the extremities follow it).
        # A wide search may move a joint as far as its reach (the search's own corners are further).
        moved = np.linalg.norm(pose.joints[:k] - predicted[:k], axis=-1)
        limit = max(o.track_max_move, reach) if wide else o.track_max_move
        if ((moved > limit) & pose.supported()[:k]).sum() >= o.track_max_jumped_joints:
            return None, "jump", b, tested
        if pose.confidence[:k].mean() < o.track_min_confidence * previous.confidence[:k].mean():
            return None, "confidence", b, tested
        # A body joint that no view supported in the previous pose and that two views or more show now (a
        # peak each) but the pose leaves unsupported was searched around the wrong place: the previous
        # pose's place of an unsupported joint is no prediction (the grid around it never reaches the
        # joint, and the next frame starts there again).
        shown = (b.signal[0, :, :k].sum(0) >= 2).cpu().numpy()
        if (shown & ~pose.supported()[:k] & ~previous.supported()[:k]).any():
            return pose, "missed", b, tested  # kept unless a cold search supports more of the body
        return pose, None, b, tested

    def _finish(self, b: _Batch, joints: torch.Tensor, mode: str, root: torch.Tensor,
                root_votes: torch.Tensor | None, track: SolverTrack) -> list[Pose3D]:
        """Refine, score and package ``joints (N, J, 3)``; ``root_votes (N,)`` of the root search
        (``None``: no root search, NaN). The long bones and the feet are held to ``track``'s lengths
        (:meth:`_hold_lengths`); the raw lengths go to the diagnostics (``bone_lengths_measured``,
        ``foot_lengths_measured``) for the track to learn from."""
        options = b.refine_options or self.options.refine_options
        if not self.options.refine:
            options = dataclasses.replace(options, iterations=0)
        r = refine(b.heatmaps, b.projections, b.signal, joints, options)
        # The refinement's answer is on the host already; a few more transfers for the whole batch.
        searched = torch.cat([joints, root[:, None]], 1).double().cpu().numpy()  # (N, J+1, 3)
        j = joints.shape[1]
        final = r.joints if self.options.refine else searched[:, :j]
        pairs = track.feet.pairs
        measured_feet = np.linalg.norm(final[:, pairs[:, 1]] - final[:, pairs[:, 0]], axis=-1)  # (N, F)
        parents, children = self._bone_ends
        measured_bones = np.linalg.norm(final[:, children] - final[:, parents], axis=-1)  # (N, B)
        if self.options.refine:
            final = self._hold_lengths(final, b, r, track)
        votes = np.full(joints.shape[0], np.nan) if root_votes is None else root_votes.cpu().numpy()
        signal = b.signal.cpu().numpy()
        ev = r.evidence.clip(0.0, 1.0)
        views_np = r.support.sum(1)  # (N, J) int64
        supported_mean = (ev * r.support).sum(1) / np.maximum(views_np, 1).astype(ev.dtype)
        best_single = (ev * signal).max(1)
        confidence_np = np.where(views_np >= 2, supported_mean, UNSUPPORTED_CONFIDENCE * best_single)
        # An extremity that no view supports is missing, not the point of its shell the search ended on.
        missing = (views_np == 0) & (np.arange(j) >= self.body)
        if missing.any():
            final = np.where(missing[..., None], np.nan, final)
            confidence_np = np.where(missing, 0.0, confidence_np)
        relabelled = None if b.permutation is None else b.permutation.cpu().numpy()
        out = []
        lengths = track.limbs.lengths
        for i in range(joints.shape[0]):
            out.append(Pose3D(
                joints=final[i],
                confidence=confidence_np[i],
                views=views_np[i],
                support=r.support[i],
                skeleton=self.skeleton.name,
                mode=mode,
                diagnostics={
                    "root": searched[i, j],
                    "root_votes": float(votes[i]),
                    "searched": searched[i, :j],
                    "evidence": r.evidence[i],
                    "residual": r.residual[i],
                    "limb_lengths": lengths.copy(),
                    "foot_lengths_measured": measured_feet[i],
                    "bone_lengths_measured": measured_bones[i],
                    "relabelled": None if relabelled is None else relabelled[i],
                },
            ))
        return out

    def _hold_lengths(self, joints: np.ndarray, b: _Batch, r: Refinement, track: SolverTrack) -> np.ndarray:
        """``(N, J, 3)`` refined joints with the long bones (:mod:`.lengths`, when ``hold_lengths``; bones
        whose own length ``track`` knows) and then the feet (:mod:`.feet`) held to ``track``'s lengths."""
        pairs = track.feet.pairs
        # the feet, once a length is known or, both feet held to each other, from the first frame
        feet = len(pairs) and (track.feet.shared or np.isfinite(track.feet.lengths).any())
        held = track.limbs.known[self._long_bones] & self.options.hold_lengths
        bones = self._long_bones[held]
        if not feet and not len(bones):
            return joints
        projections = r.projections if r.projections is not None else b.projections.cpu().numpy().astype(
            np.float64)
        # Every held line's ends' variances along it, in one pass (the bones' moves leave the feet's heels
        # and toes where they are).
        lines, ends = self._held_lines(bones, pairs if feet else None)
        unit = along_variance(joints[:, ends], bone_directions(joints, lines), projections,
                              r.support[:, :, ends], np.ones(len(joints)))  # (N, 2 (L + F)), noise 1 px
        # the noise of the body's views alone for the bones (a layout's extremities never move its body's
        # joints), of every joint's for the feet
        k = self.body
        body_noise, noise = (view_noises_px(r.residual, r.support, k) if feet and len(bones)  # (N,) each
                             else (None, None))
        if len(bones):
            if body_noise is None:
                body_noise = view_noise_px(r.residual[..., :k], r.support[..., :k])
            joints = hold_bone_lengths(joints, projections, r.support, body_noise, self._bone_pairs, bones,
                                       track.limbs.lengths[bones], track.limbs.spread_of(bones),
                                       unit_variance=unit[:, :2 * len(bones)], carried=self._carried)
        if feet:
            joints = hold_foot_lengths(joints, projections, r.support, r.residual, pairs, track.feet.lengths,
                                       unit_variance=unit[:, 2 * len(bones):], noise_px=noise,
                                       asymmetry=FOOT_ASYMMETRY if track.feet.shared else None)
        return joints

    def _held_lines(self, bones: np.ndarray, pairs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(L + F, 2)`` the held bones' ends then the feet's (``pairs``, None: none held) and
        ``(2 (L + F),)`` the same flat; built once per held set (every frame's once the lengths are known)."""
        key = (bones.tobytes(), None if pairs is None else pairs.tobytes())
        cached = self._lines_cache.get(key)
        if cached is None:
            lines = self._bone_pairs[bones]
            lines = lines if pairs is None else np.concatenate([lines, pairs])
            cached = self._lines_cache[key] = (lines, lines.reshape(-1))
        return cached

    def _remember(self, pose: Pose3D, track: SolverTrack, age_s: float | None = None) -> None:
        """Learn limb and foot lengths from ``pose``; keep it to track from when it is good, with its
        velocity since the previous good pose (``age_s`` seconds before, None: unknown)."""
        supported = pose.supported()
        if self.options.online_limbs:
            confident = supported & (pose.confidence >= 0.3)
            parents, children = self._bone_ends
            both_ends = confident[parents] & confident[children]
            # the lengths before any was held to the estimate (= Skeleton.bone_lengths of the refined joints)
            measured = pose.diagnostics.get("bone_lengths_measured")
            if measured is None:
                measured = np.linalg.norm(pose.joints[children] - pose.joints[parents], axis=-1)
            track.limbs.update(measured, both_ends)
            pairs = track.feet.pairs
            track.feet.update(pose.diagnostics.get("foot_lengths_measured", np.full(len(pairs), np.nan)),
                              confident[pairs[:, 0]] & confident[pairs[:, 1]])
        # Only a pose most of whose body joints are well seen is a good place to search next time.
        good = supported[:self.body].mean() >= 0.5
        if good and track.previous is not None:
            moved = pose.joints - track.previous.joints
            both = supported & track.previous.supported()
            track.velocity = np.where(both[:, None], moved, 0.0)
            track.velocity_s = age_s if age_s is not None and age_s > 0 else None
        else:
            track.velocity = track.velocity_s = None
        track.previous = pose if good else None


def _finish_from_keypoints(pose: Pose3D, keypoints: np.ndarray, rig: CameraRig) -> Pose3D:
    """Replace each well-supported joint by the confidence-weighted triangulation of its keypoints.

    Args:
        pose: the search's answer with its ``support (C, J)``.
        keypoints: ``(C, J, 3)`` ``[x, y, confidence]`` distorted image pixels.
    """
    xy = np.transpose(keypoints[..., :2], (1, 0, 2)).astype(np.float64)  # (J, C, 2)
    confidence = np.nan_to_num(keypoints[..., 2].astype(np.float64), nan=0.0).clip(min=0.0)
    weights = np.where(pose.support, confidence, 0.0).T  # (J, C)
    X, valid = rig.triangulate(np.where(weights[..., None] > 0, xy, np.nan), weights=weights)
    use = np.asarray(valid) & (pose.views >= 2)
    joints = np.where(use[:, None], np.asarray(X), pose.joints)
    diagnostics = dict(pose.diagnostics)
    diagnostics["keypoint_residual_px"] = np.asarray(rig.reprojection_error(joints, xy)).T  # (C, J)
    return dataclasses.replace(pose, joints=joints, diagnostics=diagnostics)
