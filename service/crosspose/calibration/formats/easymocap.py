"""EasyMocap's two OpenCV FileStorage files: ``intri.yml`` and ``extri.yml``.

``intri.yml``: ``names`` (camera order), ``K_<cam>`` (3x3), ``dist_<cam>`` (1x5 or 5x1), and — our
addition, ignored by EasyMocap — ``W_<cam>``/``H_<cam>`` image size. ``extri.yml``: ``names``,
``R_<cam>`` (Rodrigues 3x1), ``Rot_<cam>`` (3x3, preferred when present), ``T_<cam>`` (3x1; the
format does not state units). Without an image size the loader assumes twice the principal point and
warns. Because both files are FileStorage, their concatenation is also accepted as one body (the
HTTP API sends one file); ``write_single`` produces exactly that.
"""

from __future__ import annotations

import cv2
import numpy as np

from crosspose.calibration.formats import ParsedRig, filestorage
from crosspose.calibration.validation import CalibrationError, CameraRecord, ValidationReport
from crosspose.geometry import CameraRig

INTRI = "intri.yml"
EXTRI = "extri.yml"


def looks_like(text: str) -> bool:
    return filestorage.looks_like(text) and "names" in text and ("K_" in text or "T_" in text)


def read(intri: bytes, extri: bytes | None = None) -> ParsedRig:
    """Read both files (or one FileStorage holding both files' keys when ``extri`` is None)."""
    fs_i = filestorage.open_text(intri)
    fs_e = filestorage.open_text(extri) if extri is not None else fs_i
    cams = filestorage.names(fs_i) or filestorage.names(fs_e)
    if not cams:
        raise CalibrationError(['EasyMocap calibration has no "names" list of cameras'])
    if extri is not None:
        other = filestorage.names(fs_e)
        if other is not None and other != cams:
            raise CalibrationError(
                [
                    f"intri.yml lists cameras {cams} but extri.yml lists {other}; "
                    "both must list the same cameras"
                ]
            )
    report = ValidationReport()
    records = []
    problems = []
    for name in cams:
        K = filestorage.value(fs_i.getNode(f"K_{name}"))
        dist = filestorage.value(fs_i.getNode(f"dist_{name}"))
        rot = filestorage.value(fs_e.getNode(f"Rot_{name}"))
        rvec = filestorage.value(fs_e.getNode(f"R_{name}"))
        T = filestorage.value(fs_e.getNode(f"T_{name}"))
        missing = [k for k, v in (("K", K), ("T", T)) if v is None]
        if rot is None and rvec is None:
            missing.append("R or Rot")
        if missing:
            problems.append(f"camera {name!r}: {', '.join(f'{m}_{name}' for m in missing)} missing")
            continue
        if rot is None:
            r = np.asarray(rvec, dtype=np.float64).reshape(-1)
            rot = cv2.Rodrigues(r)[0] if r.shape == (3,) and np.all(np.isfinite(r)) else r
        w = filestorage.value(fs_i.getNode(f"W_{name}"))
        h = filestorage.value(fs_i.getNode(f"H_{name}"))
        if w is None or h is None:
            K_arr = np.asarray(K, dtype=np.float64)
            if K_arr.shape != (3, 3):
                problems.append(f"camera {name!r}: K_{name} must be a 3x3 matrix, the file has {K_arr.shape}")
                continue
            w, h = (float(np.round(2 * K_arr[0, 2] + 1)), float(np.round(2 * K_arr[1, 2] + 1)))
            report.warn(
                f"image size not in the file; assumed {w:.0f}x{h:.0f} from the principal point. "
                f"Add W_{name} and H_{name} to intri.yml to be sure",
                name,
                "image_size",
            )
        records.append(
            CameraRecord(
                name, K, dist if dist is not None else [], rot, np.asarray(T, float).reshape(-1), [w, h]
            )
        )
    if problems:
        raise CalibrationError(problems)
    return ParsedRig(records, None, {}, report)


def _write(rig: CameraRig, intrinsics: bool, extrinsics: bool) -> bytes:
    out = filestorage.Writer("yml")
    for c in rig:
        filestorage.check_key_name(c.name, "easymocap")
    out.strings("names", rig.names)
    for c in rig:
        if intrinsics:
            out.write(f"K_{c.name}", c.K)
            out.write(f"dist_{c.name}", c.dist.reshape(1, 5))
            out.write(f"W_{c.name}", int(c.image_size[0]))
            out.write(f"H_{c.name}", int(c.image_size[1]))
        if extrinsics:
            out.write(f"R_{c.name}", cv2.Rodrigues(c.R)[0].reshape(3, 1))
            out.write(f"Rot_{c.name}", c.R)
            out.write(f"T_{c.name}", c.t.reshape(3, 1))
    return out.text()


def write_files(rig: CameraRig) -> dict[str, bytes]:
    """``{"intri.yml": ..., "extri.yml": ...}``."""
    return {INTRI: _write(rig, True, False), EXTRI: _write(rig, False, True)}


def write_single(rig: CameraRig) -> bytes:
    """One FileStorage holding both files' keys (for a single request body)."""
    return _write(rig, True, True)
