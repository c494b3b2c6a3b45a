"""The cross-view fusion layer: each view's heatmaps fused with the other views' evidence along epipolar
segments derived from the calibration (DESIGN §1).

The paper learns one dense ``(h·w)×(h·w)`` matrix per ordered camera pair for one fixed rig. Here
the pairing is computed from the projection matrices every frame (:mod:`crosspose.nets.epipolar`): each
heatmap pixel of view ``u`` is back-projected to a ray, the ray's chord through a sphere around the
current root estimate is sampled at ``S`` depths, and those 3D points are projected into every other
view ``v``, whose heatmap is read there (bilinearly: ``grid_sample`` in eager torch, row gathers in the
exported graph, see :func:`~crosspose.nets.epipolar.bilinear_gather`) and reduced over the depths (max or
a soft max). Only the mixing is learned: a few hundred parameters that work for any rig and any camera
count ``C ≥ 2``.

The forward pass has no data-dependent Python control flow, so it exports to ONNX with a dynamic camera
count.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional

from crosspose.nets.epipolar import (
    EPS,
    bilinear_gather,
    bilinear_scalars,
    consensus_gather,
    epipolar_segments,
    homogeneous_projection,
    other_views,
    rays_through,
    segment_depths,
    segment_grid,
    segment_projection,
)


def _exporting() -> bool:
    """True while ``torch.onnx.export`` / ``torch.export`` traces the module."""
    return bool(torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export())


def _dilate(heatmaps: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable ``(2r+1)²`` max filter over the last two axes (zero outside; inputs are ``≥ 0``).

    Shifted maxima: several times faster than ``max_pool2d`` on CPU and plain ONNX ops.
    """
    if radius <= 0:
        return heatmaps
    h, w = heatmaps.shape[-2:]
    pad = functional.pad(heatmaps, (radius, radius, radius, radius))
    rows = pad[..., radius:radius + w]
    for k in range(2 * radius + 1):
        if k != radius:
            rows = torch.maximum(rows, pad[..., k:k + w])
    out = rows[..., radius:radius + h, :]
    for k in range(2 * radius + 1):
        if k != radius:
            out = torch.maximum(out, rows[..., k:k + h, :])
    return out


def _finite_projections(projections: torch.Tensor, valid: torch.Tensor,
                        dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``projections (N, C, 3, 4)`` with a non-finite one (a missing view's may be NaN) replaced by
    ``[I | 0]`` so that the maths stays finite, whether each was finite ``(N, C)``, and the views whose
    evidence counts: valid and finite ``(N, C)``."""
    P = projections.to(dtype)
    finite = torch.isfinite(P).flatten(2).all(-1)
    P = torch.where(finite[..., None, None], P, torch.eye(3, 4, dtype=dtype, device=P.device))
    return P, finite, valid & finite


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Refuse a ``value`` of argument ``name`` that is not one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ValueError(f"{name} must be {listed}, got {value!r}")


class CrossViewFusion(nn.Module):
    """Fuse each view's joint heatmaps with the evidence of the other views along epipolar segments.

    For view ``u``, joint ``j`` and heatmap pixel ``p``:

    * ``e_uv(p, s)`` — view ``v``'s heatmap of joint ``j`` at the ``s``-th of ``S`` points of ``p``'s ray
      inside the volume (the sphere of ``radius`` around ``root``);
    * ``cross_u(p) = max_s Σ_v c_vj e_uv(p, s) / Σ_v c_vj`` over the valid views ``v ≠ u``, with an
      AdaFuse-style confidence ``c_vj = softplus(a_j (peak_vj - b_j))`` from view ``v``'s own peak.
      ``consensus=True`` (default) averages the views at each depth before the max, so only a 3D
      point the other views agree on scores high; ``False`` takes each view's max along its
      epipolar segment first (AdaFuse's order), which lets the ridges of different views meet at
      a wrong pixel. ``reduction="softmax"`` replaces the max with a softmax-weighted mean of
      learned temperature (smooth, never above the max);
    * ``fused = own_j · H_u + cross_j · cross_u + agree_j · H_u · cross_u``.

    The default initialisation (``own=0``, ``cross=0.7``, ``agree=0.3``) makes a pixel high only where
    the other views agree: a wrong or left/right-swapped peak in one view gets no support and is
    suppressed, a joint the view missed is recovered from ``cross_u``, and where both agree the
    view's own sharper peak decides the location. ``own=α, cross=1-α, agree=0`` is the paper's
    linear form (``α = 0.4`` in its reference code); it corrects far fewer whole-body left/right swaps
    (measured 60% against 100%). About ``5·J + 1`` parameters; ``crosspose model train-fusion``
    (:mod:`crosspose.nets.train`) learns them, keeping ``own, cross, agree ≥ 0`` with a sum ``≤ 1``.
    The output is clipped to ``[0, 1]`` (a no-op for such weights).

    Heatmaps are expected in ``[0, 1]`` (probabilities; peaks near 1); pass ``from_logits=True`` to
    apply a sigmoid first (BlazePose's heatmaps are logits). The output is on the same scale.

    A view with ``valid=False`` contributes nothing to the others; its own output is ``cross_u``
    (cross-view evidence only; it needs a finite projection, else it is zero). A valid view with no
    valid other view is returned unchanged.

    Args:
        num_joints: ``J``.
        samples: ``S`` depths per ray (a ray's chord is ``≤ 2·radius`` long; keep its projected step
            near the heatmap sigma).
        reduction: ``"max"`` or ``"softmax"``.
        query_stride: cast rays from a grid ``stride`` times coarser than the heatmap and upsample the
            cross-view evidence bilinearly (2 costs ~1/4 of the time and measured no accuracy loss).
        dilation: radius of a max filter applied to the other views before sampling, so that a
            peak is not missed between two depth steps (1 with 16 samples ≈ 0 with 32).
        own, cross, agree: initial per-joint mixing weights.
        temperature: initial soft-max temperature (heatmap units).
        confidence_gain, confidence_threshold: initial ``a_j`` and ``b_j``.
        from_logits: apply ``sigmoid`` to the input heatmaps.
        window: ``0`` (default) evaluates the cross-view evidence on the whole map, along rays through the
            sphere of ``radius`` around the root. ``W > 0`` evaluates it only in a ``W``-pixel square
            window per view and joint, centred where the joint's prior 3D position (the previous pose)
            projects, along rays through a sphere of ``window_radius`` around that position
            (:meth:`windowed_cross_evidence`); outside its window a joint gets no cross-view evidence.
            The same parameters serve both modes (training uses the whole map).
        window_stride: rays from every ``stride``-th pixel of a window (interpolated in between).
        window_radius: metres around each joint's prior position that the window's rays sample.
        window_samples: depths per ray in a window.
        interpolation: how the other views are read at each ray point: ``"bilinear"`` or
            ``"nearest"`` (one pixel instead of four: a quarter of the gathered memory; with
            ``dilation`` ≥ 1 a peak is wide enough that the nearest pixel loses little).
        sampler: how the other views are read; all compute the same bilinear samples.
            ``"gather"``: :func:`~crosspose.nets.epipolar.bilinear_gather` (row gathers; faster in ONNX
            Runtime on CPU, whose ``GridSample`` is slow); ``"grid_sample"``:
            ``torch.nn.functional.grid_sample`` (faster in eager torch); ``"auto"`` (default): gather while
            being exported, grid_sample otherwise.
    """

    def __init__(
        self,
        num_joints: int = 17,
        samples: int = 16,
        reduction: Literal["max", "softmax"] = "max",
        *,
        query_stride: int = 2,
        dilation: int = 1,
        consensus: bool = True,
        own: float = 0.0,
        cross: float = 0.7,
        agree: float = 0.3,
        temperature: float = 0.1,
        confidence_gain: float = 8.0,
        confidence_threshold: float = 0.5,
        from_logits: bool = False,
        sampler: Literal["auto", "gather", "grid_sample"] = "auto",
        interpolation: Literal["bilinear", "nearest"] = "bilinear",
        window: int = 0,
        window_stride: int = 2,
        window_radius: float = 0.4,
        window_samples: int = 8,
    ) -> None:
        super().__init__()
        _check_choice("reduction", reduction, ("max", "softmax"))
        _check_choice("interpolation", interpolation, ("bilinear", "nearest"))
        _check_choice("sampler", sampler, ("auto", "gather", "grid_sample"))
        if query_stride < 1:
            raise ValueError(f"query_stride must be >= 1, got {query_stride}")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if window < 0 or window % max(window_stride, 1) or window_stride < 1:
            raise ValueError("window must be 0 or a positive multiple of window_stride >= 1, got "
                             f"window={window}, window_stride={window_stride}")
        if window and not consensus:
            raise ValueError("the windowed evidence is computed with consensus=True only")
        if window and (window_radius <= 0 or window_samples < 1):
            raise ValueError(f"window_radius must be > 0 m and window_samples >= 1, got {window_radius}, "
                             f"{window_samples}")
        self.num_joints = num_joints
        self.samples = samples
        self.reduction = reduction
        self.query_stride = query_stride
        self.dilation = dilation
        self.consensus = consensus
        self.from_logits = from_logits
        self.sampler = sampler
        self.interpolation = interpolation
        self.window = int(window)
        self.window_stride = int(window_stride)
        self.window_radius = float(window_radius)
        self.window_samples = int(window_samples)
        self.own = nn.Parameter(torch.full((num_joints,), float(own)))
        self.cross = nn.Parameter(torch.full((num_joints,), float(cross)))
        self.agree = nn.Parameter(torch.full((num_joints,), float(agree)))
        self.confidence_gain = nn.Parameter(torch.full((num_joints,), float(confidence_gain)))
        self.confidence_threshold = nn.Parameter(torch.full((num_joints,), float(confidence_threshold)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def extra_repr(self) -> str:
        text = (f"num_joints={self.num_joints}, samples={self.samples}, reduction={self.reduction!r}, "
                f"interpolation={self.interpolation!r}")
        if self.window:
            text += (f", window={self.window}, window_stride={self.window_stride}, "
                     f"window_radius={self.window_radius}, window_samples={self.window_samples}")
        return text

    def _reduce_depths(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Max (or soft max) over ``dim``, the ``S`` depths of a ray."""
        if self.reduction == "max":
            return x.amax(dim)
        weights = torch.softmax(x / self.log_temperature.exp(), dim=dim)
        return (weights * x).sum(dim)

    def _consensus(self, summed: torch.Tensor, norm: torch.Tensor, dim: int) -> torch.Tensor:
        """``Σ_v c_vj e_uv / Σ_v c_vj`` reduced over the depths ``dim`` of ``summed`` (the numerator);
        ``norm`` (the denominator) is shaped like the result."""
        if self.reduction == "max":  # the max commutes with the positive normalisation: divide less
            return summed.amax(dim) / norm
        return self._reduce_depths(summed / norm.unsqueeze(dim), dim=dim)

    def _confidence(self, heatmaps: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """``(N, C, J)`` each view's confidence ``c_vj = softplus(a_j (peak_vj - b_j))`` from its own peak
        (zero for a view that is not usable)."""
        peak = heatmaps.flatten(3).amax(-1)  # (N, C, J)
        confidence = functional.softplus(self.confidence_gain * (peak - self.confidence_threshold))
        return confidence * usable[..., None].to(confidence.dtype)

    def cross_evidence(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        root: torch.Tensor,
        radius: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cross (N, C, J, h, w)`` and ``support (N, C, J)`` (summed confidence of the other views)."""
        n, c, j, h, w = heatmaps.shape
        hq, wq = -(-h // self.query_stride), -(-w // self.query_stride)
        s = self.samples
        others = other_views(c, heatmaps.device)  # (C, C-1)
        P, P_finite, usable = _finite_projections(projections, valid, heatmaps.dtype)
        centres, directions, depth, hit = epipolar_segments(P, (h, w), root.to(P.dtype), radius, s, (hq, wq))
        grid = segment_grid(centres[:, :, None], directions[:, :, None], depth[:, :, None], hit[:, :, None],
                            P[:, others], (h, w))  # (N, C, C-1, Q, S, 2)
        # A wider peak is not missed between two depth steps: fewer samples for the same recall.
        heatmaps = _dilate(heatmaps, self.dilation)

        confidence = self._confidence(heatmaps, usable)  # (N, C, J)
        weight = confidence[:, others]  # (N, C, C-1, J)
        support = weight.sum(2)
        norm = support.clamp_min(EPS)
        gather = self.sampler == "gather" or (self.sampler == "auto" and _exporting())
        nearest = self.interpolation == "nearest"
        if gather and self.consensus:
            # Joints last: confidence folded into the maps, views and corners summed by one product.
            # The grid's views next to its corners: (N, C, Q, S, C-1, 2), small next to what is gathered.
            by_point = grid.reshape(n, c, c - 1, hq * wq, s, 2).permute(0, 1, 3, 4, 2, 5)
            weighted = heatmaps * confidence[..., None, None]
            summed = consensus_gather(weighted, by_point, others, nearest)  # (N, C, Q, S, J)
            cross = self._consensus(summed, norm[:, :, None, :], dim=-2).transpose(-1, -2)  # (N, C, J, Q)
        elif gather:
            sources = heatmaps[:, others].reshape(-1, j, h, w)  # (N·C·(C-1), J, h, w)
            sampled = bilinear_gather(sources, grid.reshape(-1, hq * wq, s, 2), nearest)
            sampled = sampled.reshape(n, c, c - 1, hq * wq, s, j)
            cross = (weight[:, :, :, None, :] * self._reduce_depths(sampled, dim=-2)).sum(2)
            cross = (cross / norm[:, :, None, :]).transpose(-1, -2)  # (N, C, J, Q)
        else:
            sources = heatmaps[:, others].reshape(-1, j, h, w)  # (N·C·(C-1), J, h, w)
            sampled = functional.grid_sample(
                sources, grid.reshape(-1, hq * wq, s, 2), mode=self.interpolation, padding_mode="zeros",
                align_corners=True,
            ).reshape(n, c, c - 1, j, hq * wq, s)
            if self.consensus:
                # Views combined at each depth first: only a 3D point that all views see scores high.
                at_depth = (weight[..., None, None] * sampled).sum(2) / norm[..., None, None]  # N,C,J,Q,S
                cross = self._reduce_depths(at_depth)
            else:
                cross = (weight[..., None] * self._reduce_depths(sampled)).sum(2) / norm[..., None]
        cross = cross.reshape(n * c, j, hq, wq)
        if self.query_stride > 1:
            cross = functional.interpolate(cross, size=(h, w), mode="bilinear", align_corners=True)
        cross = cross.reshape(n, c, j, h, w) * P_finite[..., None, None, None].to(cross.dtype)
        return cross, support

    def windowed_cross_evidence(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        joints: torch.Tensor,
        scale: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The consensus evidence of :meth:`cross_evidence`, only where each joint can be.

        For view ``u`` and joint ``j``: the rays of a ``window × window`` pixel square centred on the
        projection of ``joints[j]`` (every ``window_stride``-th pixel, ``K = window / stride + 1`` per
        side) are sampled at ``window_samples`` depths of their chord through the sphere of
        ``window_radius`` around ``joints[j]``; each point reads joint ``j``'s map of every other view
        (one scalar per bilinear corner, not a ``J``-vector), the views are averaged by confidence at
        each depth and the depths reduced, as the whole-map mode does. The ``K × K`` window is put
        back into the ``h × w`` map by two small matrix products (bilinear in between the rays, a
        tent falling to zero half a stride outside the window). A joint whose prior is not finite or
        lies behind a view gets no evidence in that view and zero support (the fusion then keeps the
        view's own map for it).

        Args:
            heatmaps: ``(N, C, J, h, w)`` in ``[0, 1]``, zero for invalid views.
            projections: ``(N, C, 3, 4)`` world metres → heatmap pixels.
            valid: ``(N, C)`` bool.
            joints: ``(N, J, 3)`` prior 3D joints (e.g. the previous pose), metres; NaN where unknown.
            scale: a float or ``(N,)``, ``≥ 1`` for an older prior: the window's pixel span, ray stride
                and sphere radius grow by this factor (same number of rays and depths, so coarser).
        Returns:
            ``cross (N, C, J, h, w)`` and ``support (N, C, J)``.
        """
        n, c, j, h, w = heatmaps.shape
        if joints.shape != (n, j, 3):
            raise ValueError(f"joints must have shape ({n}, {j}, 3), got {tuple(joints.shape)}")
        dtype, device = heatmaps.dtype, heatmaps.device
        s = self.window_samples
        k = self.window // self.window_stride + 1
        factor = torch.as_tensor(scale, dtype=dtype, device=device).reshape(-1, 1, 1, 1)  # (N or 1, 1, 1, 1)
        stride = self.window_stride * factor  # (N, 1, 1, 1) pixels between rays
        radius = self.window_radius * factor  # (N, 1, 1, 1) metres
        others = other_views(c, device)  # (C, C-1)
        P, P_finite, usable = _finite_projections(projections, valid, dtype)  # (N, C, 3, 4), (N, C), (N, C)
        X = joints.to(dtype)
        known = torch.isfinite(X).all(-1)  # (N, J)
        X = torch.where(known[..., None], X, torch.zeros_like(X))

        # Where each joint's prior lands in each view: the window's centre pixel.
        uvw = homogeneous_projection(P[:, :, None], X[:, None])  # (N, C, J, 3)
        front = uvw[..., 2] > EPS
        centre = (uvw[..., :2] / uvw[..., 2:].clamp_min(EPS)).clamp(-2.0 * max(h, w), 3.0 * max(h, w))
        ok = known[:, None, :] & front & P_finite[..., None]  # (N, C, J)
        origin = torch.floor(centre + 0.5) - 0.5 * (k - 1) * stride  # (N, C, J, 2) the window's corner
        steps = torch.arange(k, dtype=dtype, device=device) * stride  # (N, 1, 1, K)
        qx = origin[..., 0, None] + steps  # (N, C, J, K) ray columns, heatmap px
        qy = origin[..., 1, None] + steps  # (N, C, J, K) ray rows
        xx, yy = torch.broadcast_tensors(qx[..., None, :], qy[..., :, None])  # (N, C, J, K, K)
        pixels = torch.stack([xx, yy, torch.ones_like(xx)], -1)  # (N, C, J, K, K, 3)
        pixels = pixels.reshape(n, c, j, k * k, 3)

        # Rays through the window's pixels, and their chords through the sphere around the joint.
        centres, directions = rays_through(P[:, :, None], pixels)  # (N, C, 1, 3), (N, C, J, Q, 3)
        depth, hit = segment_depths(centres, directions, X[:, None], radius, s)  # (N, C, J, Q, S), (N,C,J,Q)

        # Confidence-weighted consensus of the other views at each depth: joint j reads only map j.
        heatmaps = _dilate(heatmaps, self.dilation)
        confidence = self._confidence(heatmaps, usable)  # (N, C, J)
        support = confidence[:, others].sum(2) * ok.to(dtype)  # (N, C, J)
        norm = support.clamp_min(EPS)
        # One zero pixel around every map, so that all four bilinear corners are always readable.
        padded = functional.pad(heatmaps * confidence[..., None, None], (1, 1, 1, 1)).reshape(-1)
        maps = (torch.arange(n, device=device).view(n, 1, 1) * c + others[None]) * j  # (N, C, C-1)
        maps = (maps[..., None] + torch.arange(j, device=device)) * ((h + 2) * (w + 2))  # (N, C, C-1, J)
        # Ray points c + t·d of view u in view v: P_v (c + t d) = a + t b, one product per ray; read as
        # pixel coordinates one axis at a time (scalar reads).
        target = P[:, others][:, :, :, None]  # (N, C, C-1, 1, 3, 4)
        # a (N, C, C-1, 1, 3), b (N, C, C-1, J, Q, 3)
        a, b = segment_projection(centres[:, :, None], directions[:, :, None], target)
        t = depth[:, :, None]  # (N, C, 1, J, Q, S)
        u_, v_, w_ = (a[..., None, None, i] + t * b[..., i, None] for i in range(3))
        seen = (w_ > EPS) & hit[:, :, None, :, :, None]  # (N, C, C-1, J, Q, S)
        inv = 1.0 / w_.clamp_min(EPS)
        x = torch.where(seen, u_ * inv, torch.full_like(u_, -1.0))
        y = torch.where(seen, v_ * inv, torch.full_like(v_, -1.0))
        sampled = bilinear_scalars(padded, maps[..., None, None], x, y, h, w,
                                   nearest=self.interpolation == "nearest")
        window = self._consensus(sampled.sum(2), norm[..., None], dim=-1)  # (N, C, J, K·K)
        window = (window * ok[..., None].to(dtype)).reshape(n, c, j, k, k)

        # Back into the map: bilinear between the rays, zero away from the window.
        xs = torch.arange(w, dtype=dtype, device=device)
        ys = torch.arange(h, dtype=dtype, device=device)
        tent = stride[..., None]  # (N, 1, 1, 1, 1)
        Rx = (1.0 - (xs[:, None] - qx[..., None, :]).abs() / tent).clamp_min(0.0)  # (N, C, J, w, K)
        Ry = (1.0 - (ys[:, None] - qy[..., None, :]).abs() / tent).clamp_min(0.0)  # (N, C, J, h, K)
        cross = Ry @ window @ Rx.transpose(-1, -2)  # (N, C, J, h, w)
        return cross * P_finite[..., None, None, None].to(dtype), support

    def forward(
        self,
        heatmaps: torch.Tensor,
        projections: torch.Tensor,
        valid: torch.Tensor,
        root: torch.Tensor,
        radius: float | torch.Tensor = 1.2,
        joints: torch.Tensor | None = None,
        window_scale: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Fused heatmaps.

        Args:
            heatmaps: ``(N, C, J, h, w)`` in ``[0, 1]`` (or logits with ``from_logits``).
            projections: ``(N, C, 3, 4)`` world metres → heatmap pixels, crop affines folded in.
            valid: ``(N, C)`` bool, False for a missing view.
            root: ``(N, 3)`` current root estimate (e.g. the previous frame's pelvis), metres.
            radius: metres around ``root`` that hold the whole body (float or ``(N,)``).
            joints: ``(N, J, 3)`` prior joints, metres, NaN where unknown; required with ``window > 0``
                (then ``root`` and ``radius`` are unused).
            window_scale: float or ``(N,)``, ``≥ 1`` to look further from an older prior
                (:meth:`windowed_cross_evidence`).
        Returns:
            ``(N, C, J, h, w)`` fused heatmaps, same scale as the input.
        """
        if heatmaps.dim() != 5 or heatmaps.shape[2] != self.num_joints:
            raise ValueError(f"heatmaps must have shape (N, C, {self.num_joints}, h, w), got "
                             f"{tuple(heatmaps.shape)}")
        n, c = heatmaps.shape[:2]
        if projections.shape != (n, c, 3, 4) or valid.shape != (n, c) or root.shape != (n, 3):
            raise ValueError(f"expected projections ({n}, {c}, 3, 4), valid ({n}, {c}), root ({n}, 3); got "
                             f"{tuple(projections.shape)}, {tuple(valid.shape)}, {tuple(root.shape)}")
        if self.from_logits:
            heatmaps = torch.sigmoid(heatmaps)
        valid = valid.to(torch.bool)
        own = heatmaps * valid[..., None, None, None].to(heatmaps.dtype)
        if self.window:
            if joints is None:
                raise ValueError(f"a windowed fusion (window={self.window}) needs the prior joints (N, J, 3)")
            cross, support = self.windowed_cross_evidence(own, projections, valid, joints, window_scale)
        else:
            cross, support = self.cross_evidence(own, projections, valid, root, radius)
        shape = (1, 1, self.num_joints, 1, 1)
        fused = (self.own.view(shape) * own + self.cross.view(shape) * cross
                 + self.agree.view(shape) * own * cross)
        # Trained weights need not sum to one: keep the documented [0, 1] scale of the output.
        fused = fused.clamp(0.0, 1.0)
        alone = (support <= EPS)[..., None, None]
        fused = torch.where(alone, own, fused)
        return torch.where(valid[..., None, None, None], fused, cross)
