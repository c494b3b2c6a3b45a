"""Issue 17's bus probes against the whole service, really started (supervisor, synthetic grabbers, sync,
simulated inference, solver, API on ipc sockets): one frame stamped an hour ahead, 1-D frames, a frame
whose camera is a list, a burst of garbage, and a remote camera whose host clock steps back and forward.
Each time the skeleton stream never stops for more than a second, the camera that stepped rejoins, and
the drops are counted by reason in the heartbeats, ``/metrics`` and ``/api/v1/cameras``."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from bus_mutations import Mutator

from crosspose.bus import Publisher, frame_topic, status_topic
from crosspose.bus.schema import frame_message, status_message
from crosspose.config import Config
from crosspose.runtime.demo import synthetic_config
from crosspose.runtime.service import make_supervisor

pytestmark = pytest.mark.timeout(300)
FPS = 15.0
REMOTE = "cam3"
MAX_GAP_S = 1.0
IMAGE = np.zeros((8, 8, 3), np.uint8)


class RemoteCamera:
    """A grabber on another host, as sync sees it: frames of ``REMOTE`` on the service's tick grid,
    stamped with a clock ``offset_ns`` away from this host's (which a test steps), and its heartbeats."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.offset_ns = 123 * 10**9  # another host's monotonic clock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        period = int(1e9 / FPS)
        with Publisher(self.endpoint, bind=False, hwm=16) as pub:
            seq = 0
            while not self.stop.is_set():
                due = (time.monotonic_ns() // period + 1) * period  # the synthetic grabbers' ticks
                self.stop.wait(max(0.0, (due - time.monotonic_ns()) / 1e9))
                if seq % 5 == 0:
                    status = status_message(
                        "grabber",
                        {"state": "running", "fps": FPS, "frames": seq, "dropped": 0, "frame_age_ms": 1.0},
                        camera=REMOTE,
                    )
                    pub.send(status_topic("grabber", REMOTE), status)
                header = frame_message(
                    REMOTE,
                    seq,
                    IMAGE,
                    t_capture_ns=time.monotonic_ns() + self.offset_ns,
                    t_wall_ns=time.time_ns(),
                    t_device_ns=None,
                    encoding="raw",
                    fps=FPS,
                )
                pub.send(frame_topic(REMOTE), header, [IMAGE.data])
                seq += 1


@dataclass
class Skeletons:
    """Every skeleton a websocket client received: ``(arrival, message)``."""

    base: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        async def client() -> None:
            async with websockets.connect(
                self.base.replace("http", "ws") + "/ws/skeletons?format=json"
            ) as ws:
                while not self.stop.is_set():
                    try:
                        m = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                    except TimeoutError:
                        continue
                    self.received.append((time.monotonic(), m))

        asyncio.run(client())

    def since(self, t0: float) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.received if t >= t0]

    def longest_gap(self, t0: float, t1: float) -> float:
        """Longest time without a skeleton within ``[t0, t1]``."""
        times = [t0] + [t for t, _ in self.received if t0 <= t <= t1] + [t1]
        return max(np.diff(times))


@dataclass
class Running:
    config: Config
    base: str
    skeletons: Skeletons
    remote: RemoteCamera
    frames: Publisher

    def send_frame(self, topic_camera: str, **fields: Any) -> None:
        """A frame on ``topic_camera``'s topic, its header fields replaced by ``fields``."""
        header = frame_message(
            topic_camera,
            10**6,
            IMAGE,
            t_capture_ns=time.monotonic_ns(),
            t_wall_ns=time.time_ns(),
            t_device_ns=None,
            encoding="raw",
            fps=FPS,
        )
        buffer = fields.pop("buffer", IMAGE.data)
        header.update(fields)
        self.frames.send(frame_topic(topic_camera), header, [buffer])

    def input_drops(self, stage: str, source: str) -> dict[str, float]:
        """``crosspose_input_drops_total`` of one stage and source from ``/metrics``, by reason."""
        text = httpx.get(f"{self.base}/metrics").text
        out = {}
        for labels, value in re.findall(r"^crosspose_input_drops_total\{([^}]*)\} (\S+)$", text, re.M):
            got = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if got["stage"] == stage and got["source"] == source:
                out[got["reason"]] = float(value)
        return out

    def camera(self, name: str) -> dict[str, Any]:
        cams = httpx.get(f"{self.base}/api/v1/cameras").json()["cameras"]
        return next(c for c in cams if c["name"] == name)

    def counted(
        self, stage: str, source: str, reason: str, at_least: float = 1, timeout: float = 10.0
    ) -> None:
        """Wait until ``/metrics`` shows the drops (a heartbeat carries them about once a second)."""
        deadline = time.monotonic() + timeout
        while self.input_drops(stage, source).get(reason, 0) < at_least:
            assert time.monotonic() < deadline, (stage, source, reason, self.input_drops(stage, source))
            time.sleep(0.2)

    def stream_holds(self, t0: float, seconds: float = 4.0) -> list[dict[str, Any]]:
        """Watch the stream for ``seconds`` after ``t0``: never a gap beyond a second; its messages."""
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        gap = self.skeletons.longest_gap(t0, time.monotonic())
        assert gap <= MAX_GAP_S, f"no skeleton for {gap:.2f} s"
        return [m for _, m in self.skeletons.since(t0)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("faults")
    config = synthetic_config(workdir, "127.0.0.1", 0, cameras=3, fps=FPS, frames=90)
    data = config.model_dump(mode="json", by_alias=True)
    for cam in data["cameras"]:
        cam["remote"] = cam["name"] == REMOTE
    config = Config.model_validate(data)
    port_file = workdir / "port"
    supervisor = make_supervisor(config, str(port_file))
    thread = threading.Thread(target=supervisor.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    remote = RemoteCamera(config.bus.frames_endpoint)
    remote.thread.start()
    frames = Publisher(config.bus.frames_endpoint, bind=False, hwm=10_000)
    skeletons: Skeletons | None = None
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert time.monotonic() < deadline, "the API never reported its port"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{int(Path(port_file).read_text())}"
        while (ready := httpx.get(f"{base}/api/v1/ready")).status_code != 200:
            assert time.monotonic() < deadline, f"service not ready: {ready.text}"
            time.sleep(0.5)
        skeletons = Skeletons(base)
        threading.Thread(target=skeletons.run, daemon=True).start()
        running = Running(config, base, skeletons, remote, frames)
        # Every camera in the stream, the remote one included, before any probe.
        while not any(max(m["views"]) == 3 for _, m in skeletons.received[-30:]):
            assert time.monotonic() < deadline, "the remote camera never joined the stream"
            time.sleep(0.2)
        yield running
    finally:
        if skeletons is not None:
            skeletons.stop.set()
        frames.close()
        remote.stop.set()
        remote.thread.join(5)
        supervisor.request_stop()
        thread.join(60)


def test_a_frame_from_the_future_is_dropped_and_the_stream_goes_on(service: Running) -> None:
    t0 = time.monotonic()
    service.send_frame("cam1", t_capture_ns=time.monotonic_ns() + 3600 * 10**9)  # an hour ahead
    msgs = service.stream_holds(t0)
    assert max(max(m["views"]) for m in msgs[-10:]) == 3  # cam1 still in the sets
    service.counted("sync", "cam1", "future")
    assert service.camera("cam1")["input_drops"].get("future", 0) >= 1


def test_one_dimensional_frames_are_dropped_as_malformed(service: Running) -> None:
    t0 = time.monotonic()
    for _ in range(20):
        service.send_frame("cam1", shape=[16], buffer=b"\x00" * 16)
        service.send_frame("cam2", shape=[0, 0, 3], buffer=b"")
        time.sleep(0.05)
    service.stream_holds(t0)
    service.counted("sync", "cam1", "malformed", at_least=20)
    service.counted("sync", "cam2", "malformed", at_least=20)
    assert service.camera("cam2")["input_drops"].get("malformed", 0) >= 20


def test_a_frame_whose_camera_is_a_list_is_dropped(service: Running) -> None:
    t0 = time.monotonic()
    service.send_frame("cam1", camera=["cam1"])
    service.send_frame("cam2", camera="cam9")  # a camera sync does not know
    service.stream_holds(t0, seconds=3.0)
    service.counted("sync", "cam1", "malformed")
    service.counted("sync", "cam2", "foreign")


def test_a_burst_of_garbage_does_not_stop_the_stream(service: Running) -> None:
    mutator = Mutator(5)
    header = frame_message(
        "cam2", 1, IMAGE, t_capture_ns=0, t_wall_ns=0, t_device_ns=None, encoding="raw", fps=FPS
    )
    sock = service.frames._sock  # raw frames: the garbage is not even the wire format
    t0 = time.monotonic()
    for i in range(3000):
        parts = mutator.garbage(b"frame.") if i % 2 else mutator.mutate(b"frame.cam2.", header, [IMAGE.data])
        sock.send_multipart(parts)
    service.stream_holds(t0)
    service.counted("sync", "other", "malformed")
    service.counted("sync", "cam2", "malformed")


@pytest.mark.parametrize("step_s", [-30.0, 3600.0], ids=["back 30 s", "ahead 1 h"])
def test_a_remote_camera_whose_clock_steps_rejoins_within_a_second(service: Running, step_s: float) -> None:
    before = service.input_drops("sync", REMOTE)
    t0, t0_ns = time.monotonic(), time.monotonic_ns()
    service.remote.offset_ns += int(step_s * 1e9)
    msgs = service.stream_holds(t0)
    # Re-synchronised: the remote camera is back in the sets captured within a second of the step
    # (skeletons carry the local cameras' capture time, on this host's clock).
    back = [m for m in msgs if t0_ns + 0.4e9 <= m["t_capture_ns"] <= t0_ns + 1e9 and max(m["views"]) == 3]
    assert back, "the remote camera was not back in the stream a second after its clock stepped"
    reason = "stale" if step_s < 0 else "future"
    service.counted("sync", REMOTE, reason, at_least=before.get(reason, 0) + 1)
