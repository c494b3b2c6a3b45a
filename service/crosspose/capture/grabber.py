"""The grabber: one process per camera that opens a source, stamps and publishes each frame.

Frames go out as ``frame.<cam>.`` on a PUB that *connects* to sync's frames endpoint (so grabbers
on other hosts connect in); the grabber's state goes out on the same link as
``status.grabber.<cam>.`` about once a second (sync relays it), so a remote grabber needs one
connection only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from crosspose.bus import CurveClient, Publisher
from crosspose.bus.schema import Encoding, frame_message, frame_topic, status_message, status_topic
from crosspose.capture.frames import encode_frame
from crosspose.capture.source import Source, SourceEnded, SourceError
from crosspose.capture.sources import open_source
from crosspose.config import BusConfig, CameraConfig

log = logging.getLogger(__name__)

FINAL_LINGER_MS = 500
State = Literal["starting", "running", "reconnecting", "ended", "stopped"]


class StopEvent(Protocol):
    """``threading.Event`` or ``multiprocessing.Event``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = ...) -> bool: ...


@dataclass
class GrabberStats:
    """Counters a grabber reports."""

    state: State = "starting"
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    error: str | None = None
    fps: float = 0.0
    last_capture_ns: int | None = None  # host monotonic time of the newest published frame
    _window_frames: int = 0
    _window_start: float = field(default_factory=time.monotonic)


class Grabber:
    """Reads one camera and publishes its frames. :meth:`run` loops until ``stop_event`` is set or a
    non-looping file ends.

    Args:
        camera: the camera's config.
        bus: endpoints and high-water mark.
        curve: CURVE client keys when the frames endpoint is authenticated.
        camera_index / num_cameras: position in the rig (synthetic sources).
        backoff_s / backoff_max_s: reconnect delays (doubling).
        status_interval_s: period of ``status.grabber.<cam>.`` messages.
        max_frames: stop after this many published frames (tests, benchmarks).
        epoch_ns: host monotonic time at which video files are at their first frame, shared by every
            grabber of a service so that replayed files show the same moment in every view.
    """

    def __init__(
        self,
        camera: CameraConfig,
        bus: BusConfig,
        *,
        curve: CurveClient | None = None,
        camera_index: int = 0,
        num_cameras: int = 1,
        backoff_s: float = 0.5,
        backoff_max_s: float = 10.0,
        status_interval_s: float = 1.0,
        max_frames: int | None = None,
        epoch_ns: int | None = None,
    ) -> None:
        self.camera = camera
        self.epoch_ns = epoch_ns
        self.bus = bus
        self.curve = curve
        self.camera_index = camera_index
        self.num_cameras = num_cameras
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.status_interval_s = status_interval_s
        self.max_frames = max_frames
        self.stats = GrabberStats()
        self._topic = frame_topic(camera.name)
        self._status_topic = status_topic("grabber", camera.name)
        self._seq = 0
        #: id(frame) → (frame, encoded) for sources that repeat their frames (a preloaded clip)
        self._encoded: dict[int, tuple[Any, tuple[Encoding, bytes | memoryview]]] = {}

    def status(self) -> dict[str, Any]:
        """The ``status.grabber.<cam>.`` header."""
        s = self.stats
        age_ms = None
        if s.last_capture_ns is not None:
            age_ms = round((time.monotonic_ns() - s.last_capture_ns) / 1e6, 1)
        fields = {
            "state": s.state,
            "fps": round(s.fps, 2),
            "frames": s.frames,
            "dropped": s.dropped,
            "reconnects": s.reconnects,
            "error": s.error,
            "frame_age_ms": age_ms,
        }
        return status_message("grabber", fields, camera=self.camera.name)

    def _set_state(self, state: State, error: str | None = None) -> None:
        if state != self.stats.state or error != self.stats.error:
            level = logging.WARNING if state in ("reconnecting",) else logging.INFO
            log.log(level, "camera %s: %s%s", self.camera.name, state, f" ({error})" if error else "")
        self.stats.state = state
        self.stats.error = error

    def _publish_status(self, pub: Publisher, now: float) -> None:
        s = self.stats
        dt = now - s._window_start
        if dt > 0:
            s.fps = s._window_frames / dt
        s._window_frames = 0
        s._window_start = now
        pub.send(self._status_topic, self.status())

    def _open(self) -> Source:
        src = open_source(self.camera, camera_index=self.camera_index, num_cameras=self.num_cameras,
                          epoch_ns=self.epoch_ns)
        try:
            src.open()
        except BaseException:
            src.close()
            raise
        return src

    def _encode(self, src: Source, frame: Any) -> tuple[Encoding, bytes | memoryview]:
        """The frame's buffer; a looping preloaded clip's frames are JPEG-encoded once, then reused."""
        quality = self.camera.jpeg_quality
        if quality is None or not src.repeats_frames:
            return encode_frame(frame, quality)
        cached = self._encoded.get(id(frame))
        if cached is None or cached[0] is not frame:  # an id is only unique while its array lives
            cached = (frame, encode_frame(frame, quality))
            self._encoded[id(frame)] = cached
        return cached[1]

    def _publish_frame(
        self, pub: Publisher, src: Source, frame: Any, device_ns: int | None, t_cap: int
    ) -> None:
        encoding, buf = self._encode(src, frame)
        header = frame_message(
            self.camera.name,
            self._seq,
            frame,
            t_capture_ns=t_cap,
            t_wall_ns=time.time_ns(),
            t_device_ns=device_ns,
            encoding=encoding,
            fps=src.fps,
        )
        self._seq += 1
        if pub.send(self._topic, header, [buf]):
            self.stats.last_capture_ns = t_cap
            self.stats.frames += 1
            self.stats._window_frames += 1
        else:
            self.stats.dropped += 1

    def run(self, stop_event: StopEvent | None = None) -> State:
        """Grab until stopped; returns the final state (``"stopped"`` or ``"ended"``)."""
        stop = stop_event if stop_event is not None else threading.Event()
        backoff = self.backoff_s
        next_status = 0.0
        src: Source | None = None
        skipped = 0  # src.skipped already counted
        pub = Publisher(self.bus.frames_endpoint, bind=False, hwm=self.bus.hwm, curve=self.curve)
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_status:
                    self._publish_status(pub, now)
                    next_status = now + self.status_interval_s
                if src is None:
                    try:
                        src = self._open()
                    except SourceError as err:
                        self._set_state("reconnecting", str(err))
                        self.stats.reconnects += 1
                        stop.wait(backoff)
                        backoff = min(backoff * 2, self.backoff_max_s)
                        continue
                    self._set_state("running")
                    pace_start, pace_n = time.monotonic(), 0
                    skipped = src.skipped
                try:
                    frame, device_ns = src.read()
                except SourceEnded as err:
                    self._set_state("ended", str(err))
                    self._publish_status(pub, time.monotonic())
                    return "ended"
                except SourceError as err:
                    self._set_state("reconnecting", str(err))
                    src.close()
                    src = None
                    self.stats.reconnects += 1
                    stop.wait(backoff)  # a stream that opens but never delivers must not spin
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                if src.skipped != skipped:  # timeline frames passed over: this camera's drops
                    self.stats.dropped += src.skipped - skipped
                    skipped = src.skipped
                if src.due_ns is not None:  # on the service's shared timeline
                    delay = (src.due_ns - time.monotonic_ns()) / 1e9
                    if delay > 0 and stop.wait(delay):
                        break
                elif src.paced and src.fps:
                    due = pace_start + pace_n / src.fps
                    delay = due - time.monotonic()
                    if delay > 0:
                        if stop.wait(delay):
                            break
                    elif delay < -1.0 / src.fps:
                        pace_start, pace_n = time.monotonic(), 0  # fell behind: do not burst
                    pace_n += 1
                t_cap = time.monotonic_ns()
                self._publish_frame(pub, src, frame, device_ns, t_cap)
                backoff = self.backoff_s
                if self.max_frames is not None and self._seq >= self.max_frames:
                    break
            self._set_state("stopped")
            self._publish_status(pub, time.monotonic())
            return "stopped"
        finally:
            if src is not None:
                src.close()
            pub.close(linger_ms=FINAL_LINGER_MS)  # let the final status out


def run_grabber(
    camera: CameraConfig,
    bus: BusConfig,
    stop_event: StopEvent | None = None,
    **options: Any,
) -> State:
    """Process entry point: :class:`Grabber` ``(camera, bus, **options).run(stop_event)``."""
    return Grabber(camera, bus, **options).run(stop_event)
