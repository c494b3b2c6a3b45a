"""A TFLite float graph rebuilt as a plain torch module, op for op, with TFLite's exact semantics.

``plan_from_graph`` turns a ``TfliteGraph`` into a *plan* — a JSON-like list of op descriptions
(kind, constructor arguments, tensor slots) — plus the float32 weights in torch layout.
``GraphModule(plan)`` builds the modules from the plan alone, so a saved model is the plan and a
``state_dict`` and loading it needs neither the .tflite file nor the ``tflite`` package.

Layout: rank-4 tensors live in NCHW inside the module (TFLite's are NHWC); the module's inputs and
outputs are NCHW for rank 4 and TFLite's layout otherwise. Ops that depend on layout (RESHAPE,
CONCATENATION, PAD, DEPTH_TO_SPACE) are translated, and TFLite's SAME padding (extra row/column
at the bottom/right) is computed from the graph's static shapes. ``forward`` walks a fixed op
list — no data-dependent control flow — so tracing and ONNX export see a static graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from crosspose.nets.tflite_graph import TfliteError, TfliteGraph

Plan = dict[str, Any]

# ActivationFunctionType of the schema: NONE, RELU, RELU_N1_TO_1, RELU6, TANH.
_SUPPORTED_ACTIVATIONS = (0, 1, 2, 3, 4)
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _activate(x: Tensor, act: int) -> Tensor:
    if act == 1:
        return functional.relu(x)
    if act == 2:
        return x.clamp(-1.0, 1.0)
    if act == 3:
        return x.clamp(0.0, 6.0)
    if act == 4:
        return torch.tanh(x)
    return x


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after) of one spatial axis: the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Module):
    """CONV_2D / DEPTHWISE_CONV_2D (``groups`` = input channels) with padding and fused activation."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: list[int], stride: list[int],
        dilation: list[int], groups: int, padding: list[int], act: int, bias: bool,
    ) -> None:
        super().__init__()
        kh, kw = kernel
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.stride = (stride[0], stride[1])
        self.dilation = (dilation[0], dilation[1])
        self.groups = groups
        top, bottom, left, right = padding
        # Symmetric padding goes into the convolution; TFLite's asymmetric SAME needs an explicit pad.
        self.symmetric = (top, left) if top == bottom and left == right else None
        self.explicit = (left, right, top, bottom)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        if self.symmetric is None:
            x = functional.pad(x, self.explicit)
            padding: tuple[int, int] = (0, 0)
        else:
            padding = self.symmetric
        y = functional.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return _activate(y, self.act)


class Add(nn.Module):
    def __init__(self, act: int) -> None:
        super().__init__()
        self.act = act

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return _activate(a + b, self.act)


class Pad(nn.Module):
    """PAD with zeros; ``pad`` is in ``functional.pad`` order for the module's layout."""

    def __init__(self, pad: list[int]) -> None:
        super().__init__()
        self.pad = tuple(pad)

    def forward(self, x: Tensor) -> Tensor:
        return functional.pad(x, self.pad)


class ResizeBilinear(nn.Module):
    """RESIZE_BILINEAR with TFLite's coordinate rule chosen by its two flags.

    ``half_pixel_centers`` is torch's ``align_corners=False`` and ``align_corners`` is torch's
    ``align_corners=True``; TFLite's legacy mode (neither flag: source = dst × in/out, clamped)
    has no torch equivalent and is done with two small interpolation matrices.
    """

    def __init__(
        self, in_size: list[int], size: list[int], align_corners: bool, half_pixel_centers: bool
    ) -> None:
        super().__init__()
        self.size = (size[0], size[1])
        self.mode = "align" if align_corners else "half" if half_pixel_centers else "legacy"
        if self.mode == "legacy":
            self.register_buffer("rows", self._legacy_matrix(in_size[0], size[0]), persistent=False)
            self.register_buffer("cols", self._legacy_matrix(in_size[1], size[1]), persistent=False)

    @staticmethod
    def _legacy_matrix(n_in: int, n_out: int) -> Tensor:
        src = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = src - lo
        m = np.zeros((n_out, n_in), dtype=np.float64)
        np.add.at(m, (np.arange(n_out), lo), 1 - frac)
        np.add.at(m, (np.arange(n_out), hi), frac)
        return torch.from_numpy(m.astype(np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "legacy":
            return torch.einsum("oh,nchw,pw->ncop", self.rows, x, self.cols)
        return functional.interpolate(x, size=self.size, mode="bilinear", align_corners=self.mode == "align")


class MaxPool(nn.Module):
    """MAX_POOL_2D; SAME padding never wins the max (TFLite skips padded cells), so pad with −inf."""

    def __init__(self, kernel: list[int], stride: list[int], padding: list[int], act: int) -> None:
        super().__init__()
        self.kernel = (kernel[0], kernel[1])
        self.stride = (stride[0], stride[1])
        top, bottom, left, right = padding
        self.explicit = (left, right, top, bottom)
        self.needs_pad = any(padding)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        if self.needs_pad:
            x = functional.pad(x, self.explicit, value=float("-inf"))
        return _activate(functional.max_pool2d(x, self.kernel, self.stride), self.act)


class Reshape(nn.Module):
    """RESHAPE with TFLite's (NHWC, row-major) element order; the batch axis stays free."""

    def __init__(self, shape: list[int], from_image: bool, to_image: bool) -> None:
        super().__init__()
        self.shape = [-1, *shape[1:]]
        self.from_image = from_image
        self.to_image = to_image

    def forward(self, x: Tensor) -> Tensor:
        if self.from_image:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(self.shape)
        if self.to_image:
            x = x.permute(0, 3, 1, 2)
        return x


class Logistic(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)


class DepthToSpace(nn.Module):
    """DEPTH_TO_SPACE: TFLite orders the channel axis as (block row, block column, channel)."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        b = self.block
        _, c, h, w = x.shape
        y = x.reshape(-1, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(-1, c // (b * b), h * b, w * b)


class Concat(nn.Module):
    def __init__(self, axis: int, act: int) -> None:
        super().__init__()
        self.axis = axis
        self.act = act

    def forward(self, *xs: Tensor) -> Tensor:
        return _activate(torch.cat(xs, dim=self.axis), self.act)


_MODULES: dict[str, Callable[..., nn.Module]] = {
    "conv": Conv, "add": Add, "pad": Pad, "resize_bilinear": ResizeBilinear, "max_pool": MaxPool,
    "reshape": Reshape, "logistic": Logistic, "depth_to_space": DepthToSpace, "concat": Concat,
}


class GraphModule(nn.Module):
    """The rebuilt graph: ``forward(*inputs) -> tuple of outputs`` in the graph's order.

    Rank-4 inputs and outputs are NCHW (the TFLite graph's are NHWC); any batch size works.
    ``outputs`` (names) keeps only those outputs, in that order, and drops every op they do not
    need; op indices (and so ``state_dict`` keys) stay those of the full plan.
    """

    def __init__(self, plan: Plan, outputs: list[str] | None = None) -> None:
        super().__init__()
        self.plan = plan
        names: list[str] = list(plan["output_names"])
        self.output_names = list(outputs) if outputs is not None else names
        unknown = sorted(set(self.output_names) - set(names))
        if unknown:
            raise KeyError(f"the graph has no output(s) {unknown}; it has {names}")
        self.output_slots = [int(plan["outputs"][names.index(n)]) for n in self.output_names]
        needed = set(self.output_slots)
        keep = [False] * len(plan["ops"])
        for k in range(len(plan["ops"]) - 1, -1, -1):  # ops are in topological order
            if int(plan["ops"][k]["output"]) in needed:
                keep[k] = True
                needed.update(int(i) for i in plan["ops"][k]["inputs"])
        self.ops = nn.ModuleDict(
            {str(k): _MODULES[step["kind"]](**step["args"]) for k, step in enumerate(plan["ops"]) if keep[k]}
        )
        self.op_inputs: list[list[int]] = [list(s["inputs"]) for k, s in enumerate(plan["ops"]) if keep[k]]
        self.op_outputs: list[int] = [int(s["output"]) for k, s in enumerate(plan["ops"]) if keep[k]]
        self.input_slots: list[int] = list(plan["inputs"])

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        values: dict[int, Tensor] = dict(zip(self.input_slots, inputs, strict=True))
        for op, slots, out in zip(self.ops.values(), self.op_inputs, self.op_outputs, strict=True):
            values[out] = op(*(values[s] for s in slots))
        return tuple(values[s] for s in self.output_slots)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise TfliteError(message)


def plan_from_graph(graph: TfliteGraph) -> tuple[Plan, dict[str, Tensor]]:
    """The plan of ``graph`` and its weights as a ``GraphModule`` state dict (float32, torch layout)."""
    ops: list[dict[str, Any]] = []
    weights: dict[str, Tensor] = {}

    def shape(i: int) -> tuple[int, ...]:
        return graph.tensors[i].shape

    def const(i: int) -> np.ndarray:
        _check(i in graph.constants, f"tensor {graph.tensors[i].name!r} must be a constant")
        return graph.constants[i]

    for op in graph.operators:
        o = op.options
        out = op.outputs[0]
        _check(len(op.outputs) == 1, f"{op.kind} with several outputs is not supported")
        act = int(o.get("FusedActivationFunction", 0))
        _check(act in _SUPPORTED_ACTIVATIONS, f"{op.kind}: fused activation {act} is not supported")
        index = len(ops)
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w_slot = op.inputs[0], op.inputs[1]
            bias_slot = op.inputs[2] if len(op.inputs) > 2 else -1
            w = const(w_slot).astype(np.float32)
            _, h, wd, in_ch = shape(x)
            kh, kw = int(w.shape[1]), int(w.shape[2])
            stride, dilation = [o["StrideH"], o["StrideW"]], [o["DilationHFactor"], o["DilationWFactor"]]
            pad = [0, 0, 0, 0]  # VALID
            if o["Padding"] == 0:  # SAME
                pad = [*same_padding(h, kh, stride[0], dilation[0]),
                       *same_padding(wd, kw, stride[1], dilation[1])]
            if op.kind == "CONV_2D":
                torch_w = w.transpose(0, 3, 1, 2)  # OHWI → OIHW
                groups, out_ch = 1, int(w.shape[0])
                _check(int(w.shape[3]) == in_ch, "grouped CONV_2D is not supported")
            else:
                torch_w = w[0].transpose(2, 0, 1)[:, None]  # 1HW(C·M) → (C·M)1HW
                groups, out_ch = in_ch, int(w.shape[3])
            args = {
                "in_channels": in_ch, "out_channels": out_ch, "kernel": [kh, kw], "stride": stride,
                "dilation": dilation, "groups": groups, "padding": pad, "act": act, "bias": bias_slot >= 0,
            }
            weights[f"ops.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(torch_w))
            if bias_slot >= 0:
                weights[f"ops.{index}.bias"] = torch.from_numpy(const(bias_slot).astype(np.float32))
            ops.append({"kind": "conv", "args": args, "inputs": [x], "output": out})
        elif op.kind == "ADD":
            _check(not any(i in graph.constants for i in op.inputs), "ADD of a constant is not supported")
            _check(shape(op.inputs[0]) == shape(op.inputs[1]), "broadcasting ADD is not supported")
            ops.append({"kind": "add", "args": {"act": act}, "inputs": op.inputs[:2], "output": out})
        elif op.kind == "PAD":
            p = const(op.inputs[1]).astype(int).tolist()
            _check(len(p) == 4 and p[0] == [0, 0], "PAD: only spatial/channel padding of images is supported")
            # NHWC rows [[n],[h],[w],[c]] → functional.pad on NCHW: (w before/after, h …, c …).
            pad = [*p[2], *p[1], *p[3]]
            ops.append({"kind": "pad", "args": {"pad": pad}, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "RESIZE_BILINEAR":
            size = [int(v) for v in const(op.inputs[1])]
            args = {
                "in_size": list(shape(op.inputs[0])[1:3]), "size": size,
                "align_corners": bool(o["AlignCorners"]), "half_pixel_centers": bool(o["HalfPixelCenters"]),
            }
            ops.append({"kind": "resize_bilinear", "args": args, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "MAX_POOL_2D":
            _, h, wd, _ = shape(op.inputs[0])
            k, s = [o["FilterHeight"], o["FilterWidth"]], [o["StrideH"], o["StrideW"]]
            pad = [0, 0, 0, 0]
            if o["Padding"] == 0:
                pad = [*same_padding(h, k[0], s[0], 1), *same_padding(wd, k[1], s[1], 1)]
            args = {"kernel": k, "stride": s, "padding": pad, "act": act}
            ops.append({"kind": "max_pool", "args": args, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "RESHAPE":
            target = list(shape(out))
            from_image = len(shape(op.inputs[0])) == 4
            args = {"shape": target, "from_image": from_image, "to_image": len(target) == 4}
            ops.append({"kind": "reshape", "args": args, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "LOGISTIC":
            ops.append({"kind": "logistic", "args": {}, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "DEPTH_TO_SPACE":
            args = {"block": int(o["BlockSize"])}
            ops.append({"kind": "depth_to_space", "args": args, "inputs": [op.inputs[0]], "output": out})
        elif op.kind == "CONCATENATION":
            rank = len(shape(out))
            axis = int(o["Axis"]) % rank
            if rank == 4:
                axis = _NHWC_TO_NCHW_AXIS[axis]
            _check(not any(i in graph.constants for i in op.inputs), "CONCATENATION of constants")
            args = {"axis": axis, "act": act}
            ops.append({"kind": "concat", "args": args, "inputs": op.inputs, "output": out})
        else:
            raise TfliteError(f"operator {op.kind} is not supported")

    plan: Plan = {
        "format": 1,
        "ops": ops,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "output_names": [graph.tensors[i].name for i in graph.outputs],
        "input_shapes": [list(graph.tensors[i].shape) for i in graph.inputs],
        "output_shapes": [list(graph.tensors[i].shape) for i in graph.outputs],
    }
    return plan, weights


def load_pruned(module: GraphModule, state_dict: dict[str, Tensor]) -> None:
    """Load a full plan's ``state_dict`` into a module built with fewer outputs (unused keys dropped)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    if missing:
        raise KeyError(f"state dict lacks {missing[:5]}")
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=True)
