"""Messages between the inference, solver and API stages (headers as plain dicts; the bus encodes them).

* ``heatmaps.`` — one per solved frame set: header with the frame set's identity and timings plus
  array metadata; buffers ``[heatmaps (C, J, h, w) float16, projections (C, 3, 4) float32]``.
  A missing view is all-zero heatmaps and a NaN projection (DESIGN §4: never a shorter array).
* ``skeleton.`` — the websocket message of DESIGN §5 itself (the API forwards it unchanged).
* ``control.calibration.updated.`` — the accepted rig as crosspose JSON, with version and hash.
* ``preview.<camera>.`` — a few times a second, a small JPEG of each camera with the reprojected
  pose and the crop square (header = the viewer's preview metadata; buffer = the JPEG).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crosspose.bus import pack_array, unpack_array
from crosspose.solver import Pose3D

SCHEMA = 1
PREVIEW = b"preview."


def _cast(a: np.ndarray, dtype: type[np.floating[Any]]) -> np.ndarray:
    """``a`` as a new C-contiguous array of ``dtype``, converted by torch: numpy's float16 casts are
    scalar loops (3.8 ms float32 → float16 and 1.8 ms back for 8 views' heatmaps, against 0.26 / 0.21 ms)."""
    out = np.empty(a.shape, dtype=dtype)
    with warnings.catch_warnings():  # a read-only source (a bus buffer) is only read
        warnings.simplefilter("ignore", UserWarning)
        torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return out


def preview_topic(camera: str) -> bytes:
    """``preview.<camera>.``: the inference stage's small JPEG of a camera (on the status link)."""
    return PREVIEW + camera.encode() + b"."


def heatmaps_message(
    *,
    seq: int,
    t_capture_ns: int,
    cameras: Sequence[str],
    present: Sequence[bool],
    heatmaps: np.ndarray,
    projections: np.ndarray,
    latency_ms: Mapping[str, float],
    calibration_version: int | None,
    backend: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Header and buffers of one ``heatmaps.`` message.

    Args:
        heatmaps: ``(C, J, h, w)`` in [0, 1]; projections: ``(C, 3, 4)`` world metres → heatmap pixels.
        latency_ms: stage latencies so far (``sync``, ``inference``), milliseconds.
    """
    c = len(cameras)
    if heatmaps.ndim != 4 or heatmaps.shape[0] != c or projections.shape != (c, 3, 4):
        raise ValueError(
            f"heatmaps (C, J, h, w) and projections (C, 3, 4) for C = {c} cameras, got "
            f"{heatmaps.shape} and {projections.shape}"
        )
    hm_meta, hm_buf = pack_array(_cast(heatmaps, np.float16))
    p_meta, p_buf = pack_array(np.ascontiguousarray(projections, dtype=np.float32))
    header: dict[str, Any] = {
        "v": SCHEMA,
        "type": "heatmaps",
        "seq": int(seq),
        "t_capture_ns": int(t_capture_ns),
        "cameras": list(cameras),
        "present": [bool(p) for p in present],
        "heatmaps": hm_meta,
        "projections": p_meta,
        "latency_ms": dict(latency_ms),
        "calibration_version": calibration_version,
        "backend": backend,
    }
    if extra:
        header.update(extra)
    return header, [hm_buf, p_buf]


def read_heatmaps(header: Mapping[str, Any], buffers: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(heatmaps (C, J, h, w) float32, projections (C, 3, 4) float32)`` of a ``heatmaps.`` message."""
    if header.get("type") != "heatmaps" or len(buffers) != 2:
        raise ValueError("not a heatmaps message (type 'heatmaps' with two buffers)")
    heatmaps = _cast(unpack_array(header["heatmaps"], buffers[0]), np.float32)
    projections = unpack_array(header["projections"], buffers[1]).astype(np.float32)
    c = len(header["cameras"])
    if heatmaps.ndim != 4 or heatmaps.shape[0] != c or projections.shape != (c, 3, 4):
        raise ValueError(
            f"heatmaps message arrays do not match its {c} cameras: {heatmaps.shape}, {projections.shape}"
        )
    return heatmaps, projections


def _finite(x: float, digits: int) -> float | None:
    return round(float(x), digits) if math.isfinite(x) else None


def skeleton_message(
    pose: Pose3D,
    *,
    seq: int,
    t_capture_ns: int,
    cameras: Sequence[str],
    latency_ms: Mapping[str, float],
    t_publish_ns: int | None = None,
    calibration_version: int | None = None,
) -> dict[str, Any]:
    """The DESIGN §5 websocket message of one solved frame.

    ``joints`` are ``[x, y, z, confidence]`` in metres (0.1 mm precision; ``null`` for a non-finite
    value), ``views`` the number of cameras supporting each joint. ``latency_ms.total`` is capture →
    publish on the host monotonic clock. Extra keys (``mode``, ``cameras``, ``calibration_version``) are
    additions to the contract, not changes.
    """
    now = time.monotonic_ns() if t_publish_ns is None else t_publish_ns
    joints = [
        [_finite(x, 4), _finite(y, 4), _finite(z, 4), _finite(c, 3)]
        for (x, y, z), c in zip(pose.joints.tolist(), pose.confidence.tolist(), strict=True)
    ]
    latency = {k: round(float(v), 2) for k, v in latency_ms.items()}
    latency["total"] = round((now - t_capture_ns) / 1e6, 2)
    return {
        "v": SCHEMA,
        "type": "skeleton",
        "seq": int(seq),
        "t_capture_ns": int(t_capture_ns),
        "t_publish_ns": int(now),
        "skeleton": pose.skeleton,
        "units": "m",
        "joints": joints,
        "views": [int(v) for v in pose.views.tolist()],
        "latency_ms": latency,
        "mode": pose.mode,
        "cameras": list(cameras),
        "calibration_version": calibration_version,
    }


def rotations_payload(
    bones: Sequence[str],
    unity_bones: Sequence[str],
    parents: Sequence[int],
    rest_offsets: np.ndarray,
    root: np.ndarray,
    rotations: np.ndarray,
) -> dict[str, Any]:
    """The skeleton message's optional ``rotations`` key (websocket clients with ``?rotations=true``).

    Self-contained in EVERY message (bone names, hierarchy and the rest pose's offsets included, about
    1 KB of JSON), so a client can join at any time and the rest pose may be re-estimated (a new
    performer) without a separate channel::

        {"frame": "y_up_rh", "units": "m",
         "bones": ["hips", …], "unity": ["Hips", …], "parents": [-1, 0, …],
         "rest_offsets": [[x, y, z], …],   # each bone's head from its parent's head, T-pose (m)
         "root": [x, y, z],                # the pelvis (m)
         "local": [[w, x, y, z], …]}       # local rotations relative to the T-pose, unit quaternions

    Frame ``y_up_rh``: right-handed, Y up, metres; the T-pose faces +Z with the subject's left arm along
    +X (our Z-up world ``(x, y, z)`` is ``(y, z, x)`` there). World rotation of a bone = the product of
    its ancestors' local rotations and its own (parents first).
    """
    b = len(bones)
    rest_offsets = np.asarray(rest_offsets, dtype=np.float64)
    rotations = np.asarray(rotations, dtype=np.float64)
    if rest_offsets.shape != (b, 3) or rotations.shape != (b, 4) or np.shape(root) != (3,):
        raise ValueError(
            f"rotations payload for {b} bones needs rest_offsets ({b}, 3), rotations ({b}, 4), root (3,); "
            f"got {rest_offsets.shape}, {rotations.shape}, {np.shape(root)}"
        )
    return {
        "frame": "y_up_rh",
        "units": "m",
        "bones": list(bones),
        "unity": list(unity_bones),
        "parents": [int(p) for p in parents],
        "rest_offsets": [[_finite(v, 4) for v in row] for row in rest_offsets.tolist()],
        "root": [_finite(v, 4) for v in np.asarray(root, dtype=np.float64).tolist()],
        "local": [[_finite(v, 6) for v in row] for row in rotations.tolist()],
    }


def calibration_message(version: int, sha256: str, rig_json: str) -> dict[str, Any]:
    """``control.calibration.updated.``: the new active rig (crosspose JSON text)."""
    return {"v": SCHEMA, "type": "calibration", "version": int(version), "sha256": sha256, "rig": rig_json}
