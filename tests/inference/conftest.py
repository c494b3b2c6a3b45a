"""A stand-in for the exported fusion network: its inputs and outputs in a tiny ONNX graph (a second)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional

from crosspose.nets.export import INPUT_NAMES, OUTPUT_NAMES, example_inputs


class _StandIn(nn.Module):
    """Same signature as ``FusionNetwork``; heatmaps = the crops' grey level pooled to 64×64."""

    def forward(self, crops: Tensor, projections: Tensor, valid: Tensor, prior: Tensor,
                window_scale: Tensor) -> tuple[Tensor, ...]:
        grey = functional.avg_pool2d(crops.permute(0, 3, 1, 2).mean(1, keepdim=True), 4)  # (C, 1, 64, 64)
        heatmaps = grey.expand(-1, 17, -1, -1) * window_scale  # the scale reaches the graph
        fused = heatmaps * valid.to(heatmaps.dtype)[:, None, None, None]
        presence = crops.mean((1, 2, 3)) + 0 * projections.sum((1, 2)) + 0 * torch.nan_to_num(prior).sum()
        return heatmaps, fused, presence


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``crosspose_fusion.onnx`` of :class:`_StandIn`, alone in its folder (no detector beside it)."""
    path = tmp_path_factory.mktemp("runner") / "standin.onnx"
    cameras = torch.export.Dim("C", min=2, max=64)
    torch.onnx.export(
        _StandIn().eval(), example_inputs(3), str(path), dynamo=True, external_data=False,
        input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"crops": {0: cameras}, "projections": {0: cameras}, "valid": {0: cameras},
                        "prior": None, "window_scale": None},
    )
    return path
