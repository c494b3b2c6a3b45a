"""The command line: groups and commands listed, version printed, and a light package of its own (``--help``
loads no heavy library, the domain packages know nothing of typer or the CLI)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose import __version__
from crosspose.cli import app

PACKAGE = Path(__file__).resolve().parents[1] / "service" / "crosspose"
HEAVY = ("torch", "numpy", "cv2", "onnxruntime", "zmq", "pydantic", "yaml")
COMMANDS = ("reconstruct", "grab", "serve", "demo", "replay")
GROUPS = {
    "calibration": ("show", "validate", "convert"),
    "model": ("build", "export", "evaluate", "train-fusion"),
    "config": ("validate",),
    "keys": ("generate",),
    "bench": ("synthetic",),
    "take": ("list", "export"),
}
WIDE = {"COLUMNS": "200", "TERM": "dumb"}  # rich would shorten nothing, but keep lines whole


def test_help_lists_the_command_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("demo", "calibration"):
        assert group in result.output


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crosspose", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "calibration" in done.stdout


def test_importing_the_cli_loads_no_heavy_library_and_no_domain_package() -> None:
    code = "import crosspose.cli, json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    heavy = sorted({name.split(".")[0] for name in loaded} & set(HEAVY))
    assert not heavy, f"{heavy}: import them inside the command that uses them"
    domain = sorted(name for name in loaded if name.split(".")[0] == "crosspose"
                    and name != "crosspose" and name.split(".")[1] != "cli")
    assert not domain, f"{domain}: import domain packages inside the command that uses them"


def test_console_script_help_lists_every_command_and_group() -> None:
    script = Path(sys.executable).with_name("crosspose")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False,
                          env={**os.environ, **WIDE})
    assert done.returncode == 0, done.stderr
    for name in (*COMMANDS, *GROUPS):
        assert f" {name} " in done.stdout, name


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help_lists_its_commands(group: str) -> None:
    result = CliRunner().invoke(app, [group, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for command in GROUPS[group]:
        assert f" {command} " in result.output, command


@pytest.mark.parametrize(
    "command", [[c] for c in COMMANDS] + [[g, c] for g, cs in sorted(GROUPS.items()) for c in cs],
    ids=" ".join,
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_option_choices_are_the_domain_modules() -> None:
    from typing import get_args

    from crosspose.calibration import FORMATS
    from crosspose.cli import choices
    from crosspose.inference.runtimes.onnxruntime import Device
    from crosspose.nets.build import MODELS
    from crosspose.recording.export import FORMATS as TAKE_FORMATS
    from crosspose.skeleton import LAYOUTS, SKELETONS, get_layout

    assert sorted(get_args(Device)) == sorted(choices.DEVICES)
    detectors = sorted(get_layout(name).name for name in choices.DETECTOR_LAYOUTS)
    assert sorted(set(LAYOUTS) - set(SKELETONS)) == detectors  # the solver's own layouts are not a detector's
    assert FORMATS == choices.CALIBRATION_FORMATS
    assert TAKE_FORMATS == choices.TAKE_EXPORT_FORMATS
    assert tuple(m.name for m in MODELS) == choices.BUILT_MODELS


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_domain_packages_import_neither_typer_nor_the_cli() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative == Path("__main__.py"):
            continue
        wrong = {m for m in _imported_modules(path)
                 if m.split(".")[0] == "typer" or m.split(".")[:2] == ["crosspose", "cli"]}
        if wrong:
            offenders[str(relative)] = sorted(wrong)
    assert not offenders, f"command wiring belongs in crosspose/cli/: {offenders}"
