"""The wire format: [topic, msgpack header, *raw buffers]; malformed input named, arrays without copies."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from crosspose.bus import (
    CALIBRATION_UPDATED,
    MessageError,
    control_topic,
    decode,
    encode,
    frame_topic,
    pack_array,
    status_topic,
    unpack_array,
)


def test_topics() -> None:
    assert frame_topic("cam1") == b"frame.cam1."
    assert status_topic("grabber", "cam_2") == b"status.grabber.cam_2."
    assert control_topic("calibration", "updated") == CALIBRATION_UPDATED == b"control.calibration.updated."
    with pytest.raises(ValueError, match="letters"):
        frame_topic("cam.1")


def test_roundtrip_with_arrays() -> None:
    heat = np.random.default_rng(0).random((4, 17, 64, 64), dtype=np.float32)
    meta, buf = pack_array(heat)
    parts = encode(b"heatmaps.", {"type": "heatmaps", "array": meta, "seq": 7}, [buf, b"extra"])
    msg = decode([bytes(p) for p in parts])
    assert msg.topic == b"heatmaps."
    assert msg.header["v"] == 1
    assert msg.header["n_buffers"] == 2
    assert msg.type == "heatmaps"
    out = unpack_array(msg.header["array"], msg.buffers[0])
    np.testing.assert_array_equal(out, heat)
    assert bytes(msg.buffers[1]) == b"extra"


def test_pack_array_does_not_copy_contiguous() -> None:
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    meta, buf = pack_array(a)
    assert meta == {"dtype": "<i2", "shape": [3, 4]}
    view = unpack_array(meta, buf)
    assert np.shares_memory(view, a)
    # A non-contiguous array is made contiguous (copied) and still round-trips.
    meta, buf = pack_array(a[:, ::2])
    np.testing.assert_array_equal(unpack_array(meta, buf), a[:, ::2])


def test_unpack_array_validates() -> None:
    with pytest.raises(MessageError, match="needs 24"):
        unpack_array({"dtype": "<f4", "shape": [2, 3]}, b"\0" * 10)
    with pytest.raises(MessageError, match="dtype"):
        unpack_array({"shape": [2]}, b"\0" * 8)
    with pytest.raises(MessageError, match="object"):
        pack_array(np.array([object()]))


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([b"frame.a."], "part"),
        ([b"frame.a.", b"\xc1\xc1 not msgpack"], "not msgpack"),
        ([b"frame.a.", msgpack.packb([1, 2])], "map"),
        ([b"frame.a.", msgpack.packb({"type": "frame", "n_buffers": 0})], "'v'"),
        ([b"frame.a.", msgpack.packb({"v": 2, "type": "frame", "n_buffers": 0})], "version 2"),
        ([b"frame.a.", msgpack.packb({"v": 1, "n_buffers": 0})], "'type'"),
        ([b"frame.a.", msgpack.packb({"v": 1, "type": "frame", "n_buffers": 2}), b"x"], "2 buffer"),
    ],
)
def test_malformed_messages_are_named(parts: list[bytes], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode(parts)


def test_oversize_buffer_rejected() -> None:
    parts = encode(b"frame.a.", {"type": "frame"}, [b"\0" * 2000])
    with pytest.raises(MessageError, match="exceeds 1000"):
        decode(parts, max_buffer_bytes=1000)


def test_encode_requires_type_and_serialisable_header() -> None:
    with pytest.raises(MessageError, match="type"):
        encode(b"x.", {"seq": 1})
    with pytest.raises(MessageError, match="msgpack"):
        encode(b"x.", {"type": "x", "bad": object()})
