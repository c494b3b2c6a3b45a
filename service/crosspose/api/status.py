"""The service's health as the API sees it: the latest heartbeat of every pipeline stage. Thread-safe.

Stages report with ``StatusBoard.update(stage, payload)``; the keys each stage sends (all optional,
anything else is kept but ignored, and values of the wrong type are ignored rather than trusted):

- ``grabber.<camera>``: ``fps`` (float), ``frames`` (int), ``drops`` (int, frames the grabber lost),
  ``state`` (``"up"``/``"down"``/``"reconnecting"``), ``frame_age_ms`` (age of its latest frame when
  the heartbeat was sent).
- ``sync``: ``fps``, ``framesets`` (int), ``drops`` ({camera: frame sets the camera was missing from}),
  ``skew_ms`` ({camera: capture-time offset from the frame set's reference, ms}), ``stale`` (int).
- ``inference``: ``provider`` (the ONNX Runtime provider that actually runs), ``fps``, ``drops`` (int).
- ``solver``: ``fps``, ``drops`` (int).
- every stage but the grabbers: ``input_drops``, the input it dropped since it started, as
  ``{source: {reason: count}}`` (:mod:`crosspose.bus.drops`; sync's sources are its cameras and
  ``other``). Read through :meth:`StatusBoard.input_drops`, which keeps only string sources, known
  reasons and non-negative integer counts.

A stage is alive when its last heartbeat is younger than ``heartbeat_timeout_s``; a camera whose
grabber is not alive is ``down`` whatever it last said.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

CameraState = Literal["up", "down", "reconnecting"]
CORE_STAGES: tuple[str, ...] = ("sync", "inference", "solver")
DROP_REASONS: tuple[str, ...] = ("malformed", "stale", "future", "foreign", "oversize", "busy")
"""The reasons a stage counts input drops by (``crosspose.bus.DROP_REASONS``; the API does not import
the bus)."""
_MAX_DROP_SOURCES = 64  # a stage's sources are its cameras and a few inputs; more is not a heartbeat of ours
_MAX_COUNT = 2**53  # an exact float: larger is not a count a stage could have reached


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _count(x: Any) -> int | None:
    """A heartbeat's counter as an int, or None when it is not a non-negative integer of sane size."""
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= _MAX_COUNT:
        return None
    return x


def drop_counts(value: Any) -> dict[str, int]:
    """``{reason: count}`` of a heartbeat's map, keeping known reasons with valid counts only."""
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for reason in DROP_REASONS:
        n = _count(value.get(reason))
        if n:
            out[reason] = n
    return out


@dataclass(frozen=True)
class CameraStatus:
    """One camera as the API reports it (``GET /api/v1/cameras``).

    Attributes:
        name: configured camera name.
        state: ``up``, ``down`` (no heartbeat or the grabber says so) or ``reconnecting``.
        fps: frames per second the grabber delivers (None before its first heartbeat).
        drops: frames the grabber lost.
        sync_drops: frame sets this camera was missing from.
        input_drops: frames and grabber heartbeats of this camera sync dropped, by reason.
        skew_ms: capture-time offset from the frame set's reference (sync's latest report).
        last_frame_age_s: age of the camera's latest frame now (None when unknown).
        heartbeat_age_s: seconds since its grabber's last heartbeat (None: never heard of).
    """

    name: str
    state: CameraState
    fps: float | None
    drops: int
    sync_drops: int
    input_drops: dict[str, int]
    skew_ms: float | None
    last_frame_age_s: float | None
    heartbeat_age_s: float | None


@dataclass(frozen=True)
class Readiness:
    """``ready``: every configured stage heartbeating; ``reasons`` say why not; ages in seconds."""

    ready: bool
    reasons: list[str]
    provider: str | None
    heartbeat_age_s: dict[str, float | None]


class StatusBoard:
    """Latest heartbeat per stage (module docstring).

    Args:
        cameras: configured camera names, in rig order.
        stages: the stages that must heartbeat; default ``grabber.<camera>`` for each camera plus
            ``sync``, ``inference``, ``solver``.
        heartbeat_timeout_s: a stage silent for longer is not alive.
    """

    def __init__(
        self, cameras: Sequence[str], stages: Sequence[str] | None = None, heartbeat_timeout_s: float = 2.0
    ) -> None:
        self.camera_names = list(cameras)
        self.stages = (
            list(stages) if stages is not None else [f"grabber.{c}" for c in cameras] + list(CORE_STAGES)
        )
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, dict[str, Any]]] = {}
        self.unknown_updates = 0

    def update(self, stage: str, payload: Mapping[str, Any], now_ns: int | None = None) -> None:
        """Record a stage's heartbeat (any thread). ``now_ns``: ``time.monotonic_ns()`` by default."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            if stage not in self.stages:
                self.unknown_updates += 1
                return
            self._latest[stage] = (now_ns, dict(payload))

    def snapshot(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """``{stage: (heartbeat time ns, payload)}`` of the stages heard from."""
        with self._lock:
            return dict(self._latest)

    def heartbeat_ages(self, now_ns: int | None = None) -> dict[str, float | None]:
        """Seconds since each configured stage's last heartbeat (None: never)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latest = self.snapshot()
        return {s: ((now_ns - latest[s][0]) / 1e9 if s in latest else None) for s in self.stages}

    def provider(self) -> str | None:
        """The ONNX Runtime provider the inference stage last reported."""
        entry = self.snapshot().get("inference")
        value = entry[1].get("provider") if entry else None
        return str(value) if value is not None else None

    def ready(self, now_ns: int | None = None) -> Readiness:
        """Every configured stage heartbeating within the timeout, and a provider reported."""
        ages = self.heartbeat_ages(now_ns)
        reasons = []
        for stage, age in ages.items():
            if age is None:
                reasons.append(f"{stage}: no heartbeat yet")
            elif age > self.heartbeat_timeout_s:
                reasons.append(
                    f"{stage}: last heartbeat {age:.1f} s ago (timeout {self.heartbeat_timeout_s:g} s)"
                )
        provider = self.provider()
        if "inference" in self.stages and ages.get("inference") is not None and provider is None:
            reasons.append("inference: has not reported its ONNX Runtime provider")
        return Readiness(not reasons, reasons, provider, ages)

    def stage_value(self, stage: str, key: str) -> float | None:
        entry = self.snapshot().get(stage)
        return _number(entry[1].get(key)) if entry else None

    def cameras(self, now_ns: int | None = None) -> list[CameraStatus]:
        """Per-camera state, rates, drops, skew and frame age, in rig order."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latest = self.snapshot()
        sync = latest.get("sync", (0, {}))[1]
        skews: Mapping[str, Any] = sync["skew_ms"] if isinstance(sync.get("skew_ms"), Mapping) else {}
        sync_drops: Mapping[str, Any] = sync["drops"] if isinstance(sync.get("drops"), Mapping) else {}
        sync_input = self.input_drops(latest).get("sync", {})
        out = []
        for name in self.camera_names:
            entry = latest.get(f"grabber.{name}")
            age = (now_ns - entry[0]) / 1e9 if entry else None
            payload = entry[1] if entry else {}
            said = payload.get("state", "up")
            state: CameraState
            if age is None or age > self.heartbeat_timeout_s:
                state = "down"
            else:
                state = said if said in ("up", "down", "reconnecting") else "up"
            frame_age_ms = _number(payload.get("frame_age_ms"))
            out.append(
                CameraStatus(
                    name=name,
                    state=state,
                    # A camera that is not up delivers nothing, whatever rate it reported last.
                    fps=_number(payload.get("fps")) if state == "up" else 0.0,
                    drops=int(_number(payload.get("drops")) or 0),
                    sync_drops=int(_number(sync_drops.get(name)) or 0),
                    input_drops=sync_input.get(name, {}),
                    skew_ms=_number(skews.get(name)),
                    last_frame_age_s=(
                        frame_age_ms / 1000 + age if frame_age_ms is not None and age is not None else None
                    ),
                    heartbeat_age_s=age,
                )
            )
        return out

    def input_drops(
        self, latest: Mapping[str, tuple[int, Mapping[str, Any]]] | None = None
    ) -> dict[str, dict[str, dict[str, int]]]:
        """``{stage: {source: {reason: count}}}`` from the stages' ``input_drops`` (module docstring);
        what is not a string source (at most 64 a stage) with known reasons and valid counts is left out."""
        latest = self.snapshot() if latest is None else latest
        out: dict[str, dict[str, dict[str, int]]] = {}
        for stage in self.stages:
            if stage.startswith("grabber.") or stage not in latest:
                continue
            value = latest[stage][1].get("input_drops")
            if not isinstance(value, Mapping):
                continue
            sources = {}
            for source, counts in list(value.items())[:_MAX_DROP_SOURCES]:
                if isinstance(source, str) and (by_reason := drop_counts(counts)):
                    sources[source[:64]] = by_reason
            if sources:
                out[stage] = sources
        return out

    def stage_drops(self) -> dict[str, int]:
        """Drops each non-grabber stage reports (sync: summed over cameras)."""
        latest = self.snapshot()
        out = {}
        for stage in self.stages:
            if stage.startswith("grabber.") or stage not in latest:
                continue
            value = latest[stage][1].get("drops")
            if isinstance(value, Mapping):
                out[stage] = int(sum(_number(v) or 0 for v in value.values()))
            else:
                out[stage] = int(_number(value) or 0)
        return out
