"""The message bus, and the only code that imports zmq: topics, the wire codec, sockets, CURVE keys."""

from crosspose.bus.codec import (
    VERSION,
    Message,
    MessageError,
    decode,
    encode,
    pack_array,
    unpack_array,
)
from crosspose.bus.curve import CurveClient, CurveKeyError, CurveServer, generate_keypair
from crosspose.bus.sockets import Publisher, Subscriber, connect_address, drain_latest, recv_any, shutdown
from crosspose.bus.topics import (
    CALIBRATION_UPDATED,
    CONTROL,
    FRAME,
    FRAMESET,
    HEATMAPS,
    SKELETON,
    STATUS,
    control_topic,
    frame_topic,
    status_topic,
)

__all__ = [
    "CALIBRATION_UPDATED",
    "CONTROL",
    "FRAME",
    "FRAMESET",
    "HEATMAPS",
    "SKELETON",
    "STATUS",
    "VERSION",
    "CurveClient",
    "CurveKeyError",
    "CurveServer",
    "Message",
    "MessageError",
    "Publisher",
    "Subscriber",
    "connect_address",
    "control_topic",
    "decode",
    "drain_latest",
    "encode",
    "frame_topic",
    "generate_keypair",
    "pack_array",
    "recv_any",
    "shutdown",
    "status_topic",
    "unpack_array",
]
