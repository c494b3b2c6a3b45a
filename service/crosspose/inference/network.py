"""What every inference runtime shares: the calls a network and a detector model answer, the record of what
really runs them (:class:`RuntimeInfo`), and the network's input checks and conversions.

The runtimes themselves (ONNX Runtime, eager torch) are modules of :mod:`crosspose.inference.runtimes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crosspose.skeleton import H36M17

NUM_JOINTS = H36M17.num_joints


class DeviceUnavailableError(RuntimeError):
    """The requested device cannot run here (no GPU, missing GPU libraries, a CPU-only build)."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What really runs a network or a detector, read back from the runtime once the model is open.

    Attributes:
        runtime: the registry name (``"onnxruntime"``, ``"torch"``).
        device: in the runtime's own words: ONNX Runtime's execution provider (``"CPUExecutionProvider"``),
            torch's device (``"cpu"``, ``"cuda"``).
        precision: the arithmetic the model runs in (``"f32"``).
    """

    runtime: str
    device: str
    precision: str = "f32"

    @property
    def provider(self) -> str:
        """The name the inference heartbeat's ``provider`` has always carried (API, /ready, metrics, viewer):
        ONNX Runtime's execution provider, other runtimes by name (their device is beside it)."""
        return self.device if self.runtime == "onnxruntime" else self.runtime


class HeatmapNetwork(Protocol):
    """The fusion network as a runtime opens it: one call a frame set, and what runs it."""

    info: RuntimeInfo

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of one frame set.

        Args:
            crops: ``(C, 256, 256, 3)`` RGB in [0, 1], ``C ≥ 2``; projections: ``(C, 3, 4)`` world metres →
                heatmap pixels; valid: ``(C,)`` bool (or 0/1); prior: ``(17, 3)`` the previous pose,
                metres, NaN where unknown, or ``(3,)`` a root alone; window_scale: ``≥ 1``, wider
                fusion windows for an older prior.
        Returns:
            ``{"heatmaps": (C, 17, 64, 64), "fused": (C, 17, 64, 64), "presence": (C,)}`` float32.
        """
        ...


class DetectorModel(Protocol):
    """BlazePose's person detector as a runtime opens it (decoded by
    :class:`~crosspose.inference.detector.PersonDetector`)."""

    info: RuntimeInfo

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 224, 224, 3)`` float32 RGB in [-1, 1] → raw ``boxes (N, 2254, 12)``, ``scores (N, 2254)``
        float64."""
        ...


def check_inputs(crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray) -> None:
    """ValueError naming the input whose shape is wrong (or a camera count below 2)."""
    c = crops.shape[0] if crops.ndim == 4 else -1
    if (crops.shape[1:] != (256, 256, 3) or projections.shape != (c, 3, 4) or valid.shape != (c,)
            or prior.shape not in ((NUM_JOINTS, 3), (3,))):
        raise ValueError(f"expected crops (C, 256, 256, 3), projections (C, 3, 4), valid (C,), prior "
                         f"({NUM_JOINTS}, 3) or a root (3,); got {crops.shape}, {projections.shape}, "
                         f"{valid.shape}, {prior.shape}")
    if c < 2:
        # The graph's cross-view gather has no "other view" at C = 1 and fails inside ONNX Runtime.
        raise ValueError(f"the network needs C >= 2 views (mark a missing one valid=False), got {c}")


def as_prior(prior: np.ndarray) -> np.ndarray:
    """``(17, 3)`` float32: a prior as given, or a root ``(3,)`` as the pelvis row of an unknown pose."""
    if prior.shape == (3,):
        rows = np.full((NUM_JOINTS, 3), np.nan, np.float32)
        rows[H36M17.root] = prior
        return rows
    return np.asarray(prior, dtype=np.float32)


def as_root(prior: np.ndarray) -> np.ndarray:
    """``(3,)`` float32: the pelvis row of a prior (zeros when unknown), or a root as given."""
    root = np.asarray(prior if prior.shape == (3,) else prior[H36M17.root], dtype=np.float32)
    return np.where(np.isfinite(root), root, 0.0).astype(np.float32)


def as_scale(window_scale: float | np.ndarray) -> float:
    """A window scale (a number or a one-element array) as a float, never below 1 (the trained window)."""
    return max(float(np.asarray(window_scale, dtype=np.float64).item()), 1.0)


def warmup_inputs(num_cameras: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Blank but finite inputs for ``num_cameras`` views: a run on them pays allocation and kernel set-up
    before the first real frame set."""
    crops = np.zeros((num_cameras, 256, 256, 3), np.float32)
    projections = np.tile(np.eye(3, 4, dtype=np.float32), (num_cameras, 1, 1))
    projections[:, 2, 3] = 3.0  # a finite camera 3 m from the origin
    return crops, projections, np.ones(num_cameras, bool), np.zeros((NUM_JOINTS, 3), np.float32)
