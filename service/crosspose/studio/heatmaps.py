"""Simulated 2D joint heatmaps with seeded, switchable, recorded error modes.

A heatmap is one Gaussian per joint and view at the joint's heatmap-pixel location (pixel centres
at integer coordinates, peak 1 at the exact, sub-pixel location), drawn from separable 1D
Gaussians. Error modes imitate what a real 2D network does wrong; every corruption is recorded in
a :class:`HeatmapTruth` so tests and benchmarks can check what a solver survives.

Image pixels map to heatmap pixels through one affine ``(2, 3)`` per view: the whole image by
default (:func:`image_to_heatmap`), or a crop (:func:`crop_to_heatmap`, :func:`person_crops`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from crosspose.skeleton import H36M17, Skeleton

SizeLike = tuple[int, int] | Sequence[int] | np.ndarray


class HeatmapError(enum.IntFlag):
    """What happened to one joint's heatmap in one view (bit flags, stored as ``uint16``)."""

    NONE = 0
    JITTER = 1  # peak moved by localisation noise
    MISSED = 2  # peak absent
    SWAPPED = 4  # peak drawn at the left/right counterpart's location
    WRONG_PEAK = 8  # true peak weakened, a stronger peak placed elsewhere
    VIEW_DROPPED = 16  # the whole view is empty or noise only
    LOW_CONTRAST = 32  # peak amplitude scaled down
    OCCLUDED = 64  # the scene says the joint is hidden; peak weakened or absent
    OUT_OF_VIEW = 128  # the true location is outside the heatmap or behind the camera


@dataclass(frozen=True)
class HeatmapErrors:
    """Error modes of simulated heatmaps. Every mode defaults to off (perfect heatmaps).

    :meth:`realistic` switches all of them on at rates typical of a good 2D network on a
    studio capture; :meth:`none` is the default. Probabilities are per view (``swap_prob``,
    ``drop_view_prob``) or per joint and view (the others).

    Attributes:
        jitter_px: std of the Gaussian localisation noise, heatmap pixels. Realistic: 0.7.
        miss_prob: chance that a joint's peak is absent. Realistic: 0.02.
        swap_prob: chance per view that left and right are swapped. Realistic: 0.03.
        swap_whole_body: fraction of swaps that swap the whole body; the rest swap one limb
            (one arm or one leg, chosen uniformly). Realistic: 0.5.
        wrong_peak_prob: chance that a joint's true peak is weakened to ``wrong_peak_true_scale``
            and a peak of amplitude in ``wrong_peak_amplitude`` appears elsewhere: on another
            joint of the same body (fraction ``wrong_peak_other_joint``) or anywhere in the
            heatmap (another person, clutter). Realistic: 0.03.
        drop_view_prob: chance per view that the camera is occluded or dropped: every peak is
            gone and the view is all zero, or noise only when ``drop_view_noise``. Realistic: 0.02.
        low_contrast_prob: chance that a peak's amplitude is scaled by a factor drawn from
            ``low_contrast_range``. Realistic: 0.1.
        blobs_per_map: expected number of background Gaussian blobs per heatmap (amplitude in
            ``blob_amplitude``, sigma in ``blob_sigma`` heatmap px). Realistic: 0.3.
        speckle: additive per-pixel noise, uniform in ``[0, speckle]``. Realistic: 0.04.
        occluded_scale: amplitude of peaks of joints the scene marks invisible (0 removes them);
            ``None`` ignores the scene's visibility. Realistic: 0.4.
    """

    jitter_px: float = 0.0
    miss_prob: float = 0.0
    swap_prob: float = 0.0
    swap_whole_body: float = 0.5
    wrong_peak_prob: float = 0.0
    wrong_peak_true_scale: float = 0.35
    wrong_peak_amplitude: tuple[float, float] = (0.8, 1.0)
    wrong_peak_other_joint: float = 0.5
    drop_view_prob: float = 0.0
    drop_view_noise: bool = True
    low_contrast_prob: float = 0.0
    low_contrast_range: tuple[float, float] = (0.15, 0.5)
    blobs_per_map: float = 0.0
    blob_amplitude: tuple[float, float] = (0.05, 0.4)
    blob_sigma: tuple[float, float] = (1.0, 4.0)
    speckle: float = 0.0
    occluded_scale: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") or f.name in ("swap_whole_body", "wrong_peak_other_joint"):
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"HeatmapErrors.{f.name} is a probability in [0, 1], got {value}")
            elif isinstance(value, float) and value < 0:
                raise ValueError(f"HeatmapErrors.{f.name} must be >= 0, got {value}")

    @classmethod
    def none(cls) -> HeatmapErrors:
        """Perfect heatmaps."""
        return cls()

    @classmethod
    def realistic(cls) -> HeatmapErrors:
        """Every mode on at rates typical of a good 2D network (see the attribute docs)."""
        return cls(
            jitter_px=0.7,
            miss_prob=0.02,
            swap_prob=0.03,
            wrong_peak_prob=0.03,
            drop_view_prob=0.02,
            low_contrast_prob=0.1,
            blobs_per_map=0.3,
            speckle=0.04,
            occluded_scale=0.4,
        )


@dataclass(frozen=True, eq=False)
class HeatmapTruth:
    """What was drawn, and what went wrong, for heatmaps of shape ``(..., C, J, h, w)``.

    Attributes:
        transforms: ``(..., C, 2, 3)`` image px → heatmap px affine of each view.
        targets: ``(..., C, J, 2)`` true joint locations, heatmap px (NaN behind the camera).
        peaks: ``(..., C, J, 2)`` where each joint's own peak was drawn (after swaps and jitter);
            NaN where none could be drawn.
        amplitude: ``(..., C, J)`` height of that peak (0 when absent).
        source_joint: ``(..., C, J)`` whose location the peak was drawn at (the joint itself
            unless swapped).
        distractors: ``(..., C, J, 2)`` location of a wrong peak, NaN where there is none.
        distractor_amplitude: ``(..., C, J)`` its height (0 where none).
        blobs: ``(..., C, J)`` number of background blobs drawn into each map.
        flags: ``(..., C, J)`` ``uint16`` :class:`HeatmapError` bits.
    """

    transforms: np.ndarray
    targets: np.ndarray
    peaks: np.ndarray
    amplitude: np.ndarray
    source_joint: np.ndarray
    distractors: np.ndarray
    distractor_amplitude: np.ndarray
    blobs: np.ndarray
    flags: np.ndarray
    errors: HeatmapErrors = field(default_factory=HeatmapErrors)

    def has(self, mode: HeatmapError) -> np.ndarray:
        """``(..., C, J)`` bool: where ``mode`` was applied."""
        return (self.flags & int(mode)) != 0

    @property
    def corrupted(self) -> np.ndarray:
        """``(..., C, J)`` bool: where anything beyond jitter changed the joint's heatmap."""
        return (self.flags & np.uint16(0xFFFF ^ int(HeatmapError.JITTER))) != 0

    def events(self) -> list[tuple[tuple[int, ...], str]]:
        """Every corruption except jitter as ``(index, mode name)``; index is ``(…, view, joint)``."""
        out = []
        for mode in HeatmapError:
            if mode in (HeatmapError.NONE, HeatmapError.JITTER):
                continue
            for idx in zip(*np.nonzero(self.has(mode)), strict=True):
                out.append((tuple(int(i) for i in idx), str(mode.name)))
        return sorted(out)

    def frame(self, index: int) -> HeatmapTruth:
        """The truth of one frame of a sequence (leading axis ``N``)."""
        parts = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "errors"}
        return HeatmapTruth(**parts, errors=self.errors)


# ---------------------------------------------------------------------------------------------
# Image → heatmap mappings


def image_to_heatmap(image_size: SizeLike, heatmap_size: SizeLike) -> np.ndarray:
    """``(2, 3)`` affine mapping a whole ``(W, H)`` image onto a ``(w, h)`` heatmap (pixel centres kept)."""
    W, H = (float(v) for v in np.asarray(image_size).reshape(2))
    w, h = (float(v) for v in np.asarray(heatmap_size).reshape(2))
    sx, sy = w / W, h / H
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


def crop_to_heatmap(
    center: Sequence[float] | np.ndarray, box_size: float | Sequence[float], heatmap_size: SizeLike
) -> np.ndarray:
    """``(2, 3)`` affine mapping an image box (centre, side or ``(bw, bh)``, px) onto a heatmap."""
    cx, cy = (float(v) for v in np.asarray(center, dtype=np.float64).reshape(2))
    bw, bh = (float(v) for v in np.broadcast_to(np.asarray(box_size, dtype=np.float64), (2,)))
    w, h = (float(v) for v in np.asarray(heatmap_size).reshape(2))
    sx, sy = w / bw, h / bh
    # The box edge cx - bw/2 lands on the heatmap's left pixel edge, -0.5.
    return np.array([[sx, 0.0, -0.5 - sx * (cx - bw / 2)], [0.0, sy, -0.5 - sy * (cy - bh / 2)]])


def person_crops(
    joints2d: np.ndarray, heatmap_size: SizeLike, margin: float = 1.25, min_box: float = 32.0
) -> np.ndarray:
    """``(C, 2, 3)`` square crops around the person's finite joints in each view (``joints2d (C, J, 2)`` px).

    The box side is ``margin`` times the larger extent of the joints (at least ``min_box`` px),
    widened to the heatmap's aspect ratio. A view without finite joints gets a NaN transform.
    """
    joints2d = np.asarray(joints2d, dtype=np.float64)
    if joints2d.ndim != 3 or joints2d.shape[-1] != 2:
        raise ValueError(f"joints2d must have shape (C, J, 2), got {joints2d.shape}")
    w, h = (float(v) for v in np.asarray(heatmap_size).reshape(2))
    out = np.full((joints2d.shape[0], 2, 3), np.nan)
    for c, pts in enumerate(joints2d):
        pts = pts[np.isfinite(pts).all(-1)]
        if len(pts) == 0:
            continue
        lo, hi = pts.min(0), pts.max(0)
        side = max(margin * float((hi - lo).max()), min_box)
        box = (side * max(w / h, 1.0), side * max(h / w, 1.0))
        out[c] = crop_to_heatmap((lo + hi) / 2, box, heatmap_size)
    return out


def apply_affine(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(..., 2, 3)`` affines applied to ``(..., P, 2)`` points → ``(..., P, 2)``."""
    A = np.asarray(transforms, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return np.einsum("...ij,...pj->...pi", A[..., :, :2], p) + A[..., None, :, 2]


def heatmap_projection_matrices(projections: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Fold ``(C, 2, 3)`` image→heatmap affines into ``(C, 3, 4)`` projections (world m → heatmap px).

    Distortion is not representable in a ``3x4`` matrix; undistort first where it matters.
    """
    P = np.asarray(projections, dtype=np.float64)
    A = np.asarray(transforms, dtype=np.float64)
    A3 = np.concatenate([A, np.broadcast_to(np.array([0.0, 0.0, 1.0]), (*A.shape[:-2], 1, 3))], axis=-2)
    out: np.ndarray = A3 @ P
    return out


# ---------------------------------------------------------------------------------------------
# Simulation


_MODES = ("swap", "jitter", "contrast", "miss", "wrong", "drop", "blobs", "speckle")
_MAX_BLOBS = 8


def _limb_swaps(skeleton: Skeleton) -> np.ndarray:
    """``(1 + 1 + L, J)`` permutations: identity, whole-body mirror, then each limb mirrored alone."""
    num = skeleton.num_joints
    mirror = np.array(skeleton.mirror)
    midline = {i for i in range(num) if mirror[i] == i}
    limbs: dict[int, list[tuple[int, int]]] = {}
    for left, right in skeleton.left_right_pairs:
        root = left
        while skeleton.parents[root] not in midline and skeleton.parents[root] >= 0:
            root = skeleton.parents[root]
        limbs.setdefault(root, []).append((left, right))
    perms = [np.arange(num), mirror]
    for pairs in limbs.values():
        perm = np.arange(num)
        for left, right in pairs:
            perm[left], perm[right] = right, left
        perms.append(perm)
    return np.stack(perms)


def _gaussians_1d(centers: np.ndarray, sigma: np.ndarray | float, length: int) -> np.ndarray:
    """``(..., length)`` float32 ``exp(-(x - c)^2 / 2 sigma^2)``; non-finite centres give zeros."""
    x = np.arange(length, dtype=np.float32)
    c = np.asarray(centers, dtype=np.float32)
    finite = np.isfinite(c)
    s = np.asarray(sigma, dtype=np.float32)
    d = (x - np.where(finite, c, 0.0)[..., None]) / (s[..., None] if s.ndim else s)
    g = np.exp(-0.5 * d * d)
    g *= finite[..., None]
    return g


def _draw_peaks(
    out: np.ndarray,
    centers: np.ndarray,
    amplitude: np.ndarray,
    sigma: np.ndarray | float,
    first: bool = False,
) -> None:
    """Max-composite one Gaussian per map: ``centers (..., 2)``, ``amplitude (...)`` into ``out (..., h, w)``.

    ``first``: ``out`` is all zero, so write instead of compositing. Sparse layers draw only their maps.
    """
    amplitude = np.asarray(amplitude, dtype=np.float32)
    h, w = out.shape[-2:]
    some = amplitude > 0
    count = int(some.sum())
    if count == 0 and not first:
        return
    if first or count * 4 > some.size:
        gx = _gaussians_1d(centers[..., 0], sigma, w)
        gy = _gaussians_1d(centers[..., 1], sigma, h)
        gy *= amplitude[..., None]
        if first:
            np.multiply(gy[..., :, None], gx[..., None, :], out=out)
        else:
            np.maximum(out, gy[..., :, None] * gx[..., None, :], out=out)
        return
    flat = out.reshape(-1, h, w)
    idx = np.flatnonzero(some)
    c = centers.reshape(-1, 2)[idx]
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float32), some.shape).reshape(-1)[idx]
    gx = _gaussians_1d(c[:, 0], s, w)
    gy = _gaussians_1d(c[:, 1], s, h) * amplitude.reshape(-1)[idx][:, None]
    flat[idx] = np.maximum(flat[idx], gy[:, :, None] * gx[:, None, :])


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)


def simulate_heatmap_sequence(
    joints2d: np.ndarray,
    image_size: SizeLike | None = None,
    heatmap_size: SizeLike = (64, 64),
    *,
    transforms: np.ndarray | None = None,
    sigma: float = 2.0,
    errors: HeatmapErrors | None = None,
    rng: np.random.Generator | int | None = None,
    visibility: np.ndarray | None = None,
    skeleton: Skeleton = H36M17,
    coarse_speckle: bool = False,
) -> tuple[np.ndarray, HeatmapTruth]:
    """Simulated heatmaps for ``N`` frames at once (see :func:`simulate_heatmaps`).

    Args:
        joints2d: ``(N, C, J, 2)`` image pixels (NaN behind a camera).
        image_size: ``(W, H)`` or ``(C, 2)`` per view; needed unless ``transforms`` is given.
        heatmap_size: ``(w, h)`` heatmap pixels.
        transforms: ``(C, 2, 3)`` or ``(N, C, 2, 3)`` image px → heatmap px (crops).
        sigma: Gaussian std, heatmap pixels.
        errors: error modes (default: none).
        rng: ``Generator`` or integer seed (``None`` means seed 0: results are always reproducible).
        visibility: ``(N, C, J)`` bool from the scene; used when ``errors.occluded_scale`` is set.
        skeleton: joint layout (for left/right swaps).
        coarse_speckle: draw the speckle noise as 256 levels from random bytes instead of float32
            uniforms: the same distribution to 1/255 of its amplitude at ~1/8 of the cost (the live
            ``simulated`` backend's choice; other draws, and the default, unchanged).
    Returns:
        ``heatmaps (N, C, J, h, w)`` float32 in ``[0, 1]`` and a :class:`HeatmapTruth` with leading ``N``.
    """
    errors = errors or HeatmapErrors()
    joints2d = np.asarray(joints2d, dtype=np.float64)
    if joints2d.ndim != 4 or joints2d.shape[-2:] != (skeleton.num_joints, 2):
        raise ValueError(f"joints2d must have shape (N, C, {skeleton.num_joints}, 2), got {joints2d.shape}")
    N, C, J, _ = joints2d.shape
    w, h = (int(v) for v in np.asarray(heatmap_size).reshape(2))
    if transforms is None:
        if image_size is None:
            raise ValueError("give image_size (W, H) or per-view transforms (C, 2, 3)")
        sizes = np.broadcast_to(np.asarray(image_size, dtype=np.float64).reshape(-1, 2), (C, 2))
        transforms = np.stack([image_to_heatmap(s, (w, h)) for s in sizes])
    A = np.broadcast_to(np.asarray(transforms, dtype=np.float64), (N, C, 2, 3))
    if visibility is not None and np.shape(visibility) != (N, C, J):
        raise ValueError(f"visibility must have shape ({N}, {C}, {J}), got {np.shape(visibility)}")
    gen = _as_generator(rng)
    # One independent stream per mode: switching one mode on never changes another's draws.
    streams = dict(
        zip(_MODES, (np.random.default_rng(s) for s in gen.integers(0, 2**63, len(_MODES))), strict=True)
    )
    flags = np.zeros((N, C, J), dtype=np.uint16)
    idx_n, idx_c = np.arange(N)[:, None, None], np.arange(C)[None, :, None]

    targets = apply_affine(A, joints2d)  # (N, C, J, 2)
    inside = np.isfinite(targets).all(-1) & ((targets >= -0.5) & (targets < np.array([w, h]) - 0.5)).all(-1)
    flags[~inside] |= np.uint16(HeatmapError.OUT_OF_VIEW)

    # Left/right swaps, per view.
    perms = _limb_swaps(skeleton)
    r = streams["swap"]
    u, whole, limb = r.random((N, C)), r.random((N, C)), r.integers(0, max(len(perms) - 2, 1), (N, C))
    choice = np.where(u < errors.swap_prob, np.where(whole < errors.swap_whole_body, 1, 2 + limb), 0)
    choice = np.minimum(choice, len(perms) - 1)
    source = perms[choice]  # (N, C, J)
    flags[source != np.arange(J)] |= np.uint16(HeatmapError.SWAPPED)
    peaks = targets[idx_n, idx_c, source]

    if errors.jitter_px > 0:
        peaks = peaks + streams["jitter"].normal(0.0, errors.jitter_px, peaks.shape)
        flags[np.isfinite(peaks).all(-1)] |= np.uint16(HeatmapError.JITTER)
    amplitude = np.where(np.isfinite(peaks).all(-1), 1.0, 0.0)

    if errors.occluded_scale is not None and visibility is not None:
        hidden = ~np.asarray(visibility, dtype=bool)
        amplitude = np.where(hidden, amplitude * errors.occluded_scale, amplitude)
        flags[hidden] |= np.uint16(HeatmapError.OCCLUDED)

    r = streams["contrast"]
    u, scale = r.random((N, C, J)), r.uniform(*errors.low_contrast_range, (N, C, J))
    low = u < errors.low_contrast_prob
    amplitude = np.where(low, amplitude * scale, amplitude)
    flags[low] |= np.uint16(HeatmapError.LOW_CONTRAST)

    missed = streams["miss"].random((N, C, J)) < errors.miss_prob
    amplitude = np.where(missed, 0.0, amplitude)
    flags[missed] |= np.uint16(HeatmapError.MISSED)

    # Wrong peaks: weaken the true one, add a stronger one on another joint or anywhere.
    r = streams["wrong"]
    u, on_joint, other = r.random((N, C, J)), r.random((N, C, J)), r.integers(1, J, (N, C, J))
    anywhere = r.uniform(0, 1, (N, C, J, 2)) * (np.array([w, h]) - 1 - 4 * sigma) + 2 * sigma
    d_amp = r.uniform(*errors.wrong_peak_amplitude, (N, C, J))
    d_jitter = r.normal(0.0, max(errors.jitter_px, 0.5), (N, C, J, 2))
    wrong = u < errors.wrong_peak_prob
    other_joint = (np.arange(J) + other) % J  # never the joint itself
    at_joint = targets[idx_n, idx_c, other_joint] + d_jitter
    use_joint = (on_joint < errors.wrong_peak_other_joint) & np.isfinite(at_joint).all(-1)
    distractors = np.where(wrong[..., None], np.where(use_joint[..., None], at_joint, anywhere), np.nan)
    distractor_amplitude = np.where(wrong, d_amp, 0.0)
    amplitude = np.where(wrong, amplitude * errors.wrong_peak_true_scale, amplitude)
    flags[wrong] |= np.uint16(HeatmapError.WRONG_PEAK)

    r = streams["drop"]
    dropped = r.random((N, C)) < errors.drop_view_prob
    amplitude[dropped] = 0.0
    distractor_amplitude[dropped] = 0.0
    distractors[dropped] = np.nan
    flags[dropped] |= np.uint16(HeatmapError.VIEW_DROPPED)

    heatmaps = np.empty((N, C, J, h, w), dtype=np.float32)
    _draw_peaks(heatmaps, peaks, np.maximum(amplitude, 0.0), sigma, first=True)
    _draw_peaks(heatmaps, distractors, distractor_amplitude, sigma)

    # Background blobs; a dropped view gets some too when it is noise-only.
    r = streams["blobs"]
    rate = np.broadcast_to(np.float64(errors.blobs_per_map), (N, C, J)).copy()
    if errors.drop_view_noise:
        rate[dropped] = max(errors.blobs_per_map, 1.0)
    blobs = np.minimum(r.poisson(rate), _MAX_BLOBS)
    for k in range(int(blobs.max(initial=0))):
        centre = r.uniform(0, 1, (N, C, J, 2)) * np.array([w - 1, h - 1])
        b_amp = np.where(blobs > k, r.uniform(*errors.blob_amplitude, (N, C, J)), 0.0)
        b_sigma = r.uniform(*errors.blob_sigma, (N, C, J))
        _draw_peaks(heatmaps, centre, b_amp, b_sigma)

    r = streams["speckle"]
    speckle = np.full((N, C), errors.speckle, dtype=np.float32)
    if errors.drop_view_noise:
        speckle[dropped] = max(errors.speckle, 0.1)
    if np.any(speckle > 0):
        # Uniform noise: a quarter of the cost of normal draws, and the shape matters little here.
        if coarse_speckle:
            levels = np.frombuffer(r.bytes(heatmaps.size), dtype=np.uint8).reshape(heatmaps.shape)
            noise = np.multiply(levels, (speckle / 255.0)[:, :, None, None, None], dtype=np.float32)
        else:
            noise = r.random(heatmaps.shape, dtype=np.float32)
            noise *= speckle[:, :, None, None, None]
        heatmaps += noise
    np.clip(heatmaps, 0.0, 1.0, out=heatmaps)

    truth = HeatmapTruth(
        transforms=np.array(A),
        targets=targets,
        peaks=np.where(amplitude[..., None] > 0, peaks, np.nan),
        amplitude=amplitude,
        source_joint=source,
        distractors=distractors,
        distractor_amplitude=distractor_amplitude,
        blobs=blobs,
        flags=flags,
        errors=errors,
    )
    return heatmaps, truth


def simulate_heatmaps(
    joints2d: np.ndarray,
    image_size: SizeLike | None = None,
    heatmap_size: SizeLike = (64, 64),
    *,
    transforms: np.ndarray | None = None,
    sigma: float = 2.0,
    errors: HeatmapErrors | None = None,
    rng: np.random.Generator | int | None = None,
    visibility: np.ndarray | None = None,
    skeleton: Skeleton = H36M17,
    coarse_speckle: bool = False,
) -> tuple[np.ndarray, HeatmapTruth]:
    """Simulated heatmaps of one frame.

    Args:
        joints2d: ``(C, J, 2)`` joint locations in image pixels (NaN behind a camera).
        image_size: ``(W, H)`` or ``(C, 2)`` per view; the whole image maps onto the heatmap.
        heatmap_size: ``(w, h)``.
        transforms: ``(C, 2, 3)`` image px → heatmap px (crops); replaces the whole-image mapping.
        sigma: Gaussian std, heatmap pixels.
        errors: error modes (:class:`HeatmapErrors`; default none).
        rng: ``Generator`` or integer seed (``None`` means seed 0).
        visibility: ``(C, J)`` bool from the scene (used when ``errors.occluded_scale`` is set).
        skeleton: joint layout.
        coarse_speckle: cheaper speckle noise (see :func:`simulate_heatmap_sequence`).
    Returns:
        ``heatmaps (C, J, h, w)`` float32 in ``[0, 1]`` and its :class:`HeatmapTruth` (axes ``(C, J, …)``).
    """
    joints2d = np.asarray(joints2d, dtype=np.float64)
    if joints2d.ndim != 3 or joints2d.shape[-1] != 2:
        raise ValueError(f"joints2d must have shape (C, J, 2), got {joints2d.shape}")
    heatmaps, truth = simulate_heatmap_sequence(
        joints2d[None],
        image_size,
        heatmap_size,
        transforms=None if transforms is None else np.asarray(transforms)[None],
        sigma=sigma,
        errors=errors,
        rng=rng,
        visibility=None if visibility is None else np.asarray(visibility)[None],
        skeleton=skeleton,
        coarse_speckle=coarse_speckle,
    )
    return heatmaps[0], truth.frame(0)
