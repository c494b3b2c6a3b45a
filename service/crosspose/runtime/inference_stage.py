"""The inference stage: ``frameset.`` → per-view heatmaps + projections → ``heatmaps.``.

Backends (``inference.backend``):

* ``network`` — :class:`crosspose.inference.pipeline.FramePipeline` with the fusion network on the
  runtime ``inference.runtime`` names (:mod:`crosspose.inference.runtimes`; the provider, runtime, device
  and precision that really run are in every heartbeat): crops from the previous 3D pose (the solver's
  ``skeleton.`` messages come back here), the detector on a cold start or loss.
* ``simulated`` — **the network bypassed**: heatmaps simulated from the synthetic studio's ground
  truth for the frame each synthetic camera rendered (``crosspose.studio``, realistic error modes).
  It isolates transport, sync and solver cost; it is named as such in every message and heartbeat.

Latest frame set wins; skipped ones are counted. The calibration comes from the store at start and
from ``control.calibration.updated.`` afterwards; it takes effect on the next frame set.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from crosspose.bus import Message, Publisher, Subscriber, shutdown
from crosspose.bus.schema import (
    CALIBRATION_UPDATED,
    FRAMESET,
    HEATMAPS,
    SKELETON,
    heatmaps_message,
    parse_calibration,
    parse_frameset,
    preview_message,
    preview_topic,
)
from crosspose.capture.frames import decode_frame
from crosspose.config import Config
from crosspose.geometry import CameraRig
from crosspose.runtime.heartbeat import Heartbeat, RateMeter

if TYPE_CHECKING:
    from crosspose.inference.network import RuntimeInfo

log = logging.getLogger(__name__)


def frameset_images(header: dict[str, Any], buffers: list[Any]) -> list[np.ndarray | None]:
    """One image per camera of a ``frameset.`` message (None where the camera is missing)."""
    present = header["present"]
    if sum(bool(p) for p in present) != len(buffers):
        raise ValueError(f"frame set has {len(buffers)} buffers for {sum(present)} present cameras")
    it = iter(buffers)
    out: list[np.ndarray | None] = []
    for p, frame in zip(present, header["frames"], strict=True):
        out.append(decode_frame(frame, next(it)) if p else None)
    return out


@dataclass
class BackendOutput:
    heatmaps: np.ndarray  # (C, J, h, w)
    projections: np.ndarray  # (C, 3, 4)
    extra: dict[str, Any]
    crop_corners: list[np.ndarray | None]  # per view (4, 2) image px of the crop square, or None


class SimulatedBackend:
    """Network bypassed: heatmaps simulated from the synthetic studio's ground truth (see module doc).

    Each camera's source must be ``synthetic…`` of the same studio (seed, camera count, frames); the
    frame index is recovered from the frame's device timestamp (``seq / fps``).
    """

    name = "simulated"
    provider = "simulated (network bypassed)"
    info: RuntimeInfo | None = None  # no network runs

    def __init__(self, config: Config, seed: int = 0) -> None:
        from crosspose.capture.synthetic import parse_synthetic
        from crosspose.studio import HeatmapErrors, make_scene

        params = [parse_synthetic(c.source) for c in config.cameras if c.source.startswith("synthetic")]
        if len(params) != len(config.cameras):
            raise ValueError("inference.backend 'simulated' needs every camera source to be synthetic")
        p = params[0]
        self.fps = config.cameras[0].fps or 30.0
        self.frames = p.get("frames", 300)
        self.scene = make_scene(p.get("seed", 0), self.frames, max(len(config.cameras), 2), fps=self.fps)
        self.errors = HeatmapErrors.realistic()
        self.rng = np.random.default_rng(seed)

    def set_rig(self, rig: CameraRig) -> None:
        self.rig = rig

    def run(self, header: dict[str, Any], images: list[np.ndarray | None], rig: CameraRig) -> BackendOutput:
        from crosspose.studio import heatmap_projection_matrices, person_crops, simulate_heatmaps

        c = len(images)
        if c != len(rig):
            raise ValueError(f"{c} images for a rig of {len(rig)} cameras")
        index = 0
        for frame in header["frames"]:
            if frame is not None and frame.get("t_device_ns") is not None:
                index = round(frame["t_device_ns"] * self.fps / 1e9) % self.frames
                break
        joints = self.scene.joints3d[index]
        joints2d = np.asarray(rig.project(joints)).transpose(1, 0, 2)  # (C, J, 2)
        transforms = person_crops(joints2d, (64, 64))
        heatmaps, _ = simulate_heatmaps(
            joints2d, transforms=transforms, errors=self.errors, rng=self.rng, coarse_speckle=True
        )
        projections = heatmap_projection_matrices(np.asarray(rig.projection_matrices()), transforms)
        present = np.array([im is not None for im in images])
        heatmaps = np.where(present[:, None, None, None], heatmaps, 0.0).astype(np.float32)
        projections = np.where(present[:, None, None], projections, np.nan)
        corners: list[np.ndarray | None] = []
        for v in range(c):
            T = np.vstack([transforms[v], [0.0, 0.0, 1.0]])
            if not present[v] or not np.isfinite(T).all():
                corners.append(None)
                continue
            inv = np.linalg.inv(T)
            square = np.array([[-0.5, -0.5, 1.0], [63.5, -0.5, 1.0], [63.5, 63.5, 1.0], [-0.5, 63.5, 1.0]])
            corners.append((square @ inv.T)[:, :2])
        return BackendOutput(heatmaps, projections, {"frame_index": int(index)}, corners)

    def feedback(self, pose: Any) -> None:
        """Nothing to track: crops come from the ground truth."""


class NetworkBackend:
    """The fusion network through :class:`~crosspose.inference.pipeline.FramePipeline`, on the runtime
    that ``inference.runtime`` names (:func:`crosspose.inference.runtimes.open_network`)."""

    name = "network"

    def __init__(self, config: Config, rig: CameraRig) -> None:
        from crosspose.inference.pipeline import FramePipeline
        from crosspose.inference.runtimes import open_network

        self.runner = open_network(config.inference, num_cameras=len(rig))
        self.info: RuntimeInfo | None = self.runner.info
        self.provider = self.info.provider
        self.fused = config.inference.heatmaps == "fused"
        detector = person_detector(config.inference.model, config)
        self.pipeline = FramePipeline(rig, self.runner, detector=detector)

    def set_rig(self, rig: CameraRig) -> None:
        self.pipeline.set_rig(rig)

    def run(self, header: dict[str, Any], images: list[np.ndarray | None], rig: CameraRig) -> BackendOutput:
        result = self.pipeline.process(images, capture_time_ns(header))
        heatmaps, projections = result.solver_inputs(fused=self.fused)
        corners = [None if crop is None else crop.corners() for crop in result.crops]
        extra = {
            "sources": list(result.sources),
            "presence": [round(float(p), 3) for p in result.presence],
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
            "window_scale": round(result.window_scale, 2),
        }
        return BackendOutput(heatmaps, projections, extra, corners)

    def feedback(self, pose: Any) -> None:
        self.pipeline.update(pose, getattr(pose, "t_ns", None))


def person_detector(network_path: Path | None, config: Config) -> Any:
    """The cold-start detector on the network's runtime (for ONNX Runtime ``crosspose_detector.onnx``
    beside the network, same device and threads), or None — the pipeline then builds the eager torch one,
    ~2-2.5x slower on the CPU — when that file is missing (exported before the detector was) or does not
    load."""
    from crosspose.inference.runtimes import open_detector

    try:
        return open_detector(config.inference, network_path=network_path)
    except FileNotFoundError as err:
        log.warning("%s: the person detector runs in eager torch (slower)", err)
    except Exception as err:  # a bad detector file must not stop the network; torch still works
        log.warning("person detector did not load (%s): using eager torch", err)
    return None


def capture_time_ns(header: dict[str, Any]) -> int:
    """A frame set's capture time: its earliest present frame's ``t_capture_ns`` (else ``t_ref_ns``)."""
    frames = [f for f, p in zip(header["frames"], header["present"], strict=True) if p and f]
    return min((int(f["t_capture_ns"]) for f in frames), default=int(header["t_ref_ns"]))


def image_scale(rig: CameraRig, images: list[np.ndarray | None]) -> float:
    """Scale of the frames relative to the calibration's image size (1.0, or e.g. 0.5 for half-size
    frames from a grabber configured with a smaller ``width``/``height``).

    Calibration tools pad sizes (Qualisys writes 1088 for 1080-pixel rows), so the scale is the
    height ratio, accepted when the width ratio agrees within 2 %.

    Raises:
        ValueError: frames whose size does not match the calibration at any single scale.
    """
    scales = set()
    for camera, image in zip(rig, images, strict=True):
        if image is None:
            continue
        w, h = camera.image_size
        sy, sx = image.shape[0] / h, image.shape[1] / w
        if abs(sx / sy - 1.0) > 0.02:
            raise ValueError(
                f"camera {camera.name}: frame {image.shape[1]}x{image.shape[0]} does not match "
                f"its calibration's {w}x{h} at any single scale"
            )
        scales.add(round(sy, 3))
    if len(scales) > 1:
        raise ValueError(f"cameras deliver frames at different scales of their calibration: {sorted(scales)}")
    return scales.pop() if scales else 1.0


def preview_of(image: np.ndarray, width: int = 320, quality: int = 70) -> tuple[bytes, float]:
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


def pose_from_skeleton(header: dict[str, Any]) -> SimpleNamespace | None:
    """The ``joints (J, 3)`` / ``views (J,)`` of a ``skeleton.`` message (None if unusable)."""
    try:
        joints = np.array([[np.nan if v is None else v for v in j[:3]] for j in header["joints"]], np.float64)
        views = np.asarray(header["views"], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        return None
    t_ns = header.get("t_capture_ns")
    return SimpleNamespace(joints=joints, views=views, t_ns=None if t_ns is None else int(t_ns))


class InferenceStage:
    """Sockets and state of the inference process (usable in-process for tests)."""

    def __init__(self, config: Config) -> None:
        from crosspose.calibration.store import CalibrationStore

        self.config = config
        bus = config.bus
        self.names = [c.name for c in config.cameras]
        self.framesets = Subscriber(bus.framesets_endpoint, [FRAMESET], bind=False, hwm=1, conflate=True)
        self.control = Subscriber(bus.control_endpoint, [CALIBRATION_UPDATED], bind=False, hwm=16)
        self.poses = Subscriber(bus.skeletons_endpoint, [SKELETON], bind=False, hwm=4, conflate=True)
        self.out = Publisher(bus.heatmaps_endpoint, bind=True, hwm=1)  # latest wins, as framesets
        self.status = Publisher(bus.status_endpoint, bind=False, hwm=bus.hwm)
        self.heartbeat = Heartbeat(self.status, "inference", config.supervisor.heartbeat_s)
        store = CalibrationStore(config.calibration.store, expected_names=self.names)
        store.open()
        if store.active() is None and config.calibration.file is not None:
            for problem in store.try_seed(config.calibration.file):  # running without one beats a crash loop
                log.error("%s; upload one (PUT /api/v1/calibration) or fix calibration.file", problem)
        active = store.active()
        self.rig: CameraRig | None = active.rig if active is not None else None
        self.calibration_version: int | None = active.version if active is not None else None
        self.backend: SimulatedBackend | NetworkBackend | None = None
        self.rate = RateMeter()
        self.processed = 0
        self.errors = 0
        self.last_error: str | None = None
        self._next_warning = 0.0
        self._scaled: tuple[float, CameraRig] | None = None  # rig resized to the frames' size
        self._last_pose: SimpleNamespace | None = None
        self._preview_every_ns = int(1e9 / config.api.preview_hz) if config.api.preview_hz > 0 else 0
        self._next_preview = 0
        fps = max((c.fps or 30.0) for c in config.cameras)
        self.max_age_ns = max(int(2e9 / fps), 20_000_000)  # two frame periods, at least 20 ms
        self.stale = 0
        self._ensure_backend()

    def _ensure_backend(self) -> None:
        if self.backend is not None or self.rig is None:
            return
        if self.config.inference.backend == "simulated":
            self.backend = SimulatedBackend(self.config)
        else:
            self.backend = NetworkBackend(self.config, self.rig)
        log.info("inference backend %s on %s", self.backend.name, self.backend.provider)

    def _apply_calibration(self, msg: Message) -> None:
        from crosspose.calibration import load_rig

        try:
            update = parse_calibration(msg.header)
            rig = load_rig(update.rig.encode(), format="crosspose")
            if list(rig.names) != self.names:
                rig = rig.subset(self.names)
        except Exception as err:  # a bad control message must not stop the stage
            self.errors += 1
            log.warning("ignored calibration update: %s", err)
            return
        self.rig = rig
        self._scaled = None
        self.calibration_version = update.version
        if self.backend is not None:
            self.backend.set_rig(rig)
        self._ensure_backend()
        log.info("calibration v%s in force from the next frame set", self.calibration_version)

    def step(self, timeout_ms: int = 100) -> dict[str, Any] | None:
        """Handle control messages and pose feedback, then the newest frame set; returns the header sent."""
        while (ctl := self.control.recv(0)) is not None:
            self._apply_calibration(ctl)
        pose_msg = self.poses.recv(0)
        if pose_msg is not None and self.backend is not None:
            self._last_pose = pose_from_skeleton(pose_msg.header)
            self.backend.feedback(self._last_pose)
        msg = self._fresh(self.framesets.recv(timeout_ms))
        sent = None
        if msg is not None:
            sent = self._process(msg)
        self.heartbeat.maybe_send(self.payload())
        return sent

    def _warn(self, text: str, key: str) -> None:
        """Log a problem once, then at most every 10 s while it repeats (a bad camera at 60 fps must
        not flood the log); the heartbeat always carries the latest one."""
        now = time.monotonic()
        if key != self.last_error or now >= self._next_warning:
            log.warning("%s", text)
            self._next_warning = now + 10.0
        self.last_error = key

    def _fresh(self, msg: Message | None) -> Message | None:
        """Latest wins, also against the queues: a frame set that waited in the socket buffers while
        the network ran (older than ``max_age_ns`` since sync emitted it) is dropped (counted) when a
        fresher one arrives within a frame period or two; otherwise it is still used."""
        while msg is not None and time.monotonic_ns() - int(msg.header.get("t_emit_ns", 0)) > self.max_age_ns:
            newer = self.framesets.recv(max(1, self.max_age_ns // 1_000_000))
            if newer is None:
                break
            self.stale += 1
            msg = newer
        return msg

    def _process(self, msg: Message) -> dict[str, Any] | None:
        t0 = time.monotonic_ns()
        header = msg.header
        if self.rig is None or self.backend is None:
            self.errors += 1
            self.last_error = "no calibration yet: PUT one to /api/v1/calibration"
            return None
        try:
            if list(header["cameras"]) != self.names:
                raise ValueError(f"frame set cameras {header['cameras']} are not the configured {self.names}")
            parse_frameset(header, msg.buffers)
            images = frameset_images(header, msg.buffers)
            # The simulated backend reads no pixels (its cameras may send placeholder frames).
            rig = self._rig_for(images) if self.backend.name == "network" else self.rig
            out = self.backend.run(header, images, rig)
        except (KeyError, TypeError, ValueError) as err:
            self.errors += 1
            self._warn(f"dropped frame set {header.get('seq')}: {err}", str(err))
            return None
        t_capture = capture_time_ns(header)
        t_emit = int(header.get("t_emit_ns", t0))
        latency = {"sync": (t_emit - t_capture) / 1e6, "inference": (time.monotonic_ns() - t0) / 1e6}
        hdr, buffers = heatmaps_message(
            seq=int(header["seq"]),
            t_capture_ns=t_capture,
            cameras=self.names,
            present=header["present"],
            heatmaps=out.heatmaps,
            projections=out.projections,
            latency_ms=latency,
            calibration_version=self.calibration_version,
            backend=self.backend.name,
            extra=out.extra,
        )
        self.out.send(HEATMAPS, hdr, buffers)
        self.processed += 1
        self.rate.tick()
        if self._preview_every_ns and t0 >= self._next_preview:
            self._next_preview = t0 + self._preview_every_ns
            self._send_previews(header, images, rig, out)
        return hdr

    def _rig_for(self, images: list[np.ndarray | None]) -> CameraRig:
        """The calibration at the frames' scale (cached; the backend follows a change of scale)."""
        if self.rig is None or self.backend is None:
            raise ValueError("no calibration yet")
        scale = image_scale(self.rig, images)
        if self._scaled is None or self._scaled[0] != scale:
            rig = self.rig if scale == 1.0 else self.rig.resized(scale)
            if self._scaled is not None or scale != 1.0:
                self.backend.set_rig(rig)
                log.info("frames arrive at %.3g x the calibration's size; rig rescaled", scale)
            self._scaled = (scale, rig)
        return self._scaled[1]

    def _send_previews(
        self, header: dict[str, Any], images: list[np.ndarray | None], rig: CameraRig, out: BackendOutput
    ) -> None:
        """``preview.<cam>.``: a small JPEG per present camera with the last solved pose reprojected
        (2D joints) and the crop square, for the viewer (a few Hz; never the full stream)."""
        joints2d = None
        pose = self._last_pose
        if pose is not None:
            uv = np.asarray(rig.project(pose.joints))  # (J, C, 2)
            conf = (pose.views >= 2).astype(float)
            joints2d = uv.transpose(1, 0, 2), conf
        for c, (name, image) in enumerate(zip(self.names, images, strict=True)):
            if image is None:
                continue
            jpeg, scale = preview_of(image)
            corners = out.crop_corners[c] if c < len(out.crop_corners) else None
            meta = preview_message(
                camera=name,
                seq=int(header["seq"]),
                t_capture_ns=int((header["frames"][c] or {}).get("t_capture_ns", 0)),
                width=round(image.shape[1] * scale),
                height=round(image.shape[0] * scale),
                scale=scale,
                joints2d=None if joints2d is None else joints2d[0][c] * scale,
                confidence=None if joints2d is None else joints2d[1],
                crop=None if corners is None else np.asarray(corners) * scale,
            )
            self.status.send(preview_topic(name), meta, [jpeg])

    def payload(self) -> dict[str, Any]:
        c = self.framesets.counters
        info = None if self.backend is None else self.backend.info
        return {
            "fps": round(self.rate.rate(), 2),
            "processed": self.processed,
            "drops": int(c.get("skipped", 0)) + int(c.get("dropped_malformed", 0)) + self.errors + self.stale,
            "stale": self.stale,
            "provider": None if self.backend is None else self.backend.provider,
            # What really runs the network (None: not started yet, or the simulated backend).
            "runtime": None if info is None else info.runtime,
            "device": None if info is None else info.device,
            "precision": None if info is None else info.precision,
            "backend": self.config.inference.backend,
            "calibration_version": self.calibration_version,
            "error": self.last_error,
            # The detector should run on a cold start or a lost view only; these say how often it did.
            "detector_runs": int(getattr(getattr(self.backend, "pipeline", None), "detector_runs", 0)),
            "detector_views": int(getattr(getattr(self.backend, "pipeline", None), "detector_views", 0)),
        }

    def close(self) -> None:
        for sock in (self.framesets, self.control, self.poses, self.out, self.status):
            sock.close()


def run_inference(stop: Event, config: Config) -> None:
    """Process entry point (ONNX Runtime session created here, in the child; DESIGN §2)."""
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    stage = InferenceStage(config)
    try:
        while not stop.is_set():
            stage.step(100)
    finally:
        stage.close()
        shutdown()
