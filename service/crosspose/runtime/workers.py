"""How many inference workers the service runs, what their stages are called and how many threads each
gets and at which priority (config ``inference.workers``, ``inference.threads``, ``inference.nice``).

Workers share the frame sets (sync hands each set to an idle worker, ``frameset.<k>.``:
:mod:`crosspose.sync.dispatch`) so that a multi-core CPU host keeps every core busy while sets wait; the
solver puts their heatmaps back in capture order. ``auto`` is 2 on a CPU-only host with 2 or more cores and
1 where a GPU runs the network (one process keeps a GPU busy; two would only share it).
"""

from __future__ import annotations

import os

from crosspose.config import Config

INFERENCE = "inference"
#: Largest lead of a set's capture time over this host's monotonic clock that the solver and the workers
#: believe (ns): capture times are on this host's clock (sync refuses frames from the future), so a set or
#: track stamped beyond it is corrupt and must not hold back every real set after it.
FUTURE_NS = 100_000_000
#: An ``inflight.`` announcement older than this is no longer waited for (its worker died or dropped the
#: set), ns: several times a set's network time on a slow CPU.
INFLIGHT_MAX_AGE_NS = 1_000_000_000


def host_cores() -> int:
    """CPU cores this process may run on (its affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _gpu_runs_network(config: Config) -> bool:
    """Whether the configured inference runs on a GPU here (an explicit CUDA/TensorRT device, or ``auto``
    where ONNX Runtime can start one)."""
    settings = config.inference
    if settings.backend != "network":
        return False
    if settings.device in ("cuda", "tensorrt"):
        return True
    if settings.runtime in ("auto", "onnxruntime") and settings.device == "auto":
        from crosspose.inference.runtimes.auto import gpu_can_start

        return gpu_can_start()
    return False


def worker_count(config: Config, *, cores: int | None = None, gpu: bool | None = None) -> int:
    """``inference.workers`` as a number: as configured, or for ``auto`` 1 with a GPU (``gpu``: whether the
    network runs on one; default found out here) or several performers (``capture.max_persons`` > 1: their
    ids and crops live in one worker), and ``min(2, cores)`` on the CPU."""
    workers = config.inference.workers
    if workers != "auto":
        return int(workers)
    if config.capture.max_persons > 1:
        return 1
    if _gpu_runs_network(config) if gpu is None else gpu:
        return 1
    return min(2, host_cores() if cores is None else cores)


def with_workers(config: Config, *, cores: int | None = None, gpu: bool | None = None) -> Config:
    """``config`` with ``inference.workers`` resolved to a number (:func:`worker_count`), as the supervisor
    hands it to every stage: they all agree on the count without probing the host again."""
    count = worker_count(config, cores=cores, gpu=gpu)
    return config.model_copy(update={"inference": config.inference.model_copy(update={"workers": count})})


def worker_threads(config: Config, *, cores: int | None = None) -> int:
    """Intra-op threads of each worker: ``inference.threads`` when set, else the cores shared out among the
    workers (at least 1)."""
    threads = config.inference.threads
    if threads > 0:
        return threads
    return max(1, (host_cores() if cores is None else cores) // worker_count(config, cores=cores))


#: ``inference.nice: auto`` with several workers: their os.nice increment (CFS then gives a stage at nice 0
#: about 3x a worker's share of a core while both want one).
SEVERAL_WORKERS_NICE = 5


def worker_nice(config: Config) -> int:
    """``inference.nice`` as a number: as configured, or for ``auto`` :data:`SEVERAL_WORKERS_NICE` with
    several workers (they keep every core busy) and 0 with one."""
    nice = config.inference.nice
    if nice != "auto":
        return int(nice)
    return SEVERAL_WORKERS_NICE if worker_count(config) > 1 else 0


def inference_workers(config: Config) -> list[tuple[str, int | None]]:
    """The supervised inference stages as ``(stage name, worker number)``: ``("inference", None)`` for one
    worker, ``("inference.0", 0)`` … ``("inference.<N-1>", N-1)`` for several."""
    count = worker_count(config)
    return [(INFERENCE, None)] if count == 1 else [(f"{INFERENCE}.{k}", k) for k in range(count)]
