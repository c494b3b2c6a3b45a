"""Per-view person crops: the rotated square the 2D backbone sees, and the transforms that map its
heatmap pixels back to image pixels and into the projection matrices the solver gets.

Conventions (DESIGN §4): image, crop and heatmap pixel centres all sit at integer coordinates, so
pixel ``i`` covers ``[i - 0.5, i + 0.5)`` and a side-``S`` crop spans ``[-0.5, S - 0.5)``.

The crop follows BlazePose's region of interest (mediapipe's pose ROI, as its graphs document
it): a square centred on the mid-hips, rotated so the hips→shoulders vector points up, whose
side is ``scale × 2 r`` with ``r`` the radius of the circle around the mid-hips that holds the
whole body and ``scale = 1.25``. A :class:`Crop` with rotation ``θ`` has its x axis along
``(cos θ, sin θ)`` in the image (y down) and its y axis along ``(-sin θ, cos θ)``; mediapipe's
``rotation = π/2 − atan2(−v_y, v_x)`` for the alignment vector ``v`` gives exactly that.

Lens distortion, two modes:

- default: crops live in raw (distorted) image pixels and are cut with one ``warpAffine``;
  :meth:`Crop.heatmap_projection` folds the crop into the pinhole ``K [R | t]``, so it is off by
  the lens's displacement times ``heatmap_size / crop.size``. :func:`distortion_error` measures the
  worst case: on the Pose2Sim Qualisys rig 5.2–8.8 px at the image border (≤ 0.52 heatmap px for
  its ~1000–1360 px crops) and ≤ 2.6 px (≤ 0.18 heatmap px) at the performer's joints — well under
  the heatmap's own 1 px ≈ 16–20 image px, so this is the fast path we use;
- ``crops_from_pose(..., undistorted=True)`` + ``extract_crops(..., rig=rig)``: crops live in
  undistorted (pinhole) pixels and every crop pixel samples the raw image through the lens model
  (``cv2.remap``), so the projection is exact, for wide-angle lenses (costs a per-view map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from crosspose.geometry import (
    CameraRig,
    distort_normalized,
    normalized_to_pixels,
    pixels_to_normalized,
    radial_fold_limit,
)
from crosspose.skeleton import H36M17, Skeleton

CROP_SIZE = 256
HEATMAP_SIZE = 64
CROP_SCALE = 1.25

#: The joints that place a crop (mediapipe's alignment: hip centre, hips → shoulders up), by name.
_HIPS = ("l_hip", "r_hip")
_SHOULDERS = ("l_shoulder", "r_shoulder")


def _pixel_scale(size_from: float, size_to: float) -> np.ndarray:
    """``(3, 3)`` map from a ``size_from`` grid to a ``size_to`` grid over the same square (centres kept)."""
    s = size_to / size_from
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Crop:
    """A rotated square region of one view's image.

    Attributes:
        center: ``(x, y)`` image pixels of the square's centre (the mid-hips).
        size: side of the square, image pixels.
        rotation: radians; the crop's x axis is ``(cos, sin)`` in the image (y down), so a positive
            rotation turns the image content counter-clockwise on the way into the crop.
    """

    center: tuple[float, float]
    size: float
    rotation: float = 0.0

    def __post_init__(self) -> None:
        cx, cy = (float(v) for v in self.center)
        if not (np.isfinite([cx, cy, self.size, self.rotation]).all() and self.size > 0):
            raise ValueError(f"a crop needs a finite centre, rotation and positive size, got {self}")
        object.__setattr__(self, "center", (cx, cy))
        object.__setattr__(self, "size", float(self.size))
        object.__setattr__(self, "rotation", float(self.rotation))

    def affine3(self, size: int = CROP_SIZE) -> np.ndarray:
        """``(3, 3)`` homogeneous form of :meth:`affine`."""
        s = size / self.size
        c, si = np.cos(self.rotation), np.sin(self.rotation)
        A = s * np.array([[c, si], [-si, c]])  # scale × R(θ)ᵀ
        half = 0.5 * (size - 1)
        out = np.eye(3)
        out[:2, :2] = A
        out[:2, 2] = half - A @ np.asarray(self.center)
        return out

    def affine(self, size: int = CROP_SIZE) -> np.ndarray:
        """``(2, 3)`` image px → crop px of a ``size``-pixel square output (what ``cv2.warpAffine`` takes)."""
        return self.affine3(size)[:2]

    def inverse_affine(self, size: int = CROP_SIZE) -> np.ndarray:
        """``(2, 3)`` crop px → image px (the inverse of :meth:`affine`)."""
        s = self.size / size
        c, si = np.cos(self.rotation), np.sin(self.rotation)
        B = s * np.array([[c, -si], [si, c]])
        half = 0.5 * (size - 1)
        return np.concatenate([B, (np.asarray(self.center) - B @ [half, half])[:, None]], axis=1)

    def to_heatmap(self, crop_size: int = CROP_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
        """``(2, 3)`` image px → heatmap px (heatmap pixel ``u`` covers crop pixels ``4u … 4u+3``)."""
        return (_pixel_scale(crop_size, heatmap_size) @ self.affine3(crop_size))[:2]

    def from_heatmap(self, crop_size: int = CROP_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
        """``(2, 3)`` heatmap px → image px (the inverse of :meth:`to_heatmap`)."""
        A = np.linalg.inv(_pixel_scale(crop_size, heatmap_size) @ self.affine3(crop_size))
        return A[:2]

    def heatmap_projection(
        self, projection: np.ndarray, crop_size: int = CROP_SIZE, heatmap_size: int = HEATMAP_SIZE
    ) -> np.ndarray:
        """Fold the crop into a ``(3, 4)`` pinhole projection: world metres → heatmap px.

        Distortion is not representable in a ``3x4`` matrix; see the module docstring and
        :func:`distortion_error` for what that costs.
        """
        P = np.asarray(projection, dtype=np.float64)
        if P.shape != (3, 4):
            raise ValueError(f"projection must have shape (3, 4), got {P.shape}")
        A = np.eye(3)
        A[:2] = self.to_heatmap(crop_size, heatmap_size)
        out: np.ndarray = A @ P
        return out

    def corners(self) -> np.ndarray:
        """``(4, 2)`` image px of the square's outer corners in crop order TL, TR, BR, BL."""
        h = 0.5 * self.size
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        local = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
        return local @ np.array([[c, s], [-s, c]]) + np.asarray(self.center)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """``(..., 2)`` image px → ``(...,)`` bool: inside the square (NaN → False)."""
        p = np.asarray(points, dtype=np.float64)
        q = p @ self.affine(1)[:, :2].T + self.affine(1)[:, 2]  # unit square centred on 0
        with np.errstate(invalid="ignore"):
            return np.all(np.abs(q) <= 0.5, axis=-1)


def crop_from_alignment(hip_center: Sequence[float] | np.ndarray, alignment: Sequence[float] | np.ndarray,
                        scale: float = CROP_SCALE) -> Crop:
    """Mediapipe's rule for a crop from two alignment points (image px).

    ``hip_center`` is the crop centre; ``alignment`` lies at the body circle's radius ``r`` along
    the hips→shoulders direction. Side ``= scale × 2 r``; rotation ``= π/2 − atan2(−v_y, v_x)``
    with ``v = alignment − hip_center`` (so ``v`` points up in the crop).
    """
    c = np.asarray(hip_center, dtype=np.float64).reshape(2)
    v = np.asarray(alignment, dtype=np.float64).reshape(2) - c
    rotation = 0.5 * np.pi - np.arctan2(-v[1], v[0])
    rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
    return Crop((c[0], c[1]), scale * 2.0 * float(np.hypot(*v)), float(rotation))


def crops_from_pose(
    joints3d: np.ndarray, rig: CameraRig, scale: float = CROP_SCALE, min_inside: float = 0.5,
    undistorted: bool = False, skeleton: Skeleton = H36M17,
) -> list[Crop | None]:
    """One BlazePose-style crop per view from a ``(J, 3)`` pose of ``skeleton`` (metres), or None per
    missing view.

    In each view: centre ``c`` = projected mid-hips; ``v`` = projected mid-shoulders − ``c`` sets
    the rotation (hips→shoulders up); ``r = max_j |p_j − c|`` over the projected joints of the body
    (head, ankles and wrists bound the body circle; a layout's extremities, the full body's toes and
    fingers, are not counted: its crops are those of Human3.6M-17, whose ``scale`` margin holds them);
    side ``= scale × 2 r``. Equivalent to :func:`crop_from_alignment` with the alignment point
    ``c + r v/|v|``.

    A view is None when any joint is behind the camera, the mid-hips fall outside the image, or
    fewer than ``min_inside`` of the joints project inside it. All None when the hips or
    shoulders are not finite. With ``undistorted`` the crops are placed in undistorted (pinhole)
    pixels, to be cut by ``extract_crops(..., rig=rig)``.
    """
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.shape != (skeleton.num_joints, 3):
        raise ValueError(f"joints3d must have shape ({skeleton.num_joints}, 3) ({skeleton.name}), got "
                         f"{joints3d.shape}")
    hips = joints3d[[skeleton.index(j) for j in _HIPS]].mean(0)
    shoulders = joints3d[[skeleton.index(j) for j in _SHOULDERS]].mean(0)
    if not np.isfinite([hips, shoulders]).all():
        return [None] * len(rig)
    body = joints3d[:skeleton.body.num_joints]
    finite = np.isfinite(body).all(-1)
    points = np.concatenate([body[finite], hips[None], shoulders[None]])
    raw = np.swapaxes(np.asarray(rig.project(points), dtype=np.float64), 0, 1)  # (C, P, 2)
    uv = raw
    if undistorted:
        hom = np.einsum("cij,pj->cpi", rig.projection_matrices(), np.c_[points, np.ones(len(points))])
        uv = np.where(np.isfinite(raw), hom[..., :2] / hom[..., 2:], np.nan)
    crops: list[Crop | None] = []
    for c, (pts, seen) in enumerate(zip(uv, raw, strict=True)):
        W, H = (float(v) for v in rig.image_size[c])
        body, center, up = pts[:-2], pts[-2], pts[-1] - pts[-2]
        if not np.isfinite(pts).all() or np.hypot(*up) == 0:
            crops.append(None)
            continue
        x, y = seen[:-2].T
        inside = (x >= -0.5) & (x < W - 0.5) & (y >= -0.5) & (y < H - 0.5)
        in_image = -0.5 <= seen[-2, 0] < W - 0.5 and -0.5 <= seen[-2, 1] < H - 0.5
        if not in_image or inside.mean() < min_inside:
            crops.append(None)
            continue
        radius = float(np.max(np.hypot(*(body - center).T)))
        crops.append(crop_from_alignment(center, center + radius * up / np.hypot(*up), scale))
    return crops


_LENS_STEP = 8  # crop px between exact lens samples; bilinear in between (the lens is smooth)


def _lens_maps(crops: Sequence[Crop | None], rig: CameraRig, size: int) -> np.ndarray:
    """``(C, 2, size, size)`` float32 raw-image x and y sampled by each crop pixel of undistorted crops.

    The lens model is evaluated exactly every ``_LENS_STEP`` crop pixels (at ``8k + 3.5``, one
    sample beyond each edge) and interpolated bilinearly by ``cv2.resize``, whose sample grid then
    lands on the crop's pixel centres; 64x fewer points than per pixel. Points beyond the lens
    model's first fold are sent outside the image (black), never folded back in.
    """
    n = -(-size // _LENS_STEP) + 2
    k = (np.arange(n) - 1) * _LENS_STEP + 0.5 * (_LENS_STEP - 1)
    q = np.stack(np.meshgrid(k, k), -1).reshape(-1, 1, 2)
    A = np.stack([np.eye(2, 3) if c is None else c.inverse_affine(size) for c in crops])  # (C, 2, 3)
    ideal = torch.from_numpy(np.einsum("cij,pcj->pci", A[..., :2], q) + A[:, :, 2])  # (P, C, 2)
    K, dist = torch.tensor(rig.K), torch.tensor(rig.dist)  # copies: the rig's arrays are read-only
    xy = pixels_to_normalized(ideal, K)
    raw = normalized_to_pixels(distort_normalized(xy, dist), K)
    folded = (xy * xy).sum(-1) >= radial_fold_limit(dist)
    raw = torch.where(folded[..., None], torch.full_like(raw, -1e6), raw)
    coarse = raw.permute(1, 2, 0).reshape(len(crops), 2, n, n).numpy().astype(np.float32)
    out = np.empty((len(crops), 2, size, size), np.float32)
    big, lo, hi = n * _LENS_STEP, _LENS_STEP, _LENS_STEP + size
    for c in range(len(crops)):
        for axis in range(2):
            fine = cv2.resize(coarse[c, axis], (big, big), interpolation=cv2.INTER_LINEAR)
            out[c, axis] = fine[lo:hi, lo:hi]
    return out


def extract_crops(images: Sequence[np.ndarray | None], crops: Sequence[Crop | None],
                  size: int = CROP_SIZE, rig: CameraRig | None = None) -> np.ndarray:
    """Cut the crops out of the views: ``C`` BGR uint8 ``(H, W, 3)`` images → ``(C, size, size, 3)``.

    Returns float32 RGB in ``[0, 1]`` (the backbone's input). Bilinear sampling, black outside the
    image; a view whose crop or image is None is all zeros. With ``rig`` the crops are in
    undistorted pixels (``crops_from_pose(..., undistorted=True)``) and sampled through the lens.
    """
    if len(images) != len(crops):
        raise ValueError(f"got {len(images)} images but {len(crops)} crops; give one crop (or None) per view")
    if rig is not None and len(rig) != len(crops):
        raise ValueError(f"got {len(crops)} crops for a rig of {len(rig)} cameras")
    maps = None if rig is None else _lens_maps(crops, rig, size)
    out = np.zeros((len(crops), size, size, 3), np.float32)
    for c, (image, crop) in enumerate(zip(images, crops, strict=True)):
        if crop is None or image is None:
            continue
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"view {c}: images must be (H, W, 3) uint8 BGR, got {image.shape} {image.dtype}")
        # cvtColor, not [..., ::-1]: the strided view makes the float conversion ~5x slower.
        if maps is None:
            patch = cv2.warpAffine(image, crop.affine(size), (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        else:
            patch = cv2.remap(image, maps[c, 0], maps[c, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(0, 0, 0))
        np.multiply(cv2.cvtColor(patch, cv2.COLOR_BGR2RGB), np.float32(1 / 255), out=out[c])
    return out


def heatmap_transforms(crops: Sequence[Crop | None], crop_size: int = CROP_SIZE,
                       heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """``(C, 2, 3)`` image px → heatmap px per view; NaN for a missing view."""
    out = np.full((len(crops), 2, 3), np.nan)
    for c, crop in enumerate(crops):
        if crop is not None:
            out[c] = crop.to_heatmap(crop_size, heatmap_size)
    return out


def heatmap_projections(crops: Sequence[Crop | None], rig: CameraRig, crop_size: int = CROP_SIZE,
                        heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """``(C, 3, 4)`` world metres → heatmap px per view (``Solver.solve``'s input); NaN for a missing view."""
    if len(crops) != len(rig):
        raise ValueError(f"got {len(crops)} crops for a rig of {len(rig)} cameras")
    P = rig.projection_matrices()
    out = np.full((len(crops), 3, 4), np.nan)
    for c, crop in enumerate(crops):
        if crop is not None:
            out[c] = crop.heatmap_projection(P[c], crop_size, heatmap_size)
    return out


def distortion_error(rig: CameraRig, step: int = 8) -> np.ndarray:
    """``(C,)`` largest lens displacement (image px) on each view's image border.

    This is the error of treating the raw image as pinhole; times ``heatmap_size / crop.size`` it
    is the error of :meth:`Crop.heatmap_projection` in heatmap pixels. NaN-safe: border pixels
    beyond the lens model's fold are ignored.
    """
    out = np.zeros(len(rig))
    for c, cam in enumerate(rig):
        W, H = cam.image_size
        xs, ys = np.arange(0, W, step, dtype=np.float64), np.arange(0, H, step, dtype=np.float64)
        border = np.concatenate([
            np.stack([xs, np.zeros_like(xs)], -1), np.stack([xs, np.full_like(xs, H - 1)], -1),
            np.stack([np.zeros_like(ys), ys], -1), np.stack([np.full_like(ys, W - 1), ys], -1),
        ])
        ideal = np.asarray(cam.undistort(border), dtype=np.float64)
        out[c] = float(np.nanmax(np.hypot(*(ideal - border).T)))
    return out
