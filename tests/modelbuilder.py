"""Write small .tflite files by hand with the flatbuffer schema package.

TensorFlow's converter chooses scales and zero points from calibration; a
test that needs exact ones (a multiplier of exactly 0.5 so that every odd
accumulator is a rounding tie, a zero point of -128 or 127, a multiplier above
one) builds its model here instead. The oracles run these files like any
other model, so they stay the judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int32": tflite.TensorType.INT32,
          "uint8": tflite.TensorType.UINT8, "int8": tflite.TensorType.INT8,
          "int64": tflite.TensorType.INT64, "int16": tflite.TensorType.INT16}
_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


@dataclass
class T:
    shape: tuple
    dtype: str = "int8"
    scales: tuple = ()
    zero_points: tuple = ()
    data: np.ndarray | None = None
    quantized_dimension: int = 0
    name: str = ""


@dataclass
class Op:
    name: str                 # builtin operator name, e.g. "CONV_2D"
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)


class ModelBuilder:
    def __init__(self):
        self.tensors: list[T] = []
        self.ops: list[Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, shape, dtype="int8", scale=None, zero_point=0, data=None, *,
               scales=None, zero_points=None, quantized_dimension=0, name=None) -> int:
        if scales is None and scale is not None:
            scales = (scale,)
        if scales is not None and zero_points is None:
            zero_points = (zero_point,) * len(scales)
        index = len(self.tensors)
        self.tensors.append(T(tuple(shape), dtype, tuple(scales or ()), tuple(zero_points or ()),
                              None if data is None else np.asarray(data, dtype=dtype),
                              quantized_dimension, name or f"t{index}"))
        return index

    def op(self, name, inputs, outputs, **options) -> None:
        self.ops.append(Op(name, list(inputs), list(outputs), options))

    # -- serialization ------------------------------------------------------------

    def build(self) -> bytes:
        b = flatbuffers.Builder(1024)
        opcodes = sorted({op.name for op in self.ops})
        buffers = [None] + [t.data for t in self.tensors if t.data is not None]
        buffer_of = {}
        k = 1
        for i, t in enumerate(self.tensors):
            if t.data is not None:
                buffer_of[i] = k
                k += 1

        buffer_offsets = []
        for data in buffers:
            if data is None:
                tflite.BufferStart(b)
                buffer_offsets.append(tflite.BufferEnd(b))
                continue
            raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
            b.StartVector(1, len(raw), 16)
            for byte in reversed(raw):
                b.PrependUint8(byte)
            vec = b.EndVector()
            tflite.BufferStart(b)
            tflite.BufferAddData(b, vec)
            buffer_offsets.append(tflite.BufferEnd(b))

        tensor_offsets = []
        for i, t in enumerate(self.tensors):
            name = b.CreateString(t.name)
            shape = self._int_vector(b, tflite.TensorStartShapeVector, t.shape)
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
            tflite.TensorAddBuffer(b, buffer_of.get(i, 0))
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensor_offsets.append(tflite.TensorEnd(b))

        op_offsets = []
        for op in self.ops:
            options_type, options = self._options(b, op)
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

        code_offsets = []
        for name in opcodes:
            code = getattr(tflite.BuiltinOperator, name)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        codes = self._offset_vector(b, tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraphs = self._offset_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        bufs = self._offset_vector(b, tflite.ModelStartBuffersVector, buffer_offsets)
        description = b.CreateString("edgecnn tests/modelbuilder.py")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes)
        tflite.ModelAddSubgraphs(b, subgraphs)
        tflite.ModelAddBuffers(b, bufs)
        tflite.ModelAddDescription(b, description)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

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

    @staticmethod
    def _options(b, op: Op):
        o = op.options
        act = _ACTIVATIONS[o.get("activation", "NONE")]
        pad = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}.get(
            o.get("padding", "VALID"))
        stride = o.get("stride", (1, 1))
        dilation = o.get("dilation", (1, 1))
        if op.name == "CONV_2D":
            tflite.Conv2DOptionsStart(b)
            tflite.Conv2DOptionsAddPadding(b, pad)
            tflite.Conv2DOptionsAddStrideH(b, stride[0])
            tflite.Conv2DOptionsAddStrideW(b, stride[1])
            tflite.Conv2DOptionsAddDilationHFactor(b, dilation[0])
            tflite.Conv2DOptionsAddDilationWFactor(b, dilation[1])
            tflite.Conv2DOptionsAddFusedActivationFunction(b, act)
            return tflite.BuiltinOptions.Conv2DOptions, tflite.Conv2DOptionsEnd(b)
        if op.name == "DEPTHWISE_CONV_2D":
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddPadding(b, pad)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, stride[0])
            tflite.DepthwiseConv2DOptionsAddStrideW(b, stride[1])
            tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, dilation[0])
            tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, dilation[1])
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, o.get("depth_multiplier", 1))
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
            return tflite.BuiltinOptions.DepthwiseConv2DOptions, tflite.DepthwiseConv2DOptionsEnd(b)
        if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            f = o.get("filter", (2, 2))
            tflite.Pool2DOptionsStart(b)
            tflite.Pool2DOptionsAddPadding(b, pad)
            tflite.Pool2DOptionsAddStrideH(b, stride[0])
            tflite.Pool2DOptionsAddStrideW(b, stride[1])
            tflite.Pool2DOptionsAddFilterHeight(b, f[0])
            tflite.Pool2DOptionsAddFilterWidth(b, f[1])
            tflite.Pool2DOptionsAddFusedActivationFunction(b, act)
            return tflite.BuiltinOptions.Pool2DOptions, tflite.Pool2DOptionsEnd(b)
        if op.name == "FULLY_CONNECTED":
            tflite.FullyConnectedOptionsStart(b)
            tflite.FullyConnectedOptionsAddFusedActivationFunction(b, act)
            tflite.FullyConnectedOptionsAddKeepNumDims(b, o.get("keep_num_dims", False))
            return tflite.BuiltinOptions.FullyConnectedOptions, tflite.FullyConnectedOptionsEnd(b)
        if op.name == "ADD":
            tflite.AddOptionsStart(b)
            tflite.AddOptionsAddFusedActivationFunction(b, act)
            return tflite.BuiltinOptions.AddOptions, tflite.AddOptionsEnd(b)
        if op.name == "SOFTMAX":
            tflite.SoftmaxOptionsStart(b)
            tflite.SoftmaxOptionsAddBeta(b, o.get("beta", 1.0))
            return tflite.BuiltinOptions.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
        if op.name == "CONCATENATION":
            tflite.ConcatenationOptionsStart(b)
            tflite.ConcatenationOptionsAddAxis(b, o.get("axis", -1))
            tflite.ConcatenationOptionsAddFusedActivationFunction(b, act)
            return tflite.BuiltinOptions.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)
        if op.name == "MEAN":
            tflite.ReducerOptionsStart(b)
            tflite.ReducerOptionsAddKeepDims(b, o.get("keep_dims", True))
            return tflite.BuiltinOptions.ReducerOptions, tflite.ReducerOptionsEnd(b)
        return 0, None


def conv2d_model(input_shape, weights, bias, *, input_scale, input_zp, weight_scales,
                 output_scale, output_zp, output_hw, **options) -> bytes:
    """A one-CONV_2D int8 model with exactly these scales and zero points."""
    mb = ModelBuilder()
    out_c = weights.shape[0]
    x = mb.tensor(input_shape, scale=input_scale, zero_point=input_zp)
    w = mb.tensor(weights.shape, data=weights, scales=tuple(weight_scales),
                  zero_points=(0,) * len(weight_scales))
    bias_scales = tuple(input_scale * s for s in weight_scales)
    bb = mb.tensor((out_c,), "int32", data=bias, scales=bias_scales,
                   zero_points=(0,) * len(bias_scales))
    y = mb.tensor((input_shape[0],) + tuple(output_hw) + (out_c,), scale=output_scale,
                  zero_point=output_zp)
    mb.op("CONV_2D", [x, w, bb], [y], **options)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


def fully_connected_model(weights, bias, *, input_scale, input_zp, weight_scales, output_scale,
                          output_zp, batch=1, **options) -> bytes:
    """A one-FULLY_CONNECTED int8 model with exactly these scales and zero points."""
    mb = ModelBuilder()
    out_f, in_f = weights.shape
    x = mb.tensor((batch, in_f), scale=input_scale, zero_point=input_zp)
    w = mb.tensor(weights.shape, data=weights, scales=tuple(weight_scales),
                  zero_points=(0,) * len(weight_scales))
    bias_scales = tuple(input_scale * s for s in weight_scales)
    bb = mb.tensor((out_f,), "int32", data=bias, scales=bias_scales,
                   zero_points=(0,) * len(bias_scales))
    y = mb.tensor((batch, out_f), scale=output_scale, zero_point=output_zp)
    mb.op("FULLY_CONNECTED", [x, w, bb], [y], **options)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()
