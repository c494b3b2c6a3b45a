"""``solver.options`` is typed: the config turns it into :class:`~crosspose.solver.SolverOptions` (nested
maps into their option dataclasses), ``crosspose config validate`` locates a wrong key or type without
loading torch, and the solver stage runs with exactly what the file says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.config import ConfigError, config_from_dict, load_config
from crosspose.solver import RefineOptions, RelabelOptions, RootSearchOptions, SolverOptions

CAMERAS = "cameras:\n  - {name: a, source: synthetic}\n  - {name: b, source: synthetic}\n"


def _write(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "crosspose.yaml"
    path.write_text(f"{CAMERAS}solver:\n  options: {options}\n")
    return path


def test_no_options_are_the_solver_defaults() -> None:
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}]})
    assert cfg.solver.options == SolverOptions()
    assert cfg.solver.changed_options() == {}
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}], "solver": {"options": {}}})
    assert cfg.solver.options == SolverOptions()


def test_nested_maps_become_the_option_dataclasses(tmp_path: Path) -> None:
    path = _write(tmp_path, "{top_k: 16, volume_centre: [0, 0, 1], refine_options: {radius: 2}, "
                            "root_options: {dilate: 3}, relabel_options: {min_peak: 0.3}}")
    options = load_config(path, environ={"CROSSPOSE__SOLVER__OPTIONS__REFINE_OPTIONS__ITERATIONS": "2"}
                          ).solver.options
    assert isinstance(options, SolverOptions)
    assert options.top_k == 16
    assert options.volume_centre == (0.0, 0.0, 1.0)
    assert options.refine_options == RefineOptions(radius=2, iterations=2)
    assert options.root_options == RootSearchOptions(dilate=3)
    assert options.relabel_options == RelabelOptions(min_peak=0.3)


@pytest.mark.parametrize(("options", "expected"), [
    ("{trackng: false}", "solver.options.trackng: unknown key"),
    ("{refine_options: {raduis: 2}}", "solver.options.refine_options.raduis: unknown key"),
    ("{top_k: many}", "solver.options.top_k: Input should be a valid integer"),
    ("{refine_options: {iterations: 2.5}}", "solver.options.refine_options.iterations: Input should be a "
                                            "valid integer"),
    ("{root_options: 4}", "solver.options.root_options: Input should be a dictionary"),
    ("{relabel_options: {min_peak: high}}", "solver.options.relabel_options.min_peak: Input should be a "
                                            "valid number"),
    ("{track_max_speed: -1}", "solver.options: Value error, solver option track_max_speed must be >= 0"),
    ("{track_max_age_s: -0.1}", "solver.options: Value error, solver option track_max_age_s must be >= 0"),
])
def test_a_wrong_option_is_located(tmp_path: Path, options: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, options), environ={})
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(expected)


def test_validate_reports_every_wrong_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "{trackng: false, top_k: many, refine_options: {raduis: 2}}")
    result = CliRunner().invoke(app, ["config", "validate", str(path)], env={})
    assert result.exit_code == 1
    assert "3 error(s)" in result.output
    for location in ("solver.options.trackng: unknown key", "solver.options.top_k: Input should be",
                     "solver.options.refine_options.raduis: unknown key"):
        assert location in result.output


def test_validate_lists_the_options_set(tmp_path: Path) -> None:
    path = _write(tmp_path, "{top_k: 16, refine_options: {radius: 2}}")
    result = CliRunner().invoke(app, ["config", "validate", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert "solver crosspose-body32; options: top_k=16, refine_options.radius=2" in result.output


def test_the_solver_layout_is_a_known_skeleton(tmp_path: Path) -> None:
    default = config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}]}).solver.skeleton
    assert default == "crosspose-body32"
    path = tmp_path / "crosspose.yaml"
    path.write_text(f"{CAMERAS}solver:\n  skeleton: crosspose-body99\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.errors == ["solver.skeleton: Value error, unknown skeleton 'crosspose-body99'; "
                                 "known: h36m17, crosspose-body32"]


def test_validating_solver_options_loads_no_torch(tmp_path: Path) -> None:
    good = _write(tmp_path, "{top_k: 16, refine_options: {radius: 2}, root_options: {dilate: 3}}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{CAMERAS}solver:\n  options: {{refine_options: {{raduis: 2}}}}\n")
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from crosspose.cli import app\n"
        f"files = {[str(good), str(bad)]}\n"
        "codes = [CliRunner().invoke(app, ['config', 'validate', p]).exit_code for p in files]\n"
        "print(json.dumps([codes, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    codes, loaded = json.loads(done.stdout)
    assert codes == [0, 1]
    assert "torch" not in {name.split(".")[0] for name in loaded}
    assert "crosspose.solver.options" in loaded  # (the options were checked, by their dataclasses)


def test_the_solver_stage_runs_the_configured_options(tmp_path: Path) -> None:
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.solver_stage import SolverStage

    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=3, frames=2, environ={
        "CROSSPOSE__SOLVER__OPTIONS__TOP_K": "8",
        "CROSSPOSE__SOLVER__OPTIONS__REFINE_OPTIONS__RADIUS": "2",
    })
    stage = SolverStage(config)
    try:
        options = stage.pose_step.solver.options
    finally:
        stage.close()
    assert isinstance(options.refine_options, RefineOptions)
    assert options.refine_options.radius == 2
    assert options.top_k == 8
    assert options == config.solver.options
