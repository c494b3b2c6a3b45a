"""Every topic of the bus and every message's schema: one builder and one parser per message type.

Builders return the header (plus its buffers where the message carries arrays) WITHOUT ``"v"`` and
``"n_buffers"``, which the codec writes (:mod:`crosspose.bus.codec`). Parsers check what a received
message holds — the type, required keys and their types, array dtypes and shapes against the header,
camera lists — and return a small frozen record, or the checked header itself where the receiver
forwards it unchanged (skeleton, status). Anything else raises :class:`~crosspose.bus.codec.MessageError`
whose text names the field and whose ``reason`` is a category to count drops by: ``malformed`` (a wrong
type, shape or dtype, a number that is not finite), ``oversize`` (an image or heatmap beyond
:data:`MAX_IMAGE_SIDE` / :data:`MAX_HEATMAP_SIDE`), ``foreign`` (another message type, or — where the
receiver passes what it knows — a camera or camera list or joint count that is not its own). Nothing
but ``MessageError`` leaves a parser, whatever the message holds. Extra keys are allowed everywhere
(additions to a message are not changes). No torch at import: the API imports this.

What needs the receiver's state — whether a timestamp is plausible against its clock and the
camera's cadence, whether a message is older than what it already used — is the receiver's to check
(:mod:`crosspose.sync.clock` for frames).

Topics are dot-separated with a trailing dot, so a prefix never matches a longer name. Each message
type ``X`` is built by ``X_message`` and checked by ``parse_X``::

    topic                           type          from → to
    frame.<camera>.                 frame         grabber → sync
    status.grabber.<camera>.        status        grabber → sync → api
    frameset.<worker>.              frameset      sync → inference worker k (one worker per set)
    frameset.                       frameset      sync → recorder (the tap: every set)
    heatmaps.                       heatmaps      inference → solver
    inflight.                       inflight      inference worker k of several → solver (a set it started)
    skeleton.                       skeleton      solver → api, recorder
    track.                          track         solver → inference (private, full precision)
    preview.<camera>.               preview       inference → api
    status.<stage>.                 status        every stage → api
    status.inference.<worker>.      status        inference worker k of several → api
    control.calibration.updated.    calibration   api → inference, recorder
    control.recording.              recording     api → recorder

The skeleton message is the public websocket message of DESIGN §5; its optional ``rotations`` key is
:func:`rotations_payload` / :func:`parse_rotations`. Skeleton and track messages name their joint layout
(``skeleton``); a skeleton message's joint rows must be that layout's
(:func:`crosspose.skeleton.get_skeleton`), so a client never gets joints that do not match the name. A
layout this receiver does not know is ``foreign`` (a producer of another version: counted apart from
corrupt messages, as an unknown schema version is), a wrong count ``malformed``.

Several performers: the skeleton message's ``persons`` lists every tracked performer (``id``, ``joints``,
``views``, ``mode``, and ``rotations`` where the stage computes them), sorted by id; the top-level
``joints``/``views``/``mode``/``rotations`` repeat the lowest id's, so a one-performer client is unchanged
(:func:`skeleton_message` says what the top level holds when nobody is tracked).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosspose.bus.codec import MessageError, pack_array, unpack_array
from crosspose.skeleton import SKELETONS, Skeleton, get_skeleton

if TYPE_CHECKING:
    from crosspose.solver.pose import Pose3D

# -- topics ------------------------------------------------------------------------------------------

FRAME = b"frame."
FRAMESET = b"frameset."
HEATMAPS = b"heatmaps."
INFLIGHT = b"inflight."
SKELETON = b"skeleton."
TRACK = b"track."
PREVIEW = b"preview."
CONTROL = b"control."
STATUS = b"status."

_PART = re.compile(r"^[A-Za-z0-9_-]+$")

MAX_IMAGE_SIDE = 16384
"""Largest frame or preview height or width (px) a receiver accepts: 16K video, beyond any camera."""
MAX_WORKERS = 64
"""Inference workers a frame-set topic can name (``frameset.0.`` … ``frameset.63.``)."""
MAX_HEATMAP_SIDE = 1024
"""Largest heatmap height or width (px); the network's are 64."""


def _checked(part: str) -> bytes:
    if not _PART.match(part):
        raise ValueError(f"topic part {part!r} may only use letters, digits, '_' and '-'")
    return part.encode("ascii")


def frame_topic(camera: str) -> bytes:
    """``frame.<camera>.``: the frames of one camera."""
    return FRAME + _checked(camera) + b"."


def frameset_topic(worker: int) -> bytes:
    """``frameset.<worker>.``: the frame sets sync hands to inference worker ``worker`` (0, 1, …)."""
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < MAX_WORKERS:
        raise ValueError(f"an inference worker is numbered 0-{MAX_WORKERS - 1}, got {worker!r}")
    return FRAMESET + str(worker).encode("ascii") + b"."


def frameset_worker(topic: bytes) -> int | None:
    """The worker a ``frameset.<worker>.`` topic is for (None: not such a topic)."""
    if not topic.startswith(FRAMESET) or not topic.endswith(b"."):
        return None
    part = topic[len(FRAMESET):-1]
    if not part.isdigit() or len(part) > 3 or (len(part) > 1 and part.startswith(b"0")):
        return None
    worker = int(part)
    return worker if worker < MAX_WORKERS else None


def preview_topic(camera: str) -> bytes:
    """``preview.<camera>.``: the inference stage's small JPEG of a camera (on the status link)."""
    return PREVIEW + _checked(camera) + b"."


def control_topic(*subject: str) -> bytes:
    """``control.<subject…>.``, e.g. ``control_topic("calibration", "updated")``."""
    return CONTROL + b"".join(_checked(s) + b"." for s in subject)


def status_topic(stage: str, *detail: str) -> bytes:
    """``status.<stage>.[<detail>.]``, e.g. ``status_topic("grabber", "cam1")``."""
    return STATUS + b"".join(_checked(s) + b"." for s in (stage, *detail))


CALIBRATION_UPDATED = control_topic("calibration", "updated")
RECORDING_CONTROL = control_topic("recording")
GRABBER_STATUS = status_topic("grabber")
SYNC_STATUS = status_topic("sync")
RECORDER_STATUS = status_topic("recorder")

# -- checked reads -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """A finite int or float (NaN and infinities are not numbers on the bus; the public messages write
    null for them)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_list(v: Any) -> bool:
    return isinstance(v, (list, tuple))


class _Fields:
    """Checked reads of one map (a header, or a map inside it); a failure names ``where`` and the key."""

    def __init__(self, where: str, value: Any, prefix: str = "") -> None:
        if not isinstance(value, Mapping):
            where_field = prefix.rstrip(".") or None
            raise MessageError(f"{where}: must be a map, got {_show(value)}", field=where_field)
        self.where, self.h, self.prefix = where, value, prefix

    def error(self, key: str, expected: str, value: Any) -> MessageError:
        text = f"{self.where}: {key!r} must be {expected}, got {_show(value)}"
        return MessageError(text, field=self.prefix + key)

    def type(self, kind: str) -> None:
        if self.h.get("type") != kind:
            text = f"{self.where}: not a {kind!r} message (type {self.h.get('type')!r})"
            raise MessageError(text, reason="foreign", field=self.prefix + "type")

    def get(self, key: str) -> Any:
        if key not in self.h:
            raise MessageError(f"{self.where}: {key!r} is missing", field=self.prefix + key)
        return self.h[key]

    def integer(self, key: str, minimum: int | None = None) -> int:
        v = self.get(key)
        if not _is_int(v) or (minimum is not None and v < minimum):
            raise self.error(key, "an integer" + ("" if minimum is None else f" >= {minimum}"), v)
        return int(v)

    def opt_integer(self, key: str, minimum: int | None = None) -> int | None:
        return None if self.h.get(key) is None else self.integer(key, minimum)

    def number(self, key: str, positive: bool = False) -> float:
        v = self.get(key)
        if not _is_number(v) or (positive and not v > 0):
            raise self.error(key, "a positive finite number" if positive else "a finite number", v)
        return float(v)

    def opt_number(self, key: str, positive: bool = False) -> float | None:
        return None if self.h.get(key) is None else self.number(key, positive)

    def text(self, key: str, choices: Sequence[str] | None = None) -> str:
        v = self.get(key)
        if not isinstance(v, str) or (choices is not None and v not in choices):
            raise self.error(key, "a string" if choices is None else f"one of {list(choices)}", v)
        return v

    def opt_text(self, key: str) -> str | None:
        return None if self.h.get(key) is None else self.text(key)

    def name(self, key: str) -> str:
        """A camera or stage name: a valid topic part."""
        v = self.get(key)
        if not isinstance(v, str) or not _PART.match(v):
            raise self.error(key, "a name of letters, digits, '_' and '-'", v)
        return v

    def sequence(self, key: str, length: int | None = None) -> Sequence[Any]:
        v = self.get(key)
        if not _is_list(v) or (length is not None and len(v) != length):
            raise self.error(key, "a list" + ("" if length is None else f" of {length}"), v)
        return v

    def names(self, key: str, known: Sequence[str] | None = None) -> tuple[str, ...]:
        """A non-empty list of unique camera names (exactly ``known``, in its order, when given:
        another list is ``foreign``)."""
        v = self.sequence(key)
        if not v or not all(isinstance(c, str) and _PART.match(c) for c in v) or len(set(v)) != len(v):
            raise self.error(key, "a non-empty list of unique camera names", v)
        if known is not None and tuple(v) != tuple(known):
            text = f"{self.where}: cameras {list(v)} are not this receiver's {list(known)}"
            raise MessageError(text, reason="foreign", field=self.prefix + key)
        return tuple(v)

    def camera(self, key: str, known: Collection[str] | None = None) -> str:
        """A camera name (one of ``known`` when given: another is ``foreign``)."""
        name = self.name(key)
        if known is not None and name not in known:
            text = f"{self.where}: camera {name!r} is not one of this receiver's {sorted(known)}"
            raise MessageError(text, reason="foreign", field=self.prefix + key)
        return name

    def flags(self, key: str, length: int) -> tuple[bool, ...]:
        v = self.sequence(key, length)
        if not all(isinstance(b, bool) for b in v):
            raise self.error(key, f"a list of {length} booleans", v)
        return tuple(v)

    def mapping(self, key: str) -> Mapping[str, Any]:
        v = self.get(key)
        if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
            raise self.error(key, "a map with string keys", v)
        return v

    def rows(self, key: str, width: int, length: int | None = None, nullable: bool = True) -> Sequence[Any]:
        """A list of ``width``-long rows of numbers (``None`` allowed where ``nullable``)."""
        v = self.sequence(key, length)
        for row in v:
            if (
                not _is_list(row)
                or len(row) != width
                or not all(_is_number(x) or (nullable and x is None) for x in row)
            ):
                what = f"rows of {width} finite numbers" + (" or nulls" if nullable else "")
                raise self.error(key, f"a list of {what}", row)
        return v


def _view(buffer: Any) -> memoryview:
    """A buffer as received (bytes, memoryview, a zmq.Frame) as a memoryview."""
    return memoryview(getattr(buffer, "buffer", buffer))


def _nbytes(buffer: Any) -> int:
    return _view(buffer).nbytes


def _head(buffer: Any) -> bytes:
    return bytes(_view(buffer).cast("B")[:2])


def _buffers(where: str, buffers: Sequence[Any], count: int) -> None:
    if len(buffers) != count:
        raise MessageError(f"{where}: needs {count} buffer(s), got {len(buffers)}", field="n_buffers")


def _layout(f: _Fields) -> Skeleton:
    """The joint layout a message names in ``skeleton`` (unknown here: ``foreign``)."""
    name = f.text("skeleton")
    try:
        return get_skeleton(name)
    except KeyError as err:
        text = f"{f.where}: {err.args[0]}"
        raise MessageError(text, reason="foreign", field=f.prefix + "skeleton") from None


def _joint_count(f: _Fields, layout: Skeleton, count: int) -> None:
    if count != layout.num_joints:
        text = f"{f.where}: {count} joints for layout {layout.name}, which has {layout.num_joints}"
        raise MessageError(text, field=f.prefix + "joints")


def _finite(x: float, digits: int) -> float | None:
    return round(float(x), digits) if math.isfinite(x) else None


# -- frame -------------------------------------------------------------------------------------------

Encoding = Literal["raw", "jpeg"]
ENCODINGS: tuple[Encoding, ...] = ("raw", "jpeg")
JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True)
class FrameMessage:
    """A checked frame header. Its one buffer is the image: ``shape`` uint8 bytes (raw) or a JPEG."""

    camera: str
    seq: int
    t_capture_ns: int
    t_wall_ns: int
    t_device_ns: int | None
    shape: tuple[int, int, int]
    dtype: str
    encoding: Encoding
    fps: float | None


def frame_message(
    camera: str,
    seq: int,
    frame: np.ndarray,
    *,
    t_capture_ns: int,
    t_wall_ns: int,
    t_device_ns: int | None,
    encoding: Encoding,
    fps: float | None,
) -> dict[str, Any]:
    """The header of one ``frame.<camera>.`` message (``shape``/``dtype`` are the decoded image's):
    ``t_capture_ns`` host monotonic, ``t_wall_ns`` wall clock, ``t_device_ns`` the source's own or None."""
    return {
        "type": "frame",
        "camera": camera,
        "seq": seq,
        "t_capture_ns": t_capture_ns,
        "t_wall_ns": t_wall_ns,
        "t_device_ns": t_device_ns,
        "shape": list(frame.shape),
        "dtype": str(frame.dtype),
        "encoding": encoding,
        "fps": fps,
    }


def _frame(f: _Fields, cameras: Collection[str] | None = None) -> FrameMessage:
    f.type("frame")
    shape = f.sequence("shape", 3)
    if not all(_is_int(s) and s > 0 for s in shape) or shape[2] != 3:
        raise f.error("shape", "[H, W, 3] with positive sizes", shape)
    if max(shape[0], shape[1]) > MAX_IMAGE_SIDE:
        text = f"{f.where}: an image of {shape[1]}x{shape[0]} px is beyond {MAX_IMAGE_SIDE} px a side"
        raise MessageError(text, reason="oversize", field=f.prefix + "shape")
    encoding: Encoding = "raw" if f.text("encoding", ENCODINGS) == "raw" else "jpeg"
    return FrameMessage(
        camera=f.camera("camera", cameras),
        seq=f.integer("seq", 0),
        t_capture_ns=f.integer("t_capture_ns"),
        t_wall_ns=f.integer("t_wall_ns"),
        t_device_ns=f.opt_integer("t_device_ns"),
        shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        dtype=f.text("dtype", ("uint8",)),
        encoding=encoding,
        fps=f.opt_number("fps", positive=True),
    )


def _frame_buffer(where: str, frame: FrameMessage, buffer: Any, prefix: str = "") -> None:
    n = _nbytes(buffer)
    if frame.encoding == "raw" and n != math.prod(frame.shape):
        raise MessageError(
            f"{where}: raw image of shape {list(frame.shape)} needs {math.prod(frame.shape)} "
            f"bytes, the buffer holds {n}",
            field=prefix + "shape",
        )
    if frame.encoding == "jpeg" and (n < 2 or _head(buffer) != JPEG_MAGIC):
        raise MessageError(
            f"{where}: 'encoding' is jpeg but the buffer is not a JPEG", field=prefix + "encoding"
        )


def parse_frame(
    header: Any, buffers: Sequence[Any] | None = None, *, cameras: Collection[str] | None = None
) -> FrameMessage:
    """Check a ``frame`` header (and, when given, its one buffer against ``shape``/``encoding``); a
    camera not in ``cameras`` (when given: the receiver's) is ``foreign``."""
    frame = _frame(_Fields("frame", header), cameras)
    if buffers is not None:
        _buffers("frame", buffers, 1)
        _frame_buffer("frame", frame, buffers[0])
    return frame


# -- frameset ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramesetMessage:
    """A checked frame set: ``C`` cameras in rig order, a frame header where present (else None)."""

    seq: int
    t_ref_ns: int
    t_emit_ns: int
    cameras: tuple[str, ...]
    present: tuple[bool, ...]
    frames: tuple[FrameMessage | None, ...]
    skew_ns: tuple[int | None, ...]


def frameset_message(
    *,
    seq: int,
    t_ref_ns: int,
    t_emit_ns: int,
    cameras: Sequence[str],
    present: Sequence[bool],
    frames: Sequence[Mapping[str, Any] | None],
    skew_ns: Sequence[int | None],
) -> dict[str, Any]:
    """The header of one ``frameset.`` message: the received frame headers (None where missing); the
    buffers that follow are the PRESENT cameras' images, in camera order. ``skew_ns[c]`` is
    ``t_capture − t_ref``."""
    return {
        "type": "frameset",
        "seq": seq,
        "t_ref_ns": t_ref_ns,
        "t_emit_ns": t_emit_ns,
        "cameras": list(cameras),
        "present": list(present),
        "frames": list(frames),
        "skew_ns": list(skew_ns),
    }


def parse_frameset(
    header: Any, buffers: Sequence[Any] | None = None, *, cameras: Sequence[str] | None = None
) -> FramesetMessage:
    """Check a ``frameset`` header: one entry per camera in ``present``/``frames``/``skew_ns``, a valid
    frame of that camera where present and None where missing (and, when given, the buffers). A camera
    list other than ``cameras`` (when given: the receiver's, in rig order) is ``foreign``."""
    f = _Fields("frameset", header)
    f.type("frameset")
    cameras = f.names("cameras", cameras)
    c = len(cameras)
    present = f.flags("present", c)
    raw_frames, skews = f.sequence("frames", c), f.sequence("skew_ns", c)
    frames: list[FrameMessage | None] = []
    for i, (cam, p, fh, skew) in enumerate(zip(cameras, present, raw_frames, skews, strict=True)):
        if not p:
            if fh is not None or skew is not None:
                raise f.error(f"frames[{i}]", "null (with a null skew) for a missing camera", fh)
            frames.append(None)
            continue
        frame = _frame(_Fields(f"frameset: frames[{i}]", fh, f"frames[{i}]."))
        if frame.camera != cam:
            raise f.error(f"frames[{i}]", f"a frame of camera {cam!r}", frame.camera)
        if not _is_int(skew):
            raise f.error(f"skew_ns[{i}]", "an integer for a present camera", skew)
        frames.append(frame)
    if buffers is not None:
        _buffers("frameset", buffers, sum(present))
        present_frames = [(i, fr) for i, fr in enumerate(frames) if fr is not None]
        for (i, frame), buffer in zip(present_frames, buffers, strict=True):
            _frame_buffer(f"frameset: frames[{i}]", frame, buffer, f"frames[{i}].")
    return FramesetMessage(
        seq=f.integer("seq", 0),
        t_ref_ns=f.integer("t_ref_ns"),
        t_emit_ns=f.integer("t_emit_ns"),
        cameras=cameras,
        present=present,
        frames=tuple(frames),
        skew_ns=tuple(skews),
    )


# -- heatmaps ----------------------------------------------------------------------------------------


def _cast(a: np.ndarray, dtype: type[np.floating[Any]]) -> np.ndarray:
    """``a`` as a new C-contiguous array of ``dtype``, converted by torch: numpy's float16 casts are
    scalar loops (3.8 ms float32 → float16 and 1.8 ms back for 8 views' heatmaps, against 0.26 / 0.21 ms)."""
    # torch is imported here, not at the top: this module must stay importable without it (the API).
    import torch

    out = np.empty(a.shape, dtype=dtype)
    with warnings.catch_warnings():  # a read-only source (a bus buffer) is only read
        warnings.simplefilter("ignore", UserWarning)
        torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return out


@dataclass(frozen=True)
class HeatmapsMessage:
    """A checked ``heatmaps`` message with its arrays as float32 (``C`` cameras)."""

    seq: int
    t_capture_ns: int
    cameras: tuple[str, ...]
    present: tuple[bool, ...]
    heatmaps: np.ndarray  # (C, J, h, w)
    projections: np.ndarray  # (C, 3, 4) world metres → heatmap pixels; NaN rows for missing views
    latency_ms: Mapping[str, float]
    calibration_version: int | None
    backend: str


def heatmaps_message(
    *,
    seq: int,
    t_capture_ns: int,
    cameras: Sequence[str],
    present: Sequence[bool],
    heatmaps: np.ndarray,
    projections: np.ndarray,
    latency_ms: Mapping[str, float],
    calibration_version: int | None,
    backend: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Header and buffers ``[heatmaps (C, J, h, w) float16, projections (C, 3, 4) float32]`` of one
    ``heatmaps.`` message. A missing view is all-zero heatmaps and a NaN projection (DESIGN §4).

    Args:
        heatmaps: ``(C, J, h, w)`` in [0, 1]; projections: ``(C, 3, 4)`` world metres → heatmap pixels.
        latency_ms: stage latencies so far (``sync``, ``inference``), milliseconds.
        extra: backend details added to the header (diagnostics, not read by the solver).
    """
    c = len(cameras)
    if heatmaps.ndim != 4 or heatmaps.shape[0] != c or projections.shape != (c, 3, 4):
        raise ValueError(
            f"heatmaps (C, J, h, w) and projections (C, 3, 4) for C = {c} cameras, got "
            f"{heatmaps.shape} and {projections.shape}"
        )
    hm_meta, hm_buf = pack_array(_cast(heatmaps, np.float16))
    p_meta, p_buf = pack_array(np.ascontiguousarray(projections, dtype=np.float32))
    header: dict[str, Any] = {
        "type": "heatmaps",
        "seq": int(seq),
        "t_capture_ns": int(t_capture_ns),
        "cameras": list(cameras),
        "present": [bool(p) for p in present],
        "heatmaps": hm_meta,
        "projections": p_meta,
        "latency_ms": dict(latency_ms),
        "calibration_version": calibration_version,
        "backend": backend,
    }
    if extra:
        header.update(extra)
    return header, [hm_buf, p_buf]


def _array(
    f: _Fields, key: str, buffer: Any, dtype: type[np.generic], shape: str, ok: Callable[[Any], bool]
) -> np.ndarray:
    meta = f.mapping(key)
    try:
        arr = unpack_array(meta, buffer)
    except MessageError as err:
        raise MessageError(f"{f.where}: {key!r} {err}", field=key) from None
    if arr.dtype != dtype or not ok(arr.shape):
        raise f.error(key, f"{np.dtype(dtype).name} {shape}", f"{arr.dtype} {list(arr.shape)}")
    return arr


def parse_heatmaps(
    header: Any, buffers: Sequence[Any], *, cameras: Sequence[str] | None = None, joints: int | None = None
) -> HeatmapsMessage:
    """Check a ``heatmaps`` message (arrays against their metadata and the camera count, finite
    heatmaps, each projection finite or all NaN — a view not seen) and read its arrays as float32
    copies. Cameras other than ``cameras`` or a joint count other than ``joints`` (when given: the
    receiver's) are ``foreign``; heatmaps beyond :data:`MAX_HEATMAP_SIDE` are ``oversize``."""
    f = _Fields("heatmaps", header)
    f.type("heatmaps")
    _buffers("heatmaps", buffers, 2)
    names = f.names("cameras", cameras)
    c = len(names)
    hm = _array(f, "heatmaps", buffers[0], np.float16, f"({c}, J, h, w) with J, h, w >= 1",
                lambda s: len(s) == 4 and s[0] == c and min(s) >= 1)
    if max(hm.shape[2:]) > MAX_HEATMAP_SIDE:
        raise MessageError(f"heatmaps: {hm.shape[3]}x{hm.shape[2]} heatmaps are beyond {MAX_HEATMAP_SIDE} "
                           "px a side", reason="oversize", field="heatmaps")
    if joints is not None and hm.shape[1] != joints:
        raise MessageError(f"heatmaps: {hm.shape[1]} joints, this receiver solves {joints}", reason="foreign",
                           field="heatmaps")
    proj = _array(f, "projections", buffers[1], np.float32, f"({c}, 3, 4)", lambda s: s == (c, 3, 4))
    finite = np.isfinite(proj).reshape(c, -1)
    if not np.all(finite.all(axis=1) | np.isnan(proj).reshape(c, -1).all(axis=1)):
        raise f.error("projections", "finite, or all NaN for a view not seen", "a partly non-finite matrix")
    heatmaps = _cast(hm, np.float32)
    if not np.isfinite(heatmaps).all():
        raise f.error("heatmaps", "finite values", "NaN or infinity")
    latency = f.mapping("latency_ms")
    if not all(_is_number(v) for v in latency.values()):
        raise f.error("latency_ms", "a map of finite numbers", latency)
    return HeatmapsMessage(
        seq=f.integer("seq", 0),
        t_capture_ns=f.integer("t_capture_ns"),
        cameras=names,
        present=f.flags("present", c),
        heatmaps=heatmaps,
        projections=proj.astype(np.float32),
        latency_ms={k: float(v) for k, v in latency.items()},
        calibration_version=f.opt_integer("calibration_version", 1),
        backend=f.text("backend"),
    )


# -- inflight (private: inference worker → solver, with several workers) -----------------------------


@dataclass(frozen=True)
class InflightMessage:
    """A checked ``inflight`` message: inference worker ``worker`` started the network on frame set ``seq``
    captured at ``t_capture_ns``; its heatmaps follow on ``heatmaps.`` (or never, if the set fails)."""

    worker: int
    seq: int
    t_capture_ns: int


def inflight_message(*, worker: int, seq: int, t_capture_ns: int) -> dict[str, Any]:
    """Header of one ``inflight.`` message, sent by a worker of several before it runs the network on a set,
    so that the solver can hold a newer set another worker finished first for it (capture order without
    dropping the older set; :mod:`crosspose.runtime.solver_stage`)."""
    return {"type": "inflight", "worker": int(worker), "seq": int(seq), "t_capture_ns": int(t_capture_ns)}


def parse_inflight(header: Any) -> InflightMessage:
    """Check an ``inflight`` message."""
    f = _Fields("inflight", header)
    f.type("inflight")
    worker = f.integer("worker", 0)
    if worker >= MAX_WORKERS:
        raise f.error("worker", f"an integer below {MAX_WORKERS}", worker)
    return InflightMessage(worker=worker, seq=f.integer("seq", 0), t_capture_ns=f.integer("t_capture_ns"))


# -- track (private: solver → inference) ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrackMessage:
    """A checked ``track`` message: one performer's last solved pose at full precision (``J`` joints);
    :meth:`crosspose.core.Track.from_message` makes the core's track of it."""

    id: int
    seq: int
    t_capture_ns: int | None
    skeleton: str
    joints: np.ndarray  # (J, 3) float64 metres, NaN where unknown
    views: np.ndarray  # (J,) int64
    confidence: np.ndarray  # (J,) float64


def track_message(
    *, id: int, seq: int, t_capture_ns: int | None, skeleton: str, joints: np.ndarray, views: np.ndarray,
    confidence: np.ndarray,
) -> tuple[dict[str, Any], list[Any]]:
    """Header and buffers ``[joints (J, 3) float64, views (J,) int64, confidence (J,) float64]`` of one
    ``track.`` message: what the inference stage places the next crops from (never the public skeleton
    message, which is rounded and has null for NaN)."""
    header: dict[str, Any] = {"type": "track", "id": int(id), "seq": int(seq),
                              "t_capture_ns": None if t_capture_ns is None else int(t_capture_ns),
                              "skeleton": skeleton}
    buffers = []
    for key, array, dtype in (("joints", joints, np.float64), ("views", views, np.int64),
                              ("confidence", confidence, np.float64)):
        header[key], buffer = pack_array(np.ascontiguousarray(array, dtype=dtype))
        buffers.append(buffer)
    return header, buffers


def parse_track(header: Any, buffers: Sequence[Any]) -> TrackMessage:
    """Check a ``track`` message (its three arrays against one joint count) and copy its arrays."""
    f = _Fields("track", header)
    f.type("track")
    _buffers("track", buffers, 3)
    joints = _array(f, "joints", buffers[0], np.float64, "(J, 3)", lambda s: len(s) == 2 and s[1] == 3)
    j = joints.shape[0]
    if not (np.isfinite(joints).all(axis=1) | np.isnan(joints).all(axis=1)).all():
        raise f.error("joints", "finite rows, or all NaN where unknown", "a partly non-finite row")
    views = _array(f, "views", buffers[1], np.int64, f"({j},)", lambda s: s == (j,))
    if (views < 0).any():
        raise f.error("views", "view counts >= 0", "a negative count")
    confidence = _array(f, "confidence", buffers[2], np.float64, f"({j},)", lambda s: s == (j,))
    if not np.isfinite(confidence).all():
        raise f.error("confidence", "finite values", "NaN or infinity")
    return TrackMessage(id=f.integer("id", 0), seq=f.integer("seq", 0),
                        t_capture_ns=f.opt_integer("t_capture_ns"), skeleton=f.text("skeleton"),
                        joints=joints.copy(), views=views.copy(), confidence=confidence.copy())


# -- skeleton (DESIGN §5) ----------------------------------------------------------------------------

LOST = "lost"
"""The top level's ``mode`` when nobody is tracked (``persons`` empty)."""


def _person_fields(pose: Pose3D, layout: Skeleton) -> dict[str, Any]:
    """One performer's ``joints`` rows ``[x, y, z, confidence]``, ``views`` and ``mode``."""
    if pose.skeleton != layout.name:
        raise ValueError(f"every person of a message is of one layout: {pose.skeleton} beside {layout.name}")
    if pose.joints.shape != (layout.num_joints, 3):
        raise ValueError(f"a pose of layout {layout.name} needs ({layout.num_joints}, 3) joints, got "
                         f"{pose.joints.shape}")
    joints = [
        [_finite(x, 4), _finite(y, 4), _finite(z, 4), _finite(c, 3)]
        for (x, y, z), c in zip(pose.joints.tolist(), pose.confidence.tolist(), strict=True)
    ]
    return {"joints": joints, "views": [int(v) for v in pose.views.tolist()], "mode": pose.mode}


def skeleton_message(
    pose: Pose3D | None = None,
    *,
    persons: Sequence[tuple[int, Pose3D]] | None = None,
    skeleton: str | None = None,
    seq: int,
    t_capture_ns: int,
    cameras: Sequence[str],
    latency_ms: Mapping[str, float],
    t_publish_ns: int | None = None,
    calibration_version: int | None = None,
) -> dict[str, Any]:
    """The DESIGN §5 websocket message of one solved frame set, in the layout its poses name.

    Give either ``pose`` (one performer, id 0: the message of a single-person pipeline) or ``persons``,
    the performers tracked in this frame set as ``(id, pose)`` (ids unique integers >= 0, never reused
    within a run; possibly empty: nobody tracked, then ``skeleton`` names the layout).

    ``persons`` is ``[{"id", "joints", "views", "mode"}, …]`` sorted by id, one entry per performer:
    ``joints`` are ``[x, y, z, confidence]`` in metres (0.1 mm precision; ``null`` for a non-finite
    value), ``views`` the number of cameras supporting each joint, ``mode`` the solver's (``cold``,
    ``tracked``). The top-level ``joints``, ``views`` and ``mode`` are those of the first entry, the
    lowest id, so a client of one performer reads the top level as before. With nobody tracked the top
    level keeps its shape: every joint ``[null, null, null, 0.0]``, every view count 0, mode ``lost``;
    ``persons`` is ``[]``. ``latency_ms.total`` is capture → publish on the host monotonic clock
    (``t_publish_ns``: now when not given). Extra keys (``mode``, ``cameras``, ``calibration_version``,
    ``persons``) are additions to the contract, not changes.

    Raises:
        ValueError: both or neither of ``pose`` and ``persons``; poses of several layouts, or not of
            ``skeleton``; joints that are not the layout's count; ids repeated or not integers >= 0.
    """
    if (pose is None) == (persons is None):
        raise ValueError("a skeleton message is of one pose or of a list of persons: give exactly one")
    people = [(0, pose)] if pose is not None else sorted(persons or (), key=lambda p: p[0])
    ids = [i for i, _ in people]
    if not all(_is_int(i) and i >= 0 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"person ids must be distinct integers >= 0, got {ids}")
    name = skeleton if skeleton is not None else people[0][1].skeleton if people else None
    if name is None:
        raise ValueError("a message with nobody tracked must name its layout (skeleton=)")
    layout = get_skeleton(name)
    entries = [{"id": int(i), **_person_fields(p, layout)} for i, p in people]
    top: dict[str, Any] = entries[0] if entries else {
        "joints": [[None, None, None, 0.0] for _ in range(layout.num_joints)],
        "views": [0] * layout.num_joints,
        "mode": LOST,
    }
    now = time.monotonic_ns() if t_publish_ns is None else t_publish_ns
    latency = {k: round(float(v), 2) for k, v in latency_ms.items()}
    latency["total"] = round((now - t_capture_ns) / 1e6, 2)
    return {
        "type": "skeleton",
        "seq": int(seq),
        "t_capture_ns": int(t_capture_ns),
        "t_publish_ns": int(now),
        "skeleton": layout.name,
        "units": "m",
        "joints": [list(row) for row in top["joints"]],
        "views": list(top["views"]),
        "latency_ms": latency,
        "mode": top["mode"],
        "cameras": list(cameras),
        "calibration_version": calibration_version,
        "persons": entries,
    }


def _joints_and_views(f: _Fields, layout: Skeleton) -> Sequence[Any]:
    """A skeleton message's (or one of its persons') ``joints`` rows and ``views`` of ``layout``."""
    joints = f.rows("joints", 4)
    _joint_count(f, layout, len(joints))
    views = f.sequence("views", len(joints))
    if not all(_is_int(v) and v >= 0 for v in views):
        raise f.error("views", f"a list of {len(joints)} view counts", views)
    f.opt_text("mode")
    if f.h.get("rotations") is not None:
        parse_rotations(f.h["rotations"], f.prefix + "rotations.")
    return joints


def _persons(f: _Fields, layout: Skeleton, joints: Sequence[Any]) -> None:
    """Check ``persons``: a list of maps with distinct ids in increasing order, each with the layout's
    joints and views; the top level is the first (or, with nobody tracked, no joint position)."""
    entries = f.sequence("persons")
    last = -1
    for k, entry in enumerate(entries):
        p = _Fields(f"skeleton persons[{k}]", entry, f"persons[{k}].")
        pid = p.integer("id", 0)
        if pid <= last:
            raise p.error("id", f"an id above the previous person's {last} (persons are sorted by id)", pid)
        last = pid
        _joints_and_views(p, layout)
    if entries:
        first = entries[0]
        if [list(r) for r in first["joints"]] != [list(r) for r in joints] or (
            list(first["views"]) != list(f.h["views"])
        ):
            raise MessageError("skeleton: the top-level joints and views are not those of the first person "
                               f"(id {first['id']})", field="joints")
    elif any(v is not None for row in joints for v in row[:3]):
        raise MessageError("skeleton: nobody is tracked (persons is empty) but the top level has joint "
                           "positions", field="joints")


def parse_skeleton(header: Any) -> dict[str, Any]:
    """Check a ``skeleton`` message (the DESIGN §5 keys, one joint row per joint of the layout it names;
    ``cameras``, ``mode``, ``calibration_version``, ``rotations`` and ``persons`` when present — a message
    of a producer before persons has none) and return it unchanged, ready to forward."""
    f = _Fields("skeleton", header)
    f.type("skeleton")
    f.integer("seq", 0)
    f.integer("t_capture_ns")
    f.integer("t_publish_ns")
    layout = _layout(f)
    f.text("units", ("m",))
    joints = _joints_and_views(f, layout)
    latency = f.mapping("latency_ms")
    if not all(v is None or _is_number(v) for v in latency.values()):
        raise f.error("latency_ms", "a map of finite numbers (or nulls)", latency)
    if "cameras" in f.h:
        f.names("cameras")
    f.opt_integer("calibration_version", 1)
    if "persons" in f.h:
        _persons(f, layout, joints)
    return dict(header)


def skeleton_in_layout(message: Mapping[str, Any], skeleton: str) -> dict[str, Any]:
    """A skeleton message as a client of the layout ``skeleton`` gets it: for a layout whose joints are the
    first of the published one (Human3.6M-17 of the full body), its joints only — at the top level and in
    every person of ``persons`` —, named as it, every other key as published; the message itself when it
    is already in that layout.

    Raises:
        ValueError: ``skeleton`` is unknown, or not the first joints of the message's layout.
    """
    asked = SKELETONS.get(skeleton)
    published = get_skeleton(str(message.get("skeleton")))
    if asked is None or asked.joints != published.joints[:asked.num_joints]:
        raise ValueError(f"skeleton {skeleton!r} is not a layout of the published {published.name} "
                         f"(use {' or '.join(layouts_within(published.name))})")
    if asked.name == published.name:
        return dict(message)
    from crosspose.motion.humanoid import humanoid_map

    j, bones = asked.num_joints, humanoid_map(asked).bones

    def trimmed(entry: Mapping[str, Any]) -> dict[str, Any]:
        out = {**entry, "joints": list(entry["joints"])[:j], "views": list(entry["views"])[:j]}
        if isinstance(entry.get("rotations"), Mapping):
            out["rotations"] = rotations_within(entry["rotations"], bones)
        return out

    out = {**trimmed(message), "skeleton": asked.name}
    if isinstance(message.get("persons"), list):
        out["persons"] = [trimmed(p) for p in message["persons"]]
    return out


def rotations_within(payload: Mapping[str, Any], bones: Collection[str]) -> dict[str, Any]:
    """A :func:`rotations_payload` with only the bones named in ``bones`` (a smaller layout's, e.g.
    Human3.6M-17's 19 of the full body's 21: its bones are the first and their parents among them), the
    parent indices renumbered; the payload itself when it carries no other bone."""
    keep = [i for i, name in enumerate(payload["bones"]) if name in bones]
    if len(keep) == len(payload["bones"]):
        return dict(payload)
    index = {old: new for new, old in enumerate(keep)}
    per_bone = ("bones", "unity", "rest_offsets", "local")
    return {**payload, **{k: [payload[k][i] for i in keep] for k in per_bone},
            "parents": [index.get(int(payload["parents"][i]), -1) for i in keep]}


def layouts_within(published: str) -> list[str]:
    """The layouts a client of messages in the layout ``published`` can ask for: those whose joints are its
    first (itself included; Human3.6M-17 within the full body)."""
    layout = get_skeleton(published)
    return [s.name for s in SKELETONS.values() if s.joints == layout.joints[:s.num_joints]]


def rotations_payload(
    bones: Sequence[str],
    unity_bones: Sequence[str],
    parents: Sequence[int],
    rest_offsets: np.ndarray,
    root: np.ndarray,
    rotations: np.ndarray,
) -> dict[str, Any]:
    """The skeleton message's optional ``rotations`` key (websocket clients with ``?rotations=true``).

    Self-contained in EVERY message (bone names, hierarchy and the rest pose's offsets included, about
    1 KB of JSON), so a client can join at any time and the rest pose may be re-estimated (a new
    performer) without a separate channel::

        {"frame": "y_up_rh", "units": "m",
         "bones": ["hips", …], "unity": ["Hips", …], "parents": [-1, 0, …],
         "rest_offsets": [[x, y, z], …],   # each bone's head from its parent's head, T-pose (m)
         "root": [x, y, z],                # the pelvis (m)
         "local": [[w, x, y, z], …]}       # local rotations relative to the T-pose, unit quaternions

    Frame ``y_up_rh``: right-handed, Y up, metres; the T-pose faces +Z with the subject's left arm along
    +X (our Z-up world ``(x, y, z)`` is ``(y, z, x)`` there). World rotation of a bone = the product of
    its ancestors' local rotations and its own (parents first).
    """
    b = len(bones)
    rest_offsets = np.asarray(rest_offsets, dtype=np.float64)
    rotations = np.asarray(rotations, dtype=np.float64)
    if rest_offsets.shape != (b, 3) or rotations.shape != (b, 4) or np.shape(root) != (3,):
        raise ValueError(
            f"rotations payload for {b} bones needs rest_offsets ({b}, 3), rotations ({b}, 4), root (3,); "
            f"got {rest_offsets.shape}, {rotations.shape}, {np.shape(root)}"
        )
    return {
        "frame": "y_up_rh",
        "units": "m",
        "bones": list(bones),
        "unity": list(unity_bones),
        "parents": [int(p) for p in parents],
        "rest_offsets": [[_finite(v, 4) for v in row] for row in rest_offsets.tolist()],
        "root": [_finite(v, 4) for v in np.asarray(root, dtype=np.float64).tolist()],
        "local": [[_finite(v, 6) for v in row] for row in rotations.tolist()],
    }


def attach_rotations(
    message: dict[str, Any], payloads: Mapping[int, dict[str, Any] | None]
) -> dict[str, Any]:
    """Put each performer's :func:`rotations_payload` (by id; None or absent: not known yet) into their
    entry of the skeleton ``message``'s ``persons`` and the lowest id's at the top level (None with
    nobody tracked); returns ``message``, changed in place."""
    persons = message.get("persons") or []
    for entry in persons:
        entry["rotations"] = payloads.get(entry["id"])
    message["rotations"] = persons[0]["rotations"] if persons else None
    return message


def parse_rotations(payload: Any, field: str = "rotations.") -> dict[str, Any]:
    """Check a :func:`rotations_payload` (``B`` bones in every list, parents earlier bones or -1); an
    error's field starts with ``field`` (where the payload sits in its message)."""
    f = _Fields("skeleton " + field.rstrip("."), payload, field)
    f.text("frame", ("y_up_rh",))
    f.text("units", ("m",))
    bones = f.sequence("bones")
    b = len(bones)
    for key in ("bones", "unity"):
        names = f.sequence(key, b)
        if not all(isinstance(n, str) for n in names):
            raise f.error(key, f"a list of {b} bone names", names)
    parents = f.sequence("parents", b)
    if not all(_is_int(p) and -1 <= p < i for i, p in enumerate(parents)):
        raise f.error("parents", f"a list of {b} indices of earlier bones (or -1)", parents)
    f.rows("rest_offsets", 3, b)
    f.rows("local", 4, b)
    root = f.sequence("root", 3)
    if not all(v is None or _is_number(v) for v in root):
        raise f.error("root", "3 numbers or nulls", root)
    return dict(payload)


# -- status ------------------------------------------------------------------------------------------

_STATUS_KEYS = frozenset({"v", "n_buffers", "type", "stage", "camera", "worker", "t_wall_ns"})


def status_message(
    stage: str, fields: Mapping[str, Any], *, camera: str | None = None, worker: int | None = None,
    t_wall_ns: int | None = None,
) -> dict[str, Any]:
    """A ``status.<stage>.`` heartbeat (``status.grabber.<camera>.`` for a grabber,
    ``status.inference.<worker>.`` for one inference worker of several): the stage's own ``fields``
    (rates, counters, errors) beside ``stage``, ``camera`` or ``worker`` and ``t_wall_ns`` (default: now)."""
    clash = _STATUS_KEYS & fields.keys()
    if clash:
        raise ValueError(f"status fields may not set {sorted(clash)}")
    header: dict[str, Any] = {"type": "status", "stage": stage}
    if camera is not None:
        header["camera"] = camera
    if worker is not None:
        frameset_topic(worker)  # the same numbering as the worker's frame sets
        header["worker"] = int(worker)
    header["t_wall_ns"] = time.time_ns() if t_wall_ns is None else int(t_wall_ns)
    header.update(fields)
    return header


def parse_status(
    header: Any, topic: bytes | None = None, *, cameras: Collection[str] | None = None
) -> dict[str, Any]:
    """Check a ``status`` message (``stage``, ``t_wall_ns``, a grabber's ``camera`` — one of ``cameras``
    when given, else ``foreign`` —, an inference worker's ``worker`` number where it has one; the ``topic``
    it came on, when given, must be its own) and return it unchanged. The stage's own fields are its own."""
    f = _Fields("status", header)
    f.type("status")
    stage = f.name("stage")
    f.integer("t_wall_ns")
    detail: tuple[str, ...] = ()
    if stage == "grabber":
        detail = (f.camera("camera", cameras),)
    elif header.get("worker") is not None:
        worker = f.integer("worker", 0)
        if stage != "inference" or worker >= MAX_WORKERS:
            raise f.error("worker", f"an inference worker's number below {MAX_WORKERS}", worker)
        detail = (str(worker),)
    if topic is not None and topic != status_topic(stage, *detail):
        raise MessageError(
            f"status: a status of {'.'.join((stage, *detail))} sent on topic {topic!r}",
            reason="foreign",
            field="stage",
        )
    return dict(header)


# -- preview -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewMessage:
    """A checked ``preview``: a camera's small JPEG and what the viewer draws over it (preview px)."""

    camera: str
    seq: int
    t_capture_ns: int
    width: int
    height: int
    scale: float
    joints2d: Sequence[Sequence[float | None]] | None  # [[x, y, confidence], …]
    crop: Sequence[Sequence[float]] | None  # 4 corners [x, y] of the network's crop square
    jpeg: bytes


def preview_message(
    *,
    camera: str,
    seq: int,
    t_capture_ns: int,
    width: int,
    height: int,
    scale: float,
    joints2d: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    crop: np.ndarray | None = None,
) -> dict[str, Any]:
    """The header of one ``preview.<camera>.`` message (its buffer is the JPEG), all in preview pixels.

    Args:
        scale: preview px per image px; width/height: the preview's size.
        joints2d: ``(J, 2)`` the last pose reprojected (with ``confidence (J,)``), or None.
        crop: ``(4, 2)`` corners of the network's crop square, or None.
    """
    rows = None
    if joints2d is not None:
        conf = np.ones(len(joints2d)) if confidence is None else np.asarray(confidence)
        rows = [
            [_finite(x, 1), _finite(y, 1), float(k)]
            for (x, y), k in zip(np.asarray(joints2d, dtype=np.float64).tolist(), conf.tolist(), strict=True)
        ]
    corners = None
    if crop is not None:
        corners = [[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(crop).tolist()]
    return {
        "type": "preview",
        "camera": camera,
        "seq": int(seq),
        "t_capture_ns": int(t_capture_ns),
        "width": int(width),
        "height": int(height),
        "scale": float(scale),
        "joints2d": rows,
        "crop": corners,
    }


def parse_preview(header: Any, buffers: Sequence[Any]) -> PreviewMessage:
    """Check a ``preview`` message: its fields and one JPEG buffer."""
    f = _Fields("preview", header)
    f.type("preview")
    _buffers("preview", buffers, 1)
    jpeg = bytes(_view(buffers[0]))
    if not jpeg.startswith(JPEG_MAGIC):
        raise MessageError("preview: the buffer is not a JPEG")
    width, height = f.integer("width", 1), f.integer("height", 1)
    if max(width, height) > MAX_IMAGE_SIDE:
        raise MessageError(f"preview: {width}x{height} px is beyond {MAX_IMAGE_SIDE} px a side",
                           reason="oversize", field="width")
    return PreviewMessage(
        camera=f.name("camera"),
        seq=f.integer("seq", 0),
        t_capture_ns=f.integer("t_capture_ns"),
        width=width,
        height=height,
        scale=f.number("scale", positive=True),
        joints2d=None if f.h.get("joints2d") is None else f.rows("joints2d", 3),
        crop=None if f.h.get("crop") is None else f.rows("crop", 2, 4, nullable=False),
        jpeg=jpeg,
    )


# -- control: calibration.updated, recording -----------------------------------------------------------

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CalibrationMessage:
    """A checked ``control.calibration.updated.``: the new active rig as crosspose JSON text."""

    version: int
    sha256: str
    rig: str


def calibration_message(version: int, sha256: str, rig_json: str) -> dict[str, Any]:
    """``control.calibration.updated.``: the accepted rig (crosspose JSON text), its store version and
    the hex SHA-256 of that text."""
    return {"type": "calibration", "version": int(version), "sha256": sha256, "rig": rig_json}


def parse_calibration(header: Any) -> CalibrationMessage:
    """Check a ``calibration`` message (the rig text itself is the calibration loader's to check)."""
    f = _Fields("calibration", header)
    f.type("calibration")
    sha = f.text("sha256")
    if not _SHA256.match(sha):
        raise f.error("sha256", "64 lowercase hex digits", sha)
    rig = f.text("rig")
    if not rig.strip():
        raise f.error("rig", "crosspose JSON text", rig)
    return CalibrationMessage(version=f.integer("version", 1), sha256=sha, rig=rig)


Action = Literal["start", "stop"]


@dataclass(frozen=True)
class RecordingMessage:
    """A checked ``control.recording.`` command (``name``, ``metadata``, ``max_bytes``: start only)."""

    action: Action
    take_id: str
    name: str | None = None
    metadata: Mapping[str, Any] | None = None
    max_bytes: int | None = None


def recording_message(
    action: Action,
    take_id: str,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """A ``control.recording.`` command for the recorder stage: start take ``take_id`` (named
    ``name``, with ``metadata``, at most ``max_bytes``) or stop it."""
    header: dict[str, Any] = {"type": "recording", "action": action, "id": take_id}
    if action == "start":
        header.update(
            name=name if name is not None else take_id, metadata=dict(metadata or {}), max_bytes=max_bytes
        )
    return header


def parse_recording(header: Any) -> RecordingMessage:
    """Check a ``recording`` command: ``action`` start/stop and a take ``id``; a start's ``name``,
    ``metadata`` map and optional positive ``max_bytes``."""
    f = _Fields("recording", header)
    f.type("recording")
    take_id = f.text("id")
    if not take_id:
        raise f.error("id", "a take id", take_id)
    if f.text("action", ("start", "stop")) == "stop":
        return RecordingMessage("stop", take_id)
    return RecordingMessage(
        "start",
        take_id,
        name=f.text("name"),
        metadata=f.mapping("metadata"),
        max_bytes=f.opt_integer("max_bytes", 1),
    )
