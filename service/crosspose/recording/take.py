"""A take on disk: its format, reading it back, and the store of takes (:mod:`.writer` writes one).

Layout of one take (``<store>/<take id>/``)::

    manifest.json          id, name, metadata, state, counters (rewritten atomically at every flush)
    config.json            the service config in force (secrets masked)
    calibration/v<N>.json  each calibration in force during the take (crosspose JSON rig file)
    framesets.rec          one record per frame set (crosspose.recording.log): the set's header with
                           every frame's header (camera seq, t_capture_ns, t_wall_ns, t_device_ns, …)
                           and the present cameras' images (JPEG as received, else encoded)
    skeletons.jsonl        the solved stream: the websocket messages, one JSON object per line, all of
                           one joint layout (the manifest's ``skeleton``, named by the messages), with
                           every performer tracked (``persons``; :func:`person_ids`)

States: ``recording`` → ``stopped`` (by request), ``failed`` (write error, disk full, size cap:
``error`` says which) or ``interrupted`` (the recorder died mid-take; found and repaired by the
next recorder — the data up to its last flush is kept). Frames are stored as 'jpeg', 'png' or not at
all ('none'; :mod:`.writer` says how).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crosspose.durable import write_atomic
from crosspose.recording.log import ReadResult, read_records
from crosspose.skeleton import H36M17, Skeleton, get_skeleton

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


def json_bytes(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON text of a take's JSON files (the manifest, config.json)."""
    return json.dumps(data, indent=1).encode("utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a synced temporary file and an atomic rename."""
    write_atomic(path, json_bytes(data))


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder`` (bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def decode_image(stored: str, data: bytes) -> np.ndarray:
    """A stored frame → ``(H, W, 3)`` uint8 BGR."""
    import cv2

    if stored not in ("jpeg", "png"):
        raise TakeError(f"frame stored as {stored!r} cannot be decoded")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise TakeError(f"a {stored} frame of the take cannot be decoded")
    return image


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
    """The solved stream of a take as arrays (``N`` frames, ``J`` joints of one layout).

    Attributes:
        skeleton: the joint layout's name (:func:`crosspose.skeleton.get_skeleton`).
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


def person_ids(messages: Sequence[Mapping[str, Any]]) -> list[int]:
    """Every performer id the messages' ``persons`` lists hold, ascending (empty for messages of a
    producer before ``persons``)."""
    ids: set[int] = set()
    for m in messages:
        persons = m.get("persons")
        if isinstance(persons, list):
            ids.update(int(p["id"]) for p in persons if isinstance(p, Mapping) and "id" in p)
    return sorted(ids)


def _person_view(message: Mapping[str, Any], person: int, j: int) -> dict[str, Any]:
    """``message`` with performer ``person``'s joints, views and mode at the top level (every joint
    missing, mode ``lost``, where that performer is not in it)."""
    for p in message.get("persons") or ():
        if isinstance(p, Mapping) and p.get("id") == person:
            views = p.get("views") or [0] * j
            return {**message, "joints": p["joints"], "views": views, "mode": p.get("mode")}
    return {**message, "joints": [[None, None, None, 0.0]] * j, "views": [0] * j, "mode": "lost"}


def skeleton_stream(
    messages: Sequence[Mapping[str, Any]], skeleton: str | None = None, person: int | None = None
) -> SkeletonStream:
    """Arrays of a list of ``skeleton.`` messages (see :class:`SkeletonStream`).

    The layout is the one the messages name (``skeleton``: the one they must name, e.g. a take manifest's;
    a stream without messages is of that layout, Human3.6M-17 when none is named). ``person``: that
    performer's joints from each message's ``persons`` (missing, confidence 0, in the frames they are not
    in); None: the top level (the lowest live id of each frame).

    Raises:
        TakeError: a message naming another layout, an unknown one, or joints or views that are not its
            layout's count (never read as another layout, padded or cut).
    """
    n = len(messages)
    name = skeleton if skeleton is not None else str(messages[0].get("skeleton")) if n else H36M17.name
    try:
        layout = get_skeleton(name)
    except KeyError as err:
        raise TakeError(f"the skeleton stream's layout: {err.args[0]}") from None
    j = layout.num_joints
    if person is not None:
        messages = [_person_view(m, person, j) for m in messages]
    joints = np.full((n, j, 3), np.nan)
    conf = np.zeros((n, j))
    views = np.zeros((n, j), dtype=np.int64)
    for i, m in enumerate(messages):
        _check_layout(m, layout)
        arr = np.array([[np.nan if v is None else v for v in row] for row in m["joints"]], dtype=float)
        joints[i] = arr[:, :3]
        conf[i] = np.nan_to_num(arr[:, 3], nan=0.0)
        views[i] = m.get("views") or [0] * j
    t = np.array([int(m["t_capture_ns"]) for m in messages], dtype=np.int64)
    times = (t - t[0]) / 1e9 if n else np.zeros(0)
    return SkeletonStream(
        skeleton=layout.name,
        seq=np.array([int(m["seq"]) for m in messages], dtype=np.int64),
        t_capture_ns=t,
        times_s=times,
        joints=joints,
        confidence=conf,
        views=views,
        messages=[dict(m) for m in messages],
    )


def _check_layout(message: Mapping[str, Any], layout: Skeleton) -> None:
    seq = message.get("seq")
    if message.get("skeleton") != layout.name:
        raise TakeError(f"skeleton message {seq} is of layout {message.get('skeleton')!r}, the stream's is "
                        f"{layout.name}: a take holds one layout")
    counts = {key: len(message.get(key) or ()) for key in ("joints", "views")}
    if counts["joints"] != layout.num_joints or counts["views"] not in (0, layout.num_joints):
        raise TakeError(f"skeleton message {seq} has {counts['joints']} joints and {counts['views']} views; "
                        f"layout {layout.name} has {layout.num_joints} joints")


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

    def skeletons(self, person: int | None = None) -> SkeletonStream:
        """The solved stream as arrays, in the layout the manifest records (takes written before it did:
        the one the messages name); ``person``: that performer's (see :func:`skeleton_stream`)."""
        return skeleton_stream(self.skeleton_messages(), self.manifest.get("skeletons", {}).get("skeleton"),
                               person)

    def persons(self) -> list[int]:
        """The performer ids the take's stream holds, ascending (:func:`person_ids`)."""
        return person_ids(self.skeleton_messages())

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
            "persons": list(m["skeletons"].get("persons") or []),
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
