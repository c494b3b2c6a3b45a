"""The repository's promises to a newcomer: two commands, CI running the tests, a clean Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_design_card_layout_exists() -> None:
    for name in ("pyproject.toml", "Dockerfile", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / name).is_file(), name
    for name in ("service/crosspose", "models", "calibration", "tests", "deploy", "benchmarks"):
        assert (ROOT / name).is_dir(), name


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert "make demo\n" in blocks
    assert "make test\n" in blocks
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile  # the CPU build, installed before the package


def test_runtime_dependencies_are_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    for needed in ("torch", "onnxruntime-gpu", "opencv-python-headless", "fastapi", "uvicorn",
                   "pydantic", "numpy", "pyzmq", "msgpack"):
        assert needed in names, needed
    assert any("uvicorn[standard]" in d for d in project["dependencies"])
    assert project["scripts"]["crosspose"] == "crosspose.cli:main"


def _hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is a dev dependency on Linux x86_64 only")
def test_dockerfile_is_lint_clean() -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
