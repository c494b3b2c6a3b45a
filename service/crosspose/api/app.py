"""``create_app(state)``: the FastAPI application of a running service (nothing is created at import)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import crosspose
from crosspose.api.errors import install_error_handlers
from crosspose.api.metrics import metrics_registry
from crosspose.api.routes import (
    calibration,
    calibration_session,
    health,
    metrics,
    recordings,
    skeletons,
    viewer,
)
from crosspose.api.state import ServiceState

STATIC_DIR = Path(__file__).parent / "static"
"""The browser files shipped with the package (served under ``/static``; ``/`` is its index.html)."""

DESCRIPTION = """
Live 3D skeletons from a multi-camera studio, and the calibration that produces them.

* **Skeletons**: `WS /ws/skeletons?format=json|msgpack`, one message per solved frame:
  `{"v":1,"type":"skeleton","seq","t_capture_ns","t_publish_ns","skeleton":"crosspose-body32","units":"m",
  "joints":[[x,y,z,confidence],…],"views":[…],"latency_ms":{"sync","queue","inference","transport","hold","solve","total",…}}`
  (JSON text frames, non-finite numbers as `null`; or msgpack binary frames). The joints are the service's
  layout (`GET /api/v1/skeleton`; the full body by default: Human3.6M-17's 17 joints, then heels, big
  toes, hand points and face points); `&skeleton=h36m17` gives the first 17 as Human3.6M-17 messages.
  Each client has its own bounded queue: a client that reads too slowly loses its oldest messages,
  counted in `/metrics`.
  `&rotations=true` adds `"rotations"`: local joint rotations of a humanoid skeleton, self-contained in
  every message (`null` until the performer's rest pose is known):
  `{"frame":"y_up_rh","units":"m","bones":["hips",…],"unity":["Hips",…],"parents":[-1,0,…],
  "rest_offsets":[[x,y,z],…],"root":[x,y,z],"local":[[w,x,y,z],…]}` (right-handed, Y up, T-pose
  facing +Z; `local` relative to the T-pose). Without it the message is exactly the one above.
* **Engines**: with `streaming.vmc.enabled`, every solved frame also goes out as one VMC-protocol OSC
  bundle over UDP (`/VMC/Ext/Root/Pos`, `/VMC/Ext/Bone/Pos` with Unity bone names and local
  rotations; default port 39539) to each configured target (VSeeFace, VirtualMotionCapture, EVMC4U,
  VMC4UE, VMC4B).
* **Calibration**: `GET`/`PUT /api/v1/calibration`; writes need `Authorization: Bearer <token>`.
  Live (token): `POST /api/v1/calibration/session` (start: board or performer), `GET …/session`
  (coverage per camera, shared sightings per pair, the result), `POST …/session/stop`, `…/solve`,
  `…/apply` (a new version, hot-swapped), `DELETE …/session` (discard).
* **Recordings** (token): `POST /api/v1/recordings` (start a take), `POST /api/v1/recordings/{id}/stop`,
  `GET /api/v1/recordings` (takes with durations, frame counts, sizes),
  `GET /api/v1/recordings/{id}/download?format=jsonl|trc|bvh|c3d|zip`.
* **Health**: `/api/v1/health` (liveness), `/api/v1/ready`, `/api/v1/cameras`, `/metrics` (Prometheus).
* **Viewer**: `/` (the live browser viewer), `/api/v1/cameras/{name}/preview(.jpg)` (a small JPEG per
  camera a few times a second, with the reprojected joints and crop box), `/api/v1/skeleton` (joint layout).

Errors are JSON: `{"detail": "...", "problems": ["..."]}` with a 4xx status.
"""


def create_app(state: ServiceState) -> FastAPI:
    """The API of one service; ``state`` is fed by the runtime (see ``ServiceState``)."""
    app = FastAPI(
        title="crosspose",
        version=crosspose.__version__,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "health", "description": "Liveness, readiness, cameras"},
            {"name": "calibration", "description": "The active camera calibration and its history"},
            {"name": "metrics", "description": "Prometheus metrics"},
            {"name": "viewer", "description": "Camera previews and the skeleton layout for the viewer"},
            {"name": "recordings", "description": "Takes: start/stop recording, list, download (token)"},
        ],
    )
    app.state.service = state
    app.state.metrics_registry = metrics_registry(state)
    install_error_handlers(app)
    for module in (health, calibration, calibration_session, skeletons, metrics, viewer, recordings):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app
