"""ONNX float models (as torch.onnx.export writes them) -> a float `edgecnn.ir.Graph` of
TFLite operators, NHWC.

Needs the optional `onnx` package (`pip install edgecnn[onnx]`).

Layout: ONNX activations are NCHW; the graph this module writes is NHWC, converted once
here. Every ONNX value is kept with its *layout*: which ONNX axis each stored axis holds
((0, 2, 3, 1) for an NCHW tensor stored NHWC). Transpose then only changes the layout,
never the data; an op that needs NHWC (a convolution) or a last-axis softmax checks it.
Flattening an NHWC tensor into a Gemm/MatMul permutes the weight columns instead of the
activations, so the written model needs no TRANSPOSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import EdgecnnError, ModelFormatError, UnsupportedOpError
from ..ir import Graph, Node, Tensor
from ..reference.quant import output_size_and_padding

NHWC = (0, 2, 3, 1)       # stored axis i holds ONNX (NCHW) axis NHWC[i]
OPSETS = range(7, 22)
NON_NEGATIVE = {"RELU", "RELU6", "RELU_0_TO_1", "LOGISTIC"}   # ops whose outputs are >= 0     # the default-domain opsets whose operator semantics this reads


class Unsupported(Exception):
    """This ONNX node cannot be imported (collected; all are reported together)."""


@dataclass(frozen=True)
class Value:
    index: int                          # tensor index in the graph being written
    layout: tuple[int, ...]             # stored axis i holds ONNX axis layout[i]
    flat_order: np.ndarray | None = None  # a flattened permuted tensor: stored[k] = onnx[order[k]]

    def onnx_shape(self, stored_shape) -> tuple[int, ...]:
        shape = [0] * len(self.layout)
        for stored_axis, onnx_axis in enumerate(self.layout):
            shape[onnx_axis] = stored_shape[stored_axis]
        return tuple(shape)


def load_onnx_graph(data: bytes) -> Graph:
    try:
        import onnx
    except ImportError:
        raise EdgecnnError("reading ONNX models needs the onnx package: "
                           "pip install edgecnn[onnx]", "model file") from None
    try:
        model = onnx.load_from_string(bytes(data))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelFormatError(f"not a readable ONNX model ({type(exc).__name__})",
                               "model file") from None
    return _Importer(model).graph()


def is_onnx(data: bytes) -> bool:
    """A .tflite file says TFL3 at byte 4; an ONNX protobuf starts with field 1
    (ir_version, a varint: 0x08)."""
    return len(data) > 8 and data[4:8] != b"TFL3" and data[0] == 0x08


class _Importer:
    def __init__(self, model):
        from onnx import numpy_helper
        self.numpy_helper = numpy_helper
        self.model = model
        self.onnx_graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.names: list[str] = []
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[str] = []
        self.data: dict[int, np.ndarray] = {}
        self.nodes: list[tuple[str, list[int], list[int], dict]] = []
        self.values: dict[str, Value] = {}
        self.constants: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in self.onnx_graph.initializer}
        self.consumers: dict[str, int] = {}
        self.readers: dict[str, list] = {}
        for node in self.onnx_graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
                self.readers.setdefault(name, []).append(node)
        self.hard_swish_gates: dict[str, str] = {}   # HardSigmoid output -> its input
        for out in self.onnx_graph.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1

    # -- the graph being written --------------------------------------------

    def add_tensor(self, name, shape, dtype="float32", data=None) -> int:
        self.names.append(name)
        self.shapes.append(tuple(int(d) for d in shape))
        self.dtypes.append(dtype)
        if data is not None:
            self.data[len(self.names) - 1] = np.ascontiguousarray(data, dtype=dtype)
        return len(self.names) - 1

    def constant(self, name, array, dtype="float32") -> int:
        array = np.asarray(array, dtype=dtype)
        return self.add_tensor(name, array.shape, dtype, array)

    def emit(self, op, inputs, output_name, output_shape, **options) -> int:
        out = self.add_tensor(output_name, output_shape)
        self.nodes.append((op, list(inputs), [out], options))
        return out

    def graph(self) -> Graph:
        if self.opset not in OPSETS:
            raise UnsupportedOpError([(0, f"ONNX opset {self.opset} (supported: "
                                          f"{OPSETS.start}-{OPSETS.stop - 1})")])
        inputs = []
        for value in self.onnx_graph.input:
            if value.name in self.constants:
                continue
            inputs.append(self.graph_input(value))
        unsupported = []
        for k, node in enumerate(self.onnx_graph.node):
            if any(n and n not in self.values and n not in self.constants
                   and n not in self.hard_swish_gates for n in node.input):
                continue   # fed by a node already reported
            if all(n in self.constants for n in node.input if n):
                self.fold_constants(node)   # shape arithmetic, Constant, ConstantOfShape...
                continue
            handler = getattr(self, "op_" + node.op_type, None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                unsupported.append((k, f"{node.op_type} is not supported"))
                continue
            try:
                handler(node, _attributes(node))
            except Unsupported as exc:
                unsupported.append((k, f"{node.op_type}: {exc}"))
        if unsupported:
            raise UnsupportedOpError(unsupported)
        outputs = [self.graph_output(value.name) for value in self.onnx_graph.output]
        tensors = tuple(Tensor(i, self.names[i], self.shapes[i], self.dtypes[i],
                               data=self._frozen(i)) for i in range(len(self.names)))
        nodes = tuple(Node(k, op, tuple(ins), tuple(outs), MappingProxyType(opts))
                      for k, (op, ins, outs, opts) in enumerate(self.nodes))
        producer = self.model.producer_name or "unknown producer"
        return Graph(tensors, nodes, tuple(inputs), tuple(outputs),
                     f"edgecnn from ONNX ({producer})")

    def fold_constants(self, node) -> None:
        """A node of constants only is computed now, by onnx's own reference evaluator."""
        from onnx.reference import ReferenceEvaluator
        feeds = {n: self.constants[n] for n in node.input if n}
        try:
            results = ReferenceEvaluator(node).run(None, feeds)
        except Exception as exc:   # an op the evaluator lacks, or bad attributes
            raise UnsupportedOpError([(0, f"{node.op_type} on constants: cannot evaluate "
                                          f"({type(exc).__name__})")]) from None
        for name, value in zip(node.output, results):
            self.constants[name] = np.asarray(value)

    def _frozen(self, i):
        data = self.data.get(i)
        if data is not None:
            data.flags.writeable = False
        return data

    def graph_input(self, value) -> int:
        dims = value.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)   # dynamic -> 1
        if value.type.tensor_type.elem_type != 1:
            raise UnsupportedOpError([(0, f"input '{value.name}' is not float32")])
        if len(shape) == 4:
            index = self.add_tensor(value.name, tuple(shape[a] for a in NHWC))
            self.values[value.name] = Value(index, NHWC)
        else:
            index = self.add_tensor(value.name, shape)
            self.values[value.name] = Value(index, tuple(range(len(shape))))
        return index

    def graph_output(self, name) -> int:
        if name not in self.values:
            raise UnsupportedOpError([(0, f"model output '{name}' is a constant")])
        value = self.values[name]
        if value.flat_order is not None:
            raise UnsupportedOpError([(0, f"model output '{name}' is a flattened NCHW tensor "
                                          "(its element order would need a TRANSPOSE)")])
        return value.index

    # -- helpers for the op handlers --------------------------------------------

    def value(self, name, role="input") -> Value:
        if name not in self.values:
            raise Unsupported(f"{role} '{name}' must be an activation, not a constant")
        return self.values[name]

    def const(self, name, role) -> np.ndarray:
        if name not in self.constants:
            raise Unsupported(f"{role} '{name}' must be a constant")
        return self.constants[name]

    def optional_const(self, node, slot, default=None):
        if len(node.input) > slot and node.input[slot]:
            return self.const(node.input[slot], f"input {slot}")
        return default

    def shape(self, value: Value) -> tuple[int, ...]:
        return self.shapes[value.index]

    def nhwc(self, node, slot=0) -> Value:
        v = self.value(node.input[slot])
        if v.layout != NHWC or v.flat_order is not None:
            raise Unsupported(f"input '{node.input[slot]}' is not a 4-D NCHW activation")
        return v

    def plain(self, name) -> Value:
        v = self.value(name)
        if v.flat_order is not None:
            raise Unsupported(f"'{name}' is a flattened NCHW tensor in NHWC order; only "
                              "Gemm/MatMul can read it without a TRANSPOSE")
        return v

    def alias(self, node, value: Value) -> None:
        self.values[node.output[0]] = value

    def set_output(self, node, index, layout) -> None:
        self.values[node.output[0]] = Value(index, tuple(layout))

    def single_consumer(self, name) -> bool:
        return self.consumers.get(name, 0) == 1

    # -- convolutions and pooling --------------------------------------------------

    def spatial_padding(self, attrs, in_hw, kernel, stride, dilation):
        """'SAME' or 'VALID' when the ONNX padding equals TFLite's, else explicit
        (top, left, bottom, right) padding for a PAD in front."""
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not attrs.get("ceil_mode", 0):
            pads = []
            for axis in range(2):
                out, before = output_size_and_padding("SAME", in_hw[axis], kernel[axis],
                                                      stride[axis], dilation[axis])
                extent = (kernel[axis] - 1) * dilation[axis] + 1
                total = max((out - 1) * stride[axis] + extent - in_hw[axis], 0)
                before = total - total // 2 if auto_pad == "SAME_LOWER" else total // 2
                pads.append((before, total - before))
            pads = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        elif auto_pad == "VALID":
            pads = (0, 0, 0, 0)
        else:
            pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        ceil = bool(attrs.get("ceil_mode", 0))
        onnx_out = []
        for axis in range(2):
            extent = (kernel[axis] - 1) * dilation[axis] + 1
            span = in_hw[axis] + pads[axis] + pads[axis + 2] - extent
            onnx_out.append((-(-span // stride[axis]) if ceil else span // stride[axis]) + 1)
        for mode in ("VALID", "SAME"):
            fits = True
            for axis in range(2):
                out, before = output_size_and_padding(mode, in_hw[axis], kernel[axis],
                                                      stride[axis], dilation[axis])
                fits &= out == onnx_out[axis] and before == pads[axis]
            if fits:
                return mode, tuple(onnx_out)
        if ceil:
            raise Unsupported(f"ceil_mode with padding {pads} matches neither SAME nor VALID")
        return pads, tuple(onnx_out)

    def padded(self, node, x: Value, pads) -> Value:
        """An explicit zero PAD (real 0: exact for convolutions) in front of an op."""
        top, left, bottom, right = (int(p) for p in pads)
        n, h, w, c = self.shape(x)
        paddings = self.constant(node.name + "/paddings", [[0, 0], [top, bottom],
                                                            [left, right], [0, 0]], "int32")
        out = self.emit("PAD", [x.index, paddings], node.name + "/pad",
                        (n, h + top + bottom, w + left + right, c))
        return Value(out, NHWC)

    def op_Conv(self, node, attrs):
        x = self.nhwc(node)
        weights = self.const(node.input[1], "weights").astype(np.float32)
        if weights.ndim != 4:
            raise Unsupported(f"{weights.ndim - 2}-D convolution (only 2-D)")
        bias = self.optional_const(node, 2, np.zeros(weights.shape[0], np.float32))
        n, h, w, c = self.shape(x)
        out_c, in_per_group, kh, kw = weights.shape
        group = int(attrs.get("group", 1))
        stride = tuple(attrs.get("strides", (1, 1)))
        dilation = tuple(attrs.get("dilations", (1, 1)))
        padding, out_hw = self.spatial_padding(attrs, (h, w), (kh, kw), stride, dilation)
        if not isinstance(padding, str):
            x, padding = self.padded(node, x, padding), "VALID"
        options = dict(padding=padding, stride=stride, dilation=dilation, activation="NONE")
        if group == 1:
            w_t = self.constant(node.input[1], weights.transpose(0, 2, 3, 1))
            op = "CONV_2D"
        elif group == c and in_per_group == 1:
            w_t = self.constant(node.input[1], weights.reshape(out_c, kh, kw).transpose(1, 2, 0)[None])
            op = "DEPTHWISE_CONV_2D"
            options["depth_multiplier"] = out_c // c
        else:
            raise Unsupported(f"grouped convolution with {group} groups of {in_per_group} "
                              "channels (only 1 group or depthwise)")
        b = self.constant(node.input[2] if len(node.input) > 2 and node.input[2]
                          else node.name + "/bias", bias)
        out = self.emit(op, [x.index, w_t, b], node.output[0], (n,) + out_hw + (out_c,),
                        **options)
        self.set_output(node, out, NHWC)

    def op_BatchNormalization(self, node, attrs):
        x = self.value(node.input[0])
        gamma, beta, mean, var = (self.const(node.input[i], f"input {i}").astype(np.float64)
                                  for i in range(1, 5))
        scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        shift = beta - mean * scale
        producer = self.producer_of(x.index)
        if producer is not None and self.single_consumer(node.input[0]) and \
                producer[0] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            self.fold_scale_and_shift(producer, scale, shift)
            self.alias(node, x)
            return
        if x.layout != NHWC:
            raise Unsupported("a BatchNormalization that follows no convolution, on a "
                              "tensor that is not NCHW")
        n, h, w, c = self.shape(x)
        w_t = self.constant(node.name + "/scale", scale.reshape(1, 1, 1, c))
        b = self.constant(node.name + "/shift", shift)
        out = self.emit("DEPTHWISE_CONV_2D", [x.index, w_t, b], node.output[0], (n, h, w, c),
                        padding="VALID", stride=(1, 1), dilation=(1, 1), depth_multiplier=1,
                        activation="NONE")
        self.set_output(node, out, NHWC)

    def producer_of(self, tensor):
        for op, ins, outs, opts in reversed(self.nodes):
            if tensor in outs:
                return op, ins, outs, opts
        return None

    def fold_scale_and_shift(self, producer, scale, shift):
        """y = conv(x) * scale + shift per output channel, folded into weights and bias."""
        op, ins, _, opts = producer
        if opts.get("activation", "NONE") != "NONE":
            raise Unsupported("cannot fold past an activation")
        weights = self.data[ins[1]].astype(np.float64)
        axis = 3 if op == "DEPTHWISE_CONV_2D" else 0
        shape = [1] * weights.ndim
        shape[axis] = -1
        self.data[ins[1]] = (weights * scale.reshape(shape)).astype(np.float32)
        self.data[ins[2]] = (self.data[ins[2]] * scale + shift).astype(np.float32)

    def pool(self, node, attrs, op):
        x = self.nhwc(node)
        n, h, w, c = self.shape(x)
        kernel = tuple(attrs["kernel_shape"])
        stride = tuple(attrs.get("strides", (1, 1)))
        if tuple(attrs.get("dilations", (1, 1))) != (1, 1):
            raise Unsupported("dilated pooling")
        padding, out_hw = self.spatial_padding(attrs, (h, w), kernel, stride, (1, 1))
        pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        if op == "AVERAGE_POOL_2D" and attrs.get("count_include_pad", 0) and any(pads) \
                and not attrs.get("ceil_mode", 0):
            padding = pads     # padding taps count as zeros: explicit zeros, VALID pool
        if not isinstance(padding, str):
            # Explicit zeros are exact where the padding taps count as zeros (average pool
            # with count_include_pad) or can never win (max pool of a non-negative input).
            producer = self.producer_of(x.index)
            non_negative = producer is not None and producer[0] in NON_NEGATIVE
            if not (attrs.get("count_include_pad", 0) if op == "AVERAGE_POOL_2D" else non_negative):
                raise Unsupported(f"padding {padding} matches neither SAME nor VALID")
            x, padding = self.padded(node, x, padding), "VALID"
        out = self.emit(op, [x.index], node.output[0], (n,) + out_hw + (c,), padding=padding,
                        stride=stride, filter=kernel, activation="NONE")
        self.set_output(node, out, NHWC)

    def op_MaxPool(self, node, attrs):
        if len(node.output) > 1 and node.output[1]:
            raise Unsupported("the Indices output")
        self.pool(node, attrs, "MAX_POOL_2D")

    def op_AveragePool(self, node, attrs):
        self.pool(node, attrs, "AVERAGE_POOL_2D")

    def op_GlobalAveragePool(self, node, attrs):
        x = self.nhwc(node)
        n, h, w, c = self.shape(x)
        axes = self.constant(node.name + "/axes", [1, 2], "int32")
        out = self.emit("MEAN", [x.index, axes], node.output[0], (n, 1, 1, c), keep_dims=True)
        self.set_output(node, out, NHWC)

    def op_ReduceMean(self, node, attrs):
        x = self.plain(node.input[0])
        rank = len(x.layout)
        if self.opset >= 18 and len(node.input) > 1 and node.input[1]:
            onnx_axes = self.const(node.input[1], "axes")
        else:
            onnx_axes = attrs.get("axes", range(rank))
        onnx_axes = sorted({int(a) % rank for a in np.asarray(list(onnx_axes)).reshape(-1)})
        stored = sorted(x.layout.index(a) for a in onnx_axes)
        keep = bool(attrs.get("keepdims", 1))
        shape = self.shape(x)
        out_shape = tuple(1 if i in stored else d for i, d in enumerate(shape) if keep or i not in stored)
        axes = self.constant(node.name + "/axes", stored, "int32")
        out = self.emit("MEAN", [x.index, axes], node.output[0], out_shape, keep_dims=keep)
        if keep:
            layout = x.layout
        else:   # the remaining ONNX axes renumbered, in stored order
            kept = [a for a in x.layout if a not in onnx_axes]
            layout = tuple(sorted(kept).index(a) for a in kept)
        self.set_output(node, out, layout)

    # -- dense layers ----------------------------------------------------------------

    def dense(self, node, x: Value, weights, bias):
        """FULLY_CONNECTED with weights [out, in] in ONNX column order."""
        if x.flat_order is not None:
            weights = weights[:, x.flat_order]
        elif len(x.layout) != 2 or x.layout != (0, 1):
            raise Unsupported(f"a dense layer on a rank-{len(x.layout)} input (only 2-D)")
        rows = self.shape(x)[0]
        w = self.constant(node.name + "/weights", weights)
        b = self.constant(node.name + "/bias", bias)
        out = self.emit("FULLY_CONNECTED", [x.index, w, b], node.output[0],
                        (rows, weights.shape[0]), activation="NONE", keep_num_dims=False)
        self.set_output(node, out, (0, 1))

    def op_Gemm(self, node, attrs):
        x = self.value(node.input[0])
        if attrs.get("transA", 0):
            raise Unsupported("transA")
        b = self.const(node.input[1], "B").astype(np.float64)
        weights = b if attrs.get("transB", 0) else b.T
        weights = weights * float(attrs.get("alpha", 1.0))
        c = self.optional_const(node, 2, np.zeros(weights.shape[0]))
        bias = np.broadcast_to(np.asarray(c, np.float64).reshape(-1) * float(attrs.get("beta", 1.0)),
                               (weights.shape[0],))
        self.dense(node, x, weights.astype(np.float32), bias.astype(np.float32))

    def op_MatMul(self, node, attrs):
        x = self.value(node.input[0])
        b = self.const(node.input[1], "B")
        if b.ndim != 2:
            raise Unsupported("a non-constant or batched right operand")
        self.dense(node, x, np.ascontiguousarray(b.T, np.float32),
                   np.zeros(b.shape[1], np.float32))

    # -- elementwise -----------------------------------------------------------------

    def activation(self, node, op):
        self.activation_of(node, node.input[0], op)

    def activation_of(self, node, name, op):
        x = self.plain(name)
        out = self.emit(op, [x.index], node.output[0], self.shape(x))
        self.set_output(node, out, x.layout)

    def op_Relu(self, node, attrs):
        self.activation(node, "RELU")

    def op_Sigmoid(self, node, attrs):
        self.activation(node, "LOGISTIC")

    def op_HardSwish(self, node, attrs):
        self.activation(node, "HARD_SWISH")

    def op_Clip(self, node, attrs):
        if self.opset >= 11:
            low = self.optional_const(node, 1, np.float32(-np.inf))
            high = self.optional_const(node, 2, np.float32(np.inf))
        else:
            low, high = attrs.get("min", -np.inf), attrs.get("max", np.inf)
        bounds = (float(low), float(high))
        ops = {(0.0, 6.0): "RELU6", (0.0, np.inf): "RELU", (-1.0, 1.0): "RELU_N1_TO_1",
               (0.0, 1.0): "RELU_0_TO_1"}
        if bounds not in ops:
            raise Unsupported(f"Clip to {bounds} (supported: [0, 6], [0, inf), [-1, 1], [0, 1])")
        self.activation(node, ops[bounds])

    def op_HardSigmoid(self, node, attrs):
        """max(0, min(1, alpha * x + beta)): a 1x1 depthwise scale-and-shift, then [0, 1].
        Before opset 14 PyTorch writes hardswish(x) as x * HardSigmoid(x): that pair
        becomes one HARD_SWISH (see op_Mul)."""
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        readers = self.readers.get(node.output[0], [])
        if abs(alpha - 1 / 6) < 1e-6 and beta == 0.5 and len(readers) == 1 and \
                readers[0].op_type == "Mul" and node.input[0] in readers[0].input and \
                node.output[0] not in [o.name for o in self.onnx_graph.output]:
            self.hard_swish_gates[node.output[0]] = node.input[0]
            return
        x = self.nhwc(node)
        n, h, w, c = self.shape(x)
        w_t = self.constant(node.name + "/alpha", np.full((1, 1, 1, c), alpha))
        b = self.constant(node.name + "/beta", np.full(c, beta))
        t = self.emit("DEPTHWISE_CONV_2D", [x.index, w_t, b], node.name + "/affine", (n, h, w, c),
                      padding="VALID", stride=(1, 1), dilation=(1, 1), depth_multiplier=1,
                      activation="NONE")
        out = self.emit("RELU_0_TO_1", [t], node.output[0], (n, h, w, c))
        self.set_output(node, out, NHWC)

    def op_Mul(self, node, attrs):
        a, b = node.input
        for gate, other in ((a, b), (b, a)):
            if self.hard_swish_gates.get(gate) == other:
                self.activation_of(node, other, "HARD_SWISH")
                return
        if a in self.constants:
            a, b = b, a
        if b not in self.constants:
            raise Unsupported("multiplication of two activations (only x * HardSigmoid(x))")
        self.scale_and_shift(node, a, self.constants[b], 0.0)

    def op_Div(self, node, attrs):
        x, c = node.input
        if c not in self.constants:
            raise Unsupported("division by an activation")
        self.scale_and_shift(node, x, 1.0 / np.asarray(self.constants[c], np.float64), 0.0)

    def op_Sub(self, node, attrs):
        x, c = node.input
        if c not in self.constants:
            raise Unsupported("subtraction of an activation")
        self.add_constant(node, x, -np.asarray(self.constants[c], np.float64))

    def op_Add(self, node, attrs):
        names = list(node.input)
        if names[0] in self.constants:
            names.reverse()
        if names[1] in self.constants:
            self.add_constant(node, names[0], self.constants[names[1]])
            return
        x, y = self.plain(names[0]), self.plain(names[1])
        if y.layout != x.layout or self.shape(y) != self.shape(x):
            raise Unsupported("inputs of different shapes or layouts")
        out = self.emit("ADD", [x.index, y.index], node.output[0], self.shape(x),
                        activation="NONE")
        self.set_output(node, out, x.layout)

    def add_constant(self, node, name, constant):
        """x + c: folded into the bias of the conv/FC that makes x, else an ADD."""
        x = self.plain(name)
        if self.fold_into_producer(node, name, x, 1.0, constant):
            return
        other = self.constant(node.name + "/constant", self.stored_constant(constant, x))
        out = self.emit("ADD", [x.index, other], node.output[0], self.shape(x), activation="NONE")
        self.set_output(node, out, x.layout)

    def scale_and_shift(self, node, name, scale, shift):
        """x * scale + shift per channel: folded into the conv/FC that makes x, else a 1x1
        depthwise convolution (a normalization at the model input, say)."""
        x = self.plain(name)
        if self.fold_into_producer(node, name, x, scale, shift):
            return
        shape = self.shape(x)
        if len(shape) != 4:
            raise Unsupported(f"a per-channel scale of a rank-{len(shape)} tensor that no "
                              "convolution or dense layer makes")
        c = shape[3]
        weights = self.channel_vector(scale, x).reshape(1, 1, 1, c)
        w_t = self.constant(node.name + "/scale", weights)
        b = self.constant(node.name + "/shift", self.channel_vector(shift, x))
        out = self.emit("DEPTHWISE_CONV_2D", [x.index, w_t, b], node.output[0], shape,
                        padding="VALID", stride=(1, 1), dilation=(1, 1), depth_multiplier=1,
                        activation="NONE")
        self.set_output(node, out, x.layout)

    def channel_vector(self, constant, x: Value) -> np.ndarray:
        """A constant that varies along the stored last axis only, as one value per channel."""
        stored = self.stored_constant(constant, x)
        channels = self.shape(x)[-1]
        if any(d != 1 for d in stored.shape[:-1]) or stored.shape[-1] not in (1, channels):
            raise Unsupported(f"a constant of shape {np.shape(constant)} that is not per channel")
        return np.broadcast_to(stored.reshape(-1), (channels,)).astype(np.float32)

    def fold_into_producer(self, node, name, x: Value, scale, shift) -> bool:
        producer = self.producer_of(x.index)
        if producer is None or producer[0] not in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                   "FULLY_CONNECTED") \
                or not self.single_consumer(name) or x.flat_order is not None:
            return False
        try:
            scale, shift = self.channel_vector(scale, x), self.channel_vector(shift, x)
        except Unsupported:
            return False
        self.fold_scale_and_shift(producer, scale.astype(np.float64), shift.astype(np.float64))
        self.alias(node, x)
        return True

    def stored_constant(self, constant, like: Value) -> np.ndarray:
        """An ONNX constant operand broadcast against `like`, in like's stored layout."""
        rank = len(like.layout)
        c = np.asarray(constant, np.float32)
        if c.ndim > rank:
            raise Unsupported(f"constant of rank {c.ndim} against rank {rank}")
        c = c.reshape((1,) * (rank - c.ndim) + c.shape)
        return np.ascontiguousarray(c.transpose(like.layout))

    def op_Concat(self, node, attrs):
        values = [self.plain(n) for n in node.input]
        layout = values[0].layout
        if any(v.layout != layout for v in values):
            raise Unsupported("inputs in different layouts")
        onnx_axis = int(attrs["axis"]) % len(layout)
        axis = layout.index(onnx_axis)
        shape = list(self.shape(values[0]))
        shape[axis] = sum(self.shape(v)[axis] for v in values)
        out = self.emit("CONCATENATION", [v.index for v in values], node.output[0], shape,
                        axis=axis, activation="NONE")
        self.set_output(node, out, layout)

    def op_Softmax(self, node, attrs):
        x = self.plain(node.input[0])
        rank = len(x.layout)
        axis = int(attrs.get("axis", 1 if self.opset < 13 else -1)) % rank
        if x.layout[-1] != axis or (self.opset < 13 and axis != rank - 1):
            raise Unsupported(f"softmax over axis {axis} (only the last, channels)")
        out = self.emit("SOFTMAX", [x.index], node.output[0], self.shape(x), beta=1.0)
        self.set_output(node, out, x.layout)

    def op_Pad(self, node, attrs):
        x = self.plain(node.input[0])
        mode = attrs.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            raise Unsupported(f"mode {mode!r}")
        if self.opset >= 11:
            pads = self.const(node.input[1], "pads")
            value = float(np.asarray(self.optional_const(node, 2, 0.0)).reshape(-1)[0]) \
                if len(node.input) > 2 and node.input[2] else 0.0
        else:
            pads, value = attrs["pads"], float(attrs.get("value", 0.0))
        if value != 0.0:
            raise Unsupported(f"padding value {value} (only 0)")
        rank = len(x.layout)
        pads = np.asarray(pads, np.int64).reshape(2, rank)
        if np.any(pads < 0):
            raise Unsupported("negative padding (cropping)")
        pairs = [[int(pads[0, a]), int(pads[1, a])] for a in x.layout]
        paddings = self.constant(node.name + "/paddings", pairs, "int32")
        shape = tuple(d + a + b for d, (a, b) in zip(self.shape(x), pairs))
        out = self.emit("PAD", [x.index, paddings], node.output[0], shape)
        self.set_output(node, out, x.layout)

    # -- layout and shape ----------------------------------------------------------------

    def op_Transpose(self, node, attrs):
        x = self.plain(node.input[0])
        perm = tuple(attrs.get("perm", tuple(reversed(range(len(x.layout))))))
        self.alias(node, Value(x.index, tuple(perm.index(a) for a in x.layout)))

    def reshape_to(self, node, x: Value, onnx_shape):
        onnx_in = x.onnx_shape(self.shape(x))
        onnx_shape = list(int(d) for d in onnx_shape)
        for i, d in enumerate(onnx_shape):
            if d == 0:
                onnx_shape[i] = onnx_in[i]
        if -1 in onnx_shape:
            known = int(np.prod([d for d in onnx_shape if d != -1]))
            onnx_shape[onnx_shape.index(-1)] = int(np.prod(onnx_in)) // max(known, 1)
        if int(np.prod(onnx_shape)) != int(np.prod(onnx_in)):
            raise Unsupported(f"cannot reshape {onnx_in} to {tuple(onnx_shape)}")
        order = np.arange(int(np.prod(onnx_in))).reshape(onnx_in).transpose(x.layout).reshape(-1)
        identity = bool(np.all(order == np.arange(order.size)))
        out = self.emit("RESHAPE", [x.index], node.output[0], onnx_shape,
                        new_shape=tuple(onnx_shape))
        if identity:
            self.set_output(node, out, range(len(onnx_shape)))
        elif len(onnx_shape) == 2 and onnx_shape[0] == onnx_in[0]:
            # A flatten of a permuted tensor: rows stay samples, columns are permuted.
            per_row = order[:order.size // onnx_in[0]]
            self.values[node.output[0]] = Value(out, (0, 1), per_row)
        else:
            raise Unsupported(f"reshape of a {len(onnx_in)}-D NCHW tensor to {tuple(onnx_shape)} "
                              "(needs a TRANSPOSE)")

    def op_Flatten(self, node, attrs):
        x = self.plain(node.input[0])
        onnx_in = x.onnx_shape(self.shape(x))
        axis = int(attrs.get("axis", 1)) % max(len(onnx_in), 1)
        self.reshape_to(node, x, (int(np.prod(onnx_in[:axis])), int(np.prod(onnx_in[axis:]))))

    def op_Reshape(self, node, attrs):
        shape = self.const(node.input[1], "shape")
        self.reshape_to(node, self.plain(node.input[0]), shape)

    def op_Squeeze(self, node, attrs):
        x = self.plain(node.input[0])
        onnx_in = x.onnx_shape(self.shape(x))
        axes = self.optional_const(node, 1) if self.opset >= 13 else attrs.get("axes")
        axes = {int(a) % len(onnx_in) for a in (axes if axes is not None else
                                                [i for i, d in enumerate(onnx_in) if d == 1])}
        self.reshape_to(node, x, [d for i, d in enumerate(onnx_in) if i not in axes])

    def op_Unsqueeze(self, node, attrs):
        x = self.plain(node.input[0])
        onnx_in = list(x.onnx_shape(self.shape(x)))
        axes = self.const(node.input[1], "axes") if self.opset >= 13 else attrs["axes"]
        rank = len(onnx_in) + len(list(axes))
        for a in sorted(int(a) % rank for a in axes):
            onnx_in.insert(a, 1)
        self.reshape_to(node, x, onnx_in)

    def op_Shape(self, node, attrs):
        x = self.value(node.input[0])
        shape = np.array(x.onnx_shape(self.shape(x)), np.int64)
        self.constants[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", None)]

    def op_Identity(self, node, attrs):
        self.alias(node, self.value(node.input[0]))

    def op_Dropout(self, node, attrs):
        self.op_Identity(node, attrs)


def _attributes(node) -> dict:
    from onnx import helper, numpy_helper
    attrs = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if hasattr(value, "raw_data") or hasattr(value, "float_data"):   # a TensorProto
            value = numpy_helper.to_array(value)
        elif isinstance(value, list):
            value = tuple(value)
        attrs[a.name] = value
    return attrs
