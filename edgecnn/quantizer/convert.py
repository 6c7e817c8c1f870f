"""Float graph + calibrated ranges -> an int8 graph per the TFLite quantization spec.

Which tensors must share one quantization, which have a fixed one, and how weights, biases
and model I/O are written; the numbers themselves come from `ranges`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node, Tensor
from . import ranges

# Input and output must have the same scale and zero point (the spec's list, the ops we write).
SHARED_QUANTIZATION = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "CONCATENATION"}
# Fixed output quantization (scale, zero point).
FIXED_OUTPUT = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128)}
# A fused [0, 1] clamp (ONNX HardSigmoid) is exact as the output's whole int8 range.
ZERO_TO_ONE = (1.0 / 255, -128)
WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
IO_TYPES = ("int8", "uint8", "float")


@dataclass(frozen=True)
class ActivationQuant:
    low: float          # the real range chosen for the tensor
    high: float
    scale: float
    zero_point: int


def activation_quantization(graph: Graph, observers: dict, method: str) -> dict[int, ActivationQuant]:
    """(range, scale, zero point) of every activation tensor, with the spec's constraints:
    shared quantization through pooling, reshape, pad and concatenation (the union of the
    ranges), fixed quantization of SOFTMAX and LOGISTIC, fused activations' bounds."""
    chosen = {t: ranges.choose_range(obs, method) for t, obs in observers.items()}
    fixed: dict[int, tuple[float, int]] = {}
    for node in graph.nodes:
        out = node.outputs[0]
        if node.op in FIXED_OUTPUT:
            fixed[out] = FIXED_OUTPUT[node.op]
        elif node.options.get("activation") == "RELU_0_TO_1":
            fixed[out] = ZERO_TO_ONE
    groups = _shared_groups(graph, fixed)
    # A concatenation's output covers every input, also those it requantizes (see below).
    covers = {t: {t} for t in chosen}
    for node in graph.nodes:
        if node.op == "CONCATENATION":
            covers[node.outputs[0]] |= {t for t in node.inputs if t in fixed}
    result = {}
    for members in groups.values():
        pinned = {fixed[t] for t in members if t in fixed}
        if len(pinned) > 1:
            raise UnsupportedOpError([(0, f"tensors {sorted(members)} must share one "
                                          f"quantization but have fixed ones {sorted(pinned)}")])
        seen = {c for t in members for c in covers.get(t, ()) if c in chosen}
        low = min(chosen[t][0] for t in seen)
        high = max(chosen[t][1] for t in seen)
        if pinned:
            scale, zero_point = pinned.pop()
            low, high = scale * (-128 - zero_point), scale * (127 - zero_point)
        else:
            scale, zero_point = ranges.activation_qparams(low, high)
        for t in members:
            result[t] = ActivationQuant(low, high, float(np.float32(scale)), zero_point)
    _respect_kernel_limits(graph, result)
    return result


def _shared_groups(graph: Graph, fixed) -> dict[int, set[int]]:
    """Tensors that must share one quantization. A CONCATENATION input with a fixed
    quantization (a LOGISTIC output) is left out: it gets a requantizing QUANTIZE in
    front of the concatenation instead of forcing [0, 1] onto the other inputs."""
    parent = {}

    def find(t):
        parent.setdefault(t, t)
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for t in _activations(graph):
        find(t)
    for node in graph.nodes:
        if node.op in SHARED_QUANTIZATION:
            for t in node.inputs:
                if t < 0 or graph.tensors[t].is_constant:
                    continue
                if node.op == "CONCATENATION" and t in fixed:
                    continue
                parent[find(t)] = find(node.outputs[0])
    groups: dict[int, set[int]] = {}
    for t in list(parent):
        groups.setdefault(find(t), set()).add(t)
    return groups


def _respect_kernel_limits(graph: Graph, quant: dict[int, ActivationQuant]) -> None:
    """HARD_SWISH's int8 kernel needs output_scale >= input_scale / 128 (a multiplier
    below one); calibration can ask for less on a nearly constant output."""
    for node in graph.nodes:
        if node.op == "HARD_SWISH":
            x, y = quant[node.inputs[0]], quant[node.outputs[0]]
            floor = float(np.float32(x.scale / 128 * (1 + 1e-6)))
            if y.scale < floor:
                quant[node.outputs[0]] = ActivationQuant(y.low, y.high, floor, y.zero_point)


def _activations(graph: Graph) -> list[int]:
    found = set(graph.inputs)
    for node in graph.nodes:
        found.update(t for t in node.inputs if t >= 0 and not graph.tensors[t].is_constant)
        found.update(node.outputs)
    return sorted(found)


class _Writer:
    """Accumulates the int8 graph's tensors and nodes."""

    def __init__(self):
        self.tensors: list[Tensor] = []
        self.nodes: list[Node] = []

    def add(self, name, shape, dtype, scales=(), zero_points=(), data=None, axis=0) -> int:
        if data is not None:
            data = np.ascontiguousarray(data, dtype=dtype)
            data.flags.writeable = False
        index = len(self.tensors)
        self.tensors.append(Tensor(index, name, tuple(shape), dtype,
                                   tuple(float(s) for s in scales),
                                   tuple(int(z) for z in zero_points), axis, data))
        return index

    def node(self, op, inputs, outputs, options) -> None:
        self.nodes.append(Node(len(self.nodes), op, tuple(inputs), tuple(outputs),
                               MappingProxyType(dict(options))))


def quantize_graph(graph: Graph, quant: dict[int, ActivationQuant], *, io: str = "int8",
                   per_tensor: bool = False) -> tuple[Graph, dict[int, int]]:
    """The int8 graph, and which of its tensors holds each float activation tensor."""
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {IO_TYPES}, got {io!r}")
    w = _Writer()
    where: dict[int, int] = {}
    for t in _activations(graph):
        f = graph.tensors[t]
        q = quant[t]
        where[t] = w.add(f.name, f.shape, "int8", (q.scale,), (q.zero_point,))
    inputs = [_model_input(w, graph.tensors[t], w.tensors[where[t]], io) for t in graph.inputs]
    for node in graph.nodes:
        if node.op == "CONCATENATION":
            w.node(node.op, _requantized_inputs(w, node, where), [where[node.outputs[0]]],
                   node.options)
        else:
            _quantize_node(w, graph, node, where, quant, per_tensor)
    outputs = [_model_output(w, graph.tensors[t], w.tensors[where[t]], io) for t in graph.outputs]
    description = f"edgecnn quantize ({graph.description})"
    return Graph(tuple(w.tensors), tuple(w.nodes), tuple(inputs), tuple(outputs),
                 description), where


def _requantized_inputs(w: _Writer, node: Node, where) -> list[int]:
    """The concatenation's int8 inputs, with a QUANTIZE (int8 -> int8) in front of each
    input quantized unlike the output."""
    out = w.tensors[where[node.outputs[0]]]
    inputs = []
    for t in node.inputs:
        q = w.tensors[where[t]]
        if (q.scales, q.zero_points) != (out.scales, out.zero_points):
            requantized = w.add(q.name + "/requantized", q.shape, "int8", out.scales,
                                out.zero_points)
            w.node("QUANTIZE", [q.index], [requantized], {})
            inputs.append(requantized)
        else:
            inputs.append(q.index)
    return inputs


def _edge_tensor(w: _Writer, f: Tensor, q: Tensor, io: str) -> int:
    """The model's uint8 or float input/output tensor beside int8 tensor q."""
    if io == "uint8":   # the same real values: the zero point moves by 128
        return w.add(f.name + "/uint8", f.shape, "uint8", q.scales, (q.zero_point + 128,))
    return w.add(f.name + "/float", f.shape, "float32")


def _model_input(w: _Writer, f: Tensor, q: Tensor, io: str) -> int:
    if io == "int8":
        return q.index
    edge = _edge_tensor(w, f, q, io)
    w.node("QUANTIZE", [edge], [q.index], {})
    return edge


def _model_output(w: _Writer, f: Tensor, q: Tensor, io: str) -> int:
    if io == "int8":
        return q.index
    edge = _edge_tensor(w, f, q, io)
    w.node("QUANTIZE" if io == "uint8" else "DEQUANTIZE", [q.index], [edge], {})
    return edge


def _quantize_node(w: _Writer, graph: Graph, node: Node, where, quant, per_tensor) -> None:
    options = dict(node.options)
    if options.get("activation") == "RELU_0_TO_1":
        options["activation"] = "NONE"      # the output's fixed [0, 1] range clamps
    inputs = []
    if node.op in WEIGHT_AXIS:
        x = quant[node.inputs[0]]
        inputs = [where[node.inputs[0]]] + _weights_and_bias(w, graph, node, x.scale, per_tensor)
    else:
        for t in node.inputs:
            tensor = graph.tensors[t]
            if not tensor.is_constant:
                inputs.append(where[t])
            elif tensor.dtype == "float32":    # an ADD operand: quantized like an activation
                low, high = float(tensor.data.min(initial=0)), float(tensor.data.max(initial=0))
                scale, zp = ranges.activation_qparams(low, high)
                q = np.clip(np.round(tensor.data / np.float32(scale)) + zp, -128, 127)
                inputs.append(w.add(tensor.name, tensor.shape, "int8", (scale,), (zp,), q))
            else:                              # shapes, axes, paddings: as they are
                inputs.append(w.add(tensor.name, tensor.shape, tensor.dtype, data=tensor.data))
    w.node(node.op, inputs, [where[node.outputs[0]]], options)


def _weights_and_bias(w: _Writer, graph: Graph, node: Node, input_scale: float, per_tensor: bool):
    weights_t = graph.tensors[node.inputs[1]]
    axis = WEIGHT_AXIS[node.op]
    channels = weights_t.shape[axis]
    has_bias = len(node.inputs) > 2 and node.inputs[2] >= 0
    bias = graph.tensors[node.inputs[2]].data if has_bias else np.zeros(channels, np.float32)
    q_weights, scales = ranges.quantize_weights(weights_t.data, None if per_tensor else axis,
                                                bias, input_scale)
    q_bias, bias_scales = ranges.quantize_bias(bias, input_scale,
                                               np.broadcast_to(scales, (channels,)))
    if per_tensor:
        bias_scales = bias_scales[:1]
    zeros = (0,) * len(scales)
    weights_index = w.add(weights_t.name, weights_t.shape, "int8", scales, zeros, q_weights,
                          axis=0 if per_tensor else axis)
    bias_index = w.add(graph.tensors[node.inputs[2]].name if has_bias else
                       f"{weights_t.name}/bias", (channels,), "int32", bias_scales,
                       (0,) * len(bias_scales), q_bias)
    return [weights_index, bias_index]
