"""The eager torch runtime: the fusion network and the person detector as torch modules, built from the
cached BlazePose build (``crosspose model build``; built from the mediapipe wheel on first use) and the
default fusion weights — the same sources ``crosspose model export`` writes the ONNX files from.

No exported file is read: ``inference.model`` names ONNX files, which this runtime does not open. It is
the reference the exported graphs are checked against, and what training and debugging run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from crosspose.inference.network import (
    DeviceUnavailableError,
    PersonsNetwork,
    RuntimeInfo,
    check_persons,
    warmup_inputs,
)
from crosspose.skeleton import Skeleton

if TYPE_CHECKING:
    from crosspose.config.settings import TorchInference

log = logging.getLogger(__name__)

NAME = "torch"

Device = Literal["cpu", "cuda"]


def _device(device: Device) -> torch.device:
    """``device`` as torch's, or DeviceUnavailableError when this torch cannot run there."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device='cuda' requested but torch {torch.__version__} sees no CUDA "
                                     "device (a CPU-only build, or no NVIDIA GPU/driver); use device='cpu'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    return torch.device(device)


def _info(device: torch.device) -> RuntimeInfo:
    return RuntimeInfo(NAME, device.type, "f32")


class TorchRunner(PersonsNetwork):
    """The eager torch ``FusionNetwork`` behind the same calls as the exported network's runners.

    Args:
        network: a ``crosspose.nets.export.FusionNetwork`` (put in eval mode and moved to ``device`` here);
            its ``skeleton`` is the layout of its heatmaps.
        device: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, network: torch.nn.Module, device: Device = "cpu") -> None:
        self.torch_device = _device(device)
        self.network = network.eval().to(self.torch_device)
        skeleton = getattr(network, "skeleton", None)
        if not isinstance(skeleton, Skeleton):
            raise TypeError(f"{type(network).__name__} declares no joint layout (a `skeleton` attribute)")
        self.skeleton = skeleton
        self.info = _info(self.torch_device)

    @property
    def provider(self) -> str:
        """``"torch"``: what the inference heartbeat's ``provider`` shows for this runtime."""
        return self.info.provider

    def _tensor(self, value: np.ndarray, dtype: type = np.float32) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(value, dtype=dtype)).to(self.torch_device)

    def run_persons(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of ``P`` performers (:meth:`~crosspose.inference.network.PersonsNetwork.run_persons`)."""
        check_persons(crops, projections, valid, prior, window_scale, self.skeleton)
        scale = np.maximum(np.asarray(window_scale, dtype=np.float32), 1.0)
        with torch.inference_mode():
            outputs = self.network(
                self._tensor(crops), self._tensor(projections), self._tensor(valid, bool),
                self._tensor(prior), self._tensor(scale),
            )
        names = ("heatmaps", "fused", "presence")
        return {name: out.float().cpu().numpy() for name, out in zip(names, outputs, strict=True)}


class TorchDetectorModel:
    """BlazePose's person detector as an eager torch module: raw boxes and scores, as
    :class:`~crosspose.inference.runtimes.onnxruntime.OnnxDetectorModel` gives them.

    Args:
        module: a ``crosspose.nets.blazepose.BlazePoseDetector`` (default:
            ``crosspose.nets.load_blazepose_detector()``, built from the mediapipe wheel on first use).
        device: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, module: torch.nn.Module | None = None, device: Device = "cpu") -> None:
        if module is None:
            from crosspose.nets import load_blazepose_detector

            module = load_blazepose_detector()
        self.torch_device = _device(device)
        self.module = module.eval().to(self.torch_device)
        self.info = _info(self.torch_device)

    def prepare(self, num_cameras: int) -> None:
        """Nothing to do: eager modules take any batch."""

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self.torch_device)
        with torch.inference_mode():
            out = self.module(batch)
        return out.boxes.double().cpu().numpy(), out.scores.double().cpu().numpy()


def _use_threads(threads: int) -> None:
    """torch's intra-op threads are one setting per process: ``threads`` (0 keeps torch's default)."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def open_network(settings: TorchInference, path: Path | None, num_cameras: int) -> TorchRunner:
    """The eager network on ``settings.device`` (``path``, an ONNX file, is not run: see the module doc; its
    declared joint layout is the built network's when it exists, else the default layout), warmed up for
    ``num_cameras`` views."""
    from crosspose.inference.network import declared_skeleton
    from crosspose.nets.export import build_fusion_network, export_metadata
    from crosspose.skeleton import DEFAULT_SKELETON

    _device(settings.device)  # fail before building the network
    skeleton = DEFAULT_SKELETON
    if path is not None:
        if Path(path).is_file():
            skeleton = declared_skeleton(Path(path), export_metadata(Path(path)))
        log.info("the torch runtime builds the network (%s) from the cached BlazePose and the default fusion "
                 "weights; %s is not run", skeleton.name, path)
    _use_threads(settings.threads)
    runner = TorchRunner(build_fusion_network(skeleton=skeleton), device=settings.device)
    if num_cameras > 0:
        runner.run(*warmup_inputs(num_cameras, runner.skeleton))
    log.info("torch runs the fusion network on %s", runner.info.device)
    return runner


def open_detector(settings: TorchInference, network_path: Path | None,
                  num_cameras: int = 0) -> TorchDetectorModel:
    """The eager person detector on ``settings.device`` (``network_path`` is not read; any batch runs)."""
    _device(settings.device)
    _use_threads(settings.threads)
    return TorchDetectorModel(device=settings.device)
