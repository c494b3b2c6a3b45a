"""The bus's topics and message schemas: each builder's message parses back, through the wire, to what
was built; each parser refuses a wrong type, shape or missing key with a reason naming the field."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import msgpack
import numpy as np
import pytest

from crosspose.bus import Message, MessageError, decode, encode, unpack_array
from crosspose.bus import schema as s
from crosspose.capture import encode_frame
from crosspose.skeleton import Skeleton
from crosspose.solver import Pose3D

SERVICE = Path(s.__file__).parents[1]
MISSING = object()
SHA = "ab" * 32


def wire(topic: bytes, header: dict[str, Any], buffers: list[Any] | None = None) -> Message:
    return decode([bytes(p) for p in encode(topic, header, buffers or [])])


def jpeg(value: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((8, 8, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def frame(
    camera: str = "cam1", seq: int = 3, jpeg_quality: int | None = None
) -> tuple[dict[str, Any], list[Any]]:
    image = np.full((4, 6, 3), seq, np.uint8)
    encoding, buf = encode_frame(image, jpeg_quality)
    header = s.frame_message(
        camera,
        seq,
        image,
        t_capture_ns=1_000 + seq,
        t_wall_ns=2_000,
        t_device_ns=None,
        encoding=encoding,
        fps=30.0,
    )
    return header, [bytes(buf)]


def frameset() -> tuple[dict[str, Any], list[Any]]:
    (fa, (ba,)), (fc, (bc,)) = frame("a", 5), frame("c", 6, jpeg_quality=90)
    header = s.frameset_message(
        seq=9,
        t_ref_ns=1_005,
        t_emit_ns=1_100,
        cameras=["a", "b", "c"],
        present=[True, False, True],
        frames=[fa, None, fc],
        skew_ns=[0, None, 1],
    )
    return header, [ba, bc]


HEATMAPS = np.random.default_rng(0).random((3, 17, 8, 8)).astype(np.float32)
PROJECTIONS = np.random.default_rng(1).normal(size=(3, 3, 4)).astype(np.float32)
PROJECTIONS[1] = np.nan  # a missing view


def heatmaps() -> tuple[dict[str, Any], list[Any]]:
    return s.heatmaps_message(
        seq=7,
        t_capture_ns=5,
        cameras=["a", "b", "c"],
        present=[True, False, True],
        heatmaps=HEATMAPS,
        projections=PROJECTIONS,
        latency_ms={"sync": 1.5},
        calibration_version=2,
        backend="simulated",
        extra={"frame_index": 4},
    )


def pose() -> Pose3D:
    joints = np.arange(51, dtype=float).reshape(17, 3) / 10
    joints[3] = np.nan
    return Pose3D(
        joints=joints,
        confidence=np.full(17, 0.9),
        views=np.full(17, 3),
        support=np.ones((3, 17), bool),
        skeleton="h36m17",
        mode="tracked",
    )


def rotations() -> dict[str, Any]:
    bones, parents = ["hips", "spine", "head"], [-1, 0, 1]
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (3, 1))
    return s.rotations_payload(
        bones, ["Hips", "Spine", "Head"], parents, np.full((3, 3), 0.1), np.zeros(3), quats
    )


def skeleton() -> dict[str, Any]:
    message = s.skeleton_message(
        pose(),
        seq=4,
        t_capture_ns=1_000_000,
        cameras=["a", "b", "c"],
        latency_ms={"sync": 1.0},
        t_publish_ns=3_000_000,
        calibration_version=3,
    )
    message["rotations"] = rotations()
    return message


def preview() -> tuple[dict[str, Any], list[Any]]:
    header = s.preview_message(
        camera="cam1",
        seq=2,
        t_capture_ns=77,
        width=160,
        height=90,
        scale=0.25,
        joints2d=np.array([[1.0, 2.0], [np.nan, 3.0]]),
        confidence=np.array([1.0, 0.0]),
        crop=np.array([[0, 0], [9, 0], [9, 9], [0, 9]]),
    )
    return header, [jpeg()]


def test_builders_leave_the_version_to_the_codec() -> None:
    built = [
        frame()[0],
        frameset()[0],
        heatmaps()[0],
        skeleton(),
        s.status_message("sync", {}),
        preview()[0],
        s.calibration_message(1, SHA, "{}"),
        s.recording_message("stop", "t1"),
    ]
    assert all("v" not in h for h in built)
    assert wire(b"x.", built[-1]).header["v"] == 1


def test_frame_round_trips() -> None:
    for quality in (None, 90):
        header, buffers = frame(jpeg_quality=quality)
        msg = wire(s.frame_topic("cam1"), header, buffers)
        got = s.parse_frame(msg.header, msg.buffers)
        assert got == s.FrameMessage(
            "cam1", 3, 1_003, 2_000, None, (4, 6, 3), "uint8", "raw" if quality is None else "jpeg", 30.0
        )


def test_frameset_round_trips() -> None:
    header, buffers = frameset()
    msg = wire(s.FRAMESET, header, buffers)
    got = s.parse_frameset(msg.header, msg.buffers)
    assert (got.seq, got.t_ref_ns, got.t_emit_ns) == (9, 1_005, 1_100)
    assert got.cameras == ("a", "b", "c")
    assert got.present == (True, False, True)
    assert got.skew_ns == (0, None, 1)
    assert got.frames[1] is None
    assert [f.camera for f in got.frames if f is not None] == ["a", "c"]
    assert [f.encoding for f in got.frames if f is not None] == ["raw", "jpeg"]


def test_heatmaps_round_trip() -> None:
    header, buffers = heatmaps()
    msg = wire(s.HEATMAPS, header, buffers)
    got = s.parse_heatmaps(msg.header, msg.buffers)
    assert (got.seq, got.t_capture_ns, got.cameras, got.present) == (
        7,
        5,
        ("a", "b", "c"),
        (True, False, True),
    )
    assert (dict(got.latency_ms), got.calibration_version, got.backend) == ({"sync": 1.5}, 2, "simulated")
    assert got.heatmaps.dtype == got.projections.dtype == np.float32
    np.testing.assert_allclose(got.heatmaps, HEATMAPS, atol=1e-3)  # float16 on the wire
    np.testing.assert_array_equal(got.projections, PROJECTIONS)


def test_track_round_trips_at_full_precision() -> None:
    joints = np.array([[0.123456789012, -1.5, 2.0], [np.nan, np.nan, np.nan]])
    header, buffers = s.track_message(id=3, seq=41, t_capture_ns=None, skeleton="h36m17", joints=joints,
                                      views=np.array([4, 0]), confidence=np.array([0.9, 0.0]))
    msg = wire(s.TRACK, header, buffers)
    got = s.parse_track(msg.header, msg.buffers)
    assert (got.id, got.seq, got.t_capture_ns, got.skeleton) == (3, 41, None, "h36m17")
    np.testing.assert_array_equal(got.joints, joints)  # float64, NaN kept: not the rounded public message
    np.testing.assert_array_equal(got.views, [4, 0])
    bad_views = s.track_message(id=3, seq=41, t_capture_ns=5, skeleton="h36m17", joints=joints,
                                views=np.array([4, 0, 1]), confidence=np.array([0.9, 0.0]))
    msg = wire(s.TRACK, *bad_views)
    with pytest.raises(MessageError, match="views") as err:
        s.parse_track(msg.header, msg.buffers)
    assert err.value.reason == "malformed"


def test_inflight_round_trips_and_names_a_bad_worker() -> None:
    msg = wire(s.INFLIGHT, s.inflight_message(worker=1, seq=41, t_capture_ns=123))
    assert s.parse_inflight(msg.header) == s.InflightMessage(worker=1, seq=41, t_capture_ns=123)
    for bad in ({"worker": -1}, {"worker": s.MAX_WORKERS}, {"worker": True}):
        with pytest.raises(MessageError, match="worker") as err:
            s.parse_inflight({**msg.header, **bad})
        assert err.value.reason == "malformed"
    with pytest.raises(MessageError, match="t_capture_ns"):
        s.parse_inflight({k: v for k, v in msg.header.items() if k != "t_capture_ns"})


def test_skeleton_round_trips_unchanged() -> None:
    built = skeleton()
    msg = wire(s.SKELETON, built)
    got = s.parse_skeleton(msg.header)
    assert got == {**built, "v": 1, "n_buffers": 0}
    assert got["joints"][3][:3] == [None, None, None]
    assert got["latency_ms"] == {"sync": 1.0, "total": 2.0}
    assert s.parse_rotations(got["rotations"]) == built["rotations"]


def _layout_pose(skeleton: Skeleton, joints: int) -> Pose3D:
    return Pose3D(joints=np.full((joints, 3), 0.5), confidence=np.full(joints, 0.9), views=np.full(joints, 3),
                  support=np.ones((3, joints), bool), skeleton=skeleton.name)


def test_skeleton_joints_are_the_named_layout_s(toes_skeleton: Skeleton) -> None:
    """A client never gets joints that do not match the message's ``skeleton``: rows of another count are
    malformed, a layout unknown here is foreign (another version's producer), and other layouts pass."""
    built = skeleton()
    short = {**built, "joints": built["joints"][:16], "views": built["views"][:16]}
    with pytest.raises(MessageError, match="16 joints for layout h36m17, which has 17") as err:
        s.parse_skeleton(wire(s.SKELETON, short).header)
    assert (err.value.reason, err.value.field) == ("malformed", "joints")
    with pytest.raises(MessageError, match="unknown skeleton 'crosspose-body99'") as err:
        s.parse_skeleton(wire(s.SKELETON, {**built, "skeleton": "crosspose-body99"}).header)
    assert (err.value.reason, err.value.field) == ("foreign", "skeleton")
    # a 20-joint layout's message parses back unchanged; 17 rows named as that layout do not
    common = {"seq": 1, "t_capture_ns": 5, "cameras": ["a", "b", "c"], "latency_ms": {}, "t_publish_ns": 9}
    twenty = s.skeleton_message(_layout_pose(toes_skeleton, 20), **common)
    got = s.parse_skeleton(wire(s.SKELETON, twenty).header)
    assert (got["skeleton"], len(got["joints"]), len(got["views"])) == ("test-h36m17-toes", 20, 20)
    renamed = {**built, "skeleton": toes_skeleton.name}
    with pytest.raises(MessageError, match="17 joints for layout test-h36m17-toes, which has 20"):
        s.parse_skeleton(wire(s.SKELETON, renamed).header)
    # and the builder never makes one: a pose whose joints are not its layout's is an error
    with pytest.raises(ValueError, match=r"layout test-h36m17-toes needs \(20, 3\) joints, got \(17, 3\)"):
        s.skeleton_message(_layout_pose(toes_skeleton, 17), **common)


def test_status_preview_and_control_round_trip() -> None:
    header = s.status_message("grabber", {"state": "running", "fps": 30.0}, camera="cam1", t_wall_ns=5)
    topic = s.status_topic("grabber", "cam1")
    assert s.parse_status(wire(topic, header).header, topic) == {**header, "v": 1, "n_buffers": 0}
    with pytest.raises(ValueError, match="stage"):
        s.status_message("sync", {"stage": "other"})

    msg = wire(s.preview_topic("cam1"), *preview())
    got = s.parse_preview(msg.header, msg.buffers)
    assert (got.camera, got.seq, got.t_capture_ns, got.width, got.height, got.scale) == (
        "cam1",
        2,
        77,
        160,
        90,
        0.25,
    )
    assert got.joints2d == [[1.0, 2.0, 1.0], [None, 3.0, 0.0]]
    assert got.crop == [[0, 0], [9, 0], [9, 9], [0, 9]]
    assert got.jpeg == jpeg()

    got_cal = s.parse_calibration(
        wire(s.CALIBRATION_UPDATED, s.calibration_message(3, SHA, '{"cameras": []}')).header
    )
    assert got_cal == s.CalibrationMessage(3, SHA, '{"cameras": []}')

    start = s.recording_message("start", "t1", name="walk", metadata={"k": 1}, max_bytes=10)
    assert s.parse_recording(wire(s.RECORDING_CONTROL, start).header) == s.RecordingMessage(
        "start", "t1", "walk", {"k": 1}, 10
    )
    assert s.parse_recording(wire(s.RECORDING_CONTROL, s.recording_message("stop", "t1")).header) == (
        s.RecordingMessage("stop", "t1")
    )


def _set(header: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``header`` with ``path`` (``key``, ``key[i].key``) set to ``value`` or removed (MISSING)."""
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in header.items()}
    target: Any = out
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        if part.startswith("["):
            i = int(part[1:-1])
            target[i] = dict(target[i])
            target = target[i]
        else:
            target = target[part]
    if value is MISSING:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


def skeleton_only() -> tuple[dict[str, Any], list[Any]]:
    return skeleton(), []


def status_only(stage: str = "sync", camera: str | None = None) -> tuple[dict[str, Any], list[Any]]:
    return s.status_message(stage, {}, camera=camera), []


PARSERS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "frame": s.parse_frame,
    "frameset": s.parse_frameset,
    "heatmaps": s.parse_heatmaps,
    "preview": s.parse_preview,
    "skeleton": lambda h, _: s.parse_skeleton(h),
    "status": lambda h, _: s.parse_status(h),
    "calibration": lambda h, _: s.parse_calibration(h),
    "recording": lambda h, _: s.parse_recording(h),
}
# (id, message, header path to change (None: none), its new value (MISSING: removed), field named,
#  buffers instead of the built ones)
CASES: list[tuple[str, Callable[[], Any], str | None, Any, str, list[bytes] | None]] = [
    ("list camera", frame, "camera", ["cam1"], "camera", None),
    ("1-D frame", frame, "shape", [16], "shape", None),
    ("empty frame", frame, "shape", [0, 0, 3], "shape", None),
    ("negative seq", frame, "seq", -1, "seq", None),
    ("bool seq", frame, "seq", True, "seq", None),
    ("float time", frame, "t_capture_ns", 1.5, "t_capture_ns", None),
    ("no capture time", frame, "t_capture_ns", MISSING, "t_capture_ns", None),
    ("unknown encoding", frame, "encoding", "png", "encoding", None),
    ("raw size", frame, None, None, "shape", [b"\0" * 71]),
    ("not a jpeg", frame, "encoding", "jpeg", "encoding", [b"\0" * 72]),
    ("short present", frameset, "present", [True, True], "present", None),
    ("repeated camera", frameset, "cameras", ["a", "a", "c"], "cameras", None),
    ("missing camera present", frameset, "present", [True, True, True], "frames[1]", None),
    ("nested frame", frameset, "frames[2].t_wall_ns", "now", "frames[2].t_wall_ns", None),
    ("another camera's frame", frameset, "frames[0].camera", "c", "frames[0]", None),
    ("no t_ref", frameset, "t_ref_ns", MISSING, "t_ref_ns", None),
    ("frameset raw size", frameset, None, None, "frames[0].shape", [b"\0" * 71, jpeg()]),
    ("camera count", heatmaps, "cameras", ["a", "b"], "heatmaps", None),
    ("projection shape", heatmaps, "projections", {"dtype": "<f4", "shape": [3, 4, 3]}, "projections", None),
    ("projection size", heatmaps, "projections", {"dtype": "<f4", "shape": [2, 3, 4]}, "projections", None),
    ("heatmaps dtype", heatmaps, "heatmaps", {"dtype": "<i2", "shape": [3, 17, 8, 8]}, "heatmaps", None),
    ("latency", heatmaps, "latency_ms", {"sync": "slow"}, "latency_ms", None),
    ("short joint row", skeleton_only, "joints", [[0.0, 0.0, 0.0]] * 17, "joints", None),
    ("views count", skeleton_only, "views", [3] * 16, "views", None),
    ("units", skeleton_only, "units", "mm", "units", None),
    ("no publish time", skeleton_only, "t_publish_ns", MISSING, "t_publish_ns", None),
    ("rotation parents", skeleton_only, "rotations.parents", [-1, 2, 1], "rotations.parents", None),
    ("status stage", status_only, "stage", 3, "stage", None),
    ("status time", status_only, "t_wall_ns", MISSING, "t_wall_ns", None),
    ("grabber camera", lambda: status_only("grabber", "c"), "camera", None, "camera", None),
    ("crop corners", preview, "crop", [[1, 2]], "crop", None),
    ("preview size", preview, "width", 0, "width", None),
    ("sha256", lambda: (s.calibration_message(1, SHA, "{}"), []), "sha256", "abc", "sha256", None),
    ("version", lambda: (s.calibration_message(1, SHA, "{}"), []), "version", "1", "version", None),
    ("action", lambda: (s.recording_message("stop", "t"), []), "action", "pause", "action", None),
    ("metadata", lambda: (s.recording_message("start", "t"), []), "metadata", [1], "metadata", None),
    # Numbers are finite: NaN and infinities travel as msgpack floats, but are no value of any field.
    ("NaN fps", frame, "fps", math.nan, "fps", None),
    ("infinite latency", heatmaps, "latency_ms", {"sync": math.inf}, "latency_ms", None),
    ("NaN joint", skeleton_only, "joints", [[math.nan, 0.0, 0.0, 1.0]] * 17, "joints", None),
    ("infinite preview scale", preview, "scale", math.inf, "scale", None),
]


@pytest.mark.parametrize(
    ("build", "path", "value", "field", "buffers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parsers_refuse_and_name_the_field(
    build: Callable[[], Any], path: str | None, value: Any, field: str, buffers: list[bytes] | None
) -> None:
    header, built = build()
    msg = wire(
        b"x.", header if path is None else _set(header, path, value), built if buffers is None else buffers
    )
    with pytest.raises(MessageError) as err:
        PARSERS[header["type"]](msg.header, msg.buffers)
    assert err.value.reason == "malformed"
    assert err.value.field == field
    assert str(err.value).startswith(header["type"])
    assert field.split(".")[-1].split("[")[0] in str(err.value)


def test_buffers_are_checked_against_the_header() -> None:
    header, buffers = frameset()
    with pytest.raises(MessageError, match="needs 2 buffer"):
        s.parse_frameset(header, buffers[:1])
    header, buffers = heatmaps()
    with pytest.raises(MessageError, match="needs 2 buffer"):
        s.parse_heatmaps(header, buffers[:1])
    header, _ = preview()
    with pytest.raises(MessageError, match="not a JPEG"):
        s.parse_preview(header, [b"\0\0\0"])


def test_reasons_are_categories_to_count_drops_by() -> None:
    with pytest.raises(MessageError) as err:
        s.parse_frame(s.status_message("sync", {}))
    assert (err.value.reason, err.value.field) == ("foreign", "type")
    status = s.status_message("grabber", {}, camera="cam1")
    with pytest.raises(MessageError, match="topic") as err:
        s.parse_status(status, s.status_topic("grabber", "cam2"))  # a heartbeat sent for another camera
    assert err.value.reason == "foreign"
    with pytest.raises(MessageError) as err:
        decode([b"x.", msgpack.packb({"v": 2, "type": "x", "n_buffers": 0})])
    assert (err.value.reason, err.value.field) == ("foreign", "v")
    with pytest.raises(MessageError) as err:
        decode(encode(b"x.", {"type": "x"}, [b"\0" * 100]), max_buffer_bytes=10)
    assert err.value.reason == "oversize"
    with pytest.raises(MessageError) as err:
        s.parse_skeleton([1, 2])
    assert err.value.reason == "malformed"


def test_every_topic_constant_is_well_formed_and_defined_here_only() -> None:
    topics = {k: v for k, v in vars(s).items() if k.isupper() and isinstance(v, bytes) and k != "JPEG_MAGIC"}
    assert {
        "FRAME",
        "FRAMESET",
        "HEATMAPS",
        "SKELETON",
        "PREVIEW",
        "CONTROL",
        "STATUS",
        "CALIBRATION_UPDATED",
        "RECORDING_CONTROL",
        "GRABBER_STATUS",
        "SYNC_STATUS",
        "RECORDER_STATUS",
    } <= set(topics)
    for name, topic in topics.items():
        assert re.fullmatch(rb"([A-Za-z0-9_-]+\.)+", topic), name
    assert s.preview_topic("cam_1") == b"preview.cam_1."
    with pytest.raises(ValueError, match="letters"):
        s.preview_topic("cam.1")
    literal = re.compile(rb'b"(frame|frameset|heatmaps|skeleton|preview|control|status)\.')
    elsewhere = [
        p.relative_to(SERVICE)
        for p in SERVICE.rglob("*.py")
        if p.name != "schema.py" and literal.search(p.read_bytes())
    ]
    assert elsewhere == []


def test_the_schema_module_imports_without_torch() -> None:
    code = "import sys, crosspose.bus.schema; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def _refused(parse: Callable[[], Any]) -> MessageError:
    with pytest.raises(MessageError) as err:
        parse()
    return err.value


def test_arrays_must_hold_finite_values() -> None:
    header, (hm, proj) = heatmaps()
    nan_map = HEATMAPS.astype(np.float16).copy()
    nan_map[2, 5, 1, 1] = np.nan
    err = _refused(lambda: s.parse_heatmaps(header, [nan_map.tobytes(), proj]))
    assert (err.reason, err.field) == ("malformed", "heatmaps")
    half_nan = PROJECTIONS.copy()
    half_nan[0, 1, 2] = np.nan  # a view not seen is a whole NaN matrix, never a part of one
    err = _refused(lambda: s.parse_heatmaps(header, [hm, half_nan.tobytes()]))
    assert (err.reason, err.field) == ("malformed", "projections")
    joints = np.array([[0.0, 1.0, np.inf], [np.nan, np.nan, np.nan]])
    track = s.track_message(id=0, seq=1, t_capture_ns=1, skeleton="h36m17", joints=joints,
                            views=np.array([2, 0]), confidence=np.array([0.5, 0.0]))
    err = _refused(lambda: s.parse_track(*track))
    assert (err.reason, err.field) == ("malformed", "joints")


def test_sizes_beyond_the_limits_are_oversize() -> None:
    header, _ = frame()
    err = _refused(lambda: s.parse_frame({**header, "shape": [4, s.MAX_IMAGE_SIDE + 1, 3]}))
    assert (err.reason, err.field) == ("oversize", "shape")
    wide = np.zeros((3, 17, 1, s.MAX_HEATMAP_SIDE + 1), np.float32)
    big, buffers = s.heatmaps_message(seq=1, t_capture_ns=1, cameras=["a", "b", "c"], present=[True] * 3,
                                      heatmaps=wide, projections=PROJECTIONS, latency_ms={},
                                      calibration_version=None, backend="x")
    err = _refused(lambda: s.parse_heatmaps(big, buffers))
    assert (err.reason, err.field) == ("oversize", "heatmaps")
    header, _ = preview()
    err = _refused(lambda: s.parse_preview({**header, "height": s.MAX_IMAGE_SIDE + 1}, [jpeg()]))
    assert err.reason == "oversize"


def test_what_the_receiver_does_not_know_is_foreign() -> None:
    header, buffers = frame("cam9")
    err = _refused(lambda: s.parse_frame(header, buffers, cameras=("cam1", "cam2")))
    assert (err.reason, err.field) == ("foreign", "camera")
    assert s.parse_frame(header, buffers, cameras=("cam9",)).camera == "cam9"
    header, buffers = frameset()
    err = _refused(lambda: s.parse_frameset(header, buffers, cameras=("a", "c", "b")))  # another order
    assert (err.reason, err.field) == ("foreign", "cameras")
    header, buffers = heatmaps()
    err = _refused(lambda: s.parse_heatmaps(header, buffers, cameras=("a", "b")))
    assert (err.reason, err.field) == ("foreign", "cameras")
    err = _refused(lambda: s.parse_heatmaps(header, buffers, joints=32))
    assert (err.reason, err.field) == ("foreign", "heatmaps")
    assert s.parse_heatmaps(header, buffers, cameras=("a", "b", "c"), joints=17).heatmaps.shape[1] == 17
    status = s.status_message("grabber", {}, camera="cam9")
    err = _refused(lambda: s.parse_status(status, s.status_topic("grabber", "cam9"), cameras=("cam1",)))
    assert (err.reason, err.field) == ("foreign", "camera")


@pytest.mark.parametrize("shape", [[2.0, 3], [True, 1], [2**62, 2**62], [-1], "8", [[1]]])
def test_array_metadata_is_checked_without_overflow(shape: Any) -> None:
    err = _refused(lambda: unpack_array({"dtype": "<f2", "shape": shape}, b"\0" * 12))
    assert err.reason == "malformed"


def test_a_jpeg_must_hold_the_image_its_header_says() -> None:
    from crosspose.capture import decode_frame

    header, buffers = frame(jpeg_quality=90)  # a 4x6 image
    assert decode_frame(header, buffers[0]).shape == (4, 6, 3)
    with pytest.raises(MessageError, match="shape"):
        decode_frame({**header, "shape": [6, 4, 3]}, buffers[0])
