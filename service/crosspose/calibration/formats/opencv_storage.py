"""A single OpenCV FileStorage file (``.yml``/``.yaml``/``.xml``) with every camera's K, dist, R, t.

What we write::

    %YAML 1.2
    ---
    crosspose_calibration: 1
    units: m
    cameras:
       - name: cam01
         image_width: 1088
         image_height: 1920
         camera_matrix: !!opencv-matrix ...     # 3x3
         distortion_coefficients: !!opencv-matrix ...   # 1x5 k1 k2 p1 p2 k3
         R: !!opencv-matrix ...                 # 3x3 world -> camera
         t: !!opencv-matrix ...                 # 3x1 world -> camera, metres

What we read, besides that: a ``units`` key (``m``, ``cm``, ``mm``; absent means "not stated" and the
unit rule applies); cameras as a ``cameras`` sequence, as top-level maps (one per camera, key = name,
file order), or a single camera at the top level (named after the file); per camera the common key
spellings — ``camera_matrix``/``cameraMatrix``/``K``/``intrinsic``/``M``, ``distortion_coefficients``/
``dist_coeffs``/``distCoeffs``/``dist``/``D``, rotation ``R``/``rotation_matrix``/``Rot`` (3x3) or
``rvec``/``rotation_vector``/``rvecs`` (Rodrigues), translation ``t``/``T``/``tvec``/``translation``,
image size ``image_width`` + ``image_height``, ``image_size``/``imageSize`` ``[w, h]``, ``width``/``height``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from crosspose.calibration.formats import ParsedRig, filestorage
from crosspose.calibration.validation import CalibrationError, CameraRecord, Units
from crosspose.geometry import CameraRig

_K = ("camera_matrix", "cameraMatrix", "K", "intrinsic", "intrinsics", "M")
_DIST = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "dist", "D", "distortion")
_RMAT = ("R", "rotation_matrix", "Rot", "rotation")
_RVEC = ("rvec", "rotation_vector", "rvecs", "r")
_T = ("t", "T", "tvec", "translation", "tvecs")
_UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def _first(cam: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if cam.get(k) is not None:
            return cam[k]
    return None


def _is_camera(v: Any) -> bool:
    return isinstance(v, dict) and _first(v, _K) is not None


def _record(name: str, cam: dict[str, Any], scale: float) -> CameraRecord | str:
    K = _first(cam, _K)
    dist = _first(cam, _DIST)
    R = _first(cam, _RMAT)
    if R is not None and np.asarray(R).size == 3:  # a Rodrigues vector stored under "R"/"rotation"
        R, rvec = None, R
    else:
        rvec = _first(cam, _RVEC)
    t = _first(cam, _T)
    if R is None and rvec is not None:
        r = np.asarray(rvec, dtype=np.float64).reshape(-1)
        R = cv2.Rodrigues(r)[0] if r.shape == (3,) and np.all(np.isfinite(r)) else r
    missing = [label for label, v in (("camera matrix", K), ("rotation", R), ("translation", t)) if v is None]
    if "image_width" in cam and "image_height" in cam:
        size: Any = [cam["image_width"], cam["image_height"]]
    elif "width" in cam and "height" in cam:
        size = [cam["width"], cam["height"]]
    else:
        size = _first(cam, ("image_size", "imageSize", "size"))
    if size is None:
        missing.append("image size (image_width, image_height)")
    if missing:
        return f"camera {name!r}: {', '.join(missing)} missing"
    try:
        t = np.asarray(t, dtype=np.float64).reshape(-1) * scale
        size = np.asarray(size, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        pass  # validation reports it with the camera's name
    return CameraRecord(name, K, dist if dist is not None else [], R, t, size)


def read(data: bytes, default_name: str = "cam0") -> ParsedRig:
    fs = filestorage.open_text(data)
    root = fs.root()
    top = {k: filestorage.value(fs.getNode(k)) for k in root.keys()}  # noqa: SIM118 (cv2.FileNode)
    units_raw = top.get("units")
    units: Units | None = None
    scale = 1.0
    if units_raw is not None:
        if units_raw not in _UNIT_SCALE:
            raise CalibrationError([f'"units" must be one of {", ".join(_UNIT_SCALE)}, got {units_raw!r}'])
        scale = _UNIT_SCALE[str(units_raw)]
        units = "m"
    if isinstance(top.get("cameras"), list):
        cams: list[tuple[str, dict[str, Any]]] = []
        for i, c in enumerate(top["cameras"]):
            if not isinstance(c, dict):
                raise CalibrationError([f"cameras entry #{i + 1} is not a map of camera parameters"])
            cams.append((str(c.get("name", f"cam{i}")), c))
    elif _is_camera(top):
        cams = [(str(top.get("name", default_name)), top)]
    else:
        cams = [(k, v) for k, v in top.items() if _is_camera(v)]
    if not cams:
        raise CalibrationError(
            ["no cameras found: expected a 'cameras' list, or maps with a camera matrix (camera_matrix/K)"]
        )
    out = [_record(n, c, scale) for n, c in cams]
    problems = [p for p in out if isinstance(p, str)]
    if problems:
        raise CalibrationError(problems)
    records = [r for r in out if isinstance(r, CameraRecord)]
    return ParsedRig(records, units, {})


def write(rig: CameraRig, kind: str = "yml") -> bytes:
    out = filestorage.Writer(kind)
    out.write("crosspose_calibration", 1)
    out.write("units", "m")
    out.begin("cameras", cv2.FILE_NODE_SEQ)
    for c in rig:
        out.begin("", cv2.FILE_NODE_MAP)
        out.write("name", c.name)
        out.write("image_width", int(c.image_size[0]))
        out.write("image_height", int(c.image_size[1]))
        out.write("camera_matrix", c.K)
        out.write("distortion_coefficients", c.dist.reshape(1, 5))
        out.write("R", c.R)
        out.write("t", c.t.reshape(3, 1))
        out.end()
    out.end()
    return out.text()
