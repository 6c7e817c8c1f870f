"""Graph -> QGraph: check every operator and turn its float scales into one
integer-only params record (edgecnn.params), using reference/quant.py only.

Everything a kernel needs is decided here, once: padding, multipliers and
shifts, activation clamps. An operator edgecnn cannot run exactly is collected,
and all of them are reported together in one UnsupportedOpError.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from . import params as P
from .errors import AccumulatorRangeError, EdgecnnError, ModelFormatError, UnsupportedOpError
from .ir import Graph, Node, QGraph, QNode, Tensor
from .profiles import Profile
from .reference import activations, layout, quant

# Operators whose only job is to compute the shape operand of a RESHAPE
# (Keras' Flatten emits SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE). Shapes are
# static, so the RESHAPE uses its declared output shape and these are dropped.
SHAPE_ONLY_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "SLICE",
                  "CAST", "SQUEEZE", "EXPAND_DIMS", "RESHAPE", "MUL", "REDUCE_PROD", "FILL"}
RESHAPE_LIKE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
FUSED_ACTIVATIONS = {"NONE", "RELU", "RELU6", "RELU_N1_TO_1"}


class Unsupported(Exception):
    """Raised inside a lowering function: this node cannot be run (collected, not fatal)."""


# How many tensors each operator reads (min, max; None = any number >= min) and writes.
# Optional inputs (-1) count: TFLite keeps their slots.
ARITY = {
    "CONV_2D": (2, 3), "DEPTHWISE_CONV_2D": (2, 3), "FULLY_CONNECTED": (2, 3),
    "MAX_POOL_2D": (1, 1), "AVERAGE_POOL_2D": (1, 1), "RESHAPE": (1, 2), "SQUEEZE": (1, 1),
    "EXPAND_DIMS": (1, 2), "PAD": (2, 2), "PADV2": (2, 3), "CONCATENATION": (1, None),
    "SPACE_TO_BATCH_ND": (3, 3), "BATCH_TO_SPACE_ND": (3, 3), "SOFTMAX": (1, 1),
    "LOGISTIC": (1, 1), "HARD_SWISH": (1, 1), "RELU": (1, 1), "RELU6": (1, 1),
    "RELU_N1_TO_1": (1, 1), "MEAN": (2, 2), "ADD": (2, 2), "QUANTIZE": (1, 1),
    "DEQUANTIZE": (1, 1), "TRANSPOSE": (2, 2),
}

# Tensors larger than this are refused (int32 indices address every element).
MAX_ELEMENTS = 2**31 - 1


def lower(graph: Graph, profile: Profile, limits=None) -> QGraph:
    """Check and lower every operator, then check the lowered graph as a whole (every
    derived multiplier representable, resources within `limits`)."""
    from . import validation
    qgraph = _Lowering(graph, profile).run()
    validation.check_qgraph(qgraph, limits)
    return qgraph


class _Lowering:
    def __init__(self, graph: Graph, profile: Profile):
        self.graph = graph
        self.profile = profile
        self.tensors = graph.tensors
        # Shapes are propagated from the inputs, as TFLite's Prepare does: a
        # file's intermediate shapes are hints (the converter leaves e.g. batch
        # 1 on a SPACE_TO_BATCH_ND output); only the model outputs must agree.
        self.shapes: dict[int, tuple[int, ...]] = {i: graph.tensors[i].shape for i in graph.inputs}

    # -- driver ------------------------------------------------------------

    def run(self) -> QGraph:
        dropped = self._shape_only_nodes()
        shape_data = {t for n in self.graph.nodes if n.index in dropped for t in n.outputs}
        qnodes: list[QNode] = []
        unsupported: list[tuple[int, str]] = []
        for t in self.graph.inputs:
            self._check_size(self.tensors[t].shape, self.tensors[t].describe(), "subgraph 0")
        available = set(self.graph.inputs)
        for node in self.graph.nodes:
            if node.index in dropped:
                continue
            lowering = LOWERINGS.get(node.op)
            if lowering is None:
                unsupported.append((node.index, f"{node.op} is not supported"))
                continue
            inputs = tuple(i for i in node.inputs if i >= 0 and not self.tensors[i].is_constant
                           and i not in shape_data)
            self._check_node_io(node, inputs, available)
            try:
                params = _lower_node(self, node, lowering)
            except Unsupported as exc:
                unsupported.append((node.index, f"{node.op}: {exc}"))
                continue
            available.update(node.outputs)
            # an op lowered to a pure reshape (a TRANSPOSE of size-1 dims) runs as one
            kernel = ("RESHAPE" if isinstance(params, P.ReshapeParams)
                      and node.op not in RESHAPE_LIKE_OPS else node.op)
            qnodes.append(QNode(node.index, kernel, inputs, tuple(node.outputs), params))
        if unsupported:
            raise UnsupportedOpError(unsupported)
        self._check_order(qnodes)
        used = {t for n in qnodes for t in n.inputs + n.outputs}
        used |= set(self.graph.inputs) | set(self.graph.outputs)
        activations = {i: replace(self.tensors[i], shape=self.shapes.get(i, self.tensors[i].shape))
                       for i in sorted(used)}
        return QGraph(MappingProxyType(activations), tuple(qnodes), self.graph.inputs,
                      self.graph.outputs, self.profile)

    def _shape_only_nodes(self) -> set[int]:
        """Indices of the nodes that only feed RESHAPE's shape operand."""
        producer = {t: n for n in self.graph.nodes for t in n.outputs}
        consumers: dict[int, list[tuple[Node, int]]] = {}
        for n in self.graph.nodes:
            for slot, t in enumerate(n.inputs):
                consumers.setdefault(t, []).append((n, slot))
        shape_tensors = {n.inputs[1] for n in self.graph.nodes
                         if n.op == "RESHAPE" and len(n.inputs) > 1 and n.inputs[1] >= 0}
        dropped: set[int] = set()
        pending = [t for t in shape_tensors if t in producer]
        while pending:
            node = producer[pending.pop()]
            if node.index in dropped or node.op not in SHAPE_ONLY_OPS:
                continue
            # Every output must only be read as shape data (by a dropped node or a RESHAPE shape slot).
            feeds_only_shapes = all(
                (c.op == "RESHAPE" and slot == 1) or c.op in SHAPE_ONLY_OPS
                for t in node.outputs for c, slot in consumers.get(t, []))
            if not feeds_only_shapes or any(t in self.graph.outputs for t in node.outputs):
                continue
            if self.tensors[node.outputs[0]].dtype not in ("int32", "int64"):
                continue
            dropped.add(node.index)
            pending.extend(t for t in node.inputs if t in producer)
        return dropped

    def _check_node_io(self, node: Node, inputs: tuple[int, ...], available: set[int]) -> None:
        """Before lowering a node: its arity, and every activation it reads written earlier
        (so its shape is the one propagated from the graph inputs)."""
        low, high = ARITY.get(node.op, (0, None))
        if len(node.inputs) < low or (high is not None and len(node.inputs) > high):
            wanted = f"{low}" if low == high else (f"at least {low}" if high is None
                                                   else f"{low} to {high}")
            raise ModelFormatError(f"has {len(node.inputs)} input(s), {node.op} takes {wanted}",
                                   node.describe())
        if node.op in ARITY and len(node.outputs) != 1:
            raise ModelFormatError(f"has {len(node.outputs)} outputs, {node.op} has one",
                                   node.describe())
        for t in inputs:
            if t not in available:
                raise ModelFormatError(f"reads {self.tensors[t].describe()} before any "
                                       "operator writes it", node.describe())

    @staticmethod
    def _check_size(shape, what: str, where: str) -> None:
        """Every activation holds at least one element and at most MAX_ELEMENTS."""
        if any(int(d) <= 0 for d in shape):
            raise ModelFormatError(f"{what} would have shape {tuple(shape)}: an empty "
                                   "tensor", where)
        if math.prod(int(d) for d in shape) > MAX_ELEMENTS:
            raise ModelFormatError(f"{what} would have shape {tuple(shape)}, more than "
                                   f"{MAX_ELEMENTS} elements", where)

    def _check_order(self, qnodes: list[QNode]) -> None:
        available = set(self.graph.inputs)
        for node in qnodes:
            for t in node.inputs:
                if t not in available:
                    raise ModelFormatError(f"reads {self.tensors[t].describe()} before any "
                                           "operator writes it", node.describe())
            available.update(node.outputs)
        for t in self.graph.outputs:
            if t not in available:
                raise ModelFormatError(f"model output {self.tensors[t].describe()} is never "
                                       "written", "subgraph 0")

    # -- helpers for the lowering functions ---------------------------------

    def tensor(self, node: Node, slot: int, role: str, *, optional=False) -> Tensor | None:
        if slot >= len(node.inputs) or node.inputs[slot] < 0:
            if optional:
                return None
            raise ModelFormatError(f"missing {role} (input {slot})", node.describe())
        t = self.tensors[node.inputs[slot]]
        if t.index in self.shapes and self.shapes[t.index] != t.shape:
            t = replace(t, shape=self.shapes[t.index])
        return t

    def output(self, node: Node, slot: int = 0) -> Tensor:
        return self.tensors[node.outputs[slot]]

    def constant(self, node: Node, slot: int, role: str) -> np.ndarray:
        t = self.tensor(node, slot, role)
        if not t.is_constant:
            raise Unsupported(f"{role} ({t.describe()}) must be a constant")
        return t.data

    @staticmethod
    def require_dtype(t: Tensor, role: str, *dtypes: str) -> None:
        if t.dtype not in dtypes:
            raise Unsupported(f"{role} {t.describe()} is {t.dtype}; supported: {', '.join(dtypes)}")

    @staticmethod
    def require_quantized(t: Tensor, role: str) -> None:
        if not t.is_quantized:
            raise Unsupported(f"{role} {t.describe()} has no quantization parameters")
        if len(t.scales) != 1:
            raise Unsupported(f"{role} {t.describe()} must be quantized per tensor")

    @staticmethod
    def require_rank(t: Tensor, role: str, rank: int) -> None:
        if len(t.shape) != rank:
            raise ModelFormatError(f"{role} {t.describe()} has shape {t.shape}, expected rank {rank}")

    def check_shape(self, node: Node, computed: tuple[int, ...]) -> tuple[int, ...]:
        """Record the computed output shape; a model output must match its declared one."""
        out = self.output(node)
        self._check_size(computed, f"output {out.describe()}", node.describe())
        self.shapes[out.index] = tuple(int(d) for d in computed)
        declared = out.shape
        if out.index in self.graph.outputs and tuple(declared) != tuple(computed):
            raise ModelFormatError(f"output {self.output(node).describe()} is declared with shape "
                                   f"{tuple(declared)} but the operator computes {tuple(computed)}",
                                   node.describe())
        return tuple(computed)

    @staticmethod
    def same_quantization(a: Tensor, b: Tensor) -> bool:
        return a.scales == b.scales and a.zero_points == b.zero_points

    def activation(self, node: Node, out: Tensor, delegated: bool = False) -> tuple[int, int]:
        """The fused activation's clamp; `delegated`: the op runs in XNNPACK (xnnpack
        profile), which rounds the bounds to even (reference.quant.quantize_scalar_xnnpack)."""
        name = node.options.get("activation", "NONE")
        if name not in FUSED_ACTIVATIONS:
            raise Unsupported(f"fused activation {name}")
        return quant.activation_range(name, out.scale, out.zero_point,
                                      xnnpack=delegated and self.profile.xnnpack_delegate)

    def requant(self, real_multipliers, *, float_scales=None) -> P.Requant:
        """Requant record for a list of real multipliers, in this profile's rounding."""
        rounding = self.profile.rounding
        to_fixed = (quant.quantize_multiplier_single_rounding if rounding == "single"
                    else quant.quantize_multiplier)
        pairs = [to_fixed(m) for m in real_multipliers]
        multiplier = np.array([m for m, _ in pairs], dtype=np.int32)
        shift = np.array([s for _, s in pairs], dtype=np.int32)
        if float_scales is not None:
            return P.Requant(multiplier, shift, "float", np.asarray(float_scales, np.float64))
        return P.Requant(multiplier, shift, rounding)

    def weighted_requant(self, x: Tensor, weight_scales, y: Tensor, real_multipliers,
                         float_scales=None) -> P.Requant:
        """Requant of a conv/depthwise/FC: the profile's fixed point, or XNNPACK's float32
        scale in * w / out evaluated in float32 left to right."""
        if self.profile.weighted_requant == "float32":
            f32 = np.float32
            scales = (f32(x.scale) * np.asarray(weight_scales, f32)) / f32(y.scale)
            fixed = self.requant(real_multipliers)
            return P.Requant(fixed.multiplier, fixed.shift, "float32", scales.astype(f32))
        return self.requant(real_multipliers, float_scales=float_scales)


# Errors the arithmetic of a lowering function could raise on values no check above
# anticipated: turned into a ModelFormatError naming the operator (never a traceback),
# and marked, so that the fuzzer (tools/fuzz.py) reports them as a missing check.
_ARITHMETIC_ERRORS = (ArithmeticError, ValueError, IndexError, TypeError, KeyError)


def _lower_node(lw: "_Lowering", node: Node, lowering):
    try:
        return lowering(lw, node)
    except (Unsupported, EdgecnnError):
        raise
    except _ARITHMETIC_ERRORS as exc:
        error = ModelFormatError(f"cannot be lowered ({type(exc).__name__}: {exc})",
                                 node.describe())
        error.unchecked = True
        raise error from None


# -- per-op lowering functions -------------------------------------------------------

def _weight_scales(lw: _Lowering, weights: Tensor, channels: int, axis: int) -> list[float]:
    if not weights.is_quantized:
        raise Unsupported(f"weights {weights.describe()} are not quantized")
    if any(z != 0 for z in weights.zero_points):
        raise Unsupported(f"weights {weights.describe()} have a non-zero zero point")
    if len(weights.scales) == 1:
        return [weights.scales[0]] * channels
    if len(weights.scales) != channels or weights.quantized_dimension != axis:
        raise ModelFormatError(f"weights {weights.describe()} have {len(weights.scales)} scales "
                               f"on axis {weights.quantized_dimension}; expected {channels} on "
                               f"axis {axis}")
    return list(weights.scales)


def _conv_multipliers(x: Tensor, w_scales: list[float], y: Tensor) -> list[float]:
    # PopulateConvolutionQuantizationParams: every factor promoted to double first.
    return [float(x.scale) * float(ws) / float(y.scale) for ws in w_scales]


def _bias(lw: _Lowering, node: Node, channels: int) -> np.ndarray:
    b = lw.tensor(node, 2, "bias", optional=True)
    if b is None:
        return np.zeros(channels, dtype=np.int32)
    lw.require_dtype(b, "bias", "int32")
    data = lw.constant(node, 2, "bias")
    if data.shape != (channels,):
        raise ModelFormatError(f"bias {b.describe()} has shape {data.shape}, expected ({channels},)",
                               node.describe())
    return np.ascontiguousarray(data, dtype=np.int32)


def _check_accumulator(node: Node, weights: np.ndarray, bias: np.ndarray) -> None:
    bound = quant.accumulator_bound(weights, bias)
    if bound > quant.INT32_MAX:
        raise AccumulatorRangeError(f"the int32 accumulator can reach {bound} for some input",
                                    node.describe())


def _check_int32_sum(node: Node, count: int, magnitude: int, what: str) -> None:
    """An int32 sum of `count` values of magnitude up to `magnitude` must not overflow."""
    if count * magnitude > quant.INT32_MAX:
        raise AccumulatorRangeError(f"the int32 sum over a {what} of {count} values can reach "
                                    f"{count * magnitude}", node.describe())


def _spatial(node: Node, in_hw, kernel_hw, stride, dilation):
    (out_h, pad_top) = quant.output_size_and_padding(node.options["padding"], in_hw[0],
                                                     kernel_hw[0], stride[0], dilation[0])
    (out_w, pad_left) = quant.output_size_and_padding(node.options["padding"], in_hw[1],
                                                      kernel_hw[1], stride[1], dilation[1])
    return (out_h, out_w), (pad_top, pad_left)


def _check_geometry(node: Node) -> tuple[tuple[int, int], tuple[int, int]]:
    stride = tuple(node.options["stride"])
    dilation = tuple(node.options.get("dilation", (1, 1)))
    if node.options["padding"] not in ("SAME", "VALID"):
        raise Unsupported(f"padding {node.options['padding']}")
    if min(stride) < 1 or min(dilation) < 1:
        raise ModelFormatError(f"stride {stride} and dilation {dilation} must be >= 1",
                               node.describe())
    return stride, dilation


def _weighted_layer(lw: _Lowering, node: Node, input_rank, weights_rank: int):
    """The checks every conv/depthwise/FC shares: int8 quantized activations, constant
    int8 weights of the expected rank. Returns (input, output, weights tensor, weights)."""
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    w = lw.tensor(node, 1, "weights")
    for t, role in ((x, "input"), (y, "output")):
        lw.require_dtype(t, role, "int8")
        lw.require_quantized(t, role)
    lw.require_dtype(w, "weights", "int8")
    if input_rank is not None:
        lw.require_rank(x, "input", input_rank)
    lw.require_rank(w, "weights", weights_rank)
    return x, y, w, lw.constant(node, 1, "weights")


def lower_conv2d(lw: _Lowering, node: Node) -> P.Conv2DParams:
    x, y, w, weights = _weighted_layer(lw, node, input_rank=4, weights_rank=4)
    out_c, kh, kw, in_c = weights.shape
    if in_c != x.shape[3]:
        raise Unsupported(f"grouped convolution (input has {x.shape[3]} channels, "
                          f"weights {in_c})")
    stride, dilation = _check_geometry(node)
    out_hw, padding = _spatial(node, x.shape[1:3], (kh, kw), stride, dilation)
    lw.check_shape(node, (x.shape[0],) + out_hw + (out_c,))
    bias = _bias(lw, node, out_c)
    _check_accumulator(node, weights, bias)
    act_min, act_max = lw.activation(node, y, delegated=True)
    w_scales = _weight_scales(lw, w, out_c, 0)
    requant = lw.weighted_requant(x, w_scales, y, _conv_multipliers(x, w_scales, y))
    return P.Conv2DParams(x.zero_point, y.zero_point, stride, dilation, padding,
                          np.ascontiguousarray(weights), bias, requant, act_min, act_max)


def lower_depthwise_conv2d(lw: _Lowering, node: Node) -> P.DepthwiseConv2DParams:
    x, y, w, weights = _weighted_layer(lw, node, input_rank=4, weights_rank=4)
    one, kh, kw, out_c = weights.shape
    in_c = x.shape[3]
    if one != 1 or in_c == 0 or out_c % in_c != 0:
        raise ModelFormatError(f"depthwise weights of shape {weights.shape} do not fit an input "
                               f"of {in_c} channels", node.describe())
    multiplier = out_c // in_c
    stated = node.options.get("depth_multiplier", 0)
    if stated not in (0, multiplier):
        raise ModelFormatError(f"depth_multiplier option {stated} disagrees with the weights "
                               f"({out_c} / {in_c} = {multiplier})", node.describe())
    stride, dilation = _check_geometry(node)
    out_hw, padding = _spatial(node, x.shape[1:3], (kh, kw), stride, dilation)
    lw.check_shape(node, (x.shape[0],) + out_hw + (out_c,))
    bias = _bias(lw, node, out_c)
    _check_accumulator(node, weights.reshape(kh * kw, out_c).T, bias)
    act_min, act_max = lw.activation(node, y, delegated=True)
    w_scales = _weight_scales(lw, w, out_c, 3)
    requant = lw.weighted_requant(x, w_scales, y, _conv_multipliers(x, w_scales, y))
    return P.DepthwiseConv2DParams(x.zero_point, y.zero_point, stride, dilation, padding,
                                   multiplier, np.ascontiguousarray(weights[0]), bias,
                                   requant, act_min, act_max)


def lower_pool2d(lw: _Lowering, node: Node) -> P.Pool2DParams:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    for t, role in ((x, "input"), (y, "output")):
        lw.require_dtype(t, role, "int8")
        lw.require_quantized(t, role)
    lw.require_rank(x, "input", 4)
    if not lw.same_quantization(x, y):
        raise Unsupported("input and output quantization differ")
    stride, _ = _check_geometry(node)
    filter_hw = tuple(node.options["filter"])
    if min(filter_hw) < 1:
        raise ModelFormatError(f"filter size {filter_hw} must be >= 1", node.describe())
    out_hw, padding = _spatial(node, x.shape[1:3], filter_hw, stride, (1, 1))
    lw.check_shape(node, x.shape[:1] + out_hw + x.shape[3:])
    if node.op == "AVERAGE_POOL_2D":
        # the int32 sum of a window's int8 values (only taps inside the image count)
        taps = min(filter_hw[0], x.shape[1]) * min(filter_hw[1], x.shape[2])
        _check_int32_sum(node, taps, 128, "window")
    act_min, act_max = lw.activation(node, y, delegated=node.op == "MAX_POOL_2D")
    return P.Pool2DParams(filter_hw, stride, padding, act_min, act_max)


def lower_fully_connected(lw: _Lowering, node: Node) -> P.FullyConnectedParams:
    if node.options.get("weights_format", 0) != 0:
        raise Unsupported("shuffled weights format")
    x, y, w, weights = _weighted_layer(lw, node, input_rank=None, weights_rank=2)
    out_f, in_f = weights.shape
    size = int(np.prod(x.shape))
    if in_f == 0 or size % in_f != 0:
        raise ModelFormatError(f"input of shape {x.shape} cannot be read as rows of {in_f} "
                               "features", node.describe())
    rows = size // in_f
    if node.options.get("keep_num_dims", False):
        lw.check_shape(node, tuple(x.shape[:-1]) + (out_f,))
    elif int(np.prod(y.shape)) == rows * out_f and y.shape[-1:] == (out_f,):
        lw.check_shape(node, tuple(y.shape))   # the converter's own 2-D (or N-D) layout
    else:
        lw.check_shape(node, (rows, out_f))
    bias = _bias(lw, node, out_f)
    _check_accumulator(node, weights, bias)
    act_min, act_max = lw.activation(node, y, delegated=True)
    w_scales = _weight_scales(lw, w, out_f, 0)
    # Per tensor too, GetQuantizedConvolutionMultipler (kernel_util.cc, the overload with
    # a bias argument, which FULLY_CONNECTED calls also without a bias) takes
    # input_scale * filter_scale in double, like the per-channel path. (The overload
    # without a bias argument multiplies in float32: tests/test_conformance.py shows
    # that the tflite-micro wheel does not.)
    multipliers = _conv_multipliers(x, w_scales, y)
    float_scales = None
    if lw.profile.fully_connected == "float":
        # LiteRT's reference FC requantizes acc * (in_scale * w_scale / out_scale) in double.
        float_scales = [float(x.scale) * float(ws) / float(y.scale) for ws in w_scales]
    requant = lw.weighted_requant(x, w_scales, y, multipliers, float_scales)
    return P.FullyConnectedParams(x.zero_point, y.zero_point, np.ascontiguousarray(weights),
                                  bias, requant, act_min, act_max)


def lower_reshape(lw: _Lowering, node: Node) -> P.ReshapeParams:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    if int(np.prod(x.shape)) != int(np.prod(y.shape)):
        raise ModelFormatError(f"cannot reshape {x.shape} ({int(np.prod(x.shape))} elements) "
                               f"to {y.shape}", node.describe())
    if x.dtype != y.dtype or not lw.same_quantization(x, y):
        raise Unsupported("input and output types or quantization differ")
    lw.check_shape(node, tuple(y.shape))
    return P.ReshapeParams(tuple(y.shape))


# Values TRANSPOSE moves (whole elements of any of these types; LiteRT takes them all).
TRANSPOSE_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32")


def lower_transpose(lw: _Lowering, node: Node) -> P.TransposeParams | P.ReshapeParams:
    """TRANSPOSE, or a RESHAPE (no copy) when it only moves dimensions of size 1."""
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    lw.require_dtype(x, "input", *TRANSPOSE_DTYPES)
    if "perm" not in node.options:   # the importer checked a constant perm
        lw.constant(node, 1, "perm")
    perm = tuple(node.options["perm"])
    if len(perm) != len(x.shape):
        raise ModelFormatError(f"perm {list(perm)} does not fit the rank-{len(x.shape)} "
                               f"input {x.describe()}", node.describe())
    if y.dtype != x.dtype or not lw.same_quantization(x, y):
        raise ModelFormatError(f"output {y.describe()} ({y.dtype}, scales {list(y.scales)}, "
                               f"zero points {list(y.zero_points)}) must be typed and "
                               f"quantized like the input ({x.dtype}, {list(x.scales)}, "
                               f"{list(x.zero_points)}): TRANSPOSE only moves values",
                               node.describe())
    shape = lw.check_shape(node, tuple(x.shape[d] for d in perm))
    _, collapsed = layout.collapse_transpose(x.shape, perm)
    if collapsed == tuple(range(len(collapsed))):
        return P.ReshapeParams(shape)
    return P.TransposeParams(perm)


def lower_pad(lw: _Lowering, node: Node) -> P.PadParams:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    lw.require_dtype(x, "input", "int8")
    lw.require_dtype(y, "output", "int8")
    if not lw.same_quantization(x, y):
        raise Unsupported("input and output quantization differ")
    paddings = np.asarray(lw.constant(node, 1, "paddings"), dtype=np.int64)
    if paddings.shape != (len(x.shape), 2) or np.any(paddings < 0):
        raise ModelFormatError(f"paddings {paddings.tolist()} do not fit an input of shape "
                               f"{x.shape}", node.describe())
    pad_value = y.zero_point  # PAD pads with real 0.0
    if node.op == "PADV2" and lw.tensor(node, 2, "constant value", optional=True) is not None:
        value = lw.tensor(node, 2, "constant value")
        lw.require_dtype(value, "constant value", "int8")
        data = np.asarray(lw.constant(node, 2, "constant value")).reshape(-1)
        if data.size != 1:
            raise ModelFormatError(f"constant value {value.describe()} holds {data.size} "
                                   "values, PADV2 takes one", node.describe())
        pad_value = int(data[0])
    pairs = tuple((int(a), int(b)) for a, b in paddings)
    lw.check_shape(node, tuple(d + a + b for d, (a, b) in zip(x.shape, pairs)))
    return P.PadParams(pairs, pad_value)


def lower_concatenation(lw: _Lowering, node: Node) -> P.ConcatenationParams:
    y = lw.output(node)
    lw.require_dtype(y, "output", "int8")
    inputs = [lw.tensor(node, i, f"input {i}") for i in range(len(node.inputs))]
    if any(t.is_constant for t in inputs):
        raise Unsupported("constant inputs")
    for i, t in enumerate(inputs):
        lw.require_dtype(t, f"input {i}", "int8")
    if node.options.get("activation", "NONE") != "NONE":
        raise Unsupported("fused activation")
    for t in inputs:
        if not lw.same_quantization(t, y):
            raise Unsupported(f"{t.describe()} is quantized differently from the output "
                              "(requantizing concatenation)")
    rank = len(y.shape)
    axis = node.options.get("axis", 0)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(t.shape) != rank for t in inputs):
        raise ModelFormatError(f"axis {node.options.get('axis')} does not fit rank {rank}",
                               node.describe())
    shape = list(inputs[0].shape)
    for i, t in enumerate(inputs):
        if any(a != b for d, (a, b) in enumerate(zip(t.shape, shape)) if d != axis):
            raise ModelFormatError(f"input {i} {t.describe()} has shape {t.shape}, input 0 "
                                   f"{tuple(shape)}: they must agree outside axis {axis}",
                                   node.describe())
    shape[axis] = sum(t.shape[axis] for t in inputs)
    lw.check_shape(node, tuple(shape))
    return P.ConcatenationParams(axis)


def _block_and_pairs(lw: _Lowering, node: Node, role: str):
    block = tuple(int(v) for v in np.asarray(lw.constant(node, 1, "block shape")).reshape(-1))
    pairs = np.asarray(lw.constant(node, 2, role), dtype=np.int64)
    if len(block) != 2 or pairs.shape != (2, 2) or min(block) < 1 or np.any(pairs < 0):
        raise Unsupported(f"block shape {block} / {role} {pairs.tolist()} (only 2-D spatial blocks)")
    return block, tuple((int(a), int(b)) for a, b in pairs)


def _same_int8_io(lw: _Lowering, node: Node) -> tuple[Tensor, Tensor]:
    """Input and output of an op that only moves int8 values: same type and quantization."""
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    lw.require_dtype(x, "input", "int8")
    lw.require_dtype(y, "output", "int8")
    if not lw.same_quantization(x, y):
        raise Unsupported("input and output quantization differ")
    return x, y


def lower_space_to_batch(lw: _Lowering, node: Node) -> P.SpaceToBatchParams:
    x, y = _same_int8_io(lw, node)
    lw.require_rank(x, "input", 4)
    block, paddings = _block_and_pairs(lw, node, "paddings")
    h = x.shape[1] + sum(paddings[0])
    w = x.shape[2] + sum(paddings[1])
    if h % block[0] or w % block[1]:
        raise ModelFormatError(f"padded size {h}x{w} is not a multiple of the block {block}",
                               node.describe())
    lw.check_shape(node, (x.shape[0] * block[0] * block[1], h // block[0], w // block[1],
                          x.shape[3]))
    return P.SpaceToBatchParams(block, paddings, y.zero_point)


def lower_batch_to_space(lw: _Lowering, node: Node) -> P.BatchToSpaceParams:
    x, _ = _same_int8_io(lw, node)
    lw.require_rank(x, "input", 4)
    block, crops = _block_and_pairs(lw, node, "crops")
    if x.shape[0] % (block[0] * block[1]):
        raise ModelFormatError(f"batch {x.shape[0]} is not a multiple of the block {block}",
                               node.describe())
    lw.check_shape(node, (x.shape[0] // (block[0] * block[1]),
                          x.shape[1] * block[0] - sum(crops[0]),
                          x.shape[2] * block[1] - sum(crops[1]), x.shape[3]))
    return P.BatchToSpaceParams(block, crops)


# -- the fixed-point special ops ---------------------------------------------------------

def _require_int8_io(lw: _Lowering, node: Node) -> tuple[Tensor, Tensor]:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    for t, role in ((x, "input"), (y, "output")):
        lw.require_dtype(t, role, "int8")
        lw.require_quantized(t, role)
    return x, y


def _require_output_quantization(y: Tensor, scale: float, zero_point: int) -> None:
    if y.scale != float(np.float32(scale)) or y.zero_point != zero_point:
        raise Unsupported(f"output must be quantized with scale {scale} and zero point "
                          f"{zero_point} (got {y.scale}, {y.zero_point})")


def lower_softmax(lw: _Lowering, node: Node) -> P.SoftmaxParams:
    x, y = _require_int8_io(lw, node)
    _require_output_quantization(y, 1 / 256, -128)
    lw.check_shape(node, x.shape)
    if not x.shape:   # the kernels normalise along the last axis (LiteRT refuses it too)
        raise ModelFormatError(f"input {x.describe()} has rank 0; SOFTMAX needs at least one "
                               "dimension", node.describe())
    bits = 5  # reference.activations.SOFTMAX_DIFF_INTEGER_BITS
    beta = float(node.options.get("beta", 1.0))
    if not (math.isfinite(beta) and beta > 0):
        raise ModelFormatError(f"beta {beta} must be finite and positive", node.describe())
    # PreprocessSoftmaxScaling: beta * input_scale in Q5.26 units, capped to int32.
    real = min(beta * float(x.scale) * (1 << (31 - bits)), 2.0**31 - 1.0)
    multiplier, left_shift = quant.quantize_multiplier(real)
    if left_shift < 0:
        raise Unsupported(f"beta * input scale {real / (1 << (31 - bits)):.3g} is too small")
    radius = quant.input_radius(bits, left_shift)
    if lw.profile.softmax == "lut16":
        table = quant.softmax_exp_lut16(x.scale, float(node.options.get("beta", 1.0)))
        return P.SoftmaxParams(multiplier, left_shift, -radius, y.zero_point, table, y.scale)
    # The fixed-point kernel sums a row's exp() values (each at most 1.0) in Q12.19: a row of
    # 4096 or more equal values overflows int32, where TFLite's arithmetic is undefined.
    one = 1 << (31 - activations.SOFTMAX_ACCUMULATION_INTEGER_BITS)
    _check_int32_sum(node, x.shape[-1], one, "row of exp() values")
    return P.SoftmaxParams(multiplier, left_shift, -radius, y.zero_point)


def lower_logistic(lw: _Lowering, node: Node) -> P.LogisticParams:
    x, y = _require_int8_io(lw, node)
    _require_output_quantization(y, 1 / 256, -128)
    lw.check_shape(node, x.shape)
    bits = 4  # reference.activations.LOGISTIC_INPUT_INTEGER_BITS
    # logistic_common.cc: frexp + round, *without* QuantizeMultiplier's 2^31 fix-up.
    q, left_shift = math.frexp(float(x.scale) * (1 << (31 - bits)))
    if not 0 <= left_shift <= 31:
        # CalculateInputRadius shifts by it: TFLite is undefined outside [0, 31]
        raise ModelFormatError(f"input scale {x.scale} gives an input shift of {left_shift}, "
                               "outside [0, 31]", node.describe())
    multiplier = int(quant.wrap_int32(quant.round_half_away(q * (1 << 31))))
    # LiteRT's own int8 LOGISTIC (BUILTIN_REF and optimized) is a float32 table (LUTPopulate);
    # the XNNPACK delegate takes it and computes its own table.
    table = ""
    if lw.profile.xnnpack_delegate:
        table = "xnnpack"
    elif lw.profile.kernel_variant == "litert-ref":
        table = "litert"
    return P.LogisticParams(x.zero_point, quant.input_radius(bits, left_shift), multiplier,
                            left_shift, table, float(x.scale))


def lower_hard_swish(lw: _Lowering, node: Node) -> P.HardSwishParams:
    x, y = _require_int8_io(lw, node)
    lw.check_shape(node, x.shape)
    f32 = np.float32
    hires_input_scale = f32(1.0 / 128.0) * f32(x.scale)          # float32 arithmetic, as TFLite
    output_multiplier = hires_input_scale / f32(y.scale)
    reluish_multiplier = hires_input_scale / f32(3.0 / 32768.0)
    for name, value in (("output", output_multiplier), ("reluish", reluish_multiplier)):
        if not (np.isfinite(value) and value > 0):
            raise ModelFormatError(f"the {name} multiplier {float(value)} (from scales "
                                   f"{x.scale}, {y.scale}) is not finite and positive",
                                   node.describe())
    out_m, out_exp = quant.quantize_multiplier(float(output_multiplier))
    relu_m, relu_exp = quant.quantize_multiplier(float(reluish_multiplier))
    if out_exp > 0:
        raise Unsupported("output scale smaller than input scale / 128")
    return P.HardSwishParams(x.zero_point, y.zero_point, quant.downscale_multiplier_to_int16(out_m),
                             out_exp, quant.downscale_multiplier_to_int16(relu_m), relu_exp)


RELU_BOUNDS = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def lower_relu(lw: _Lowering, node: Node) -> P.ReluParams:
    x, y = _require_int8_io(lw, node)
    lw.check_shape(node, x.shape)
    low, high = RELU_BOUNDS[node.op]
    if node.op == "RELU6" and lw.profile.kernel_variant == "tflm":
        # tflite-micro's Relu6Quantized clamps the raw input between the input's
        # quantized 0 and 6; it assumes (does not rescale to) the output scale.
        top = min(127, max(-128, quant.quantize_scalar_float32(6.0, x.scale, x.zero_point)))
        return P.ReluParams(x.zero_point, y.zero_point, 0, 0, x.zero_point, top, rescale=False)
    multiplier, shift = quant.quantize_multiplier(float(x.scale) / float(y.scale))
    act_min = max(-128, quant.quantize_scalar_float32(low, y.scale, y.zero_point))
    act_max = 127 if high is None else min(127, quant.quantize_scalar_float32(high, y.scale,
                                                                              y.zero_point))
    return P.ReluParams(x.zero_point, y.zero_point, multiplier, shift, act_min, act_max)


def lower_mean(lw: _Lowering, node: Node) -> P.MeanParams:
    x, y = _require_int8_io(lw, node)
    rank = len(x.shape)
    raw_axes = np.asarray(lw.constant(node, 1, "axes"), dtype=np.int64).reshape(-1)
    if np.any(raw_axes < -rank) or np.any(raw_axes >= rank):
        raise ModelFormatError(f"axes {raw_axes.tolist()} out of range for rank {rank}",
                               node.describe())
    axes = tuple(sorted({int(a) % rank for a in raw_axes}))
    keep_dims = bool(node.options.get("keep_dims", False))
    kept = [1 if i in axes else d for i, d in enumerate(x.shape)]
    lw.check_shape(node, tuple(kept) if keep_dims else tuple(d for i, d in enumerate(x.shape)
                                                               if i not in axes))
    count = int(np.prod([x.shape[a] for a in axes]))
    if count == 0:
        raise ModelFormatError("mean over an empty axis", node.describe())
    # the int32 sum of (x - zero point) over the reduced axes (XNNPACK's raw sum is smaller)
    _check_int32_sum(node, count, 255, "reduction")
    if lw.profile.xnnpack_delegate:
        # The delegate takes every int8 MEAN: one float32 multiply-add, ties to even.
        scale, zero = quant.xnnpack_mean_scale_and_zero_point(x.scale, x.zero_point, y.scale,
                                                              y.zero_point, count)
        if not (math.isfinite(scale) and math.isfinite(zero)):
            raise ModelFormatError(f"input scale {x.scale} / output scale {y.scale} / {count} "
                                   f"gives float32 scale {scale} and zero point {zero}: "
                                   "not finite", node.describe())
        return P.MeanParams(axes, keep_dims, count, x.zero_point, y.zero_point, 0, 0,
                            rounding="xnnpack", float_scale=scale, float_zero_point=zero)
    # reduce.h requantizes by in/out with 1/n folded in, also when in and out share
    # their quantization (a multiplier of 1: no shortcut dividing the raw sum).
    multiplier, shift = quant.quantize_multiplier(float(x.scale) / float(y.scale))
    multiplier, shift = quant.fold_division_into_multiplier(multiplier, shift, count)
    return P.MeanParams(axes, keep_dims, count, x.zero_point, y.zero_point, multiplier, shift)


def lower_add(lw: _Lowering, node: Node) -> P.AddParams:
    a, b, y = lw.tensor(node, 0, "input 1"), lw.tensor(node, 1, "input 2"), lw.output(node)
    for t, role in ((a, "input 1"), (b, "input 2"), (y, "output")):
        lw.require_dtype(t, role, "int8")
        lw.require_quantized(t, role)
    if a.is_constant and b.is_constant:
        raise Unsupported("both inputs are constants")
    if a.is_constant:
        a, b = b, a   # ADD is symmetric in its arithmetic: keep the constant second
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ModelFormatError(f"shapes {a.shape} and {b.shape} do not broadcast",
                               node.describe()) from None
    lw.check_shape(node, tuple(shape))
    delegated = lw.profile.xnnpack_delegate and quant.xnnpack_add_supported(a.scale, b.scale,
                                                                            y.scale)
    act_min, act_max = lw.activation(node, y, delegated=delegated)
    constant = b.data if b.is_constant else None
    if delegated:
        m1, m2, shift = quant.xnnpack_add_multipliers(a.scale, b.scale, y.scale)
        return P.AddParams(a.zero_point, b.zero_point, y.zero_point, 0, m1, 0, m2, 0, 0, -shift,
                           act_min, act_max, "xnnpack", constant)
    left_shift = 20
    twice_max = 2 * max(float(a.scale), float(b.scale))
    pairs = [quant.quantize_multiplier(m) for m in
             (float(a.scale) / twice_max, float(b.scale) / twice_max,
              twice_max / ((1 << left_shift) * float(y.scale)))]
    if any(shift > 0 for _, shift in pairs):
        raise Unsupported("output scale too small for the 2^20 headroom of int8 ADD")
    (m1, s1), (m2, s2), (mo, so) = pairs
    return P.AddParams(a.zero_point, b.zero_point, y.zero_point, left_shift, m1, s1, m2, s2,
                       mo, so, act_min, act_max, lw.profile.rounding, constant)


def lower_quantize(lw: _Lowering, node: Node) -> P.QuantizeParams:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    lw.require_dtype(y, "output", "int8", "uint8")
    lw.require_quantized(y, "output")
    lw.check_shape(node, x.shape)
    xnnpack = lw.profile.xnnpack_delegate
    if x.dtype == "float32":
        return P.QuantizeParams(y.zero_point, y.dtype, scale=float(y.scale),
                                rounding="xnnpack" if xnnpack else "tflite")
    lw.require_dtype(x, "input", "int8", "uint8", "float32")
    lw.require_quantized(x, "input")
    if xnnpack and x.dtype == y.dtype and quant.xnnpack_requantize_supported(x.scale, y.scale):
        return P.QuantizeParams(y.zero_point, y.dtype, input_zero_point=x.zero_point,
                                multiplier=quant.xnnpack_requantize_multiplier(x.scale, y.scale),
                                rounding="xnnpack")
    multiplier, shift = quant.quantize_multiplier(float(x.scale) / float(y.scale))
    return P.QuantizeParams(y.zero_point, y.dtype, input_zero_point=x.zero_point,
                            multiplier=multiplier, shift=shift,
                            rounding="litert-optimized" if xnnpack else "tflite")


def lower_dequantize(lw: _Lowering, node: Node) -> P.DequantizeParams:
    x, y = lw.tensor(node, 0, "input"), lw.output(node)
    lw.require_dtype(x, "input", "int8", "uint8")
    lw.require_dtype(y, "output", "float32")
    lw.require_quantized(x, "input")
    lw.check_shape(node, x.shape)
    if not np.isfinite(np.float32(float(x.scale) * 255.0)):
        raise ModelFormatError(f"input scale {x.scale} overflows float32 for some input",
                               node.describe())
    return P.DequantizeParams(float(x.scale), x.zero_point)


LOWERINGS = {
    "CONV_2D": lower_conv2d,
    "DEPTHWISE_CONV_2D": lower_depthwise_conv2d,
    "MAX_POOL_2D": lower_pool2d,
    "AVERAGE_POOL_2D": lower_pool2d,
    "FULLY_CONNECTED": lower_fully_connected,
    "RESHAPE": lower_reshape,
    "TRANSPOSE": lower_transpose,
    "SQUEEZE": lower_reshape,
    "EXPAND_DIMS": lower_reshape,
    "PAD": lower_pad,
    "PADV2": lower_pad,
    "CONCATENATION": lower_concatenation,
    "SPACE_TO_BATCH_ND": lower_space_to_batch,
    "BATCH_TO_SPACE_ND": lower_batch_to_space,
    "SOFTMAX": lower_softmax,
    "LOGISTIC": lower_logistic,
    "HARD_SWISH": lower_hard_swish,
    "RELU": lower_relu,
    "RELU6": lower_relu,
    "RELU_N1_TO_1": lower_relu,
    "MEAN": lower_mean,
    "ADD": lower_add,
    "QUANTIZE": lower_quantize,
    "DEQUANTIZE": lower_dequantize,
}
