"""`crosspose serve` checks, before anything starts, that the network it will run gives the solver's
layout: a configured model of another layout (an export made before the full body was the default)
exits with code 1 naming both layouts and the fix, instead of a service that never becomes ready."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import typer
from onnx import TensorProto, helper

from crosspose.cli.service import network_for
from crosspose.config import config_from_dict
from crosspose.skeleton import H36M17


def _declaring(path: Path, skeleton_name: str, joints: tuple[str, ...]) -> Path:
    """A one-node ONNX file whose metadata declares ``skeleton_name`` (all ``network_for`` reads)."""
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    for key, value in (("skeleton", skeleton_name), ("joints", ",".join(joints))):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def _config(model: Path, skeleton: str) -> object:
    return config_from_dict({
        "cameras": [{"name": "c1", "source": "synthetic"}, {"name": "c2", "source": "synthetic"}],
        "inference": {"runtime": "onnxruntime", "model": str(model)},
        "solver": {"skeleton": skeleton},
    })


def test_a_model_of_another_layout_is_refused_naming_both(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = _declaring(tmp_path / "old.onnx", H36M17.name, H36M17.joints)
    with pytest.raises(typer.Exit) as info:
        network_for(_config(model, "crosspose-body32"))  # type: ignore[arg-type]
    assert info.value.exit_code == 1
    err = capsys.readouterr().err
    assert "gives h36m17 heatmaps but solver.skeleton is crosspose-body32" in err
    assert "crosspose model export --skeleton crosspose-body32" in err


def test_a_model_of_the_solvers_layout_starts(tmp_path: Path) -> None:
    model = _declaring(tmp_path / "h36m.onnx", H36M17.name, H36M17.joints)
    network_for(_config(model, "h36m17"))  # type: ignore[arg-type]
