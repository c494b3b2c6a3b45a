"""Every tuning knob of the solver as plain dataclasses, importable without torch.

:class:`SolverOptions` holds the :class:`~crosspose.solver.Solver`'s options with the options of its
parts (:class:`RefineOptions`, :class:`RootSearchOptions`, :class:`RelabelOptions`) nested. The config
(``solver.options``) validates a YAML map into them, so ``crosspose config validate`` checks them without
loading the solver itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RefineOptions:
    """Tuning of :func:`.refine.refine`.

    Attributes:
        radius: half width of the mean-shift window, heatmap pixels.
        iterations: mean-shift steps.
        max_shift: a view whose local peak lies further than this from the searched reprojection
            disagrees with the 3D vote (pixels).
        min_evidence: absolute heatmap value below which a view does not support a joint.
        relative_evidence: a view supports a joint only with at least this fraction of the best
            view's evidence.
        max_residual: reprojection error (pixels) up to which a view always agrees with the others.
        outlier_sigmas: ... and beyond that, a view agrees while its reprojection error stays within
            this many standard deviations of the frame's localisation noise (estimated from all of
            the frame's reprojection errors, :func:`.refine._outlier_limits`). The worst view above the limit
            is dropped after triangulation, one view per round, while more than two remain. Views
            that agree are triangulated weighted by their evidence alone: telling a disagreeing view
            from noise is this test's job. Measured on 6 and 8 cameras whose peaks are all right but
            0.6 px off (a 2D network's precision): a fixed 1.5 px limit dropped good views, and
            down-weighting the rest by their distance from the search's answer (1.5 px scale) threw
            away more of their information the more views there were; together 8 % more error than
            triangulating every view's windowed soft-argmax, now within 0.3 % of it.
    """

    radius: int = 3
    iterations: int = 4
    max_shift: float = 2.5
    min_evidence: float = 0.05
    relative_evidence: float = 0.25
    max_residual: float = 1.5
    outlier_sigmas: float = 4.0


@dataclass(frozen=True)
class RootSearchOptions:
    """Tuning of :func:`.root.search_root`.

    Attributes:
        volume_size: edge of the cube searched, metres (centred on the volume centre).
        coarse_spacing: coarse grid spacing, metres.
        fine_spacing: fine grid spacing, metres; fine_bins: fine grid points per axis.
        dilate: max-pool radius (heatmap pixels) applied before the coarse vote.
    """

    volume_size: float = 4.0
    coarse_spacing: float = 0.25
    fine_spacing: float = 0.04
    fine_bins: int = 9
    dilate: int = 2


@dataclass(frozen=True)
class RelabelOptions:
    """Tuning of the per-view left/right test (:func:`.labels.epipolar_swaps`).

    Attributes:
        epipolar_clip: the epipolar distance of a pair of peaks counts at most this much (pixels), so
            one wrong peak cannot decide.
        epipolar_margin: ... and a relabelling must lower the total epipolar distance of the group by
            at least this much per pair of views it changes (pixels).
        min_peak: a heatmap whose maximum is below this has no peak to test (heatmap units).
    """

    epipolar_clip: float = 4.0
    epipolar_margin: float = 0.5
    min_peak: float = 0.2


@dataclass(frozen=True)
class SolverOptions:
    """Every tuning knob of :class:`~crosspose.solver.Solver`: ``Solver(**fields)``, ``Solver(options=…)``.

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
            further than ``track_max_move`` metres from their prediction (the pose jumped). A tracked
            pose also falls back (``fallback`` "missed") when a body joint that two views or more show
            is left unsupported, as it was in the previous pose (that place was no prediction), and a
            cold search supports more of the body's joints.
        track_max_speed: with frame times given (``solve(..., t_ns=)``), the fastest a joint is taken
            to move, metres per second: a previous pose ``age`` seconds old is searched around as far as
            ``track_max_speed * age`` (:meth:`.solver.Solver.track_reach`; the 3x3x3 grid of
            ``track_spacing`` covers one frame, a wider reach a wide grid). ``0``: never wider (the rule
            before the wide search). The Pose2Sim clip's fastest joint (a wrist) moves 3.2 m/s; solved
            every 12th frame (200 ms) and 18th (300 ms), 2-3 m/s kept 100 % of the joints supported
            (cold: 100 %), 1 m/s 99.9 / 99.4 % (a joint 98 / 91 %) as the search lost joints and fell
            back; ``benchmarks/tracking_gap.py``.
        track_narrow_age_s: a previous pose up to this old (seconds) is searched on the 3x3x3 grid of
            ``track_spacing`` alone, whatever ``track_max_speed`` says (the rule before the wide search
            tracked up to 70 ms this way). Measured live (``benchmarks/pipeline.py --old-tracking``: the
            pose2sim demo at ~12-15 sets/s, ~70 ms apart, 2 cores): searching those sets wide cost 1.2x
            the solve stage and 0.8x the throughput of the 3x3x3 grid with a cold fallback; the grid
            supported 99.3 % of the full body's joints at 67 ms on the real clip (the wide search 100 %).
            ``0``: every gap beyond one frame's motion is searched wide.
        track_max_age_s: ... and a previous pose older than this (seconds) is too far back to search
            around: cold search. The wide grid's points grow with the cube of the reach: at 2.5 m/s
            it costs about a cold search near 0.3 s (on the clip tracking stayed as accurate as cold
            up to 0.4 s, the longest gap measured). The rule before the wide search: 0.07 s.
        track_leaves_reach: up to this reach (metres; :meth:`.solver.Solver.track_reach`) a wide tracked
            search keeps each extremity's predicted offset from its parent, as the 3x3x3 grid does, and
            the refinement climbs to its peak; further, the extremities are searched around their parents
            as when cold. On the Pose2Sim clip at 67 and 100 ms (reach 0.17 and 0.25 m) keeping them held
            every joint of the full body supported, the extremities a median 5 mm from the cold solve
            instead of 2 mm, for ~20 % less solve time; at 133 ms it lost joints (99.9 %; 200 ms 99.8 %).
            ``0``: always searched.
        track_swap_separation: in tracking mode the full left/right test runs only when the predicted
            pose leaves a doubt (:meth:`.solver.Solver._swap_suspected`); a joint and its mirror closer
            than this in a view (heatmap pixels) raise none there.
        min_peak_snr: a view's heatmap of a joint counts — in the root vote, the pictorial structure,
            the left/right test and the refinement — only when its maximum stands this many noise
            standard deviations above the map's mean (:func:`.sampling.view_signal`). A view that sees
            nothing still sends noise, and noise normalised or climbed votes like a peak: pure noise
            reaches 3-5 (up to 7.5 clipped at zero), a real peak ten times the noise 8 or more.
        relabel_swaps: before the search, test each view's left/right labelling of each limb against
            the other views (epipolar geometry) and swap back the channels of a view that disagrees
            with the majority (:mod:`.labels`). relabel_options: see :class:`RelabelOptions`.
        online_limbs: refine limb lengths from confident frames.
        hold_lengths: after the refinement, move each long bone's child end along the bone so that its
            length fuses the frame's measurement with the performer's learnt length (:mod:`.lengths`;
            the feet's heel-toe length always is, :mod:`.feet`).
        keypoint_max_residual: ``max_residual`` of the refinement for
            :meth:`.solver.Solver.solve_keypoints` (heatmap pixels). Real detectors disagree between
            views by about a heatmap pixel of a whole-body crop; that is noise to average, not a view
            to drop (measured on the Pose2Sim clip: dropping at 1.5 px made bone lengths 1.6x less
            stable than keeping views up to 4 px).
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
    track_swap_separation: float = 2.0
    track_max_speed: float = 2.5
    track_narrow_age_s: float = 0.07
    track_max_age_s: float = 0.3
    track_leaves_reach: float = 0.25
    min_peak_snr: float = 6.0
    relabel_swaps: bool = True
    relabel_options: RelabelOptions = field(default_factory=RelabelOptions)
    online_limbs: bool = True
    hold_lengths: bool = True
    keypoint_max_residual: float = 4.0
    device: str | None = None

    def __post_init__(self) -> None:
        # A nested set given as a mapping (as YAML writes it) would only fail deep inside a solve.
        nested = {"refine_options": RefineOptions, "root_options": RootSearchOptions,
                  "relabel_options": RelabelOptions}
        for name, kind in nested.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise TypeError(f"solver option {name} must be a {kind.__name__}, got {type(value).__name__} "
                                f"(crosspose.config turns a mapping into one)")
        for name in ("track_max_speed", "track_narrow_age_s", "track_max_age_s", "track_leaves_reach"):
            if not getattr(self, name) >= 0:  # NaN too
                raise ValueError(f"solver option {name} must be >= 0, got {getattr(self, name)}")
