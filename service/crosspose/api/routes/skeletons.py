"""``WS /ws/skeletons?format=json|msgpack[&rotations=true][&skeleton=h36m17]``: one message per solved frame
(DESIGN §5), JSON text or msgpack binary frames. Each client has its own bounded queue; a slow client loses
its oldest messages. ``rotations=true`` adds the ``rotations`` payload (local joint quaternions, bone
names, rest offsets: :func:`crosspose.bus.schema.rotations_payload`); without it the message is
unchanged. ``skeleton=h36m17`` gives a service publishing the full body to a 17-joint client as
Human3.6M-17 messages (the first 17 joints, ``"skeleton": "h36m17"``: the message shape of a Human3.6M-17
service); without it the service's own layout."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from crosspose.api.hub import WIRE_FORMATS, Subscriber, WireFormat
from crosspose.api.routes import websocket_state
from crosspose.bus.schema import layouts_within

log = logging.getLogger(__name__)
router = APIRouter(tags=["skeletons"])

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


async def _send_all(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        frame = await sub.next()
        if isinstance(frame, bytes):
            await websocket.send_bytes(frame)
        else:
            await websocket.send_text(frame)
        sub.mark_delivered()


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()  # client messages are ignored
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/ws/skeletons")
async def skeletons(websocket: WebSocket) -> None:
    """Stream skeletons; an unsupported ``format``, ``rotations`` or ``skeleton`` value is closed with 1008, a
    full house with 1013."""
    state = websocket_state(websocket)
    asked = websocket.query_params.get("format", "json")
    rotations = websocket.query_params.get("rotations", "false").lower()
    layout = websocket.query_params.get("skeleton")
    await websocket.accept()
    if asked not in WIRE_FORMATS:
        await websocket.close(
            POLICY_VIOLATION, f"unsupported format {asked[:40]!r}; use format=json or msgpack"
        )
        return
    if rotations not in _FLAGS:
        await websocket.close(
            POLICY_VIOLATION, f"unsupported rotations {rotations[:40]!r}; use rotations=true or false"
        )
        return
    layouts = layouts_within(state.skeleton.name)
    if layout is not None and layout not in layouts:
        await websocket.close(
            POLICY_VIOLATION, f"unsupported skeleton {layout[:40]!r}; use skeleton={' or '.join(layouts)}"
        )
        return
    fmt: WireFormat = "msgpack" if asked == "msgpack" else "json"
    sub = state.hub.subscribe(fmt, rotations=_FLAGS[rotations],
                              skeleton=None if layout == state.skeleton.name else layout)
    if sub is None:
        await websocket.close(TRY_AGAIN_LATER, f"too many subscribers (limit {state.hub.max_clients})")
        return
    tasks = [
        asyncio.create_task(_send_all(websocket, sub)),
        asyncio.create_task(_until_disconnect(websocket)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, (WebSocketDisconnect, OSError, RuntimeError)):
                log.warning("websocket client %d: %r", sub.id, exc)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        state.hub.unsubscribe(sub)
