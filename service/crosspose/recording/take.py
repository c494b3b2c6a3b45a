"""A take on disk: writing it crash-safely while the service runs, reading it back afterwards.

Layout of one take (``<store>/<take id>/``)::

    manifest.json          id, name, metadata, state, counters (rewritten atomically at every flush)
    config.json            the service config in force (secrets masked)
    calibration/v<N>.json  each calibration in force during the take (crosspose JSON rig file)
    framesets.rec          one record per frame set (crosspose.recording.log): the set's header with
                           every frame's header (camera seq, t_capture_ns, t_wall_ns, t_device_ns, …)
                           and the present cameras' images (JPEG as received, else encoded)
    skeletons.jsonl        the solved stream: the websocket messages, one JSON object per line

States: ``recording`` → ``stopped`` (by request), ``failed`` (write error, disk full, size cap:
``error`` says which) or ``interrupted`` (the recorder died mid-take; found and repaired by the
next recorder — the data up to its last flush is kept). Frames: 'jpeg' stores JPEG frames exactly as
the grabber sent them and encodes raw ones at ``jpeg_quality`` (so "lossless" means "as received"
for JPEG cameras, high-quality JPEG otherwise); 'png' is truly lossless at a higher CPU/disk cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crosspose.durable import fsync_dir, write_atomic
from crosspose.recording.log import ReadResult, RecordWriter, read_records

FramesFormat = Literal["jpeg", "png", "none"]
TAKE_VERSION = 1
MANIFEST = "manifest.json"
FRAMESETS = "framesets.rec"
SKELETONS = "skeletons.jsonl"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class TakeError(ValueError):
    """A take that does not exist or cannot be read, or a bad take name (message says which)."""


class TakeWriteError(OSError):
    """Writing a take failed (disk full, I/O error, size cap); the take is then ``failed``."""


def check_name(name: str) -> str:
    """A take name: 1-64 letters, digits, spaces, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise TakeError(
            f"take name {name!r} is invalid: use 1-64 letters, digits, spaces, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_id(take_id: str) -> str:
    """A take id (a folder name under the store; never a path)."""
    if not isinstance(take_id, str) or not _ID.match(take_id) or ".." in take_id:
        raise TakeError(f"take id {take_id!r} is invalid")
    return take_id


def _iso(ns: int | None) -> str | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a synced temporary file and an atomic rename."""
    write_atomic(path, json.dumps(data, indent=1).encode("utf-8"))


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder`` (bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stored_as_received(header: Mapping[str, Any], frames: FramesFormat) -> bool:
    """Whether a frame is stored as it came (a JPEG kept as JPEG): no decoding, no encoding."""
    return header.get("encoding") == "jpeg" and frames == "jpeg"


def encode_image(
    header: Mapping[str, Any], buffer: Any, frames: FramesFormat, jpeg_quality: int
) -> tuple[str, bytes | memoryview]:
    """``(stored encoding, bytes)`` of one frame: JPEG as received, else encoded as ``frames``."""
    import cv2

    if stored_as_received(header, frames):
        return "jpeg", memoryview(buffer)  # as received, not copied (written before the message is freed)
    from crosspose.capture.frames import decode_frame

    image = decode_frame(header, buffer)
    if frames == "png":
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError(f"encoding a frame of camera {header.get('camera')} as {frames} failed")
    return ("png" if frames == "png" else "jpeg"), buf.tobytes()


def decode_image(stored: str, data: bytes) -> np.ndarray:
    """A stored frame → ``(H, W, 3)`` uint8 BGR."""
    import cv2

    if stored not in ("jpeg", "png"):
        raise TakeError(f"frame stored as {stored!r} cannot be decoded")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise TakeError(f"a {stored} frame of the take cannot be decoded")
    return image


class TakeWriter:
    """Writes one take; every ``flush_s`` the data is flushed and fsynced and the manifest rewritten.

    Args:
        folder: the take's folder (created; must not exist yet).
        take_id, name, metadata: identity of the take (metadata: any JSON object).
        cameras: ``C`` camera names in rig order.
        config: the service config as JSON data (written to ``config.json``), or None.
        frames, jpeg_quality: how camera frames are stored (module docstring).
        flush_s: the most data (in seconds of wall time) a ``kill -9`` can lose.
        max_bytes: the take fails with "size cap reached" beyond this many bytes (None: no cap).
        min_free_bytes: the take fails when the disk has less free space than this.
        encode_threads: threads encoding a frame set's cameras in parallel (raw frames only).

    Every write method raises :class:`TakeWriteError` on an I/O error or a limit; call :meth:`close`
    with ``state="failed"`` then.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        take_id: str,
        name: str,
        metadata: Mapping[str, Any] | None,
        cameras: Sequence[str],
        config: Mapping[str, Any] | None = None,
        frames: FramesFormat = "jpeg",
        jpeg_quality: int = 95,
        flush_s: float = 0.5,
        max_bytes: int | None = None,
        min_free_bytes: int = 0,
        encode_threads: int = 1,
    ) -> None:
        self.folder = Path(folder)
        self._pool = ThreadPoolExecutor(encode_threads, "take-encode") if encode_threads > 1 else None
        self.frames = frames
        self.jpeg_quality = jpeg_quality
        self.flush_ns = int(flush_s * 1e9)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        try:
            self.folder.mkdir(parents=True, exist_ok=False)
            (self.folder / "calibration").mkdir()
            if config is not None:
                write_json_atomic(self.folder / "config.json", dict(config))
            self._sets = RecordWriter(self.folder / FRAMESETS)
            self._skeletons = open(self.folder / SKELETONS, "ab")  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise TakeWriteError(err.errno, f"cannot create take {self.folder}: {err}") from err
        self.skeleton_bytes = 0
        self._last_set_seq: int | None = None
        self._last_cam_seq: dict[str, int] = {}
        now = time.time_ns()
        self.manifest: dict[str, Any] = {
            "v": TAKE_VERSION,
            "id": take_id,
            "name": name,
            "metadata": dict(metadata or {}),
            "state": "recording",
            "error": None,
            "created": _iso(now),
            "started_wall_ns": now,
            "stopped_wall_ns": None,
            "last_flush_wall_ns": now,
            "cameras": list(cameras),
            "frames_format": frames,
            "jpeg_quality": jpeg_quality if frames == "jpeg" else None,
            "calibrations": [],
            "framesets": {
                "received": 0,
                "written": 0,
                "lost": 0,
                "sync_restarts": 0,
                "first_seq": None,
                "last_seq": None,
                "first_t_ref_ns": None,
                "last_t_ref_ns": None,
            },
            "cameras_frames": {c: {"written": 0, "missing_in_sets": 0, "seq_gaps": 0} for c in cameras},
            "skeletons": {"written": 0, "first_seq": None, "last_seq": None},
            "bytes": 0,
        }
        self._next_flush = time.monotonic_ns() + self.flush_ns
        self._guard(self._write_manifest)
        self._guard(lambda: fsync_dir(self.folder.parent))

    # -- helpers -----------------------------------------------------------------------------------
    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except TakeWriteError:
            raise
        except OSError as err:
            raise TakeWriteError(err.errno, f"writing take {self.manifest['id']} failed: {err}") from err

    def _write_manifest(self) -> None:
        write_json_atomic(self.folder / MANIFEST, self.manifest)

    @property
    def bytes(self) -> int:
        """Bytes of frame sets and skeletons written so far."""
        return self._sets.bytes_written + self.skeleton_bytes

    @property
    def state(self) -> str:
        return str(self.manifest["state"])

    # -- writing -------------------------------------------------------------------------------------
    def set_calibration(self, version: int | None, sha256: str | None, rig_json: str) -> None:
        """Record the calibration in force from the next frame set on (its rig file and version)."""
        fs = self.manifest["framesets"]
        name = f"v{version if version is not None else 0}.json"

        def write() -> None:
            path = self.folder / "calibration" / name
            if not path.exists():
                path.write_text(rig_json, encoding="utf-8")

        self._guard(write)
        self.manifest["calibrations"].append(
            {
                "version": version,
                "sha256": sha256,
                "file": f"calibration/{name}",
                "from_seq": None if fs["last_seq"] is None else fs["last_seq"] + 1,
            }
        )

    def add_frameset(self, header: Mapping[str, Any], buffers: Sequence[Any]) -> None:
        """Append one ``frameset.`` message (header as sync sends it, buffers of present cameras)."""
        fs = self.manifest["framesets"]
        fs["received"] += 1
        seq = int(header["seq"])
        last = self._last_set_seq
        if last is not None:
            if seq > last + 1:
                fs["lost"] += seq - last - 1
            elif seq <= last:
                fs["sync_restarts"] += 1  # sync restarted: its numbering starts again
        self._last_set_seq = seq
        frames_out: list[dict[str, Any] | None] = []
        present_frames = [fh for p, fh in zip(header["present"], header["frames"], strict=True) if p and fh]
        if len(present_frames) != len(buffers):
            raise ValueError(
                f"frame set {seq}: {len(buffers)} buffers for {len(present_frames)} present cameras"
            )
        encoded: list[tuple[str, bytes | memoryview]] = []
        if self.frames != "none":
            jobs = [
                (fh, buf, self.frames, self.jpeg_quality)
                for fh, buf in zip(present_frames, buffers, strict=True)
            ]
            encoding = not all(stored_as_received(fh, self.frames) for fh in present_frames)
            if encoding and self._pool is not None and len(jobs) > 1:  # cv2 releases the GIL while encoding
                encoded = list(self._pool.map(lambda a: encode_image(*a), jobs))
            else:
                encoded = [encode_image(*a) for a in jobs]
        images = [data for _, data in encoded]
        it = iter(encoded)
        for cam, present, fh in zip(header["cameras"], header["present"], header["frames"], strict=True):
            stats = self.manifest["cameras_frames"].setdefault(
                cam, {"written": 0, "missing_in_sets": 0, "seq_gaps": 0}
            )
            if not present or fh is None:
                stats["missing_in_sets"] += 1
                frames_out.append(None)
                continue
            out = dict(fh)
            out["stored"] = "none" if self.frames == "none" else next(it)[0]
            frames_out.append(out)
            stats["written"] += 1
            cseq = int(fh.get("seq", 0))
            prev = self._last_cam_seq.get(cam)
            if prev is not None and cseq > prev + 1:
                stats["seq_gaps"] += cseq - prev - 1
            self._last_cam_seq[cam] = cseq
        record = {
            "type": "frameset",
            "seq": seq,
            "t_ref_ns": int(header["t_ref_ns"]),
            "t_emit_ns": header.get("t_emit_ns"),
            "t_recorded_wall_ns": time.time_ns(),
            "cameras": list(header["cameras"]),
            "present": list(header["present"]),
            "frames": frames_out,
            "skew_ns": list(header.get("skew_ns") or []),
        }
        size = sum(len(b) for b in images) + 4096
        if self.max_bytes is not None and self.bytes + size > self.max_bytes:
            raise TakeWriteError(
                28, f"take size cap of {self.max_bytes} bytes reached (recording.max_take_bytes)"
            )
        self._guard(lambda: self._sets.append(record, images))
        fs["written"] += 1
        if fs["first_seq"] is None:
            fs["first_seq"], fs["first_t_ref_ns"] = seq, record["t_ref_ns"]
        fs["last_seq"], fs["last_t_ref_ns"] = seq, record["t_ref_ns"]

    def add_skeleton(self, message: Mapping[str, Any]) -> None:
        """Append one ``skeleton.`` message (the websocket message) to ``skeletons.jsonl``."""
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        self._guard(lambda: self._skeletons.write(line))
        self.skeleton_bytes += len(line)
        sk = self.manifest["skeletons"]
        sk["written"] += 1
        seq = message.get("seq")
        if sk["first_seq"] is None:
            sk["first_seq"] = seq
        sk["last_seq"] = seq

    def maybe_flush(self, now_ns: int | None = None) -> bool:
        """Flush if ``flush_s`` has passed since the last flush; True if it did."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        if now < self._next_flush:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Flush + fsync the data files, check free space, rewrite the manifest."""

        def do() -> None:
            self._sets.sync()
            self._skeletons.flush()
            os.fsync(self._skeletons.fileno())
            self.manifest["bytes"] = self.bytes
            self.manifest["last_flush_wall_ns"] = time.time_ns()
            self._write_manifest()

        self._guard(do)
        self._next_flush = time.monotonic_ns() + self.flush_ns
        if self.min_free_bytes:
            free = shutil.disk_usage(self.folder).free
            if free < self.min_free_bytes:
                raise TakeWriteError(
                    28,
                    f"disk almost full: {free} bytes free, recording.min_free_bytes is {self.min_free_bytes}",
                )

    def close(self, state: str = "stopped", error: str | None = None) -> dict[str, Any]:
        """Finish the take (``stopped`` or ``failed`` with ``error``); best effort after a failure.

        Returns the final manifest (also written to disk when the disk still allows it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.manifest["state"] = state
        self.manifest["error"] = error
        self.manifest["stopped_wall_ns"] = time.time_ns()
        self.manifest["stopped"] = _iso(self.manifest["stopped_wall_ns"])
        for fn in (
            self._sets.close,
            self._skeletons.flush,
            lambda: os.fsync(self._skeletons.fileno()),
            self._skeletons.close,
        ):
            try:
                fn()
            except (OSError, ValueError) as err:
                if self.manifest["error"] is None:
                    self.manifest["state"], self.manifest["error"] = "failed", f"closing the take: {err}"
        self.manifest["bytes"] = self.bytes
        with contextlib.suppress(OSError):  # the disk is the problem; the recorder reports it
            self._write_manifest()
        return dict(self.manifest)


@dataclass
class RecordedFrameSet:
    """One frame set of a take: the recorded header and the stored image bytes of present cameras."""

    header: dict[str, Any]
    data: list[bytes]

    def images(self) -> list[np.ndarray | None]:
        """``C`` decoded ``(H, W, 3)`` BGR images (None for missing cameras or frames not stored)."""
        it = iter(self.data)
        out: list[np.ndarray | None] = []
        for fh in self.header["frames"]:
            if fh is None or fh.get("stored") == "none":
                out.append(None)
            else:
                out.append(decode_image(fh["stored"], next(it)))
        return out


@dataclass
class SkeletonStream:
    """The solved stream of a take as arrays (``N`` frames, ``J`` joints).

    Attributes:
        seq: ``(N,)`` frame set numbers; t_capture_ns: ``(N,)``; times_s: ``(N,)`` from the first frame;
        joints: ``(N, J, 3)`` metres (NaN = not solved); confidence: ``(N, J)``; views: ``(N, J)``.
    """

    skeleton: str
    seq: np.ndarray
    t_capture_ns: np.ndarray
    times_s: np.ndarray
    joints: np.ndarray
    confidence: np.ndarray
    views: np.ndarray
    messages: list[dict[str, Any]]


def skeleton_stream(messages: Sequence[Mapping[str, Any]]) -> SkeletonStream:
    """Arrays of a list of ``skeleton.`` messages (see :class:`SkeletonStream`)."""
    n = len(messages)
    j = len(messages[0]["joints"]) if n else 17
    joints = np.full((n, j, 3), np.nan)
    conf = np.zeros((n, j))
    views = np.zeros((n, j), dtype=np.int64)
    for i, m in enumerate(messages):
        arr = np.array([[np.nan if v is None else v for v in row] for row in m["joints"]], dtype=float)
        joints[i] = arr[:, :3]
        conf[i] = np.nan_to_num(arr[:, 3], nan=0.0)
        views[i] = m.get("views") or [0] * j
    t = np.array([int(m["t_capture_ns"]) for m in messages], dtype=np.int64)
    times = (t - t[0]) / 1e9 if n else np.zeros(0)
    return SkeletonStream(
        skeleton=str(messages[0].get("skeleton", "h36m17")) if n else "h36m17",
        seq=np.array([int(m["seq"]) for m in messages], dtype=np.int64),
        t_capture_ns=t,
        times_s=times,
        joints=joints,
        confidence=conf,
        views=views,
        messages=[dict(m) for m in messages],
    )


class Take:
    """A recorded take, read-only (works on takes still being written or interrupted mid-write)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TakeError(f"{self.folder} is not a take (no {MANIFEST})") from None
        except (OSError, ValueError) as err:
            raise TakeError(f"{path} cannot be read: {err}") from None
        self.last_read = ReadResult()

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @property
    def cameras(self) -> list[str]:
        return list(self.manifest["cameras"])

    def framesets(self) -> Iterator[RecordedFrameSet]:
        """Every complete frame set, in recorded order (an incomplete tail is skipped: ``last_read``)."""
        self.last_read = ReadResult()
        path = self.folder / FRAMESETS
        if not path.exists():
            return
        for header, data in read_records(path, self.last_read):
            yield RecordedFrameSet(header, data)

    def skeleton_messages(self) -> list[dict[str, Any]]:
        """The recorded ``skeleton.`` messages (an incomplete last line, from a kill, is skipped)."""
        path = self.folder / SKELETONS
        if not path.exists():
            return []
        out = []
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill
        return out

    def skeletons(self) -> SkeletonStream:
        """The solved stream as arrays."""
        return skeleton_stream(self.skeleton_messages())

    def calibration_files(self) -> list[Path]:
        """The rig files of the calibrations in force during the take (oldest first)."""
        return [self.folder / c["file"] for c in self.manifest.get("calibrations", [])]

    def config(self) -> dict[str, Any] | None:
        """The service config recorded with the take (JSON data), if any."""
        path = self.folder / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def recount(self) -> dict[str, Any]:
        """Counters recomputed from the data files (for a take whose manifest lags a kill)."""
        sets = 0
        first = last = None
        frames = {c: 0 for c in self.cameras}
        for fs in self.framesets():
            h = fs.header
            sets += 1
            if first is None:
                first = h["t_ref_ns"]
            last = h["t_ref_ns"]
            for cam, fh in zip(h["cameras"], h["frames"], strict=True):
                if fh is not None:
                    frames[cam] = frames.get(cam, 0) + 1
        skeletons = len(self.skeleton_messages())
        return {
            "framesets": sets,
            "frames": frames,
            "skeletons": skeletons,
            "duration_s": 0.0 if first is None or last is None else (last - first) / 1e9,
            "truncated_tail": self.last_read.truncated,
        }

    def summary(self) -> dict[str, Any]:
        """What the takes list shows: identity, state, duration, counts, size."""
        m = self.manifest
        fs = m["framesets"]
        duration = 0.0
        if fs.get("first_t_ref_ns") is not None and fs.get("last_t_ref_ns") is not None:
            duration = (fs["last_t_ref_ns"] - fs["first_t_ref_ns"]) / 1e9
        return {
            "id": m["id"],
            "name": m["name"],
            "metadata": m.get("metadata", {}),
            "state": m["state"],
            "error": m.get("error"),
            "created": m.get("created"),
            "stopped": m.get("stopped"),
            "duration_s": round(duration, 3),
            "framesets": fs["written"],
            "framesets_received": fs["received"],
            "framesets_lost": fs["lost"],
            "frames": {c: v["written"] for c, v in m["cameras_frames"].items()},
            "camera_seq_gaps": {c: v["seq_gaps"] for c, v in m["cameras_frames"].items()},
            "skeletons": m["skeletons"]["written"],
            "cameras": m["cameras"],
            "frames_format": m.get("frames_format"),
            "calibration_versions": [c.get("version") for c in m.get("calibrations", [])],
            "size_bytes": folder_bytes(self.folder),
        }


class TakeStore:
    """The folder of takes (``recording.store``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, take_id: str) -> Path:
        return self.folder / check_id(take_id)

    def new_id(self, name: str) -> str:
        """A fresh id: UTC time + the name's letters (unique in the store)."""
        check_name(name)
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "take"
        base = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{slug}"
        take_id, n = base, 1
        while (self.folder / take_id).exists():
            n += 1
            take_id = f"{base}-{n}"
        return take_id

    def get(self, take_id: str) -> Take:
        """The take ``take_id``. Raises TakeError when there is none."""
        path = self.path(take_id)
        if not (path / MANIFEST).is_file():
            raise TakeError(f"no take {take_id!r} in {self.folder}")
        return Take(path)

    def resolve(self, ref: str | Path) -> Take:
        """A take by id in this store, or by its folder path."""
        p = Path(ref)
        if (p / MANIFEST).is_file():
            return Take(p)
        return self.get(str(ref))

    def takes(self) -> list[Take]:
        """Every readable take, oldest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.iterdir()):
            if (p / MANIFEST).is_file():
                try:
                    out.append(Take(p))
                except TakeError:
                    continue
        return out

    def repair_interrupted(self) -> list[str]:
        """Takes left ``recording`` by a dead recorder: recount their data and mark them ``interrupted``.

        Call only where no recorder is writing (the recorder stage at start). Returns their ids."""
        fixed = []
        for take in self.takes():
            m = take.manifest
            if m.get("state") != "recording":
                continue
            counts = take.recount()
            fs = m["framesets"]
            fs["written"] = counts["framesets"]
            fs["received"] = max(fs["received"], counts["framesets"])
            for cam, n in counts["frames"].items():
                m["cameras_frames"].setdefault(cam, {"written": 0, "missing_in_sets": 0, "seq_gaps": 0})
                m["cameras_frames"][cam]["written"] = n
            m["skeletons"]["written"] = counts["skeletons"]
            last = None
            for s in take.framesets():
                last = s.header
            if last is not None:
                fs["last_seq"], fs["last_t_ref_ns"] = last["seq"], last["t_ref_ns"]
            m["state"] = "interrupted"
            m["error"] = (
                "the recorder stopped mid-take (killed or crashed); data up to its last flush is kept"
            )
            m["truncated_tail"] = counts["truncated_tail"]
            write_json_atomic(take.folder / MANIFEST, m)
            fixed.append(take.id)
        return fixed
