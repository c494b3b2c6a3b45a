"""Synthetic rigs shared by the geometry tests: cameras on a ring looking at a capture volume."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from crosspose.geometry import CameraRig, look_at

# Strong barrel distortion with a fold: the model is one-to-one only inside radius ~0.92 (normalized).
STRONG_DIST = np.array([-0.4, 0.2, 0.001, -0.002, -0.05])
# Strong but invertible over a whole 1920x1080 image at f = 1000 (g(r) is monotonic everywhere).
STRONG_MONOTONIC_DIST = np.array([-0.4, 0.2, 0.0008, -0.0006, 0.0])

RigFactory = Callable[..., CameraRig]


def random_dist(rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "none":
        return np.zeros(5)
    if kind == "strong":
        return STRONG_DIST.copy()
    if kind == "strong_monotonic":
        return STRONG_MONOTONIC_DIST.copy()
    # mild, typical of machine-vision lenses
    return np.array([rng.uniform(-0.3, 0.1), rng.uniform(-0.05, 0.1), *rng.uniform(-1e-3, 1e-3, 2), 0.0])


def _make_rig(
    rng: np.random.Generator,
    n_cameras: int = 4,
    distortion: str = "mild",
    names: Sequence[str] | None = None,
) -> CameraRig:
    """Cameras 3–5 m from the origin at 1–3 m height, looking at a point near (0, 0, 1)."""
    names = list(names) if names is not None else [f"cam{i}" for i in range(n_cameras)]
    Ks, dists, Rs, ts = [], [], [], []
    for i in range(len(names)):
        angle = 2 * np.pi * i / len(names) + rng.uniform(-0.3, 0.3)
        radius = rng.uniform(3.0, 5.0)
        eye = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1.0, 3.0)])
        R, t = look_at(eye, np.array([*rng.uniform(-0.3, 0.3, 2), rng.uniform(0.7, 1.3)]))
        f = rng.uniform(900.0, 1400.0)
        fy, cx, cy = f * rng.uniform(0.98, 1.02), rng.uniform(940, 980), rng.uniform(520, 560)
        K = np.array([[f, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        Ks.append(K)
        dists.append(random_dist(rng, distortion))
        Rs.append(R)
        ts.append(t)
    return CameraRig.from_arrays(names, np.stack(Ks), np.stack(dists), np.stack(Rs), np.stack(ts),
                                 np.tile([1920, 1080], (len(names), 1)))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20191027)


@pytest.fixture
def make_rig() -> RigFactory:
    return _make_rig


def _points_in_volume(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """``(*shape, 3)`` points in a 2 m x 2 m x 2 m capture volume standing on the floor (z from 0 to 2)."""
    return np.stack(
        [rng.uniform(-1, 1, shape), rng.uniform(-1, 1, shape), rng.uniform(0.0, 2.0, shape)], axis=-1
    )


@pytest.fixture
def make_points() -> Callable[..., np.ndarray]:
    return _points_in_volume
