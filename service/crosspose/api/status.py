"""The service's health as the API sees it: the latest heartbeat of every pipeline stage and of the
supervisor. Thread-safe.

Stages report with ``StatusBoard.update(stage, payload)``; the keys each stage sends (all optional,
anything else is kept but ignored; a value of the wrong type, not finite or beyond any plausible size is
ignored rather than trusted, so no status message can make a reader fail):

- ``grabber.<camera>``: ``fps`` (float), ``frames`` (int), ``drops`` (int, frames the grabber lost),
  ``state`` (``"up"``/``"down"``/``"reconnecting"``), ``frame_age_ms``.
- ``sync``: ``fps``, ``framesets`` (int), ``drops`` ({camera: frame sets the camera was missing from}),
  ``skew_ms`` ({camera: capture-time offset from the frame set's reference, ms}), ``stale`` (int),
  ``frames`` ({camera: {``received``: frames that reached sync, ``age_ms``: time since the last one
  arrived, by sync's clock, when sync sent the heartbeat, ``fps``: arrivals per second}}).
- ``inference`` (one worker) or ``inference.<k>`` (worker ``k`` of several): ``provider`` (the ONNX
  Runtime provider, or the runtime, that actually runs), ``fps``, ``drops`` (int), ``detector_runs``,
  ``detector_views``. What the API shows of inference is every worker's together
  (:meth:`StatusBoard.provider`, :meth:`StatusBoard.inference_total`).
- ``solver``: ``fps``, ``drops`` (int).
- every stage but the grabbers: ``input_drops``, the input it dropped since it started, as
  ``{source: {reason: count}}`` (:mod:`crosspose.bus.drops`; sync's sources are its cameras and
  ``other``). Read through :meth:`StatusBoard.input_drops`, which keeps only string sources, known
  reasons and non-negative integer counts.
- ``supervisor`` (not required for readiness): ``stages`` ({stage: {``restarts``, ``consecutive_exits``,
  ``crash_looping``, ``last_exit_code``, ``restart_in_s``}}).

A stage is alive when its last heartbeat is younger than ``heartbeat_timeout_s``. A camera's state comes
from the frames that reach sync, not from what its grabber says: it is ``up`` only while sync (alive)
receives its frames; a grabber that heartbeats "running" while none of its frames arrive (a frozen
process, a refused key, heartbeats forged onto the bus) shows its camera ``stale``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

CameraState = Literal["up", "stale", "reconnecting", "down"]
CORE_STAGES: tuple[str, ...] = ("sync", "inference", "solver")
DROP_REASONS: tuple[str, ...] = ("malformed", "stale", "future", "foreign", "oversize", "busy")
"""The reasons a stage counts input drops by (``crosspose.bus.DROP_REASONS``; the API does not import
the bus)."""
_MAX_DROP_SOURCES = 64  # a stage's sources are its cameras and a few inputs; more is not a heartbeat of ours
SUPERVISOR = "supervisor"
#: Largest counter believed (2**53: every smaller integer is exact as a float, and sums of a few stay finite).
MAX_COUNT = 2**53
#: Largest magnitude believed of any other number (rates, ages, skews).
MAX_VALUE = 1e12
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: What a runtime, device or precision may read as (``openvino``, ``CPUExecutionProvider``, ``cuda:0``,
#: ``bf16 backbone, f32 fusion``): anything else a heartbeat says there is not shown.
_WORD = re.compile(r"^[A-Za-z0-9_.:, -]{1,64}$")
MAX_SUPERVISED = 256


def is_inference(stage: str) -> bool:
    """Whether ``stage`` is the inference stage or one of its workers (``inference.<k>``)."""
    return stage == "inference" or stage.startswith("inference.")


def number_or_none(x: Any) -> float | None:
    """A plausible finite number, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    value = float(x)
    return value if math.isfinite(value) and abs(value) <= MAX_VALUE else None


def count_or_zero(x: Any) -> int:
    """A plausible counter (0 when it is not one)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return 0
    return int(x) if math.isfinite(x) and 0 <= x <= MAX_COUNT else 0


def _mapping(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _count(x: Any) -> int | None:
    """A heartbeat's counter as an int, or None when it is not a non-negative integer of sane size."""
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= MAX_COUNT:
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
        state: ``up`` (its frames reach sync), ``stale`` (its grabber heartbeats but no frame reaches
            sync), ``reconnecting`` (its grabber says so) or ``down`` (no frames and no grabber heartbeat,
            or the grabber says it is down).
        fps: frames per second that reach sync (0 when not up; None before sync's first report).
        drops: frames the grabber lost (as it reports them).
        sync_drops: frame sets this camera was missing from.
        input_drops: frames and grabber heartbeats of this camera sync dropped, by reason.
        skew_ms: capture-time offset from the frame set's reference (sync's latest report).
        last_frame_age_s: seconds since a frame of this camera last reached sync (None: none yet, or
            sync not heard from): while it is ``up``, as sync measured it at its latest heartbeat (at most
            ``heartbeat_timeout_s`` ago); otherwise that measurement plus the heartbeat's age (nothing of
            it has reached sync since, as far as the API knows).
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
    """``ready``: no reason not to be; ``reasons`` say why not; ages in seconds.

    ``skeleton_age_s`` and ``calibration_version`` are filled by :meth:`ServiceState.readiness`, which
    adds the skeleton stream and the calibration to the board's own reasons."""

    ready: bool
    reasons: list[str]
    provider: str | None
    heartbeat_age_s: dict[str, float | None]
    skeleton_age_s: float | None = None
    calibration_version: int | None = None
    runtime: InferenceRuntime | None = None


@dataclass(frozen=True)
class InferenceRuntime:
    """What runs the network, as the inference workers report it: the registry's ``runtime`` name, its
    ``device`` in the runtime's own words and the ``precision`` compiled; each joined by `` / `` where the
    workers differ (one restarted on another runtime shows)."""

    runtime: str
    device: str
    precision: str


@dataclass(frozen=True)
class StageRestarts:
    """What the supervisor says of one stage: ``restarts`` ever, ``consecutive`` exits without a stable
    run since, whether that is a crash loop, the last exit code and the seconds to its pending restart."""

    stage: str
    restarts: int
    consecutive: int
    crash_looping: bool
    last_exit_code: int | None
    restart_in_s: float | None


class StatusBoard:
    """Latest heartbeat per stage (module docstring).

    Args:
        cameras: configured camera names, in rig order.
        stages: the stages that must heartbeat; default ``grabber.<camera>`` for each camera plus
            ``sync``, ``inference``, ``solver``. The supervisor's heartbeat is always taken, never required.
        heartbeat_timeout_s: a stage silent for longer is not alive.
        frame_timeout_s: a camera none of whose frames reached sync for longer is not up (default: the
            heartbeat timeout).
    """

    def __init__(
        self,
        cameras: Sequence[str],
        stages: Sequence[str] | None = None,
        heartbeat_timeout_s: float = 2.0,
        frame_timeout_s: float | None = None,
    ) -> None:
        self.camera_names = list(cameras)
        self.stages = (
            list(stages) if stages is not None else [f"grabber.{c}" for c in cameras] + list(CORE_STAGES)
        )
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.frame_timeout_s = heartbeat_timeout_s if frame_timeout_s is None else frame_timeout_s
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, dict[str, Any]]] = {}
        self._restarts_seen: dict[str, int] = {}  # each stage's restarts in the supervisor's latest word
        self._exit_heard_ns: dict[str, int] = {}  # when the supervisor last said the stage's process exited
        self.unknown_updates = 0

    def update(self, stage: str, payload: Mapping[str, Any], now_ns: int | None = None) -> None:
        """Record a stage's heartbeat (any thread). ``now_ns``: ``time.monotonic_ns()`` by default."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            if stage not in self.stages and stage != SUPERVISOR:
                self.unknown_updates += 1
                return
            self._latest[stage] = (now_ns, dict(payload))
            if stage == SUPERVISOR:
                self._note_exits(payload, now_ns)

    def _note_exits(self, payload: Mapping[str, Any], now_ns: int) -> None:
        """Stages whose process the supervisor says exited (waiting for its restart, or restarted since its
        previous word): their heartbeats heard until now came from the dead process (lock held)."""
        for name, info in list(_mapping(payload.get("stages")).items())[:MAX_SUPERVISED]:
            if name not in self.stages or not isinstance(info, Mapping):
                continue
            restarts = count_or_zero(info.get("restarts"))
            before = self._restarts_seen.get(name)
            waiting = number_or_none(info.get("restart_in_s")) is not None
            if waiting or (before is not None and restarts > before):
                self._exit_heard_ns[name] = now_ns
            self._restarts_seen[name] = restarts

    def snapshot(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """``{stage: (heartbeat time ns, payload)}`` of the stages heard from since their process last
        (re)started: a heartbeat of a process the supervisor has since seen exit does not count (measured
        before: ``kill -9`` of an inference worker left ``/ready`` true for 0.7 s on the dead worker's last
        heartbeat while the new one loaded)."""
        with self._lock:
            return {s: e for s, e in self._latest.items() if e[0] > self._exit_heard_ns.get(s, -1)}

    def _fresh(self, stage: str, now_ns: int) -> dict[str, Any] | None:
        """The payload of ``stage`` when its heartbeat is within the timeout, else None."""
        entry = self.snapshot().get(stage)
        if entry is None or (now_ns - entry[0]) / 1e9 > self.heartbeat_timeout_s:
            return None
        return entry[1]

    def heartbeat_ages(self, now_ns: int | None = None) -> dict[str, float | None]:
        """Seconds since each configured stage's last heartbeat (None: never)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latest = self.snapshot()
        return {s: ((now_ns - latest[s][0]) / 1e9 if s in latest else None) for s in self.stages}

    def inference_stages(self) -> list[str]:
        """The configured inference stages: ``inference``, or its workers ``inference.<k>``."""
        return [s for s in self.stages if is_inference(s)]

    def _provider_of(self, stage: str) -> str | None:
        entry = self.snapshot().get(stage)
        value = entry[1].get("provider") if entry else None
        return value[:200] if isinstance(value, str) else None

    def runtime(self) -> InferenceRuntime | None:
        """The runtime, device and precision the inference workers last reported (None before any did)."""
        snapshot = self.snapshot()
        fields: dict[str, list[str]] = {"runtime": [], "device": [], "precision": []}
        for stage in self.inference_stages():
            entry = snapshot.get(stage)
            if entry is None:
                continue
            values = [entry[1].get(k) for k in fields]
            words = [v for v in values if isinstance(v, str) and _WORD.match(v)]
            if len(words) == len(fields):
                for key, word in zip(fields, words, strict=True):
                    fields[key].append(word)
        if not fields["runtime"]:
            return None
        return InferenceRuntime(**{k: " / ".join(dict.fromkeys(v)) for k, v in fields.items()})

    def provider(self) -> str | None:
        """The ONNX Runtime provider (or runtime) the inference workers last reported: the one they all
        run, or each different one joined by `` / `` (a worker restarted on another runtime shows)."""
        found = [p for s in self.inference_stages() if (p := self._provider_of(s)) is not None]
        return " / ".join(dict.fromkeys(found)) if found else None

    def inference_total(self, key: str) -> float | None:
        """A counter of the inference heartbeats (``detector_runs`` …) summed over the workers (None
        before any reported it)."""
        snapshot = self.snapshot()
        values = [number_or_none(snapshot[s][1].get(key)) for s in self.inference_stages() if s in snapshot]
        found = [v for v in values if v is not None]
        return sum(found) if found else None

    def restarts(self, now_ns: int | None = None) -> list[StageRestarts]:
        """Restarts per supervised stage, from the supervisor's latest heartbeat (empty before one)."""
        entry = self.snapshot().get(SUPERVISOR)
        stages = _mapping(entry[1].get("stages")) if entry else {}
        out = []
        for name, info in list(stages.items())[:MAX_SUPERVISED]:
            if not isinstance(name, str) or not _STAGE_NAME.match(name) or not isinstance(info, Mapping):
                continue
            code = info.get("last_exit_code")
            restart_in = number_or_none(info.get("restart_in_s"))
            out.append(
                StageRestarts(
                    stage=name,
                    restarts=count_or_zero(info.get("restarts")),
                    consecutive=count_or_zero(info.get("consecutive_exits")),
                    crash_looping=info.get("crash_looping") is True,
                    last_exit_code=code if isinstance(code, int) and not isinstance(code, bool)
                    and abs(code) < 1 << 31 else None,
                    restart_in_s=None if restart_in is None or restart_in < 0 else restart_in,
                )
            )
        return out

    def ready(self, now_ns: int | None = None) -> Readiness:
        """Every configured stage heartbeating within the timeout, a provider reported, every camera's
        frames reaching sync, and no stage crash-looping or waiting for its restart (the skeleton stream
        and the calibration: :meth:`crosspose.api.state.ServiceState.readiness`)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        ages = self.heartbeat_ages(now_ns)
        restarting = self._restart_reasons(now_ns)
        reasons = []
        for stage, age in ages.items():
            if stage in restarting:
                continue  # the supervisor's word on it says more than its silence
            if age is None:
                since = "since its process exited" if stage in self._exit_heard_ns else "yet"
                reasons.append(f"{stage}: no heartbeat {since}")
            elif age > self.heartbeat_timeout_s:
                reasons.append(
                    f"{stage}: last heartbeat {age:.1f} s ago (timeout {self.heartbeat_timeout_s:g} s)"
                )
        provider = self.provider()
        for stage in self.inference_stages():
            if ages.get(stage) is not None and self._provider_of(stage) is None:
                reasons.append(f"{stage}: has not reported its ONNX Runtime provider")
        reasons += self._camera_reasons(now_ns, ages)
        reasons += restarting.values()
        return Readiness(not reasons, reasons, provider, ages, runtime=self.runtime())

    def _camera_reasons(self, now_ns: int, ages: Mapping[str, float | None]) -> list[str]:
        """Cameras not up while sync is alive (a dead sync is its own reason), unless their grabber's
        silence already is one."""
        if self._fresh("sync", now_ns) is None:
            return []
        out = []
        for cam in self.cameras(now_ns):
            age = cam.heartbeat_age_s
            silent = f"grabber.{cam.name}" in ages and (age is None or age > self.heartbeat_timeout_s)
            if cam.state == "up" or silent:
                continue
            seen = (
                "sync has received none of its frames"
                if cam.last_frame_age_s is None
                else f"no frame of it reached sync for {cam.last_frame_age_s:.1f} s"
            )
            said = {"stale": "its grabber reports running", "reconnecting": "its grabber is reconnecting to "
                    "its source", "down": "its grabber reports it down"}[cam.state]  # fmt: skip
            out.append(f"camera {cam.name}: {seen}; {said}")
        return out

    def _restart_reasons(self, now_ns: int) -> dict[str, str]:
        """``{stage: reason}`` for the stages crash-looping or waiting for their restart."""
        if self._fresh(SUPERVISOR, now_ns) is None:
            return {}
        out = {}
        for r in self.restarts(now_ns):
            code = "?" if r.last_exit_code is None else r.last_exit_code
            if r.crash_looping:
                out[r.stage] = (
                    f"{r.stage}: crash-looping: exited {r.consecutive} times in a row (last exit code "
                    f"{code}); {r.restarts} restarts in all"
                )
            elif r.restart_in_s is not None:
                out[r.stage] = f"{r.stage}: exited with code {code}; restarting in {r.restart_in_s:.1f} s"
        return out

    def stage_value(self, stage: str, key: str) -> float | None:
        entry = self.snapshot().get(stage)
        return number_or_none(entry[1].get(key)) if entry else None

    def cameras(self, now_ns: int | None = None) -> list[CameraStatus]:
        """Per-camera state, rates, drops, skew and frame age, in rig order."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latest = self.snapshot()
        sync_at, sync = latest.get("sync", (None, {}))
        sync_age = None if sync_at is None else (now_ns - sync_at) / 1e9
        sync_alive = sync_age is not None and sync_age <= self.heartbeat_timeout_s
        skews, sync_drops = _mapping(sync.get("skew_ms")), _mapping(sync.get("drops"))
        frames = _mapping(sync.get("frames"))
        sync_input = self.input_drops(latest).get("sync", {})
        out = []
        for name in self.camera_names:
            entry = latest.get(f"grabber.{name}")
            age = (now_ns - entry[0]) / 1e9 if entry else None
            payload = entry[1] if entry else {}
            arrived = _mapping(frames.get(name))
            arrival_ms = number_or_none(arrived.get("age_ms"))
            measured = known = None
            if arrival_ms is not None and sync_age is not None:
                measured = max(0.0, arrival_ms / 1000)  # sync's measurement when it sent its heartbeat
                known = measured + sync_age  # since the newest frame anyone has heard of: an upper bound
            receiving = sync_alive and known is not None and known <= self.frame_timeout_s
            # A camera whose frames reach sync is as old as sync last measured it (adding the heartbeat's own
            # age would show every live camera 0 … heartbeat_s old, a 1 s sawtooth at 60 fps); one that is
            # not up has delivered nothing since, as far as anyone knows: the upper bound is its age.
            frame_age = measured if receiving else known
            said = payload.get("state", "up")
            state: CameraState
            if receiving:
                state = "up"
            elif age is None or age > self.heartbeat_timeout_s:
                state = "down"
            elif said in ("down", "reconnecting"):
                state = said
            else:
                state = "stale"
            fps = number_or_none(arrived.get("fps"))
            out.append(
                CameraStatus(
                    name=name,
                    state=state,
                    # A camera that is not up delivers nothing, whatever rate it reported last.
                    fps=(None if fps is None else max(0.0, fps)) if state == "up" else 0.0,
                    drops=count_or_zero(payload.get("drops")),
                    sync_drops=count_or_zero(sync_drops.get(name)),
                    input_drops=sync_input.get(name, {}),
                    skew_ms=number_or_none(skews.get(name)),
                    last_frame_age_s=frame_age,
                    heartbeat_age_s=age,
                )
            )
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
                out[stage] = min(sum(count_or_zero(v) for v in value.values()), MAX_COUNT)
            else:
                out[stage] = count_or_zero(value)
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
