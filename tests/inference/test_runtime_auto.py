"""``runtime: auto`` and ``precision: auto`` (issue 18): ONNX Runtime on a GPU host, OpenVINO with a bf16
backbone on a CPU with native bf16, f32 elsewhere on the runtime measured faster on the CPU's vendor;
explicit requests this host cannot honour fail at start with the reason. The CPU, the OpenVINO package and
the GPU are given to :func:`choose`, so that every branch runs on any host."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from crosspose.config import AutoInference, OnnxRuntimeInference, OpenVinoInference, TorchInference
from crosspose.inference import DeviceUnavailableError, OnnxRunner
from crosspose.inference import runtimes as registry
from crosspose.inference.runtimes import auto
from crosspose.inference.runtimes.auto import CpuInfo, choose, openvino_precision, parse_cpuinfo

INTEL, AMD = "GenuineIntel", "AuthenticAMD"
ICE_LAKE = CpuInfo("Intel(R) Xeon(R) Processor @ 2.80GHz", frozenset({"avx2", "avx512f", "avx512_vnni"}),
                   INTEL)
INTEL_AVX2 = CpuInfo("Intel(R) Core(TM) i7-8700", frozenset({"avx2"}), INTEL)
SAPPHIRE_RAPIDS = CpuInfo("Intel(R) Xeon(R) Platinum 8480+", frozenset({"avx512f", "amx_tile", "amx_bf16"}),
                          INTEL)
EPYC = CpuInfo("AMD EPYC 9B14", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}), AMD)
ZEN3 = CpuInfo("AMD EPYC 7B13", frozenset({"avx2"}), AMD)
AMD_AVX512 = CpuInfo("AMD EPYC 9B14", frozenset({"avx2", "avx512f", "avx512_vnni"}), AMD)  # bf16 not reported
OTHER = CpuInfo("a CPU of no measured vendor", frozenset({"avx2"}), "HygonGenuine")

#: OpenVinoInference refuses to be made where the package is missing (a config error): such tests skip there.
needs_openvino = pytest.mark.skipif(not auto.openvino_installed(), reason="openvino is not installed")

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu vme avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: AMD EPYC 9B14
flags\t\t: fpu vme avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_the_cpu_is_read_from_proc_cpuinfo(tmp_path: Path) -> None:
    assert parse_cpuinfo(CPUINFO) == CpuInfo("AMD EPYC 9B14", frozenset(
        {"fpu", "vme", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}), AMD)
    assert parse_cpuinfo(CPUINFO).native_bf16
    assert SAPPHIRE_RAPIDS.native_bf16  # AMX
    assert not ICE_LAKE.native_bf16
    assert not INTEL_AVX2.native_bf16
    assert ICE_LAKE.describe() == "Intel(R) Xeon(R) Processor @ 2.80GHz (avx2, avx512f, avx512_vnni)"
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert auto.host_cpu(path).native_bf16
    assert auto.host_cpu(tmp_path / "missing") == CpuInfo("unknown CPU", frozenset())  # auto then runs f32


@pytest.mark.parametrize("cpu", [AMD_AVX512, OTHER], ids=["amd-avx512", "unmeasured-vendor"])
@pytest.mark.parametrize("openvino", [True, False], ids=["openvino", "no-openvino"])
def test_auto_on_a_cpu_without_native_bf16_runs_f32_on_onnx_runtime_unless_measured_otherwise(
    cpu: CpuInfo, openvino: bool
) -> None:
    choice = choose(AutoInference(threads=2), cpu=cpu, openvino=openvino, gpu=False)
    assert choice.settings == OnnxRuntimeInference(device="cpu", threads=2)
    assert choice.reason.endswith("has no native bf16: ONNX Runtime f32")
    assert openvino_precision("auto", cpu) == "f32"


@needs_openvino
@pytest.mark.parametrize("cpu", [ICE_LAKE, INTEL_AVX2, ZEN3], ids=["intel-avx512-without-bf16", "intel-avx2",
                                                                    "amd-avx2"])
def test_auto_on_a_cpu_measured_faster_in_openvino_runs_openvino_f32(cpu: CpuInfo) -> None:
    choice = choose(AutoInference(threads=2), cpu=cpu, openvino=True, gpu=False)
    assert choice.settings == OpenVinoInference(precision="f32", threads=2)
    assert (f"no native bf16: OpenVINO f32, measured faster than ONNX Runtime on {cpu.vendor} CPUs "
            f"{'with' if 'avx512f' in cpu.flags else 'without'} AVX-512") in choice.reason
    assert openvino_precision("auto", cpu) == "f32"
    # Without OpenVINO: ONNX Runtime f32.
    assert choose(AutoInference(threads=2), cpu=cpu, openvino=False, gpu=False).settings == \
        OnnxRuntimeInference(device="cpu", threads=2)


@needs_openvino
@pytest.mark.parametrize("cpu", [EPYC, SAPPHIRE_RAPIDS], ids=["avx512_bf16", "amx"])
def test_auto_on_a_cpu_with_native_bf16_runs_openvino_with_a_bf16_backbone(cpu: CpuInfo) -> None:
    section = AutoInference(threads=2, model=Path("net.onnx"), heatmaps="raw")
    choice = choose(section, cpu=cpu, openvino=True, gpu=False)
    assert choice.settings == OpenVinoInference(precision="bf16", threads=2, model=Path("net.onnx"),
                                                heatmaps="raw")
    assert "native bf16: OpenVINO, bf16 backbone and f32 fusion" in choice.reason
    assert openvino_precision("auto", cpu) == "bf16"
    # f32 asked for: the faster f32 runtime on that vendor's CPUs.
    f32 = choose(AutoInference(precision="f32"), cpu=cpu, openvino=True, gpu=False).settings
    assert f32 == (OpenVinoInference(precision="f32") if cpu.vendor == INTEL else
                   OnnxRuntimeInference(device="cpu"))
    # Without OpenVINO: ONNX Runtime f32, and the reason says what to install.
    fallback = choose(section, cpu=cpu, openvino=False, gpu=False)
    assert fallback.settings == OnnxRuntimeInference(device="cpu", threads=2, model=Path("net.onnx"),
                                                     heatmaps="raw")
    assert "pip install 'crosspose[openvino]'" in fallback.reason


@needs_openvino
def test_a_gpu_host_keeps_onnx_runtime_whatever_the_cpu() -> None:
    choice = choose(AutoInference(), cpu=EPYC, openvino=True, gpu=True)
    assert choice.settings == OnnxRuntimeInference(device="auto")
    assert "GPU" in choice.reason
    for device in ("cuda", "tensorrt"):
        assert choose(AutoInference(device=device), cpu=EPYC, openvino=True, gpu=False).settings == \
            OnnxRuntimeInference(device=device)
    # device: cpu never probes the GPU, and takes the CPU's path.
    assert choose(AutoInference(device="cpu"), cpu=EPYC, openvino=True, gpu=True).settings == \
        OpenVinoInference(precision="bf16")


@needs_openvino
def test_explicit_runtimes_are_kept_as_configured() -> None:
    for section in (OnnxRuntimeInference(device="cpu"), TorchInference(), OpenVinoInference(precision="f32")):
        assert choose(section, cpu=EPYC, openvino=True, gpu=True).settings is section


def test_an_explicit_bf16_that_cannot_run_here_fails_with_the_reason() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"precision='bf16' requested but this CPU, Intel\(R\) "
                       r"Xeon\(R\) Processor @ 2.80GHz \(avx2, avx512f, avx512_vnni\), has no native bf16"):
        openvino_precision("bf16", ICE_LAKE)
    with pytest.raises(DeviceUnavailableError, match="has no native bf16"):
        choose(AutoInference(precision="bf16"), cpu=ICE_LAKE, openvino=True, gpu=False)
    with pytest.raises(DeviceUnavailableError, match="OpenVINO runs it and is not installed: pip install"):
        choose(AutoInference(precision="bf16"), cpu=EPYC, openvino=False, gpu=False)
    with pytest.raises(DeviceUnavailableError, match="this host has a GPU"):
        choose(AutoInference(precision="bf16"), cpu=EPYC, openvino=True, gpu=True)
    with pytest.raises(DeviceUnavailableError, match="device cuda runs ONNX Runtime in f32"):
        choose(AutoInference(precision="bf16", device="cuda"), cpu=EPYC, openvino=True, gpu=True)
    assert openvino_precision("bf16", EPYC) == "bf16"
    assert openvino_precision("f32", EPYC) == "f32"


def test_auto_opens_what_it_chose_and_says_why(
    standin: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end through the registry on this host, the CPU replaced by one of each kind."""
    monkeypatch.setattr(auto, "host_cpu", lambda: AMD_AVX512)
    with caplog.at_level(logging.INFO, logger="crosspose.inference.runtimes"):
        network = registry.open_network(AutoInference(device="cpu", model=standin), num_cameras=3)
    assert isinstance(network, OnnxRunner)
    assert network.info.runtime == "onnxruntime"
    assert ("inference runtime auto: onnxruntime (AMD EPYC 9B14 (avx2, avx512f, avx512_vnni) has no native "
            "bf16") in caplog.text
    if not auto.openvino_installed():
        return
    from crosspose.inference.runtimes.openvino import OpenVinoRunner

    monkeypatch.setattr(auto, "host_cpu", lambda: ICE_LAKE)
    network = registry.open_network(AutoInference(device="cpu", model=standin), num_cameras=3)
    assert isinstance(network, OpenVinoRunner)
    assert (network.info.runtime, network.info.precision) == ("openvino", "f32")


@needs_openvino
def test_an_explicit_openvino_without_the_package_fails_at_start_naming_what_to_install(
    standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = OpenVinoInference(precision="f32", model=standin)  # made while the package was there
    monkeypatch.setitem(sys.modules, "openvino", None)  # as on a host where it is not installed
    monkeypatch.delitem(sys.modules, "crosspose.inference.runtimes.openvino", raising=False)
    with pytest.raises(DeviceUnavailableError, match=r"runtime 'openvino' needs the openvino package, which "
                       r"is not installed here: pip install 'crosspose\[openvino\]'"):
        registry.open_network(section, num_cameras=3)
    assert not auto.openvino_installed()
    # auto does not need it: ONNX Runtime, even on a CPU with bf16.
    assert choose(AutoInference(), cpu=EPYC, gpu=False).settings == OnnxRuntimeInference(device="cpu")
