"""The live VMC sender: one bundle per solved frame to every configured target (VMC over OSC/UDP).

It runs where the skeleton is published (the solver stage, right after the ``skeleton.`` message
leaves), so a frame reaches the engines within a fraction of a millisecond of its websocket
publication time ``t_publish_ns``; it never blocks (non-blocking UDP, see :mod:`.transport`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from crosspose.streaming.transport import UdpFanout, parse_target
from crosspose.streaming.vmc import CALIBRATION_WAITING, DEFAULT_PORT, RootMode, VmcEncoder

log = logging.getLogger(__name__)
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


class VmcSender:
    """VMC bundles to several targets.

    Args:
        targets: ``"host:port"`` strings (port defaults to 39539).
        unity_bones: ``B`` Unity ``HumanBodyBones`` names in the order of the rotations (Hips first).
        rate_hz: at most this many bundles per second (0: every frame); frames in between are skipped
            and counted.
        root_mode: see :class:`~crosspose.streaming.vmc.VmcEncoder`.
        diagnostics: add ``/crosspose/frame (seq, t_publish_ns, t_send_ns)`` to each bundle (benchmarks).
    """

    def __init__(
        self,
        targets: Sequence[str],
        unity_bones: Sequence[str],
        *,
        rate_hz: float = 0.0,
        root_mode: RootMode = "pelvis",
        diagnostics: bool = False,
        default_port: int = DEFAULT_PORT,
    ) -> None:
        if rate_hz < 0:
            raise ValueError(f"rate_hz must be >= 0 (0 = every frame), got {rate_hz}")
        self.encoder = VmcEncoder(unity_bones, root_mode)
        self.fanout = UdpFanout([parse_target(t, default_port) for t in targets])
        self.min_interval_ns = int(1e9 / rate_hz) if rate_hz > 0 else 0
        self.diagnostics = diagnostics
        self._t0_ns = time.monotonic_ns()
        self._last_sent_ns: int | None = None
        self.frames = 0
        self.bundles = 0
        self.skipped_rate = 0
        self.nonfinite = 0
        self.delays_ms: collections.deque[float] = collections.deque(maxlen=1000)

    def _due(self, now_ns: int) -> bool:
        self.frames += 1
        last = self._last_sent_ns
        if self.min_interval_ns and last is not None and now_ns - last < self.min_interval_ns:
            self.skipped_rate += 1
            return False
        self._last_sent_ns = now_ns
        return True

    def send_frame(
        self,
        seq: int,
        t_publish_ns: int,
        root: np.ndarray | None,
        rotations: np.ndarray | None,
        offsets: np.ndarray | None,
        tracking: bool = True,
    ) -> int:
        """Send one frame; returns the number of targets it left for (0 when skipped by the rate).

        Args:
            seq: the skeleton message's ``seq``; t_publish_ns: its ``t_publish_ns`` (host monotonic).
            root: ``(3,)`` pelvis, right-handed Y-up metres; rotations: ``(B, 4)`` local ``(w, x, y, z)``;
            offsets: ``(B, 3)`` rest offsets, Y-up metres. Any of them None (rest pose not known yet, or
                the performer lost): a status-only bundle (``/VMC/Ext/OK`` loaded 0, ``/VMC/Ext/T``).
        """
        now = time.monotonic_ns()
        if not self._due(now):
            return 0
        time_s = (now - self._t0_ns) / 1e9
        if root is None or rotations is None or offsets is None or not np.isfinite(root).all():
            bundle = self.encoder.status_bundle(time_s, CALIBRATION_WAITING if root is None else 3)
        else:
            rotations = np.asarray(rotations, dtype=np.float64)
            bad = ~np.isfinite(rotations).all(axis=-1)
            if bad.any():
                self.nonfinite += int(bad.sum())
                rotations = np.where(bad[:, None], _IDENTITY, rotations)
            offsets = np.nan_to_num(np.asarray(offsets, dtype=np.float64))
            diag = None
            if self.diagnostics:
                diag = (int(seq) & 0x7FFFFFFF, int(t_publish_ns), time.monotonic_ns())
            bundle = self.encoder.frame_bundle(root, rotations, offsets, time_s, tracking, diag)
        sent = self.fanout.send(bundle)
        self.bundles += 1
        self.delays_ms.append((time.monotonic_ns() - t_publish_ns) / 1e6)
        return sent

    def stats(self) -> dict[str, Any]:
        """Counters for the stage heartbeat: frames, bundles, skips, per-target counters and the
        publish → send delay (ms, median and p99 over the last 1000 bundles)."""
        delays = np.asarray(self.delays_ms, dtype=np.float64)
        return {
            "frames": self.frames,
            "bundles": self.bundles,
            "skipped_rate": self.skipped_rate,
            "nonfinite_rotations": self.nonfinite,
            "send_delay_ms_p50": round(float(np.median(delays)), 3) if delays.size else None,
            "send_delay_ms_p99": round(float(np.percentile(delays, 99)), 3) if delays.size else None,
            "targets": self.fanout.snapshot(),
        }

    def close(self) -> None:
        self.fanout.close()
