"""Prometheus metrics, read at scrape time from the hub, the status board and the calibration store.

One ``CollectorRegistry`` per app (``metrics_registry``), so apps in one process never share series.
Families (seconds, per Prometheus convention; ``_total`` are counters):

- ``crosspose_solved_fps``, ``crosspose_skeletons_published_total``
- ``crosspose_stage_latency_seconds{stage}`` histogram from the skeletons' ``latency_ms``
- ``crosspose_stage_drops_total{stage}``, ``crosspose_stage_fps{stage}``,
  ``crosspose_stage_heartbeat_age_seconds{stage}``
- ``crosspose_input_drops_total{stage,source,reason}``: input each stage dropped, from the stages'
  heartbeats (``input_drops``) and the API's own bus thread (stage ``api``); sync's sources are its
  cameras (and ``other``), reasons ``malformed``, ``stale``, ``future``, ``foreign``, ``oversize``, ``busy``
- ``crosspose_stage_restarts_total{stage}``, ``crosspose_stage_crash_looping{stage}`` (the supervisor's),
  ``crosspose_skeleton_age_seconds`` (since the last published skeleton)
- ``crosspose_camera_drops_total{camera,stage}`` (stage ``grabber`` or ``sync``),
  ``crosspose_camera_skew_seconds{camera}``, ``crosspose_camera_fps{camera}``,
  ``crosspose_camera_up{camera}``, ``crosspose_camera_frame_age_seconds{camera}``
- ``crosspose_websocket_clients``, ``crosspose_websocket_dropped_messages_total``,
  ``crosspose_websocket_unencodable_messages_total``,
  ``crosspose_websocket_client_dropped_messages_total{client,format}``,
  ``crosspose_websocket_client_queued_messages{client,format}``
- ``crosspose_calibration_version``, ``crosspose_ready``, ``crosspose_inference_provider{provider}``,
  ``crosspose_inference_runtime{runtime,device,precision}``
- ``crosspose_solver_held_sets_total{outcome}``: with several inference workers, the sets the solver held
  for an older set in flight (``held``) and the older sets that came within the hold and were published
  first (``in_time``), from the solver's heartbeat
- ``crosspose_detector_runs_total``, ``crosspose_detector_views_total``: the person detector, which should
  run on a cold start or a lost view only (from the inference workers' heartbeats, summed)
- ``crosspose_persons``: performers tracked now (the solver's heartbeat ``persons``; before one says, the
  last skeleton's ``persons``), ``crosspose_person_ids_started_total``,
  ``crosspose_person_ids_ended_total`` (the solver's heartbeat ``ids_started``/``ids_ended``: a new id for
  someone new, an id ended after its timeout; ids started beyond the performers who really came are id
  switches), ``crosspose_person_top_switches_total`` (skeletons whose top level, the lowest live id, is
  another id than the previous skeleton's: a switch as a one-performer client sees it),
  ``crosspose_persons_outside_volume_total`` (the solver's heartbeat ``outside_volume``: performers solved
  with their root outside ``capture.volume``, not published)
- ``crosspose_metrics_errors_total``: families left out of a scrape because building them failed (a bug;
  see the log) — a scrape answers whatever a status message holds
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from crosspose.api.state import ServiceState
from crosspose.api.status import drop_counts, number_or_none

log = logging.getLogger(__name__)


class ServiceCollector(Collector):
    """Builds every family from the state's current values at each scrape."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.errors = 0

    def collect(self) -> Iterator[Metric]:
        sections: list[Callable[[], Iterator[Metric]]] = [
            self._pipeline, self._persons, self._input_drops, self._restarts, self._cameras, self._websockets,
            self._vmc, self._held, self._service,
        ]
        for section in sections:
            try:
                families = list(section())
            except Exception:  # one section's bug must not take the whole scrape down with it
                self.errors += 1
                if self.errors == 1 or self.errors % 1000 == 0:
                    log.exception("metrics: %s left out (%d times)", section.__name__, self.errors)
                continue
            yield from families
        yield CounterMetricFamily(
            "crosspose_metrics_errors", "Metric sections left out of a scrape (a bug; see the log)",
            value=self.errors,
        )

    def _pipeline(self) -> Iterator[Metric]:
        hub, status = self.state.hub, self.state.status
        yield GaugeMetricFamily(
            "crosspose_solved_fps", "Skeletons published per second (last 2 s)", value=hub.solved_fps()
        )
        yield CounterMetricFamily(
            "crosspose_skeletons_published", "Skeletons published to websocket clients", value=hub.skeletons
        )
        latency = HistogramMetricFamily(
            "crosspose_stage_latency_seconds",
            "Per-stage latency reported in skeleton messages (latency_ms)",
            labels=["stage"],
        )
        for stage, hist in sorted(hub.latency().items()):
            latency.add_metric([stage], hist.cumulative(), hist.sum_s)
        yield latency
        drops = CounterMetricFamily(
            "crosspose_stage_drops", "Items each stage dropped (latest wins)", labels=["stage"]
        )
        for stage, n in sorted(status.stage_drops().items()):
            drops.add_metric([stage], n)
        yield drops
        fps = GaugeMetricFamily("crosspose_stage_fps", "Rate each stage reports", labels=["stage"])
        ages = GaugeMetricFamily(
            "crosspose_stage_heartbeat_age_seconds",
            "Seconds since each stage's last heartbeat",
            labels=["stage"],
        )
        for stage, age in status.heartbeat_ages().items():
            if age is not None:
                ages.add_metric([stage], age)
            rate = status.stage_value(stage, "fps")
            if rate is not None:
                fps.add_metric([stage], rate)
        yield fps
        yield ages
        runs = CounterMetricFamily(
            "crosspose_detector_runs", "Person detector calls (cold start or a lost view; batched over views)"
        )
        views = CounterMetricFamily("crosspose_detector_views", "View images the person detector looked at")
        for family, key in ((runs, "detector_runs"), (views, "detector_views")):
            value = status.inference_total(key)
            if value is not None:
                family.add_metric([], value)
            yield family

    def _persons(self) -> Iterator[Metric]:
        """Performers and their ids, from the solver's heartbeat and the skeletons the hub saw."""
        hub, status = self.state.hub, self.state.status
        count = status.stage_value("solver", "persons")
        persons = GaugeMetricFamily("crosspose_persons", "Performers tracked now")
        if count is None:
            count = hub.persons
        if count is not None:
            persons.add_metric([], count)
        yield persons
        for key, name, text in (
            ("ids_started", "crosspose_person_ids_started", "Performer ids started (someone new was found)"),
            ("ids_ended", "crosspose_person_ids_ended", "Performer ids ended (lost longer than the timeout)"),
            ("outside_volume", "crosspose_persons_outside_volume",
             "Performers solved with their root outside the capture volume: not published, searched again"),
        ):
            family = CounterMetricFamily(name, text)
            value = status.stage_value("solver", key)
            if value is not None:
                family.add_metric([], value)
            yield family
        yield CounterMetricFamily(
            "crosspose_person_top_switches",
            "Skeletons whose top level (the lowest live id) is another performer than the previous one's",
            value=hub.top_person_switches,
        )

    def _input_drops(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "crosspose_input_drops",
            "Input messages each stage dropped, by source (sync: the camera) and reason (malformed, stale, "
            "future, foreign, oversize, busy)",
            labels=["stage", "source", "reason"],
        )
        stages = self.state.status.input_drops()
        own = self.state.bus_input_drops
        if own is not None:
            stages["api"] = {source: drop_counts(counts) for source, counts in own().items()}
        for stage, sources in sorted(stages.items()):
            for source, counts in sorted(sources.items()):
                for reason, n in sorted(counts.items()):
                    family.add_metric([stage, source, reason], n)
        yield family

    def _restarts(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "crosspose_stage_restarts", "Restarts of each supervised stage (the supervisor's)",
            labels=["stage"],
        )
        looping = GaugeMetricFamily(
            "crosspose_stage_crash_looping",
            "1 while a stage exits again and again without running stable in between",
            labels=["stage"],
        )
        for r in self.state.status.restarts():
            restarts.add_metric([r.stage], r.restarts)
            looping.add_metric([r.stage], 1.0 if r.crash_looping else 0.0)
        yield restarts
        yield looping
        age = GaugeMetricFamily(
            "crosspose_skeleton_age_seconds",
            "Seconds since the last skeleton was published (absent: none yet)",
        )
        skeleton_age = self.state.hub.skeleton_age_s()
        if skeleton_age is not None:
            age.add_metric([], skeleton_age)
        yield age

    def _cameras(self) -> Iterator[Metric]:
        drops = CounterMetricFamily(
            "crosspose_camera_drops",
            "Frames lost per camera: by its grabber, or missing from sync's sets",
            labels=["camera", "stage"],
        )
        skew = GaugeMetricFamily(
            "crosspose_camera_skew_seconds", "Capture-time offset from the frame set", labels=["camera"]
        )
        fps = GaugeMetricFamily("crosspose_camera_fps", "Frames per second per camera", labels=["camera"])
        up = GaugeMetricFamily("crosspose_camera_up", "1 when the camera is up", labels=["camera"])
        age = GaugeMetricFamily(
            "crosspose_camera_frame_age_seconds", "Age of each camera's latest frame", labels=["camera"]
        )
        for cam in self.state.status.cameras():
            drops.add_metric([cam.name, "grabber"], cam.drops)
            drops.add_metric([cam.name, "sync"], cam.sync_drops)
            up.add_metric([cam.name], 1.0 if cam.state == "up" else 0.0)
            if cam.skew_ms is not None:
                skew.add_metric([cam.name], cam.skew_ms / 1000)
            if cam.fps is not None:
                fps.add_metric([cam.name], cam.fps)
            if cam.last_frame_age_s is not None:
                age.add_metric([cam.name], cam.last_frame_age_s)
        yield from (drops, skew, fps, up, age)

    def _websockets(self) -> Iterator[Metric]:
        hub = self.state.hub
        subs = hub.subscribers()
        yield GaugeMetricFamily("crosspose_websocket_clients", "Connected websocket clients", value=len(subs))
        yield CounterMetricFamily(
            "crosspose_websocket_dropped_messages",
            "Messages dropped for slow websocket clients (all clients, ever)",
            value=hub.dropped_total,
        )
        yield CounterMetricFamily(
            "crosspose_websocket_unencodable_messages",
            "Messages dropped because they could not be encoded (an upstream bug; see the log)",
            value=hub.unencodable,
        )
        dropped = CounterMetricFamily(
            "crosspose_websocket_client_dropped_messages",
            "Messages dropped for each connected client",
            labels=["client", "format"],
        )
        queued = GaugeMetricFamily(
            "crosspose_websocket_client_queued_messages",
            "Messages waiting in each connected client's queue",
            labels=["client", "format"],
        )
        for s in subs:
            dropped.add_metric([str(s["id"]), s["format"]], s["dropped"])
            queued.add_metric([str(s["id"]), s["format"]], s["queued"])
        yield dropped
        yield queued

    def _vmc(self) -> Iterator[Metric]:
        """VMC/OSC streaming to engines, from the solver stage's heartbeat (``live.vmc``)."""
        entry = self.state.status.snapshot().get("solver")
        live = entry[1].get("live") if entry else None
        vmc = live.get("vmc") if isinstance(live, dict) else None
        datagrams = CounterMetricFamily(
            "crosspose_vmc_datagrams", "VMC bundles per target and outcome (sent, refused, dropped, errors, "
            "unresolved)", labels=["target", "result"],
        )
        delay = GaugeMetricFamily(
            "crosspose_vmc_send_delay_seconds", "Delay from skeleton publication to the VMC send (last 1000)",
            labels=["quantile"],
        )
        if isinstance(vmc, dict):
            targets = vmc.get("targets")
            for target in targets if isinstance(targets, list) else []:
                if not isinstance(target, dict):
                    continue
                for result in ("sent", "refused", "dropped", "errors", "unresolved"):
                    value = number_or_none(target.get(result))
                    if value is not None:
                        datagrams.add_metric([str(target.get("target"))[:200], result], value)
            for quantile, key in (("0.5", "send_delay_ms_p50"), ("0.99", "send_delay_ms_p99")):
                value = number_or_none(vmc.get(key))
                if value is not None:
                    delay.add_metric([quantile], value / 1e3)
        yield datagrams
        yield delay

    def _held(self) -> Iterator[Metric]:
        """Sets the solver held for an older one in flight (its heartbeat's ``held``, ``held_in_time``)."""
        entry = self.state.status.snapshot().get("solver")
        held = CounterMetricFamily(
            "crosspose_solver_held_sets", "Sets the solver held for an older set another inference worker "
            "had in flight (held), and older sets that came within the hold (in_time)", labels=["outcome"],
        )
        for outcome, key in (("held", "held"), ("in_time", "held_in_time")):
            value = number_or_none(entry[1].get(key)) if entry else None
            if value is not None:
                held.add_metric([outcome], value)
        yield held

    def _service(self) -> Iterator[Metric]:
        active = self.state.calibration.active()
        yield GaugeMetricFamily(
            "crosspose_calibration_version",
            "Active calibration version (0: none)",
            value=active.version if active else 0,
        )
        readiness = self.state.readiness()
        yield GaugeMetricFamily(
            "crosspose_ready",
            "1 when /api/v1/ready answers 200 (stages heartbeating, frames and skeletons flowing, no stage "
            "crash-looping, a calibration active)",
            value=1.0 if readiness.ready else 0.0,
        )
        provider = GaugeMetricFamily(
            "crosspose_inference_provider", "ONNX Runtime provider in use (value 1)", labels=["provider"]
        )
        if readiness.provider is not None:
            provider.add_metric([readiness.provider], 1.0)
        yield provider
        runtime = GaugeMetricFamily(
            "crosspose_inference_runtime", "Inference runtime, device and precision in use (value 1)",
            labels=["runtime", "device", "precision"],
        )
        if readiness.runtime is not None:
            runtime.add_metric([readiness.runtime.runtime, readiness.runtime.device,
                                readiness.runtime.precision], 1.0)
        yield runtime


def metrics_registry(state: ServiceState) -> CollectorRegistry:
    """A fresh registry holding only this service's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(state))
    return registry
