"""Calibration formats in and out, and validation: every way a camera rig enters or leaves crosspose.

``load_rig``/``save_rig``/``dumps_rig`` speak crosspose JSON, anipose TOML, EasyMocap, OpenCV
FileStorage and Qualisys ``.qca.txt``; everything loaded is validated and in metres, or refused with one
``CalibrationError`` that lists every problem.
"""

from crosspose.calibration.rigfile import (
    FORMATS,
    detect_format,
    dumps_rig,
    format_from_path,
    load_rig,
    load_rig_with_report,
    rig_files,
    save_rig,
)
from crosspose.calibration.validation import (
    MAX_CAMERA_DISTANCE_M,
    CalibrationError,
    CameraRecord,
    Problem,
    ValidationReport,
    validate_rig,
)

__all__ = [
    "FORMATS",
    "MAX_CAMERA_DISTANCE_M",
    "CalibrationError",
    "CameraRecord",
    "Problem",
    "ValidationReport",
    "detect_format",
    "dumps_rig",
    "format_from_path",
    "load_rig",
    "load_rig_with_report",
    "rig_files",
    "save_rig",
    "validate_rig",
]
