"""The OpenVINO runtime on the CPU: the exported network and detector files (``crosspose model export``, the
same ONNX files ONNX Runtime reads) compiled with static shapes, in f32 or with the backbone in bf16.

* Static shapes: the network is compiled for the rig's camera count (63 against 77 ms a 4-view set with the
  camera axis left dynamic, issue 18), once per count (:meth:`OpenVinoRunner.prepare`; a calibration with
  another count compiles again, a count seen before is reused). Performers go through it one at a time, so
  their number never compiles anything. The detector is compiled for one image and for the camera count
  (a cold start's batch); a batch of another size goes image by image.
* Precision: ``f32`` compiles the whole graph once. ``bf16`` cuts the graph at its ``heatmaps`` tensor —
  where BlazePose and the channel map end and the cross-view fusion begins — and compiles the backbone in
  bf16 and the fusion in f32: bf16 on the fusion moves 24 % of the fused argmaxes, on the backbone ~2.5 %.
  One file on disk either way; the cut is made in memory. The precision reported is read back from each
  compiled model (OpenVINO compiles bf16 by itself on CPUs with native bf16 unless told f32, and f32 where
  the CPU cannot run bf16).

Threads are not pinned to cores: the service's other processes (and several inference workers) share them.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosspose.inference.network import (
    DeviceUnavailableError,
    PersonsNetwork,
    RuntimeInfo,
    check_persons,
    declared_skeleton,
    warmup_inputs,
)
from crosspose.inference.runtimes.auto import OPENVINO_HINT, openvino_precision
from crosspose.nets.export import INPUT_NAMES, OUTPUT_NAMES

try:
    import openvino as ov
    from openvino import opset13
    from openvino.passes import ConstantFolding, Manager
except ImportError as err:  # the registry imports this module only when openvino is chosen
    raise DeviceUnavailableError(f"runtime 'openvino' needs the openvino package, which is not installed "
                                 f"here: {OPENVINO_HINT}") from err

if TYPE_CHECKING:
    from crosspose.config.settings import OpenVinoInference

log = logging.getLogger(__name__)

NAME = "openvino"
DEVICE = "CPU"
Precision = Literal["f32", "bf16"]
#: The exported graph's tensor where the backbone ends and the fusion begins (also its first output).
BOUNDARY = "heatmaps"


@functools.cache
def core() -> ov.Core:
    """One OpenVINO core per process."""
    return ov.Core()


def _config(precision: Precision, threads: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "ENABLE_CPU_PINNING": False,  # other processes share the cores (see the module doc)
    }
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compiled_precision(compiled: ov.CompiledModel) -> str:
    """What OpenVINO compiled ``compiled`` in (its inference precision, read back): ``f32`` or ``bf16``."""
    return str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())


def _read(path: Path) -> ov.Model:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write it with `crosspose model export`")
    return core().read_model(str(path))


def _fold_shapes(model: ov.Model) -> None:
    """Constant-fold what static shapes made constant (the graph's ``Shape`` of the crops, above all), so
    that the fusion's half of a cut needs no crops."""
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)


def split_network(model: ov.Model) -> tuple[ov.Model, ov.Model]:
    """The exported network (static shapes) cut at :data:`BOUNDARY`: the backbone (``crops`` → ``heatmaps``,
    ``presence``) and the fusion (``heatmaps`` and the geometry inputs → ``fused``), each a model of its own
    taking the inputs it reads (``model`` itself is left as it was).

    Raises:
        ValueError: ``model`` is not a network this version exports (its inputs or outputs differ).
    """
    names = [i.get_any_name() for i in model.inputs]
    if names != list(INPUT_NAMES) or {o.get_any_name() for o in model.outputs} != {*OUTPUT_NAMES}:
        raise ValueError(f"not a network this version exports (inputs {names}); export it again with "
                         "`crosspose model export`")
    model = model.clone()
    _fold_shapes(model)
    heads = [model.output(BOUNDARY).get_node(), model.output("presence").get_node()]
    backbone = ov.Model(heads, _parameters_reaching(model, heads), "backbone")
    model = model.clone()
    boundary = model.output(BOUNDARY).get_node().input_value(0)  # the tensor before its Result
    heatmaps = opset13.parameter(boundary.get_partial_shape(), boundary.get_element_type(), name=BOUNDARY)
    heatmaps.output(0).set_names({BOUNDARY})
    for target in boundary.get_target_inputs():
        if target.get_node().get_type_name() != "Result":
            target.replace_source_output(heatmaps.output(0))
    fused = [model.output("fused").get_node()]
    fusion = ov.Model(fused, [heatmaps, *_parameters_reaching(model, fused)], "fusion")
    return backbone, fusion


def _parameters_reaching(model: ov.Model, results: list[Any]) -> list[Any]:
    """The parameters of ``model`` that ``results`` depend on, in the model's order."""
    seen: set[str] = set()
    stack = list(results)
    while stack:
        node = stack.pop()
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        stack.extend(value.get_node() for value in node.input_values())
    return [p for p in model.get_parameters() if p.get_friendly_name() in seen]


class _Compiled:
    """The network compiled for one camera count: one model (f32), or the backbone then the fusion."""

    def __init__(self, model: ov.Model, num_cameras: int, num_joints: int, precision: Precision,
                 threads: int) -> None:
        shapes = {"crops": [1, num_cameras, 256, 256, 3], "projections": [1, num_cameras, 3, 4],
                  "valid": [1, num_cameras], "prior": [1, num_joints, 3], "window_scale": [1]}
        model = model.clone()
        model.reshape({name: ov.PartialShape(shape) for name, shape in shapes.items()})
        self.parts: list[ov.CompiledModel]
        if precision == "f32":
            self.parts = [core().compile_model(model, DEVICE, _config("f32", threads))]
        else:
            backbone, fusion = split_network(model)
            self.parts = [core().compile_model(backbone, DEVICE, _config(precision, threads)),
                          core().compile_model(fusion, DEVICE, _config("f32", threads))]
        # Each part's request, the inputs it reads and the outputs it adds, in order.
        self.steps = [(part.create_infer_request(), [i.get_any_name() for i in part.inputs],
                       [o.get_any_name() for o in part.outputs]) for part in self.parts]

    @property
    def precision(self) -> str:
        """What each part was compiled in, read back (see :class:`RuntimeInfo`)."""
        got = [compiled_precision(part) for part in self.parts]
        if len(set(got)) == 1:
            return got[0]
        return f"{got[0]} backbone, {got[1]} fusion"

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = dict(feeds)
        for request, inputs, outputs in self.steps:
            out = request.infer({name: values[name] for name in inputs})
            values.update((name, out[name]) for name in outputs)
        return {name: values[name] for name in OUTPUT_NAMES}


class OpenVinoRunner(PersonsNetwork):
    """The exported fusion network in OpenVINO on the CPU, compiled for each camera count it is given.

    Args:
        path: the ``.onnx`` file (``crosspose model export``; a file of an older export is refused).
        precision: ``"f32"``, or ``"bf16"``: the backbone in bf16, the fusion in f32 (OpenVINO compiles f32
            where the CPU cannot run bf16; :attr:`info` says what was compiled).
        threads: OpenVINO's inference threads (0: its default, one per core).
        warmup_cameras: the camera count to compile for and warm up at load (0: at the first frame set).
    Attributes:
        compilations: how many times the network was compiled (one per camera count).
    Raises:
        ValueError: a file of an older export, or of a layout this version does not know.
    """

    def __init__(self, path: str | Path, precision: Precision = "f32", threads: int = 1,
                 warmup_cameras: int = 4) -> None:
        if precision not in ("f32", "bf16"):
            raise ValueError(f"precision must be f32 or bf16, got {precision!r}")
        self.path = Path(path)
        self.precision: Precision = precision
        self.threads = int(threads)
        self.model = _read(self.path)
        names = [i.get_any_name() for i in self.model.inputs]
        if names != list(INPUT_NAMES):
            raise ValueError(f"{self.path} has the inputs {names}, not those of this version's export "
                             f"({list(INPUT_NAMES)}): export it again with `crosspose model export`")
        self.skeleton = declared_skeleton(self.path, _metadata(self.model))
        self._compiled: dict[int, _Compiled] = {}
        self.compilations = 0
        self.info = RuntimeInfo(NAME, DEVICE, precision)
        if warmup_cameras > 0:
            self.prepare(warmup_cameras)

    @property
    def provider(self) -> str:
        """``"openvino"``: what the inference heartbeat's ``provider`` shows for this runtime."""
        return self.info.provider

    @property
    def camera_counts(self) -> list[int]:
        """The camera counts compiled so far."""
        return sorted(self._compiled)

    def prepare(self, num_cameras: int) -> None:
        """Compile for ``num_cameras`` views (once per count) and warm up, before the first such frame set."""
        if num_cameras not in self._compiled:
            self._compile(num_cameras)

    def _compile(self, num_cameras: int) -> _Compiled:
        if num_cameras < 2:
            raise ValueError(f"the network needs C >= 2 views, got {num_cameras}")
        start = time.perf_counter()
        compiled = _Compiled(self.model, num_cameras, self.skeleton.num_joints, self.precision, self.threads)
        self._compiled[num_cameras] = compiled
        self.compilations += 1
        self.info = RuntimeInfo(NAME, DEVICE, compiled.precision)
        crops, projections, valid, prior = warmup_inputs(num_cameras, self.skeleton)
        compiled(_feeds(crops[None], projections[None], valid[None], prior[None], np.ones(1, np.float32)))
        log.info("OpenVINO compiled %s for %d cameras on %s in %s (%.1f s)", self.path.name, num_cameras,
                 DEVICE, compiled.precision, time.perf_counter() - start)
        return compiled

    def run_persons(
        self, crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
        window_scale: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Heatmaps of ``P`` performers (:meth:`~crosspose.inference.network.PersonsNetwork.run_persons`),
        one at a time through the model compiled for their camera count (compiled now if it is new)."""
        check_persons(crops, projections, valid, prior, window_scale, self.skeleton)
        num_cameras = crops.shape[1]
        compiled = self._compiled.get(num_cameras) or self._compile(num_cameras)
        scale = np.maximum(np.asarray(window_scale, dtype=np.float32), 1.0)
        outs = [compiled(_feeds(crops[i : i + 1], projections[i : i + 1], valid[i : i + 1], prior[i : i + 1],
                                scale[i : i + 1]))
                for i in range(crops.shape[0])]
        if len(outs) == 1:
            return outs[0]
        return {name: np.concatenate([out[name] for out in outs]) for name in outs[0]}


def _feeds(crops: np.ndarray, projections: np.ndarray, valid: np.ndarray, prior: np.ndarray,
           window_scale: np.ndarray) -> dict[str, np.ndarray]:
    f32: Callable[[np.ndarray], np.ndarray] = functools.partial(np.ascontiguousarray, dtype=np.float32)
    return {"crops": f32(crops), "projections": f32(projections), "valid": np.ascontiguousarray(valid, bool),
            "prior": f32(prior), "window_scale": f32(window_scale)}


def _metadata(model: ov.Model) -> dict[str, str]:
    """The ONNX file's metadata properties (``skeleton``, ``joints``, …), which OpenVINO keeps under
    ``framework`` in the model's runtime info."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info(["framework"]).astype(dict)
    return {key: str(model.get_rt_info(["framework", key]).astype(str)) for key in framework}


class OpenVinoDetectorModel:
    """The exported person detector (``crosspose_detector.onnx``) in OpenVINO on the CPU:
    ``model(images (N, 224, 224, 3))`` → ``(boxes (N, 2254, 12), scores (N, 2254))`` float64, as
    :class:`~crosspose.inference.runtimes.onnxruntime.OnnxDetectorModel` gives them.

    Compiled for one image and for the rig's camera count (a cold start looks at every view at once; with
    two threads a batch of 4 compiled for it took 123 against 181 ms for 4 single images,
    ``benchmarks/runtimes.py``); a batch of another size goes image by image.

    Args:
        path: the ``.onnx`` file. precision: ``"f32"`` or ``"bf16"`` (the whole detector; its boxes are
            decoded in float64 afterwards). threads: as :class:`OpenVinoRunner`.
        num_cameras: the rig's camera count, compiled for at load (0 or 1: one image only).
        warm_up: run once on a blank image at load.
    Attributes:
        compilations: how many times the detector was compiled (one per batch size).
    """

    def __init__(self, path: str | Path, precision: Precision = "f32", threads: int = 1,
                 num_cameras: int = 0, warm_up: bool = True) -> None:
        self.path = Path(path)
        self.model = _read(self.path)
        names = [i.get_any_name() for i in self.model.inputs]
        if names != ["images"]:
            raise ValueError(f"{self.path} is not an exported person detector (inputs {names}, expected "
                             "['images']); write it with `crosspose model export`")
        self.precision: Precision = precision
        self.threads = int(threads)
        self.warm_up = warm_up
        self._requests: dict[int, Any] = {}
        self.compilations = 0
        self.info = RuntimeInfo(NAME, DEVICE, precision)
        self.prepare(1)
        self.prepare(num_cameras)

    @property
    def provider(self) -> str:
        return self.info.provider

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes compiled so far."""
        return sorted(self._requests)

    def prepare(self, num_cameras: int) -> None:
        """Compile for a batch of ``num_cameras`` images (once per size; 0 or 1: nothing more to do)."""
        if num_cameras < 1 or num_cameras in self._requests:
            return
        from crosspose.inference.detector import DETECTOR_SIZE

        model = self.model.clone()
        model.reshape({"images": ov.PartialShape([num_cameras, DETECTOR_SIZE, DETECTOR_SIZE, 3])})
        compiled = core().compile_model(model, DEVICE, _config(self.precision, self.threads))
        self._requests[num_cameras] = compiled.create_infer_request()
        self.compilations += 1
        self.info = RuntimeInfo(NAME, DEVICE, compiled_precision(compiled))
        if self.warm_up:
            self(np.zeros((num_cameras, DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32))

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.ascontiguousarray(images, np.float32)
        request = self._requests.get(len(images))
        if request is not None:
            outs = [request.infer({"images": images})]
        else:
            outs = [self._requests[1].infer({"images": image[None]}) for image in images]
        boxes = np.concatenate([out["boxes"] for out in outs]).astype(np.float64)
        scores = np.concatenate([out["scores"] for out in outs]).reshape(len(images), -1).astype(np.float64)
        return boxes, scores


def _network_path(path: Path | None) -> Path:
    if path is not None:
        return Path(path)
    from crosspose.nets.export import default_onnx_path

    return default_onnx_path()


def open_network(settings: OpenVinoInference, path: Path | None, num_cameras: int) -> OpenVinoRunner:
    """The exported network file (default: ``crosspose model export``'s cached one) compiled for
    ``num_cameras`` views in ``settings.precision`` (auto: bf16 backbone where the CPU has native bf16)."""
    precision = openvino_precision(settings.precision)
    return OpenVinoRunner(_network_path(path), precision=precision, threads=settings.threads,
                          warmup_cameras=num_cameras)


def open_detector(settings: OpenVinoInference, network_path: Path | None,
                  num_cameras: int = 0) -> OpenVinoDetectorModel:
    """The exported detector beside the network file, in the network's precision and threads, compiled for
    one image and for ``num_cameras``."""
    from crosspose.nets.export import detector_onnx_path

    precision = openvino_precision(settings.precision)
    return OpenVinoDetectorModel(detector_onnx_path(_network_path(network_path)), precision=precision,
                                 threads=settings.threads, num_cameras=num_cameras)
