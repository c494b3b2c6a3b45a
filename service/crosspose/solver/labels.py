"""Left/right label errors in one view: found from epipolar geometry, undone by relabelling the view.

A 2D network sometimes swaps left and right in one view — the whole body, or one arm or leg. The
heatmaps are then right about *where* the limbs are and wrong about *which* limb is which: the 3D
vote of the other views outvotes the view and it is lost, or worse, it drags the search towards a
mirrored ghost. Before the search, each mirror group (a left limb with its right counterpart) is
tested in every view: are the view's peaks consistent with the other views' peaks (epipolar
distances) as labelled, or with left and right crossed? The views that disagree with the majority
are relabelled (their channels of that group swapped back), so they support the 3D answer again
instead of being dropped. The test needs no pose, so cold and tracked solves use the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crosspose.skeleton import Skeleton
from crosspose.solver.options import RelabelOptions


@dataclass(frozen=True)
class MirrorGroups:
    """Left/right limb groups of a skeleton.

    Attributes:
        mirror: ``(J,)`` index of each joint's mirror (itself on the midline).
        members: ``(G, J)`` bool, the lateral joints (both sides) of each group.
    """

    mirror: tuple[int, ...]
    members: tuple[tuple[bool, ...], ...]

    @property
    def num_groups(self) -> int:
        return len(self.members)


def mirror_groups(skeleton: Skeleton) -> MirrorGroups:
    """One group per limb: a left chain hanging off the midline together with its right mirror."""
    mirror = skeleton.mirror
    midline = {j for j in range(skeleton.num_joints) if mirror[j] == j}
    groups: dict[int, set[int]] = {}
    for left, right in skeleton.left_right_pairs:
        top = left
        while skeleton.parents[top] >= 0 and skeleton.parents[top] not in midline:
            top = skeleton.parents[top]
        groups.setdefault(top, set()).update((left, right))
    members = tuple(tuple(j in g for j in range(skeleton.num_joints)) for g in groups.values())
    return MirrorGroups(mirror, members)


def view_permutation(flips: torch.Tensor, groups: MirrorGroups) -> torch.Tensor:
    """``(N, C, J)`` channel of each view that holds each joint once the flagged groups are swapped."""
    key = (groups, str(flips.device))
    if key not in _GROUP_TENSORS:  # built once per skeleton and device, not per relabelling
        _GROUP_TENSORS[key] = (torch.arange(len(groups.mirror), device=flips.device),
                               torch.tensor(groups.mirror, device=flips.device),
                               torch.tensor(groups.members, device=flips.device))
    identity, mirror, members = _GROUP_TENSORS[key]  # (J,), (J,), (G, J)
    swap = (flips[..., :, None] & members).any(-2)  # (N, C, J)
    return torch.where(swap, mirror, identity)


_GROUP_TENSORS: dict[tuple[MirrorGroups, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def relabel(heatmaps: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """``heatmaps (N, C, J, h, w)`` with each view's channels reordered by ``permutation (N, C, J)``.

    Whole maps are copied as rows (``index_select``): ~9x faster on CPU than a ``gather`` that
    indexes every pixel.
    """
    n, c, j = permutation.shape
    rows = torch.arange(n * c, device=permutation.device)[:, None] * j + permutation.reshape(n * c, j)
    return heatmaps.reshape(n * c * j, -1).index_select(0, rows.reshape(-1)).reshape(heatmaps.shape)


def fundamental_matrices(projections: torch.Tensor) -> torch.Tensor:
    """``(N, C, C, 3, 3)`` ``F[u, v]`` with ``x_v^T F x_u = 0`` for matching pixels (float64; garbage but
    finite for a missing camera, which the caller masks)."""
    P = torch.nan_to_num(projections.to(torch.float64))
    M, p4 = P[..., :3], P[..., 3]
    eye = torch.eye(3, dtype=P.dtype, device=P.device)
    M = torch.where((torch.linalg.det(M).abs() > 1e-12)[..., None, None], M, eye)
    centre = torch.cat([-torch.linalg.solve(M, p4[..., None])[..., 0], torch.ones_like(p4[..., :1])], -1)
    pinv = P.transpose(-1, -2) @ torch.linalg.inv(P @ P.transpose(-1, -2) + 1e-12 * eye)  # (N, C, 4, 3)
    e = torch.einsum("nvij,nuj->nuvi", P, centre)  # (N, U, V, 3): camera u's centre seen by view v
    zero = torch.zeros_like(e[..., 0])
    ex = torch.stack([zero, -e[..., 2], e[..., 1], e[..., 2], zero, -e[..., 0], -e[..., 1], e[..., 0], zero],
                     -1).reshape(*e.shape, 3)
    return ex @ P[:, None] @ pinv[:, :, None]  # [e_v]x P_v P_u^+


def _assignments(c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every "swapped" bit pattern of ``c`` views: ``bits (A, C)`` bool, ``differ (A, U, V)`` float64
    (1 where exactly one of views ``u < v`` is swapped) and ``changed (A,)`` (the number of such pairs)."""
    if c not in _ASSIGNMENTS:
        bits = ((np.arange(2**c)[:, None] >> np.arange(c)) & 1).astype(bool)
        upper = np.triu(np.ones((c, c), dtype=bool), 1)
        differ = ((bits[:, :, None] != bits[:, None, :]) & upper).astype(np.float64)
        _ASSIGNMENTS[c] = (bits, differ, differ.sum((1, 2)))
    return _ASSIGNMENTS[c]


_ASSIGNMENTS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def heatmap_peaks(heatmaps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, J, 2)`` sub-pixel peak (the argmax, moved to the centroid of its 5x5 neighbourhood) and
    ``(N, C, J)`` its value, float32 on the host.

    The argmax and the neighbourhoods are read on the heatmaps' device; the centroids of the
    ``N x C x J`` small windows are computed in numpy after one transfer.
    """
    h, w = heatmaps.shape[-2:]
    flat_maps = heatmaps.flatten(3)
    # Row maxima first: a whole-map max with indices is ~15x slower on CPU than amax.
    value, y = heatmaps.amax(-1).max(-1)  # (N, C, J)
    x = heatmaps.gather(3, y[..., None, None].expand(*y.shape, 1, w))[..., 0, :].argmax(-1)
    d = _WINDOW_OFFSETS.get(str(heatmaps.device))
    if d is None:
        d = _WINDOW_OFFSETS[str(heatmaps.device)] = torch.arange(-2, 3, device=heatmaps.device)
    xs = (x[..., None] + d).clamp(0, w - 1)  # (N, C, J, 5)
    ys = (y[..., None] + d).clamp(0, h - 1)
    window = flat_maps.gather(3, (ys[..., :, None] * w + xs[..., None, :]).flatten(3))  # (N, C, J, 25)
    host = torch.cat([window, torch.stack([x, y], -1).to(window.dtype), value[..., None]], -1).cpu().numpy()
    windows = host[..., :25].clip(min=0.0).reshape(*host.shape[:-1], 5, 5)
    total = np.maximum(windows.sum((-1, -2)), np.float32(1e-12))
    offsets = np.arange(-2, 3, dtype=windows.dtype)
    dx = (windows.sum(-2) * offsets).sum(-1) / total
    dy = (windows.sum(-1) * offsets).sum(-1) / total
    return host[..., 25:27] + np.stack([dx, dy], -1), host[..., 27]


_WINDOW_OFFSETS: dict[str, torch.Tensor] = {}


def epipolar_swaps(heatmaps: torch.Tensor, projections: torch.Tensor, valid: torch.Tensor,
                   groups: MirrorGroups, options: RelabelOptions = RelabelOptions(),
                   fundamental: torch.Tensor | np.ndarray | None = None,
                   signal: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C, G)`` bool: views whose labelling of a mirror group disagrees with the others', from the
    heatmap peaks and epipolar geometry alone (no 3D pose needed).

    For every pair of views and group, the peaks of the group's joints are matched as labelled and
    crossed (left with right); each match costs its symmetric epipolar distance, clipped at
    ``epipolar_clip``. Every assignment of "as labelled"/"swapped" to the views is scored (3 to 12
    views: at most 4096 assignments), and the cheapest one that swaps fewer than half of the valid
    views wins if it beats "no view swapped" by ``epipolar_margin`` per pair of views it changes.
    Views that see the two limbs on one epipolar line abstain by themselves: both matchings cost the
    same. ``fundamental``: :func:`fundamental_matrices` of ``projections`` when the caller has them.
    ``signal``: ``(N, C, J)`` the heatmaps that hold a peak (:func:`.sampling.view_signal`); a map
    without one is not tested, however high its noise reaches.

    The peaks are found on the heatmaps' device; the test itself works on ``N x C x J`` peaks and runs
    in numpy (float64) after one transfer of them.
    """
    n, c = heatmaps.shape[:2]
    g = groups.num_groups
    if c < 3 or c > 12 or g == 0:
        return torch.zeros(n, c, g, dtype=torch.bool, device=heatmaps.device)
    xy, value = heatmap_peaks(heatmaps)
    valid_np = valid.cpu().numpy()
    xy1 = np.concatenate([xy.astype(np.float64), np.ones_like(xy[..., :1], dtype=np.float64)], -1)
    present = valid_np[..., None] if signal is None else signal.cpu().numpy()
    seen = (value >= options.min_peak) & present  # (N, C, J)
    if fundamental is None:
        fundamental = fundamental_matrices(projections)
    F = fundamental.cpu().numpy() if isinstance(fundamental, torch.Tensor) else fundamental  # (N, U, V, 3, 3)
    mirror = np.asarray(groups.mirror)
    # Peaks of view v matched as labelled (k = 0) and crossed (k = 1) with view u's.
    b = np.stack([xy1, xy1[:, :, mirror]], 2)  # (N, V, 2, J, 3)
    line_v = np.einsum("nuvik,nujk->nuvji", F, xy1)[:, :, :, None]  # u's peaks as lines in v
    line_u = np.einsum("nuvki,nvmjk->nuvmji", F, b)  # v's peaks as lines in u
    algebraic = np.abs((line_v * b[:, None]).sum(-1))  # (N, U, V, 2, J)
    scale = (1.0 / np.sqrt(np.maximum(np.square(line_v[..., :2]).sum(-1), 1e-24))
             + 1.0 / np.sqrt(np.maximum(np.square(line_u[..., :2]).sum(-1), 1e-24)))
    distance = np.minimum(0.5 * algebraic * scale, options.epipolar_clip)
    # Compare the two matchings only on peaks present in both.
    ok = seen[:, :, None] & seen[:, None] & seen[:, None, :, mirror]  # (N, U, V, J)
    members = np.asarray(groups.members, dtype=np.float64)  # (G, J)
    cost = np.einsum("nuvkj,gj->nkguv", np.where(ok[:, :, :, None], distance, 0.0), members)
    bits, differ, changed = _assignments(c)
    # Energy of an assignment = sum over pairs u < v of the labelled or crossed cost; relative to none.
    delta = np.einsum("auv,nguv->nga", differ, cost[:, 1] - cost[:, 0])  # (N, G, A)
    swapped = bits[None] & valid_np[:, None, :]  # (N, A, C)
    count = swapped.sum(-1)[:, None, :]  # (N, 1, A)
    minority = (count > 0) & (2 * count < valid_np.sum(-1)[:, None, None])
    gain = np.where(minority, -delta - options.epipolar_margin * changed, -1.0)
    best = gain.argmax(-1)  # (N, G), the first of equal gains
    best_gain = np.take_along_axis(gain, best[..., None], -1)[..., 0]
    choice = swapped[np.arange(n)[:, None], best]  # (N, G, C)
    flips = (choice & (best_gain > 0)[..., None]).transpose(0, 2, 1)
    return torch.as_tensor(np.ascontiguousarray(flips), device=heatmaps.device)
