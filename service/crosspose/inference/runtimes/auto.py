"""What ``inference.runtime: auto`` and ``inference.precision: auto`` become on the host they run on.

The rule (issue 18; the numbers in the README's runtime table, ``benchmarks/runtimes.py``):

* a GPU that ONNX Runtime can start (TensorRT or CUDA, :func:`~.onnxruntime.gpu_blocker`) keeps ONNX Runtime,
  and so does an explicit ``device: cuda`` or ``tensorrt``: OpenVINO is never picked on a GPU host;
* on the CPU, where it has native bf16 (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``) and OpenVINO
  is installed: OpenVINO with the backbone in bf16 and the fusion in f32 (37 against ONNX Runtime's 55 ms a
  4-view set, one thread, on an AMD EPYC with bf16; the fusion itself in bf16 moves 24 % of the joints);
* elsewhere f32, on the runtime measured faster in f32 on that vendor's CPUs with or without AVX-512
  (:data:`F32_RUNTIMES`): OpenVINO on Intel (an Ice Lake Xeon without bf16: 87–93 against 99–101 ms) and on
  AMD without AVX-512 (an EPYC of the Zen 3 generation, AVX2 only: 53.8 against 66.3 ms), ONNX Runtime on AMD
  with AVX-512 (the issue's EPYC: 55 against 63 ms; it has native bf16, so only ``precision: f32`` lands
  here) and on any CPU not measured; ONNX Runtime wherever OpenVINO is not installed.

An explicit request that cannot be met here fails at start-up with the reason (as ``device: cuda`` on a host
without CUDA): ``precision: bf16`` on a CPU without native bf16 is refused rather than emulated, which
OpenVINO would do on an AVX-512 CPU about twice as slowly as f32 (measured on the Ice Lake) with bf16's
rounding.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from crosspose.config.settings import OPENVINO_HINT
from crosspose.inference.network import DeviceUnavailableError

if TYPE_CHECKING:
    from crosspose.config.settings import (
        InferenceConfig,
        OnnxRuntimeInference,
        OpenVinoInference,
        TorchInference,
    )

log = logging.getLogger(__name__)

#: CPU flags (Linux ``/proc/cpuinfo`` names) of native bf16 arithmetic.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: The flags a speed figure depends on, named with every number (DESIGN §7).
FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
#: The faster f32 runtime by CPU vendor (``vendor_id``) and whether it has AVX-512 (``avx512f``), 4 views,
#: one thread, alternating runs in one process (``benchmarks/runtimes.py``): OpenVINO compiled for 4 cameras
#: 87–93 ms against ONNX Runtime 99–101 ms on an Intel Xeon @ 2.8 GHz (Ice Lake, AVX-512 without bf16; three
#: runs, load average 5–13); OpenVINO 53.8 against ONNX Runtime 66.3 ms on an AMD EPYC of the Zen 3 generation
#: (AVX2 only, quiet host, 2026-12-07; live, two workers: 17.6 against 13.3 sets/s); ONNX Runtime 55 against
#: OpenVINO 63 ms on an AMD EPYC with AVX-512 and bf16 (issue 18). Intel CPUs without AVX-512 were not
#: measured and follow the vendor. A CPU not listed keeps ONNX Runtime, the previous default.
F32_RUNTIMES: dict[tuple[str, bool], Literal["onnxruntime", "openvino"]] = {
    ("GenuineIntel", True): "openvino",
    ("GenuineIntel", False): "openvino",
    ("AuthenticAMD", True): "onnxruntime",
    ("AuthenticAMD", False): "openvino",
}


@dataclass(frozen=True)
class CpuInfo:
    """The CPU a choice is made for: its model name, its feature flags and its vendor (``GenuineIntel``,
    ``AuthenticAMD``, …)."""

    model: str
    flags: frozenset[str]
    vendor: str = "unknown"

    @property
    def native_bf16(self) -> bool:
        """Whether the CPU computes bf16 natively (``avx512_bf16`` or AMX)."""
        return bool(self.flags & BF16_FLAGS)

    @property
    def f32_runtime(self) -> Literal["onnxruntime", "openvino"]:
        """The runtime measured faster in f32 on this vendor's CPUs with or without AVX-512
        (:data:`F32_RUNTIMES`)."""
        return F32_RUNTIMES.get((self.vendor, self.avx512), "onnxruntime")

    @property
    def avx512(self) -> bool:
        """Whether the CPU has AVX-512 (``avx512f``)."""
        return "avx512f" in self.flags

    def describe(self) -> str:
        """The model and the flags that matter, as every speed figure names its CPU."""
        present = [f for f in FLAGS_THAT_MATTER if f in self.flags]
        return f"{self.model} ({', '.join(present) or 'none of ' + ', '.join(FLAGS_THAT_MATTER)})"


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor of a ``/proc/cpuinfo`` text (x86: ``model name``, ``flags``, ``vendor_id``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return CpuInfo(fields.get("model name", "unknown CPU"), frozenset(fields.get("flags", "").split()),
                   fields.get("vendor_id", "unknown"))


@functools.cache
def host_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This host's CPU (no flags where ``cpuinfo`` cannot be read: auto then picks ONNX Runtime f32)."""
    try:
        return parse_cpuinfo(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CpuInfo("unknown CPU", frozenset())


def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported here (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def gpu_can_start() -> bool:
    """Whether ONNX Runtime's TensorRT or CUDA provider may start on this host. Without the NVIDIA driver
    neither can, which is answered without importing ONNX Runtime (the supervisor asks, to count the
    inference workers, and must stay light: ``tests/runtime/test_light_stages.py``)."""
    from crosspose.inference.runtimes.libraries import NVIDIA_DRIVER, missing_library

    if missing_library(NVIDIA_DRIVER) is not None:
        return False
    from crosspose.inference.runtimes.onnxruntime import CUDA, TENSORRT, gpu_blocker

    return any(gpu_blocker(provider) is None for provider in (TENSORRT, CUDA))


def openvino_precision(requested: str, cpu: CpuInfo | None = None) -> Literal["f32", "bf16"]:
    """The backbone's precision for OpenVINO's ``precision`` setting (the fusion is f32 always): ``auto`` is
    bf16 where ``cpu`` (default: this host's) has native bf16, f32 elsewhere.

    Raises:
        DeviceUnavailableError: ``bf16`` on a CPU without native bf16.
    """
    cpu = host_cpu() if cpu is None else cpu
    if requested == "f32":
        return "f32"
    if requested == "bf16" and not cpu.native_bf16:
        raise DeviceUnavailableError(
            f"precision='bf16' requested but this CPU, {cpu.describe()}, has no native bf16 (avx512_bf16 or "
            "AMX): OpenVINO would emulate it, slower than f32 and with bf16's rounding. Use precision 'auto' "
            "(bf16 where the CPU has it, f32 elsewhere) or 'f32'.")
    if requested not in ("auto", "bf16"):
        raise ValueError(f"precision must be auto, f32 or bf16, got {requested!r}")
    return "bf16" if cpu.native_bf16 else "f32"


@dataclass(frozen=True)
class Choice:
    """A runtime section as the registry opens it (never ``auto``) and why it was chosen."""

    settings: OnnxRuntimeInference | OpenVinoInference | TorchInference
    reason: str


def choose(settings: InferenceConfig, *, cpu: CpuInfo | None = None, openvino: bool | None = None,
           gpu: bool | None = None) -> Choice:
    """The runtime ``settings`` run on (an explicit one as it is; ``auto`` by the rule of the module doc).

    Args:
        cpu, openvino, gpu: this host's CPU, whether OpenVINO is installed and whether ONNX Runtime can start
            a GPU provider (default: found out here); given by tests to take each branch.
    Raises:
        DeviceUnavailableError: ``precision: bf16`` that neither a GPU host nor this CPU can honour.
    """
    from crosspose.config.settings import OnnxRuntimeInference, OpenVinoInference

    if settings.runtime != "auto":
        return Choice(settings, f"runtime {settings.runtime} as configured")
    shared = settings.model_dump(include={"model", "heatmaps", "backend", "threads", "workers"})
    requested = settings.precision
    if settings.device in ("cuda", "tensorrt"):
        _refuse_bf16(requested, f"device {settings.device} runs ONNX Runtime in f32")
        return Choice(OnnxRuntimeInference(device=settings.device, **shared),
                      f"device {settings.device}: ONNX Runtime")
    if settings.device == "auto" and (gpu_can_start() if gpu is None else gpu):
        _refuse_bf16(requested, "this host has a GPU ONNX Runtime runs in f32 (set device: cpu for the CPU's "
                                "bf16)")
        return Choice(OnnxRuntimeInference(device="auto", **shared), "a GPU provider can start: ONNX Runtime")
    cpu = host_cpu() if cpu is None else cpu
    installed = openvino_installed() if openvino is None else openvino
    if requested != "f32" and cpu.native_bf16:
        if installed:
            return Choice(OpenVinoInference(precision="bf16", **shared),
                          f"{cpu.describe()} has native bf16: OpenVINO, bf16 backbone and f32 fusion")
        _refuse_bf16(requested, f"OpenVINO runs it and is not installed: {OPENVINO_HINT}")
        return Choice(OnnxRuntimeInference(device="cpu", **shared),
                      f"{cpu.describe()} has native bf16 but OpenVINO is not installed ({OPENVINO_HINT}): "
                      "ONNX Runtime f32")
    _refuse_bf16(requested, f"this CPU, {cpu.describe()}, has no native bf16 (avx512_bf16 or AMX)")
    why = f"{cpu.describe()}{' (f32 asked for)' if cpu.native_bf16 else ' has no native bf16'}"
    if cpu.f32_runtime == "openvino" and installed:
        return Choice(OpenVinoInference(precision="f32", **shared),
                      f"{why}: OpenVINO f32, measured faster than ONNX Runtime on {cpu.vendor} CPUs "
                      f"{'with' if cpu.avx512 else 'without'} AVX-512")
    return Choice(OnnxRuntimeInference(device="cpu", **shared), f"{why}: ONNX Runtime f32")


def _refuse_bf16(requested: str, why: str) -> None:
    if requested == "bf16":
        raise DeviceUnavailableError(f"precision='bf16' requested but {why}; use precision 'auto' or 'f32'")


__all__ = [
    "BF16_FLAGS",
    "F32_RUNTIMES",
    "Choice",
    "CpuInfo",
    "choose",
    "host_cpu",
    "openvino_installed",
    "openvino_precision",
    "parse_cpuinfo",
]
