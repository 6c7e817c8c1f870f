"""Read a .tflite flatbuffer into an `edgecnn.ir.Graph`.

The flatbuffer accessors of the `tflite` package trust every offset they
read. A truncated or corrupted file would make them raise deep inside
`flatbuffers`, loop over absurd vector lengths, or hand back short slices, so
this module checks each length and index before using it and turns anything
that still goes wrong into a `ModelFormatError` that says where.
"""

from __future__ import annotations

import struct
from types import MappingProxyType

import numpy as np
import tflite

from ..errors import EdgecnnError, ModelFormatError
from ..ir import Graph, Node, Tensor

# TensorType enum value -> numpy dtype name (schema.fbs)
_TENSOR_TYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT8: "int8",
    tflite.TensorType.BOOL: "bool",
    tflite.TensorType.FLOAT16: "float16",
}

_BUILTIN_NAMES = {value: name for name, value in vars(tflite.BuiltinOperator).items()
                  if not name.startswith("_")}
_ACTIVATION_NAMES = {value: name for name, value in vars(tflite.ActivationFunctionType).items()
                     if not name.startswith("_")}
_PADDING_NAMES = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}

# Error types the flatbuffers accessors raise on bad offsets.
_PARSE_ERRORS = (IndexError, struct.error, ValueError, TypeError, OverflowError,
                 UnicodeDecodeError, AttributeError, RecursionError, MemoryError)

_MAX_RANK = 8
_MAX_ELEMENTS = 2**31 - 1  # what an int32 index (and every TFLite kernel) can address

# The values a zero point may take in each integer type (the quantization spec: a
# zero point is a value of the tensor's own type, so that real 0.0 is representable).
_ZERO_POINT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def load_graph(model: bytes | bytearray | memoryview) -> Graph:
    """Parse and check a .tflite model held in memory."""
    buf = bytes(model)
    _check_header(buf)
    try:
        return _Reader(buf).graph()
    except EdgecnnError:
        raise
    except _PARSE_ERRORS as exc:
        raise ModelFormatError(f"corrupted flatbuffer ({type(exc).__name__}: {exc})",
                               "model file") from None


def _check_header(buf: bytes) -> None:
    if len(buf) < 8:
        raise ModelFormatError(f"file is {len(buf)} bytes long, too short for a .tflite model",
                               "byte offset 0")
    if buf[4:8] != b"TFL3":
        raise ModelFormatError(f"missing the .tflite file identifier 'TFL3' (found {buf[4:8]!r})",
                               "byte offset 4")
    root = struct.unpack_from("<I", buf, 0)[0]
    if root + 4 > len(buf):
        raise ModelFormatError(f"root table offset {root} is past the end of the "
                               f"{len(buf)}-byte file (truncated?)", "byte offset 0")


class _Reader:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.model = tflite.Model.GetRootAsModel(buf, 0)

    # -- checked accessors -------------------------------------------------

    def _length(self, n: int, what: str, min_element_size: int = 1) -> int:
        """A vector length that cannot be larger than the file that holds it."""
        if n < 0 or n * min_element_size > len(self.buf):
            raise ModelFormatError(f"{what} claims {n} elements, more than the "
                                   f"{len(self.buf)}-byte file can hold")
        return n

    def _int_vector(self, array, what: str) -> tuple[int, ...]:
        # `*AsNumpy()` returns 0 when the vector is absent. (`what` names it in tracebacks.)
        if isinstance(array, int):
            return ()
        return tuple(int(v) for v in array)

    # -- the model ---------------------------------------------------------

    def graph(self) -> Graph:
        model = self.model
        n_subgraphs = self._length(model.SubgraphsLength(), "subgraph list", 4)
        if n_subgraphs < 1:
            raise ModelFormatError("the model has no subgraph", "model")
        opcodes = self._opcodes()
        buffers = self._buffers()
        subgraph = model.Subgraphs(0)
        tensors = self._tensors(subgraph, buffers)
        nodes = self._nodes(subgraph, opcodes, tensors)
        inputs = self._int_vector(subgraph.InputsAsNumpy(), "subgraph inputs")
        outputs = self._int_vector(subgraph.OutputsAsNumpy(), "subgraph outputs")
        for role, indices in (("input", inputs), ("output", outputs)):
            if not indices:
                raise ModelFormatError(f"the subgraph declares no {role}s", "subgraph 0")
            for i in indices:
                if not 0 <= i < len(tensors):
                    raise ModelFormatError(f"{role} tensor index {i} out of range "
                                           f"(the subgraph has {len(tensors)} tensors)", "subgraph 0")
        _check_dataflow(tensors, nodes, inputs, outputs)
        description = model.Description()
        description = description.decode("utf-8", "replace") if description else ""
        return Graph(tuple(tensors), tuple(nodes), inputs, outputs, description)

    def _opcodes(self) -> list[str]:
        names = []
        n = self._length(self.model.OperatorCodesLength(), "operator code list", 4)
        for i in range(n):
            code = self.model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == tflite.BuiltinOperator.CUSTOM:
                custom = code.CustomCode()
                names.append("CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?"))
            else:
                names.append(_BUILTIN_NAMES.get(builtin, f"UNKNOWN_BUILTIN_{builtin}"))
        return names

    def _buffers(self) -> list:
        n = self._length(self.model.BuffersLength(), "buffer list", 4)
        return [self.model.Buffers(i) for i in range(n)]

    def _buffer_bytes(self, buffer, where: str) -> bytes | None:
        offset = buffer.Offset()
        if offset > 1:  # large models keep data outside the flatbuffer
            size = buffer.Size()
            if offset + size > len(self.buf):
                raise ModelFormatError(f"buffer data [{offset}, {offset + size}) is past the end "
                                       f"of the {len(self.buf)}-byte file", where)
            return self.buf[offset:offset + size]
        n = self._length(buffer.DataLength(), f"{where} buffer", 1)
        if n == 0:
            return None
        data = buffer.DataAsNumpy()
        if isinstance(data, int) or data.size != n:
            raise ModelFormatError("buffer data runs past the end of the file", where)
        return data.tobytes()

    def _tensors(self, subgraph, buffers) -> list[Tensor]:
        n = self._length(subgraph.TensorsLength(), "tensor list", 4)
        return [self._tensor(subgraph.Tensors(i), i, buffers) for i in range(n)]

    def _tensor(self, t, index: int, buffers) -> Tensor:
        raw_name = t.Name()
        name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{index}"
        where = f"tensor {index} '{name}'"
        rank = self._length(t.ShapeLength(), f"{where} shape", 4)
        if rank > _MAX_RANK:
            raise ModelFormatError(f"rank {rank} is larger than {_MAX_RANK}", where)
        shape = self._int_vector(t.ShapeAsNumpy(), f"{where} shape")
        if any(d < 0 for d in shape):
            raise ModelFormatError(f"shape {shape} has a negative dimension (dynamic shapes "
                                   "are not supported)", where)
        if int(np.prod(shape, dtype=np.float64)) > _MAX_ELEMENTS:
            raise ModelFormatError(f"shape {shape} has more than {_MAX_ELEMENTS} elements", where)
        signature = self._int_vector(t.ShapeSignatureAsNumpy(), f"{where} shape signature")
        if len(signature) != len(shape):
            signature = shape
        type_code = t.Type()
        dtype = _TENSOR_TYPES.get(type_code, f"tensor_type_{type_code}")
        scales, zero_points, qdim = self._quantization(t, where)

        data = None
        buffer_index = t.Buffer()
        if not 0 <= buffer_index < max(len(buffers), 1):
            raise ModelFormatError(f"buffer index {buffer_index} out of range "
                                   f"({len(buffers)} buffers)", where)
        if buffers and buffer_index > 0:
            raw = self._buffer_bytes(buffers[buffer_index], where)
            if raw is not None:
                if dtype not in _TENSOR_TYPES.values():
                    raise ModelFormatError(f"constant of unknown type code {type_code}", where)
                expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                if len(raw) != expected:
                    raise ModelFormatError(f"constant data is {len(raw)} bytes but shape {shape} "
                                           f"of {dtype} needs {expected}", where)
                data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
                data = data.astype(dtype, copy=False)
                data.flags.writeable = False
        _check_quantization(dtype, shape, scales, zero_points, qdim, where)
        return Tensor(index, name, shape, dtype, scales, zero_points, qdim, data, signature)

    def _quantization(self, t, where: str):
        q = t.Quantization()
        if q is None:
            return (), (), 0
        n_scales = self._length(q.ScaleLength(), f"{where} scales", 4)
        n_zps = self._length(q.ZeroPointLength(), f"{where} zero points", 8)
        if n_scales == 0:
            return (), (), 0
        scales = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
        zps = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64) if n_zps else np.zeros(n_scales, np.int64)
        if scales.size != n_scales or zps.size != n_scales:
            raise ModelFormatError(f"{n_scales} scales but {zps.size} zero points", where)
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise ModelFormatError(f"quantization scales must be finite and positive, got "
                                   f"{scales[:4].tolist()}", where)
        return (tuple(float(s) for s in scales), tuple(int(z) for z in zps),
                int(q.QuantizedDimension()))

    def _nodes(self, subgraph, opcodes: list[str], tensors: list[Tensor]) -> list[Node]:
        n_tensors = len(tensors)
        n = self._length(subgraph.OperatorsLength(), "operator list", 4)
        nodes = []
        for i in range(n):
            op = subgraph.Operators(i)
            opcode_index = op.OpcodeIndex()
            if not 0 <= opcode_index < len(opcodes):
                raise ModelFormatError(f"opcode index {opcode_index} out of range "
                                       f"({len(opcodes)} operator codes)", f"operator {i}")
            name = opcodes[opcode_index]
            where = f"operator {i} ({name})"
            inputs = self._int_vector(op.InputsAsNumpy(), f"{where} inputs")
            outputs = self._int_vector(op.OutputsAsNumpy(), f"{where} outputs")
            for t in inputs + outputs:
                if not -1 <= t < n_tensors:
                    raise ModelFormatError(f"tensor index {t} out of range "
                                           f"({n_tensors} tensors)", where)
            if not outputs or -1 in outputs:
                raise ModelFormatError("operator without a valid output tensor", where)
            options = _read_options(op, name)
            if name == "TRANSPOSE":
                options.update(_transpose_perm(inputs, tensors, where))
            nodes.append(Node(i, name, inputs, outputs, MappingProxyType(options)))
        return nodes


def _check_quantization(dtype: str, shape, scales, zero_points, qdim: int, where: str) -> None:
    """Zero points inside the tensor's type; per-channel parameters on an existing axis,
    one per channel."""
    low, high = _ZERO_POINT_RANGES.get(dtype, (None, None))
    if low is not None and any(not low <= z <= high for z in zero_points):
        bad = next(z for z in zero_points if not low <= z <= high)
        raise ModelFormatError(f"zero point {bad} is outside the range of {dtype} "
                               f"[{low}, {high}]", where)
    if len(scales) > 1 and not (0 <= qdim < len(shape) and shape[qdim] == len(scales)):
        raise ModelFormatError(f"{len(scales)} per-channel scales on quantized dimension {qdim} "
                               f"do not match shape {tuple(shape)}", where)


def _check_dataflow(tensors, nodes, inputs, outputs) -> None:
    """Each tensor has at most one writer, which is not a graph input, not a constant and
    not the operator's own input (a kernel writing what it reads gives wrong answers)."""
    for role, indices in (("input", inputs), ("output", outputs)):
        if len(set(indices)) != len(indices):
            raise ModelFormatError(f"the subgraph lists a tensor twice among its {role}s "
                                   f"{list(indices)}", "subgraph 0")
    for i in inputs:
        if tensors[i].is_constant:
            raise ModelFormatError(f"graph input {tensors[i].describe()} is a constant",
                                   "subgraph 0")
    writer: dict[int, int] = {}
    graph_inputs = set(inputs)
    for node in nodes:
        where = node.describe()
        if len(set(node.outputs)) != len(node.outputs):
            raise ModelFormatError(f"lists output tensor(s) {list(node.outputs)} twice", where)
        for t in node.outputs:
            if t in node.inputs:
                raise ModelFormatError(f"writes {tensors[t].describe()}, which it also reads",
                                       where)
            if t in graph_inputs:
                raise ModelFormatError(f"writes graph input {tensors[t].describe()}", where)
            if tensors[t].is_constant:
                raise ModelFormatError(f"writes constant {tensors[t].describe()}", where)
            if t in writer:
                raise ModelFormatError(f"writes {tensors[t].describe()}, already written by "
                                       f"operator {writer[t]}", where)
            writer[t] = node.index


# TRANSPOSE kernels (LiteRT's reference, edgecnn's) handle up to this many dimensions.
MAX_TRANSPOSE_RANK = 6


def _transpose_perm(inputs: tuple[int, ...], tensors: list[Tensor], where: str) -> dict:
    """{"perm": (...)} when TRANSPOSE's perm is a constant (a non-constant perm is left
    for lowering to report as unsupported); a perm that is not a permutation of the
    input's dimensions is a broken model."""
    if len(inputs) < 2 or min(inputs[:2]) < 0:
        raise ModelFormatError("TRANSPOSE needs an input and a perm tensor", where)
    x, perm = tensors[inputs[0]], tensors[inputs[1]]
    if not perm.is_constant:
        return {}
    if perm.dtype != "int32" or perm.data.ndim != 1:
        raise ModelFormatError(f"perm {perm.describe()} must be a 1-D int32 tensor "
                               f"(got {perm.dtype}{list(perm.data.shape)})", where)
    values = tuple(int(v) for v in perm.data)
    rank = len(x.shape)
    if rank > MAX_TRANSPOSE_RANK:
        raise ModelFormatError(f"input {x.describe()} has rank {rank}; TRANSPOSE supports "
                               f"up to {MAX_TRANSPOSE_RANK}", where)
    if sorted(values) != list(range(rank)):
        raise ModelFormatError(f"perm {list(values)} is not a permutation of the "
                               f"{rank} dimensions of {x.describe()} {list(x.shape)}", where)
    return {"perm": values}


# -- builtin options -------------------------------------------------------------------

def _table(op, options_class):
    table = op.BuiltinOptions()
    if table is None:
        return None
    options = options_class()
    options.Init(table.Bytes, table.Pos)
    return options


def _activation(code: int) -> str:
    return _ACTIVATION_NAMES.get(code, f"UNKNOWN_ACTIVATION_{code}")


def _padding(code: int) -> str:
    return _PADDING_NAMES.get(code, f"UNKNOWN_PADDING_{code}")


def _read_options(op, name: str) -> dict:
    """The options of the ops edgecnn knows, as plain Python values."""
    if name == "CONV_2D":
        o = _table(op, tflite.Conv2DOptions)
        if o is None:
            return {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "NONE"}
        return {"padding": _padding(o.Padding()), "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                "activation": _activation(o.FusedActivationFunction())}
    if name == "DEPTHWISE_CONV_2D":
        o = _table(op, tflite.DepthwiseConv2DOptions)
        if o is None:
            return {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "NONE",
                    "depth_multiplier": 0}
        return {"padding": _padding(o.Padding()), "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                "depth_multiplier": o.DepthMultiplier(),
                "activation": _activation(o.FusedActivationFunction())}
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = _table(op, tflite.Pool2DOptions)
        if o is None:
            return {"padding": "SAME", "stride": (1, 1), "filter": (1, 1), "activation": "NONE"}
        return {"padding": _padding(o.Padding()), "stride": (o.StrideH(), o.StrideW()),
                "filter": (o.FilterHeight(), o.FilterWidth()),
                "activation": _activation(o.FusedActivationFunction())}
    if name == "FULLY_CONNECTED":
        o = _table(op, tflite.FullyConnectedOptions)
        if o is None:
            return {"activation": "NONE", "keep_num_dims": False, "weights_format": 0}
        return {"activation": _activation(o.FusedActivationFunction()),
                "keep_num_dims": bool(o.KeepNumDims()), "weights_format": o.WeightsFormat()}
    if name == "SOFTMAX":
        o = _table(op, tflite.SoftmaxOptions)
        return {"beta": float(o.Beta()) if o is not None else 1.0}
    if name in ("ADD", "SUB", "MUL"):
        cls = {"ADD": tflite.AddOptions, "SUB": tflite.SubOptions, "MUL": tflite.MulOptions}[name]
        o = _table(op, cls)
        return {"activation": _activation(o.FusedActivationFunction()) if o is not None else "NONE"}
    if name == "CONCATENATION":
        o = _table(op, tflite.ConcatenationOptions)
        if o is None:
            return {"axis": 0, "activation": "NONE"}
        return {"axis": o.Axis(), "activation": _activation(o.FusedActivationFunction())}
    if name == "MEAN":
        o = _table(op, tflite.ReducerOptions)
        return {"keep_dims": bool(o.KeepDims()) if o is not None else False}
    if name == "STRIDED_SLICE":
        o = _table(op, tflite.StridedSliceOptions)
        if o is None:
            return {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0,
                    "shrink_axis_mask": 0}
        return {"begin_mask": o.BeginMask(), "end_mask": o.EndMask(),
                "ellipsis_mask": o.EllipsisMask(), "new_axis_mask": o.NewAxisMask(),
                "shrink_axis_mask": o.ShrinkAxisMask()}
    if name == "PACK":
        o = _table(op, tflite.PackOptions)
        return {"axis": o.Axis() if o is not None else 0,
                "values_count": o.ValuesCount() if o is not None else 0}
    return {}
