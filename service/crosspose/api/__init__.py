"""The HTTP/websocket face of the service: FastAPI app factory, websocket hub, status board, metrics.

The runtime builds a ``ServiceState``, feeds it from its bus threads and serves ``create_app(state)``
with uvicorn; nothing here imports ZeroMQ.
"""

from crosspose.api.app import create_app
from crosspose.api.hub import SkeletonHub, Subscriber
from crosspose.api.state import ApiSettings, ServiceState
from crosspose.api.status import CameraStatus, Readiness, StatusBoard

__all__ = [
    "ApiSettings",
    "CameraStatus",
    "Readiness",
    "ServiceState",
    "SkeletonHub",
    "StatusBoard",
    "Subscriber",
    "create_app",
]
