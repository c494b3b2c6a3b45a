"""The extremities (feet, hand and face points): leaves a few centimetres from their parent, placed
around their solved parents after the body's search.

Searching them with the body would cost a tree level and a set of candidates per leaf in every
recursion; they cannot move their parent (a leaf's message only bounds the parent's distance to it, and
a 5-15 cm limb within the 15 cm tolerance bounds nothing the parent's own evidence does not), so each is
found on its own: the best evidence on a 5x5x5 grid around its parent within the limb prior's shell
(``|d - L| <= tolerance``), then three recursions of a 3x3x3 grid of halving spacing, the shell still
enforced (a 7x7x7 grid and two recursions gave the same errors on the solver benchmark's full-body clip,
22.4 mm, for ~1.3x Human3.6M-17's cold solve time instead of ~1.24x). The sub-pixel refinement then
treats them like every joint.
"""

from __future__ import annotations

import torch

from crosspose.solver.search import candidate_unary, corner_offsets


def place_leaves(
    heatmaps: torch.Tensor,
    projections: torch.Tensor,
    valid: torch.Tensor,
    parents: torch.Tensor,
    lengths: torch.Tensor,
    *,
    tolerance: float,
    size: int = 5,
    iterations: int = 3,
    first: int | None = None,
) -> torch.Tensor:
    """Each leaf's best point within its limb's shell around its parent.

    Args:
        heatmaps: ``(N, C, E, h, w)`` the leaves' heatmaps, or ``(N, C, J, h, w)`` every joint's with the
            ``E`` leaves' from ``first`` on (read in place); projections: ``(N, C, 3, 4)``.
        valid: ``(N, C, E)`` the views that vote for each leaf (:func:`.sampling.view_signal`).
        parents: ``(N, E, 3)`` each leaf's parent, solved, metres.
        lengths: ``(N, E)`` the leaves' limb lengths, metres.
        tolerance: the limb prior's tolerance, metres.
        size: points per axis of the first grid, which spans the shell's outer radius.
        iterations: 3x3x3 recursions after it, spacing halved each time.
        first: the first leaf's channel in ``heatmaps`` (None: ``heatmaps`` holds the leaves' alone).
    Returns:
        ``(N, E, 3)`` the leaves, metres (the parent's position where no point of the shell has evidence).
    """
    first = 0 if first is None else first
    step = corner_offsets(3, parents.dtype, parents.device)  # (27, 3) in {-1, 0, 1}
    reach = lengths + tolerance  # (N, E)
    unit = corner_offsets(size, parents.dtype, parents.device) * (2.0 / (size - 1))  # (K, 3) in [-1, 1]
    best = _best(heatmaps, projections, valid, parents, unit * reach[..., None, None], lengths, tolerance,
                 first)
    steps = reach / (size - 1)  # half the first grid's spacing
    for _ in range(iterations):
        offsets = (best - parents)[:, :, None] + step * steps[..., None, None]
        best = _best(heatmaps, projections, valid, parents, offsets, lengths, tolerance, first)
        steps = steps / 2
    return best


def _best(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor, parents: torch.Tensor,
          offsets: torch.Tensor, lengths: torch.Tensor, tolerance: float, first: int) -> torch.Tensor:
    """``(N, E, 3)`` the point ``parents + offsets (N, E, K, 3)`` with the most evidence inside the shell."""
    candidates = parents[:, :, None] + offsets
    unary = candidate_unary(heatmaps, projections, valid, candidates, first)  # (N, E, K)
    inside = ((offsets.norm(dim=-1) - lengths[..., None]).abs() <= tolerance)
    choice = torch.where(inside, unary, -torch.inf).argmax(-1)  # (N, E)
    n, e = choice.shape
    return candidates.gather(2, choice[..., None, None].expand(n, e, 1, 3))[:, :, 0]
