"""The runtime calibration store: every accepted rig as a numbered version on disk, and which one is active.

Layout under ``root`` (one set of files per accepted version ``N``)::

    v000003.json          the rig as crosspose JSON (metres; what the pipeline loads)
    v000003.upload        the bytes exactly as uploaded (any supported format; a zip for EasyMocap pairs)
    v000003.meta.json     {"version", "sha256", "created_ns", "format", "source", "cameras"}
    current               {"version": 3}: the active version
    .lock                 ``flock``-ed while a process reads or writes the store (stages share it)

Every file is written to a temporary name, fsynced, renamed over its final name and the folder fsynced;
``current`` is written last, so a process killed at any point leaves the previous version active.
Files of a version newer than ``current`` (a write that never finished) and temporary files are removed
when the store is opened. A rejected upload writes nothing at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crosspose.calibration.formats import easymocap
from crosspose.calibration.rigfile import (
    FORMATS,
    detect_format,
    dumps_rig,
    format_from_path,
    load_rig_with_report,
)
from crosspose.calibration.validation import CalibrationError, Problem
from crosspose.durable import write_atomic
from crosspose.geometry import CameraRig

log = logging.getLogger(__name__)

CURRENT = "current"
LOCK = ".lock"
_TMP_PREFIX = ".tmp-"
_VERSION_RE = re.compile(r"^v(\d{6,})\.(json|upload|meta\.json)$")
MAX_ZIP_MEMBER_BYTES = 16 * 1024 * 1024
"""Largest uncompressed EasyMocap file accepted from a zip upload (guards against zip bombs)."""


class CameraSetError(CalibrationError):
    """A valid calibration whose cameras are not the configured ones.

    Attributes:
        missing: configured cameras the calibration lacks.
        extra: cameras in the calibration that are not configured.
    """

    def __init__(self, missing: Sequence[str], extra: Sequence[str], expected: Sequence[str]) -> None:
        problems: list[Problem | str] = []
        if missing:
            problems.append(
                Problem(f"no calibration for configured camera(s): {', '.join(missing)}", None, "name")
            )
        if extra:
            problems.append(
                Problem(
                    f"calibration has camera(s) that are not configured: {', '.join(extra)} "
                    f"(configured: {', '.join(expected)})",
                    None,
                    "name",
                )
            )
        super().__init__(problems, source="calibration data")
        self.missing = list(missing)
        self.extra = list(extra)


@dataclass(frozen=True)
class CalibrationVersion:
    """One accepted calibration in the history (without its rig).

    Attributes:
        version: 1, 2, … in acceptance order.
        sha256: hex digest of the stored crosspose JSON (``vNNNNNN.json``).
        created_ns: wall-clock time of acceptance, nanoseconds since the Unix epoch.
        format: the format the upload was in (one of ``FORMATS``).
        source: who/what supplied it (``"upload"``, ``"seed: PATH"`` …).
        cameras: camera names in rig order.
    """

    version: int
    sha256: str
    created_ns: int
    format: str
    source: str
    cameras: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "created_ns": self.created_ns,
            "format": self.format,
            "source": self.source,
            "cameras": list(self.cameras),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CalibrationVersion:
        cams = doc["cameras"]
        if not isinstance(cams, list):
            raise TypeError("cameras must be a list")
        return cls(
            version=int(doc["version"]),
            sha256=str(doc["sha256"]),
            created_ns=int(doc["created_ns"]),
            format=str(doc["format"]),
            source=str(doc.get("source", "")),
            cameras=tuple(str(c) for c in cams),
        )


@dataclass(frozen=True)
class ActiveCalibration:
    """The calibration in force: its rig plus the version record it was stored under.

    Attributes:
        rig: the validated rig (metres).
        version, sha256, created_ns, format, source: as in ``CalibrationVersion``.
        warnings: validation warnings found when it was accepted (e.g. millimetres converted).
    """

    rig: CameraRig
    version: int
    sha256: str
    created_ns: int
    format: str
    source: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def record(self) -> CalibrationVersion:
        return CalibrationVersion(
            self.version, self.sha256, self.created_ns, self.format, self.source, tuple(self.rig.names)
        )


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees either the old file or the whole new one."""
    write_atomic(path, data, path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}"))


def _unzip_easymocap(data: bytes) -> dict[str, bytes]:
    """``{"intri.yml": …, "extri.yml": …}`` from a zip upload (members may sit in a folder)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {}
            for info in zf.infolist():
                name = info.filename.rsplit("/", 1)[-1].lower()
                if name not in (easymocap.INTRI, easymocap.EXTRI) or info.is_dir():
                    continue
                if info.file_size > MAX_ZIP_MEMBER_BYTES:
                    raise CalibrationError([f"{info.filename} in the zip is larger than 16 MiB"])
                members[name] = zf.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise CalibrationError([f"not a readable zip file: {exc}"]) from None
    missing = [n for n in (easymocap.INTRI, easymocap.EXTRI) if n not in members]
    if missing:
        raise CalibrationError(
            [f"a zip upload must hold EasyMocap's intri.yml and extri.yml; missing: {', '.join(missing)}"]
        )
    return members


def parse_upload(
    data: bytes, format: str | None = None, expected_names: Sequence[str] | None = None
) -> tuple[CameraRig, str, list[str]]:
    """Parse and fully validate uploaded calibration bytes: ``(rig, detected format, warnings)``.

    ``data`` is one file in any supported format, or a zip holding EasyMocap's ``intri.yml`` and
    ``extri.yml``. With ``expected_names`` the cameras must be exactly those (any order).

    Raises:
        CameraSetError: the file is valid but covers other cameras than the configured ones.
        CalibrationError: every other problem, each naming camera and field.
    """
    if format is not None and format.lower().strip() not in FORMATS:
        raise CalibrationError(
            [f"unknown calibration format {format!r}; supported formats: {', '.join(FORMATS)}"]
        )
    if not data.strip():
        raise CalibrationError(["the calibration is empty; send a calibration file as the request body"])
    if data[:4] == b"PK\x03\x04":
        if format not in (None, "easymocap"):
            raise CalibrationError([f"a zip upload is only valid for the easymocap format, not {format}"])
        rig, report = load_rig_with_report(_unzip_easymocap(data), "easymocap")
    else:
        try:
            rig, report = load_rig_with_report(data, format)
        except CalibrationError as exc:
            hint = _format_hint(data, format)
            if hint is None:
                raise
            raise CalibrationError([*exc.problems, hint], exc.warnings, exc.source) from None
    if expected_names is not None:
        names = set(rig.names)
        missing = [n for n in expected_names if n not in names]
        extra = [n for n in rig.names if n not in set(expected_names)]
        if missing or extra:
            raise CameraSetError(missing, extra, list(expected_names))
    fmt = str(rig.metadata.get("format", format or "crosspose"))
    return rig, fmt, [str(w) for w in report.warnings]


def _format_hint(data: bytes, asked: str | None) -> str | None:
    """When the format asked for is not what the content looks like, say so."""
    if asked is None:
        return None
    try:
        detected = detect_format(data)
    except CalibrationError:
        return None
    if detected == asked.lower().strip():
        return None
    return (
        f"the body looks like a {detected} calibration, not {asked}; pass format={detected} or leave it out"
    )


class CalibrationStore:
    """Versioned, crash-safe calibration history on disk (module docstring); thread-safe.

    Args:
        root: the store folder (created when missing).
        expected_names: the configured camera names; every accepted calibration must cover exactly these.
    """

    def __init__(self, root: Path | str, expected_names: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.expected_names = list(expected_names) if expected_names is not None else None
        self._lock = threading.RLock()
        self._active: ActiveCalibration | None = None
        self._history: list[CalibrationVersion] = []
        self._current = 0
        self.stale: str | None = None
        """Why the stored active version is not in force (e.g. the configured cameras changed), or None."""
        self.open()

    # -- reading ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """This thread and this process alone in the store: a thread lock plus ``flock`` on ``.lock``.

        The API process writes while other stages (inference) open the same folder; without the
        file lock, one process's clean-up could remove another's write in progress.
        """
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def open(self) -> None:
        """(Re)read the store: drop unfinished writes, load the history and the active version."""
        with self._exclusive():
            self._reload()

    def _reload(self) -> None:
        """``open`` without taking the lock (the caller holds it)."""
        current = self._read_current()
        self._drop_unfinished(current)
        history = []
        for p in sorted(self.root.glob("v*.meta.json")):
            m = _VERSION_RE.match(p.name)
            if not m or int(m.group(1)) > current:
                continue
            try:
                history.append(CalibrationVersion.from_json(json.loads(p.read_text())))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("calibration store: skipping unreadable %s: %s", p.name, exc)
        self._history = sorted(history, key=lambda v: v.version)
        self._current = current
        self._active = None
        self.stale = None
        if current:
            self._active = self._load_version(current)

    def _drop_unfinished(self, current: int) -> None:
        """Remove temporary files and the files of version ``current + 1`` (a put that never finished).

        Raises:
            CalibrationError: versions newer than that exist: not a crash, the folder was edited by hand.
        """
        newer: dict[int, list[Path]] = {}
        for p in self.root.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                log.warning("calibration store: removing %s left by an unfinished write", p.name)
                p.unlink(missing_ok=True)
                continue
            m = _VERSION_RE.match(p.name)
            if m and int(m.group(1)) > current:
                newer.setdefault(int(m.group(1)), []).append(p)
        if set(newer) - {current + 1}:
            raise CalibrationError(
                [
                    f"{self.root}: version(s) {sorted(newer)} are newer than version {current} that "
                    f"'{CURRENT}' names; the folder was changed by hand. Restore '{CURRENT}' "
                    '(e.g. {"version": N}) or move the newer files away'
                ]
            )
        for p in newer.get(current + 1, []):
            log.warning("calibration store: removing %s left by an unfinished write", p.name)
            p.unlink(missing_ok=True)

    def _read_current(self) -> int:
        path = self.root / CURRENT
        if not path.exists():
            return 0
        try:
            version = int(json.loads(path.read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CalibrationError(
                [f"{path} is unreadable ({exc}); restore it or move the store folder away"]
            ) from None
        return version

    def _load_version(self, version: int) -> ActiveCalibration | None:
        record = next((v for v in self._history if v.version == version), None)
        path = self.root / f"v{version:06d}.json"
        if record is None or not path.exists():
            raise CalibrationError([f"{self.root / CURRENT} names version {version} whose files are missing"])
        data = path.read_bytes()
        try:
            rig, report = load_rig_with_report(data, "crosspose", self.expected_names)
        except CalibrationError as exc:
            self.stale = f"stored version {version} is not usable: " + "; ".join(map(str, exc.problems))
            log.warning("calibration store: %s", self.stale)
            return None
        return ActiveCalibration(
            rig,
            version,
            record.sha256,
            record.created_ns,
            record.format,
            record.source,
            tuple(str(w) for w in report.warnings),
        )

    def active(self) -> ActiveCalibration | None:
        """The calibration in force, or None when none was accepted yet (or it no longer fits the cameras)."""
        with self._lock:
            return self._active

    def history(self) -> list[CalibrationVersion]:
        """Every accepted version, oldest first."""
        with self._lock:
            return list(self._history)

    def canonical_bytes(self, version: int) -> bytes:
        """The stored crosspose JSON of ``version`` (its ``sha256`` is the version's hash)."""
        return (self.root / f"v{version:06d}.json").read_bytes()

    def upload_bytes(self, version: int) -> bytes:
        """The bytes of ``version`` exactly as they were uploaded."""
        return (self.root / f"v{version:06d}.upload").read_bytes()

    # -- writing ---------------------------------------------------------------------------------------

    def put(self, data: bytes, format: str | None = None, source: str = "upload") -> ActiveCalibration:
        """Validate ``data`` (any supported format, detected when ``format`` is None) and make it active.

        A rig identical to the active one (the same stored crosspose JSON) adds no version: the active
        calibration is returned as it is (a studio script that uploads its file at every start must not
        grow the history, nor make the pipeline swap to what it already has).

        Raises:
            CameraSetError: valid, but not the configured cameras (names the missing and extra ones).
            CalibrationError: every other problem. On any error nothing on disk changes.
        """
        rig, fmt, warnings = parse_upload(data, format, self.expected_names)
        with self._exclusive():
            self._reload()  # another process may have written since we last looked
            active = self._active
            if active is not None and self._canonical(rig, active.created_ns) == self.canonical_bytes(
                active.version
            ):
                log.info("calibration store: upload (%s, %s) identical to active version %d; not stored",
                         fmt, source, active.version)
                return active
            return self._commit(data, rig, fmt, warnings, source)

    @staticmethod
    def _canonical(rig: CameraRig, created_ns: int) -> bytes:
        """The stored crosspose JSON of ``rig`` accepted at ``created_ns``: a file's own "created" (when
        the studio calibrated) is kept, otherwise the acceptance time is stamped."""
        return dumps_rig(CameraRig(list(rig), {"created": _iso(created_ns), **rig.metadata}), "crosspose")

    def _commit(
        self, data: bytes, rig: CameraRig, fmt: str, warnings: Sequence[str], source: str
    ) -> ActiveCalibration:
        """Write a validated rig as the next version and point ``current`` at it (lock held)."""
        version = max([self._current, *(v.version for v in self._history)]) + 1
        created_ns = time.time_ns()
        canonical = self._canonical(rig, created_ns)
        record = CalibrationVersion(
            version, hashlib.sha256(canonical).hexdigest(), created_ns, fmt, source, tuple(rig.names)
        )
        stem = f"v{version:06d}"
        _write_atomic(self.root / f"{stem}.upload", data)
        _write_atomic(self.root / f"{stem}.json", canonical)
        _write_atomic(self.root / f"{stem}.meta.json", json.dumps(record.to_json(), indent=2).encode())
        _write_atomic(self.root / CURRENT, json.dumps({"version": version}).encode() + b"\n")
        active = ActiveCalibration(
            load_rig_with_report(canonical, "crosspose")[0],
            version,
            record.sha256,
            created_ns,
            fmt,
            source,
            tuple(warnings),
        )
        self._history.append(record)
        self._current = version
        self._active = active
        self.stale = None
        log.info("calibration store: version %d active (%s, %s)", version, fmt, source)
        return active

    def try_seed(self, path: Path | str) -> list[str]:
        """:meth:`seed`, but a file that cannot be used is reported, not raised: the problems (empty
        when seeded or when a stored version is already in force). A running service must come up
        without a calibration (and say why) rather than crash on a bad initial file."""
        try:
            self.seed(path)
        except CalibrationError as err:
            return [f"initial calibration {path} not used: {p}" for p in err.problems] or [
                f"initial calibration {path} not used: {err}"]
        return []

    def seed(self, path: Path | str) -> ActiveCalibration | None:
        """Import the configured initial calibration file when no stored version is in force.

        Returns the new active calibration, or None when the store already had one (left as is).
        EasyMocap folders are zipped so the upload record keeps both files.
        """
        with self._exclusive():
            self._reload()  # another stage may have seeded it already
            if self._active is not None:
                return None
            p = Path(path)
            fmt: str | None
            if p.is_dir() or p.name.lower() in (easymocap.INTRI, easymocap.EXTRI):
                folder = p if p.is_dir() else p.parent
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w") as zf:
                    for name in (easymocap.INTRI, easymocap.EXTRI):
                        if (folder / name).is_file():
                            zf.write(folder / name, name)
                data, fmt = buf.getvalue(), "easymocap"
            else:
                fmt = format_from_path(p)
                try:
                    data = p.read_bytes()
                except OSError as exc:
                    raise CalibrationError(
                        [f"cannot read the initial calibration {p}: {exc.strerror or exc}"]
                    ) from None
            rig, fmt, warnings = parse_upload(data, fmt, self.expected_names)
            return self._commit(data, rig, fmt, warnings, f"seed: {p}")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")
