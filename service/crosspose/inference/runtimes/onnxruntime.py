"""The ONNX Runtime runtime: the exported network and detector files (``crosspose model export``) on the
first execution provider that really starts — TensorRT → CUDA → CPU for ``device: auto``.

The provider that runs is read back from ``session.get_providers()``: onnxruntime-gpu lists CUDA as
*available* even where it then falls back to CPU silently (DESIGN §7). Open sessions inside the process
that uses them — with ``spawn``, in the child after it starts, never in the parent before forking: an ONNX
Runtime session and its CUDA context do not survive being copied into another process.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnxruntime as ort

from crosspose.inference.network import (
    DeviceUnavailableError,
    PersonsNetwork,
    RuntimeInfo,
    as_root,
    check_persons,
    declared_skeleton,
    warmup_inputs,
)
from crosspose.inference.runtimes.libraries import NVIDIA_DRIVER
from crosspose.inference.runtimes.libraries import missing_library as _loadable

if TYPE_CHECKING:
    from crosspose.config.settings import OnnxRuntimeInference

log = logging.getLogger(__name__)

NAME = "onnxruntime"

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


class ProviderUnavailableError(DeviceUnavailableError):
    """The requested device cannot run here (no GPU, no CUDA/cuDNN/TensorRT libraries, CPU-only wheel)."""


#: Shared libraries each GPU provider needs beyond the NVIDIA driver (onnxruntime-gpu 1.31: CUDA 13,
#: cuDNN 9, TensorRT 10); the provider's own library names the rest of its dependencies.
_GPU_LIBRARIES: dict[str, tuple[str, ...]] = {
    CUDA: ("libcudnn.so.9",),
    TENSORRT: ("libcudnn.so.9", "libnvinfer.so.10"),
}
_PROVIDER_FILES = {CUDA: "libonnxruntime_providers_cuda.so", TENSORRT: "libonnxruntime_providers_tensorrt.so"}
_INSTALL_HINT = ("install the NVIDIA driver, CUDA 13 and cuDNN 9 (e.g. torch's cu130 build, or pip install "
                 "nvidia-cublas nvidia-cudnn-cu13), and TensorRT 10 for TensorRT")


@functools.cache
def gpu_blocker(provider: str) -> str | None:
    """Why ``provider`` (TensorRT or CUDA) cannot start on this host, found without asking ONNX Runtime —
    whose failed attempts print errors in red and then fall back — or None when it may start.

    Checks, in order: the provider is in this onnxruntime build, the NVIDIA driver (``libcuda.so.1``)
    loads, and the provider's libraries and the CUDA/cuDNN/TensorRT libraries they need load.
    """
    if provider not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no {provider}"
    if _loadable(NVIDIA_DRIVER) is not None:
        return "no NVIDIA GPU driver on this host (libcuda.so.1 not found)"
    for library in (str(Path(ort.__file__).parent / "capi" / _PROVIDER_FILES[provider]),
                    *_GPU_LIBRARIES[provider]):
        missing = _loadable(library)
        if missing is not None:
            return f"the NVIDIA driver is present but {missing} is not on the library path: {_INSTALL_HINT}"
    return None


def _missing_provider_message(device: str, wanted: str, active: str, why: str | None = None) -> str:
    if why is None:
        why = (f"onnxruntime-gpu {ort.__version__} lists {wanted} but could not start it: no usable NVIDIA "
               "GPU/driver, or the CUDA 13 / cuDNN 9" + (" / TensorRT 10" if wanted == TENSORRT else "")
               + " libraries are not on the library path (see ONNX Runtime's log above)")
    return (f"device={device!r} requested but {wanted} is not active (the session runs on "
            f"{active}): {why}. Use device='auto' to fall back to the CPU.")


def open_session(
    path: str | Path, device: Device = "auto", intra_op_threads: int = 0
) -> ort.InferenceSession:
    """An ONNX Runtime session of ``path`` on the first active provider of ``device``'s preference list.

    GPU providers that cannot start here (:func:`gpu_blocker`) are not asked for, so a CPU-only host
    starts quietly. Logs one line naming the provider that actually runs and why (a warning when a GPU
    host lacks its CUDA libraries or ONNX Runtime fell back); ``device="cuda"`` or ``"tensorrt"`` raise
    :class:`ProviderUnavailableError` when that provider cannot start.
    """
    if device not in _PREFERENCE:
        raise ValueError(f"device must be one of {', '.join(_PREFERENCE)}, got {device!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write it with `crosspose model export`")
    preferred = _PREFERENCE[device]
    blocked = {p: why for p in preferred if p != CPU and (why := gpu_blocker(p)) is not None}
    required = _REQUIRED.get(device)
    if required is not None and required in blocked:
        raise ProviderUnavailableError(_missing_provider_message(device, required, CPU, blocked[required]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = [p for p in preferred if p not in blocked and p in ort.get_available_providers()]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()
    if required is not None and required not in active:
        raise ProviderUnavailableError(_missing_provider_message(device, required, active[0]))
    _log_choice(path.name, active[0], preferred, blocked)
    return session


def _log_choice(name: str, active: str, preferred: tuple[str, ...], blocked: dict[str, str]) -> None:
    """One line: the provider that runs ``name`` and, when a preferred GPU provider does not, why."""
    skipped = list(preferred[: preferred.index(active)]) if active in preferred else []
    if not skipped:
        log.info("ONNX Runtime runs %s on %s", name, active)
        return
    reasons = sorted({blocked[p] for p in skipped if p in blocked})
    if not reasons:  # asked for and refused by ONNX Runtime itself (its own log says more)
        log.warning("ONNX Runtime runs %s on %s: %s did not start (falling back)", name, active,
                    ", ".join(skipped))
    elif all(r.startswith(("no NVIDIA GPU driver", "this onnxruntime build")) for r in reasons):
        log.info("ONNX Runtime runs %s on %s: %s", name, active, "; ".join(reasons))  # a CPU host: expected
    else:  # a GPU host without its libraries: the operator has something to install
        log.warning("ONNX Runtime runs %s on %s, not the GPU: %s", name, active, "; ".join(reasons))


def _info(session: ort.InferenceSession) -> RuntimeInfo:
    """The provider that actually runs the graph (the first one the session kept); the graphs are f32."""
    return RuntimeInfo(NAME, str(session.get_providers()[0]), "f32")


class OnnxRunner(PersonsNetwork):
    """One ONNX Runtime session of the fusion network (``crosspose model export``).

    The file declares the joint layout of its heatmaps (metadata ``skeleton`` and ``joints``;
    :attr:`skeleton`) and takes every performer of a frame set in one call (its batch axis is the person
    axis). Files exported before those existed are H36M-17 and run one performer per call.

    Args:
        path: the ``.onnx`` file.
        device: ``"auto"`` (TensorRT → CUDA → CPU, logs which runs), ``"tensorrt"``, ``"cuda"`` (fail
            fast with :class:`ProviderUnavailableError` when that provider is not active after the
            session starts) or ``"cpu"``.
        intra_op_threads: ONNX Runtime intra-op threads (0: its default, one per core).
        warmup_cameras: camera count of the warm-up run at load (0: no warm-up).
    Raises:
        ValueError: the file declares a layout this version does not know, or joints other than it has.
    """

    def __init__(
        self, path: str | Path, device: Device = "auto", intra_op_threads: int = 0, warmup_cameras: int = 4
    ) -> None:
        self.path = Path(path)
        self.device = device
        self.session = open_session(self.path, device, intra_op_threads)
        self.info = _info(self.session)
        self.skeleton = declared_skeleton(self.path, self.session.get_modelmeta().custom_metadata_map)
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._input_types = {i.name: i.type for i in inputs}
        self._persons = len(inputs[0].shape) == 5  # crops (P, C, 256, 256, 3)
        if warmup_cameras > 0:
            self.warm_up(warmup_cameras)

    @property
    def provider(self) -> str:
        """The execution provider that actually runs the graph (the first one the session kept)."""
        return self.info.device

    @property
    def providers(self) -> list[str]:
        """All providers the session kept, in priority order (later ones take what earlier ones cannot)."""
        return list(self.session.get_providers())

    def warm_up(self, num_cameras: int = 4) -> None:
        """One run on blank inputs so that the first real frame set pays no allocation/kernel set-up."""
        self.run(*warmup_inputs(num_cameras, self.skeleton))

    def _feed(self, name: str, value: np.ndarray) -> np.ndarray:
        if self._input_types.get(name) == "tensor(bool)":
            return np.ascontiguousarray(value, dtype=bool)
        return np.ascontiguousarray(value, dtype=np.float32)

    def _session_run(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds: dict[str, Any] = {name: self._feed(name, values[name]) for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))

    def run_persons(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of ``P`` performers in one call
        (:meth:`~crosspose.inference.network.PersonsNetwork.run_persons`). A file without the person axis
        runs them one by one; one exported before the ``prior`` input (its 4th input is ``root``) gets each
        prior's root row (and no window scale)."""
        check_persons(crops, projections, valid, prior, window_scale, self.skeleton)
        scale = np.maximum(np.asarray(window_scale, dtype=np.float32), 1.0)
        if self._persons:
            return self._session_run({"crops": crops, "projections": projections, "valid": valid,
                                      "prior": prior, "window_scale": scale})
        outs = [self._session_run({"crops": crops[i], "projections": projections[i], "valid": valid[i],
                                   "prior": prior[i], "root": as_root(prior[i], self.skeleton),
                                   "window_scale": scale[i : i + 1]})
                for i in range(crops.shape[0])]
        return {name: np.stack([out[name] for out in outs]) for name in self.output_names}


class OnnxDetectorModel:
    """The exported detector (``crosspose.nets.export.export_detector_onnx``) in ONNX Runtime.

    ``model(images (N, 224, 224, 3) float32 RGB in [-1, 1])`` → ``(boxes (N, 2254, 12), scores
    (N, 2254))`` float64, what :class:`~crosspose.inference.detector.PersonDetector` decodes. Providers as
    :func:`open_session`.

    Args:
        path: the ``.onnx`` file; device, intra_op_threads: as :class:`OnnxRunner`.
        warm_up: run once on a blank image at load, so that the first cold start pays no set-up.
    """

    def __init__(self, path: str | Path, device: Device = "auto", intra_op_threads: int = 0,
                 warm_up: bool = True) -> None:
        from crosspose.inference.detector import DETECTOR_SIZE

        self.path = Path(path)
        self.session = open_session(self.path, device, intra_op_threads)
        names = [i.name for i in self.session.get_inputs()]
        if names != ["images"]:
            raise ValueError(f"{self.path} is not an exported person detector (inputs {names}, expected "
                             "['images']); write it with `crosspose model export`")
        self.info = _info(self.session)
        if warm_up:
            self(np.zeros((1, DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32))

    @property
    def provider(self) -> str:
        """The execution provider that actually runs the graph."""
        return self.info.device

    def prepare(self, num_cameras: int) -> None:
        """Nothing to do: the image axis is dynamic."""

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {"images": np.ascontiguousarray(images, np.float32)}
        boxes, scores = self.session.run(["boxes", "scores"], feed)
        return boxes.astype(np.float64), scores.reshape(len(images), -1).astype(np.float64)


def _network_path(path: Path | None) -> Path:
    if path is not None:
        return Path(path)
    from crosspose.nets.export import default_onnx_path

    return default_onnx_path()


def open_network(settings: OnnxRuntimeInference, path: Path | None, num_cameras: int) -> OnnxRunner:
    """The exported network file (default: ``crosspose model export``'s cached one) on ``settings.device``
    with ``settings.threads`` intra-op threads, warmed up for ``num_cameras`` views."""
    return OnnxRunner(_network_path(path), device=settings.device, intra_op_threads=settings.threads,
                      warmup_cameras=num_cameras)


def open_detector(settings: OnnxRuntimeInference, network_path: Path | None,
                  num_cameras: int = 0) -> OnnxDetectorModel:
    """The exported detector, ``crosspose_detector.onnx`` beside the network file, on the network's device
    and threads (FileNotFoundError naming it when an older export lacks it); any batch size runs as it is."""
    from crosspose.nets.export import detector_onnx_path

    return OnnxDetectorModel(detector_onnx_path(_network_path(network_path)), device=settings.device,
                             intra_op_threads=settings.threads)
