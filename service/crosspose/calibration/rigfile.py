"""Load and save camera rigs in every supported calibration format, detecting the format when not given.

Sources ``load_rig`` accepts:

- a path to a file (``.json`` crosspose, ``.toml`` anipose, ``.qca.txt``/``.qca`` Qualisys,
  ``.yml``/``.yaml``/``.xml`` OpenCV FileStorage — EasyMocap's ``intri.yml``/``extri.yml`` are
  recognised by name and read together with their sibling);
- a path to a folder holding EasyMocap's ``intri.yml`` and ``extri.yml``;
- a ``(intri, extri)`` pair of paths or of bytes, or a mapping ``{"intri.yml": bytes, "extri.yml": bytes}``;
- the bytes (or text) of one file, e.g. an HTTP request body; an EasyMocap body is both files'
  FileStorage keys in one document (what ``dumps_rig(rig, "easymocap")`` returns).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from crosspose.calibration.formats import (
    ParsedRig,
    anipose,
    crosspose_json,
    easymocap,
    opencv_storage,
    qualisys,
)
from crosspose.calibration.formats import filestorage as fs_format
from crosspose.calibration.validation import CalibrationError, ValidationReport, build_rig, validate_rig
from crosspose.geometry import CameraRig

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("crosspose", "anipose", "easymocap", "opencv", "qualisys")
"""Supported calibration formats, by name."""

PathLike = Union[str, "os.PathLike[str]"]
RigSource = PathLike | bytes | Mapping[str, bytes] | tuple[Any, Any]

_SUFFIX_FORMAT = {
    ".json": "crosspose",
    ".toml": "anipose",
    ".qca": "qualisys",
    ".yml": "opencv",
    ".yaml": "opencv",
    ".xml": "opencv",
}
_DEFAULT_NAME = {
    "crosspose": "calibration.json",
    "anipose": "calibration.toml",
    "opencv": "calibration.yml",
    "qualisys": "calibration.qca.txt",
}


def _unknown(fmt: str) -> CalibrationError:
    return CalibrationError([f"unknown calibration format {fmt!r}; supported formats: {', '.join(FORMATS)}"])


def _check_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    key = fmt.lower().strip()
    if key not in FORMATS:
        raise _unknown(fmt)
    return key


def format_from_path(path: PathLike) -> str | None:
    """The format a file name implies (``None`` when the name says nothing)."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return "easymocap"
    if name in (easymocap.INTRI, easymocap.EXTRI):
        return "easymocap"
    if name.endswith(".qca.txt"):
        return "qualisys"
    return _SUFFIX_FORMAT.get(p.suffix.lower())


def detect_format(data: bytes | str, filename: str | None = None) -> str:
    """Guess the format of one file's content (the file name breaks ties).

    Raises:
        CalibrationError: naming the supported formats when nothing matches.
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if crosspose_json.looks_like(text):
        return "crosspose"
    if qualisys.looks_like(text):
        return "qualisys"
    if fs_format.looks_like(text):
        if filename and Path(filename).name.lower() in (easymocap.INTRI, easymocap.EXTRI):
            return "easymocap"
        return "easymocap" if easymocap.looks_like(text) else "opencv"
    if anipose.looks_like(text):
        return "anipose"
    hint = f" ({filename})" if filename else ""
    raise CalibrationError(
        [
            f"could not recognise the calibration format{hint}; supported formats: {', '.join(FORMATS)} "
            "(crosspose JSON, anipose TOML, EasyMocap intri.yml+extri.yml, OpenCV FileStorage YAML/XML, "
            "Qualisys .qca.txt). Pass the format explicitly if the content is one of these"
        ]
    )


def _read_bytes(src: Any) -> bytes:
    if isinstance(src, bytes):
        return src
    if isinstance(src, str) and not _looks_like_path(src):
        return src.encode("utf-8")
    try:
        return Path(src).read_bytes()
    except OSError as exc:
        raise CalibrationError([f"cannot read {src}: {exc.strerror or exc}"]) from None


def _looks_like_path(s: str) -> bool:
    return "\n" not in s and len(s) < 4096


def _easymocap_pair(source: Any) -> tuple[bytes, bytes, str]:
    """``(intri, extri, label)`` from a folder, one of the two files, a pair, or a mapping."""
    if isinstance(source, Mapping):
        lower = {str(k).lower().rsplit("/", 1)[-1]: v for k, v in source.items()}
        missing = [n for n in (easymocap.INTRI, easymocap.EXTRI) if n not in lower]
        if missing:
            raise CalibrationError(
                [f"EasyMocap calibration needs both intri.yml and extri.yml; missing {missing}"]
            )
        return _read_bytes(lower[easymocap.INTRI]), _read_bytes(lower[easymocap.EXTRI]), "EasyMocap files"
    if isinstance(source, tuple):
        if len(source) != 2:
            raise CalibrationError(["an EasyMocap calibration is a pair (intri.yml, extri.yml)"])
        return _read_bytes(source[0]), _read_bytes(source[1]), "EasyMocap files"
    p = Path(source)
    folder = p if p.is_dir() else p.parent
    intri, extri = folder / easymocap.INTRI, folder / easymocap.EXTRI
    missing = [str(f) for f in (intri, extri) if not f.is_file()]
    if missing:
        raise CalibrationError(
            [f"EasyMocap calibration needs intri.yml and extri.yml; not found: {', '.join(missing)}"]
        )
    return intri.read_bytes(), extri.read_bytes(), str(folder)


def _parse(source: RigSource, fmt: str | None) -> tuple[ParsedRig, str, str]:
    """Parse a source into records: ``(parsed, format, label for messages)``."""
    if isinstance(source, (Mapping, tuple)):
        if fmt not in (None, "easymocap"):
            raise CalibrationError([f"a pair or mapping of files is only valid for easymocap, not {fmt}"])
        intri, extri, label = _easymocap_pair(source)
        return easymocap.read(intri, extri), "easymocap", label
    is_path = not isinstance(source, bytes) and not (isinstance(source, str) and not _looks_like_path(source))
    label = str(source) if is_path else "calibration data"
    if is_path:
        path = Path(source)  # type: ignore[arg-type]
        if not path.exists():
            raise CalibrationError([f"calibration file not found: {path}"])
        guess = fmt or format_from_path(path)
        if guess == "easymocap" and (
            path.is_dir() or path.name.lower() in (easymocap.INTRI, easymocap.EXTRI)
        ):
            intri, extri, label = _easymocap_pair(path)
            return easymocap.read(intri, extri), "easymocap", label
        if path.is_dir():
            raise CalibrationError([f"{path} is a folder; only easymocap calibrations are folders"])
        data = path.read_bytes()
        if fmt is None:
            try:
                fmt = detect_format(data, path.name)
            except CalibrationError:
                if guess is None:
                    raise
                fmt = guess  # the reader's own error message says more than "unrecognised"
    else:
        data = _read_bytes(source)
        fmt = fmt or detect_format(data)
    readers: dict[str, Callable[[bytes], ParsedRig]] = {
        "crosspose": crosspose_json.read,
        "anipose": anipose.read,
        "easymocap": easymocap.read,
        "opencv": lambda b: opencv_storage.read(b, Path(label).name.split(".")[0] if is_path else "cam0"),
        "qualisys": qualisys.read,
    }
    return readers[fmt](data), fmt, label


def load_rig_with_report(
    source: RigSource, format: str | None = None, expected_names: Sequence[str] | None = None
) -> tuple[CameraRig, ValidationReport]:
    """Load and validate a calibration; returns the rig and the warnings found on the way.

    Args:
        source: see the module docstring (path, folder, bytes, pair or mapping of EasyMocap files).
        format: one of ``FORMATS``; ``None`` detects it from the content and file name.
        expected_names: when given, the calibration must cover exactly these cameras.
    Raises:
        CalibrationError: every problem found, naming camera and field; nothing half-loaded.
    """
    fmt = _check_format(format)
    try:
        parsed, fmt, label = _parse(source, fmt)
    except CalibrationError as exc:
        if exc.source is None:
            raise CalibrationError(exc.problems, exc.warnings, _label_of(source)) from None
        raise
    # "format" says what this rig was read from; writers leave it out of the files they write.
    metadata = {**parsed.metadata, "format": fmt}
    if not metadata.get("source"):
        metadata["source"] = label
    return build_rig(parsed.records, parsed.units, metadata, expected_names, parsed.report, label)


def _label_of(source: Any) -> str:
    if isinstance(source, bytes) or (isinstance(source, str) and not _looks_like_path(source)):
        return "calibration data"
    if isinstance(source, (Mapping, tuple)):
        return "EasyMocap files"
    return str(source)


def load_rig(source: RigSource, format: str | None = None) -> CameraRig:
    """Load a calibration file (any supported format) as a validated ``CameraRig`` in metres.

    Warnings (e.g. a millimetre file converted to metres) are logged; use ``load_rig_with_report``
    to get them. See the module docstring for the accepted sources.

    Raises:
        CalibrationError: (a ``ValueError``) listing every problem; unknown formats list the supported ones.
    """
    rig, report = load_rig_with_report(source, format)
    for w in report.warnings:
        log.warning("calibration: %s", w)
    return rig


def rig_files(rig: CameraRig, format: str = "crosspose", xml: bool = False) -> dict[str, bytes]:
    """The file(s) a format stores a rig in: ``{file name: content}`` (two files for easymocap)."""
    fmt = _check_format(format)
    if fmt == "easymocap":
        return easymocap.write_files(rig)
    if fmt == "opencv":
        return {
            "calibration.xml" if xml else "calibration.yml": opencv_storage.write(
                rig, "xml" if xml else "yml"
            )
        }
    return {_DEFAULT_NAME[str(fmt)]: dumps_rig(rig, str(fmt))}


def dumps_rig(rig: CameraRig, format: str = "crosspose") -> bytes:
    """One file's bytes for a rig (an HTTP body); easymocap gives both files' keys in one document."""
    fmt = _check_format(format)
    writers: dict[str, Callable[[CameraRig], bytes]] = {
        "crosspose": crosspose_json.write,
        "anipose": anipose.write,
        "easymocap": easymocap.write_single,
        "opencv": opencv_storage.write,
        "qualisys": qualisys.write,
    }
    return writers[str(fmt)](rig)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_rig(rig: CameraRig, path: PathLike, format: str | None = "crosspose") -> list[Path]:
    """Write a rig to ``path`` atomically; returns the files written.

    Args:
        rig: the rig (it is validated first: an invalid rig is never written).
        path: the file; for ``easymocap`` the folder that receives ``intri.yml`` and ``extri.yml``
            (a path named ``intri.yml``/``extri.yml`` means its folder).
        format: one of ``FORMATS`` (default ``crosspose``, DESIGN §5); ``None`` takes it from the
            file name (``.json`` crosspose, ``.toml`` anipose, ``.yml/.yaml/.xml`` opencv,
            ``.qca.txt`` qualisys, a folder or a name without suffix easymocap). A name whose
            suffix implies another format than the one asked is refused rather than written
            mislabelled (``save_rig(rig, "rig.toml")`` asks for anipose by name: say so).
    """
    p = Path(path)
    implied = format_from_path(p) or ("easymocap" if not p.suffix else None)
    fmt = _check_format(format) or implied
    if format is not None and implied is not None and implied != fmt:
        raise CalibrationError(
            [
                f"the name {p.name!r} implies the {implied} format but {fmt} was asked; "
                f"pass format={implied!r} (or format=None to follow the name), or rename the file"
            ]
        )
    if fmt is None:
        raise CalibrationError(
            [
                f"cannot tell the calibration format from the name {p.name!r}; name the format "
                f"(one of: {', '.join(FORMATS)})"
            ]
        )
    report = validate_rig(rig)
    report.raise_for_errors(f"rig to save as {p}")
    if fmt == "easymocap":
        folder = p.parent if p.name.lower() in (easymocap.INTRI, easymocap.EXTRI) else p
        files = easymocap.write_files(rig)
        out = []
        for name, data in files.items():
            _atomic_write(folder / name, data)
            out.append(folder / name)
        return out
    if fmt == "opencv":
        data = opencv_storage.write(rig, "xml" if p.suffix.lower() == ".xml" else "yml")
    else:
        data = dumps_rig(rig, fmt)
    _atomic_write(p, data)
    return [p]
