"""``Solver``: multi-view heatmaps + projections → one 3D skeleton, cold or tracked.

Pipeline per frame: undo a left/right swap in any view (:mod:`.labels`), find the root by 3D voting
(:mod:`.root`), a pictorial structure on a 16^3 grid around it with exact max-product over each
joint's best bins, RPSM recursions with 3x3x3 local grids (:mod:`.search`), then sub-pixel refinement
from the views that agree (:mod:`.refine`). Limb lengths come from the skeleton template, rescaled and
refined online for the performer (:mod:`.limbs`).
With a previous pose, the search is a local grid around each joint instead; it falls back to the cold
search when confidence drops or a joint hits the edge of its local grid.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from crosspose.geometry import CameraRig
from crosspose.skeleton import Skeleton, get_skeleton
from crosspose.solver.keypoints import keypoints_to_heatmaps
from crosspose.solver.labels import (
    MirrorGroups,
    RelabelOptions,
    epipolar_swaps,
    fundamental_matrices,
    mirror_groups,
    relabel,
    view_permutation,
)
from crosspose.solver.limbs import LimbLengthEstimate
from crosspose.solver.pose import Pose3D
from crosspose.solver.refine import RefineOptions, refine
from crosspose.solver.root import RootSearchOptions, search_root
from crosspose.solver.sampling import sample_per_joint, valid_cameras, view_centre_point
from crosspose.solver.search import first_level, recurse
from crosspose.solver.tree import TreeSchedule

# Confidence given to a joint fewer than two views support, relative to its best single-view evidence.
UNSUPPORTED_CONFIDENCE = 0.1


@dataclass(frozen=True)
class SolverOptions:
    """Every tuning knob of :class:`Solver` (pass them as keyword arguments to ``Solver``).

    Attributes:
        grid_bins: first-level bins per axis (paper 16). grid_extent: its cube edge, metres (paper 2.0).
        tolerance: limb-length tolerance of the pairwise term, metres (paper 0.15).
        top_k: bins per joint kept for the first-level inference; ``None`` = exact whole-grid (shell).
        recursion_size: local grid per axis in the recursions (paper 2; 3 can stay put).
        recursion_iterations: number of recursions (paper 10).
        refine: sub-pixel refinement (``False`` reports the 3D search's answer).
        refine_options: see :class:`RefineOptions`. root_options: see :class:`RootSearchOptions`.
        volume_centre: centre of the capture volume (m); ``None`` derives it from the views.
        tracking: search near the previous pose when there is one.
        track_spacing: first 3x3x3 grid step around each predicted joint in tracking mode, metres.
        track_iterations: tracked RPSM recursions (spacing halved each time) before the refinement.
        track_min_confidence: fall back to a cold search when the tracked pose's mean confidence is
            below this fraction of the previous pose's.
        track_max_move, track_max_jumped_joints: fall back when this many well-seen joints end
            further than ``track_max_move`` metres from their prediction (the pose jumped).
        track_reweight_rounds: the refinement's ``reweight_rounds`` in tracking mode. The tracked
            search ends on a finer grid than the cold one, so re-centring buys nothing there
            (measured on the benchmark's tracked clips: 22.3 mm with 0 rounds, 22.4 with 3) and
            costs a third of the refinement.
        track_swap_separation: in tracking mode the full left/right test runs only when the predicted
            pose leaves a doubt (:meth:`Solver._swap_suspected`); a joint and its mirror closer than this
            in a view (heatmap pixels) raise none there.
        relabel_swaps: before the search, test each view's left/right labelling of each limb against
            the other views (epipolar geometry) and swap back the channels of a view that disagrees
            with the majority (:mod:`.labels`). relabel_options: see :class:`RelabelOptions`.
        online_limbs: refine limb lengths from confident frames.
        keypoint_max_residual: ``max_residual`` of the refinement for :meth:`Solver.solve_keypoints`
            (heatmap pixels). Real detectors disagree between views by about a heatmap pixel of a
            whole-body crop; that is noise to average, not a view to drop (measured on the Pose2Sim
            clip: dropping at 1.5 px made bone lengths 1.6x less stable than keeping views up to 4 px).
        device: torch device (default: the heatmaps' device).
    """

    grid_bins: int = 16
    grid_extent: float = 2.0
    tolerance: float = 0.15
    top_k: int | None = 32
    recursion_size: int = 3
    recursion_iterations: int = 2
    refine: bool = True
    refine_options: RefineOptions = field(default_factory=RefineOptions)
    root_options: RootSearchOptions = field(default_factory=RootSearchOptions)
    volume_centre: tuple[float, float, float] | None = None
    tracking: bool = True
    track_spacing: float = 0.06
    track_iterations: int = 1
    track_min_confidence: float = 0.7
    track_max_move: float = 0.15
    track_max_jumped_joints: int = 3
    track_reweight_rounds: int = 0
    track_swap_separation: float = 2.0
    relabel_swaps: bool = True
    relabel_options: RelabelOptions = field(default_factory=RelabelOptions)
    online_limbs: bool = True
    keypoint_max_residual: float = 4.0
    device: str | None = None


@dataclass
class _Batch:
    heatmaps: torch.Tensor  # (N, C, J, h, w)
    projections: torch.Tensor  # (N, C, 3, 4)
    valid: torch.Tensor  # (N, C)
    refine_options: RefineOptions | None = None  # overrides the solver's (keypoint input)
    permutation: torch.Tensor | None = None  # (N, C, J) channel read for each joint (relabelled views)

    def relabelled(self, flips: torch.Tensor, groups: MirrorGroups) -> _Batch:
        """The batch with the flagged ``(N, C, G)`` mirror groups of each view swapped back."""
        step = view_permutation(flips, groups)
        perm = step if self.permutation is None else self.permutation.gather(2, step)
        return _Batch(relabel(self.heatmaps, step), self.projections, self.valid, self.refine_options, perm)


class Solver:
    """Multi-view RPSM solver with sub-pixel refinement, online limb lengths and tracking.

    Args:
        skeleton: joint layout name (``h36m17``) or a :class:`~crosspose.skeleton.Skeleton`.
        **options: fields of :class:`SolverOptions`.

    ``solve`` keeps state (previous pose for tracking, the performer's limb lengths); ``reset()``
    forgets both (a new performer). ``solve_batch`` solves independent frames cold, without state.
    """

    def __init__(self, skeleton: str | Skeleton = "h36m17", **options: Any) -> None:
        self.skeleton = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
        known = {f.name for f in dataclasses.fields(SolverOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown solver option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        self.options = SolverOptions(**options)
        self.schedule = TreeSchedule.from_skeleton(self.skeleton)
        root = self.skeleton.root
        self.root_joints = (root, *self.skeleton.children(root))
        self.limbs = LimbLengthEstimate(self.skeleton)
        self.groups = mirror_groups(self.skeleton)
        self._fundamental: tuple[torch.Tensor, torch.Tensor] | None = None  # (projections, their F)
        self._previous: Pose3D | None = None
        self._velocity: np.ndarray | None = None
        self._mirror: torch.Tensor | None = None
        self._joints: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the previous pose and the performer's limb lengths."""
        self._previous = None
        self._velocity = None
        self.limbs.reset()

    # Public entry points ---------------------------------------------------------------------------
    @torch.inference_mode()
    def solve(self, heatmaps: np.ndarray | torch.Tensor, projections: np.ndarray | torch.Tensor) -> Pose3D:
        """Solve one frame.

        Args:
            heatmaps: ``(C, J, h, w)`` per-view joint heatmaps (a missing camera: all zeros).
            projections: ``(C, 3, 4)`` world metres → heatmap pixels, pixel centres at integers
                (a missing camera: NaN).
        Returns:
            the :class:`Pose3D`; tracking state and limb lengths are updated.
        """
        return self._solve_frame(self._batch(heatmaps, projections, frames=False))

    def _solve_frame(self, batch: _Batch, keypoints: np.ndarray | None = None,
                     rig: CameraRig | None = None) -> Pose3D:
        """Search (tracked or cold), optionally finish from exact keypoints, update the state."""
        t0 = time.perf_counter()
        pose: Pose3D | None = None
        fallback = None
        previous = self._previous if self.options.tracking else None
        prediction = None if previous is None else self._predict(previous, batch.heatmaps.device)
        unchecked = batch
        # Tracking: the full left/right test runs only when the prediction leaves a doubt (see below).
        tested = prediction is None or self._swap_suspected(batch, prediction)
        batch = self._relabel(batch) if tested else batch
        if previous is not None and prediction is not None:
            pose, fallback = self._tracked(batch, previous, prediction)
        if pose is None:
            pose = self._cold(batch if tested else self._relabel(unchecked))[0]
        if keypoints is not None and rig is not None:
            relabelled = pose.diagnostics.get("relabelled")
            if relabelled is not None:  # the keypoints of a relabelled view, in the order it was read
                keypoints = np.take_along_axis(keypoints, relabelled[..., None], axis=1)
            pose = _finish_from_keypoints(pose, keypoints, rig)
        pose.diagnostics["fallback"] = fallback
        pose.diagnostics["swap_test"] = "full" if tested or pose.mode == "cold" else "skipped"
        pose.diagnostics["solve_ms"] = 1e3 * (time.perf_counter() - t0)
        self._remember(pose)
        return pose

    @torch.inference_mode()
    def solve_batch(self, heatmaps: np.ndarray | torch.Tensor,
                    projections: np.ndarray | torch.Tensor) -> list[Pose3D]:
        """Solve ``N`` independent frames at once (cold, no state used or changed).

        Args:
            heatmaps: ``(N, C, J, h, w)``; projections: ``(C, 3, 4)`` or ``(N, C, 3, 4)``.
        """
        return self._cold(self._relabel(self._batch(heatmaps, projections, frames=True)))

    @torch.inference_mode()
    def solve_keypoints(self, keypoints: np.ndarray | torch.Tensor, rig: CameraRig,
                        heatmap_size: int = 64, sigma: float = 2.0) -> Pose3D:
        """Solve one frame of 2D detections.

        Args:
            keypoints: ``(C, J, 3)`` ``[x, y, confidence]`` image pixels as detected (distorted), in the
                solver's joint order; NaN or zero confidence for a missing keypoint.
            rig: the calibrated cameras in the same order.

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
        return self._solve_frame(batch, kp, rig)

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
        hm = torch.nan_to_num(hm, nan=0.0)
        return _Batch(hm, P, valid_cameras(hm, P))

    def _lengths(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(self.limbs.lengths, dtype=torch.float32, device=device)[None].expand(n, -1)

    def _cold(self, b: _Batch) -> list[Pose3D]:
        joints, root, votes = self._search(b, b.valid)
        return self._finish(b, joints, "cold", root=root, root_votes=votes)

    def _relabel(self, b: _Batch) -> _Batch:
        """``b`` with the views whose left and right of a limb were swapped swapped back
        (:func:`.labels.epipolar_swaps`)."""
        if not self.options.relabel_swaps:
            return b
        P = b.projections
        cached = self._fundamental
        if cached is None or cached[0].shape != P.shape or cached[0].device != P.device or not torch.equal(
                cached[0], P):
            cached = (P.clone(), fundamental_matrices(P))
            self._fundamental = cached
        flips = epipolar_swaps(b.heatmaps, P, b.valid, self.groups, self.options.relabel_options, cached[1])
        return b.relabelled(flips, self.groups) if bool(flips.any()) else b

    def _search(self, b: _Batch, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Root vote, first-level PSM and RPSM recursions using the views in ``valid (N, C)``."""
        o = self.options
        n = b.heatmaps.shape[0]
        if o.volume_centre is not None:
            centre = torch.tensor(o.volume_centre, dtype=torch.float32, device=b.heatmaps.device).expand(n, 3)
        else:
            size = (int(b.heatmaps.shape[-2]), int(b.heatmaps.shape[-1]))
            centre = view_centre_point(b.projections, valid, size).to(torch.float32)
        root, votes = search_root(b.heatmaps, b.projections, valid, centre, self.root_joints, o.root_options)
        lengths = self._lengths(n, b.heatmaps.device)
        joints = first_level(self.schedule, b.heatmaps, b.projections, valid, root, lengths,
                             bins=o.grid_bins, extent=o.grid_extent, tolerance=o.tolerance, top_k=o.top_k)
        spacing = o.grid_extent / o.grid_bins
        joints = recurse(self.schedule, b.heatmaps, b.projections, valid, joints, lengths,
                         spacing=spacing if o.recursion_size == 2 else spacing / 2,
                         iterations=o.recursion_iterations, size=o.recursion_size, tolerance=o.tolerance)
        return joints, root, votes

    def _predict(self, previous: Pose3D, device: torch.device) -> torch.Tensor:
        """``(1, J, 3)`` where the joints should be now: the previous pose moved by half its last
        velocity (damped: a wrong velocity costs less than a missed joint)."""
        prev = torch.as_tensor(previous.joints, dtype=torch.float32, device=device)[None]
        if self._velocity is not None:
            prev = prev + 0.5 * torch.as_tensor(self._velocity, dtype=torch.float32, device=device)[None]
        return prev

    def _swap_suspected(self, b: _Batch, prediction: torch.Tensor) -> bool:
        """Could any view have left and right crossed, judged from the predicted pose?

        Each view's heatmap of each lateral joint is read where the prediction projects that joint
        and where it projects the joint's mirror. Unless every lateral joint of every view clearly
        favours its own side (evidence ≥ ``relabel_options.min_peak`` there, and more than 1.25 times
        the evidence at the mirror's place when the two are ``track_swap_separation`` pixels apart or
        more), the full prediction-free test (:func:`.labels.epipolar_swaps`) runs. The check costs
        about a third of the test; on the benchmark's clean tracked clip it is all that runs in 9
        frames of 10, and a view with left and right swapped raises a doubt in 117 of 119 frames.
        """
        if not self.options.relabel_swaps:
            return False
        if b.heatmaps.shape[0] != 1:
            return True
        P = b.projections[0]  # (C, 3, 4); one matmul, not the general projection (this runs every frame)
        uvw = P[:, :, :3] @ prediction[0].T + P[:, :, 3:]  # (C, 3, J)
        uv = (uvw[:, :2] / uvw[:, 2:]).transpose(1, 2)  # (C, J, 2); behind a camera reads as no evidence
        mirror = self._mirror_index(uv.device)
        mirrored = uv[:, mirror]
        samples = sample_per_joint(b.heatmaps, torch.stack([uv, mirrored], 2)[None])[0]  # (C, J, 2)
        own, crossed = samples[..., 0], samples[..., 1]
        # Where a view sees a joint and its mirror nearly on top of each other, crossing them changes
        # little and the epipolar test abstains there as well.
        apart = (uv - mirrored).square().sum(-1) >= self.options.track_swap_separation ** 2
        doubt = (own < self.options.relabel_options.min_peak) | (apart & (crossed > 0.8 * own))
        lateral = mirror != self._joint_index(uv.device)
        return bool((doubt & lateral & b.valid[0, :, None]).any())

    def _joint_index(self, device: torch.device) -> torch.Tensor:
        cached = self._joints
        if cached is None or cached.device != device:
            cached = self._joints = torch.arange(self.skeleton.num_joints, device=device)
        return cached

    def _mirror_index(self, device: torch.device) -> torch.Tensor:
        cached = self._mirror
        if cached is None or cached.device != device:
            cached = self._mirror = torch.tensor(self.groups.mirror, device=device)
        return cached

    def _tracked(self, b: _Batch, previous: Pose3D, prev: torch.Tensor) -> tuple[Pose3D | None, str | None]:
        o = self.options
        device = b.heatmaps.device
        lengths = self._lengths(1, device)
        # RPSM recursions straight from the prediction: 3x3x3 local grids, spacing halved each time.
        joints = recurse(self.schedule, b.heatmaps, b.projections, b.valid, prev, lengths,
                         spacing=o.track_spacing, iterations=o.track_iterations, size=3,
                         tolerance=o.tolerance)
        pose = self._finish(b, joints, "tracked", root=joints[:, self.skeleton.root],
                            root_votes=torch.full((1,), float("nan")))[0]
        moved = np.linalg.norm(pose.joints - prev[0].double().cpu().numpy(), axis=-1)
        if ((moved > o.track_max_move) & pose.supported()).sum() >= o.track_max_jumped_joints:
            return None, "jump"
        if pose.confidence.mean() < o.track_min_confidence * previous.confidence.mean():
            return None, "confidence"
        return pose, None

    def _finish(self, b: _Batch, joints: torch.Tensor, mode: str, root: torch.Tensor,
                root_votes: torch.Tensor) -> list[Pose3D]:
        options = b.refine_options or self.options.refine_options
        if mode == "tracked":
            options = dataclasses.replace(options, reweight_rounds=self.options.track_reweight_rounds)
        if self.options.refine:
            r = refine(b.heatmaps, b.projections, b.valid, joints, options)
            final, support, evidence, residual = r.joints, r.support, r.evidence, r.residual
        else:
            r = refine(b.heatmaps, b.projections, b.valid, joints, dataclasses.replace(options, iterations=0))
            final, support, evidence, residual = joints, r.support, r.evidence, r.residual
        ev = evidence.clamp(0.0, 1.0)
        views = support.sum(1)  # (N, J)
        supported_mean = (ev * support).sum(1) / views.clamp(min=1)
        best_single = (ev * b.valid[..., None]).amax(1)
        confidence = torch.where(views >= 2, supported_mean, UNSUPPORTED_CONFIDENCE * best_single)
        # A few device→host transfers for the whole batch (each tensor op costs microseconds here).
        points = torch.stack([final.double(), joints.double()], 1).cpu().numpy()  # (N, 2, J, 3)
        roots = root.double().cpu().numpy()
        per_view = torch.stack([evidence, residual.to(evidence.dtype)], 1).cpu().numpy()  # (N, 2, C, J)
        confidence_np, views_np = confidence.cpu().numpy(), views.cpu().numpy().astype(np.int64)
        support_np, votes = support.cpu().numpy(), root_votes.cpu().numpy()
        relabelled = None if b.permutation is None else b.permutation.cpu().numpy()
        out = []
        lengths = self.limbs.lengths
        for i in range(joints.shape[0]):
            out.append(Pose3D(
                joints=points[i, 0],
                confidence=confidence_np[i],
                views=views_np[i],
                support=support_np[i],
                skeleton=self.skeleton.name,
                mode=mode,
                diagnostics={
                    "root": roots[i],
                    "root_votes": float(votes[i]),
                    "searched": points[i, 1],
                    "evidence": per_view[i, 0],
                    "residual": per_view[i, 1],
                    "limb_lengths": lengths.copy(),
                    "relabelled": None if relabelled is None else relabelled[i],
                },
            ))
        return out

    def _remember(self, pose: Pose3D) -> None:
        supported = pose.supported()
        if self.options.online_limbs:
            confident = supported & (pose.confidence >= 0.3)
            parents = np.array([p for p, _ in self.skeleton.bones])
            children = np.array([c for _, c in self.skeleton.bones])
            both_ends = confident[parents] & confident[children]
            self.limbs.update(self.skeleton.bone_lengths(pose.joints), both_ends)
        # Only a pose most of whose joints are well seen is a good place to search next time.
        good = supported.mean() >= 0.5
        if good and self._previous is not None:
            moved = pose.joints - self._previous.joints
            both = supported & self._previous.supported()
            self._velocity = np.where(both[:, None], moved, 0.0)
        else:
            self._velocity = None
        self._previous = pose if good else None


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
