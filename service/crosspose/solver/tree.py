"""Exact max-product on the skeleton tree with a limb-length pairwise term.

Two message forms, both exact for their state space:

* candidates — each joint has its own ``K`` candidate points; a message is a max over a
  ``(K, K)`` table of ``belief + pairwise``. Used for top-K first levels, RPSM recursions and tracking.
* shell — all joints share a regular ``G^3`` grid; the binary limb term is non-zero only at integer
  offsets whose length lies within the tolerance of the limb length, so a message is a max over
  that sparse set of shifted copies (identical to the dense ``G^3 x G^3`` message, far cheaper).

Edges are processed a tree level at a time, all edges of a level in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from crosspose.skeleton import Skeleton

# Log-potential outside the limb tolerance. Finite, so a frame with no consistent configuration still
# has an answer; large enough that any consistent configuration wins.
BINARY_PENALTY = 1e4


@dataclass(frozen=True)
class TreeSchedule:
    """Edges grouped by the depth of their child, deepest first (the order of leaf→root messages)."""

    root: int
    levels: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (parents, children, bones)

    @classmethod
    def from_skeleton(cls, skeleton: Skeleton) -> TreeSchedule:
        depth = [0] * skeleton.num_joints
        for c, p in enumerate(skeleton.parents):
            if p >= 0:
                depth[c] = depth[p] + 1
        levels = []
        for d in range(max(depth), 0, -1):
            bones = [b for b, (_, c) in enumerate(skeleton.bones) if depth[c] == d]
            parents = tuple(skeleton.bones[b][0] for b in bones)
            children = tuple(skeleton.bones[b][1] for b in bones)
            levels.append((parents, children, tuple(bones)))
        return cls(skeleton.root, tuple(levels))


def limb_log_potential(distance: torch.Tensor, length: torch.Tensor, tolerance: float,
                       slope: float = 0.0) -> torch.Tensor:
    """0 where ``|distance - length| <= tolerance``; otherwise ``-BINARY_PENALTY`` (``slope = 0``,
    the paper's binary term) or ``-slope * excess / tolerance`` (a soft fall-off)."""
    excess = (distance - length).abs() - tolerance
    if slope <= 0:
        return torch.where(excess <= 0, 0.0, -BINARY_PENALTY).to(distance.dtype)
    return -slope * excess.clamp(min=0.0) / tolerance


@dataclass(frozen=True)
class _Plan:
    """A schedule's edges laid out for :func:`max_product_candidates`.

    Joints are kept in message order (``order``): the children of the deepest level first, each level's
    children one contiguous run, the root after the ``E`` children (then any joint on no edge). Edge
    ``e``'s child sits at position ``e``, so a level's beliefs are a slice, not a gather.
    """

    order: torch.Tensor  # (J,) joint at each position
    children: torch.Tensor  # (E,) child joint of each edge (= order[:E])
    parents: torch.Tensor  # (E,) parent joint of each edge
    bones: torch.Tensor  # (E,) bone of each edge
    levels: tuple[tuple[int, int, torch.Tensor], ...]  # each level's edge slice and its parents' positions
    order_np: np.ndarray  # the same on the host, for the backtracking
    levels_np: tuple[tuple[int, int, np.ndarray], ...]


def _plan(schedule: TreeSchedule, num_joints: int, device: torch.device) -> _Plan:
    key = (schedule, num_joints, str(device))
    cached = _PLANS.get(key)
    if cached is None:
        children = [c for level in schedule.levels for c in level[1]]
        order = children + [schedule.root] + [
            k for k in range(num_joints) if k not in children and k != schedule.root]
        position = {joint: i for i, joint in enumerate(order)}
        levels_np = []
        start = 0
        for p, c, _ in schedule.levels:
            stop = start + len(c)
            levels_np.append((start, stop, np.array([position[k] for k in p], dtype=np.int64)))
            start = stop
        cached = _Plan(
            order=torch.tensor(order, device=device),
            children=torch.tensor(children, device=device),
            parents=torch.tensor([p for level in schedule.levels for p in level[0]], device=device),
            bones=torch.tensor([b for level in schedule.levels for b in level[2]], device=device),
            levels=tuple((a, b, torch.as_tensor(p, device=device)) for a, b, p in levels_np),
            order_np=np.array(order),
            levels_np=tuple(levels_np),
        )
        _PLANS[key] = cached
    return cached


_PLANS: dict[tuple[TreeSchedule, int, str], _Plan] = {}


def max_product_candidates(
    schedule: TreeSchedule,
    candidates: torch.Tensor,
    log_unary: torch.Tensor,
    lengths: torch.Tensor,
    tolerance: float,
    slope: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact MAP over per-joint candidate sets.

    Args:
        schedule: tree levels.
        candidates: ``(N, J, K, 3)`` points, metres.
        log_unary: ``(N, J, K)``.
        lengths: ``(N, B)`` limb lengths in bone order, metres.
        tolerance: limb tolerance, metres; slope: see :func:`limb_log_potential`.
    Returns:
        ``(N, J)`` chosen candidate index per joint and ``(N,)`` the MAP score.

    The pairwise tables of all edges are built in one batch (they do not depend on the messages); the
    level loop then only adds, maximises and accumulates — the solver runs this every frame, where
    per-operation overhead, not arithmetic, is the cost. The backtracking is integer bookkeeping on
    ``(N, J)`` indices: one transfer of the argmax tables to the host and a numpy lookup per level.
    """
    n, j, k, _ = candidates.shape
    plan = _plan(schedule, j, candidates.device)
    e = plan.parents.shape[0]
    xp, xc = candidates[:, plan.parents], candidates[:, plan.children]  # (N, E, K, 3)
    # Squared distances by the expansion |a|^2 + |b|^2 - 2ab: one batched matmul, no (K, K, 3) temporary.
    d2 = (xp.square().sum(-1)[..., :, None] + xc.square().sum(-1)[..., None, :]
          - 2 * xp @ xc.transpose(-1, -2)).clamp(min=0.0)  # (N, E, K, K)
    length = lengths[:, plan.bones, None, None]
    if slope <= 0:
        lo = (length - tolerance).clamp(min=0.0)
        allowed = (d2 >= lo * lo) & (d2 <= (length + tolerance) ** 2)
        pairwise = torch.where(allowed, 0.0, -BINARY_PENALTY).to(log_unary.dtype)
    else:
        pairwise = limb_log_potential(d2.sqrt(), length, tolerance, slope).to(log_unary.dtype)
    belief = log_unary[:, plan.order]  # a copy, in message order
    back: list[torch.Tensor] = []
    for start, stop, p in plan.levels:
        msg, arg = (belief[:, start:stop, None, :] + pairwise[:, start:stop]).max(-1)  # (N, E_level, K)
        belief.index_add_(1, p, msg)
        back.append(arg)
    score, best = belief[:, e:].max(-1)  # (N, J - E): the root, then any joint on no edge
    # Every edge's argmax table and the root's choice in one transfer.
    table = torch.cat([*back, best[:, :, None].expand(n, j - e, k)], 1).cpu().numpy()  # (N, J, K)
    chosen = np.empty((n, j), dtype=np.int64)  # by position in message order
    chosen[:, e:] = table[:, e:, 0]
    rows = np.arange(n)[:, None]
    for start, stop, p in reversed(plan.levels_np):
        chosen[:, start:stop] = table[rows, np.arange(start, stop), chosen[:, p]]
    choice = np.empty_like(chosen)
    choice[:, plan.order_np] = chosen
    return torch.as_tensor(choice, device=candidates.device), score[:, 0]


@lru_cache(maxsize=64)
def _shell_offsets(grid: int, spacing_um: int, length_um: int, tolerance_um: int
                   ) -> tuple[tuple[int, int, int], ...]:
    s, lo, hi = spacing_um, max(length_um - tolerance_um, 0), length_um + tolerance_um
    r = min(math.ceil(hi / s), grid - 1)
    out = []
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            for dz in range(-r, r + 1):
                dist = s * math.sqrt(dx * dx + dy * dy + dz * dz)
                if lo <= dist <= hi:
                    out.append((dx, dy, dz))
    return tuple(out)


def shell_offsets(grid: int, spacing: float, length: float, tolerance: float) -> torch.Tensor:
    """``(K, 3)`` integer offsets whose length (``spacing`` units) is within ``tolerance`` of ``length``."""
    um = [round(v * 1e6) for v in (spacing, length, tolerance)]
    return torch.tensor(_shell_offsets(grid, *um), dtype=torch.long).reshape(-1, 3)


def shell_message(belief: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max of a child's belief over the limb shell around every parent bin.

    Args:
        belief: ``(N, G, G, G)`` child belief on the grid.
        offsets: ``(K, 3)`` integer shell offsets (child bin − parent bin).
    Returns:
        ``(N, G, G, G)`` message (``-BINARY_PENALTY`` where no child bin lies on the shell) and the
        ``(N, G, G, G)`` index into ``offsets`` that attains it (-1 where none does).
    """
    n, g = belief.shape[0], belief.shape[1]
    if offsets.shape[0] == 0:
        empty = torch.full_like(belief, -BINARY_PENALTY)
        return empty, torch.full(belief.shape, -1, dtype=torch.long, device=belief.device)
    r = int(offsets.abs().max())
    padded = torch.nn.functional.pad(belief, (r, r, r, r, r, r), value=-math.inf)
    gp = g + 2 * r
    idx = torch.arange(g, device=belief.device) + r
    base = (idx[:, None, None] * gp + idx[None, :, None]) * gp + idx[None, None, :]  # (G, G, G)
    off = offsets.to(belief.device)
    shift = (off[:, 0] * gp + off[:, 1]) * gp + off[:, 2]  # (K,)
    gathered = padded.reshape(n, -1)[:, (base.reshape(-1, 1) + shift[None, :])]  # (N, G^3, K)
    msg, arg = gathered.max(-1)
    none = torch.isinf(msg)
    msg = torch.where(none, torch.full_like(msg, -BINARY_PENALTY), msg)
    arg = torch.where(none, torch.full_like(arg, -1), arg)
    return msg.reshape(belief.shape), arg.reshape(belief.shape)


def max_product_grid(
    schedule: TreeSchedule,
    log_unary: torch.Tensor,
    spacing: float,
    lengths: torch.Tensor,
    tolerance: float,
) -> torch.Tensor:
    """Exact MAP on a shared ``G^3`` grid with the paper's binary limb term (shell messages).

    Args:
        log_unary: ``(N, J, G, G, G)``; spacing: bin spacing, metres; lengths: ``(B,)`` metres
        (shared by the batch: the shell depends on them); tolerance: metres.
    Returns:
        ``(N, J, 3)`` chosen integer bin per joint.
    """
    n, j, g = log_unary.shape[:3]
    belief = log_unary.clone()
    back: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}
    for parents, children, bones in schedule.levels:
        for p, c, b in zip(parents, children, bones, strict=True):
            offsets = shell_offsets(g, spacing, float(lengths[b]), tolerance).to(log_unary.device)
            msg, arg = shell_message(belief[:, c], offsets)
            belief[:, p] += msg
            back[c] = (p, arg, offsets)
    bins = torch.zeros(n, j, 3, dtype=torch.long, device=log_unary.device)
    flat = belief[:, schedule.root].reshape(n, -1).argmax(-1)
    bins[:, schedule.root] = torch.stack([flat // (g * g), (flat // g) % g, flat % g], -1)
    batch = torch.arange(n, device=log_unary.device)
    for parents, children, _ in reversed(schedule.levels):
        for p, c in zip(parents, children, strict=True):
            _, arg, offsets = back[c]
            bp = bins[:, p]
            k = arg[batch, bp[:, 0], bp[:, 1], bp[:, 2]]
            # No shell bin inside the grid: the child stays on its parent's bin.
            bins[:, c] = torch.where((k >= 0)[:, None], bp + offsets[k.clamp(min=0)], bp)
    return bins
