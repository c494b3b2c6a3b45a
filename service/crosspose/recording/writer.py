"""Writing a take while the service runs: crash-safe appends, a manifest rewritten at every flush.

Every ``flush_s`` the writer hands what it appended to the kernel on the caller's thread (from then on a
``kill -9`` of the recorder keeps it) and a thread of its own ``fsync``\\ s it and rewrites the manifest
(from then on a power cut keeps it too): the recorder's receiving thread never waits for the disk, whose
``fsync`` can take a frame interval or many on a busy host.

The folder's layout, the states a take goes through and how frames are stored are those of
:mod:`crosspose.recording.take`, which reads them back. Frames: 'jpeg' stores JPEG frames exactly as
the grabber sent them and encodes raw ones at ``jpeg_quality`` (so "lossless" means "as received"
for JPEG cameras, high-quality JPEG otherwise); 'png' is truly lossless at a higher CPU/disk cost.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crosspose.durable import fsync_dir, write_atomic
from crosspose.recording.log import RecordWriter
from crosspose.recording.take import (
    FRAMESETS,
    MANIFEST,
    SKELETONS,
    TAKE_VERSION,
    FramesFormat,
    TakeWriteError,
    json_bytes,
    write_json_atomic,
)

log = logging.getLogger(__name__)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


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


class TakeWriter:
    """Writes one take; every ``flush_s`` the data is flushed (here) and fsynced with the manifest rewritten
    (on the writer's sync thread; module docstring).

    Args:
        folder: the take's folder (created; must not exist yet).
        take_id, name, metadata: identity of the take (metadata: any JSON object).
        cameras: ``C`` camera names in rig order.
        config: the service config as JSON data (written to ``config.json``), or None.
        frames, jpeg_quality: how camera frames are stored (module docstring).
        flush_s: the most data (in seconds of wall time) a ``kill -9`` can lose; a power cut loses at most
            that plus the disk's time to ``fsync`` it.
        max_bytes: the take fails with "size cap reached" beyond this many bytes (None: no cap).
        min_free_bytes: the take fails when the disk has less free space than this.
        encode_threads: threads encoding a frame set's cameras in parallel (raw frames only).

    Every write method raises :class:`TakeWriteError` on an I/O error or a limit (:meth:`maybe_flush` also
    the sync thread's, from the sync before); call :meth:`close` with ``state="failed"`` then.

    Attributes:
        syncs_late: flushes that found the sync thread still on the previous ``fsync`` (a disk slower than
            ``flush_s``); their data went to the kernel and a sync starts as soon as that one ends.
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
        self._syncer = ThreadPoolExecutor(1, "take-sync")
        self._sync: Future[None] | None = None  # the sync thread's current fsync + manifest rewrite
        self._sync_pending = False  # a flush found the sync thread busy: sync once it is done
        self.syncs_late = 0
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
            "skeletons": {"written": 0, "first_seq": None, "last_seq": None, "skeleton": None},
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
        """Append one ``skeleton.`` message (the websocket message) to ``skeletons.jsonl``; the first one's
        layout is the take's (manifest ``skeletons.skeleton``), a message of another is a ValueError."""
        sk = self.manifest["skeletons"]
        layout = message.get("skeleton")
        if sk["skeleton"] is not None and layout != sk["skeleton"]:
            raise ValueError(f"skeleton message {message.get('seq')} is of layout {layout!r}; take "
                             f"{self.manifest['id']} holds {sk['skeleton']} (one layout per take)")
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        self._guard(lambda: self._skeletons.write(line))
        self.skeleton_bytes += len(line)
        sk["skeleton"] = layout
        sk["written"] += 1
        persons = message.get("persons")
        if isinstance(persons, list):  # every performer id the take holds (sorted)
            ids = {p.get("id") for p in persons if isinstance(p, Mapping)}
            known = set(sk.get("persons") or ())
            if not ids <= known:
                sk["persons"] = sorted(i for i in known | ids if isinstance(i, int))
        seq = message.get("seq")
        if sk["first_seq"] is None:
            sk["first_seq"] = seq
        sk["last_seq"] = seq

    def maybe_flush(self, now_ns: int | None = None) -> bool:
        """When ``flush_s`` has passed since the last flush: hand the data to the kernel, start its
        ``fsync`` and the manifest's rewrite on the sync thread (not waiting for them) and check free
        space; True if it did.

        Raises:
            TakeWriteError: this, or the sync thread's last ``fsync`` or manifest write, failed; or the
                disk is almost full.
        """
        self._raise_sync_error()
        if self._sync_pending and self._sync is None:  # a late sync starts as soon as the last one ends
            self._sync_pending = False
            self._start_sync()
        now = time.monotonic_ns() if now_ns is None else now_ns
        if now < self._next_flush:
            return False
        if self._sync is None:
            self._start_sync()
        else:  # the disk has not finished the last sync within flush_s: to the kernel meanwhile
            self._guard(self._flush_buffers)
            self.syncs_late += 1
            self._sync_pending = True
        self._next_flush = time.monotonic_ns() + self.flush_ns
        self._check_free_space()
        return True

    def flush(self) -> None:
        """Flush + fsync the data files, rewrite the manifest and check free space, waiting for the disk."""
        self._wait_sync()
        self._sync_pending = False
        self._start_sync()
        self._wait_sync()
        self._next_flush = time.monotonic_ns() + self.flush_ns
        self._check_free_space()

    def _flush_buffers(self) -> None:
        """Python's buffers to the kernel: from here on a ``kill -9`` of this process keeps the data."""
        self._sets.flush()
        self._skeletons.flush()

    def _start_sync(self) -> None:
        """Hand the data to the kernel and have the sync thread fsync it, then write the manifest as it is
        now (a copy, counting no more than that data: this thread goes on appending and counting)."""
        self._guard(self._flush_buffers)
        self.manifest["bytes"] = self.bytes
        self.manifest["last_flush_wall_ns"] = time.time_ns()
        self._sync = self._syncer.submit(self._sync_to_disk, json_bytes(self.manifest))

    def _sync_to_disk(self, manifest: builtins.bytes) -> None:
        """On the sync thread: the data first, then the manifest that counts it (no more than is on disk)."""
        self._sets.fsync()
        os.fsync(self._skeletons.fileno())
        write_atomic(self.folder / MANIFEST, manifest)

    def _raise_sync_error(self) -> None:
        """Forget a finished sync; raise its error as a :class:`TakeWriteError`."""
        sync = self._sync
        if sync is None or not sync.done():
            return
        self._sync = None
        err = sync.exception()
        if isinstance(err, TakeWriteError):
            raise err
        if err is not None:  # an OSError, or a file closed under it: the take cannot be made durable
            code = err.errno if isinstance(err, OSError) and err.errno is not None else errno.EIO
            raise TakeWriteError(code, f"syncing take {self.manifest['id']} to disk failed: {err}") from err

    def _wait_sync(self) -> None:
        """Wait for the sync thread's current sync; raise its error as a :class:`TakeWriteError`."""
        if self._sync is not None:
            wait([self._sync])
            self._raise_sync_error()

    def _check_free_space(self) -> None:
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
        try:
            self._wait_sync()
        except TakeWriteError as err:  # the last sync failed: the take did not end as asked
            if error is None:
                state, error = "failed", str(err)
        self._syncer.shutdown(wait=True)
        if self.syncs_late:
            log.warning("take %s: %d of its syncs started late: the disk took longer than flush_s to fsync",
                        self.manifest["id"], self.syncs_late)
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
