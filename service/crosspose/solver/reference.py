"""The methods we compare against, written from the paper's description (not from its code).

* :func:`dense_psm` — the pictorial structure on a 16^3 grid over a 2 m cube around the root, binary
  limb term (``| |d| - L | <= 150 mm``), exact max-product with dense ``G^3 x G^3`` messages (the cost
  that makes the original slow).
* :func:`paper_rpsm` — dense PSM, then 10 recursions of 2x2x2 corners at ±s/2 with the spacing halved.
* :func:`softargmax_dlt` — per-view soft-argmax (heatmap-weighted mean pixel) over the whole map or a
  window around its maximum, and linear triangulation, plain or weighted by each view's peak value.

They take the root and limb lengths as arguments: the official demo used the ground-truth root and
the training set's limb lengths; the benchmark gives them the same crutches.
"""

from __future__ import annotations

import numpy as np
import torch

from crosspose.geometry import triangulate
from crosspose.skeleton import H36M17, Skeleton
from crosspose.solver.root import cube
from crosspose.solver.sampling import valid_cameras
from crosspose.solver.search import grid_unary, recurse
from crosspose.solver.tree import BINARY_PENALTY, TreeSchedule, max_product_grid


def _inputs(heatmaps: np.ndarray | torch.Tensor, projections: np.ndarray | torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hm = torch.nan_to_num(torch.as_tensor(heatmaps, dtype=torch.float32), nan=0.0)[None]
    P = torch.as_tensor(projections, dtype=torch.float32)[None]
    return hm, P, valid_cameras(hm, P)


def dense_psm(
    heatmaps: np.ndarray | torch.Tensor,
    projections: np.ndarray | torch.Tensor,
    root: np.ndarray,
    lengths: np.ndarray,
    *,
    skeleton: Skeleton = H36M17,
    bins: int = 16,
    extent: float = 2.0,
    tolerance: float = 0.15,
    messages: str = "dense",
) -> np.ndarray:
    """PSM on a ``bins^3`` grid. ``heatmaps (C,J,h,w)``, ``projections (C,3,4)``, ``root (3,)`` m,
    ``lengths (B,)`` m in bone order → ``(J, 3)`` metres.

    ``messages="dense"`` is the original formulation; ``"shell"`` computes the same MAP with sparse
    shell messages (:func:`crosspose.solver.tree.max_product_grid`), for accuracy runs that cannot wait.
    """
    hm, P, valid = _inputs(heatmaps, projections)
    points = cube(torch.as_tensor(root, dtype=torch.float32)[None], extent, bins)  # (1, G^3, 3)
    belief = grid_unary(hm, P, valid, points)[0].clone()  # (J, G^3)
    schedule = TreeSchedule.from_skeleton(skeleton)
    if messages == "shell":
        idx = max_product_grid(schedule, belief.reshape(1, -1, bins, bins, bins), extent / bins,
                               torch.as_tensor(lengths, dtype=torch.float64), tolerance)[0]
        return points[0, (idx[:, 0] * bins + idx[:, 1]) * bins + idx[:, 2]].double().numpy()
    if messages != "dense":
        raise ValueError(f"messages must be 'dense' or 'shell', got {messages!r}")
    distance = torch.cdist(points[0], points[0])  # (G^3, G^3): parent bin x child bin
    back: dict[int, torch.Tensor] = {}
    for parents, children, bones in schedule.levels:
        for p, c, b in zip(parents, children, bones, strict=True):
            allowed = (distance - float(lengths[b])).abs() <= tolerance
            scores = torch.where(allowed, belief[c][None, :], torch.tensor(-BINARY_PENALTY))
            msg, arg = scores.max(1)
            belief[p] += msg
            back[c] = arg
    choice = torch.zeros(skeleton.num_joints, dtype=torch.long)
    choice[schedule.root] = belief[schedule.root].argmax()
    for parents, children, _ in reversed(schedule.levels):
        for p, c in zip(parents, children, strict=True):
            choice[c] = back[c][choice[p]]
    return points[0, choice].double().numpy()


def paper_rpsm(
    heatmaps: np.ndarray | torch.Tensor,
    projections: np.ndarray | torch.Tensor,
    root: np.ndarray,
    lengths: np.ndarray,
    *,
    skeleton: Skeleton = H36M17,
    bins: int = 16,
    extent: float = 2.0,
    tolerance: float = 0.15,
    iterations: int = 10,
    messages: str = "dense",
) -> np.ndarray:
    """The paper's RPSM: :func:`dense_psm`, then ``iterations`` 2x2x2 recursions with halving spacing."""
    joints = dense_psm(heatmaps, projections, root, lengths, skeleton=skeleton, bins=bins, extent=extent,
                       tolerance=tolerance, messages=messages)
    hm, P, valid = _inputs(heatmaps, projections)
    out = recurse(TreeSchedule.from_skeleton(skeleton), hm, P, valid,
                  torch.as_tensor(joints, dtype=torch.float32)[None],
                  torch.as_tensor(lengths, dtype=torch.float32)[None], spacing=extent / bins,
                  iterations=iterations, size=2, tolerance=tolerance)
    return out[0].double().numpy()


def softargmax_dlt(
    heatmaps: np.ndarray | torch.Tensor, projections: np.ndarray | torch.Tensor, weighted: bool = False,
    beta: float = 20.0, window: int | None = None,
) -> np.ndarray:
    """Soft-argmax in every view, then (confidence-weighted) DLT → ``(J, 3)`` (NaN if < 2 views).

    The soft-argmax is the expectation of the pixel under ``softmax(beta · heatmap)`` (integral
    regression): unbiased for a symmetric peak and insensitive to low background noise, unlike the
    plain heatmap-weighted mean. ``weighted`` weighs each view by its heatmap's peak value. ``window``:
    only the ``(2 window + 1)^2`` pixels around each map's maximum count (windowed soft-argmax), so noise
    and other peaks elsewhere in the map pull nothing.
    """
    hm, P, valid = _inputs(heatmaps, projections)
    h, w = hm.shape[-2:]
    logits = beta * hm[0].flatten(2)  # (C, J, h*w)
    if window is not None:
        top = logits.argmax(-1)[..., None]  # (C, J, 1)
        ys, xs = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)  # (h*w,) each
        near = ((ys - top // w).abs() <= window) & ((xs - top % w).abs() <= window)
        logits = logits.masked_fill(~near, -torch.inf)
    mass = torch.softmax(logits, -1).reshape(hm.shape[1:])
    total = (hm[0].flatten(2).amax(-1) > 0).to(mass.dtype)  # (C, J): 0 for an empty heatmap
    ys, xs = torch.meshgrid(torch.arange(h, dtype=mass.dtype), torch.arange(w, dtype=mass.dtype),
                            indexing="ij")
    u = (mass * xs).flatten(2).sum(-1)
    v = (mass * ys).flatten(2).sum(-1)
    uv = torch.stack([u, v], -1).transpose(0, 1)  # (J, C, 2)
    weight = hm[0].flatten(2).amax(-1).clamp(min=0.0) if weighted else total
    weight = (weight * valid[0][:, None]).transpose(0, 1)  # (J, C)
    X, _ = triangulate(uv.double(), P[0].double(), weight.double())
    assert isinstance(X, torch.Tensor)
    return X.numpy()
