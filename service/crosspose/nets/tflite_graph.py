"""Read a TFLite flatbuffer into a plain graph: tensors, constants as numpy, operators with options.

Only what our torch rebuild needs: one subgraph of float ops. Constant weights are folded on the
way in — fp16 ``DEQUANTIZE`` is widened to float32 and ``DENSIFY`` expands sparse weights — so
the graph that comes out holds dense float32 constants and only the ops that touch activations.
The ``tflite`` package (generated flatbuffer accessors, no TensorFlow) does the parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tflite

# TensorType enum of the schema → numpy dtype (only the types these graphs use).
_DTYPES: dict[int, type[np.generic]] = {
    0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8,
}
_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}

# Which options table each op carries, and the fields we read from it.
_OPTIONS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "CONV_2D": (tflite.Conv2DOptions, (
        "Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor", "FusedActivationFunction")),
    "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions, (
        "Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor", "FusedActivationFunction",
        "DepthMultiplier")),
    "ADD": (tflite.AddOptions, ("FusedActivationFunction",)),
    "RESIZE_BILINEAR": (tflite.ResizeBilinearOptions, ("AlignCorners", "HalfPixelCenters")),
    "MAX_POOL_2D": (tflite.Pool2DOptions, (
        "Padding", "StrideH", "StrideW", "FilterHeight", "FilterWidth", "FusedActivationFunction")),
    "CONCATENATION": (tflite.ConcatenationOptions, ("Axis", "FusedActivationFunction")),
    "DEPTH_TO_SPACE": (tflite.DepthToSpaceOptions, ("BlockSize",)),
}


class TfliteError(ValueError):
    """The flatbuffer uses something this reader does not support."""


@dataclass
class TensorInfo:
    """One tensor of the graph: its name, static shape (TFLite layout, NHWC for images) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: type[np.generic]


@dataclass
class Operator:
    """One op: its schema name, input and output tensor indices (-1: absent) and its options."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TfliteGraph:
    """A subgraph with its constants folded to dense numpy arrays (float weights as float32)."""

    tensors: list[TensorInfo]
    constants: dict[int, np.ndarray]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    folded: dict[str, int] = field(default_factory=dict)  # constant DEQUANTIZE/DENSIFY ops applied at read

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return counts


def _index_vector(vec_type: int, table: Any) -> np.ndarray:
    """A SparseIndexVector union (Int32/Uint16/Uint8 vector) as an int64 array."""
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(vec_type)
    if cls is None:
        raise TfliteError(f"unsupported sparse index vector type {vec_type}")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return np.asarray(vec.ValuesAsNumpy(), dtype=np.int64)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any) -> np.ndarray:
    """Expand a TFLite sparse tensor (SparsityParameters: traversal order, block map, CSR levels).

    The stored values are walked level by level in traversal order: a DENSE level of size D
    multiplies every path by D, a SPARSE_CSR level keeps, for each parent position p, the children
    ``segments[p]:segments[p+1]`` whose coordinates are ``indices[...]``. Block dimensions
    (traversal entries past the tensor's rank) are folded back into their original dimension.
    """
    rank = len(shape)
    order = [int(d) for d in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(d) for d in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    positions = np.zeros(1, dtype=np.int64)
    coords: list[np.ndarray] = []
    block_sizes: dict[int, int] = {}
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:  # DENSE
            size = int(meta.DenseSize())
            if order[level] >= rank:
                block_sizes[order[level]] = size
            coords = [np.repeat(c, size) for c in coords]
            coords.append(np.tile(np.arange(size, dtype=np.int64), len(positions)))
            positions = (positions[:, None] * size + np.arange(size, dtype=np.int64)[None]).ravel()
        else:  # SPARSE_CSR
            segments = _index_vector(meta.ArraySegmentsType(), meta.ArraySegments())
            indices = _index_vector(meta.ArrayIndicesType(), meta.ArrayIndices())
            starts, counts = segments[positions], segments[positions + 1] - segments[positions]
            first_child = np.repeat(np.cumsum(counts) - counts, counts)
            positions = np.repeat(starts, counts) + np.arange(int(counts.sum()), dtype=np.int64) - first_child
            coords = [np.repeat(c, counts) for c in coords]
            coords.append(indices[positions])
    by_dim = dict(zip(order, coords, strict=True))
    full = []
    for d in range(rank):
        c = by_dim[d]
        for j, orig in enumerate(block_map):
            if orig == d:
                block_dim = rank + j
                c = c * block_sizes[block_dim] + by_dim[block_dim]
        full.append(c)
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(full)] = values[positions]
    return dense


def _options(op: Any, kind: str) -> dict[str, Any]:
    spec = _OPTIONS.get(kind)
    if spec is None:
        return {}
    cls, names = spec
    table = op.BuiltinOptions()
    if table is None:
        raise TfliteError(f"{kind} operator without options")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return {name: getattr(opts, name)() for name in names}


def read_tflite(data: bytes) -> TfliteGraph:
    """Parse a .tflite model (first subgraph) and fold its constant DEQUANTIZE/DENSIFY chains."""
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise TfliteError(f"expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)

    tensors: list[TensorInfo] = []
    constants: dict[int, np.ndarray] = {}
    sparse: dict[int, Any] = {}
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = _DTYPES.get(t.Type())
        if dtype is None:
            raise TfliteError(f"tensor {t.Name().decode()!r} has unsupported type {t.Type()}")
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        tensors.append(TensorInfo(t.Name().decode(), shape, dtype))
        buf = model.Buffers(t.Buffer())
        if buf is not None and buf.DataLength() > 0:
            values = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype)
            if t.Sparsity() is not None:
                sparse[i] = t.Sparsity()
                constants[i] = values  # flat stored values, densified by the DENSIFY op below
            else:
                constants[i] = values.reshape(shape)

    operators: list[Operator] = []
    folded: dict[str, int] = {}
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        inputs = [int(i) for i in op.InputsAsNumpy()]
        outputs = [int(i) for i in op.OutputsAsNumpy()]
        if kind in ("DEQUANTIZE", "DENSIFY") and inputs[0] in constants:
            src, dst = inputs[0], outputs[0]
            if kind == "DENSIFY":
                constants[dst] = densify(constants[src], tensors[dst].shape, sparse[src])
            else:
                if tensors[src].dtype is not np.float16:
                    raise TfliteError("only fp16 → fp32 DEQUANTIZE of constants is supported")
                constants[dst] = constants[src].astype(np.float32)
            folded[kind] = folded.get(kind, 0) + 1
            continue
        if kind in ("DEQUANTIZE", "DENSIFY"):
            raise TfliteError(f"{kind} of a non-constant tensor is not supported")
        operators.append(Operator(kind, inputs, outputs, _options(op, kind)))

    return TfliteGraph(
        tensors=tensors,
        constants=constants,
        operators=operators,
        inputs=[int(i) for i in graph.InputsAsNumpy()],
        outputs=[int(i) for i in graph.OutputsAsNumpy()],
        folded=folded,
    )
