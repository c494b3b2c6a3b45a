"""Per-view overlay images: the crop box, the heatmap maxima and the reprojected 3D skeleton on a frame."""

from __future__ import annotations

import cv2
import numpy as np

from crosspose.inference.crops import Crop
from crosspose.skeleton import H36M17, Skeleton

# BGR colours: reprojected 3D (the answer) green, heatmap maxima (the network's own 2D) orange.
REPROJECTED = (60, 220, 60)
HEATMAP = (0, 140, 255)
CROP_BOX = (255, 200, 0)
LEFT_SIDE = (255, 80, 80)  # left joints of the reprojected skeleton get a blue dot, so swaps show


def draw_overlay(
    image: np.ndarray,
    crop: Crop | None = None,
    reprojected: np.ndarray | None = None,
    heatmap_points: np.ndarray | None = None,
    label: str = "",
    skeleton: Skeleton = H36M17,
) -> np.ndarray:
    """A copy of a BGR uint8 image with the view's 2D results drawn on it.

    Args:
        image: ``(H, W, 3)`` BGR uint8.
        crop: the crop the network saw (drawn as its rotated square, top edge thicker).
        reprojected: ``(J, 2)`` image pixels of the solved 3D joints (NaN: not drawn).
        heatmap_points: ``(J, 2)`` image pixels of the heatmap maxima (NaN: not drawn).
        label: text for the top-left corner.
        skeleton: the joints' layout (its bones are drawn).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {image.shape} {image.dtype}")
    out = image.copy()
    scale = max(1, round(max(image.shape[:2]) / 640))
    if crop is not None:
        corners = np.round(crop.corners()).astype(np.int32)
        cv2.polylines(out, [corners.reshape(-1, 1, 2)], True, CROP_BOX, scale, cv2.LINE_AA)
        top = (int(corners[0, 0]), int(corners[0, 1])), (int(corners[1, 0]), int(corners[1, 1]))
        cv2.line(out, top[0], top[1], CROP_BOX, 3 * scale, cv2.LINE_AA)
    layers = ((heatmap_points, HEATMAP, 3 * scale), (reprojected, REPROJECTED, 4 * scale))
    for points, colour, radius in layers:
        if points is None:
            continue
        p = np.asarray(points, dtype=np.float64)
        if p.shape != (skeleton.num_joints, 2):
            raise ValueError(f"2D joints must have shape ({skeleton.num_joints}, 2) ({skeleton.name}), got "
                             f"{p.shape}")
        ok = np.asarray(np.isfinite(p).all(axis=-1))
        for a, b in skeleton.bones:
            if ok[a] and ok[b]:
                cv2.line(out, (int(p[a, 0]), int(p[a, 1])), (int(p[b, 0]), int(p[b, 1])), colour, scale,
                         cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            centre = (int(p[j, 0]), int(p[j, 1]))
            cv2.circle(out, centre, radius, colour, -1, cv2.LINE_AA)
            if colour == REPROJECTED and skeleton.joints[j].startswith("l_"):
                cv2.circle(out, centre, max(1, radius // 2), LEFT_SIDE, -1, cv2.LINE_AA)
    if label:
        cv2.putText(out, label, (10 * scale, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                    (255, 255, 255), 2 * scale, cv2.LINE_AA)
    return out
