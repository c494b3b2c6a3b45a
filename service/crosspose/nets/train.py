"""``crosspose model train-fusion``: train the cross-view fusion layer's few parameters (DESIGN §1, issue 4).

Only :class:`~crosspose.nets.fusion.CrossViewFusion`'s per-joint mixing weights (``own``, ``cross``,
``agree``) and its per-view confidence (``confidence_gain``, ``confidence_threshold``) are learned
(``5·J + 1`` numbers); the BlazePose backbone is frozen and only runs once, to cache the real clip's
heatmaps. Two sources of examples:

* **synthetic** — :mod:`crosspose.studio` scenes seen by random rigs of 2–8 cameras, heatmaps simulated
  with :meth:`HeatmapErrors.realistic` or with one stronger error mode (swaps, wrong peaks, misses, low
  contrast, dropped views, clutter); the target of each view is the clean heatmap of the ground truth
  (``sigma`` 2 px). The fusion's root is the true pelvis moved by up to ±10 cm on each axis (uniform),
  standing in for the previous frame's pelvis a live service would give it: never the exact truth.
* **real** (the paper's §3.2 idea) — the Pose2Sim clip, **frames 0–59 only** (``crosspose model
  evaluate`` reports frames 60–99; :func:`crosspose.evaluation.real_clip` refuses any later frame): the
  clip runs through the product's own loop (crops from the previous pose, frozen backbone, the solver on
  the *raw* heatmaps); each solved joint is reprojected into every view and kept as a pseudo-label when
  the reprojection lies within ``tolerance`` heatmap px of that view's own heatmap maximum in at least
  ``min_views`` views. A kept joint is a target in every view — also in a view whose own maximum is
  elsewhere (the left/right-swapped one), which is what fusion must correct. Only joints that are one
  BlazePose landmark each are labelled (hips, knees, ankles, shoulders, elbows, wrists, the nose as
  neck): a derived joint's heatmap is a mean of its sources' (two half peaks), not a peak at the joint.

Loss per (view, joint) with a target: spatial cross-entropy between ``softmax(fused / τ)`` over the
pixels and the normalised target Gaussian (where the fused map's mass is), plus ``mse_weight`` times
the mean squared difference to the target map on synthetic examples (keeps the [0, 1] scale the solver
reads). Adam, a few hundred steps, one example (1–4 frames of one rig) per step.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from crosspose.nets.fusion import CrossViewFusion
from crosspose.skeleton import H36M17

#: The first frame ``crosspose model evaluate`` reports on: pseudo-labels come only from earlier frames.
EVALUATED_FROM = 60
HEATMAP = 64
SIGMA = 2.0
#: Trainable parameters (the temperature only matters with ``reduction="softmax"``).
TRAINED = ("own", "cross", "agree", "confidence_gain", "confidence_threshold", "log_temperature")


def default_weights_path() -> Path:
    """``models/fusion_weights.pt`` of the source tree (what ``build_fusion_network`` loads by default)."""
    return Path(__file__).resolve().parents[3] / "models" / "fusion_weights.pt"


@dataclass(frozen=True, eq=False)
class Example:
    """One training example: ``N`` frames of one rig with ``C`` views.

    Attributes:
        heatmaps: ``(N, C, J, h, w)`` float32 in [0, 1], what the fusion gets.
        projections: ``(N, C, 3, 4)`` world metres → heatmap px.
        valid: ``(N, C)`` bool.
        root: ``(N, 3)`` metres, the fusion's root.
        targets: ``(N, C, J, h, w)`` float32, clean Gaussian of each joint's true (or pseudo-label) location.
        mask: ``(N, C, J)`` bool, which maps have a target.
        source: ``synthetic`` or ``real``.
        frames: frame indices in the source clip (real) or scene seed × 1000 + frame (synthetic).
    """

    heatmaps: torch.Tensor
    projections: torch.Tensor
    valid: torch.Tensor
    root: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    source: str
    frames: tuple[int, ...]


def gaussian_maps(xy: np.ndarray, size: int = HEATMAP, sigma: float = SIGMA) -> np.ndarray:
    """``(..., 2)`` heatmap pixels → ``(..., size, size)`` float32 Gaussians of height 1 (zeros for NaN)."""
    xy = np.asarray(xy, dtype=np.float64)
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-0.5 * ((grid - xy[..., 0:1]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((grid - xy[..., 1:2]) / sigma) ** 2)
    maps = gy[..., :, None] * gx[..., None, :]
    return np.nan_to_num(maps, nan=0.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Synthetic examples


def _error_modes() -> list[tuple[str, Any]]:
    from crosspose.studio import HeatmapErrors

    base = HeatmapErrors.realistic()
    from dataclasses import replace

    return [
        ("realistic", base),
        ("swaps", replace(base, swap_prob=0.3)),
        ("wrong peaks", replace(base, wrong_peak_prob=0.15)),
        ("misses", replace(base, miss_prob=0.15)),
        ("low contrast", replace(base, low_contrast_prob=0.4)),
        ("dropped views", replace(base, drop_view_prob=0.2)),
        ("clutter", replace(base, blobs_per_map=2.0, speckle=0.1)),
    ]


def synthetic_examples(scenes: int, frames: int, seed: int, cameras: tuple[int, int] = (2, 8),
                       root_noise: float = 0.10) -> list[Example]:
    """``scenes`` studio scenes, each a random rig of ``cameras[0]…cameras[1]`` views and ``frames`` frames.

    Scene ``k`` uses seed ``seed · 1000 + k`` for its rig, motion and heatmaps; its error mode is drawn
    from :func:`_error_modes` (realistic half of the time). Root = true pelvis + uniform ±``root_noise`` m
    per axis. Examples hold 1–4 frames so that each costs about the same (``C·(C-1)`` pairs).
    """
    from crosspose.studio import (
        HeatmapErrors,
        heatmap_projection_matrices,
        make_scene,
        person_crops,
        random_rig,
        simulate_heatmap_sequence,
    )

    rng = np.random.default_rng(seed)
    modes = _error_modes()
    out: list[Example] = []
    for k in range(scenes):
        scene_seed = seed * 1000 + k
        c = int(rng.integers(cameras[0], cameras[1] + 1))
        name, errors = modes[0] if rng.random() < 0.5 else modes[int(rng.integers(1, len(modes)))]
        rig = random_rig(scene_seed, c, distortion=0.0)
        scene = make_scene(scene_seed, frames, c, rig=rig)
        crops = np.stack([person_crops(scene.joints2d[f], (HEATMAP, HEATMAP)) for f in range(frames)])
        P = heatmap_projection_matrices(np.asarray(rig.projection_matrices())[None], crops)
        heatmaps, truth = simulate_heatmap_sequence(
            scene.joints2d, transforms=crops, heatmap_size=(HEATMAP, HEATMAP), errors=errors, rng=scene_seed,
            visibility=scene.visibility)
        clean, _ = simulate_heatmap_sequence(scene.joints2d, transforms=crops,
                                             heatmap_size=(HEATMAP, HEATMAP), errors=HeatmapErrors.none(),
                                             rng=scene_seed)
        inside = np.isfinite(truth.targets).all(-1)  # (N, C, J)
        pelvis = np.asarray(scene.joints3d)[:, H36M17.root]
        root = pelvis + rng.uniform(-root_noise, root_noise, pelvis.shape)
        per_example = max(1, min(4, 24 // (c * (c - 1))))
        for start in range(0, frames, per_example):
            s = slice(start, min(start + per_example, frames))
            out.append(Example(
                heatmaps=torch.from_numpy(np.ascontiguousarray(heatmaps[s])),
                projections=torch.tensor(P[s], dtype=torch.float32),
                valid=torch.ones(heatmaps[s].shape[:2], dtype=torch.bool),
                root=torch.tensor(root[s], dtype=torch.float32),
                targets=torch.from_numpy(np.ascontiguousarray(clean[s])),
                mask=torch.from_numpy(inside[s]),
                source=f"synthetic/{name}/{c} views",
                frames=tuple(scene_seed * 1000 + f for f in range(s.start, s.stop)),
            ))
    return out


# ---------------------------------------------------------------------------------------------
# Real pseudo-labels


@dataclass(frozen=True, eq=False)
class RealClip:
    """The cached network inputs/outputs of the real clip's training frames.

    Attributes:
        frames: ``(N,)`` frame indices (all ``< EVALUATED_FROM``).
        heatmaps: ``(N, C, J, h, w)`` the frozen backbone's raw H36M-17 heatmaps in [0, 1].
        projections: ``(N, C, 3, 4)`` world metres → heatmap px of the crops used (finite stand-ins
            for invalid views).
        valid: ``(N, C)`` bool, views the network saw.
        root: ``(N, 3)`` the fusion's root in that frame (the previous solved pelvis).
        joints: ``(N, J, 3)`` the solver's 3D on the raw heatmaps (NaN where fewer than two views).
    """

    frames: np.ndarray
    heatmaps: np.ndarray
    projections: np.ndarray
    valid: np.ndarray
    root: np.ndarray
    joints: np.ndarray


def single_source_joints() -> np.ndarray:
    """``(J,)`` bool: H36M joints whose heatmap is one BlazePose channel (a peak at the joint itself)."""
    from crosspose.nets.export import blazepose_channel_map

    return np.asarray((blazepose_channel_map() != 0).sum(1) == 1)


def _peaks(heatmaps: np.ndarray) -> np.ndarray:
    """``(..., h, w)`` → ``(..., 2)`` integer ``x, y`` of each map's maximum."""
    h, w = heatmaps.shape[-2:]
    idx = heatmaps.reshape(*heatmaps.shape[:-2], h * w).argmax(-1)
    return np.stack([idx % w, idx // w], -1).astype(np.float64)


def pseudo_labels(clip: RealClip, tolerance: float = 2.5, min_views: int = 3,
                  joints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multi-view-consistent pseudo-labels of a cached clip.

    Args:
        clip: frames, raw heatmaps, projections and the solver's 3D.
        tolerance: heatmap px between a joint's reprojection and a view's own maximum for that view to agree.
        min_views: a joint is kept (in every valid view) when at least this many views agree.
        joints: ``(J,)`` bool, joints that may be labelled (default :func:`single_source_joints`).
    Returns:
        ``frames (N,)`` clip frame indices, ``xy (N, C, J, 2)`` reprojected labels in heatmap px and
        ``keep (N, C, J)`` bool.
    """
    if (clip.frames >= EVALUATED_FROM).any():
        raise ValueError(f"frames {sorted(set(clip.frames[clip.frames >= EVALUATED_FROM].tolist()))} are "
                         f"evaluated frames (≥ {EVALUATED_FROM}); pseudo-labels never use them")
    allowed = single_source_joints() if joints is None else np.asarray(joints, dtype=bool)
    X = np.concatenate([clip.joints, np.ones((*clip.joints.shape[:2], 1))], -1)  # (N, J, 4)
    uvw = np.einsum("ncab,njb->ncja", clip.projections.astype(np.float64), X)
    with np.errstate(invalid="ignore", divide="ignore"):
        xy = uvw[..., :2] / uvw[..., 2:3]
        in_front = uvw[..., 2] > 0
    h, w = clip.heatmaps.shape[-2:]
    inside = in_front & (xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h - 1)
    distance = np.linalg.norm(_peaks(clip.heatmaps) - xy, axis=-1)
    with np.errstate(invalid="ignore"):
        agree = inside & clip.valid[..., None] & (distance <= tolerance)
    consistent = agree.sum(1) >= min_views  # (N, J)
    keep = consistent[:, None, :] & inside & clip.valid[..., None] & allowed[None, None, :]
    return clip.frames.copy(), xy, keep


def real_examples(clip: RealClip, tolerance: float = 2.5, min_views: int = 3,
                  per_example: int = 2) -> tuple[list[Example], dict[str, Any]]:
    """Pseudo-labelled examples of ``per_example`` consecutive frames, and a summary of what was kept."""
    frames, xy, keep = pseudo_labels(clip, tolerance, min_views)
    targets = gaussian_maps(np.where(keep[..., None], xy, np.nan))
    out = []
    for start in range(0, len(frames), per_example):
        s = slice(start, min(start + per_example, len(frames)))
        if not keep[s].any():
            continue
        out.append(Example(
            heatmaps=torch.from_numpy(np.ascontiguousarray(clip.heatmaps[s])),
            projections=torch.from_numpy(np.ascontiguousarray(clip.projections[s])),
            valid=torch.from_numpy(clip.valid[s]), root=torch.from_numpy(clip.root[s]),
            targets=torch.from_numpy(targets[s]), mask=torch.from_numpy(keep[s]), source="real/pose2sim",
            frames=tuple(int(f) for f in frames[s])))
    allowed = single_source_joints()
    summary = {
        "clip": "Pose2Sim Demo_SinglePerson (pose2sim 0.10.49), 4 views",
        "frames": [int(frames.min()), int(frames.max())] if len(frames) else [],
        "evaluated_frames_excluded": f"{EVALUATED_FROM}–99",
        "tolerance_px": tolerance, "min_views": min_views,
        "labelled_joints": [n for n, a in zip(H36M17.joints, allowed, strict=True) if a],
        "kept": int(keep.sum()), "possible": int((clip.valid[..., None] & allowed).sum()),
    }
    return out, summary


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainConfig:
    """What ``crosspose model train-fusion`` does (recorded in the run's JSON log)."""

    seed: int = 0
    steps: int = 300
    learning_rate: float = 0.03
    scenes: int = 24
    frames: int = 8
    real: bool = True
    real_frames: int = EVALUATED_FROM
    real_fraction: float = 0.5
    temperature: float = 0.1
    mse_weight: float = 20.0
    location_weight: float = 5.0
    tolerance_px: float = 2.5
    min_views: int = 3
    root_noise_m: float = 0.10
    validation_scenes: int = 4
    validation_every: int = 25
    cameras: tuple[int, int] = (2, 8)


@dataclass
class TrainResult:
    """A finished run: the trained layer and its log."""

    fusion: CrossViewFusion
    losses: list[float]
    sources: list[str]
    validation: list[tuple[int, float]] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)


def example_loss(fusion: CrossViewFusion, example: Example, temperature: float, mse_weight: float,
                 location_weight: float = 0.0, radius: float = 1.2) -> torch.Tensor:
    """Spatial cross-entropy (+ ``mse_weight`` · MSE on synthetic examples) over the maps with a target."""
    fused = fusion(example.heatmaps, example.projections, example.valid, example.root, radius)
    mask = example.mask
    if not bool(mask.any()):
        return fused.sum() * 0.0
    f = fused[mask].flatten(1)  # (K, h·w)
    t = example.targets[mask].flatten(1)
    t = t / t.sum(-1, keepdim=True).clamp_min(1e-9)
    ce = -(t * functional.log_softmax(f / temperature, dim=-1)).sum(-1).mean()
    # The entropy of the target makes a perfect map score 0: the loss reads as "nats above ideal".
    ce = ce + (t * t.clamp_min(1e-12).log()).sum(-1).mean()
    if example.source.startswith("synthetic") and mse_weight > 0:
        ce = ce + mse_weight * (fused - example.targets).square().mean()
    if location_weight > 0:
        ce = ce + location_weight * _location_error(fused[mask], example.targets[mask]).mean()
    return ce


def _window_centroid(maps: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, radius: int) -> torch.Tensor:
    """``(K, 2)`` centroid of ``maps (K, h, w)`` (clamped at 0) in the ``(2r+1)²`` window at ``cx, cy``."""
    k, h, w = maps.shape
    cx = cx.clamp(radius, w - 1 - radius)
    cy = cy.clamp(radius, h - 1 - radius)
    offsets = torch.arange(-radius, radius + 1)
    ys = cy[:, None] + offsets[None]  # (K, 2r+1)
    xs = cx[:, None] + offsets[None]
    rows = torch.arange(k)[:, None, None]
    window = maps[rows, ys[:, :, None], xs[:, None, :]].clamp_min(0.0)
    mass = window.sum((1, 2)).clamp_min(1e-6)
    x = (window.sum(1) * xs.to(window.dtype)).sum(-1) / mass
    y = (window.sum(2) * ys.to(window.dtype)).sum(-1) / mass
    return torch.stack([x, y], -1)


#: Where the refinement windows start, relative to the truth (heatmap px): the solver's 3D search lands
#: within a grid step of the joint, so its mean shift starts a pixel or two away.
_STARTS = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))


def _location_error(fused: torch.Tensor, targets: torch.Tensor, radius: int = 3,
                    steps: int = 2) -> torch.Tensor:
    """``(K,)`` smooth-L1 pixel error of a mean shift on the fused maps, as the solver refines a joint
    (``crosspose.solver.refine``: a ``(2r+1)²`` window, a few steps), started on and around the truth.

    A sharp peak at the truth pulls the window there; a wide blob leaves it near where it started (the
    window truncates it), which is what costs the solver accuracy even when the blob is centred right.
    """
    w = targets.shape[-1]
    idx = targets.flatten(1).argmax(-1)
    tx, ty = idx % w, idx // w
    truth = _window_centroid(targets, tx, ty, 4).detach()  # the clean Gaussian's centre
    errors = []
    for dx, dy in _STARTS:
        cx, cy = tx + dx, ty + dy
        for _ in range(steps):
            centroid = _window_centroid(fused, cx, cy, radius)
            cx, cy = centroid[:, 0].detach().round().long(), centroid[:, 1].detach().round().long()
        errors.append(functional.smooth_l1_loss(centroid, truth, reduction="none").sum(-1))
    return torch.stack(errors, -1).mean(-1)


def project_mixing(fusion: CrossViewFusion) -> None:
    """Keep each joint's mixing weights ``own, cross, agree ≥ 0`` with a sum ``≤ 1`` (projected gradient).

    Heatmaps and cross-view evidence are in [0, 1], so the fused map then is too without clipping: a
    clipped map has a flat top whose maximum is anywhere on it (measured: the pelvis' argmax fell to 30%
    when the weights were free and the output clipped).
    """
    with torch.no_grad():
        weights = torch.stack([fusion.own, fusion.cross, fusion.agree]).clamp_min(0.0)  # (3, J)
        weights = weights / weights.sum(0).clamp_min(1.0)
        fusion.own.copy_(weights[0])
        fusion.cross.copy_(weights[1])
        fusion.agree.copy_(weights[2])


def _validation(fusion: CrossViewFusion, examples: list[Example], config: TrainConfig) -> float:
    with torch.no_grad():
        return float(np.mean([example_loss(fusion, e, config.temperature, config.mse_weight,
                                           config.location_weight).item() for e in examples]))


def train_fusion(config: TrainConfig, clip: RealClip | None = None, progress: bool = True) -> TrainResult:
    """Train a fresh :class:`CrossViewFusion` (default configuration and initialisation) on synthetic
    scenes and, when ``clip`` is given, the real clip's pseudo-labels. Deterministic for a ``config.seed``
    (one torch thread is used while training)."""
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        start = time.perf_counter()
        synthetic = synthetic_examples(config.scenes, config.frames, config.seed + 1, config.cameras,
                                       root_noise=config.root_noise_m)
        validation = synthetic_examples(config.validation_scenes, 4, config.seed + 7919, config.cameras,
                                        root_noise=config.root_noise_m)
        real: list[Example] = []
        real_summary: dict[str, Any] | None = None
        if clip is not None:
            real, real_summary = real_examples(clip, config.tolerance_px, config.min_views)
        fusion = CrossViewFusion(num_joints=H36M17.num_joints, sampler="grid_sample")
        for name, p in fusion.named_parameters():
            p.requires_grad_(name in TRAINED)
        validation_before = _validation(fusion, validation, config)
        optimizer = torch.optim.Adam([p for p in fusion.parameters() if p.requires_grad],
                                     lr=config.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.steps, 1))
        losses: list[float] = []
        sources: list[str] = []
        curve: list[tuple[int, float]] = [(0, validation_before)]
        with tqdm(range(config.steps), desc="train-fusion", unit="step", disable=not progress) as bar:
            for _ in bar:
                pool = real if real and rng.random() < config.real_fraction else synthetic
                example = pool[int(rng.integers(len(pool)))]
                loss = example_loss(fusion, example, config.temperature, config.mse_weight,
                                    config.location_weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                project_mixing(fusion)
                losses.append(float(loss.item()))
                sources.append("real" if pool is real else "synthetic")
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
                done = len(losses)
                if config.validation_every and done % config.validation_every == 0 and done < config.steps:
                    curve.append((done, _validation(fusion, validation, config)))
        validation_after = _validation(fusion, validation, config)
        curve.append((config.steps, validation_after))
        first_scene = (config.seed + 1) * 1000
        fusion.eval()
        fusion.sampler = "auto"
        log = {
            "config": asdict(config),
            "seconds": time.perf_counter() - start,
            "trained_parameters": list(TRAINED),
            "fusion_config": {"samples": fusion.samples, "query_stride": fusion.query_stride,
                              "dilation": fusion.dilation, "consensus": fusion.consensus,
                              "reduction": fusion.reduction, "radius_m": 1.2},
            "data": {
                "synthetic": {"scenes": config.scenes, "frames_per_scene": config.frames,
                              "examples": len(synthetic),
                              "scene_seeds": f"{first_scene}…{first_scene + config.scenes - 1}",
                              "cameras": f"{config.cameras[0]}–{config.cameras[1]} per rig (random_rig, "
                                         "no distortion)",
                              "error_modes": [name for name, _ in _error_modes()],
                              "root": f"true pelvis + uniform ±{config.root_noise_m} m per axis"},
                "real": real_summary,
            },
            "validation_loss": {"before": validation_before, "after": validation_after,
                                "scenes": config.validation_scenes, "curve": curve},
            "losses": losses,
            "loss_sources": sources,
            "parameters": {name: p.detach().tolist() for name, p in fusion.named_parameters()},
        }
        return TrainResult(fusion, losses, sources, curve, log)
    finally:
        torch.set_num_threads(threads)


def save_weights(fusion: CrossViewFusion, path: Path) -> Path:
    """``torch.save`` the state dict (a few KB) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save({k: v.detach().clone() for k, v in fusion.state_dict().items()}, tmp)
    tmp.replace(path)
    return path


def plot_losses(losses: list[float], sources: list[str], path: Path, window: int = 20,
                validation: list[tuple[int, float]] | None = None) -> Path | None:
    """The loss curve as a PNG (each step, a running mean per source and the held-out validation loss);
    None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = np.arange(len(losses))
    values = np.asarray(losses)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
    for source, colour in (("synthetic", "tab:blue"), ("real", "tab:orange")):
        picked = np.array([s == source for s in sources], dtype=bool)
        if not picked.any():
            continue
        ax.plot(steps[picked], values[picked], ".", color=colour, alpha=0.3, markersize=3)
        running = values[picked]
        if len(running) >= window:
            running = np.convolve(running, np.ones(window) / window, mode="valid")
        ax.plot(steps[picked][len(steps[picked]) - len(running):], running, color=colour,
                label=f"{source} (mean of {window})")
    if validation:
        at, value = zip(*validation, strict=True)
        ax.plot(at, value, "o-", color="black", label="validation (held-out synthetic scenes)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (cross-entropy above ideal + MSE)")
    ax.set_title("crosspose model train-fusion")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_log(log: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(log, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

