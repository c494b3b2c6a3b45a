"""benchmarks/gpu.py, the GPU measurement of issue 18.5: its network and solver sections on CUDA write
their tables and JSON, and the GPU's heatmaps and 3D agree with the CPU's."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.gpu
def test_gpu_sections_measure_and_agree_with_the_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--out", str(tmp_path), "--sections",
         "providers", "network", "solver", "--sets", "4", "--repeats", "8"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    providers = json.loads((tmp_path / "providers.json").read_text())
    assert providers["torch_runtime_runs"]["device"].startswith("cuda")
    network = json.loads((tmp_path / "network.json").read_text())
    f32 = network["torch cuda f32"]
    assert f32["ms_4_views"] > 0
    assert f32["moved_pct"] < 1.0
    assert f32["max_abs_diff"] < 1e-2
    solver = json.loads((tmp_path / "solver.json").read_text())
    assert solver["cuda"]["cold_ms"] > 0
    assert solver["cpu_vs_cuda_max_mm"] < 1.0
