"""The names ``crosspose.inference.runner`` held before the runtime registry, where they live now:
:mod:`crosspose.inference.network` (shared) and :mod:`crosspose.inference.runtimes` (one module per
runtime). Kept for imports written against it; new code imports from those modules."""

from crosspose.inference.network import (
    NUM_JOINTS,
    HeatmapNetwork,
    as_prior,
    as_root,
    as_scale,
    check_inputs,
)
from crosspose.inference.runtimes.onnxruntime import (
    CPU,
    CUDA,
    TENSORRT,
    Device,
    OnnxRunner,
    ProviderUnavailableError,
    gpu_blocker,
    open_session,
)
from crosspose.inference.runtimes.torch import TorchRunner

__all__ = [
    "CPU",
    "CUDA",
    "NUM_JOINTS",
    "TENSORRT",
    "Device",
    "HeatmapNetwork",
    "OnnxRunner",
    "ProviderUnavailableError",
    "TorchRunner",
    "as_prior",
    "as_root",
    "as_scale",
    "check_inputs",
    "gpu_blocker",
    "open_session",
]
