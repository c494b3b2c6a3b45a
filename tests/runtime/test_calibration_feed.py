"""The live-calibration feed on a real ZeroMQ tap: the newest frame set, decoded, in the rig's camera order,
a missing camera as None; and what the runtime installs for which config."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from crosspose.bus import FRAMESET, Publisher
from crosspose.bus.schema import frame_message, frameset_message
from crosspose.capture.frames import encode_frame
from crosspose.runtime.calibration_feed import TapFeed, install
from crosspose.runtime.demo import synthetic_config


def _frameset(seq: int, images: dict[str, np.ndarray | None]) -> tuple[dict, list]:
    frames, buffers = [], []
    for cam, image in images.items():
        if image is None:
            frames.append(None)
            continue
        encoding, data = encode_frame(image, 90 if cam == "b" else None)
        frames.append(frame_message(cam, seq, image, t_capture_ns=seq, t_wall_ns=seq, t_device_ns=None,
                                    encoding=encoding, fps=None))
        buffers.append(data)
    header = frameset_message(seq=seq, t_ref_ns=seq, t_emit_ns=seq, cameras=list(images),
                              present=[i is not None for i in images.values()], frames=frames,
                              skew_ns=[None if i is None else 0 for i in images.values()])
    return header, buffers


def test_tap_feed_gives_the_newest_set_in_rig_order(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/tap"
    pub = Publisher(endpoint, bind=True, hwm=8, count_drops=False)
    feed = TapFeed(endpoint, ["c", "a", "b"])
    try:
        a = np.full((4, 6, 3), 10, np.uint8)
        b = np.full((8, 8, 3), 200, np.uint8)
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:  # until the subscription has reached the PUB
            pub.send(FRAMESET, *_frameset(1, {"a": a, "b": b, "c": None}))
            got = feed.next(0.1)
        assert got is not None
        for seq in (2, 3):
            pub.send(FRAMESET, *_frameset(seq, {"a": a + seq, "b": b, "c": None}))
        time.sleep(0.2)
        got = feed.next(1.0)
        assert got is not None
        c, a_img, b_img = got
        assert c is None
        assert (a_img == 13).all()  # the newest set (seq 3) of those queued
        assert b_img.shape == (8, 8, 3)
        assert abs(int(b_img.mean()) - 200) <= 2  # the JPEG one, decoded
    finally:
        feed.close()
        feed.close()
        pub.close()
    assert feed.next(0.01) is None


class _State:
    calibration_feed = None
    keypoint_detector = None


def test_install_follows_recording_and_backend(tmp_path: Path) -> None:
    config = synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, fps=15.0, frames=10)
    state = _State()
    install(state, config)
    assert state.calibration_feed is not None  # recording on: the tap exists
    assert state.keypoint_detector is None  # the simulated backend has no network
    off = config.model_copy(update={"recording": config.recording.model_copy(update={"enabled": False})})
    state = _State()
    install(state, off)
    assert state.calibration_feed is None
