"""The grabber against a real bound SUB socket: stamped frames, JPEG, end of file, reconnect with backoff."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crosspose.bus import FRAME, STATUS, Message, Subscriber
from crosspose.capture import Grabber, decode_frame
from crosspose.config import BusConfig, CameraConfig

pytestmark = pytest.mark.timeout(60)
W, H, N = 64, 48, 20  # the conftest video


def _collect(sub: Subscriber, until: Callable[[list[Message]], bool], timeout_s: float = 20) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until(got):
        msg = sub.recv(50)
        if msg is not None:
            got.append(msg)
    return got


def _run(grabber: Grabber) -> tuple[threading.Thread, threading.Event, dict[str, Any]]:
    stop = threading.Event()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("state", grabber.run(stop)), daemon=True)
    thread.start()
    return thread, stop, result


def _states(msgs: list[Message]) -> list[str]:
    return [m.header["state"] for m in msgs if m.topic.startswith(STATUS)]


def test_grabber_publishes_stamped_frames_and_reports_the_end(tmp_path: Path, video: Path) -> None:
    endpoint = f"ipc://{tmp_path}/frames"
    with Subscriber(endpoint, [FRAME, STATUS], bind=True, hwm=1000) as sub:
        # A slower pace than the file's own rate, so the pacing is visibly the configured one.
        cam = CameraConfig(name="cam1", source=str(video), fps=40)
        grabber = Grabber(cam, BusConfig(frames_endpoint=endpoint, hwm=1000), status_interval_s=0.1)
        thread, stop, result = _run(grabber)
        msgs = _collect(sub, lambda got: "ended" in _states(got))
        stop.set()
        thread.join(10)
    assert result["state"] == "ended"
    frames = [m for m in msgs if m.topic == b"frame.cam1."]
    assert frames, "no frame arrived"
    seqs = [m.header["seq"] for m in frames]
    assert seqs == sorted(seqs)
    assert seqs[-1] == N - 1  # the subscriber may miss the first frames (slow joiner), never the last
    h = frames[-1].header
    assert h["v"] == 1
    assert h["type"] == "frame"
    assert h["camera"] == "cam1"
    assert h["encoding"] == "raw"
    assert h["shape"] == [H, W, 3]
    assert h["fps"] == 40
    assert isinstance(h["t_wall_ns"], int)
    caps = [m.header["t_capture_ns"] for m in frames]
    devs = [m.header["t_device_ns"] for m in frames]
    assert all(b > a for a, b in itertools.pairwise(caps))
    assert all(b > a for a, b in itertools.pairwise(devs))
    assert all(c <= time.monotonic_ns() for c in caps)  # host monotonic clock
    img = decode_frame(h, frames[-1].buffers[0])
    assert img.shape == (H, W, 3)
    assert abs(float(img.mean()) - 10 * (N - 1)) < 5  # the last frame of the clip
    status = [m.header for m in msgs if m.topic == b"status.grabber.cam1."]
    assert status[-1]["state"] == "ended"
    assert status[-1]["frames"] == N
    assert "ended" in status[-1]["error"]


def test_jpeg_frames_decode_to_the_image(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/frames"
    with Subscriber(endpoint, [FRAME], bind=True, hwm=100) as sub:
        cam = CameraConfig(name="s1", source="synthetic?seed=2&frames=3", width=320, jpeg_quality=95, fps=30)
        grabber = Grabber(cam, BusConfig(frames_endpoint=endpoint, hwm=100))
        thread, stop, _ = _run(grabber)
        msgs = _collect(sub, lambda got: len(got) >= 4)
        stop.set()
        thread.join(10)
    assert len(msgs) >= 4
    h = msgs[0].header
    assert h["encoding"] == "jpeg"
    img = decode_frame(h, msgs[0].buffers[0])
    assert img.shape[1] == 320
    assert list(img.shape) == h["shape"]
    assert len(msgs[0].buffers[0]) < img.nbytes / 4  # compressed
    assert h["t_device_ns"] is not None
    # Synthetic frames loop (3 frames): seq k and k+3 show the same image.
    by_seq = {m.header["seq"]: decode_frame(m.header, m.buffers[0]) for m in msgs}
    pairs = [(s, s + 3) for s in by_seq if s + 3 in by_seq]
    for a, b in pairs:
        assert float(np.abs(by_seq[a].astype(int) - by_seq[b]).mean()) < 1.0


def test_grabber_reconnects_with_backoff_until_the_source_appears(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    endpoint = f"ipc://{tmp_path}/frames"
    late = tmp_path / "late.mp4"
    with Subscriber(endpoint, [FRAME, STATUS], bind=True, hwm=1000) as sub:
        cam = CameraConfig(name="cam2", source=str(late), loop=True, fps=50)
        grabber = Grabber(
            cam,
            BusConfig(frames_endpoint=endpoint, hwm=1000),
            backoff_s=0.02,
            backoff_max_s=0.1,
            status_interval_s=0.05,
        )
        thread, stop, result = _run(grabber)
        msgs = _collect(sub, lambda got: "reconnecting" in _states(got) and grabber.stats.reconnects >= 3)
        assert grabber.stats.state == "reconnecting"
        reconnecting = [m.header for m in msgs if m.topic.startswith(STATUS)][-1]
        assert "late.mp4" in reconnecting["error"]
        make_video(late)  # the camera comes back
        msgs = _collect(sub, lambda got: sum(m.topic == b"frame.cam2." for m in got) >= 5)
        stop.set()
        thread.join(10)
    assert result["state"] == "stopped"
    assert sum(m.topic == b"frame.cam2." for m in msgs) >= 5
    assert grabber.stats.state == "stopped"
    assert grabber.stats.reconnects >= 3


def test_a_looping_preloaded_clip_is_jpeg_encoded_once_per_frame(
    tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's replayed clip: each preloaded frame is encoded on its first pass, then resent as is."""
    from crosspose.capture import grabber as grabber_module

    calls: list[int] = []
    real = grabber_module.encode_frame

    def counting(frame: np.ndarray, quality: int | None) -> Any:
        calls.append(id(frame))
        return real(frame, quality)

    monkeypatch.setattr(grabber_module, "encode_frame", counting)
    endpoint = f"ipc://{tmp_path}/frames"
    with Subscriber(endpoint, [FRAME], bind=True, hwm=1000) as sub:
        cam = CameraConfig(name="cam1", source=str(video), fps=200, loop=True, preload=True, jpeg_quality=90)
        grabber = Grabber(cam, BusConfig(frames_endpoint=endpoint, hwm=1000))
        thread, stop, _ = _run(grabber)
        msgs = _collect(sub, lambda got: len(got) >= 3 * N)
        stop.set()
        thread.join(10)
    assert len(msgs) >= 3 * N  # three passes over the 20-frame clip
    assert len(calls) == len(set(calls)) == N  # one encode per distinct frame, none on later passes
    by_position: dict[int, bytes] = {}
    for m in msgs:
        assert m.header["encoding"] == "jpeg"
        position = m.header["seq"] % N
        data = bytes(m.buffers[0])
        assert by_position.setdefault(position, data) == data  # a later pass sends the same bytes
    image = decode_frame(msgs[-1].header, msgs[-1].buffers[0])
    assert abs(float(image.mean()) - 10 * (msgs[-1].header["seq"] % N)) < 5


def test_grabbers_on_one_timeline_send_the_same_moment_of_their_files(tmp_path: Path, video: Path) -> None:
    """The service's file cameras: started 0.4 s apart, one decoding live and one preloaded, they send
    the same frame of the clip at the same moment (before the shared timeline they were that far apart)."""
    endpoint = f"ipc://{tmp_path}/frames"
    epoch = time.monotonic_ns()
    bus = BusConfig(frames_endpoint=endpoint, hwm=1000)
    with Subscriber(endpoint, [FRAME], bind=True, hwm=1000) as sub:
        runs = []
        for name, preload in (("a", True), ("b", False)):
            cam = CameraConfig(name=name, source=str(video), fps=20, loop=True, preload=preload)
            runs.append(_run(Grabber(cam, bus, epoch_ns=epoch)))
            time.sleep(0.4)
        msgs = _collect(sub, lambda got: sum(m.topic == b"frame.b." for m in got) >= 30)
        for thread, stop, _ in runs:
            stop.set()
            thread.join(10)
    by_camera: dict[str, dict[int, int]] = {"a": {}, "b": {}}  # t_device_ns -> t_capture_ns
    for m in msgs:
        by_camera[m.header["camera"]][m.header["t_device_ns"]] = m.header["t_capture_ns"]
    common = sorted(set(by_camera["a"]) & set(by_camera["b"]))
    assert len(common) >= 25  # b's frames are frames a sent too ...
    gaps_ms = [abs(by_camera["a"][t] - by_camera["b"][t]) / 1e6 for t in common]
    assert float(np.median(gaps_ms)) < 10  # ... at the same moment (a frame lasts 50 ms)
    assert min(by_camera["b"]) >= 300_000_000  # b joined late: it never sent the clip's first frames


def test_live_synthetic_grabbers_capture_together_like_genlocked_cameras(tmp_path: Path) -> None:
    """``live=1`` cameras started at different moments send each tick's frame at the tick: frames of
    the same tick carry capture times within a few ms of each other (a frame lasts 50 ms)."""
    endpoint = f"ipc://{tmp_path}/frames"
    bus = BusConfig(frames_endpoint=endpoint, hwm=1000)
    base = "synthetic?seed=1&cameras=2&frames=40&live=1&render=0"
    with Subscriber(endpoint, [FRAME], bind=True, hwm=1000) as sub:
        runs = []
        for i in range(2):
            runs.append(_run(Grabber(CameraConfig(name=f"s{i}", source=f"{base}&index={i}", fps=20), bus)))
            time.sleep(0.23)  # not a whole number of frames
        msgs = _collect(sub, lambda got: sum(m.topic == b"frame.s1." for m in got) >= 20)
        for thread, stop, _ in runs:
            stop.set()
            thread.join(10)
    by_camera: dict[str, dict[int, int]] = {"s0": {}, "s1": {}}
    for m in msgs:
        by_camera[m.header["camera"]][m.header["t_device_ns"]] = m.header["t_capture_ns"]
    common = sorted(set(by_camera["s0"]) & set(by_camera["s1"]))
    assert len(common) >= 15
    gaps_ms = [abs(by_camera["s0"][t] - by_camera["s1"][t]) / 1e6 for t in common]
    assert float(np.median(gaps_ms)) < 5
    # ... and at the tick itself: the capture time is the device time's moment on the host clock.
    late_ms = [(by_camera["s1"][t] - t) / 1e6 for t in common]
    assert 0 <= float(np.median(late_ms)) < 5
