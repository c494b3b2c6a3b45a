"""Sync with CURVE on: the service's own grabbers use the local endpoint without keys, a remote
grabber needs a listed key on the TCP endpoint, and an unkeyed intruder there is never heard."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crosspose.bus import FRAMESET, CurveClient, Publisher, Subscriber, frame_topic, generate_keypair
from crosspose.bus.schema import frame_message
from crosspose.capture import decode_frame, encode_frame
from crosspose.config import config_from_dict
from crosspose.sync.process import SyncStage

pytestmark = pytest.mark.timeout(60)
FPS = 30.0


def _send_frames(endpoint: str, cam: str, value: int, stop: threading.Event,
                 curve: CurveClient | None = None) -> None:  # fmt: skip
    image = np.full((4, 6, 3), value, dtype=np.uint8)
    with Publisher(endpoint, bind=False, hwm=16, curve=curve) as pub:
        seq = 0
        while not stop.is_set():
            encoding, buf = encode_frame(image, None)
            header = frame_message(cam, seq, image, t_capture_ns=time.monotonic_ns(),
                                   t_wall_ns=time.time_ns(), t_device_ns=None, encoding=encoding,
                                   fps=FPS)  # fmt: skip
            pub.send(frame_topic(cam), header, [buf])
            seq += 1
            stop.wait(1 / FPS)


def test_local_grabbers_skip_curve_and_remote_ones_need_a_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    allowed = tmp_path / "allowed"
    server_pub, server_secret = generate_keypair(keys, "server")
    generate_keypair(allowed, "remote")  # the allow-list holds the remote camera's public key
    remote_secret = allowed / "remote.key_secret"
    cfg = config_from_dict(
        {
            "cameras": [
                {"name": "local", "source": "synthetic", "fps": FPS},
                {"name": "remote", "source": "synthetic", "fps": FPS, "remote": True},
            ],
            "bus": {
                "frames_endpoint": "tcp://127.0.0.1:*",
                "local_frames_endpoint": f"ipc://{tmp_path}/frames-local",
                "framesets_endpoint": f"ipc://{tmp_path}/framesets",
                "status_endpoint": f"ipc://{tmp_path}/status",
                "curve": {"server_secret_key": str(server_secret), "client_public_keys": str(allowed)},
            },
        }
    )
    local_bus = cfg.bus.for_local_grabbers()
    assert local_bus.frames_endpoint == cfg.bus.local_frames_endpoint
    assert config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}]}).bus.for_local_grabbers() \
        .frames_endpoint.endswith("/frames")  # fmt: skip
    stage = SyncStage(cfg)
    sets_sub = Subscriber(cfg.bus.framesets_endpoint, [FRAMESET], bind=False, hwm=1000)
    stop = threading.Event()
    tcp = stage.frames.endpoint
    senders = [
        threading.Thread(target=_send_frames, args=(local_bus.frames_endpoint, "local", 10, stop)),
        threading.Thread(target=_send_frames,
                         args=(tcp, "remote", 20, stop, CurveClient(server_pub, remote_secret))),
        # No key: the CURVE handshake fails, nothing it sends reaches sync.
        threading.Thread(target=_send_frames, args=(tcp, "local", 99, stop)),
        # A listed key speaks only for cameras grabbed remotely: not for one this host grabs itself …
        threading.Thread(target=_send_frames,
                         args=(tcp, "local", 77, stop, CurveClient(server_pub, remote_secret))),
        # … and the local endpoint, which needs no key, not for a remote camera.
        threading.Thread(target=_send_frames, args=(local_bus.frames_endpoint, "remote", 55, stop)),
    ]  # fmt: skip
    for t in senders:
        t.start()
    seen: dict[str, set[int]] = {"local": set(), "remote": set()}
    complete = 0
    try:
        deadline = time.monotonic() + 30
        while complete < 20 and time.monotonic() < deadline:
            stage.step(5)
            while (msg := sets_sub.recv(0)) is not None:
                present = msg.header["present"]
                buffers = iter(msg.buffers)
                for cam, meta, p in zip(msg.header["cameras"], msg.header["frames"], present, strict=True):
                    if p:
                        seen[cam].add(int(decode_frame(meta, next(buffers))[0, 0, 0]))
                complete += all(present)
    finally:
        stop.set()
        for t in senders:
            t.join(5)
        sets_sub.close()
        stage.close()
    assert complete >= 20, f"only {complete} complete frame sets (local + keyed remote) arrived"
    assert seen["local"] == {10}, f"frames from an intruder got in: {seen['local']}"
    assert seen["remote"] == {20}, f"frames from an intruder got in: {seen['remote']}"
    drops = stage.input_drops()  # each camera's intruder counted as foreign, by the camera it spoke for
    assert drops["local"]["foreign"] > 0
    assert drops["remote"]["foreign"] > 0
