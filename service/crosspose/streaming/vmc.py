"""VMC protocol frames (Virtual Motion Capture Protocol, "Performer → Marionette") encoded as OSC bundles.

What VSeeFace, VirtualMotionCapture, EVMC4U (Unity), VMC4UE (Unreal) and VMC4B (Blender) receive on
UDP port 39539 (https://protocol.vmc.info/english). One bundle per solved frame, time tag
"immediately", holding in this order:

* ``/VMC/Ext/OK (int){loaded} (int){calibration state} (int){calibration mode} (int){tracking status}``
  (the v2.7 form; receivers that know only v2.0/v2.5 ignore the extra arguments as the spec asks):
  ``loaded`` 1 once bones are sent; calibration state 3 (calibrated) once the performer's rest pose is
  known, 1 (waiting for calibrating) before; mode 0 (normal); tracking 1 when the frame is solved.
* ``/VMC/Ext/T (float){time}``: seconds since the sender started.
* ``/VMC/Ext/Root/Pos (string)"root" (float)p.x p.y p.z (float)q.x q.y q.z q.w``: the model root.
* one ``/VMC/Ext/Bone/Pos (string){HumanBodyBones name} (float)p.x p.y p.z q.x q.y q.z q.w`` per bone:
  the bone's LOCAL position (its offset from its parent, metres) and LOCAL rotation relative to the
  humanoid T-pose (what a VRM-normalised avatar's bone ``localRotation`` is).
* optionally (``diagnostics``) ``/crosspose/frame (int){seq} (int64){t_publish_ns} (int64){t_send_ns}``:
  an address no VMC receiver knows (the spec says unknown addresses are ignored), for latency benchmarks.

Every float is an OSC float32 (big-endian), every string UTF-8, NUL-terminated and padded to 4 bytes.

Coordinates: our motion frame (``crosspose.motion``) is right-handed, Y-up, metres, performer's rest
pose facing +Z with its left hand on +X. Unity is left-handed, Y-up, +Z forward, +X right: a humanoid
facing +Z has its right hand on +X. The conversion is the mirror ``M = diag(-1, 1, 1)`` (negate X):

* position ``(x, y, z) → (-x, y, z)``;
* rotation ``R → M R M``; as a quaternion ``(w, x, y, z) → (w, x, -y, -z)``, sent as
  ``(q.x, q.y, q.z, q.w) = (x, -y, -z, w)``. (A mirror keeps the rotation angle's axis component
  along the mirror normal and flips the two in the mirror plane; the left-handed reading of the same
  numbers then turns the right way.) Example: a 90° turn about +Y in our frame (``+Z → +X``, the
  performer turning to its left) is Unity's ``Quaternion.Euler(0, -90, 0)`` = ``(0, -0.7071, 0, 0.7071)``
  (``+Z → -X`` in Unity, the same physical turn).

The same mirror applies to every local quantity (offsets, local rotations), because it commutes
with the hierarchy: ``M (R_parent R_child) M = (M R_parent M)(M R_child M)``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Literal

import numpy as np

BONE_ADDRESS = "/VMC/Ext/Bone/Pos"
ROOT_ADDRESS = "/VMC/Ext/Root/Pos"
OK_ADDRESS = "/VMC/Ext/OK"
TIME_ADDRESS = "/VMC/Ext/T"
DIAGNOSTICS_ADDRESS = "/crosspose/frame"
DEFAULT_PORT = 39539
"""The port VMC receivers (Marionettes) listen on by default."""

CALIBRATION_WAITING = 1
CALIBRATION_DONE = 3

RootMode = Literal["pelvis", "floor"]
_IMMEDIATELY = struct.pack(">II", 0, 1)
_MIRROR_X = np.array([-1.0, 1.0, 1.0])


def to_unity_position(p: np.ndarray) -> np.ndarray:
    """``(..., 3)`` right-handed Y-up metres → Unity's left-handed Y-up: ``(-x, y, z)`` (module doc)."""
    p = np.asarray(p, dtype=np.float64)
    if p.shape[-1:] != (3,):
        raise ValueError(f"positions must have shape (..., 3), got {p.shape}")
    return p * _MIRROR_X


def to_unity_quaternion(q_wxyz: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions ``(w, x, y, z)`` in our right-handed Y-up frame → Unity's
    ``(x, y, z, w)`` in its left-handed Y-up frame: ``(x, -y, -z, w)`` (module doc)."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternions must have shape (..., 4) as (w, x, y, z), got {q.shape}")
    return np.stack([q[..., 1], -q[..., 2], -q[..., 3], q[..., 0]], axis=-1)


def osc_string(text: str) -> bytes:
    """An OSC string: UTF-8, NUL-terminated, padded with NULs to a multiple of 4 bytes."""
    raw = text.encode("utf-8")
    return raw + b"\0" * (4 - len(raw) % 4)


def _element(content: bytes) -> bytes:
    return struct.pack(">i", len(content)) + content


class VmcEncoder:
    """Encodes one VMC bundle per frame for a fixed list of Unity bones (fast: the constant parts of
    each message are built once; the per-frame floats are one numpy big-endian conversion).

    Args:
        unity_bones: ``B`` Unity ``HumanBodyBones`` names in our bone order; index 0 is ``Hips``.
        root_mode: where the model root goes. ``"pelvis"``: the root at the pelvis, ``Hips`` at local
            position zero (receivers that apply the root transform and bone positions, e.g. EVMC4U's
            defaults, put the hips at the pelvis). ``"floor"``: the root on the floor under the pelvis
            (``y = 0``), ``Hips`` at ``(0, pelvis height, 0)`` below it (also right for receivers that
            apply the root but ignore bone positions).
    """

    def __init__(self, unity_bones: Sequence[str], root_mode: RootMode = "pelvis") -> None:
        if not unity_bones:
            raise ValueError("VmcEncoder needs at least one bone (Hips first)")
        if root_mode not in ("pelvis", "floor"):
            raise ValueError(f"root_mode must be 'pelvis' or 'floor', got {root_mode!r}")
        self.unity_bones = tuple(unity_bones)
        self.root_mode: RootMode = root_mode
        head = osc_string(BONE_ADDRESS) + osc_string(",sfffffff")
        self._bone_heads = [
            struct.pack(">i", len(head) + len(osc_string(n)) + 28) + head + osc_string(n)
            for n in self.unity_bones
        ]
        root_head = osc_string(ROOT_ADDRESS) + osc_string(",sfffffff") + osc_string("root")
        self._root_head = struct.pack(">i", len(root_head) + 28) + root_head
        self._ok_head = osc_string(OK_ADDRESS) + osc_string(",iiii")
        self._time_head = osc_string(TIME_ADDRESS) + osc_string(",f")
        self._diag_head = osc_string(DIAGNOSTICS_ADDRESS) + osc_string(",ihh")

    def status_bundle(self, time_s: float, calibration_state: int = CALIBRATION_WAITING) -> bytes:
        """A bundle with only ``/VMC/Ext/OK`` (loaded 0: no bones yet) and ``/VMC/Ext/T``."""
        return b"#bundle\0" + _IMMEDIATELY + self._ok_and_time(0, calibration_state, 0, time_s)

    def _ok_and_time(self, loaded: int, calibration: int, tracking: int, time_s: float) -> bytes:
        ok = self._ok_head + struct.pack(">iiii", loaded, calibration, 0, tracking)
        t = self._time_head + struct.pack(">f", time_s)
        return _element(ok) + _element(t)

    def frame_bundle(
        self,
        root: np.ndarray,
        rotations: np.ndarray,
        offsets: np.ndarray,
        time_s: float,
        tracking: bool = True,
        diagnostics: tuple[int, int, int] | None = None,
    ) -> bytes:
        """One frame's bundle.

        Args:
            root: ``(3,)`` pelvis position, right-handed Y-up metres.
            rotations: ``(B, 4)`` local unit quaternions ``(w, x, y, z)`` relative to the T-pose, our frame.
            offsets: ``(B, 3)`` rest-pose offset of each bone's head from its parent's (Y-up metres;
                row 0, the hips, is not used: the root mode decides the hips' local position).
            time_s: the sender's relative time (``/VMC/Ext/T``).
            tracking: the v2.7 tracking-status flag.
            diagnostics: ``(seq, t_publish_ns, t_send_ns)`` to add ``/crosspose/frame``; None: not sent.
        """
        b = len(self.unity_bones)
        rotations = np.asarray(rotations, dtype=np.float64)
        offsets = np.asarray(offsets, dtype=np.float64)
        root = np.asarray(root, dtype=np.float64)
        if rotations.shape != (b, 4) or offsets.shape != (b, 3) or root.shape != (3,):
            raise ValueError(
                f"expected root (3,), rotations ({b}, 4) and offsets ({b}, 3), got {root.shape}, "
                f"{rotations.shape}, {offsets.shape}"
            )
        floats = np.empty((b + 1, 7), dtype=np.float64)
        local = offsets.copy()
        root_pos = root.copy()
        if self.root_mode == "floor":
            root_pos[1] = 0.0
            local[0] = (0.0, root[1], 0.0)
        else:
            local[0] = 0.0
        floats[0, :3] = to_unity_position(root_pos)
        floats[0, 3:] = (0.0, 0.0, 0.0, 1.0)
        floats[1:, :3] = to_unity_position(local)
        floats[1:, 3:] = to_unity_quaternion(rotations)
        packed = floats.astype(">f4").tobytes()
        parts = [
            b"#bundle\0",
            _IMMEDIATELY,
            self._ok_and_time(1, CALIBRATION_DONE, int(tracking), time_s),
            self._root_head,
            packed[:28],
        ]
        for i, head in enumerate(self._bone_heads):
            parts.append(head)
            parts.append(packed[28 * (i + 1) : 28 * (i + 2)])
        if diagnostics is not None:
            parts.append(_element(self._diag_head + struct.pack(">iqq", *diagnostics)))
        return b"".join(parts)
