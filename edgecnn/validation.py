"""The last step of the gate at load: checks on the lowered graph as a whole.

Lowering checks each operator's fields as it turns them into a params record; this
module then checks what only the finished records show, for every operator at once:
every (multiplier, shift) pair a kernel will apply is one the 32-bit arithmetic of the
core and the exported C can apply without undefined behaviour, every float scale a
kernel multiplies by is finite, every activation range lies inside the int8 type, and
the whole model fits the resource limits (memory and work) the caller allows. Past
this gate the kernels trust what they are given.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import params as P
from .errors import ModelFormatError, ResourceLimitError
from .ir import QGraph, QNode


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a model may need, checked at load (pass `edgecnn.load(..., limits=Limits(...))`).

    max_memory: bytes of activations plus the largest working buffers of one operator
    (padded copies of its input, accumulators), the arena of the core and the
    reference's working set alike. max_work: multiply-accumulates (or, for ops that do
    not multiply, elements touched) of one inference, plus WORK_PER_TAP for every
    window tap the reference loops over in Python.
    """
    max_memory: int = 256 * 2**20
    max_work: int = 20 * 10**9


DEFAULT_LIMITS = Limits()

# The reference kernels loop over a window's taps in Python: each tap costs about as
# much as this many multiply-accumulates, whatever the tensor sizes.
WORK_PER_TAP = 10_000

# A (multiplier, shift) pair shifts a 32-bit value left by shift or right by -shift:
# beyond 31 either way the C shift is undefined (and the results ISA-dependent).
MAX_SHIFT = 31


def check_qgraph(qgraph: QGraph, limits: Limits | None = None) -> None:
    for node in qgraph.nodes:
        _check_params(node, node.params)
    check_resources(qgraph, limits or DEFAULT_LIMITS)


# -- the params records ---------------------------------------------------------------

def _check_params(node: QNode, params) -> None:
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for name, value in fields.items():
        if isinstance(value, P.Requant):
            _check_requant(node, value)
        elif name.endswith("multiplier") and isinstance(value, (int, np.integer)):
            stem = name[:-len("multiplier")]
            for shift_name in (stem + "shift", stem + "left_shift"):
                if shift_name in fields:
                    _check_pair(node, name, int(value), shift_name, int(fields[shift_name]))
    low, high = fields.get("activation_min"), fields.get("activation_max")
    if low is not None and not -128 <= low <= high <= 127:
        raise ModelFormatError(f"activation range [{low}, {high}] is empty or outside int8",
                               node.describe())


def _check_pair(node: QNode, m_name: str, multiplier: int, s_name: str, shift: int) -> None:
    if not 0 <= multiplier <= 2**31 - 1:
        raise ModelFormatError(f"{m_name} {multiplier} is not a Q0.31 value", node.describe())
    if not -MAX_SHIFT <= shift <= MAX_SHIFT:
        raise ModelFormatError(f"{s_name} {shift} is outside [-{MAX_SHIFT}, {MAX_SHIFT}]: "
                               f"a multiplier of 2^{shift - 1} or more, which 32-bit "
                               "arithmetic cannot apply", node.describe())


def _check_requant(node: QNode, requant: P.Requant) -> None:
    multiplier = np.asarray(requant.multiplier, np.int64).reshape(-1)
    shift = np.asarray(requant.shift, np.int64).reshape(-1)
    for m, s in zip(multiplier.tolist(), shift.tolist()):
        _check_pair(node, "requantization multiplier", m, "requantization shift", s)
    if requant.real_scale is not None:
        real = np.asarray(requant.real_scale, np.float64).reshape(-1)
        if not (np.all(np.isfinite(real)) and np.all(real >= 0) and np.all(real < 2.0**31)):
            bad = real[~(np.isfinite(real) & (real >= 0) & (real < 2.0**31))][0]
            raise ModelFormatError(f"requantization scale {bad} (input scale * weight scale / "
                                   "output scale) is not finite or not below 2^31",
                                   node.describe())


# -- resources ------------------------------------------------------------------------

def check_resources(qgraph: QGraph, limits: Limits) -> None:
    memory, memory_node = estimate_memory(qgraph)
    if memory > limits.max_memory:
        raise ResourceLimitError(
            f"needs about {memory / 2**20:.1f} MiB ({memory} bytes; the largest operator "
            f"is {memory_node}), more than the limit of {limits.max_memory} bytes "
            "(edgecnn.load(..., limits=edgecnn.Limits(max_memory=...)))", "model")
    work = estimate_work(qgraph)
    if work > limits.max_work:
        raise ResourceLimitError(
            f"needs about {work:.3g} multiply-accumulates per inference, more than the limit "
            f"of {limits.max_work:.3g} (edgecnn.load(..., limits=edgecnn.Limits("
            "max_work=...)))", "model")


def _elements(qgraph: QGraph, tensor: int) -> int:
    return math.prod(qgraph.tensors[tensor].shape)


def _window(node: QNode):
    """(kernel h, kernel w, dilation, taps) of a windowed op, else None."""
    p = node.params
    if node.op == "CONV_2D":
        return p.weights.shape[1], p.weights.shape[2], p.dilation
    if node.op == "DEPTHWISE_CONV_2D":
        return p.weights.shape[0], p.weights.shape[1], p.dilation
    if node.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return p.filter_size[0], p.filter_size[1], (1, 1)
    return None


def _padded_elements(qgraph: QGraph, node: QNode) -> int:
    """Elements of the input padded so that every window tap is in range (what the
    reference and the core's padded copy hold)."""
    window = _window(node)
    if window is None:
        return 0
    kh, kw, dilation = window
    n, _, _, c = qgraph.tensors[node.inputs[0]].shape
    _, oh, ow, _ = qgraph.tensors[node.outputs[0]].shape
    h, w = qgraph.tensors[node.inputs[0]].shape[1:3]
    top, left = node.params.padding
    need_h = (oh - 1) * node.params.stride[0] + (kh - 1) * dilation[0] + 1
    need_w = (ow - 1) * node.params.stride[1] + (kw - 1) * dilation[1] + 1
    multiplier = getattr(node.params, "depth_multiplier", 1)
    return n * max(need_h, h + top) * max(need_w, w + left) * c * multiplier


def estimate_memory(qgraph: QGraph) -> tuple[int, str]:
    """Bytes: every activation tensor, plus the largest working set of one operator
    (int64/float64 copies of its inputs, outputs and padded input in the reference,
    int32 index maps in the core)."""
    activations = sum(_elements(qgraph, t) * np.dtype(qgraph.tensors[t].dtype).itemsize
                      for t in qgraph.tensors)
    largest, where = 0, "none"
    for node in qgraph.nodes:
        elements = sum(_elements(qgraph, t) for t in node.inputs + node.outputs)
        working = 16 * elements + 16 * _padded_elements(qgraph, node)
        if working > largest:
            largest, where = working, node.describe()
    return activations + largest, where


def estimate_work(qgraph: QGraph) -> int:
    total = 0
    for node in qgraph.nodes:
        out = _elements(qgraph, node.outputs[0])
        window = _window(node)
        if node.op == "CONV_2D":
            total += out * node.params.weights[0].size
        elif node.op == "FULLY_CONNECTED":
            total += out * node.params.weights.shape[1]
        elif window is not None:
            total += out * window[0] * window[1]
        else:
            total += out + sum(_elements(qgraph, t) for t in node.inputs)
        if window is not None:
            total += WORK_PER_TAP * window[0] * window[1]
    return total
