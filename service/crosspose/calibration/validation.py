"""Calibration checks in a studio operator's words, and the only road from parsed file to ``CameraRig``.

Every reader produces ``CameraRecord`` rows (raw arrays, nothing trusted yet); ``build_rig`` checks them
all, applies the unit rule, and either returns a valid rig with its warnings or raises one
``CalibrationError`` listing every problem. Loading never returns a half-valid rig.

Unit rule (DESIGN §4): a camera further than ``MAX_CAMERA_DISTANCE_M`` (50 m) from the world origin
is not a studio camera in metres. When the file format does not say its units (anipose TOML, EasyMocap,
OpenCV FileStorage) and *every* camera is that far out, the translations are taken as millimetres and
multiplied by 0.001, with a warning. When only some cameras are that far, or the format states its
units (crosspose JSON, Qualisys), the file is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from crosspose.geometry import Camera, CameraRig

MAX_CAMERA_DISTANCE_M = 50.0
"""A camera further than this from the world origin means the file is not in metres."""
ROTATION_TOLERANCE = 1e-3
"""Largest accepted ``|RᵀR − I|`` entry and ``|det R − 1|``."""
MAX_DISTORTION_COEFFICIENTS = 5

Units = Literal["m", "mm"]


@dataclass(frozen=True)
class Problem:
    """One finding about a calibration.

    Attributes:
        message: what is wrong and how to fix it, in words an operator understands.
        camera: the camera's name (``None`` for the rig as a whole).
        field: the calibration field (``K``, ``R``, ``t``, ``dist``, ``image_size``, ``name`` …).
    """

    message: str
    camera: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.camera is not None:
            where.append(f"camera {self.camera!r}")
        if self.field is not None:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class ValidationReport:
    """Errors (the calibration cannot be used) and warnings (usable, but look at it)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors

    def error(self, message: str, camera: str | None = None, field: str | None = None) -> None:
        self.errors.append(Problem(message, camera, field))

    def warn(self, message: str, camera: str | None = None, field: str | None = None) -> None:
        self.warnings.append(Problem(message, camera, field))

    def extend(self, other: ValidationReport) -> None:
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)

    def raise_for_errors(self, source: str | None = None) -> None:
        """Raise ``CalibrationError`` when there is at least one error."""
        if self.errors:
            raise CalibrationError(self.errors, self.warnings, source)

    def lines(self) -> list[str]:
        return [f"error: {p}" for p in self.errors] + [f"warning: {p}" for p in self.warnings]


class CalibrationError(ValueError):
    """A calibration file or rig that cannot be used; ``problems`` lists every reason.

    Attributes:
        problems: the errors, each naming the camera and field.
        warnings: warnings found along the way (for context).
        source: the file (or "request body") the calibration came from.
    """

    def __init__(
        self,
        problems: Sequence[Problem | str],
        warnings: Sequence[Problem] = (),
        source: str | None = None,
    ) -> None:
        self.problems = [p if isinstance(p, Problem) else Problem(p) for p in problems]
        self.warnings = list(warnings)
        self.source = source
        head = f"invalid calibration{f' in {source}' if source else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass
class CameraRecord:
    """One camera as a reader found it: raw arrays, not yet validated.

    ``dist`` may hold 4 or 5 coefficients; ``image_size`` is ``(width, height)``; ``t`` is in the
    file's units until ``build_rig`` has applied the unit rule.
    """

    name: Any
    K: Any
    dist: Any
    R: Any
    t: Any
    image_size: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_camera(cls, camera: Camera) -> CameraRecord:
        return cls(
            camera.name, camera.K, camera.dist, camera.R, camera.t, camera.image_size, dict(camera.metadata)
        )


def _as_float(x: Any) -> np.ndarray | None:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _check_camera(rec: CameraRecord, report: ValidationReport) -> None:
    name = str(rec.name)
    expected = {"K": (3, 3), "R": (3, 3), "t": (3,), "image_size": (2,)}
    arrays: dict[str, np.ndarray] = {}
    labels = {
        "K": "intrinsic matrix K",
        "R": "rotation R",
        "t": "translation t",
        "image_size": "image size",
        "dist": "distortion",
    }
    for key, shape in expected.items():
        a = _as_float(getattr(rec, key))
        if a is None:
            report.error(f"{labels[key]} is not a list of numbers", name, key)
            continue
        if key == "t" and a.size == 3:
            a = a.reshape(3)
        if a.shape != shape:
            report.error(f"{labels[key]} must have shape {shape}, the file has {a.shape}", name, key)
            continue
        if not np.all(np.isfinite(a)):
            report.error(f"{labels[key]} contains NaN or infinite values", name, key)
            continue
        arrays[key] = a
    d = _as_float(rec.dist)
    if d is None:
        report.error("distortion is not a list of numbers", name, "dist")
    else:
        d = d.reshape(-1)
        if d.size not in (0, 4, 5):
            report.error(
                f"distortion has {d.size} coefficients; crosspose uses OpenCV's k1 k2 p1 p2 [k3] "
                "(4 or 5 coefficients; rational and thin-prism models are not supported)",
                name,
                "dist",
            )
        elif not np.all(np.isfinite(d)):
            report.error("distortion contains NaN or infinite values", name, "dist")
        elif np.any(np.abs(d) > 10):
            report.warn(
                f"distortion coefficients {np.round(d, 4).tolist()} are unusually large; "
                "is this a fisheye calibration? crosspose uses the pinhole model",
                name,
                "dist",
            )

    size = arrays.get("image_size")
    if size is not None:
        if np.any(size <= 0):
            report.error(
                f"image size {size.tolist()} must be positive (width, height in pixels)", name, "image_size"
            )
            size = None
        elif np.any(np.abs(size - np.round(size)) > 1e-6):
            report.error(f"image size {size.tolist()} must be whole pixels", name, "image_size")
            size = None

    K = arrays.get("K")
    if K is not None:
        fx, fy = K[0, 0], K[1, 1]
        if fx <= 0 or fy <= 0:
            report.error(f"focal lengths fx={fx:g}, fy={fy:g} must be positive (pixels)", name, "K")
        if abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) > 1e-9 or abs(K[2, 1]) > 1e-9 or abs(K[2, 2] - 1) > 1e-9:
            report.error("intrinsic matrix K must look like [[fx, s, cx], [0, fy, cy], [0, 0, 1]]", name, "K")
        if fx > 0 and fy > 0 and not 0.5 < fx / fy < 2:
            report.warn(f"fx={fx:g} and fy={fy:g} differ by more than a factor 2; check the file", name, "K")
        if size is not None:
            w, h = size
            cx, cy = K[0, 2], K[1, 2]
            if not (-0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5):
                report.error(
                    f"principal point ({cx:.1f}, {cy:.1f}) lies outside the {int(w)}x{int(h)} image; "
                    "does the image size match the resolution the camera was calibrated at?",
                    name,
                    "K",
                )
            elif abs(cx - (w - 1) / 2) > 0.25 * w or abs(cy - (h - 1) / 2) > 0.25 * h:
                report.warn(
                    f"principal point ({cx:.1f}, {cy:.1f}) is far from the centre of the {int(w)}x{int(h)} "
                    "image; check that the image size matches the calibration",
                    name,
                    "K",
                )

    R = arrays.get("R")
    if R is not None:
        det = float(np.linalg.det(R))
        ortho = float(np.max(np.abs(R.T @ R - np.eye(3))))
        if ortho > ROTATION_TOLERANCE:
            report.error(
                f"rotation R is not a rotation matrix (RᵀR differs from identity by {ortho:.2g}); "
                "it must be orthonormal",
                name,
                "R",
            )
        elif abs(det - 1) > ROTATION_TOLERANCE:
            report.error(
                f"rotation R has determinant {det:.3f}; a rotation has +1 (a mirrored axis or a "
                "left-handed coordinate system?)",
                name,
                "R",
            )


def validate_records(
    records: Sequence[CameraRecord], expected_names: Sequence[str] | None = None
) -> ValidationReport:
    """Check raw camera records: shapes, finite values, rotations, intrinsics, names, image sizes.

    Distances (the unit rule) are checked by ``check_distances`` once the units are settled.
    """
    report = ValidationReport()
    if not records:
        report.error("the calibration contains no cameras")
        return report
    names = [str(r.name) for r in records]
    for rec, name in zip(records, names, strict=True):
        if not name.strip():
            report.error("a camera has an empty name; every camera needs a unique name", None, "name")
        _check_camera(rec, report)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            report.error(
                "this name is used by more than one camera; every camera needs a unique name", name, "name"
            )
        seen.add(name)
    if expected_names is not None:
        missing = [n for n in expected_names if n not in seen]
        extra = [n for n in names if n not in set(expected_names)]
        if missing:
            report.error(f"no calibration for configured camera(s): {', '.join(missing)}", None, "name")
        if extra:
            report.error(
                f"calibration has camera(s) that are not configured: {', '.join(extra)} "
                f"(configured: {', '.join(expected_names)})",
                None,
                "name",
            )
    return report


def camera_distances(records: Sequence[CameraRecord]) -> np.ndarray:
    """``(C,)`` distance of each camera centre ``−Rᵀt`` from the world origin (file units)."""
    return np.array(
        [float(np.linalg.norm(np.asarray(r.R, float).T @ np.asarray(r.t, float).reshape(3))) for r in records]
    )


def check_distances(
    records: Sequence[CameraRecord], units: Units | None, report: ValidationReport
) -> list[CameraRecord]:
    """Apply the unit rule (module docstring); returns the records in metres."""
    dist = camera_distances(records)
    far = dist > MAX_CAMERA_DISTANCE_M
    if not far.any():
        if units is None and len(records) > 1 and np.all(dist < 0.05):
            report.warn("every camera is within 5 cm of the world origin; are the translations in metres?")
        return list(records)
    far_list = ", ".join(
        f"{r.name} ({d:.0f})" for r, d in zip(records, dist, strict=True) if d > MAX_CAMERA_DISTANCE_M
    )
    if units is None and far.all() and np.all(dist * 1e-3 <= MAX_CAMERA_DISTANCE_M):
        report.warn(
            f"every camera is more than {MAX_CAMERA_DISTANCE_M:g} m from the origin "
            f"(median {np.median(dist):.0f}); the translations look like millimetres and were "
            "converted to metres (x 0.001). Save the calibration again to store it in metres",
            None,
            "t",
        )
        return [
            CameraRecord(r.name, r.K, r.dist, r.R, np.asarray(r.t, float) * 1e-3, r.image_size, r.metadata)
            for r in records
        ]
    if units is None:
        msg = (
            f"camera(s) {far_list} are more than {MAX_CAMERA_DISTANCE_M:g} units from the origin while "
            "others are not; the translations mix units or are wrong. Store every translation in metres"
        )
    else:
        msg = (
            f"camera(s) {far_list} are more than {MAX_CAMERA_DISTANCE_M:g} m from the origin although the "
            f"file says its translations are in {units}; were they written in millimetres? "
            "Fix the units in the file"
        )
    report.error(msg, None, "t")
    return list(records)


def build_rig(
    records: Sequence[CameraRecord],
    units: Units | None,
    metadata: Mapping[str, Any] | None = None,
    expected_names: Sequence[str] | None = None,
    report: ValidationReport | None = None,
    source: str | None = None,
) -> tuple[CameraRig, ValidationReport]:
    """Validate records, apply the unit rule, and build the rig, or raise ``CalibrationError``.

    Args:
        records: cameras in file order.
        units: ``"m"``/``"mm"`` when the file states its units (translations already converted to
            metres by the reader), ``None`` when the format leaves them open.
        metadata: rig metadata to carry.
        expected_names: when given, the camera names must be exactly these (any order).
        report: findings the reader already made (warnings about the file), extended here.
        source: file name for error messages.
    """
    report = report if report is not None else ValidationReport()
    report.extend(validate_records(records, expected_names))
    report.raise_for_errors(source)
    records = check_distances(records, units, report)
    report.raise_for_errors(source)
    cameras = [
        Camera(
            name=str(r.name),
            K=np.asarray(r.K, float),
            dist=np.asarray(r.dist, float).reshape(-1),
            R=np.asarray(r.R, float),
            t=np.asarray(r.t, float).reshape(3),
            image_size=(round(float(r.image_size[0])), round(float(r.image_size[1]))),
            metadata=r.metadata,
        )
        for r in records
    ]
    return CameraRig(cameras, metadata), report


def validate_rig(
    rig: CameraRig | Iterable[CameraRecord], expected_names: Sequence[str] | None = None
) -> ValidationReport:
    """Check a rig (or raw records) against every rule; a rig in metres must pass the distance check.

    Args:
        rig: a ``CameraRig`` or ``CameraRecord`` rows.
        expected_names: the configured camera names the calibration must cover exactly.
    Returns:
        the report; ``report.ok`` is False when the rig must not be used.
    """
    records = [CameraRecord.from_camera(c) for c in rig] if isinstance(rig, CameraRig) else list(rig)
    report = validate_records(records, expected_names)
    if report.ok:
        check_distances(records, "m" if isinstance(rig, CameraRig) else None, report)
    return report
