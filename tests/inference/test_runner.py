"""``OnnxRunner``: provider choice read back from the session, fail-fast CUDA, warm-up, outputs.

Most tests run a tiny stand-in graph with the fusion network's inputs and outputs (exported in a
second, ``conftest.standin``); one ``network``/``slow`` test runs the real network (exported once per run,
``conftest.exported_network``) on one and two threads.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from crosspose.inference import OnnxRunner, ProviderUnavailableError
from crosspose.nets.export import OUTPUT_NAMES, example_inputs


class _RootStandIn(nn.Module):
    """A file exported before the ``prior`` input: its 4th input is ``root (3,)``; presence = Σ root."""

    def forward(self, crops: Tensor, projections: Tensor, valid: Tensor, root: Tensor) -> tuple[Tensor, ...]:
        heatmaps = crops[:, :64, :64, :1].permute(0, 3, 1, 2).expand(-1, 17, -1, -1)
        presence = 0 * projections.sum((1, 2)) + valid.to(crops.dtype) * root.sum()
        return heatmaps, heatmaps, presence


def test_a_file_with_the_old_root_input_gets_the_prior_pelvis(tmp_path: Path) -> None:
    path = tmp_path / "old.onnx"
    crops, projections, valid, prior, _ = (t[0] for t in example_inputs(3))  # one performer, no person axis
    cameras = torch.export.Dim("C", min=2, max=64)
    torch.onnx.export(
        _RootStandIn().eval(), (crops, projections, valid, prior[0]), str(path), dynamo=True,
        external_data=False, input_names=["crops", "projections", "valid", "root"],
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"crops": {0: cameras}, "projections": {0: cameras}, "valid": {0: cameras},
                        "root": None},
    )
    runner = OnnxRunner(path, device="cpu")
    pose = np.full((17, 3), np.nan, np.float32)
    pose[0] = (1.0, 2.0, 3.5)  # the pelvis (H36M-17 root)
    pose[5] = (9.0, 9.0, 9.0)
    inputs = [t.numpy() for t in (crops, projections, valid)]
    np.testing.assert_allclose(runner.run(*inputs, pose)["presence"], 6.5, atol=1e-5)
    np.testing.assert_allclose(runner.run(*inputs, pose[0])["presence"], 6.5, atol=1e-5)  # a root alone
    pose[0] = np.nan  # unknown pelvis: a finite stand-in, never NaN into the graph
    np.testing.assert_allclose(runner.run(*inputs, pose)["presence"], 0.0, atol=1e-6)


def _numpy_inputs(cameras: int) -> tuple[np.ndarray, ...]:
    """One performer's inputs (``run``'s: no person axis)."""
    return tuple(t[0].numpy() for t in example_inputs(cameras))


def test_cpu_runs_and_reports_its_provider(standin: Path) -> None:
    runner = OnnxRunner(standin, device="cpu")
    assert runner.provider == "CPUExecutionProvider"
    crops, projections, valid, prior, _ = _numpy_inputs(4)
    valid[1] = False
    out = runner.run(crops, projections, valid.astype(np.float32), prior)  # 0/1 floats are accepted
    assert set(out) == set(OUTPUT_NAMES)
    assert out["heatmaps"].shape == (4, 17, 64, 64)
    assert out["presence"].shape == (4,)
    assert out["heatmaps"].dtype == np.float32
    np.testing.assert_allclose(out["presence"], crops.mean((1, 2, 3)), atol=1e-6)
    assert not out["fused"][1].any()
    assert out["fused"][0].any()
    wider = runner.run(crops, projections, valid, prior, window_scale=2.0)["heatmaps"]
    np.testing.assert_allclose(wider, 2.0 * out["heatmaps"], rtol=1e-6)
    below_one = runner.run(crops, projections, valid, prior, window_scale=0.5)["heatmaps"]
    np.testing.assert_allclose(below_one, out["heatmaps"], rtol=1e-6)  # never narrower than trained


def test_auto_falls_back_and_says_which_provider_runs(
    standin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="crosspose.inference.runtimes.onnxruntime"):
        runner = OnnxRunner(standin, device="auto")
    assert runner.provider in ort.get_available_providers()
    assert runner.provider == runner.session.get_providers()[0]
    assert runner.provider in caplog.text
    if not torch.cuda.is_available():
        assert runner.provider == "CPUExecutionProvider"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: nothing to fail")
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_request_without_gpu_fails_fast(standin: Path, device: str) -> None:
    message = r"(CUDA|Tensorrt)ExecutionProvider is not active.*auto"
    with pytest.raises(ProviderUnavailableError, match=message):
        OnnxRunner(standin, device=device)  # type: ignore[arg-type]


def test_bad_arguments(standin: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        OnnxRunner(standin, device="gpu")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="crosspose model export"):
        OnnxRunner(tmp_path / "missing.onnx")
    runner = OnnxRunner(standin, device="cpu", warmup_cameras=0)
    crops, projections, valid, prior, _ = _numpy_inputs(2)
    with pytest.raises(ValueError, match="expected crops"):
        runner.run(crops, projections[:1], valid, prior)
    with pytest.raises(ValueError, match=r"prior \(17, 3\)"):
        runner.run(crops, projections, valid, prior[:5])
    with pytest.raises(ValueError, match="C >= 2"):
        runner.run(crops[:1], projections[:1], valid[:1], prior)


@pytest.mark.gpu
def test_cuda_runs_on_the_gpu(standin: Path) -> None:
    runner = OnnxRunner(standin, device="cuda")
    assert runner.provider == "CUDAExecutionProvider"
    out = runner.run(*_numpy_inputs(4))
    assert out["fused"].shape == (4, 17, 64, 64)


@pytest.mark.network
@pytest.mark.slow
def test_real_network_gives_the_same_heatmaps_on_one_and_two_threads(exported_network: Path) -> None:
    """The real exported network (``conftest.exported_network``) on one and two ONNX Runtime threads: the
    same heatmaps to float32 rounding, probabilities in [0, 1], and the fusion changing the maps (it is
    not a pass-through). Its speed is measured in ``benchmarks/runtimes.py``, not asserted here."""
    inputs = _numpy_inputs(4)
    outs = [OnnxRunner(exported_network, device="cpu", intra_op_threads=threads).run(*inputs)
            for threads in (1, 2)]
    for key in ("heatmaps", "fused"):
        one, two = outs[0][key], outs[1][key]
        assert one.shape == (4, 17, 64, 64)
        assert np.isfinite(one).all()
        assert one.min() >= 0.0
        assert one.max() <= 1.0
        np.testing.assert_allclose(two, one, atol=1e-4)
    assert np.abs(outs[0]["fused"] - outs[0]["heatmaps"]).max() > 1e-3


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU host: the CPU-only start is not what runs")
def test_a_cpu_host_starts_quietly_with_one_line_saying_why(standin: Path) -> None:
    """ONNX Runtime asked for TensorRT/CUDA without a GPU printed "Failed to load library …", "EP Error"
    and "Please install TensorRT libraries" in red for every session; now nothing but our one line."""
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(message)s')\n"
        "from crosspose.inference.runtimes.onnxruntime import open_session\n"
        f"open_session({str(standin)!r}, 'auto'); open_session({str(standin)!r}, 'auto')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == [f"ONNX Runtime runs {standin.name} on CPUExecutionProvider: no NVIDIA GPU driver on "
                     "this host (libcuda.so.1 not found)"] * 2, run.stderr
    assert run.stdout == ""


def test_a_gpu_host_without_its_cuda_libraries_gets_one_warning_naming_what_to_install(
    standin: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from crosspose.inference.runtimes import onnxruntime as runner_module

    # The driver loads, cuBLAS does not: what a GPU host with a bare driver looks like to the loader.
    monkeypatch.setattr(runner_module, "_loadable",
                        lambda library: None if library == "libcuda.so.1" else "libcublas.so.13")
    runner_module.gpu_blocker.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="crosspose.inference.runtimes.onnxruntime"):
            session = runner_module.open_session(standin, "auto")
        with pytest.raises(ProviderUnavailableError, match=r"libcublas\.so\.13.*CUDA 13.*cuDNN 9"):
            runner_module.open_session(standin, "cuda")
    finally:
        runner_module.gpu_blocker.cache_clear()
    assert session.get_providers()[0] == "CPUExecutionProvider"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not the GPU" in warnings[0].getMessage()
    assert "libcublas.so.13 is not on the library path" in warnings[0].getMessage()
    assert "CUDA 13 and cuDNN 9" in warnings[0].getMessage()


def test_the_runner_reads_the_layout_the_file_declares(standin: Path, tmp_path: Path) -> None:
    import onnx

    assert OnnxRunner(standin, device="cpu", warmup_cameras=0).skeleton.name == "h36m17"
    model = onnx.load(str(standin))
    onnx.helper.set_model_props(model, {"skeleton": "crosspose-body99", "crosspose_export": "2"})
    unknown = tmp_path / "unknown.onnx"
    onnx.save(model, str(unknown))
    with pytest.raises(ValueError, match=r"crosspose-body99.*does not know"):
        OnnxRunner(unknown, device="cpu")
    onnx.helper.set_model_props(model, {"skeleton": "h36m17", "joints": "pelvis,l_hip"})
    wrong = tmp_path / "wrong.onnx"
    onnx.save(model, str(wrong))
    with pytest.raises(ValueError, match="declares the joints pelvis,l_hip"):
        OnnxRunner(wrong, device="cpu")
