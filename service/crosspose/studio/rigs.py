"""Camera rigs for the synthetic studio: seeded random rigs around the capture volume, and real ones.

World frame (DESIGN §4): metres, Z up, floor at ``z = 0``, capture volume centred on the origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from os import PathLike

import numpy as np

from crosspose.geometry import Camera, CameraRig, look_at

# Sensor formats seen in studios: webcams, HD/Full-HD machine-vision and phones held upright.
IMAGE_SIZES: tuple[tuple[int, int], ...] = (
    (640, 480),
    (1280, 720),
    (1280, 1024),
    (1920, 1080),
    (1088, 1920),
    (1080, 1920),
)

# Points that must be in view: a cylinder around the origin, sampled on its rims and middle.
_VOLUME_AZIMUTHS = 24
_VOLUME_HEIGHT_FRACTIONS = (0.0, 0.5, 1.0)
# Fraction of the image kept free at each border when fitting the volume into view.
_BORDER = 0.03
# Each retry moves the camera this much further away from the centre.
_STEP_BACK = 1.06
_MAX_RETRIES = 60


def volume_points(volume_radius: float, volume_height: float) -> np.ndarray:
    """``(P, 3)`` points on the capture cylinder (rims and mid-height ring) plus its axis."""
    az = np.linspace(0.0, 2 * np.pi, _VOLUME_AZIMUTHS, endpoint=False)
    rings = [
        np.stack(
            [volume_radius * np.cos(az), volume_radius * np.sin(az), np.full_like(az, f * volume_height)], 1
        )
        for f in _VOLUME_HEIGHT_FRACTIONS
    ]
    axis = np.array([[0.0, 0.0, f * volume_height] for f in _VOLUME_HEIGHT_FRACTIONS])
    return np.concatenate([*rings, axis])


def _in_view(camera: Camera, points: np.ndarray, border: float) -> bool:
    uv = np.asarray(camera.project(points))
    w, h = camera.image_size
    lo = np.array([border * w, border * h])
    hi = np.array([(1 - border) * w - 1, (1 - border) * h - 1])
    # Pinhole check too: strong radial terms can fold far-away points back into the image.
    xc = points @ camera.R.T + camera.t
    pin = xc[:, :2] / xc[:, 2:3] * np.diag(camera.K)[:2] + camera.K[:2, 2]
    ok = np.isfinite(uv).all() and (xc[:, 2] > 0.1).all()
    return bool(ok and (uv >= lo).all() and (uv <= hi).all() and (pin >= lo).all() and (pin <= hi).all())


def random_rig(
    seed: int | np.random.Generator,
    num_cameras: int = 4,
    volume_radius: float = 1.5,
    *,
    volume_height: float = 2.2,
    target_height: float = 1.0,
    height_range: tuple[float, float] = (0.8, 2.8),
    distance_range: tuple[float, float] = (3.0, 7.0),
    fov_range_deg: tuple[float, float] = (45.0, 75.0),
    image_sizes: Sequence[tuple[int, int]] = IMAGE_SIZES,
    azimuth_jitter: float = 0.35,
    distortion: float = 1.0,
) -> CameraRig:
    """A seeded random studio rig: ``num_cameras`` cameras around the capture volume, all aimed at it.

    Cameras sit at roughly even azimuths (each jittered by ``azimuth_jitter`` of the even spacing),
    random heights in ``height_range`` and horizontal distances from the volume axis in
    ``distance_range``; each looks at the volume centre ``(0, 0, target_height)`` (±5 cm jitter).
    The field of view across the image's longer side is drawn from ``fov_range_deg``; the image
    size from ``image_sizes``; principal point near the centre; mild radial/tangential distortion
    scaled by ``distortion`` (0 disables it).

    Guarantee: the whole cylinder of radius ``volume_radius`` and height ``volume_height`` (m)
    around the origin projects inside every image (3 % border). A camera that would not see it is
    moved further back along its own azimuth until it does, so a distance may exceed
    ``distance_range`` for wide volumes or narrow lenses. Names are ``cam1 … camN`` in order.

    Args:
        seed: integer seed or a numpy ``Generator``.
        num_cameras: ``C``, 2 to 12.
    Returns:
        A :class:`~crosspose.geometry.CameraRig` with ``C`` cameras.
    """
    if not 2 <= num_cameras <= 12:
        raise ValueError(f"num_cameras must be between 2 and 12, got {num_cameras}")
    if volume_radius <= 0 or volume_height <= 0:
        raise ValueError("volume_radius and volume_height must be positive (metres)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    must_see = volume_points(volume_radius, volume_height)
    spacing = 2 * np.pi / num_cameras
    start = rng.uniform(0, 2 * np.pi)
    cameras = []
    for i in range(num_cameras):
        azimuth = start + i * spacing + rng.uniform(-azimuth_jitter, azimuth_jitter) * spacing
        height = rng.uniform(*height_range)
        distance = rng.uniform(*distance_range)
        fov = math.radians(rng.uniform(*fov_range_deg))
        w, h = image_sizes[int(rng.integers(len(image_sizes)))]
        f = 0.5 * max(w, h) / math.tan(0.5 * fov)
        aspect = 1.0 + rng.uniform(-0.003, 0.003)
        cx = (w - 1) / 2 + rng.uniform(-0.02, 0.02) * w
        cy = (h - 1) / 2 + rng.uniform(-0.02, 0.02) * h
        K = np.array([[f, 0.0, cx], [0.0, f * aspect, cy], [0.0, 0.0, 1.0]])
        dist = distortion * np.array(
            [
                rng.uniform(-0.12, 0.04),
                rng.uniform(-0.03, 0.03),
                rng.uniform(-5e-4, 5e-4),
                rng.uniform(-5e-4, 5e-4),
                0.0,
            ]
        )
        target = np.array([*rng.uniform(-0.05, 0.05, 2), target_height + rng.uniform(-0.05, 0.05)])
        direction = np.array([math.cos(azimuth), math.sin(azimuth)])
        camera = None
        for _ in range(_MAX_RETRIES):
            eye = np.array([*(distance * direction), height])
            R, t = (np.asarray(a) for a in look_at(eye, target))
            camera = Camera(name=f"cam{i + 1}", K=K, dist=dist, R=R, t=t, image_size=(w, h))
            if _in_view(camera, must_see, _BORDER):
                break
            distance *= _STEP_BACK
        else:
            raise ValueError(
                f"cam{i + 1}: could not fit a capture volume of radius {volume_radius} m into view; "
                "use a smaller volume_radius or a wider fov_range_deg"
            )
        assert camera is not None
        cameras.append(camera)
    return CameraRig(
        cameras,
        metadata={
            "source": "crosspose.studio.random_rig",
            "volume_radius": volume_radius,
            "volume_height": volume_height,
        },
    )


def load_real_rig(path: str | PathLike[str] | bytes, format: str | None = None) -> CameraRig:
    """Load a real studio's calibration (any format :func:`crosspose.calibration.load_rig` reads)."""
    from crosspose.calibration import load_rig

    return load_rig(path, format=format)
