"""The inference runtime registry: one module per config ``runtime``; each runtime opened from its config
section reports what really runs; the stage, ``reconstruct`` and ``model evaluate`` open the network
through ``open_network``; the detector decodes whatever model a runtime opened, with no dispatch on its
type. (The config section itself: tests/config/test_inference_section.py.)"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.config import (
    InferenceConfig,
    OnnxRuntimeInference,
    TorchInference,
    config_from_dict,
)
from crosspose.inference import (
    DeviceUnavailableError,
    OnnxRunner,
    PersonDetector,
    RuntimeInfo,
    TorchRunner,
    ssd_anchors,
)
from crosspose.inference import runtimes as registry
from crosspose.inference.runtimes.auto import openvino_installed
from crosspose.nets.export import OUTPUT_NAMES, example_inputs
from crosspose.skeleton import DEFAULT_SKELETON, H36M17

CAMERAS = [{"name": "a", "source": "0"}, {"name": "b", "source": "1"}]


def _inputs(cameras: int) -> tuple[np.ndarray, ...]:
    crops, projections, valid, prior, _ = (t[0].numpy() for t in example_inputs(cameras))  # one performer
    return crops, projections, valid, prior


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """The torch runtime sets the process's intra-op threads (its ``threads``); put them back after."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# The registry


def test_every_runtime_in_the_config_is_a_registry_module() -> None:
    """``auto`` is no module: the registry resolves it into one of the others (test_runtime_auto.py)."""
    members = typing.get_args(typing.get_args(InferenceConfig)[0])
    tags = {typing.get_args(m)[0].model_fields["runtime"].default for m in members}
    assert tags == {*registry.RUNTIMES, "auto"}
    assert set(registry.RUNTIMES) == {"onnxruntime", "openvino", "torch"}
    for name in registry.RUNTIMES:
        if name == "openvino" and not openvino_installed():
            continue  # its module says what to install (test_runtime_auto.py)
        module = registry.runtime(name)
        assert callable(module.open_network)
        assert callable(module.open_detector)
    with pytest.raises(ValueError, match="unknown inference runtime 'auto'; one of: onnxruntime, openvino, "
                       "torch"):
        registry.runtime("auto")


# ---------------------------------------------------------------------------------------------
# Opening each runtime from its config, and what it reports


def test_onnxruntime_opens_the_configured_file_and_reports_what_runs(standin: Path) -> None:
    cfg = config_from_dict({"cameras": CAMERAS, "inference": {"runtime": "onnxruntime", "model": str(standin),
                                                              "device": "cpu"}})
    network = registry.open_network(cfg.inference, num_cameras=3)
    assert isinstance(network, OnnxRunner)
    assert network.info == RuntimeInfo("onnxruntime", "CPUExecutionProvider", "f32")
    assert network.info.provider == network.provider == network.session.get_providers()[0]
    out = network.run(*_inputs(3))
    assert set(out) == set(OUTPUT_NAMES)
    assert out["fused"].shape == (3, 17, 64, 64)
    # No detector file beside the stand-in: a missing file, named, not another runtime in disguise.
    with pytest.raises(FileNotFoundError, match=r"crosspose_detector\.onnx does not exist"):
        registry.open_detector(cfg.inference)


@pytest.mark.network
def test_torch_opens_the_eager_network_and_detector_and_reports_what_runs(torch_threads: None) -> None:
    cfg = config_from_dict({"cameras": CAMERAS, "inference": {"runtime": "torch", "threads": 1}})
    network = registry.open_network(cfg.inference, num_cameras=2)
    assert isinstance(network, TorchRunner)
    assert network.info == RuntimeInfo("torch", "cpu", "f32")
    assert network.info.provider == network.provider == "torch"  # what the heartbeat's provider showed
    assert torch.get_num_threads() == 1
    assert network.skeleton is DEFAULT_SKELETON  # no file to follow: the default layout
    crops, projections, valid, prior, _ = (t[0].numpy() for t in example_inputs(2, skeleton=DEFAULT_SKELETON))
    out = network.run(crops, projections, valid, prior)
    assert out["fused"].shape == (2, DEFAULT_SKELETON.num_joints, 64, 64)
    assert out["fused"].dtype == np.float32
    detector = registry.open_detector(cfg.inference)
    assert isinstance(detector, PersonDetector)
    assert detector.info == RuntimeInfo("torch", "cpu", "f32")
    assert detector.runtime == "torch"
    assert detector.detect([np.zeros((240, 320, 3), np.uint8)]) == [[]]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: nothing to refuse")
def test_torch_on_cuda_without_cuda_fails_before_building_anything() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"device='cuda' requested but torch .* no CUDA"):
        registry.open_network(TorchInference(device="cuda"))
    with pytest.raises(DeviceUnavailableError, match="no CUDA"):
        registry.open_detector(TorchInference(device="cuda"))


# ---------------------------------------------------------------------------------------------
# Every caller opens the network through the registry


class _Opened:
    """What a fake ``open_network`` hands out: records the settings it was asked for."""

    def __init__(self, settings: Any, path: Path | None, num_cameras: int) -> None:
        self.settings, self.path, self.num_cameras = settings, path, num_cameras
        self.info = RuntimeInfo("fake", "nowhere", "f32")
        self.skeleton = H36M17

    def run(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        raise AssertionError("not run here")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[_Opened]:
    """``open_network`` replaced by a recorder: a caller that opens a runtime by itself is not seen."""
    calls: list[_Opened] = []

    def fake(settings: Any, *, path: Path | None = None, num_cameras: int = 4) -> _Opened:
        calls.append(_Opened(settings, path, num_cameras))
        return calls[-1]

    monkeypatch.setattr(registry, "open_network", fake)
    return calls


def test_reconstruct_and_model_evaluate_open_the_network_through_the_registry(
    opened: list[_Opened], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from crosspose import evaluation as evaluate
    from crosspose.reconstruct import ReconstructError, default_network

    model = tmp_path / "exported.onnx"
    network = default_network("cpu", 3, model)
    assert network is opened[-1]
    assert opened[-1].settings == OnnxRuntimeInference(device="cpu", threads=0)  # ONNX Runtime's default
    assert (opened[-1].path, opened[-1].num_cameras) == (model, 3)
    # `crosspose model evaluate --model FILE` hands the clip run the network the registry opened.
    given: list[Any] = []

    def predict_clip(network: Any, **kwargs: Any) -> None:
        given.append(network)
        raise ReconstructError("stopped here: the clip is not needed")

    monkeypatch.setattr(evaluate, "predict_clip", predict_clip)
    model.write_bytes(b"")
    result = CliRunner().invoke(app, ["model", "evaluate", "--model", str(model), "--device", "cpu"])
    assert "stopped here" in result.output
    assert given == [opened[-1]]
    assert opened[-1].path == model
    assert opened[-1].settings.device == "cpu"
    # `--runtime openvino --precision f32`: the registry gets OpenVINO's own section (no ONNX Runtime device).
    result = CliRunner().invoke(app, ["model", "evaluate", "--model", str(model), "--runtime", "openvino",
                                      "--precision", "f32"])
    assert "stopped here" in result.output
    assert (opened[-1].settings.runtime, opened[-1].settings.precision) == ("openvino", "f32")


def test_the_stage_opens_its_network_and_detector_on_the_configured_runtime(
    opened: list[_Opened], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from crosspose.core import NetworkBackend
    from crosspose.runtime import inference_stage
    from crosspose.runtime.demo import synthetic_config

    detectors: list[Any] = []
    monkeypatch.setattr(registry, "open_detector", lambda settings, *, network_path=None, num_cameras=0:
                        detectors.append((settings, network_path, num_cameras)))
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, render=False)
    config = config.model_copy(update={"inference": TorchInference(backend="network", device="cpu")})
    stage = inference_stage.InferenceStage(config)
    try:
        assert isinstance(stage.backend, NetworkBackend)
        assert opened[-1].settings is config.inference
        assert opened[-1].num_cameras == 3
        assert detectors == [(config.inference, None, 3)]  # ready for a cold start of the rig's views
        payload = stage.payload()
    finally:
        stage.close()
    # The heartbeat keeps its provider (the API, /ready, metrics and viewer read it) and says what runs.
    assert payload["provider"] == "fake"
    assert (payload["runtime"], payload["device"], payload["precision"]) == ("fake", "nowhere", "f32")


@pytest.mark.parametrize("runtime", ["onnxruntime", pytest.param("torch", marks=pytest.mark.network)])
def test_the_stage_heartbeat_reports_the_runtime_that_runs(
    runtime: str, standin: Path, tmp_path: Path, torch_threads: None
) -> None:
    """End to end, no fakes: ``inference.runtime`` chooses what the stage's network backend runs on."""
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.inference_stage import InferenceStage

    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, render=False)
    section = {"backend": "network", "runtime": runtime, "device": "cpu", "model": str(standin)}
    config = config.model_copy(update={"inference": config_from_dict(
        {"cameras": CAMERAS, "inference": section}).inference})
    stage = InferenceStage(config)
    try:
        payload = stage.payload()
        out = stage.backend.pipeline.network.run(*_inputs(3))  # type: ignore[union-attr]
    finally:
        stage.close()
    assert out["heatmaps"].shape == (3, 17, 64, 64)
    expected = {"onnxruntime": ("CPUExecutionProvider", "onnxruntime", "CPUExecutionProvider"),
                "torch": ("torch", "torch", "cpu")}[runtime]
    assert (payload["provider"], payload["runtime"], payload["device"]) == expected
    assert payload["precision"] == "f32"


def test_a_simulated_stage_reports_no_runtime(tmp_path: Path) -> None:
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.inference_stage import InferenceStage

    stage = InferenceStage(synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, render=False))
    try:
        payload = stage.payload()
    finally:
        stage.close()
    assert payload["provider"] == "simulated (network bypassed)"
    assert (payload["runtime"], payload["device"], payload["precision"]) == (None, None, None)


# ---------------------------------------------------------------------------------------------
# The detector decodes any runtime's model


class _OneDetection:
    """A detector model of no known runtime: one person in every image, raw regressors as BlazePose's."""

    info = RuntimeInfo("elsewhere", "abacus", "f16")

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.zeros((len(images), len(ssd_anchors()), 12))
        scores = np.full((len(images), len(ssd_anchors())), -10.0)
        boxes[:, 300] = [0, 0, 44.8, 89.6, 0, 0, 0, -44.8, 0, 0, 0, 0]
        scores[:, 300] = 3.0
        return boxes, scores


def test_the_detector_decodes_any_runtimes_model_without_asking_its_type() -> None:
    detector = PersonDetector(_OneDetection())
    found = detector.detect([np.zeros((224, 224, 3), np.uint8), np.zeros((448, 448, 3), np.uint8)])
    assert [len(f) for f in found] == [1, 1]
    np.testing.assert_allclose(found[1][0].box, 2 * found[0][0].box + 0.5, atol=1e-9)  # image pixels
    assert detector.info == RuntimeInfo("elsewhere", "abacus", "f16")
    assert detector.runtime == "elsewhere"
