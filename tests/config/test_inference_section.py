"""The ``inference`` section, discriminated by ``runtime``: files without the key are ONNX Runtime as before,
each runtime has its own devices, and ``crosspose config validate`` locates a wrong runtime or device."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.config import (
    Config,
    ConfigError,
    OnnxRuntimeInference,
    TorchInference,
    config_from_dict,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.yaml"
CAMERAS = [{"name": "a", "source": "0"}]


def test_a_section_without_runtime_is_onnx_runtime_as_before(tmp_path: Path) -> None:
    example = load_config(EXAMPLE, environ={})  # shows `runtime: onnxruntime`
    assert isinstance(example.inference, OnnxRuntimeInference)
    old = tmp_path / "old.yaml"  # the example's section before runtimes were a registry
    old.write_text("cameras:\n  - {name: a, source: '0'}\ninference:\n  model: null\n  device: auto\n"
                   "  backend: network\n  threads: 1\n")
    assert load_config(old, environ={}).inference == example.inference == OnnxRuntimeInference()
    assert config_from_dict({"cameras": CAMERAS}).inference == OnnxRuntimeInference()
    cfg = config_from_dict({"cameras": CAMERAS, "inference": {"device": "cuda", "threads": 2}})
    assert (cfg.inference.runtime, cfg.inference.device, cfg.inference.threads) == ("onnxruntime", "cuda", 2)
    torch_cfg = config_from_dict({"cameras": CAMERAS},
                                 environ={"CROSSPOSE__INFERENCE__RUNTIME": "torch"})
    assert torch_cfg.inference == TorchInference()
    assert (torch_cfg.inference.device, torch_cfg.inference.threads) == ("cpu", 1)
    # A dump (e.g. a take's recorded config) reads back as the same runtime.
    assert Config.model_validate(torch_cfg.model_dump()).inference == torch_cfg.inference


@pytest.mark.parametrize(("section", "expected"), [
    ("{runtime: torch, device: tensorrt}", "inference.device: Input should be 'cpu' or 'cuda' (with runtime: "
                                           "torch)"),
    ("{device: tpu}", "inference.device: Input should be 'auto', 'cpu', 'cuda' or 'tensorrt' (with runtime: "
                      "onnxruntime)"),
    ("{runtime: openvino}", "inference.runtime: unknown runtime 'openvino'; expected one of 'onnxruntime', "
                            "'torch'"),
    ("{runtime: torch, treads: 2}", "inference.treads: unknown key"),
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
    assert "inference network (torch on cuda)" in result.output


def test_every_runtime_field_is_described() -> None:
    for model in (OnnxRuntimeInference, TorchInference):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
