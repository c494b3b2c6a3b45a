"""What every inference runtime shares: the calls a network and a detector model answer, the record of what
really runs them (:class:`RuntimeInfo`), and the network's input checks and conversions.

The runtimes themselves (ONNX Runtime, OpenVINO, eager torch) are modules of
:mod:`crosspose.inference.runtimes`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from crosspose.skeleton import H36M17, Skeleton, get_skeleton


class DeviceUnavailableError(RuntimeError):
    """The requested device cannot run here (no GPU, missing GPU libraries, a CPU-only build)."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What really runs a network or a detector, read back from the runtime once the model is open.

    Attributes:
        runtime: the registry name (``"onnxruntime"``, ``"openvino"``, ``"torch"``).
        device: in the runtime's own words: ONNX Runtime's execution provider (``"CPUExecutionProvider"``),
            OpenVINO's device (``"CPU"``), torch's device (``"cpu"``, ``"cuda"``).
        precision: the arithmetic the model was compiled in, read back from the runtime: ``"f32"`` or
            ``"bf16"`` for the whole model, or ``"bf16 backbone, f32 fusion"`` where the network's two
            parts run in different ones.
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
    """The fusion network as a runtime opens it: one call a frame set, the joint layout its heatmaps are
    in (the exported file declares it), and what runs it."""

    info: RuntimeInfo
    skeleton: Skeleton

    def prepare(self, num_cameras: int) -> None:
        """Be ready for frame sets of ``num_cameras`` views (a runtime with static shapes compiles for it,
        once per count; the others have nothing to do)."""
        ...

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of one frame set for one performer.

        Args:
            crops: ``(C, 256, 256, 3)`` RGB in [0, 1], ``C ≥ 2``; projections: ``(C, 3, 4)`` world metres →
                heatmap pixels; valid: ``(C,)`` bool (or 0/1); prior: ``(J, 3)`` the previous pose in the
                network's layout, metres, NaN where unknown, or ``(3,)`` a root alone; window_scale:
                ``≥ 1``, wider fusion windows for an older prior.
        Returns:
            ``{"heatmaps": (C, J, 64, 64), "fused": (C, J, 64, 64), "presence": (C,)}`` float32.
        """
        ...


class DetectorModel(Protocol):
    """BlazePose's person detector as a runtime opens it (decoded by
    :class:`~crosspose.inference.detector.PersonDetector`)."""

    info: RuntimeInfo

    def prepare(self, num_cameras: int) -> None:
        """Be ready for a batch of ``num_cameras`` images, a cold start's (a runtime with static shapes
        compiles for it, once per size; the others have nothing to do)."""
        ...

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 224, 224, 3)`` float32 RGB in [-1, 1] → raw ``boxes (N, 2254, 12)``, ``scores (N, 2254)``
        float64."""
        ...


def declared_skeleton(path: Path, metadata: dict[str, str]) -> Skeleton:
    """The joint layout an exported network declares in its metadata (``skeleton``: the layout's name,
    ``joints``: its joint names, comma-separated); H36M-17 for a file exported before it declared one.

    Raises:
        ValueError: an unknown layout, or joints that are not the named layout's (in its order).
    """
    name = metadata.get("skeleton")
    if name is None:
        return H36M17
    try:
        skeleton = get_skeleton(name)
    except KeyError:
        raise ValueError(f"{path} gives heatmaps in the joint layout {name!r}, which this version of "
                         "crosspose does not know; export it again with `crosspose model export`") from None
    joints = metadata.get("joints")
    if joints is not None and tuple(joints.split(",")) != skeleton.joints:
        raise ValueError(f"{path} declares the joints {joints} for layout {name!r}, which has "
                         f"{','.join(skeleton.joints)}; export it again with `crosspose model export`")
    return skeleton


def check_inputs(crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
                 skeleton: Skeleton = H36M17) -> None:
    """ValueError naming the input whose shape is wrong (or a camera count below 2), for one performer."""
    c = crops.shape[0] if crops.ndim == 4 else -1
    j = skeleton.num_joints
    if (crops.shape[1:] != (256, 256, 3) or projections.shape != (c, 3, 4) or valid.shape != (c,)
            or prior.shape not in ((j, 3), (3,))):
        raise ValueError(f"expected crops (C, 256, 256, 3), projections (C, 3, 4), valid (C,), prior "
                         f"({j}, 3) ({skeleton.name}) or a root (3,); got {crops.shape}, "
                         f"{projections.shape}, {valid.shape}, {prior.shape}")
    if c < 2:
        # The graph's cross-view gather has no "other view" at C = 1 and fails inside ONNX Runtime.
        raise ValueError(f"the network needs C >= 2 views (mark a missing one valid=False), got {c}")


def check_persons(crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
                  window_scale: np.ndarray, skeleton: Skeleton = H36M17) -> None:
    """:func:`check_inputs` for ``P`` performers at once (every input with a leading person axis)."""
    p = crops.shape[0] if crops.ndim == 5 else -1
    if (p < 1 or projections.shape[:1] != (p,) or valid.shape[:1] != (p,) or prior.shape[:1] != (p,)
            or np.shape(window_scale) != (p,)):
        raise ValueError(f"expected a person axis P >= 1 first on every input: crops (P, C, 256, 256, 3), "
                         f"projections (P, C, 3, 4), valid (P, C), prior (P, J, 3), window_scale (P,); got "
                         f"{crops.shape}, {projections.shape}, {valid.shape}, {prior.shape}, "
                         f"{np.shape(window_scale)}")
    for i in range(p):
        check_inputs(crops[i], projections[i], valid[i], prior[i], skeleton)


def as_prior(prior: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """``(J, 3)`` float32: a prior as given, or a root ``(3,)`` as the root row of an unknown pose."""
    if prior.shape == (3,):
        rows = np.full((skeleton.num_joints, 3), np.nan, np.float32)
        rows[skeleton.root] = prior
        return rows
    return np.asarray(prior, dtype=np.float32)


def as_root(prior: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """``(3,)`` float32: the root row of a prior (zeros when unknown), or a root as given."""
    root = np.asarray(prior if prior.shape == (3,) else prior[skeleton.root], dtype=np.float32)
    return np.where(np.isfinite(root), root, 0.0).astype(np.float32)


def as_scale(window_scale: float | np.ndarray) -> float:
    """A window scale (a number or a one-element array) as a float, never below 1 (the trained window)."""
    return max(float(np.asarray(window_scale, dtype=np.float64).item()), 1.0)


def warmup_inputs(num_cameras: int, skeleton: Skeleton = H36M17
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Blank but finite inputs for ``num_cameras`` views: a run on them pays allocation and kernel set-up
    before the first real frame set."""
    crops = np.zeros((num_cameras, 256, 256, 3), np.float32)
    projections = np.tile(np.eye(3, 4, dtype=np.float32), (num_cameras, 1, 1))
    projections[:, 2, 3] = 3.0  # a finite camera 3 m from the origin
    return crops, projections, np.ones(num_cameras, bool), np.zeros((skeleton.num_joints, 3), np.float32)


class PersonsNetwork(ABC):
    """What the runtimes share: :meth:`run` (one performer) as :meth:`run_persons` with ``P = 1``.

    A runtime implements :meth:`run_persons`: every performer's crops go through the network in one call,
    the batch axis of the exported graph being the person axis.
    """

    info: RuntimeInfo
    skeleton: Skeleton

    def prepare(self, num_cameras: int) -> None:  # noqa: B027  (a runtime with dynamic shapes has nothing to do)
        """Be ready for frame sets of ``num_cameras`` views (:meth:`HeatmapNetwork.prepare`)."""

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of one frame set for one performer (:meth:`HeatmapNetwork.run`)."""
        check_inputs(crops, projections, valid, prior, self.skeleton)
        out = self.run_persons(crops[None], projections[None], np.asarray(valid)[None],
                               as_prior(prior, self.skeleton)[None], np.array([as_scale(window_scale)]))
        return {name: value[0] for name, value in out.items()}

    @abstractmethod
    def run_persons(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of one frame set for ``P`` performers at once.

        Args:
            crops: ``(P, C, 256, 256, 3)``; projections: ``(P, C, 3, 4)``; valid: ``(P, C)``; prior:
                ``(P, J, 3)``; window_scale: ``(P,)``, each performer's as in :meth:`run`.
        Returns:
            ``{"heatmaps": (P, C, J, 64, 64), "fused": (P, C, J, 64, 64), "presence": (P, C)}`` float32.
        """
