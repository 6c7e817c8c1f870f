"""The float graph in numpy: one readable float32 kernel per TFLite operator (NHWC).

This is what calibration runs: the trained model's own arithmetic, on a batch of samples
at once (the graph's batch-1 shapes are only a template; the leading axis is the batch).
It mirrors TFLite's float kernels: padding taps contribute zero to a convolution, SAME
pooling only counts in-image taps, fused activations clamp the output.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import EdgecnnError
from ..ir import Graph, Node
from ..reference.quant import output_size_and_padding

F32 = np.float32

# Fused activations, and the standalone operators of the same name. RELU_0_TO_1 is
# TFLite's op 152: the importer writes it for ONNX HardSigmoid.
ACTIVATIONS: dict[str, tuple[float, float]] = {
    "NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0)}


def activate(x: np.ndarray, name: str) -> np.ndarray:
    low, high = ACTIVATIONS[name]
    return np.clip(x, F32(low), F32(high)) if name != "NONE" else x


def _pad_spatial(x, node, kernel_hw, dilation, value):
    """x [N, H, W, C] padded as the op's SAME/VALID asks; returns (padded, out_hw)."""
    stride = node.options["stride"]
    (oh, top) = output_size_and_padding(node.options["padding"], x.shape[1], kernel_hw[0],
                                        stride[0], dilation[0])
    (ow, left) = output_size_and_padding(node.options["padding"], x.shape[2], kernel_hw[1],
                                         stride[1], dilation[1])
    need_h = (oh - 1) * stride[0] + (kernel_hw[0] - 1) * dilation[0] + 1
    need_w = (ow - 1) * stride[1] + (kernel_hw[1] - 1) * dilation[1] + 1
    pads = ((0, 0), (top, max(need_h - x.shape[1] - top, 0)),
            (left, max(need_w - x.shape[2] - left, 0)), (0, 0))
    return np.pad(x, pads, constant_values=value), (oh, ow)


def _taps(xp, out_hw, kernel_hw, stride, dilation):
    """Yield (i, j, window) with window[n, y, x, c] = xp[n, y*s + i*d, x*s + j*d, c]."""
    for i in range(kernel_hw[0]):
        for j in range(kernel_hw[1]):
            top, left = i * dilation[0], j * dilation[1]
            yield i, j, xp[:, top:top + (out_hw[0] - 1) * stride[0] + 1:stride[0],
                           left:left + (out_hw[1] - 1) * stride[1] + 1:stride[1], :]


def conv2d(node, x, weights, bias):
    """CONV_2D: weights [O, KH, KW, I]; one matrix product per tap."""
    dilation = node.options.get("dilation", (1, 1))
    kernel = weights.shape[1:3]
    xp, out_hw = _pad_spatial(x, node, kernel, dilation, 0.0)
    out = np.zeros((x.shape[0],) + out_hw + (weights.shape[0],), F32)
    for i, j, window in _taps(xp, out_hw, kernel, node.options["stride"], dilation):
        out += window @ weights[:, i, j, :].T
    return out + bias


def depthwise_conv2d(node, x, weights, bias):
    """DEPTHWISE_CONV_2D: weights [1, KH, KW, C * multiplier]; output channel c * m + k
    reads input channel c."""
    dilation = node.options.get("dilation", (1, 1))
    kernel = weights.shape[1:3]
    multiplier = weights.shape[3] // x.shape[3]
    if multiplier > 1:
        x = np.repeat(x, multiplier, axis=3)
    xp, out_hw = _pad_spatial(x, node, kernel, dilation, 0.0)
    out = np.zeros((x.shape[0],) + out_hw + (weights.shape[3],), F32)
    for i, j, window in _taps(xp, out_hw, kernel, node.options["stride"], dilation):
        out += window * weights[0, i, j, :]
    return out + bias


def max_pool2d(node, x):
    kernel = node.options["filter"]
    xp, out_hw = _pad_spatial(x, node, kernel, (1, 1), -np.inf)
    windows = [w for _, _, w in _taps(xp, out_hw, kernel, node.options["stride"], (1, 1))]
    return np.maximum.reduce(windows)


def average_pool2d(node, x):
    """The mean of the in-image taps (TFLite counts only those)."""
    kernel = node.options["filter"]
    stride = node.options["stride"]
    xp, out_hw = _pad_spatial(x, node, kernel, (1, 1), 0.0)
    ones, _ = _pad_spatial(np.ones((1,) + x.shape[1:3] + (1,), F32), node, kernel, (1, 1), 0.0)
    total = sum(w for _, _, w in _taps(xp, out_hw, kernel, stride, (1, 1)))
    count = sum(w for _, _, w in _taps(ones, out_hw, kernel, stride, (1, 1)))
    return total / count


def fully_connected(node, x, weights, bias):
    rows = x.reshape(-1, weights.shape[1])
    out = rows @ weights.T + bias
    if node.options.get("keep_num_dims", False):
        return out.reshape(x.shape[:-1] + (weights.shape[0],))
    return out


def softmax(node, x):
    z = x * F32(node.options.get("beta", 1.0))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def hard_swish(x):
    return x * np.clip(x + F32(3), F32(0), F32(6)) / F32(6)


def logistic(x):
    return F32(1) / (F32(1) + np.exp(-x))


def batched(shape, batch: int) -> tuple[int, ...]:
    """A graph shape (batch 1 in its first axis) for `batch` samples."""
    return (batch,) + tuple(shape[1:]) if shape else shape


def reshape(graph: Graph, node: Node, x):
    return x.reshape(batched(graph.tensors[node.outputs[0]].shape, x.shape[0]))


def pad(node, x, paddings):
    return np.pad(x, [tuple(int(v) for v in p) for p in paddings], constant_values=0.0)


def mean(node, x, axes):
    axes = tuple(sorted({int(a) % x.ndim for a in np.asarray(axes).reshape(-1)}))
    return x.mean(axis=axes, keepdims=bool(node.options.get("keep_dims", False)))


def concatenation(node, xs):
    return np.concatenate(xs, axis=node.options.get("axis", 0))


# op -> f(graph, node, inputs) where inputs are the node's input arrays (constants included)
KERNELS: dict[str, Callable] = {
    "CONV_2D": lambda g, n, v: conv2d(n, v[0], v[1], _bias(v, n)),
    "DEPTHWISE_CONV_2D": lambda g, n, v: depthwise_conv2d(n, v[0], v[1], _bias(v, n)),
    "FULLY_CONNECTED": lambda g, n, v: fully_connected(n, v[0], v[1], _bias(v, n)),
    "MAX_POOL_2D": lambda g, n, v: max_pool2d(n, v[0]),
    "AVERAGE_POOL_2D": lambda g, n, v: average_pool2d(n, v[0]),
    "ADD": lambda g, n, v: v[0] + v[1],
    "MEAN": lambda g, n, v: mean(n, v[0], v[1]),
    "SOFTMAX": lambda g, n, v: softmax(n, v[0]),
    "LOGISTIC": lambda g, n, v: logistic(v[0]),
    "HARD_SWISH": lambda g, n, v: hard_swish(v[0]),
    "RELU": lambda g, n, v: activate(v[0], "RELU"),
    "RELU6": lambda g, n, v: activate(v[0], "RELU6"),
    "RELU_N1_TO_1": lambda g, n, v: activate(v[0], "RELU_N1_TO_1"),
    "RELU_0_TO_1": lambda g, n, v: activate(v[0], "RELU_0_TO_1"),
    "RESHAPE": lambda g, n, v: reshape(g, n, v[0]),
    "SQUEEZE": lambda g, n, v: reshape(g, n, v[0]),
    "EXPAND_DIMS": lambda g, n, v: reshape(g, n, v[0]),
    "PAD": lambda g, n, v: pad(n, v[0], v[1]),
    "CONCATENATION": lambda g, n, v: concatenation(n, v),
}


def _bias(values, node):
    if len(node.inputs) > 2 and node.inputs[2] >= 0:
        return values[2]
    return F32(0)


def run_node(graph: Graph, node: Node, inputs: list) -> np.ndarray:
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise EdgecnnError(f"no float kernel for {node.op}", node.describe())
    out = kernel(graph, node, inputs)
    return activate(np.asarray(out, F32), node.options.get("activation", "NONE"))


def run(graph: Graph, inputs: list[np.ndarray], keep: bool = True) -> dict[int, np.ndarray]:
    """Every tensor of the float graph for a batch of samples (first axis), by index."""
    values = {i: np.asarray(x, F32) for i, x in zip(graph.inputs, inputs)}
    for t in graph.tensors:
        if t.is_constant:
            values[t.index] = t.data
    last_use = {}
    for k, node in enumerate(graph.nodes):
        for t in node.inputs:
            last_use[t] = k
    for k, node in enumerate(graph.nodes):
        values[node.outputs[0]] = run_node(graph, node, [values[t] if t >= 0 else None
                                                         for t in node.inputs])
        if not keep:   # free what no later node reads (outputs stay)
            for t in node.inputs:
                if last_use.get(t) == k and t not in graph.outputs and not graph.tensors[t].is_constant:
                    values.pop(t, None)
    return values
