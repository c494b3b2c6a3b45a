"""Rendered camera frames of the synthetic studio: a shaded capsule body in a textured room.

The room (checker floor, panelled walls, ceiling) is ray-cast once per camera, with the camera's
distortion, and cached in a :class:`Renderer`; each frame then draws the body's capsules
(``cv2.fillConvexPoly`` + ``cv2.circle``, far to near) onto a copy. Images are ``H x W x 3``
``uint8`` BGR, the OpenCV convention, so they travel through the same code as real footage.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from crosspose.geometry import CameraRig
from crosspose.skeleton import H36M17, Skeleton
from crosspose.studio.scene import Capsule, body_capsules

if TYPE_CHECKING:
    from crosspose.studio.scene import Scene

BackgroundLike = str | np.ndarray | Sequence[np.ndarray]

# Sub-pixel precision of cv2 drawing calls (coordinates are fixed point with this many bits).
_SHIFT = 4
_ONE = 1 << _SHIFT
# The room is ray-cast at 1/_BG_STEP resolution and upscaled: a soft background costs 1/4 the time.
_BG_STEP = 2
_TILE = 0.5  # floor checker tile, metres
_CEILING = 4.0  # metres
_NEAR = 0.05  # capsules closer than this to a camera are not drawn, metres

# Clothes (BGR): shirt, trousers, skin. A renderer picks one of each from its seed.
_SHIRTS = ((170, 90, 40), (60, 60, 170), (60, 140, 60), (150, 150, 150), (40, 40, 40), (30, 120, 200))
_TROUSERS = ((90, 60, 40), (50, 50, 50), (120, 110, 100), (40, 40, 90))
_SKIN = ((120, 160, 210), (90, 130, 180), (60, 90, 130), (150, 185, 225))
_PART_CLOTH = {"torso": 0, "left_arm": 0, "right_arm": 0, "left_leg": 1, "right_leg": 1, "head": 2}
# Shading layers of a capsule: (radius fraction, brightness, highlight offset toward image-up).
_LAYERS = ((1.0, 0.55, 0.0), (0.8, 0.8, 0.1), (0.45, 1.0, 0.25))


def _pixel_rays(rig: CameraRig, c: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre ``(3,)`` and world ray directions ``(ceil(H/step), ceil(W/step), 3)``.

    Samples sit at the centres of ``step x step`` pixel blocks, so ``cv2.resize`` by ``step`` puts
    them back on the right pixels.
    """
    cam = rig[c]
    W, H = cam.image_size
    gw, gh = -(-W // step), -(-H // step)
    u = np.arange(gw) * step + (step - 1) / 2
    v = np.arange(gh) * step + (step - 1) / 2
    uv = np.stack(np.meshgrid(u, v), -1).reshape(-1, 1, 2)
    xy = cv2.undistortPoints(uv, cam.K, cam.dist).reshape(gh, gw, 2)
    d = np.concatenate([xy, np.ones((gh, gw, 1))], -1) @ cam.R  # rows: R^T [x y 1]
    return cam.center, d


def studio_background(rig: CameraRig, c: int, seed: int = 0, room_half: float | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR view of the empty studio from camera ``c``: checker floor, panelled walls.

    The room is a box around the origin, ``room_half`` metres (default: 1.5 m beyond the farthest
    camera) each side, ``4 m`` high. Deterministic given ``seed``.
    """
    rng = np.random.default_rng(seed)
    tile_tone = rng.uniform(-12, 12, (64, 64))
    panel_tone = rng.uniform(-18, 18, (64, 64))
    wall_colors = rng.uniform(120, 200, (4, 3)) * np.array([0.95, 1.0, 1.05])
    if room_half is None:
        room_half = float(np.abs(rig.centers[:, :2]).max()) + 1.5
    o, d = _pixel_rays(rig, c, _BG_STEP)
    gh, gw = d.shape[:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[..., 2] < 0, -o[2] / d[..., 2], np.inf)
        t_ceil = np.where(d[..., 2] > 0, (_CEILING - o[2]) / d[..., 2], np.inf)
        t_x = np.where(d[..., 0] != 0, (np.sign(d[..., 0]) * room_half - o[0]) / d[..., 0], np.inf)
        t_y = np.where(d[..., 1] != 0, (np.sign(d[..., 1]) * room_half - o[1]) / d[..., 1], np.inf)
    ts = np.stack([t_floor, t_ceil, t_x, t_y])
    ts[~(ts > 0)] = np.inf
    surface = ts.argmin(0)
    t = ts.min(0)
    t = np.where(np.isfinite(t), t, 50.0)
    p = o + d * t[..., None]
    img = np.empty((gh, gw, 3), dtype=np.float64)

    # Floor: checker with per-tile tone and thin grid lines.
    ix, iy = np.floor(p[..., 0] / _TILE).astype(np.int64), np.floor(p[..., 1] / _TILE).astype(np.int64)
    checker = np.where((ix + iy) % 2 == 0, 150.0, 105.0) + tile_tone[ix % 64, iy % 64]
    fx, fy = p[..., 0] / _TILE - ix, p[..., 1] / _TILE - iy
    line = (np.minimum(fx, 1 - fx) < 0.02) | (np.minimum(fy, 1 - fy) < 0.02)
    floor = np.where(line, 60.0, checker)[..., None] * np.array([0.95, 1.0, 1.0])

    # Walls: staggered panels, one base colour per wall.
    along = np.where(surface == 2, p[..., 1], p[..., 0])
    row = np.floor(p[..., 2] / 0.6).astype(np.int64)
    col = np.floor(along / 1.2 + 0.5 * (row % 2)).astype(np.int64)
    wall_id = np.where(surface == 2, (p[..., 0] > 0).astype(np.int64), 2 + (p[..., 1] > 0))
    seam = (np.abs(p[..., 2] / 0.6 - np.round(p[..., 2] / 0.6)) < 0.015) | (
        np.abs(along / 1.2 + 0.5 * (row % 2) - np.round(along / 1.2 + 0.5 * (row % 2))) < 0.008
    )
    wall = wall_colors[wall_id] + panel_tone[row % 64, col % 64][..., None]
    wall = np.where(seam[..., None], wall * 0.6, wall)

    img[:] = 215.0  # ceiling
    img = np.where((surface == 0)[..., None], floor, img)
    img = np.where(((surface == 2) | (surface == 3))[..., None], wall, img)
    # Light falls off with distance; sensor noise is fixed per camera (a real background is static too).
    img *= np.clip(1.1 - 0.025 * t, 0.55, 1.0)[..., None]
    img += rng.normal(0.0, 3.0, img.shape)
    small = np.clip(img, 0, 255).astype(np.uint8)
    W, H = rig[c].image_size
    full = cv2.resize(small, (gw * _BG_STEP, gh * _BG_STEP), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(full[:H, :W])


def _resolve_backgrounds(rig: CameraRig, background: BackgroundLike, seed: int) -> list[np.ndarray]:
    sizes = [(int(h), int(w)) for w, h in rig.image_size]
    if isinstance(background, str):
        if background == "studio":
            return [studio_background(rig, c, seed) for c in range(len(rig))]
        if background == "plain":
            return [np.full((h, w, 3), 128, np.uint8) for h, w in sizes]
        raise ValueError(f"unknown background {background!r}; use 'studio', 'plain' or images")
    images = [background] * len(rig) if isinstance(background, np.ndarray) else list(background)
    if len(images) != len(rig):
        raise ValueError(f"need one background per camera ({len(rig)}), got {len(images)}")
    out = []
    for (h, w), img in zip(sizes, images, strict=True):
        img = np.asarray(img, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"background images must be H x W x 3 BGR uint8, got shape {img.shape}")
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(img))
    return out


class Renderer:
    """Renders a performer into every camera of a rig; backgrounds are built once and cached.

    Args:
        rig: the cameras (image sizes come from it).
        background: ``"studio"`` (ray-cast room), ``"plain"`` (grey), one BGR image for all
            cameras or one per camera (resized to fit).
        seed: chooses clothes and the room's texture.
        skeleton: joint layout (H36M-17).
        capsules: body model (default :func:`~crosspose.studio.scene.body_capsules`).
    """

    def __init__(
        self,
        rig: CameraRig,
        background: BackgroundLike = "studio",
        *,
        seed: int = 0,
        skeleton: Skeleton = H36M17,
        capsules: tuple[Capsule, ...] | None = None,
    ) -> None:
        self.rig = rig
        self.skeleton = skeleton
        self.capsules = capsules if capsules is not None else body_capsules(skeleton)
        self.backgrounds = _resolve_backgrounds(rig, background, seed)
        for b in self.backgrounds:
            b.setflags(write=False)
        rng = np.random.default_rng(seed)
        cloth = np.array(
            [
                _SHIRTS[int(rng.integers(len(_SHIRTS)))],
                _TROUSERS[int(rng.integers(len(_TROUSERS)))],
                _SKIN[int(rng.integers(len(_SKIN)))],
            ],
            dtype=np.float64,
        )
        colors = []
        for cap in self.capsules:
            name = skeleton.joints[cap.b]
            part = 2 if name.endswith("wrist") else _PART_CLOTH[cap.part]  # forearms bare
            colors.append(cloth[part])
        self._colors = np.array(colors)  # (K, 3) BGR
        self._a = np.array([c.a for c in self.capsules])
        self._b = np.array([c.b for c in self.capsules])
        self._radius = np.array([c.radius for c in self.capsules])

    def render(self, joints3d: np.ndarray) -> list[np.ndarray]:
        """``(J, 3)`` world joints (m) → one ``(H, W, 3)`` uint8 BGR image per camera."""
        joints3d = np.asarray(joints3d, dtype=np.float64)
        if joints3d.shape != (self.skeleton.num_joints, 3):
            raise ValueError(
                f"joints3d must have shape ({self.skeleton.num_joints}, 3), got {joints3d.shape}"
            )
        uv = np.swapaxes(np.asarray(self.rig.project(joints3d)), 0, 1)  # (C, J, 2)
        depth = np.einsum("cij,kj->cki", self.rig.R, joints3d)[..., 2] + self.rig.t[:, None, 2]  # (C, J)
        return [self._draw(c, uv[c], depth[c]) for c in range(len(self.rig))]

    def _draw(self, c: int, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        img = self.backgrounds[c].copy()
        f = float(self.rig.K[c, 0, 0])
        za, zb = depth[self._a], depth[self._b]
        a, b = uv[self._a], uv[self._b]  # (K, 2)
        ok = (za > _NEAR) & (zb > _NEAR) & np.isfinite(a).all(1) & np.isfinite(b).all(1)
        if not ok.any():
            return img
        keep = np.flatnonzero(ok)
        keep = keep[np.argsort(-(za[keep] + zb[keep]), kind="stable")]  # far first: painter's algorithm
        a, b, za, zb = a[keep], b[keep], za[keep], zb[keep]
        ra, rb = f * self._radius[keep] / za, f * self._radius[keep] / zb
        # Nearer parts brighter: a cue for depth order where capsules overlap.
        mid = 0.5 * (za + zb)
        tone = np.clip(1.0 + 0.5 * (np.median(mid) - mid), 0.7, 1.25)
        axis = b - a
        length = np.hypot(axis[:, 0], axis[:, 1])
        normal = np.where(
            (length > 1e-6)[:, None],
            np.stack([-axis[:, 1], axis[:, 0]], 1) / np.maximum(length, 1e-6)[:, None],
            np.array([1.0, 0.0]),
        )
        frac, bright, lift = (np.array(v)[None, :] for v in zip(*_LAYERS, strict=True))  # (1, L)
        up = np.zeros((len(keep), len(_LAYERS), 2))
        up[..., 1] = -lift * 0.5 * (ra + rb)[:, None]
        pa, pb = a[:, None] + up, b[:, None] + up  # (K, L, 2)
        qa, qb = frac * ra[:, None], frac * rb[:, None]  # (K, L)
        n = normal[:, None]
        quads = np.stack(
            [pa + n * qa[..., None], pb + n * qb[..., None], pb - n * qb[..., None], pa - n * qa[..., None]],
            2,
        )  # (K, L, 4, 2)
        colors = np.clip(self._colors[keep][:, None] * (bright * tone[:, None])[..., None], 0, 255)
        quads_i = np.round(quads * _ONE).astype(np.int32)
        ends = np.round(np.stack([pa, pb], 2) * _ONE).astype(np.int64).tolist()  # (K, L, 2, 2)
        radii = np.round(np.stack([qa, qb], 2) * _ONE).astype(np.int64).tolist()  # (K, L, 2)
        color_list = colors.tolist()
        for k in range(len(keep)):
            for layer in range(len(_LAYERS)):
                color = color_list[k][layer]
                cv2.fillConvexPoly(img, quads_i[k, layer], color, cv2.LINE_AA, _SHIFT)
                for end in range(2):
                    cv2.circle(img, ends[k][layer][end], radii[k][layer][end], color, -1, cv2.LINE_AA, _SHIFT)
        return img


def render_views(
    rig: CameraRig, joints3d: np.ndarray, background: BackgroundLike = "studio", *, seed: int = 0
) -> list[np.ndarray]:
    """One-off render of ``(J, 3)`` joints into every camera (use :class:`Renderer` for sequences)."""
    return Renderer(rig, background, seed=seed).render(joints3d)


def render_to_video(
    scene: Scene,
    path: str | PathLike[str],
    fps: float | None = None,
    *,
    renderer: Renderer | None = None,
    background: BackgroundLike = "studio",
    seed: int = 0,
    fourcc: str = "mp4v",
) -> list[Path]:
    """Write one video per camera, ``<path>/<camera name>.mp4``, of the scene's performer.

    Args:
        scene: the ground truth to render (its rig and ``joints3d``).
        path: output directory (created).
        fps: frame rate (default: the scene's).
    Returns:
        The written files, in rig order.
    """
    out_dir = Path(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = renderer or Renderer(scene.rig, background, seed=seed, skeleton=scene.skeleton)
    rate = float(fps if fps is not None else scene.fps)
    files = [out_dir / f"{name}.mp4" for name in scene.rig.names]
    writers = []
    try:
        for file, (w, h) in zip(files, scene.rig.image_size, strict=True):
            writer = cv2.VideoWriter(str(file), cv2.VideoWriter.fourcc(*fourcc), rate, (int(w), int(h)))
            if not writer.isOpened():
                raise RuntimeError(
                    f"OpenCV cannot write {file} with codec {fourcc!r}; try fourcc='MJPG' and .avi"
                )
            writers.append(writer)
        for joints in scene.joints3d:
            for writer, image in zip(writers, renderer.render(joints), strict=True):
                writer.write(image)
    finally:
        for writer in writers:
            writer.release()
    return files
