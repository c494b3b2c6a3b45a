"""One router per resource: health/readiness/cameras, calibration, skeleton websocket, metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from crosspose.api.state import ServiceState


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def websocket_state(websocket: WebSocket) -> ServiceState:
    state: ServiceState = websocket.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(_state)]
"""The running service's state, for route signatures."""
