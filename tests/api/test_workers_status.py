"""What the API shows of several inference workers (stages ``inference.<k>``): readiness wants each one's
heartbeat and provider, the provider they share is shown once, and the detector counters are summed."""

from __future__ import annotations

from crosspose.api.status import StatusBoard
from crosspose.bus.schema import status_message
from crosspose.runtime.api_stage import translate_status

CAMERAS = ["cam1"]
STAGES = ["sync", "inference.0", "inference.1", "solver"]


def test_readiness_wants_every_worker_and_shows_their_shared_provider_once() -> None:
    board = StatusBoard(CAMERAS, stages=STAGES)
    for stage in ("sync", "solver"):
        board.update(stage, {})
    board.update("inference.0", {"provider": "openvino", "detector_runs": 2, "detector_views": 5})
    ready = board.ready()
    assert "inference.1: no heartbeat yet" in ready.reasons
    assert ready.provider == "openvino"
    board.update("inference.1", {"detector_runs": 1})
    assert "inference.1: has not reported its ONNX Runtime provider" in board.ready().reasons
    board.update("inference.1", {"provider": "openvino", "detector_runs": 1, "detector_views": 4})
    ready = board.ready()
    assert not any(r.startswith("inference") for r in ready.reasons), ready.reasons
    assert ready.provider == "openvino"
    assert board.inference_total("detector_runs") == 3
    assert board.inference_total("detector_views") == 9
    board.update("inference.1", {"provider": "CPUExecutionProvider"})  # restarted on another runtime
    assert board.provider() == "openvino / CPUExecutionProvider"


def test_a_workers_heartbeat_is_told_apart_from_the_only_workers() -> None:
    one = status_message("inference", {"provider": "openvino"})
    several = status_message("inference", {"provider": "openvino"}, worker=1)
    assert translate_status(one) == ("inference", one)
    assert translate_status(several) == ("inference.1", several)


def test_the_runtime_device_and_precision_that_run_are_shown_once_or_each_where_workers_differ() -> None:
    board = StatusBoard(CAMERAS, stages=STAGES)
    assert board.runtime() is None
    board.update("inference.0", {"runtime": "openvino", "device": "CPU",
                                 "precision": "bf16 backbone, f32 fusion"})
    board.update("inference.1", {"runtime": "openvino", "device": "CPU", "precision": "f32"})
    runtime = board.ready().runtime
    assert runtime is not None
    assert (runtime.runtime, runtime.device, runtime.precision) == (
        "openvino", "CPU", "bf16 backbone, f32 fusion / f32")
    # what is not a plausible name is not shown (a forged heartbeat cannot put markup in the viewer)
    board.update("inference.1", {"runtime": "<script>", "device": "CPU", "precision": "f32"})
    board.update("inference.0", {"runtime": "openvino", "device": ["CPU"], "precision": "f32"})
    assert board.runtime() is None
