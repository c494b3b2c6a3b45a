"""Each validation rule, with the words an operator reads, and the millimetre rule."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from crosspose.calibration import CalibrationError, dumps_rig, load_rig, load_rig_with_report, validate_rig
from crosspose.geometry import CameraRig


def _doc(rig: CameraRig) -> dict[str, Any]:
    return json.loads(dumps_rig(rig))


def _load(doc: dict[str, Any]) -> CameraRig:
    return load_rig(json.dumps(doc).encode())


def _edit(rig: CameraRig, camera: int, field: str, value: Any) -> dict[str, Any]:
    doc = _doc(rig)
    doc["cameras"][camera][field] = value
    return doc


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "K",
            [[1000, 0, 500], [0, 1000, 500]],
            r"camera 'cam_10', K: intrinsic matrix K must have shape \(3, 3\)",
        ),
        ("K", [[-1000, 0, 500], [0, 1000, 500], [0, 0, 1]], r"camera 'cam_10', K: focal lengths fx=-1000"),
        (
            "K",
            [[1000, 0, 5000], [0, 1000, 500], [0, 0, 1]],
            r"camera 'cam_10', K: principal point .* outside",
        ),
        (
            "K",
            [[1000, 0, 500], [0, 1000, 500], [0, 0, 2]],
            r"camera 'cam_10', K: intrinsic matrix K must look like",
        ),
        ("R", [[1, 0, 0], [0, 1, 0], [0, 0, -1]], r"camera 'cam_10', R: rotation R has determinant -1"),
        (
            "R",
            [[1, 0.1, 0], [0, 1, 0], [0, 0, 1]],
            r"camera 'cam_10', R: rotation R is not a rotation matrix",
        ),
        ("R", [[1, 0], [0, 1]], r"camera 'cam_10', R: rotation R must have shape \(3, 3\)"),
        ("t", [0, 0], r"camera 'cam_10', t: translation t must have shape \(3,\)"),
        ("t", [0, "x", 1], r"camera 'cam_10', t: translation t is not a list of numbers"),
        (
            "image_size",
            [0, 1080],
            r"camera 'cam_10', image_size: image size \[0.0, 1080.0\] must be positive",
        ),
        ("image_size", [1920], r"camera 'cam_10', image_size: image size must have shape \(2,\)"),
        (
            "dist",
            [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            r"camera 'cam_10', dist: distortion has 8 coefficients",
        ),
        ("name", "cam_2", r"camera 'cam_2', name: this name is used by more than one camera"),
        ("name", " ", r"name: a camera has an empty name"),
    ],
)
def test_each_error_names_camera_and_field(rig: CameraRig, field: str, value: Any, message: str) -> None:
    with pytest.raises(CalibrationError, match=message) as info:
        _load(_edit(rig, 1, field, value))
    assert len(info.value.problems) >= 1
    assert isinstance(info.value, ValueError)


def test_non_finite_values_are_refused(rig: CameraRig) -> None:
    doc = _doc(rig)
    doc["cameras"][0]["K"][0][2] = float("nan")  # json.dumps writes NaN, json.loads reads it
    with pytest.raises(CalibrationError, match="camera 'cam_2', K: intrinsic matrix K contains NaN"):
        _load(doc)


def test_every_problem_is_reported_at_once(rig: CameraRig) -> None:
    doc = _edit(rig, 0, "R", [[2, 0, 0], [0, 1, 0], [0, 0, 1]])
    doc["cameras"][3]["K"][0][0] = 0
    with pytest.raises(CalibrationError) as info:
        _load(doc)
    text = str(info.value)
    assert "camera 'cam_2', R" in text
    assert "camera 'left', K" in text
    assert len(info.value.problems) == 2


def test_rig_validation_and_expected_names(rig: CameraRig) -> None:
    assert validate_rig(rig).ok
    report = validate_rig(rig, expected_names=["cam_2", "cam_10", "cam_1", "right"])
    assert not report.ok
    assert "no calibration for configured camera(s): right" in "\n".join(report.lines())
    assert "not configured: left" in "\n".join(report.lines())


def test_principal_point_off_centre_is_a_warning(rig: CameraRig) -> None:
    w = rig[0].image_size[0]
    doc = _doc(rig)
    doc["cameras"][0]["K"][0][2] = 0.9 * w
    _, report = load_rig_with_report(json.dumps(doc).encode())
    assert report.ok
    assert any("far from the centre" in str(w) for w in report.warnings)


@pytest.mark.parametrize("fmt", ["anipose", "opencv", "easymocap"])
def test_millimetres_in_unitless_formats_are_converted_with_a_warning(rig: CameraRig, fmt: str) -> None:
    mm = CameraRig([c.replace(t=c.t * 1000) for c in rig])
    data = dumps_rig(mm, fmt)
    if fmt == "opencv":  # our writer states units: m; real-world files often do not
        data = data.replace(b"units: m\n", b"")
    back, report = load_rig_with_report(data)
    assert back.allclose(rig, atol=1e-9)
    assert any("look like millimetres" in str(w) and "x 0.001" in str(w) for w in report.warnings)


def test_millimetres_in_a_file_that_says_metres_are_refused(rig: CameraRig) -> None:
    doc = _doc(rig)
    for c in doc["cameras"]:
        c["t"] = [v * 1000 for v in c["t"]]
    with pytest.raises(
        CalibrationError, match=r"more than 50 m from the origin although the file says .* in m"
    ):
        _load(doc)


def test_mixed_units_are_refused(rig: CameraRig) -> None:
    mixed = CameraRig([c.replace(t=c.t * (1000 if i == 0 else 1)) for i, c in enumerate(rig)])
    with pytest.raises(CalibrationError, match=r"camera\(s\) cam_2 .* while others are not"):
        load_rig(dumps_rig(mixed, "anipose"))


def test_metres_are_left_alone(rig: CameraRig) -> None:
    back, report = load_rig_with_report(dumps_rig(rig, "anipose"))
    assert back.allclose(rig)
    assert report.warnings == []
    assert np.all(np.linalg.norm(back.centers, axis=1) < 10)
