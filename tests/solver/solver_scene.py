"""Small, exact synthetic scenes for the solver tests: a posed H36M-17 skeleton, cameras aimed at it,
and Gaussian heatmaps with controlled error modes (each error placed exactly where a test wants it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosspose.geometry import look_at
from crosspose.skeleton import H36M17

# Direction of each bone (parent → joint) in a relaxed standing pose, subject facing +y, right = -x.
_DIRECTIONS = {
    "r_hip": (-1, 0, 0), "r_knee": (0, 0, -1), "r_ankle": (0, 0, -1),
    "l_hip": (1, 0, 0), "l_knee": (0, 0, -1), "l_ankle": (0, 0, -1),
    "spine": (0, 0, 1), "thorax": (0, 0, 1), "neck": (0, 0.1, 1), "head": (0, 0.2, 1),
    "l_shoulder": (1, 0, 0), "l_elbow": (0.3, 0.1, -1), "l_wrist": (0.1, 0.8, -0.4),
    "r_shoulder": (-1, 0, 0), "r_elbow": (-0.3, 0.1, -1), "r_wrist": (-0.1, 0.8, -0.4),
}


def random_pose(seed: int, scale: float = 1.0, spread: float = 0.35) -> np.ndarray:
    """``(17, 3)`` metres: a standing pose with randomly bent limbs, random yaw and floor position."""
    rng = np.random.default_rng(seed)
    sk = H36M17
    joints = np.zeros((sk.num_joints, 3))
    joints[0] = [*rng.uniform(-0.5, 0.5, 2), 0.95 * scale]
    for child, parent in enumerate(sk.parents):
        if parent < 0:
            continue
        d = np.array(_DIRECTIONS[sk.joints[child]], dtype=float)
        if sk.joints[child] not in ("r_hip", "l_hip", "l_shoulder", "r_shoulder"):
            d = d / np.linalg.norm(d) + rng.normal(0, spread, 3)
        joints[child] = joints[parent] + scale * sk.template_lengths[child] * d / np.linalg.norm(d)
    yaw = rng.uniform(0, 2 * np.pi)
    Rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    centre = joints[0] * [1, 1, 0]
    return (joints - centre) @ Rz.T + centre


def ring_projections(num_cameras: int = 4, distance: float = 4.5, size: int = 64, fov_deg: float = 55.0,
                     seed: int = 0) -> np.ndarray:
    """``(C, 3, 4)`` world → heatmap pixels for cameras on a ring, aimed at ``(0, 0, 1)``."""
    rng = np.random.default_rng(seed)
    f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    out = []
    for c in range(num_cameras):
        a = 2 * np.pi * c / num_cameras + rng.uniform(-0.2, 0.2)
        eye = np.array([distance * np.cos(a), distance * np.sin(a), rng.uniform(1.2, 2.5)])
        R, t = look_at(eye, np.array([0.0, 0.0, 1.0]))
        out.append(K @ np.concatenate([np.asarray(R), np.asarray(t)[:, None]], 1))
    return np.stack(out)


def project(joints: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """``(J, 3)`` → ``(C, J, 2)``."""
    X = np.concatenate([joints, np.ones((len(joints), 1))], 1)
    uvw = np.einsum("cij,kj->cki", projections, X)
    return uvw[..., :2] / uvw[..., 2:3]


@dataclass
class Scene:
    joints: np.ndarray  # (J, 3)
    projections: np.ndarray  # (C, 3, 4)
    heatmaps: np.ndarray  # (C, J, h, w) float32


def render(peaks: np.ndarray, size: int = 64, sigma: float = 2.0, amplitude: np.ndarray | None = None
           ) -> np.ndarray:
    """Gaussians at ``peaks (C, J, 2)`` (NaN: nothing) → ``(C, J, size, size)``."""
    r = np.arange(size, dtype=np.float64)
    amp = np.ones(peaks.shape[:2]) if amplitude is None else amplitude
    amp = np.where(np.isfinite(peaks).all(-1), amp, 0.0)
    p = np.nan_to_num(peaks, nan=-1e3)
    gx = np.exp(-((r - p[..., 0:1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((r - p[..., 1:2]) ** 2) / (2 * sigma**2))
    return (amp[..., None, None] * gy[..., :, None] * gx[..., None, :]).astype(np.float32)


def make_scene(seed: int = 0, num_cameras: int = 4, size: int = 64, jitter: float = 0.0, noise: float = 0.0,
               scale: float = 1.0) -> Scene:
    """A posed skeleton seen by a ring of cameras; perfect heatmaps unless ``jitter`` (px) or ``noise``."""
    rng = np.random.default_rng(seed + 1000)
    joints = random_pose(seed, scale)
    P = ring_projections(num_cameras, size=size, seed=seed)
    peaks = project(joints, P) + rng.normal(0, jitter, (num_cameras, len(joints), 2)) if jitter else project(
        joints, P)
    hm = render(peaks, size)
    if noise:
        hm = np.clip(hm + rng.normal(0, noise, hm.shape), 0, None).astype(np.float32)
    return Scene(joints, P, hm)
