"""Round trips, format detection and input kinds of crosspose.calibration load/save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosspose.calibration import (
    FORMATS,
    CalibrationError,
    detect_format,
    dumps_rig,
    load_rig,
    load_rig_with_report,
    rig_files,
    save_rig,
)
from crosspose.geometry import CameraRig

SUFFIX = {
    "crosspose": "rig.json",
    "anipose": "rig.toml",
    "opencv": "rig.yml",
    "qualisys": "rig.qca.txt",
    "easymocap": "emc",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_through_files(tmp_path: Path, rig: CameraRig, fmt: str) -> None:
    written = save_rig(rig, tmp_path / SUFFIX[fmt], fmt)
    assert all(p.exists() for p in written)
    back = load_rig(written[0] if fmt != "easymocap" else tmp_path / SUFFIX[fmt])
    assert back.names == ["cam_2", "cam_10", "cam_1", "left"]
    assert back.allclose(rig, atol=1e-9)
    assert back.metadata["format"] == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_through_bytes_with_detection(rig: CameraRig, fmt: str) -> None:
    data = dumps_rig(rig, fmt)
    assert detect_format(data) == fmt
    assert load_rig(data).allclose(rig, atol=1e-9)
    assert load_rig(data.decode(), format=fmt).names == rig.names


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_is_inferred_from_the_file_name(tmp_path: Path, rig: CameraRig, fmt: str) -> None:
    written = save_rig(rig, tmp_path / SUFFIX[fmt], format=None)
    assert load_rig(written[0]).metadata["format"] == fmt


def test_default_format_is_crosspose_and_a_contradicting_name_is_refused(
    tmp_path: Path, rig: CameraRig
) -> None:
    (p,) = save_rig(rig, tmp_path / "rig.json")
    assert detect_format(p.read_bytes()) == "crosspose"
    with pytest.raises(CalibrationError, match="implies the anipose format"):
        save_rig(rig, tmp_path / "rig.toml")
    assert not (tmp_path / "rig.toml").exists()


def test_opencv_xml_round_trip(tmp_path: Path, rig: CameraRig) -> None:
    (p,) = save_rig(rig, tmp_path / "rig.xml", format=None)
    assert p.read_text().lstrip().startswith("<?xml")
    assert detect_format(p.read_bytes()) == "opencv"
    assert load_rig(p).allclose(rig)
    assert "calibration.xml" in rig_files(rig, "opencv", xml=True)


def test_easymocap_sources(tmp_path: Path, rig: CameraRig) -> None:
    files = rig_files(rig, "easymocap")
    assert set(files) == {"intri.yml", "extri.yml"}
    save_rig(rig, tmp_path, "easymocap")
    for source in (
        tmp_path,
        tmp_path / "intri.yml",
        (tmp_path / "intri.yml", tmp_path / "extri.yml"),
        (files["intri.yml"], files["extri.yml"]),
        files,
    ):
        assert load_rig(source).allclose(rig), source  # type: ignore[arg-type]


def test_easymocap_as_written_by_easymocap_without_image_size(rig: CameraRig) -> None:
    intri = (
        '%YAML:1.0\n---\nnames:\n  - "01"\n'
        "K_01: !!opencv-matrix\n  rows: 3\n  cols: 3\n  dt: d\n"
        "  data: [1000., 0., 959.5, 0., 1000., 539.5, 0., 0., 1.]\n"
        "dist_01: !!opencv-matrix\n  rows: 1\n  cols: 5\n  dt: d\n  data: [-0.1, 0.01, 0., 0., 0.]\n"
    )
    extri = (
        '%YAML:1.0\n---\nnames:\n  - "01"\n'
        "R_01: !!opencv-matrix\n  rows: 3\n  cols: 1\n  dt: d\n  data: [0., 0., 0.]\n"
        "T_01: !!opencv-matrix\n  rows: 3\n  cols: 1\n  dt: d\n  data: [0.1, 0.2, 3.0]\n"
    )
    rig1, report = load_rig_with_report((intri.encode(), extri.encode()))
    assert rig1.names == ["01"]
    assert rig1[0].image_size == (1920, 1080)
    np.testing.assert_allclose(rig1.R[0], np.eye(3))
    assert any("image size not in the file" in str(w) for w in report.warnings)


def test_anipose_as_pose2sim_writes_it() -> None:
    text = b"""
[cam_01]
name = "cam_01"
size = [ 1088.0, 1920.0]
matrix = [ [ 1681.2, 0.0, 533.0], [ 0.0, 1681.1, 948.1], [ 0.0, 0.0, 1.0]]
distortions = [ -0.0007, 0.002, 9.5e-06, 1.0e-05]
rotation = [ 1.688, 1.048, -0.419]
translation = [ 0.321, 0.956, 2.891]
fisheye = false

[metadata]
adjusted = false
error = 0.0
"""
    rig1 = load_rig(text)
    assert rig1.names == ["cam_01"]
    np.testing.assert_allclose(rig1.dist[0], [-0.0007, 0.002, 9.5e-06, 1.0e-05, 0.0])
    assert rig1[0].image_size == (1088, 1920)


def test_anipose_fisheye_is_refused(rig: CameraRig) -> None:
    text = dumps_rig(rig, "anipose").decode().replace("fisheye = false", "fisheye = true", 1)
    with pytest.raises(CalibrationError, match="fisheye"):
        load_rig(text.encode())


def test_opencv_common_variants() -> None:
    text = b"""%YAML:1.0
---
left:
  cameraMatrix: !!opencv-matrix
    rows: 3
    cols: 3
    dt: d
    data: [800., 0., 319.5, 0., 800., 239.5, 0., 0., 1.]
  distCoeffs: [0.1, 0.0, 0.0, 0.0]
  rvec: [0.0, 0.0, 0.0]
  tvec: [0.0, 0.0, 2.0]
  imageSize: [640, 480]
right:
  K: !!opencv-matrix
    rows: 3
    cols: 3
    dt: d
    data: [800., 0., 319.5, 0., 800., 239.5, 0., 0., 1.]
  D: [0.1, 0.0, 0.0, 0.0, 0.0]
  R: [0.0, 0.1, 0.0]
  T: [-0.5, 0.0, 2.0]
  image_width: 640
  image_height: 480
"""
    rig1 = load_rig(text)
    assert detect_format(text) == "opencv"
    assert rig1.names == ["left", "right"]
    np.testing.assert_allclose(rig1.t[1], [-0.5, 0.0, 2.0])
    assert not np.allclose(rig1.R[1], np.eye(3))


def test_unknown_format_lists_the_supported_ones(rig: CameraRig, tmp_path: Path) -> None:
    with pytest.raises(
        CalibrationError, match="supported formats: crosspose, anipose, easymocap, opencv, qualisys"
    ):
        load_rig(b"hello, I am not a calibration")
    with pytest.raises(CalibrationError, match="supported formats"):
        load_rig(dumps_rig(rig), format="blender")
    with pytest.raises(CalibrationError, match="supported formats"):
        save_rig(rig, tmp_path / "x.json", "blender")


def test_missing_file_is_a_calibration_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="not found"):
        load_rig(tmp_path / "nope.json")


def test_crosspose_json_schema(rig: CameraRig) -> None:
    import json

    doc = json.loads(dumps_rig(rig))
    assert doc["crosspose_calibration"] == 1
    assert doc["units"] == "m"
    assert {"created", "source", "notes"} <= set(doc["metadata"])
    assert [c["name"] for c in doc["cameras"]] == rig.names
    doc["crosspose_calibration"] = 2
    with pytest.raises(CalibrationError, match="newer"):
        load_rig(json.dumps(doc).encode())


def test_crosspose_json_declared_millimetres_are_converted(rig: CameraRig) -> None:
    import json

    doc = json.loads(dumps_rig(rig))
    doc["units"] = "mm"
    for c in doc["cameras"]:
        c["t"] = [v * 1000 for v in c["t"]]
    back, report = load_rig_with_report(json.dumps(doc).encode())
    assert back.allclose(rig, atol=1e-9)
    assert report.warnings == []


def test_save_refuses_an_invalid_rig(tmp_path: Path, rig: CameraRig) -> None:
    far = CameraRig([c.replace(t=c.t * 1000) for c in rig])
    with pytest.raises(CalibrationError, match="from the origin"):
        save_rig(far, tmp_path / "far.json")
    assert not (tmp_path / "far.json").exists()
