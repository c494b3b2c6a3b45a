"""A real API server fed by a thread the way the runtime feeds it (skeletons to the hub, grabber
heartbeats to the status board, previews to the preview board), for the viewer's browser tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crosspose.api import ApiSettings, ServiceState, create_app
from crosspose.api.testing import serve_in_thread
from crosspose.calibration import load_rig
from crosspose.calibration.store import CalibrationStore
from crosspose.skeleton import H36M17

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION = ROOT / "calibration" / "pose2sim_demo.json"
CAMERAS = ["cam01", "cam02", "cam03", "cam04"]
TOKEN = "viewer-test-token"
PREVIEW_GREY = 200

# A person standing at the world origin (Z up, metres), H36M-17 order.
STANDING = np.array(
    [
        [0.0, 0.0, 0.95], [0.0, -0.13, 0.95], [0.02, -0.13, 0.5], [0.0, -0.13, 0.07],  # pelvis, r leg
        [0.0, 0.13, 0.95], [0.02, 0.13, 0.5], [0.0, 0.13, 0.07],  # l leg
        [0.0, 0.0, 1.18], [0.0, 0.0, 1.43], [0.0, 0.0, 1.55], [0.0, 0.0, 1.7],  # spine … head
        [0.0, 0.18, 1.42], [0.0, 0.42, 1.3], [0.0, 0.62, 1.2],  # l arm
        [0.0, -0.18, 1.42], [0.0, -0.42, 1.3], [0.0, -0.62, 1.2],  # r arm
    ]
)  # fmt: skip
LOW_CONFIDENCE_JOINT = H36M17.index("l_ankle")


def skeleton_message(seq: int) -> dict[str, Any]:
    conf = np.ones(H36M17.num_joints)
    conf[LOW_CONFIDENCE_JOINT] = 0.0
    now = time.time_ns()
    return {
        "v": 1,
        "type": "skeleton",
        "seq": seq,
        "t_capture_ns": now - 40_000_000,
        "t_publish_ns": now,
        "skeleton": "h36m17",
        "units": "m",
        "joints": [[*map(float, p), float(c)] for p, c in zip(STANDING, conf, strict=True)],
        "views": [4] * H36M17.num_joints,
        "latency_ms": {"sync": 3.0, "inference": 20.0, "solve": 4.0, "total": 40.0},
    }


def preview_of(camera: int, seq: int, width: int = 320) -> tuple[bytes, dict[str, Any]]:
    """A flat grey preview with the standing pose reprojected through the demo calibration."""
    rig = load_rig(CALIBRATION)
    w, h = rig[camera].image_size
    scale = width / w
    height = round(h * scale)
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), PREVIEW_GREY, np.uint8))
    assert ok
    uv = np.asarray(rig.project(STANDING))[:, camera] * scale  # (J, 2)
    return buf.tobytes(), {
        "seq": seq,
        "t_capture_ns": time.time_ns(),
        "width": width,
        "height": height,
        "scale": scale,
        "joints2d": [[float(x), float(y), 1.0] for x, y in uv],
        "crop": [[10.0, 10.0], [110.0, 10.0], [110.0, 110.0], [10.0, 110.0]],
    }


@dataclass
class FedService:
    """A running API and the thread feeding it; ``silent`` cameras stop heartbeating."""

    base_url: str
    state: ServiceState
    publish_skeletons: threading.Event = field(default_factory=threading.Event)
    silent: set[str] = field(default_factory=set)
    message: Callable[[int], dict[str, Any]] = field(default=lambda seq: skeleton_message(seq))


@contextlib.contextmanager
def fed_service(
    store: Path, heartbeat_timeout_s: float = 0.6, token: str | None = TOKEN
) -> Iterator[FedService]:
    state = ServiceState(
        CalibrationStore(store, CAMERAS),
        ApiSettings(token=token, heartbeat_timeout_s=heartbeat_timeout_s),
        skeleton=H36M17,  # the layout of the messages fed below
    )
    state.calibration.put(CALIBRATION.read_bytes())
    previews = [preview_of(c, 0) for c in range(len(CAMERAS))]
    stop = threading.Event()
    with serve_in_thread(create_app(state)) as base_url:
        svc = FedService(base_url, state)

        def feed() -> None:
            seq = 0
            arrived = {name: time.monotonic_ns() for name in CAMERAS}  # a silent camera's frames stop too
            while not stop.wait(0.05):
                seq += 1
                for name, (jpeg, meta) in zip(CAMERAS, previews, strict=True):
                    if name not in svc.silent:
                        arrived[name] = time.monotonic_ns()
                        state.status.update(f"grabber.{name}", {"fps": 20.0, "state": "up", "drops": 1})
                        state.previews.update(name, jpeg, {**meta, "seq": seq})
                frames = {name: {"received": seq, "fps": 20.0, "age_ms": (time.monotonic_ns() - t) / 1e6}
                          for name, t in arrived.items()}  # fmt: skip
                state.status.update("sync", {"fps": 20.0, "frames": frames})
                state.status.update("solver", {"fps": 20.0})
                state.status.update("inference", {"fps": 20.0, "provider": "CPUExecutionProvider",
                                                  "runtime": "onnxruntime", "device": "CPUExecutionProvider",
                                                  "precision": "f32"})
                if svc.publish_skeletons.is_set():
                    state.hub.publish(svc.message(seq))

        thread = threading.Thread(target=feed, name="viewer-feed", daemon=True)
        thread.start()
        try:
            yield svc
        finally:
            stop.set()
            thread.join(5)
