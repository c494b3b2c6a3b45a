"""Heatmap decoding: sub-pixel maxima, and single-peaked heatmaps for the midpoint joints.

The network maps BlazePose's channels to H36M-17 linearly (``crosspose.nets.export``): a midpoint
joint's heatmap (pelvis = ½ l_hip + ½ r_hip, thorax, spine) is the mean of its sources' maps, so it
has two (or four) lower peaks at the sources rather than one at the midpoint, and its maximum sits on
one of them. Measured on the real Pose2Sim clip (20 frames, raw heatmaps through the solver): spine
287 mm and thorax 228 mm from Pose2Sim against 31–55 mm for the arms. :func:`midpoint_heatmaps`
redraws those channels as one peak at the mean of the sources' maxima.
"""

from __future__ import annotations

import numpy as np

from crosspose.skeleton import H36M17, Skeleton

#: Joint → the joints whose mean it is (BlazePose-33 recipes of ``crosspose.skeleton``), by name: a layout
#: gets the midpoints whose joint and sources it has.
MIDPOINT_SOURCES: dict[str, tuple[str, ...]] = {
    "pelvis": ("l_hip", "r_hip"),
    "thorax": ("l_shoulder", "r_shoulder"),
    "spine": ("l_hip", "r_hip", "l_shoulder", "r_shoulder"),
}
MIDPOINT_SIGMA = 1.5  # heatmap px, about BlazePose's own peak width at 64×64


def _log_parabola(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-pixel offset in ``[-0.5, 0.5]``: vertex of a parabola through the logs (exact for a Gaussian)."""
    tiny = 1e-12
    a, b, c = (np.log(np.maximum(v, tiny)) for v in (left, centre, right))
    curvature = a - 2 * b + c
    ok = (curvature < -tiny) & (left > tiny) & (right > tiny)
    offset = np.where(ok, 0.5 * (a - c) / np.where(ok, curvature, -1.0), 0.0)
    return np.clip(offset, -0.5, 0.5)


def heatmap_maxima(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(..., h, w)`` → ``xy (..., 2)`` sub-pixel maxima (heatmap px) and ``value (...,)`` at the best pixel.

    The maximum pixel, refined along x and y by the vertex of a parabola through the logarithms of it
    and its two neighbours (exact for a Gaussian peak; no refinement at the border or on a flat map).
    """
    maps = np.asarray(heatmaps, dtype=np.float64)
    if maps.ndim < 2:
        raise ValueError(f"heatmaps must have shape (..., h, w), got {maps.shape}")
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape(-1, h, w)
    m = np.arange(len(flat))
    index = flat.reshape(len(flat), -1).argmax(-1)
    y, x = np.divmod(index, w)
    value = flat[m, y, x]
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    dx = _log_parabola(flat[m, y, np.maximum(x - 1, 0)], value, flat[m, y, np.minimum(x + 1, w - 1)])
    dy = _log_parabola(flat[m, np.maximum(y - 1, 0), x], value, flat[m, np.minimum(y + 1, h - 1), x])
    xy = np.stack([x + np.where(inner_x, dx, 0.0), y + np.where(inner_y, dy, 0.0)], -1)
    return xy.reshape(*lead, 2), value.reshape(lead)


def midpoint_heatmaps(heatmaps: np.ndarray, sigma: float = MIDPOINT_SIGMA,
                      skeleton: Skeleton = H36M17) -> np.ndarray:
    """A copy of ``(C, J, h, w)`` heatmaps of ``skeleton`` with the midpoint joints redrawn as one peak each.

    Each of :data:`MIDPOINT_SOURCES` the layout has becomes a Gaussian of ``sigma`` heatmap pixels at the
    mean of its sources' sub-pixel maxima, as high as the lowest source peak (a midpoint is no surer than
    its least sure source).
    """
    maps = np.asarray(heatmaps)
    j = skeleton.num_joints
    if maps.ndim != 4 or maps.shape[1] != j:
        raise ValueError(f"heatmaps must have shape (C, {j}, h, w) ({skeleton.name}), got {maps.shape}")
    out = maps.copy()
    h, w = maps.shape[-2:]
    xy, value = heatmap_maxima(maps)
    gy, gx = np.mgrid[0:h, 0:w]
    names = set(skeleton.joints)
    for joint, sources in MIDPOINT_SOURCES.items():
        if joint not in names or not names.issuperset(sources):
            continue
        idx = [skeleton.index(s) for s in sources]
        centre = xy[:, idx].mean(1)  # (C, 2)
        height = value[:, idx].min(1)  # (C,)
        d2 = (gx - centre[:, 0, None, None]) ** 2 + (gy - centre[:, 1, None, None]) ** 2
        out[:, skeleton.index(joint)] = height[:, None, None] * np.exp(-0.5 * d2 / sigma**2)
    return out
