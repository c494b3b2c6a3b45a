"""Stage messages and the pieces of the stages that need no process: wire shapes, status translation,
frame scale detection, previews."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from crosspose.bus import decode, encode
from crosspose.bus.schema import heatmaps_message, parse_heatmaps, skeleton_message
from crosspose.core import frameset_images, image_scale
from crosspose.runtime.api_stage import translate_status
from crosspose.runtime.inference_stage import preview_of
from crosspose.skeleton import H36M17
from crosspose.solver import Pose3D
from crosspose.studio import random_rig


def test_heatmaps_message_round_trips_through_the_wire() -> None:
    rng = np.random.default_rng(0)
    hm = rng.random((3, 17, 64, 64)).astype(np.float32)
    P = rng.normal(size=(3, 3, 4)).astype(np.float32)
    P[1] = np.nan  # a missing view stays a NaN row
    header, buffers = heatmaps_message(
        seq=7,
        t_capture_ns=5,
        cameras=["a", "b", "c"],
        present=[1, 0, 1],
        heatmaps=hm,
        projections=P,
        latency_ms={"sync": 1.0},
        calibration_version=2,
        backend="simulated",
    )
    msg = decode(encode(b"heatmaps.", header, buffers))
    received = parse_heatmaps(msg.header, msg.buffers)
    hm2, P2 = received.heatmaps, received.projections
    np.testing.assert_allclose(hm2, hm, atol=1e-3)  # float16 on the wire
    np.testing.assert_array_equal(np.isnan(P2), np.isnan(P))
    assert msg.header["present"] == [True, False, True]
    with pytest.raises(ValueError, match="cameras"):
        heatmaps_message(
            seq=0,
            t_capture_ns=0,
            cameras=["a"],
            present=[1],
            heatmaps=hm,
            projections=P,
            latency_ms={},
            calibration_version=None,
            backend="x",
        )


def test_skeleton_message_is_the_documented_json() -> None:
    joints = np.arange(51, dtype=float).reshape(17, 3) / 10
    joints[3] = np.nan
    pose = Pose3D(
        joints=joints,
        confidence=np.full(17, 0.9),
        views=np.full(17, 3),
        support=np.ones((3, 17), bool),
        skeleton="h36m17",
        mode="tracked",
    )
    m = skeleton_message(
        pose,
        seq=4,
        t_capture_ns=1_000_000,
        cameras=["a", "b", "c"],
        latency_ms={"sync": 1.0, "inference": 2.0, "solve": 3.0},
        t_publish_ns=11_000_000,
        calibration_version=3,
    )
    text = json.dumps(m, allow_nan=False)  # strict JSON: no NaN
    back = json.loads(text)
    assert back["latency_ms"]["total"] == 10.0
    assert back["joints"][3][:3] == [None, None, None]
    assert len(back["joints"]) == H36M17.num_joints
    assert back["units"] == "m"
    assert back["views"] == [3] * 17


def test_status_translation_for_the_board() -> None:
    stage, payload = translate_status(
        {"stage": "grabber", "camera": "cam1", "state": "running", "dropped": 4}
    )
    assert stage == "grabber.cam1"
    assert payload["state"] == "up"
    assert payload["drops"] == 4
    assert translate_status({"stage": "grabber", "camera": "cam1", "state": "ended"})[1]["state"] == "down"
    stage, payload = translate_status(
        {
            "stage": "sync",
            "cameras": {"cam1": {"missing": 2, "skew_ms": 1.5}},
            "framesets_socket": {"dropped_hwm": 9},
            "dispatch": {"dispatched": 40, "waited": 30, "superseded": 5, "refused": 0},
        }
    )
    assert stage == "sync"
    # Sets no worker was free for: refused by a full socket, or superseded while waiting at sync.
    assert payload["drops"] == {"cam1": 2, "(inference busy)": 14}
    assert payload["skew_ms"] == {"cam1": 1.5}
    assert translate_status({"no": "stage"}) is None


def test_frame_scale_is_detected_from_the_calibration() -> None:
    rig = random_rig(1, 2)
    w, h = rig[0].image_size
    full = [np.zeros((h, w, 3), np.uint8), None]
    half = [np.zeros((c.image_size[1] // 2, c.image_size[0] // 2, 3), np.uint8) for c in rig]
    assert image_scale(rig, full) == 1.0
    assert image_scale(rig, half) == pytest.approx(0.5, abs=2e-3)
    with pytest.raises(ValueError, match="does not match"):
        image_scale(rig, [np.zeros((h, w // 2, 3), np.uint8), None])
    # A frame of a few pixels at the calibration's aspect is no camera of this rig (the network would
    # get an empty crop): refused like a mismatch, so the inference stage drops it as malformed.
    g = math.gcd(w, h)
    assert g >= 64  # 1920x1080: 16x9 pixels is the calibration at 1/120
    with pytest.raises(ValueError, match="not this rig's cameras"):
        image_scale(rig, [np.zeros((h // g, w // g, 3), np.uint8), None])


def test_frameset_images_and_preview() -> None:
    a = np.full((40, 60, 3), 7, np.uint8)
    _, jpg = cv2.imencode(".jpg", a)
    frames = [
        {"shape": [40, 60, 3], "dtype": "uint8", "encoding": "raw"},
        None,
        {"shape": [40, 60, 3], "dtype": "uint8", "encoding": "jpeg"},
    ]
    images = frameset_images({"present": [True, False, True], "frames": frames}, [a.tobytes(), jpg.tobytes()])
    assert images[1] is None
    np.testing.assert_array_equal(images[0], a)
    assert images[2] is not None
    assert abs(float(images[2].mean()) - 7) < 2
    with pytest.raises(ValueError, match="buffers"):
        frameset_images({"present": [True, False, True], "frames": frames}, [a.tobytes()])
    big = np.zeros((960, 540, 3), np.uint8)
    data, scale = preview_of(big, width=270)
    assert scale == 0.5
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (480, 270, 3)
