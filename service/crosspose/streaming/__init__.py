"""Live streaming of solved skeletons into engines: VMC protocol over OSC/UDP (:mod:`.vmc`).

Only numpy and the standard library: no zmq, FastAPI or pydantic here (DESIGN §3 layering); the
solver stage wires it to the bus and the config.
"""

from crosspose.streaming.sender import VmcSender
from crosspose.streaming.transport import TargetStats, UdpFanout, UdpTarget, parse_target
from crosspose.streaming.vmc import (
    BONE_ADDRESS,
    DEFAULT_PORT,
    DIAGNOSTICS_ADDRESS,
    OK_ADDRESS,
    ROOT_ADDRESS,
    TIME_ADDRESS,
    VmcEncoder,
    to_unity_position,
    to_unity_quaternion,
)

__all__ = [
    "BONE_ADDRESS",
    "DEFAULT_PORT",
    "DIAGNOSTICS_ADDRESS",
    "OK_ADDRESS",
    "ROOT_ADDRESS",
    "TIME_ADDRESS",
    "TargetStats",
    "UdpFanout",
    "UdpTarget",
    "VmcEncoder",
    "VmcSender",
    "parse_target",
    "to_unity_position",
    "to_unity_quaternion",
]
