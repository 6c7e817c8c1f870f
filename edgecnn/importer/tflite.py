"""Read a .tflite flatbuffer into an `edgecnn.ir.Graph`.

A truncated or corrupted file must not make the reader loop over absurd vector
lengths, read garbage or raise something obscure, so the tables are read with
`flatbuffer.Table` (which checks every position it follows against the file, and
reads vectors as numpy views in one call: fast enough to load a model in a few
milliseconds), this module checks each length and index before using it, and
anything that still goes wrong becomes a `ModelFormatError` that says where.
(The `tflite` package gives the schema's enum values.)
"""

from __future__ import annotations

import math
import struct
from types import MappingProxyType

import numpy as np
import tflite

from ..errors import EdgecnnError, ModelFormatError
from ..ir import Graph, Node, Tensor
from .flatbuffer import FlatbufferError, Table

# Field numbers of the tables read here (schema.fbs; field k sits at vtable slot 4 + 2k).
MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 1, 2, 3, 4
OPCODE_DEPRECATED_BUILTIN_CODE, OPCODE_CUSTOM_CODE, OPCODE_BUILTIN_CODE = 0, 1, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
TENSOR_SHAPE_SIGNATURE = 7
QUANT_SCALE, QUANT_ZERO_POINT, QUANT_QUANTIZED_DIMENSION = 2, 3, 6
OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_BUILTIN_OPTIONS = 0, 1, 2, 4
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2

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

# how constants are stored: little-endian (flatbuffers' byte order)
_STORED_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in _TENSOR_TYPES.values()}

_BUILTIN_NAMES = {value: name for name, value in vars(tflite.BuiltinOperator).items()
                  if not name.startswith("_")}
_ACTIVATION_NAMES = {value: name for name, value in vars(tflite.ActivationFunctionType).items()
                     if not name.startswith("_")}
_PADDING_NAMES = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}

# What reading a corrupted flatbuffer may still raise (struct.error: a scalar past the end).
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
    except FlatbufferError as exc:
        raise ModelFormatError(f"corrupted flatbuffer: {exc}", "model file") from None
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
        self.model = Table(buf, struct.unpack_from("<I", buf, 0)[0])

    # -- checked accessors -------------------------------------------------

    def _int_vector(self, table: Table, field: int, what: str) -> tuple[int, ...]:
        """An int32 vector (shape, tensor indices) as a tuple; () when absent."""
        return tuple(table.array(field, "int32", what).tolist())

    # -- the model ---------------------------------------------------------

    def graph(self) -> Graph:
        model = self.model
        subgraphs = model.tables(MODEL_SUBGRAPHS, "subgraph list")
        if len(subgraphs) < 1:
            raise ModelFormatError("the model has no subgraph", "model")
        opcodes = self._opcodes()
        buffers = model.tables(MODEL_BUFFERS, "buffer list")
        subgraph = subgraphs[0]
        tensors = self._tensors(subgraph, buffers)
        nodes = self._nodes(subgraph, opcodes, tensors)
        inputs = self._int_vector(subgraph, SUBGRAPH_INPUTS, "subgraph inputs")
        outputs = self._int_vector(subgraph, SUBGRAPH_OUTPUTS, "subgraph outputs")
        for role, indices in (("input", inputs), ("output", outputs)):
            if not indices:
                raise ModelFormatError(f"the subgraph declares no {role}s", "subgraph 0")
            for i in indices:
                if not 0 <= i < len(tensors):
                    raise ModelFormatError(f"{role} tensor index {i} out of range "
                                           f"(the subgraph has {len(tensors)} tensors)", "subgraph 0")
        _check_dataflow(tensors, nodes, inputs, outputs)
        description = model.string(MODEL_DESCRIPTION, "description")
        description = description.decode("utf-8", "replace") if description else ""
        return Graph(tuple(tensors), tuple(nodes), inputs, outputs, description)

    def _opcodes(self) -> list[str]:
        names = []
        for code in self.model.tables(MODEL_OPERATOR_CODES, "operator code list"):
            # the larger of the two fields, as LiteRT reads it (codes < 127 are in both)
            builtin = max(code.scalar(OPCODE_BUILTIN_CODE, "int32", 0),
                          code.scalar(OPCODE_DEPRECATED_BUILTIN_CODE, "int8", 0))
            if builtin == tflite.BuiltinOperator.CUSTOM:
                custom = code.string(OPCODE_CUSTOM_CODE, "custom code")
                names.append("CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?"))
            else:
                names.append(_BUILTIN_NAMES.get(builtin, f"UNKNOWN_BUILTIN_{builtin}"))
        return names

    def _buffer_bytes(self, buffer: Table, where: str) -> bytes | None:
        offset = buffer.scalar(BUFFER_OFFSET, "uint64", 0)
        if offset > 1:  # large models keep data outside the flatbuffer
            size = buffer.scalar(BUFFER_SIZE, "uint64", 0)
            if offset + size > len(self.buf):
                raise ModelFormatError(f"buffer data [{offset}, {offset + size}) is past the end "
                                       f"of the {len(self.buf)}-byte file", where)
            return self.buf[offset:offset + size]
        start, n = buffer.vector(BUFFER_DATA, 1, f"{where} buffer")
        return self.buf[start:start + n] if n else None

    def _tensors(self, subgraph: Table, buffers) -> list[Tensor]:
        tensors = subgraph.tables(SUBGRAPH_TENSORS, "tensor list")
        return [self._tensor(t, i, buffers) for i, t in enumerate(tensors)]

    def _tensor(self, t: Table, index: int, buffers) -> Tensor:
        raw_name = t.string(TENSOR_NAME, f"tensor {index} name")
        name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{index}"
        where = f"tensor {index} '{name}'"
        shape = self._int_vector(t, TENSOR_SHAPE, f"{where} shape")
        if len(shape) > _MAX_RANK:
            raise ModelFormatError(f"rank {len(shape)} is larger than {_MAX_RANK}", where)
        if any(d < 0 for d in shape):
            raise ModelFormatError(f"shape {shape} has a negative dimension (dynamic shapes "
                                   "are not supported)", where)
        elements = math.prod(shape)
        if elements > _MAX_ELEMENTS:
            raise ModelFormatError(f"shape {shape} has more than {_MAX_ELEMENTS} elements", where)
        signature = self._int_vector(t, TENSOR_SHAPE_SIGNATURE, f"{where} shape signature")
        if len(signature) != len(shape):
            signature = shape
        type_code = t.scalar(TENSOR_TYPE, "int8", 0)
        dtype = _TENSOR_TYPES.get(type_code, f"tensor_type_{type_code}")
        scales, zero_points, qdim = self._quantization(t, where)

        data = None
        buffer_index = t.scalar(TENSOR_BUFFER, "uint32", 0)
        if not 0 <= buffer_index < max(len(buffers), 1):
            raise ModelFormatError(f"buffer index {buffer_index} out of range "
                                   f"({len(buffers)} buffers)", where)
        if len(buffers) and buffer_index > 0:
            raw = self._buffer_bytes(buffers[buffer_index], where)
            if raw is not None:
                if dtype not in _STORED_DTYPES:
                    raise ModelFormatError(f"constant of unknown type code {type_code}", where)
                stored = _STORED_DTYPES[dtype]
                expected = elements * stored.itemsize
                if len(raw) != expected:
                    raise ModelFormatError(f"constant data is {len(raw)} bytes but shape {shape} "
                                           f"of {dtype} needs {expected}", where)
                data = np.frombuffer(raw, dtype=stored).reshape(shape)
                data = data.astype(dtype, copy=False)   # (a copy on big-endian machines only)
                data.flags.writeable = False
        _check_quantization(dtype, shape, scales, zero_points, qdim, where)
        return Tensor(index, name, shape, dtype, scales, zero_points, qdim, data, signature)

    def _quantization(self, t: Table, where: str):
        q = t.table(TENSOR_QUANTIZATION)
        if q is None:
            return (), (), 0
        # float32 values as Python floats (exactly: every float32 is a double); Python
        # lists, because numpy's per-call cost dominates for vectors this short
        scales = q.array(QUANT_SCALE, "float32", f"{where} scales").tolist()
        zps = q.array(QUANT_ZERO_POINT, "int64", f"{where} zero points").tolist()
        if not scales:
            return (), (), 0
        if not zps:
            zps = [0] * len(scales)
        if len(zps) != len(scales):
            raise ModelFormatError(f"{len(scales)} scales but {len(zps)} zero points", where)
        if not all(0.0 < s < math.inf for s in scales):   # (NaN fails every comparison)
            raise ModelFormatError(f"quantization scales must be finite and positive, got "
                                   f"{scales[:4]}", where)
        return tuple(scales), tuple(zps), q.scalar(QUANT_QUANTIZED_DIMENSION, "int32", 0)

    def _nodes(self, subgraph: Table, opcodes: list[str], tensors: list[Tensor]) -> list[Node]:
        n_tensors = len(tensors)
        nodes = []
        for i, op in enumerate(subgraph.tables(SUBGRAPH_OPERATORS, "operator list")):
            opcode_index = op.scalar(OPERATOR_OPCODE_INDEX, "uint32", 0)
            if not 0 <= opcode_index < len(opcodes):
                raise ModelFormatError(f"opcode index {opcode_index} out of range "
                                       f"({len(opcodes)} operator codes)", f"operator {i}")
            name = opcodes[opcode_index]
            where = f"operator {i} ({name})"
            inputs = self._int_vector(op, OPERATOR_INPUTS, f"{where} inputs")
            outputs = self._int_vector(op, OPERATOR_OUTPUTS, f"{where} outputs")
            for t in inputs + outputs:
                if not -1 <= t < n_tensors:
                    raise ModelFormatError(f"tensor index {t} out of range "
                                           f"({n_tensors} tensors)", where)
            if not outputs or -1 in outputs:
                raise ModelFormatError("operator without a valid output tensor", where)
            options = _read_options(op.table(OPERATOR_BUILTIN_OPTIONS), name)
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
# Each reader takes the options table (None when the operator stores none) and gives
# plain Python values; field numbers and defaults are schema.fbs's (a field absent from
# a stored table reads as its schema default, as with LiteRT).

def _activation(code: int) -> str:
    return _ACTIVATION_NAMES.get(code, f"UNKNOWN_ACTIVATION_{code}")


def _padding(code: int) -> str:
    return _PADDING_NAMES.get(code, f"UNKNOWN_PADDING_{code}")


def _window_options(o: Table) -> dict:
    """padding (field 0), stride_w, stride_h (1, 2): the start of Conv2D-, DepthwiseConv2D-
    and Pool2DOptions."""
    return {"padding": _padding(o.scalar(0, "int8", 0)),
            "stride": (o.scalar(2, "int32", 0), o.scalar(1, "int32", 0))}


def _conv_options(o: Table | None) -> dict:
    if o is None:
        return {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "NONE"}
    # padding, stride_w, stride_h, fused_activation_function, dilation_w, dilation_h
    return {**_window_options(o), "dilation": (o.scalar(5, "int32", 1), o.scalar(4, "int32", 1)),
            "activation": _activation(o.scalar(3, "int8", 0))}


def _depthwise_options(o: Table | None) -> dict:
    if o is None:
        return {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "NONE",
                "depth_multiplier": 0}
    # padding, stride_w, stride_h, depth_multiplier, fused_activation_function, dilation_w, _h
    return {**_window_options(o), "dilation": (o.scalar(6, "int32", 1), o.scalar(5, "int32", 1)),
            "depth_multiplier": o.scalar(3, "int32", 0),
            "activation": _activation(o.scalar(4, "int8", 0))}


def _pool_options(o: Table | None) -> dict:
    if o is None:
        return {"padding": "SAME", "stride": (1, 1), "filter": (1, 1), "activation": "NONE"}
    # padding, stride_w, stride_h, filter_width, filter_height, fused_activation_function
    return {**_window_options(o), "filter": (o.scalar(4, "int32", 0), o.scalar(3, "int32", 0)),
            "activation": _activation(o.scalar(5, "int8", 0))}


def _fully_connected_options(o: Table | None) -> dict:
    if o is None:
        return {"activation": "NONE", "keep_num_dims": False, "weights_format": 0}
    # fused_activation_function, weights_format, keep_num_dims
    return {"activation": _activation(o.scalar(0, "int8", 0)),
            "keep_num_dims": o.scalar(2, "bool", False), "weights_format": o.scalar(1, "int8", 0)}


def _softmax_options(o: Table | None) -> dict:
    return {"beta": o.scalar(0, "float32", 0.0) if o is not None else 1.0}


def _activation_only(o: Table | None) -> dict:
    """Add-, Sub- and MulOptions: fused_activation_function first."""
    return {"activation": _activation(o.scalar(0, "int8", 0)) if o is not None else "NONE"}


def _concatenation_options(o: Table | None) -> dict:
    if o is None:
        return {"axis": 0, "activation": "NONE"}
    return {"axis": o.scalar(0, "int32", 0), "activation": _activation(o.scalar(1, "int8", 0))}


def _reducer_options(o: Table | None) -> dict:
    return {"keep_dims": o.scalar(0, "bool", False) if o is not None else False}


_STRIDED_SLICE_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                        "shrink_axis_mask")


def _strided_slice_options(o: Table | None) -> dict:
    return {name: o.scalar(k, "int32", 0) if o is not None else 0
            for k, name in enumerate(_STRIDED_SLICE_MASKS)}


def _pack_options(o: Table | None) -> dict:
    # values_count, axis
    return {"axis": o.scalar(1, "int32", 0) if o is not None else 0,
            "values_count": o.scalar(0, "int32", 0) if o is not None else 0}


_OPTION_READERS = {
    "CONV_2D": _conv_options, "DEPTHWISE_CONV_2D": _depthwise_options,
    "MAX_POOL_2D": _pool_options, "AVERAGE_POOL_2D": _pool_options,
    "FULLY_CONNECTED": _fully_connected_options, "SOFTMAX": _softmax_options,
    "ADD": _activation_only, "SUB": _activation_only, "MUL": _activation_only,
    "CONCATENATION": _concatenation_options, "MEAN": _reducer_options,
    "STRIDED_SLICE": _strided_slice_options, "PACK": _pack_options,
}


def _read_options(table: Table | None, name: str) -> dict:
    """The options of the ops edgecnn knows, as plain Python values."""
    reader = _OPTION_READERS.get(name)
    return reader(table) if reader is not None else {}
