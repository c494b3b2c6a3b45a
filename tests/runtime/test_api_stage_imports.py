"""The API process starts without the solver's libraries: importing its stage and the API package loads
neither torch nor the geometry (≈ 2 s before; a calibration upload loads them when it comes). Of the solver
only its options come with the config (``crosspose.solver.options``, plain dataclasses)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_api_stage_leaves_torch_unloaded() -> None:
    code = (
        "import sys, crosspose.runtime.api_stage, crosspose.api\n"
        "print(sorted(m for m in sys.modules if m in ('torch', 'crosspose.geometry')\n"
        "             or m.startswith('crosspose.solver.') and m != 'crosspose.solver.options'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
