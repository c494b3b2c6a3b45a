"""The inference stage: ``frameset.<worker>.`` → per-view heatmaps + projections → ``heatmaps.``.

The service runs ``inference.workers`` of them (:mod:`crosspose.runtime.workers`): sync hands each frame
set to one worker, every worker crops from the latest track it has, and the solver, which binds the
heatmaps endpoint all workers connect to, publishes their results in capture order. One worker is stage
``inference``; of several, worker ``k`` is stage ``inference.<k>`` and heartbeats on
``status.inference.<k>.``.

A shell around the core's inference half (:class:`crosspose.core.HeatmapStep`) with the backend
``inference.backend`` names (:mod:`crosspose.core.backends`): ``network`` (the fusion network on the
runtime ``inference.runtime`` names, :mod:`crosspose.inference.runtimes`; the provider, runtime,
device and precision that really run are in every heartbeat; crops from the performer's
track, which the solver stage sends back as ``track.``) or ``simulated`` (**the network bypassed**,
named as such in every message and heartbeat).

Sync hands a worker a frame set only while it is idle, the newest it has (:mod:`crosspose.sync.dispatch`):
the worker is subscribed to its topic while idle and unsubscribes while it works on a set; skipped ones are
counted. The calibration comes from the store at start and
from ``control.calibration.updated.`` afterwards; it takes effect on the next frame set.

Each set's JPEG frames are decoded at the size ``inference.decode`` allows (:mod:`crosspose.core.decode`:
``auto`` decodes at 1/2 or 1/4 while every crop of the set still spans the network's input there, whole
whenever the person detector may run); the heartbeat's ``decode_reduction`` is the last set's reduction,
``decode_changes`` how often it changed.

What arrives is checked by the schema's parsers (the configured cameras, in rig order) before it is
used; what fails — or what the backend cannot take, frames at no single scale of the calibration — is
dropped and counted per input and reason in the heartbeat's ``input_drops`` (``frameset``, ``track``,
``control``; :mod:`crosspose.bus.drops`), never raised.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from multiprocessing.synchronize import Event
from typing import Any

import cv2
import numpy as np

from crosspose.bus import DropCounter, DropReason, Message, MessageError, Publisher, Subscriber
from crosspose.bus.schema import (
    CALIBRATION_UPDATED,
    HEATMAPS,
    INFLIGHT,
    TRACK,
    frameset_topic,
    heatmaps_message,
    inflight_message,
    parse_calibration,
    parse_frameset,
    parse_track,
    preview_message,
    preview_topic,
)
from crosspose.capture.frames import decode_frame
from crosspose.config import Config
from crosspose.core import (
    BackendOutput,
    HeatmapBackend,
    HeatmapStep,
    ImageSet,
    Track,
    backend_from_config,
    capture_time_ns,
)
from crosspose.core.decode import DecodeRule, smallest_crop_px
from crosspose.geometry import CameraRig
from crosspose.inference.association import Volume
from crosspose.runtime.heartbeat import Heartbeat, RateMeter
from crosspose.runtime.persons_bus import fresh_tracks, persons_output, volume_field
from crosspose.runtime.stage import WarningLimiter, run_until_stopped
from crosspose.runtime.workers import FUTURE_NS, worker_count, worker_nice, worker_threads
from crosspose.skeleton import get_skeleton

log = logging.getLogger(__name__)


#: Width of the previews, pixels (at most: a narrower frame is shown as it is).
PREVIEW_WIDTH = 320


def preview_of(image: np.ndarray, width: int = PREVIEW_WIDTH, quality: int = 70) -> tuple[bytes, float]:
    """A small JPEG of ``image`` and its scale (preview px per image px)."""
    h, w = image.shape[:2]
    scale = min(1.0, width / w)
    small = (
        cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR
        )
        if scale < 1.0
        else image
    )
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding of a preview failed")
    return buf.tobytes(), scale


class InferenceStage:
    """Sockets and state of one inference worker process (usable in-process for tests).

    Args:
        config: the service config; ``inference.threads`` 0 becomes this worker's share of the cores.
        worker: this worker's number among several (stage ``inference.<worker>``), or None for the only
            one (stage ``inference``; it takes worker 0's frame sets).
    """

    def __init__(self, config: Config, worker: int | None = None) -> None:
        from crosspose.runtime.calibration import open_calibration_store

        self.workers = worker_count(config)
        self.threads = worker_threads(config)
        if self.threads != config.inference.threads:  # 0: this worker's share of the cores
            config = config.model_copy(
                update={"inference": config.inference.model_copy(update={"threads": self.threads})})
        self.config = config
        self.worker = worker
        bus = config.bus
        self.names = [c.name for c in config.cameras]
        # Subscribed while idle (from the end of this constructor, the network loaded): sync hands a set only
        # to an idle worker (crosspose.sync.dispatch), and this worker unsubscribes while it works on one.
        self.topic = frameset_topic(0 if worker is None else worker)
        self.framesets = Subscriber(bus.framesets_endpoint, [], bind=False, hwm=1, conflate=True)
        self.control = Subscriber(bus.control_endpoint, [CALIBRATION_UPDATED], bind=False, hwm=16)
        # One performer: only the newest track matters. Several: every performer's track of a frame set.
        self.max_persons = config.capture.max_persons
        several = self.max_persons > 1
        self.tracks = Subscriber(bus.skeletons_endpoint, [TRACK], bind=False, hwm=64 if several else 4,
                                 conflate=not several)
        # Latest wins, as framesets; the solver binds, every worker connects. Of several workers, each also
        # announces the set it starts there (``inflight.``), which needs room beside one set's heatmaps.
        self.out = Publisher(bus.heatmaps_endpoint, bind=False, hwm=1 if self.workers == 1 else 2)
        self.status = Publisher(bus.status_endpoint, bind=False, hwm=bus.hwm)
        self.heartbeat = Heartbeat(self.status, "inference", config.supervisor.heartbeat_s, worker=worker)
        store = open_calibration_store(config)
        active = store.active()
        self.rig: CameraRig | None = active.rig if active is not None else None
        self.calibration_version: int | None = active.version if active is not None else None
        self.heatmap_step: HeatmapStep | None = None
        self.rate = RateMeter()
        self.processed = 0
        self.errors = 0
        self.last_error: str | None = None
        self.warnings = WarningLimiter(log)
        self._last_track: Track | None = None
        self._fed_seq: dict[int, int] = {}  # per performer id the frame set of the last track fed back
        self._person_buffers: list[Any] = []  # the other performers' arrays of the set in hand
        # The newest capture time the solver has published (from its tracks): an older frame set would only
        # be dropped there, after the network ran for nothing (several workers; crosspose.runtime.workers).
        self.published_ns: int | None = None
        # The workers share the preview rate: each sends every ``workers``-th preview.
        hz = config.api.preview_hz
        self._preview_every_ns = int(self.workers * 1e9 / hz) if hz > 0 else 0
        self._next_preview = 0
        self.drops = DropCounter()
        # inference.decode auto: each set's JPEGs at the largest reduction its crops allow
        # (crosspose.core.decode); with fused heatmaps only, the path whose accuracy it was measured on
        # (the raw maps lost 1.2 points of detection at 1/2 on the real clip, the fused 0.3).
        self.decode_rule: DecodeRule | None = None
        if config.inference.decode == "auto" and config.inference.heatmaps == "fused":
            from crosspose.inference.crops import CROP_SIZE

            self.decode_rule = DecodeRule(CROP_SIZE)
        self._ensure_backend()
        self.framesets.subscribe(self.topic)

    def _ensure_backend(self) -> None:
        if self.heatmap_step is not None or self.rig is None:
            return
        # Each worker its own seed: the simulated backend's errors of two workers are not the same draws.
        backend = backend_from_config(self.config, self.rig, seed=self.worker or 0)
        self.heatmap_step = HeatmapStep(backend, self.rig)
        log.info("inference backend %s on %s (%s, %d threads)", backend.name, backend.provider,
                 "the only worker" if self.worker is None else f"worker {self.worker} of {self.workers}",
                 self.threads)

    def _apply_calibration(self, msg: Message) -> None:
        from crosspose.calibration import load_rig

        try:
            update = parse_calibration(msg.header)
            rig = load_rig(update.rig.encode(), format="crosspose")
            if list(rig.names) != self.names:
                rig = rig.subset(self.names)
        except Exception as err:  # a bad control message must not stop the stage
            self.errors += 1
            self.drops.count("control", err.reason if isinstance(err, MessageError) else "malformed")
            log.warning("ignored calibration update: %s", err)
            return
        self.rig = rig
        self.calibration_version = update.version
        if self.heatmap_step is not None:
            self.heatmap_step.set_rig(rig)
        self._ensure_backend()
        log.info("calibration v%s in force from the next frame set", self.calibration_version)

    def step(self, timeout_ms: int = 100) -> dict[str, Any] | None:
        """Handle control messages and the performer's track, then the newest frame set; returns the
        heatmaps header sent."""
        while (ctl := self.control.recv(0)) is not None:
            self._apply_calibration(ctl)
        if self.max_persons > 1:
            self._feedback_persons()
        else:
            track_msg = self.tracks.recv(0)
            if track_msg is not None and self.heatmap_step is not None:
                self._feedback(track_msg)
        msg = self.framesets.recv(timeout_ms)
        sent = None
        if msg is not None:
            self.framesets.unsubscribe(self.topic)  # busy: sync keeps the next set for an idle worker
            try:
                sent = self._process(msg)
            finally:
                self.framesets.subscribe(self.topic)  # idle again: sync sends the newest set it has
        self.heartbeat.maybe_send(self.payload())
        return sent

    def _feedback_persons(self) -> None:
        """Every track queued; those of the newest frame set go to the performers of their ids."""
        tracks = []
        while (msg := self.tracks.recv(0)) is not None:
            track = self._parse_track(msg)
            if track is not None:
                tracks.append(track)
        newest = fresh_tracks(tracks, self._fed_seq)  # a performer's late track is not used after a newer one
        if not newest or self.heatmap_step is None:
            return
        try:
            self.heatmap_step.feedback_persons(newest)
        except ValueError as err:  # a track of another layout than the network's
            self.errors += 1
            self.drops.count("track", "foreign")
            self._warn(f"tracks not used: {err}", f"track layout: {err}")
            return
        solved = [t for _, t in sorted(newest.items()) if t is not None]
        self._last_track = solved[0] if solved else None
        t = max(tr.t_capture_ns or -1 for tr in tracks if tr.seq == max(x.seq for x in tracks))
        if 0 <= t <= time.monotonic_ns() + FUTURE_NS and t > (self.published_ns or -1):
            self.published_ns = t

    def _parse_track(self, msg: Message) -> Track | None:
        try:
            return Track.from_message(parse_track(msg.header, msg.buffers))
        except (KeyError, TypeError, ValueError) as err:
            self.errors += 1
            self.drops.count("track", err.reason if isinstance(err, MessageError) else "malformed")
            self._warn(f"dropped a malformed track message: {err}", f"track: {err}")
            return None

    def _feedback(self, msg: Message) -> None:
        track = self._parse_track(msg)
        if track is None or self.heatmap_step is None:
            return
        try:
            self.heatmap_step.feedback(track)
        except ValueError as err:  # a track of another layout than the network's: say so, never ignore it
            self.errors += 1
            self.drops.count("track", "foreign")
            self._warn(f"track {track.id} not used: {err}", f"track layout: {err}")
            return
        self._last_track = track
        t = track.t_capture_ns
        if t is not None and t <= time.monotonic_ns() + FUTURE_NS and t > (self.published_ns or -1):
            self.published_ns = t

    def _warn(self, text: str, key: str) -> None:
        """Log a problem once, then at most every 10 s while it repeats, also when problems alternate
        (:class:`WarningLimiter`); the heartbeat always carries the latest one."""
        self.warnings.warn(text, key)
        self.last_error = key

    def _process(self, msg: Message) -> dict[str, Any] | None:
        t0 = time.monotonic_ns()
        header = msg.header
        if self.rig is None or self.heatmap_step is None:
            self.errors += 1
            self.last_error = "no calibration yet: PUT one to /api/v1/calibration"
            return None
        try:
            parse_frameset(header, msg.buffers, cameras=self.names)
            if self.published_ns is not None and capture_time_ns(header) <= self.published_ns:
                self.drops.count("frameset", "stale")  # another worker's newer set is out already
                return None
            t_decode = time.monotonic_ns()
            reduction = self._decode_reduction(header)
            images = ImageSet.from_frameset(header, msg.buffers, reduction)
            decode_ms = (time.monotonic_ns() - t_decode) / 1e6
            if self.workers > 1:  # the solver may hold a newer set another worker finishes first for this one
                self.out.send(INFLIGHT, inflight_message(worker=self.worker or 0, seq=int(header["seq"]),
                                                         t_capture_ns=capture_time_ns(header)))
            if self.max_persons > 1:
                out = self._run_persons(images)
            else:  # one performer: the solver checks their root against the capture volume too
                out = self.heatmap_step.run(images)
                out = dataclasses.replace(out, extra={**out.extra, "volume": volume_field(self._volume)})
        except (KeyError, TypeError, ValueError, ArithmeticError, IndexError) as err:
            # ValueError: the frames do not fit the calibration (any single scale of it). Arithmetic and
            # index errors once came from frames no parser refused; one frame set must never end the stage.
            reason: DropReason = err.reason if isinstance(err, MessageError) else "malformed"
            self.errors += 1
            self.drops.count("frameset", reason)
            self._warn(f"dropped a {reason} frame set: {err}", str(err))
            return None
        t_capture = capture_time_ns(header)
        t_emit = int(header.get("t_emit_ns", t0))
        latency = set_latency(t_capture, t_emit, t0, time.monotonic_ns(), decode_ms,
                              out.extra.get("timings_ms"))
        hdr, buffers = heatmaps_message(
            seq=int(header["seq"]),
            t_capture_ns=t_capture,
            cameras=self.names,
            present=header["present"],
            heatmaps=out.heatmaps,
            projections=out.projections,
            latency_ms=latency,
            calibration_version=self.calibration_version,
            backend=self.heatmap_step.backend.name,
            extra=out.extra,
        )
        if self.max_persons > 1:  # the other performers' arrays after the message's own
            buffers = [*buffers, *self._person_buffers]
        self.out.send(HEATMAPS, hdr, buffers)
        self.processed += 1
        self.rate.tick()
        if self._preview_every_ns and t0 >= self._next_preview:
            self._next_preview = t0 + self._preview_every_ns
            self._send_previews(header, msg.buffers, images, self.heatmap_step.rig_for(images), out)
        return hdr

    def _decode_reduction(self, header: dict[str, Any]) -> int:
        """How much smaller than sent this set's JPEGs are decoded: 1 unless ``inference.decode`` is ``auto``
        and the crops the set will take are all known and large enough (:mod:`crosspose.core.decode`)."""
        if self.decode_rule is None or self.heatmap_step is None or self.rig is None:
            return 1
        sides = self.heatmap_step.planned_crop_sides()
        return self.decode_rule.choose(smallest_crop_px(header, self.rig, sides))

    def _run_persons(self, images: ImageSet) -> BackendOutput:
        """Every performer's heatmaps (one network call): the lowest id's as the message's own output, the
        others and the capture volume in its header (:mod:`crosspose.runtime.persons_bus`)."""
        assert self.heatmap_step is not None
        outputs = self.heatmap_step.run_persons(images)
        out, self._person_buffers = persons_output(
            outputs, self._volume, cameras=len(self.names),
            joints=get_skeleton(self.config.solver.skeleton).num_joints)
        return out

    @property
    def _volume(self) -> Volume | None:
        """The capture volume the network backend's pipeline finds people in (None: none, or simulated)."""
        return getattr(self._frame_pipeline, "volume", None)

    def _send_previews(
        self, header: dict[str, Any], buffers: list[Any], images: ImageSet, rig: CameraRig, out: BackendOutput
    ) -> None:
        """``preview.<cam>.``: a small JPEG per present camera with the last solved pose reprojected
        (2D joints) and the crop square, for the viewer (a few Hz; never the full stream). A frame the
        network got reduced (``inference.decode``) narrower than the preview is decoded again whole for it."""
        joints2d = None
        track = self._last_track
        if track is not None:
            uv = np.asarray(rig.project(track.joints))  # (J, C, 2)
            conf = track.supported().astype(float)
            joints2d = uv.transpose(1, 0, 2), conf
        sent = iter(buffers)
        for c, (name, image) in enumerate(zip(self.names, images.images, strict=True)):
            if image is None:
                continue
            buffer = next(sent)
            frame = header["frames"][c] or {}
            shown, factor = image, 1.0  # factor: px of the image shown per px of the image the network got
            if image.shape[1] < PREVIEW_WIDTH and list(image.shape) != list(frame.get("shape") or ()):
                shown = decode_frame(frame, buffer)
                factor = shown.shape[0] / image.shape[0]
            jpeg, shown_scale = preview_of(shown)
            scale = shown_scale * factor  # preview px per px of the image the crops and joints are in
            corners = out.crop_corners[c] if c < len(out.crop_corners) else None
            meta = preview_message(
                camera=name,
                seq=int(header["seq"]),
                t_capture_ns=int((header["frames"][c] or {}).get("t_capture_ns", 0)),
                width=round(shown.shape[1] * shown_scale),
                height=round(shown.shape[0] * shown_scale),
                scale=scale,
                joints2d=None if joints2d is None else joints2d[0][c] * scale,
                confidence=None if joints2d is None else joints2d[1],
                crop=None if corners is None else np.asarray(corners) * scale,
            )
            self.status.send(preview_topic(name), meta, [jpeg])

    def payload(self) -> dict[str, Any]:
        c = self.framesets.counters
        backend = self.backend
        info = None if backend is None else backend.info
        return {
            "fps": round(self.rate.rate(), 2),
            "processed": self.processed,
            "drops": int(c.get("skipped", 0)) + int(c.get("dropped_malformed", 0)) + self.errors
            + self.drops.get("frameset", "stale"),
            "input_drops": self.input_drops(),
            "provider": None if backend is None else backend.provider,
            # What really runs the network (None: not started yet, or the simulated backend).
            "runtime": None if info is None else info.runtime,
            "device": None if info is None else info.device,
            "precision": None if info is None else info.precision,
            "backend": self.config.inference.backend,
            "workers": self.workers,
            "threads": self.threads,
            "nice": worker_nice(self.config),
            "calibration_version": self.calibration_version,
            "error": self.last_error,
            # The detector should run on a cold start or a lost view only; these say how often it did.
            "detector_runs": int(getattr(self._frame_pipeline, "detector_runs", 0)),
            "detector_views": int(getattr(self._frame_pipeline, "detector_views", 0)),
            # inference.decode as it runs ("full" where auto does not apply: raw heatmaps), the JPEG
            # reduction of the last set (1: whole) and how often it changed.
            "decode": "full" if self.decode_rule is None else "auto",
            "decode_reduction": 1 if self.decode_rule is None else self.decode_rule.reduction,
            "decode_changes": 0 if self.decode_rule is None else self.decode_rule.changes,
        }

    def input_drops(self) -> dict[str, dict[str, int]]:
        """The heartbeat's ``input_drops`` (:mod:`crosspose.bus.drops`): what was refused here, the frame
        sets skipped for a newer one (``busy``: latest wins) and what the sockets could not decode."""
        sockets = {"frameset": self.framesets, "track": self.tracks, "control": self.control}
        busy = {"frameset": {"busy": self.framesets.skipped},
                "track": {"busy": self.tracks.skipped}}
        return self.drops.payload(busy, {name: sock.drops for name, sock in sockets.items()})

    @property
    def backend(self) -> HeatmapBackend | None:
        """The heatmap backend (None until a calibration is in force)."""
        return None if self.heatmap_step is None else self.heatmap_step.backend

    @property
    def _frame_pipeline(self) -> Any:
        """The network backend's FramePipeline (None for the simulated backend or before a rig)."""
        return None if self.heatmap_step is None else getattr(self.heatmap_step.backend, "pipeline", None)

    def close(self) -> None:
        for sock in (self.framesets, self.control, self.tracks, self.out, self.status):
            sock.close()


#: The inference worker's parts of a set's ``latency_ms`` the network backend times
#: (:meth:`crosspose.inference.pipeline.FramePipeline.process_persons`' ``timings_ms``).
BACKEND_PARTS = ("detect", "crop", "network")


def set_latency(t_capture_ns: int, t_emit_ns: int, t_start_ns: int, t_sent_ns: int, decode_ms: float,
                timings_ms: Any) -> dict[str, float]:
    """A frame set's ``latency_ms`` as it leaves its inference worker, milliseconds on the host monotonic
    clock: ``sync`` (capture → sync emitted the set), ``queue`` (→ this worker began it: waiting in the
    sockets while the workers were busy), ``inference`` (→ its heatmaps sent), and within ``inference``
    its parts ``decode`` (the JPEG frames) and, from the network backend's timings, ``detect`` (the
    person detector, 0 while the performer is followed), ``crop`` and ``network``.
    ``sync + queue + inference`` is capture → heatmaps sent."""
    latency = {"sync": (t_emit_ns - t_capture_ns) / 1e6, "queue": (t_start_ns - t_emit_ns) / 1e6,
               "inference": (t_sent_ns - t_start_ns) / 1e6, "decode": decode_ms}
    if isinstance(timings_ms, dict):
        latency.update({k: float(v) for k in BACKEND_PARTS
                        if isinstance(v := timings_ms.get(k), (int, float)) and not isinstance(v, bool)})
    return latency


def run_inference(stop: Event, config: Config, worker: int | None = None) -> None:
    """Process entry point of one worker (``worker``: :class:`InferenceStage`); the runtime's session is
    created here, in the child (DESIGN §2)."""
    import os

    import torch

    nice = worker_nice(config)
    if nice:
        os.nice(nice)  # below the short stages of a set's way (inference.nice)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    stage = InferenceStage(config, worker)
    run_until_stopped(stop, stage)
