"""Qualisys Track Manager calibration export (``.qca.txt``, XML), read and written.

How QTM's numbers map to our OpenCV camera (worked out on the Pose2Sim demo rig, see below):

- ``transform x y z``: the camera centre in world millimetres (→ metres).
- ``transform r11 … r33``: the matrix ``M`` whose *rows* are the camera's axes in world coordinates in
  QTM's camera frame, which has y pointing up in the image and z pointing backwards, out of the lens.
  Our world→camera rotation is ``R = diag(1, −1, −1) · M`` (flip y and z into OpenCV's x-right, y-down,
  z-forward frame) and ``t = −R · centre``.
- ``intrinsic focalLengthU/V``, ``centerPointU/V``: sensor sub-pixels (1/64 pixel), relative to the full
  sensor; the video image is the ``fov_video`` window, so ``cx = centerPointU/64 − left``,
  ``cy = centerPointV/64 − top``, image size ``(right − left + 1, bottom − top + 1)``.
- ``radialDistortion1..3``, ``tangentalDistortion1..2``: OpenCV's dimensionless ``k1 k2 k3 p1 p2`` on
  normalized coordinates, used as they are (no 1/64 scale).
- ``viewrotation`` other than 0 (a view rotated in QTM's display) is refused rather than guessed; export
  with view rotation 0. ``active="0"`` cameras are skipped with a warning. Cameras are named by ``serial``.

Evidence (Pose2Sim 0.10.49 demo, 4 portrait 1088x1920 cameras):

- Rotation: with ``R = diag(1, −1, −1) · M`` every camera's optical axis points at the capture volume
  (cosine ≥ 0.9 to the direction of the origin) and world "up" (+Z) is image "up"; taking ``M`` as
  camera→world (columns as axes) points every camera away from the volume. The 180°-about-z
  alternative ``diag(−1, 1, −1) · M`` (same optical axis, image upside down) raises the median
  reprojection error of OpenPose keypoints triangulated from the demo clip from 13 px to 77 px.
  Pose2Sim's own TOML of this rig (pose2sim 0.4.15) has exactly these R and t (camera centres equal to
  1e-12 m).
- Distortion: Pose2Sim's converter divides the distortion coefficients by 64, like the focal length.
  They are dimensionless, so a pixel-unit scale does not apply to them: fitting OpenCV's model to the
  checkerboard images that ship with the demo (``calibration/intrinsics``, 6 views per camera, k3 fixed)
  gives ``k1 ≈ −0.053, −0.052, −0.031, −0.047`` and ``k2 ≈ 0.151, 0.149, 0.009, 0.101``, against the
  file's raw ``k1 ≈ −0.046 … −0.048`` and ``k2 ≈ 0.135 … 0.140``; divided by 64 they would be
  ``−0.0007`` and ``0.002``, i.e. no distortion at all. With the intrinsics fixed to the file's, fitting
  only the board poses gives an RMS of 0.39/0.46/0.43/1.06 px (cameras 1-4) with the raw coefficients
  against 0.39/0.53/0.47/1.11 px with them divided by 64. (Keypoint triangulation of the demo clip cannot
  tell the two apart: ~13 px median either way, dominated by detector noise.) So we use them unscaled,
  and the two Pose2Sim files genuinely differ in distortion only: over a 2 m cube around the origin
  (0-2 m high) their projections agree to 1e-12 px without distortion, and with it differ by a median
  of 1.3-1.6 px per camera and at most 7.1 px inside the images (1e-12 px once ours is divided by 64).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from crosspose.calibration.formats import ParsedRig
from crosspose.calibration.validation import CalibrationError, CameraRecord, ValidationReport
from crosspose.geometry import CameraRig

SUBPIXELS = 64.0
"""QTM stores focal length and principal point in 1/64 pixel."""
QTM_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
"""QTM camera frame (x right, y up, z out of the lens) → OpenCV (x right, y down, z forward)."""


def looks_like(text: str) -> bool:
    head = text.lstrip()[:2000]
    return head.startswith("<") and "<calibration" in head and "<cameras" in head


def _float(el: ET.Element, attr: str, where: str, problems: list[str]) -> float:
    raw = el.get(attr)
    try:
        if raw is None:
            raise ValueError
        return float(raw)
    except ValueError:
        problems.append(f"{where}: <{el.tag} {attr}=...> is missing or not a number ({raw!r})")
        return math.nan


def read(data: bytes) -> ParsedRig:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CalibrationError([f"not valid XML: {exc}"]) from None
    if root.tag != "calibration" or root.find("cameras") is None:
        raise CalibrationError(["not a Qualisys calibration: expected <calibration> with <cameras>"])
    report = ValidationReport()
    records: list[CameraRecord] = []
    problems: list[str] = []
    for i, cam in enumerate(root.iter("camera")):
        name = cam.get("serial") or f"camera{i + 1}"
        where = f"camera {name!r}"
        if cam.get("active", "1") == "0":
            report.warn("camera is marked inactive in QTM and was left out", name)
            continue
        if cam.get("viewrotation", "0") not in ("0", "0.0", ""):
            problems.append(
                f"{where}: viewrotation={cam.get('viewrotation')} is not supported; export the calibration "
                "from QTM with view rotation 0"
            )
            continue
        fov = cam.find("fov_video")
        tr = cam.find("transform")
        intr = cam.find("intrinsic")
        if fov is None or tr is None or intr is None:
            problems.append(f"{where}: needs <fov_video>, <transform> and <intrinsic>")
            continue
        left, top, right, bottom = (
            _float(fov, a, where, problems) for a in ("left", "top", "right", "bottom")
        )
        fu, fv, cu, cv = (
            _float(intr, a, where, problems) / SUBPIXELS
            for a in ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV")
        )
        skew = float(intr.get("skew", "0") or 0)
        if skew != 0:
            problems.append(f"{where}: a non-zero skew ({skew}) is not supported")
            continue
        k1, k2, k3, p1, p2 = (
            float(intr.get(a, "0") or 0)
            for a in (
                "radialDistortion1",
                "radialDistortion2",
                "radialDistortion3",
                "tangentalDistortion1",
                "tangentalDistortion2",
            )
        )
        M = np.array([[_float(tr, f"r{r}{c}", where, problems) for c in (1, 2, 3)] for r in (1, 2, 3)])
        centre_m = np.array([_float(tr, a, where, problems) for a in ("x", "y", "z")]) / 1000.0
        R = QTM_TO_OPENCV @ M
        K = np.array([[fu, 0.0, cu - left], [0.0, fv, cv - top], [0.0, 0.0, 1.0]])
        meta: dict[str, Any] = {"serial": name}
        if cam.get("model") not in (None, "none"):
            meta["model"] = cam.get("model")
        if cam.get("avg-residual") is not None:
            meta["qtm_avg_residual_mm"] = cam.get("avg-residual")
        records.append(
            CameraRecord(
                name,
                K,
                [k1, k2, p1, p2, k3],
                R,
                -R @ centre_m,
                [right - left + 1, bottom - top + 1],
                meta,
            )
        )
    if problems:
        raise CalibrationError(problems)
    if not records:
        raise CalibrationError(["the Qualisys calibration has no active cameras"])
    metadata = {"source": f"qualisys: {root.get('source', '')}".strip(), "created": root.get("created", "")}
    return ParsedRig(records, "m", metadata, report)


def _fmt(x: float) -> str:
    return repr(float(x))


def write(rig: CameraRig) -> bytes:
    root = ET.Element(
        "calibration",
        {"created": str(rig.metadata.get("created", "")), "source": "crosspose", "type": "regular"},
    )
    ET.SubElement(root, "results", {"min-max-diff": "0.", "std-dev": "0."})
    cams = ET.SubElement(root, "cameras")
    for c in rig:
        w, h = c.image_size
        if abs(c.K[0, 1]) > 0:
            raise CalibrationError(
                [f"camera {c.name!r}: a skewed K cannot be written in the Qualisys format"]
            )
        cam = ET.SubElement(
            cams,
            "camera",
            {
                "active": "1",
                "avg-residual": str(c.metadata.get("qtm_avg_residual_mm", "0")),
                "model": str(c.metadata.get("model", "none")),
                "serial": c.name,
                "viewrotation": "0",
            },
        )
        fov = {"left": "0", "top": "0", "right": str(w - 1), "bottom": str(h - 1)}
        for tag in ("fov_marker", "fov_marker_max", "fov_video", "fov_video_max"):
            ET.SubElement(cam, tag, fov)
        M = QTM_TO_OPENCV @ c.R
        attrs = {f"r{r + 1}{k + 1}": _fmt(M[r, k]) for r in range(3) for k in range(3)}
        attrs.update({a: _fmt(v * 1000.0) for a, v in zip("xyz", c.center, strict=True)})
        ET.SubElement(cam, "transform", attrs)
        k1, k2, p1, p2, k3 = c.dist
        ET.SubElement(
            cam,
            "intrinsic",
            {
                "focalLengthU": _fmt(c.K[0, 0] * SUBPIXELS),
                "focalLengthV": _fmt(c.K[1, 1] * SUBPIXELS),
                "centerPointU": _fmt(c.K[0, 2] * SUBPIXELS),
                "centerPointV": _fmt(c.K[1, 2] * SUBPIXELS),
                "radialDistortion1": _fmt(k1),
                "radialDistortion2": _fmt(k2),
                "radialDistortion3": _fmt(k3),
                "tangentalDistortion1": _fmt(p1),
                "tangentalDistortion2": _fmt(p2),
                "sensorMinU": "0",
                "sensorMinV": "0",
                "sensorMaxU": _fmt((w - 1) * SUBPIXELS),
                "sensorMaxV": _fmt((h - 1) * SUBPIXELS),
                "skew": "0",
            },
        )
    ET.indent(root)
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="utf-8") + b"\n"
