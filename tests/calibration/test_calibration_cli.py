"""``crosspose calibration show|validate|convert`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crosspose.calibration import dumps_rig, load_rig, save_rig
from crosspose.cli import app
from crosspose.geometry import CameraRig

runner = CliRunner()


def test_help_has_examples() -> None:
    for cmd in ("show", "validate", "convert"):
        result = runner.invoke(app, ["calibration", cmd, "--help"])
        assert result.exit_code == 0
        assert "Example: crosspose calibration" in result.output


def test_show_prints_cameras_and_writes_a_plot(tmp_path: Path, rig: CameraRig) -> None:
    (src,) = save_rig(rig, tmp_path / "rig.toml", format="anipose")
    png = tmp_path / "top.png"
    result = runner.invoke(app, ["calibration", "show", str(src), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    for name in rig.names:
        assert name in result.output
    assert "1920 x 1080" in result.output
    c = rig.centers[0]
    assert f"{c[0]:.3f}, {c[1]:.3f}, {c[2]:.3f}" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_exit_codes(tmp_path: Path, rig: CameraRig) -> None:
    (good,) = save_rig(rig, tmp_path / "good.json")
    result = runner.invoke(app, ["calibration", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "valid crosspose calibration, 4 cameras" in result.output

    doc = json.loads(dumps_rig(rig))
    doc["cameras"][2]["K"][1][1] = -5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = runner.invoke(app, ["calibration", "validate", str(bad)])
    assert result.exit_code == 1
    assert "camera 'cam_1', K: focal lengths" in result.output


def test_validate_prints_warnings(tmp_path: Path, rig: CameraRig) -> None:
    mm = CameraRig([c.replace(t=c.t * 1000) for c in rig])
    src = tmp_path / "mm.toml"
    src.write_bytes(dumps_rig(mm, "anipose"))
    result = runner.invoke(app, ["calibration", "validate", str(src)])
    assert result.exit_code == 0
    assert "warning:" in result.output
    assert "millimetres" in result.output


def test_convert_between_formats(tmp_path: Path, rig: CameraRig) -> None:
    (src,) = save_rig(rig, tmp_path / "rig.json")
    result = runner.invoke(
        app, ["calibration", "convert", str(src), str(tmp_path / "out"), "--to", "easymocap"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "intri.yml").exists()
    result = runner.invoke(
        app,
        [
            "calibration",
            "convert",
            str(tmp_path / "out"),
            str(tmp_path / "back.qca.txt"),
            "--from",
            "easymocap",
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_rig(tmp_path / "back.qca.txt").allclose(rig)


def test_convert_refuses_bad_input_and_unknown_format(tmp_path: Path, rig: CameraRig) -> None:
    (src,) = save_rig(rig, tmp_path / "rig.json")
    result = runner.invoke(
        app, ["calibration", "convert", str(src), str(tmp_path / "x.json"), "--to", "maya"]
    )
    assert result.exit_code == 1
    assert "supported formats" in result.output
    result = runner.invoke(
        app, ["calibration", "convert", str(tmp_path / "missing.json"), str(tmp_path / "y.json")]
    )
    assert result.exit_code == 1
    assert "not found" in result.output
    assert not (tmp_path / "y.json").exists()
