"""ONNX Runtime runner for the exported fusion network: provider choice, warm-up, one call per frame set.

Providers are tried TensorRT → CUDA → CPU (``device="auto"``) and the one that actually runs is read
back from ``session.get_providers()``: onnxruntime-gpu lists CUDA as *available* even where it then
falls back to CPU silently (DESIGN §7). Create the runner inside the process that uses it — with
``spawn``, in the child after it starts, never in the parent before forking: an ONNX Runtime
session and its CUDA context do not survive being copied into another process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import onnxruntime as ort
import torch

from crosspose.skeleton import H36M17

NUM_JOINTS = H36M17.num_joints

log = logging.getLogger(__name__)

Device = Literal["auto", "tensorrt", "cuda", "cpu"]

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_PREFERENCE: dict[str, tuple[str, ...]] = {
    "auto": (TENSORRT, CUDA, CPU),
    "tensorrt": (TENSORRT, CUDA, CPU),  # TensorRT leaves the ops it cannot take to CUDA / CPU
    "cuda": (CUDA, CPU),
    "cpu": (CPU,),
}
_REQUIRED = {"tensorrt": TENSORRT, "cuda": CUDA}


class ProviderUnavailableError(RuntimeError):
    """The requested device cannot run here (no GPU, no CUDA/cuDNN/TensorRT libraries, CPU-only wheel)."""


def _missing_provider_message(device: str, wanted: str, active: list[str]) -> str:
    available = ort.get_available_providers()
    if wanted not in available:
        why = (f"this onnxruntime build ({ort.__version__}) has no {wanted}: install onnxruntime-gpu "
               "(and never onnxruntime next to it)")
    else:
        why = (f"onnxruntime-gpu {ort.__version__} lists {wanted} but could not start it: no usable NVIDIA "
               "GPU/driver, or the CUDA 13 / cuDNN 9" + (" / TensorRT 10" if wanted == TENSORRT else "")
               + " libraries are not on the library path (see ONNX Runtime's log above)")
    return (f"device={device!r} requested but {wanted} is not active (the session runs on "
            f"{', '.join(active)}): {why}. Use device='auto' to fall back to the CPU.")


def open_session(
    path: str | Path, device: Device = "auto", intra_op_threads: int = 0
) -> ort.InferenceSession:
    """An ONNX Runtime session of ``path`` on the first active provider of ``device``'s preference list.

    Logs the provider that actually runs (a warning when it fell back); ``device="cuda"`` or
    ``"tensorrt"`` raise :class:`ProviderUnavailableError` when that provider did not start.
    """
    if device not in _PREFERENCE:
        raise ValueError(f"device must be one of {', '.join(_PREFERENCE)}, got {device!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write it with `crosspose model export`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    available = set(ort.get_available_providers())
    providers = [p for p in _PREFERENCE[device] if p in available]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()
    required = _REQUIRED.get(device)
    if required is not None and required not in active:
        raise ProviderUnavailableError(_missing_provider_message(device, required, active))
    preferred = _PREFERENCE[device]
    skipped = list(preferred[: preferred.index(active[0])]) if active[0] in preferred else []
    if skipped:
        log.warning("ONNX Runtime runs %s on %s: %s not active (falling back)", path.name, active[0],
                    ", ".join(skipped))
    else:
        log.info("ONNX Runtime runs %s on %s", path.name, active[0])
    return session


class OnnxRunner:
    """One ONNX Runtime session of the fusion network (``crosspose model export``).

    Args:
        path: the ``.onnx`` file.
        device: ``"auto"`` (TensorRT → CUDA → CPU, logs which runs), ``"tensorrt"``, ``"cuda"`` (fail
            fast with :class:`ProviderUnavailableError` when that provider is not active after the
            session starts) or ``"cpu"``.
        intra_op_threads: ONNX Runtime intra-op threads (0: its default, one per core).
        warmup_cameras: camera count of the warm-up run at load (0: no warm-up).
    """

    def __init__(
        self, path: str | Path, device: Device = "auto", intra_op_threads: int = 0, warmup_cameras: int = 4
    ) -> None:
        self.path = Path(path)
        self.device = device
        self.session = open_session(self.path, device, intra_op_threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._input_types = {i.name: i.type for i in self.session.get_inputs()}
        if warmup_cameras > 0:
            self.warm_up(warmup_cameras)

    @property
    def provider(self) -> str:
        """The execution provider that actually runs the graph (the first one the session kept)."""
        return str(self.session.get_providers()[0])

    @property
    def providers(self) -> list[str]:
        """All providers the session kept, in priority order (later ones take what earlier ones cannot)."""
        return list(self.session.get_providers())

    def warm_up(self, num_cameras: int = 4) -> None:
        """One run on blank inputs so that the first real frame set pays no allocation/kernel set-up."""
        crops = np.zeros((num_cameras, 256, 256, 3), np.float32)
        projections = np.tile(np.eye(3, 4, dtype=np.float32), (num_cameras, 1, 1))
        projections[:, 2, 3] = 3.0  # a finite camera 3 m from the origin
        self.run(crops, projections, np.ones(num_cameras, bool), np.zeros((NUM_JOINTS, 3), np.float32))

    def _feed(self, name: str, value: np.ndarray) -> np.ndarray:
        if self._input_types.get(name) == "tensor(bool)":
            return np.ascontiguousarray(value, dtype=bool)
        return np.ascontiguousarray(value, dtype=np.float32)

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of one frame set.

        Args:
            crops: ``(C, 256, 256, 3)`` RGB in [0, 1], ``C ≥ 2``; projections: ``(C, 3, 4)`` world metres →
                heatmap pixels; valid: ``(C,)`` bool (or 0/1); prior: ``(17, 3)`` the previous pose,
                metres, NaN where unknown, or ``(3,)`` a root alone; window_scale: ``≥ 1``, wider
                fusion windows for an older prior. A file exported before the ``prior`` input (its
                4th input is ``root``) gets the prior's pelvis row (and no window scale).
        Returns:
            ``{"heatmaps": (C, 17, 64, 64), "fused": (C, 17, 64, 64), "presence": (C,)}`` float32.
        """
        check_inputs(crops, projections, valid, prior)
        values = {"crops": crops, "projections": projections, "valid": valid, "prior": as_prior(prior),
                  "root": as_root(prior), "window_scale": np.array([as_scale(window_scale)])}
        feeds: dict[str, Any] = {name: self._feed(name, values[name]) for name in self.input_names}
        outputs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outputs, strict=True))


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


class HeatmapNetwork(Protocol):
    """What :class:`~crosspose.inference.pipeline.FramePipeline` needs of a network: one call a frame set."""

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]: ...


class TorchRunner:
    """The eager torch ``FusionNetwork`` behind :class:`OnnxRunner`'s ``run`` (tests, debugging, training).

    Args:
        network: a ``crosspose.nets.export.FusionNetwork`` (put in eval mode here).
    """

    provider = "torch"

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network.eval()

    def run(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Same inputs and outputs as :meth:`OnnxRunner.run`."""
        check_inputs(crops, projections, valid, prior)
        with torch.inference_mode():
            outputs = self.network(
                torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(projections, dtype=np.float32)),
                torch.from_numpy(np.asarray(valid, dtype=bool)),
                torch.from_numpy(np.ascontiguousarray(as_prior(prior), dtype=np.float32)),
                torch.tensor([as_scale(window_scale)]),
            )
        names = ("heatmaps", "fused", "presence")
        return {name: out.numpy() for name, out in zip(names, outputs, strict=True)}
