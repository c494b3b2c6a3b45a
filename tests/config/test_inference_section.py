"""The ``inference`` section, discriminated by ``runtime``: files without the key are ``auto`` (which keeps
their device and threads), each runtime has its own devices and precisions, an explicit ``openvino`` needs
the package, and ``crosspose config validate`` locates a wrong runtime, device or precision."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.config import (
    AutoInference,
    Config,
    ConfigError,
    OnnxRuntimeInference,
    OpenVinoInference,
    TorchInference,
    config_from_dict,
    load_config,
)
from crosspose.inference.runtimes.auto import CpuInfo, choose

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.yaml"
CAMERAS = [{"name": "a", "source": "0"}]


def test_a_section_without_runtime_is_auto_and_keeps_its_settings(tmp_path: Path) -> None:
    example = load_config(EXAMPLE, environ={})  # shows `runtime: auto` and `precision: auto`
    assert example.inference == AutoInference()
    old = tmp_path / "old.yaml"  # the example's section before `auto` (and before runtimes were a registry)
    old.write_text("cameras:\n  - {name: a, source: '0'}\ninference:\n  model: null\n  device: auto\n"
                   "  backend: network\n  threads: 1\n")
    # It keeps its one thread (per worker; the default is now the cores shared out among the workers).
    assert load_config(old, environ={}).inference == AutoInference(threads=1)
    assert config_from_dict({"cameras": CAMERAS}).inference == AutoInference()
    # An old GPU config (no runtime key, device cuda) still runs ONNX Runtime on CUDA, with its threads.
    cfg = config_from_dict({"cameras": CAMERAS, "inference": {"device": "cuda", "threads": 2}})
    assert (cfg.inference.runtime, cfg.inference.device, cfg.inference.threads) == ("auto", "cuda", 2)
    no_bf16 = CpuInfo("test CPU", frozenset({"avx2"}))
    assert choose(cfg.inference, cpu=no_bf16, openvino=True, gpu=False).settings == OnnxRuntimeInference(
        device="cuda", threads=2)
    torch_cfg = config_from_dict({"cameras": CAMERAS},
                                 environ={"CROSSPOSE__INFERENCE__RUNTIME": "torch"})
    assert torch_cfg.inference == TorchInference()
    assert (torch_cfg.inference.device, torch_cfg.inference.threads) == ("cpu", 1)
    # A dump (e.g. a take's recorded config) reads back as the same runtime.
    for section in (torch_cfg.inference, example.inference, OnnxRuntimeInference(precision="f32")):
        assert Config.model_validate({**torch_cfg.model_dump(), "inference": section.model_dump()}
                                     ).inference == section


@pytest.mark.parametrize(("section", "expected"), [
    ("{runtime: torch, device: tensorrt}", "inference.device: Input should be 'cpu' or 'cuda' (with runtime: "
                                           "torch)"),
    ("{device: tpu}", "inference.device: Input should be 'auto', 'cpu', 'cuda' or 'tensorrt' (with runtime: "
                      "auto)"),
    ("{runtime: openvino, device: cuda}", "inference.device: Input should be 'cpu' (with runtime: openvino)"),
    ("{runtime: tensorflow}", "inference.runtime: unknown runtime 'tensorflow'; expected one of 'auto', "
                              "'onnxruntime', 'openvino', 'torch'"),
    ("{runtime: torch, treads: 2}", "inference.treads: unknown key"),
    ("{precision: f16}", "inference.precision: Input should be 'auto', 'f32' or 'bf16' (with runtime: auto)"),
    ("{runtime: onnxruntime, precision: bf16}", "inference.precision: Value error, ONNX Runtime runs the "
                                                "network in f32; the bf16 backbone is OpenVINO's"),
    ("{runtime: torch, precision: bf16}", "inference.precision: Value error, torch runs the network in f32"),
])
def test_validate_locates_a_runtime_or_device_error(tmp_path: Path, section: str, expected: str) -> None:
    path = tmp_path / "crosspose.yaml"
    path.write_text(f"cameras:\n  - {{name: a, source: '0'}}\ninference: {section}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert "1 error(s)" in result.output
    assert expected in result.output
    with pytest.raises(ConfigError):
        load_config(path, environ={})


def test_validate_names_the_runtime_it_will_run(tmp_path: Path) -> None:
    path = tmp_path / "crosspose.yaml"
    path.write_text("cameras:\n  - {name: a, source: '0'}\ninference: {runtime: torch, device: cuda}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert "inference network (torch on cuda, precision auto)" in result.output
    assert "runtime auto" not in result.output
    # auto: what it becomes on this host, and why.
    path.write_text("cameras:\n  - {name: a, source: '0'}\ninference: {device: cpu}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert "inference network (auto on cpu, precision auto)" in result.output
    assert "  runtime auto on this host: " in result.output


def test_an_explicit_openvino_without_the_package_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as on a host where it is not installed
    path = tmp_path / "crosspose.yaml"
    path.write_text("cameras:\n  - {name: a, source: '0'}\ninference: {runtime: openvino, precision: f32}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)], env={})
    assert result.exit_code == 1
    assert ("inference.runtime: Value error, runtime 'openvino' needs the openvino package, which is not "
            "installed here: pip install 'crosspose[openvino]'") in result.output
    # auto, the default, needs nothing: it runs ONNX Runtime there.
    assert config_from_dict({"cameras": CAMERAS}).inference == AutoInference()


def test_every_runtime_field_is_described() -> None:
    for model in (AutoInference, OnnxRuntimeInference, OpenVinoInference, TorchInference):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize("value", ["0", "17", "two", "true", "-1", "1.5"])
def test_validate_locates_a_wrong_worker_count(tmp_path: Path, value: str) -> None:
    path = tmp_path / "crosspose.yaml"
    path.write_text(f"cameras:\n  - {{name: a, source: '0'}}\ninference: {{workers: {value}}}\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert "1 error(s)" in result.output
    assert "inference.workers: Value error, 'auto' or a number of inference worker processes from 1 to 16" \
        in result.output


def test_workers_are_auto_by_default_a_number_or_an_environment_override() -> None:
    assert config_from_dict({"cameras": CAMERAS}).inference.workers == "auto"
    assert config_from_dict({"cameras": CAMERAS, "inference": {"runtime": "torch", "workers": 3}}
                            ).inference.workers == 3
    env = {"CROSSPOSE__INFERENCE__WORKERS": "2"}
    assert config_from_dict({"cameras": CAMERAS}, environ=env).inference.workers == 2
