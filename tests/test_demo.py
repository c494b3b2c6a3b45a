"""The offline synthetic take (``crosspose bench synthetic``): videos, skeleton stream, accuracy; and
the demo command's argument checks (the live demo itself is tested in tests/runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.demo import run_synthetic


def test_synthetic_take_is_solved_and_written(tmp_path: Path) -> None:
    result = run_synthetic(
        tmp_path, seed=3, num_frames=6, num_cameras=4, realistic_errors=False, progress=False
    )
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.stem for v in videos] == ["cam1", "cam2", "cam3", "cam4"]
    cap = cv2.VideoCapture(str(videos[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, frame = cap.read()
    assert ok
    assert frame.ndim == 3
    lines = (tmp_path / "skeletons.jsonl").read_text().splitlines()
    assert len(lines) == 6
    message = json.loads(lines[0])
    assert message["skeleton"] == "h36m17"
    assert message["units"] == "m"
    assert np.asarray(message["joints"]).shape == (17, 4)
    # Clean heatmaps: the solver's answer is within a centimetre or so of ground truth.
    assert result.mpjpe_mm() < 15.0
    assert np.isfinite(result.joints).all()


def test_demo_command_rejects_an_unknown_studio(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    out = CliRunner().invoke(app, ["demo", "--studio", "mars", "--workdir", str(workdir)])
    assert out.exit_code != 0
    assert "unknown studio 'mars'" in out.output
    assert not workdir.exists()


def test_bench_synthetic_command_reports_the_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["bench", "synthetic", "--frames", "3", "--no-video", "--clean",
                                   "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "MPJPE" in out.output
    assert (tmp_path / "skeletons.jsonl").is_file()
