"""Write .tflite files with the flatbuffer schema package (`tflite`'s builder functions).

Two entry points:
  ModelBuilder    tensors and operators added one by one (the tests build models
                  with exact scales this way);
  write_graph()   an `edgecnn.ir.Graph` (what the importers read and the quantizer
                  writes) as a .tflite file that LiteRT, tflite-micro and edgecnn load.

Option names are the importer's (`edgecnn/importer/tflite.py`), so a graph read from a
file and written back keeps its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

from .ir import Graph

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int32": tflite.TensorType.INT32,
          "uint8": tflite.TensorType.UINT8, "int8": tflite.TensorType.INT8,
          "int64": tflite.TensorType.INT64, "int16": tflite.TensorType.INT16}
_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDINGS = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}

# The operator version that declares int8 support (tensorflow/lite/tools/versioning/
# op_version.cc); runtimes that check versions accept these files, float ops use 1.
_INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2,
                  "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "SOFTMAX": 2, "LOGISTIC": 2,
                  "CONCATENATION": 2, "PAD": 2, "PADV2": 2, "MEAN": 2, "QUANTIZE": 2,
                  "DEQUANTIZE": 2, "RELU": 2, "RELU6": 2}


@dataclass
class T:
    shape: tuple
    dtype: str = "int8"
    scales: tuple = ()
    zero_points: tuple = ()
    data: np.ndarray | None = None
    quantized_dimension: int = 0
    name: str = ""
    shape_signature: tuple = ()   # the shape with -1 for dynamic dims; () = as shape


@dataclass
class Op:
    name: str                 # builtin operator name, e.g. "CONV_2D"
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)


class ModelBuilder:
    def __init__(self, description: str = "edgecnn"):
        self.tensors: list[T] = []
        self.ops: list[Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.description = description

    def tensor(self, shape, dtype="int8", scale=None, zero_point=0, data=None, *,
               scales=None, zero_points=None, quantized_dimension=0, name=None,
               shape_signature=()) -> int:
        if scales is None and scale is not None:
            scales = (scale,)
        if scales is not None and zero_points is None:
            zero_points = (zero_point,) * len(scales)
        index = len(self.tensors)
        self.tensors.append(T(tuple(shape), dtype, tuple(scales or ()), tuple(zero_points or ()),
                              None if data is None else np.asarray(data, dtype=dtype),
                              quantized_dimension, name or f"t{index}",
                              tuple(shape_signature)))
        return index

    def op(self, name, inputs, outputs, **options) -> None:
        self.ops.append(Op(name, list(inputs), list(outputs), options))

    # -- serialization ------------------------------------------------------------

    def build(self) -> bytes:
        b = flatbuffers.Builder(1024)
        opcodes = sorted({op.name for op in self.ops})
        buffer_of = {}
        buffer_offsets = [self._buffer(b, None)]   # buffer 0: the empty sentinel
        for i, t in enumerate(self.tensors):
            if t.data is not None:
                buffer_of[i] = len(buffer_offsets)
                buffer_offsets.append(self._buffer(b, t.data))
        tensor_offsets = [self._tensor(b, t, buffer_of.get(i, 0))
                          for i, t in enumerate(self.tensors)]

        op_offsets = []
        for op in self.ops:
            options_type, options = _options(b, op)
            ins = self._int_vector(b, tflite.OperatorStartInputsVector, op.inputs)
            outs = self._int_vector(b, tflite.OperatorStartOutputsVector, op.outputs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcodes.index(op.name))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if options is not None:
                tflite.OperatorAddBuiltinOptionsType(b, options_type)
                tflite.OperatorAddBuiltinOptions(b, options)
            op_offsets.append(tflite.OperatorEnd(b))

        tensors = self._offset_vector(b, tflite.SubGraphStartTensorsVector, tensor_offsets)
        operators = self._offset_vector(b, tflite.SubGraphStartOperatorsVector, op_offsets)
        sub_in = self._int_vector(b, tflite.SubGraphStartInputsVector, self.inputs)
        sub_out = self._int_vector(b, tflite.SubGraphStartOutputsVector, self.outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors)
        tflite.SubGraphAddInputs(b, sub_in)
        tflite.SubGraphAddOutputs(b, sub_out)
        tflite.SubGraphAddOperators(b, operators)
        subgraph = tflite.SubGraphEnd(b)

        code_offsets = [self._opcode(b, name, self._is_int8(name)) for name in opcodes]
        codes = self._offset_vector(b, tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraphs = self._offset_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        bufs = self._offset_vector(b, tflite.ModelStartBuffersVector, buffer_offsets)
        description = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes)
        tflite.ModelAddSubgraphs(b, subgraphs)
        tflite.ModelAddBuffers(b, bufs)
        tflite.ModelAddDescription(b, description)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def _is_int8(self, op_name: str) -> bool:
        return any(self.tensors[t].dtype == "int8" for op in self.ops if op.name == op_name
                   for t in op.inputs + op.outputs if t >= 0)

    @staticmethod
    def _buffer(b, data):
        vec = None
        if data is not None:
            raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
            # A byte vector aligned to 16 (what the converter does, and what SIMD kernels
            # reading weights in place like), copied in one slice rather than byte by byte.
            b.StartVector(1, len(raw), 16)
            b.head = b.head - len(raw)
            b.Bytes[b.head:b.head + len(raw)] = raw
            vec = b.EndVector()
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        return tflite.BufferEnd(b)

    def _tensor(self, b, t: T, buffer_index: int):
        name = b.CreateString(t.name)
        shape = self._int_vector(b, tflite.TensorStartShapeVector, t.shape)
        signature = None
        if t.shape_signature and tuple(t.shape_signature) != tuple(t.shape):
            signature = self._int_vector(b, tflite.TensorStartShapeSignatureVector,
                                         t.shape_signature)
        quant = None
        if t.scales:
            scales = self._vector(b, tflite.QuantizationParametersStartScaleVector,
                                  t.scales, b.PrependFloat32)
            zps = self._vector(b, tflite.QuantizationParametersStartZeroPointVector,
                               t.zero_points, b.PrependInt64)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scales)
            tflite.QuantizationParametersAddZeroPoint(b, zps)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[t.dtype])
        tflite.TensorAddBuffer(b, buffer_index)
        tflite.TensorAddName(b, name)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        return tflite.TensorEnd(b)

    @staticmethod
    def _opcode(b, name: str, int8: bool):
        code = getattr(tflite.BuiltinOperator, name)
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, _INT8_VERSIONS.get(name, 1) if int8 else 1)
        return tflite.OperatorCodeEnd(b)

    @staticmethod
    def _vector(b, start, values, prepend):
        start(b, len(values))
        for v in reversed(list(values)):
            prepend(v)
        return b.EndVector()

    def _int_vector(self, b, start, values):
        return self._vector(b, start, [int(v) for v in values], b.PrependInt32)

    def _offset_vector(self, b, start, offsets):
        return self._vector(b, start, offsets, b.PrependUOffsetTRelative)


def _option(key, default, index=None):
    """A reader of one value of an Op's options (an element of a pair with `index`)."""
    if index is None:
        return lambda o: o.get(key, default)
    return lambda o: o.get(key, default)[index]


_PADDING = ("Padding", lambda o: _PADDINGS[o.get("padding", "VALID")])
_ACTIVATION = ("FusedActivationFunction", lambda o: _ACTIVATIONS[o.get("activation", "NONE")])
_STRIDES = [("StrideH", _option("stride", (1, 1), 0)), ("StrideW", _option("stride", (1, 1), 1))]
_CONV = [_PADDING, *_STRIDES, ("DilationHFactor", _option("dilation", (1, 1), 0)),
         ("DilationWFactor", _option("dilation", (1, 1), 1)), _ACTIVATION]

# op -> (its options table in the schema, [(table field, value from the Op's options)])
_OPTION_TABLES = {
    "CONV_2D": ("Conv2DOptions", _CONV),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions",
                          _CONV + [("DepthMultiplier", _option("depth_multiplier", 1))]),
    "MAX_POOL_2D": ("Pool2DOptions", [_PADDING, *_STRIDES, _ACTIVATION,
                                      ("FilterHeight", _option("filter", (2, 2), 0)),
                                      ("FilterWidth", _option("filter", (2, 2), 1))]),
    "FULLY_CONNECTED": ("FullyConnectedOptions",
                        [_ACTIVATION, ("KeepNumDims", _option("keep_num_dims", False))]),
    "ADD": ("AddOptions", [_ACTIVATION]),
    "SOFTMAX": ("SoftmaxOptions", [("Beta", _option("beta", 1.0))]),
    "CONCATENATION": ("ConcatenationOptions", [("Axis", _option("axis", -1)), _ACTIVATION]),
    "MEAN": ("ReducerOptions", [("KeepDims", _option("keep_dims", True))]),
    "STRIDED_SLICE": ("StridedSliceOptions",
                      [(field, _option(key, 0)) for field, key in (
                          ("BeginMask", "begin_mask"), ("EndMask", "end_mask"),
                          ("EllipsisMask", "ellipsis_mask"), ("NewAxisMask", "new_axis_mask"),
                          ("ShrinkAxisMask", "shrink_axis_mask"))]),
    "SHAPE": ("ShapeOptions", [("OutType", lambda o: _TYPES[o.get("out_type", "int32")])]),
    "PACK": ("PackOptions", [("Axis", _option("axis", 0)),
                             ("ValuesCount", _option("values_count", 0))]),
}
_OPTION_TABLES["AVERAGE_POOL_2D"] = _OPTION_TABLES["MAX_POOL_2D"]


def _options(b, op: Op):
    """(BuiltinOptions type, table offset) of an operator's options, or (0, None)."""
    if op.name == "RESHAPE" and "new_shape" in op.options:
        shape = op.options["new_shape"]
        tflite.ReshapeOptionsStartNewShapeVector(b, len(shape))
        for d in reversed(shape):
            b.PrependInt32(int(d))
        vec = b.EndVector()
        tflite.ReshapeOptionsStart(b)
        tflite.ReshapeOptionsAddNewShape(b, vec)
        return tflite.BuiltinOptions.ReshapeOptions, tflite.ReshapeOptionsEnd(b)
    if op.name not in _OPTION_TABLES:
        return 0, None
    table, fields = _OPTION_TABLES[op.name]
    getattr(tflite, f"{table}Start")(b)
    for field, value in fields:
        getattr(tflite, f"{table}Add{field}")(b, value(op.options))
    return getattr(tflite.BuiltinOptions, table), getattr(tflite, f"{table}End")(b)


def write_graph(graph: Graph, description: str = "edgecnn") -> bytes:
    """An `edgecnn.ir.Graph` as .tflite bytes: its tensors in index order, its nodes in
    execution order, constants in buffers of their own."""
    mb = ModelBuilder(description)
    for t in graph.tensors:
        mb.tensor(t.shape, t.dtype, data=t.data, scales=t.scales or None,
                  zero_points=t.zero_points or None, quantized_dimension=t.quantized_dimension,
                  name=t.name, shape_signature=t.shape_signature)
    for node in graph.nodes:
        options = dict(node.options)
        if node.op == "SHAPE":   # the importer does not keep it: the output's type says it
            options["out_type"] = graph.tensors[node.outputs[0]].dtype
        mb.op(node.op, node.inputs, node.outputs, **options)
    mb.inputs, mb.outputs = list(graph.inputs), list(graph.outputs)
    return mb.build()
