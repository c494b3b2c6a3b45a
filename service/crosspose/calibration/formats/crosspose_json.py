"""crosspose's own calibration file: versioned JSON, metres, cameras in rig order.

Schema (version 1)::

    {
      "crosspose_calibration": 1,          # schema version; newer versions are refused
      "units": "m",                        # "m" is written; "mm" and "cm" are read and converted
      "metadata": {"created": "2025-01-01T12:00:00+00:00", "source": "...", "notes": "..."},
      "cameras": [                          # rig order, never sorted
        {"name": "cam01",
         "image_size": [1088, 1920],        # width, height (pixels)
         "K": [[fx, s, cx], [0, fy, cy], [0, 0, 1]],   # pixels, pixel centres at integers
         "dist": [k1, k2, p1, p2, k3],      # OpenCV model (4 values accepted)
         "R": [[...], [...], [...]],       # world -> camera rotation
         "t": [tx, ty, tz],                 # world -> camera translation: x_cam = R X + t
         "metadata": {...}}                 # optional, free-form (serial, model ...)
      ]
    }
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from crosspose.calibration.formats import ParsedRig
from crosspose.calibration.validation import CalibrationError, CameraRecord
from crosspose.geometry import CameraRig

SCHEMA_VERSION = 1
_UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def looks_like(text: str) -> bool:
    return text.lstrip().startswith("{") and '"crosspose_calibration"' in text


def read(data: bytes) -> ParsedRig:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError([f"not valid JSON: {exc}"]) from None
    if not isinstance(doc, dict) or "crosspose_calibration" not in doc:
        raise CalibrationError(
            ['not a crosspose calibration: the "crosspose_calibration" version key is missing']
        )
    version = doc["crosspose_calibration"]
    if not isinstance(version, int) or version < 1:
        raise CalibrationError([f'"crosspose_calibration" must be a schema version number, got {version!r}'])
    if version > SCHEMA_VERSION:
        raise CalibrationError(
            [
                f"calibration schema version {version} is newer than this crosspose understands "
                f"({SCHEMA_VERSION}); "
                "upgrade crosspose"
            ]
        )
    units = doc.get("units", "m")
    if units not in _UNIT_SCALE:
        raise CalibrationError([f'"units" must be one of {", ".join(_UNIT_SCALE)}, got {units!r}'])
    cams = doc.get("cameras")
    if not isinstance(cams, list):
        raise CalibrationError(['"cameras" must be a list of camera objects'])
    records = []
    problems = []
    for i, cam in enumerate(cams):
        if not isinstance(cam, dict):
            problems.append(f"camera #{i + 1} is not an object")
            continue
        missing = [k for k in ("name", "image_size", "K", "R", "t") if k not in cam]
        if missing:
            problems.append(f"camera #{i + 1} ({cam.get('name', 'unnamed')}) lacks {', '.join(missing)}")
            continue
        t = cam["t"]
        with contextlib.suppress(TypeError, ValueError):  # validation reports a bad value by camera
            t = np.asarray(t, dtype=float) * _UNIT_SCALE[units]
        records.append(
            CameraRecord(
                name=cam["name"],
                K=cam["K"],
                dist=cam.get("dist", []),
                R=cam["R"],
                t=t,
                image_size=cam["image_size"],
                metadata=dict(cam.get("metadata") or {}),
            )
        )
    if problems:
        raise CalibrationError(problems)
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CalibrationError(['"metadata" must be an object'])
    return ParsedRig(records, "m", dict(metadata))


def _metadata(rig: CameraRig) -> dict[str, Any]:
    meta = {k: v for k, v in rig.metadata.items() if k != "format"}
    meta.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
    meta.setdefault("source", "")
    meta.setdefault("notes", "")
    return meta


def write(rig: CameraRig) -> bytes:
    doc: dict[str, Any] = {
        "crosspose_calibration": SCHEMA_VERSION,
        "units": "m",
        "metadata": _metadata(rig),
        "cameras": [
            {
                "name": c.name,
                "image_size": list(c.image_size),
                "K": c.K.tolist(),
                "dist": c.dist.tolist(),
                "R": c.R.tolist(),
                "t": c.t.tolist(),
                **({"metadata": dict(c.metadata)} if c.metadata else {}),
            }
            for c in rig
        ],
    }
    return _dumps(doc).encode("utf-8")


def _dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with each camera field on one line (a matrix row per field, readable in a diff)."""
    head = {k: v for k, v in doc.items() if k != "cameras"}
    text = json.dumps(head, indent=2, default=str)[:-2]  # drop the closing brace
    cams = []
    for cam in doc["cameras"]:
        fields = ",\n".join(f"      {json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in cam.items())
        cams.append("    {\n" + fields + "\n    }")
    return text + ',\n  "cameras": [\n' + ",\n".join(cams) + "\n  ]\n}\n"
