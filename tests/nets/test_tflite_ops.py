"""TFLite op semantics in torch, checked against the TFLite formulas written out in numpy.

No .tflite file needed: each op module is built directly and compared with what TFLite computes
(padding rule, resize coordinate rules, NHWC element order, depth-to-space channel order, CSR
sparse storage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from crosspose.cli.model import app as model_app
from crosspose.nets.tflite_graph import densify
from crosspose.nets.tflite_torch import Conv, DepthToSpace, MaxPool, Reshape, ResizeBilinear, same_padding


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(128, 3, 2, (0, 1)), (129, 3, 2, (1, 1)), (64, 3, 1, (1, 1)), (64, 5, 2, (1, 2)), (8, 2, 2, (0, 0)),
     (7, 1, 1, (0, 0))],
)
def test_same_padding_puts_the_odd_pixel_after(
    size: int, kernel: int, stride: int, expected: tuple[int, int]
) -> None:
    assert same_padding(size, kernel, stride, 1) == expected


def _tf_resize(x: np.ndarray, out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """TFLite's reference bilinear resize of a (H, W) image to (out, out), written plainly."""
    n = x.shape[0]
    scale = (n - 1) / (out - 1) if align_corners and out > 1 else n / out
    y = np.zeros((out, out))
    for i in range(out):
        for j in range(out):
            fy = (i + 0.5) * scale - 0.5 if half_pixel else i * scale
            fx = (j + 0.5) * scale - 0.5 if half_pixel else j * scale
            y0, x0 = int(np.floor(fy)), int(np.floor(fx))
            dy, dx = fy - y0, fx - x0
            ya, yb = max(y0, 0), min(y0 + 1, n - 1)
            xa, xb = max(x0, 0), min(x0 + 1, n - 1)
            y[i, j] = ((x[ya, xa] * (1 - dx) + x[ya, xb] * dx) * (1 - dy)
                       + (x[yb, xa] * (1 - dx) + x[yb, xb] * dx) * dy)
    return y


@pytest.mark.parametrize(("align_corners", "half_pixel"), [(False, True), (True, False), (False, False)])
def test_resize_bilinear_follows_the_tflite_coordinate_rule(align_corners: bool, half_pixel: bool) -> None:
    x = np.random.default_rng(0).normal(size=(5, 5))
    op = ResizeBilinear([5, 5], [11, 11], align_corners, half_pixel)
    got = op(torch.from_numpy(x).float()[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, _tf_resize(x, 11, align_corners, half_pixel), atol=1e-5)


def test_depth_to_space_uses_the_nhwc_channel_order() -> None:
    rng = np.random.default_rng(1)
    b, h, w, c = 2, 3, 4, 5
    nhwc = rng.normal(size=(1, h, w, b * b * c))
    expected = np.zeros((1, h * b, w * b, c))
    for i in range(b):
        for j in range(b):
            expected[0, i::b, j::b, :] = nhwc[0, :, :, (i * b + j) * c:(i * b + j + 1) * c]
    got = DepthToSpace(b)(torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), expected)


def test_reshape_keeps_the_nhwc_element_order() -> None:
    nhwc = np.arange(2 * 3 * 4 * 6, dtype=np.float64).reshape(2, 3, 4, 6)
    got = Reshape([1, 72, 1], from_image=True, to_image=False)(torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(got.numpy(), nhwc.reshape(2, 72, 1))


def test_asymmetric_same_conv_matches_explicit_bottom_right_padding() -> None:
    torch.manual_seed(0)
    conv = Conv(3, 4, [3, 3], [2, 2], [1, 1], 1, [0, 1, 0, 1], act=3, bias=True)
    torch.nn.init.normal_(conv.weight)
    x = torch.randn(1, 3, 8, 8)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1))
    expected = torch.nn.functional.conv2d(padded, conv.weight, conv.bias, stride=2).clamp(0, 6)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape == (1, 4, 4, 4)


def test_max_pool_same_padding_never_wins() -> None:
    x = -torch.ones(1, 1, 3, 3)
    out = MaxPool([2, 2], [2, 2], [0, 1, 0, 1], act=0)(x)
    assert out.shape == (1, 1, 2, 2)
    assert torch.all(out == -1)


@dataclass
class _Vec:
    values: list[int]

    def ValuesAsNumpy(self) -> np.ndarray:
        return np.array(self.values)


@dataclass
class _Dim:
    dense: int = 0
    segments: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)

    def Format(self) -> int:
        return 0 if self.dense else 1

    def DenseSize(self) -> int:
        return self.dense

    def ArraySegmentsType(self) -> int:
        return 1

    def ArrayIndicesType(self) -> int:
        return 1

    def ArraySegments(self) -> Any:
        return self.segments

    def ArrayIndices(self) -> Any:
        return self.indices


@dataclass
class _Sparsity:
    order: list[int]
    dims: list[_Dim]
    block_map: list[int] = field(default_factory=list)

    def TraversalOrderAsNumpy(self) -> np.ndarray:
        return np.array(self.order)

    def BlockMapLength(self) -> int:
        return len(self.block_map)

    def BlockMapAsNumpy(self) -> np.ndarray:
        return np.array(self.block_map)

    def DimMetadataLength(self) -> int:
        return len(self.dims)

    def DimMetadata(self, i: int) -> _Dim:
        return self.dims[i]


def test_densify_expands_csr_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # The schema's Int32Vector accessor is swapped for the plain lists above.
    import crosspose.nets.tflite_graph as tg

    monkeypatch.setattr(tg, "_index_vector", lambda _t, table: np.asarray(table, dtype=np.int64))
    dense = np.array([[0, 2, 0, 0], [0, 0, 0, 0], [5, 0, 0, 7]], dtype=np.float16)
    rows, cols = np.nonzero(dense)
    segments = [0, *np.cumsum([np.count_nonzero(r) for r in dense]).tolist()]
    sparsity = _Sparsity([0, 1], [_Dim(dense=3), _Dim(segments=segments, indices=cols.tolist())])
    got = densify(dense[rows, cols], dense.shape, sparsity)
    np.testing.assert_array_equal(got, dense)
    # 2×2 blocks (block map on both axes): dense block grid, CSR over block columns.
    big = np.zeros((4, 4), np.float32)
    big[0:2, 2:4] = [[1, 2], [3, 4]]
    big[2:4, 0:2] = [[5, 6], [7, 8]]
    blocks = _Sparsity(
        [0, 1, 2, 3],
        [_Dim(dense=2), _Dim(segments=[0, 1, 2], indices=[1, 0]), _Dim(dense=2), _Dim(dense=2)],
        block_map=[0, 1],
    )
    got = densify(np.arange(1, 9, dtype=np.float32), big.shape, blocks)
    np.testing.assert_array_equal(got, big)


def test_build_command_rejects_an_unknown_model() -> None:
    result = CliRunner().invoke(model_app, ["build", "--only", "resnet"])
    assert result.exit_code != 0
    assert "blazepose_full" in result.output
