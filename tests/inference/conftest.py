"""A stand-in for the exported fusion network: its inputs and outputs in a tiny ONNX graph (a second); and
the real exports, made once per run for every module here that reads them."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional

from crosspose.nets.export import EXPORT_FORMAT, INPUT_NAMES, OUTPUT_NAMES, example_inputs
from crosspose.skeleton import H36M17


class _StandIn(nn.Module):
    """Same signature as ``FusionNetwork`` (a person axis first); heatmaps = the crops' grey level pooled
    to 64×64."""

    def forward(self, crops: Tensor, projections: Tensor, valid: Tensor, prior: Tensor,
                window_scale: Tensor) -> tuple[Tensor, ...]:
        views = crops.flatten(0, 1).permute(0, 3, 1, 2)  # (P·C, 3, 256, 256)
        grey = functional.avg_pool2d(views.mean(1, keepdim=True), 4).unflatten(0, crops.shape[:2])
        heatmaps = grey.expand(-1, -1, 17, -1, -1) * window_scale[:, None, None, None, None]  # scale reaches
        fused = heatmaps * valid.to(heatmaps.dtype)[:, :, None, None, None]
        presence = (crops.mean((2, 3, 4)) + 0 * projections.sum((2, 3))
                    + 0 * torch.nan_to_num(prior).sum((1, 2))[:, None])
        return heatmaps, fused, presence


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``crosspose_fusion.onnx`` of :class:`_StandIn`, alone in its folder (no detector beside it), declaring
    its layout as an export does."""
    path = tmp_path_factory.mktemp("runner") / "standin.onnx"
    persons, cameras = torch.export.Dim("P", min=1, max=16), torch.export.Dim("C", min=2, max=64)
    pc = {0: persons, 1: cameras}
    torch.onnx.export(
        _StandIn().eval(), example_inputs(3, num_persons=2), str(path), dynamo=True, external_data=False,
        input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"crops": pc, "projections": pc, "valid": pc, "prior": {0: persons},
                        "window_scale": {0: persons}},
    )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"skeleton": H36M17.name, "joints": ",".join(H36M17.joints),
                                        "crosspose_export": EXPORT_FORMAT})
    onnx.save(model, str(path))
    return path


# -- the real exports (read only: the modules that use them write nothing beside them) -----------------


@pytest.fixture(scope="session")
def exported_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``crosspose_detector.onnx``, the person detector as ``crosspose model export`` writes it (10-20 s on 2
    CPU cores; shared by the detector's and the OpenVINO runtime's tests)."""
    from crosspose.nets import load_blazepose_detector
    from crosspose.nets.export import export_detector_onnx

    folder = tmp_path_factory.mktemp("export")
    return export_detector_onnx(load_blazepose_detector(), folder / "crosspose_detector.onnx")


@pytest.fixture(scope="session")
def exported_network(exported_detector: Path) -> Path:
    """``crosspose_fusion.onnx``, the real network in Human3.6M-17's layout, exported beside its detector as
    ``crosspose model export`` writes them (~25 s on 2 CPU cores; shared by the OpenVINO runtime's and the
    ONNX Runtime runner's tests)."""
    from crosspose.nets.export import build_fusion_network, export_onnx

    return export_onnx(build_fusion_network(), exported_detector.with_name("crosspose_fusion.onnx"))
