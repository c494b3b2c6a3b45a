"""The command line's root: groups listed, version printed."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from crosspose import __version__
from crosspose.cli import app


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
