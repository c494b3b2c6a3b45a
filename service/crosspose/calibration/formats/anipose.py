"""anipose-style TOML, as written by anipose/aniposelib, Pose2Sim, FreeMoCap and Caliscope.

One table per camera, in file order (we never sort: aniposelib's sorted order puts ``cam_10`` before
``cam_2``)::

    [cam_00]                      # table key; the camera's name is the ``name`` value when present
    name = "cam01"
    size = [1088, 1920]           # width, height (pixels)
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2]   # 4 or 5 values, OpenCV model
    rotation = [rx, ry, rz]       # Rodrigues vector, world -> camera
    translation = [tx, ty, tz]    # world -> camera; the format does not state units (we write metres)
    fisheye = false               # true is refused: crosspose uses the pinhole model

    [metadata]                    # optional; anipose writes adjusted/error

We write table keys ``cam_00``, ``cam_01`` … (zero-padded, so readers that sort keys keep our order).
"""

from __future__ import annotations

import tomllib
from typing import Any

import cv2
import numpy as np
import tomli_w

from crosspose.calibration.formats import ParsedRig
from crosspose.calibration.validation import CalibrationError, CameraRecord, ValidationReport
from crosspose.geometry import CameraRig

_REQUIRED = ("matrix", "rotation", "translation")


def _is_camera_table(value: Any) -> bool:
    return isinstance(value, dict) and all(k in value for k in _REQUIRED)


def looks_like(text: str) -> bool:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return any(_is_camera_table(v) for v in doc.values())


def _rodrigues(rvec: Any) -> Any:
    try:
        r = np.asarray(rvec, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return rvec  # validation names the bad field
    if r.shape != (3,) or not np.all(np.isfinite(r)):
        return np.full((3, 3), np.nan) if r.shape == (3,) else r
    return cv2.Rodrigues(r)[0]


def read(data: bytes) -> ParsedRig:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationError([f"not valid TOML: {exc}"]) from None
    report = ValidationReport()
    records = []
    problems = []
    for key, table in doc.items():
        if key == "metadata" or not isinstance(table, dict):
            continue
        if not _is_camera_table(table):
            missing = [k for k in _REQUIRED if k not in table]
            problems.append(f"table [{key}] lacks {', '.join(missing)}")
            continue
        name = str(table.get("name", key))
        if table.get("fisheye", False):
            problems.append(
                f"camera {name!r}: fisheye calibrations are not supported; crosspose uses the pinhole "
                "model with k1 k2 p1 p2 k3 distortion. Calibrate this camera with the pinhole model"
            )
            continue
        if "size" not in table:
            problems.append(f"camera {name!r}: the image size (size = [width, height]) is missing")
            continue
        records.append(
            CameraRecord(
                name=name,
                K=table["matrix"],
                dist=table.get("distortions", []),
                R=_rodrigues(table["rotation"]),
                t=table["translation"],
                image_size=table["size"],
            )
        )
    if problems:
        raise CalibrationError(problems)
    if not records:
        raise CalibrationError(["no camera tables (with matrix, rotation, translation) in the TOML file"])
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return ParsedRig(records, None, dict(metadata or {}), report)


def write(rig: CameraRig) -> bytes:
    width = max(2, len(str(len(rig) - 1)))
    doc: dict[str, Any] = {}
    for i, c in enumerate(rig):
        doc[f"cam_{i:0{width}d}"] = {
            "name": c.name,
            "size": [int(c.image_size[0]), int(c.image_size[1])],
            "matrix": c.K.tolist(),
            "distortions": c.dist.tolist(),
            "rotation": cv2.Rodrigues(c.R)[0].reshape(3).tolist(),
            "translation": c.t.tolist(),
            "fisheye": False,
        }
    meta: dict[str, Any] = {"adjusted": False, "error": 0.0}
    for k, v in rig.metadata.items():
        if k != "format" and isinstance(v, (str, int, float, bool)):
            meta[k] = v
    doc["metadata"] = meta
    return tomli_w.dumps(doc).encode("utf-8")
