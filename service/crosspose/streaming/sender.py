"""The live VMC sender: one bundle per solved frame to every configured target (VMC over OSC/UDP).

It runs where the skeleton is published (the solver stage, right after the ``skeleton.`` message
leaves), so a frame reaches the engines within a fraction of a millisecond of its websocket
publication time ``t_publish_ns``; it never blocks (non-blocking UDP, see :mod:`.transport`).

Several performers: each target follows one person (``persons``: a performer id, or None for the
lowest live id — the one performer of a single-person capture). :meth:`VmcSender.send_persons` sends
every target its person's bundle, a status-only bundle (``/VMC/Ext/OK`` loaded 0) while that person is
not tracked; targets that follow the same person share one encoded bundle.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crosspose.streaming.transport import UdpFanout, UdpTarget, parse_target
from crosspose.streaming.vmc import CALIBRATION_WAITING, DEFAULT_PORT, RootMode, VmcEncoder

log = logging.getLogger(__name__)
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class VmcFrame:
    """One performer's frame for VMC: ``root (3,)`` pelvis, right-handed Y-up metres; ``rotations (B, 4)``
    local ``(w, x, y, z)``; ``offsets (B, 3)`` rest offsets, Y-up metres; ``tracking``: the pelvis is seen.
    Any array None: a status-only bundle (rest pose not known yet)."""

    root: np.ndarray | None
    rotations: np.ndarray | None
    offsets: np.ndarray | None
    tracking: bool = True


class VmcSender:
    """VMC bundles to several targets.

    Args:
        targets: ``"host:port"`` strings (port defaults to 39539).
        unity_bones: ``B`` Unity ``HumanBodyBones`` names in the order of the rotations (Hips first).
        rate_hz: at most this many bundles per second (0: every frame); frames in between are skipped
            and counted.
        root_mode: see :class:`~crosspose.streaming.vmc.VmcEncoder`.
        diagnostics: add ``/crosspose/frame (seq, t_publish_ns, t_send_ns)`` to each bundle (benchmarks).
        persons: the performer each target follows, in the order of ``targets`` (an id, or None: the
            lowest live id); None: every target follows the lowest live id.
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
        persons: Sequence[int | None] | None = None,
    ) -> None:
        if rate_hz < 0:
            raise ValueError(f"rate_hz must be >= 0 (0 = every frame), got {rate_hz}")
        follows = [None] * len(targets) if persons is None else list(persons)
        if len(follows) != len(targets):
            raise ValueError(f"{len(targets)} targets but {len(follows)} persons to follow")
        self.encoder = VmcEncoder(unity_bones, root_mode)
        parsed = [parse_target(t, default_port) for t in targets]
        self.fanout = UdpFanout(parsed)  # every target, in the configured order
        self.persons = follows
        self.routes: dict[int | None, list[UdpTarget]] = {}
        for person, target in zip(follows, self.fanout.targets, strict=True):
            self.routes.setdefault(person, []).append(target)
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
        """Send one frame to every target (one performer, whatever person a target follows); returns the
        number of targets it left for (0 when skipped by the rate).

        Args:
            seq: the skeleton message's ``seq``; t_publish_ns: its ``t_publish_ns`` (host monotonic).
            root: ``(3,)`` pelvis, right-handed Y-up metres; rotations: ``(B, 4)`` local ``(w, x, y, z)``;
            offsets: ``(B, 3)`` rest offsets, Y-up metres. Any of them None (rest pose not known yet, or
                the performer lost): a status-only bundle (``/VMC/Ext/OK`` loaded 0, ``/VMC/Ext/T``).
        """
        now = time.monotonic_ns()
        if not self._due(now):
            return 0
        bundle = self._bundle(seq, t_publish_ns, (now - self._t0_ns) / 1e9,
                              VmcFrame(root, rotations, offsets, tracking))
        sent = self.fanout.send(bundle)
        self.bundles += 1
        self.delays_ms.append((time.monotonic_ns() - t_publish_ns) / 1e6)
        return sent

    def send_persons(self, seq: int, t_publish_ns: int, frames: Mapping[int, VmcFrame | None]) -> int:
        """Send one frame set of several performers: each target gets the bundle of the person it follows
        (``frames`` by performer id: every person tracked in this set, None where its rotations are not
        known yet); a person not in ``frames`` gets its targets a status-only bundle. Returns the number
        of targets a bundle left for (0 when the rate skipped the frame)."""
        now = time.monotonic_ns()
        if not self._due(now):
            return 0
        time_s = (now - self._t0_ns) / 1e9
        lowest = min(frames) if frames else None
        bundles: dict[int | None, bytes] = {}  # by the person followed: one encoding each
        sent = 0
        for person, targets in self.routes.items():
            who = lowest if person is None else person
            if who not in bundles:
                frame = frames.get(who) if who is not None else None
                bundles[who] = self._bundle(seq, t_publish_ns, time_s, frame)
            sent += sum(t.send(bundles[who]) for t in targets)
        self.bundles += 1
        self.delays_ms.append((time.monotonic_ns() - t_publish_ns) / 1e6)
        return sent

    def _bundle(self, seq: int, t_publish_ns: int, time_s: float, frame: VmcFrame | None) -> bytes:
        root = None if frame is None else frame.root
        if frame is None or root is None or frame.rotations is None or frame.offsets is None or (
            not np.isfinite(root).all()
        ):
            return self.encoder.status_bundle(time_s, CALIBRATION_WAITING if root is None else 3)
        rotations = np.asarray(frame.rotations, dtype=np.float64)
        bad = np.asarray(~np.isfinite(rotations).all(axis=-1), dtype=bool)
        if bad.any():
            self.nonfinite += int(bad.sum())
            rotations = np.where(bad[:, None], _IDENTITY, rotations)
        offsets = np.nan_to_num(np.asarray(frame.offsets, dtype=np.float64))
        diag = None
        if self.diagnostics:
            diag = (int(seq) & 0x7FFFFFFF, int(t_publish_ns), time.monotonic_ns())
        return self.encoder.frame_bundle(root, rotations, offsets, time_s, frame.tracking, diag)

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
            "targets": [
                {**t, "person": p} for t, p in zip(self.fanout.snapshot(), self.persons, strict=True)
            ],
        }

    def close(self) -> None:
        self.fanout.close()
