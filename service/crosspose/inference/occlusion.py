"""Which of a performer's joints another performer hides in a view, from the 3D tracks' depth order.

Where two people overlap in a view, the network's heatmaps in the farther one's crop peak on whatever is
in front: the occluder's limbs. Each performer's last pose is projected into every view; a joint of the
farther person (its root deeper along the camera's axis by more than :data:`DEPTH_MARGIN_M`) that falls
within the nearer person's body — a capsule of :data:`BODY_RADIUS_M` around each of its projected bones
— is hidden in that view. The pipeline drops hidden joints from that view for the occluded person (zero
heatmap, the solver's "no evidence"), and a view where most of its joints are hidden is not fed to the
fusion for that person at all (:mod:`crosspose.inference.pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crosspose.geometry import CameraRig
from crosspose.skeleton import Skeleton

#: Metres: half the width of a limb or torso as an occluder (a capsule around each bone).
BODY_RADIUS_M = 0.12
#: Metres one root must be behind the other along a camera's axis to count as occluded by it.
DEPTH_MARGIN_M = 0.15
#: Fraction of a performer's known joints hidden in a view above which the view is dropped for them.
DROP_VIEW_FRACTION = 0.5


def _segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points, ``(B, 2)`` segment ends → ``(N, B)`` pixel distances (NaN ends give NaN)."""
    d = ends - starts  # (B, 2)
    length2 = np.maximum((d * d).sum(-1), 1e-9)
    t = np.clip(np.einsum("nbi,bi->nb", points[:, None] - starts[None], d) / length2, 0.0, 1.0)
    nearest = starts[None] + t[..., None] * d[None]
    out: np.ndarray = np.linalg.norm(points[:, None] - nearest, axis=-1)
    return out


def hidden_joints(poses: Sequence[np.ndarray | None], rig: CameraRig, skeleton: Skeleton,
                  radius_m: float = BODY_RADIUS_M, margin_m: float = DEPTH_MARGIN_M) -> np.ndarray:
    """``P`` performers' ``(J, 3)`` poses (metres, NaN where unknown; None: no pose) → ``(P, C, J)`` bool,
    the joints another performer hides in each view (False where unknown: nothing says it is hidden)."""
    p, c, j = len(poses), len(rig), skeleton.num_joints
    hidden = np.zeros((p, c, j), bool)
    known = [i for i, pose in enumerate(poses) if pose is not None and np.isfinite(pose).all(-1).any()]
    if len(known) < 2:
        return hidden
    parents = np.array([a for a, _ in skeleton.bones])
    children = np.array([b for _, b in skeleton.bones])
    focal = rig.K[:, 0, 0]  # (C,)
    pixels: dict[int, np.ndarray] = {}
    depth: dict[int, np.ndarray] = {}  # (C,) the root's depth per camera (or the joints' median)
    for i in known:
        pose = np.asarray(poses[i], np.float64)
        pixels[i] = np.asarray(rig.project(pose)).transpose(1, 0, 2)  # (C, J, 2)
        cam = np.einsum("cij,nj->cni", rig.R, pose) + rig.t[:, None]  # (C, J, 3)
        root = cam[:, skeleton.root, 2]
        depth[i] = np.where(np.isfinite(root), root, np.nanmedian(cam[..., 2], axis=1))
    for a in known:
        for b in known:
            if a == b:
                continue
            behind = depth[a] > depth[b] + margin_m  # (C,) a is farther than b
            for v in np.flatnonzero(behind & (depth[b] > 0)):
                ends = pixels[b][v]
                ok = np.isfinite(ends[parents]).all(-1) & np.isfinite(ends[children]).all(-1)
                if not ok.any():
                    continue
                radius_px = focal[v] * radius_m / depth[b][v]
                points = pixels[a][v]
                finite = np.isfinite(points).all(-1)
                if not finite.any():
                    continue
                dist = _segment_distance(points[finite], ends[parents[ok]], ends[children[ok]])
                hidden[a, v, np.flatnonzero(finite)[dist.min(1) <= radius_px]] = True
    return hidden


def dropped_views(hidden: np.ndarray, known: np.ndarray, fraction: float = DROP_VIEW_FRACTION) -> np.ndarray:
    """``(C, J)`` hidden joints of one performer and ``(J,)`` its known joints → ``(C,)`` bool, the views
    where more than ``fraction`` of its known joints are hidden (not fed to its fusion)."""
    n = max(int(known.sum()), 1)
    out: np.ndarray = (hidden & known[None]).sum(-1) > fraction * n
    return out
