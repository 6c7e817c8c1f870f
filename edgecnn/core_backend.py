"""The "core" backend: a QGraph compiled once into a `_core.Program` over one arena.

Compilation turns each params record into the flat integers and arrays the
Cython kernels read, and precomputes whatever does not depend on the input:
zero-point corrections folded into biases, 256-entry tables for elementwise
int8 functions (computed by the reference kernels themselves, so they are
exact by construction), exp() tables for softmax, and index maps for every
op that only moves bytes (PAD, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND,
CONCATENATION, broadcasting ADD). Inference is then one call into the core.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np

from .errors import BackendUnavailableError, EdgecnnError
from .ir import QGraph, QNode
from .packed_gemm import READ_SLACK, a64_depthwise_weights, a64_pairs, depthwise_lanes
from .packed_gemm import conv_geometry as _conv_geometry
from .packed_gemm import fc_as_conv_weights as _fc_as_conv_weights
from .packed_gemm import folded_bias as _folded_bias
from .packed_gemm import packed_sizes as _vnni_sizes
from .packed_gemm import packed_weights as _vnni_weights
from .packed_gemm import pad_channels as _pad_channels
from .packed_gemm import requant_arrays as _requant_arrays
from .packed_gemm import round_up as _round_up
from .packed_gemm import tap_offsets as _tap_offsets
from .packed_gemm import windows_in_place as _vnni_in_place
from .planner import Plan, plan_memory, tensor_bytes
from .reference import layout, quant
from .reference.quantize import VECTOR_BLOCK
from .tables import elementwise_table, softmax_exp_tables

_IMPORT_ERROR = ""
try:
    from . import _core
except ImportError as exc:  # reported when the backend is asked for, never replaced silently
    _core = None
    _IMPORT_ERROR = str(exc)


def available() -> bool:
    return _core is not None


def instruction_set() -> str:
    """The kernels models compile to now, and the best this CPU runs (for reports)."""
    if _core is None:
        return "none (the Cython core is not built)"
    return f"{_core.isa()} (this CPU runs up to {_core.supported_isa()})"


def _isa_override_error() -> str:
    """EDGECNN_ISA=baseline|avx2|avx-vnni|avx512-vnni picks the kernels the core uses (to
    measure or test the other paths on a newer CPU). Applied at import; a bad value is
    reported when the core is first used (as a one-line error, not at import)."""
    name = os.environ.get("EDGECNN_ISA")
    if name and _core is not None:
        try:
            _core.set_isa(name)
        except ValueError as exc:
            return str(exc)
    return ""


_ISA_ERROR = _isa_override_error()


class CompiledModel:
    """A QGraph + its memory plan + the Program that runs it in one call."""

    def __init__(self, qgraph: QGraph, threads: int = 1):
        if _core is None:
            raise BackendUnavailableError(
                f"the Cython core is not built ({_IMPORT_ERROR}); reinstall edgecnn with a C "
                "compiler, or use backend='reference'", "core backend")
        if _ISA_ERROR:
            raise EdgecnnError(_ISA_ERROR, "the EDGECNN_ISA environment variable")
        self.qgraph = qgraph
        self.threads = max(1, int(threads))
        # Fixed per compiled model: the packed-weight kernels (x86 VNNI: AVX-512 or AVX-VNNI;
        # AArch64: NEON or SDOT) read their own weight layouts, so the instruction set at
        # compile time decides which ops are made (see weight_layout).
        layout = weight_layout(_core.isa())
        self.arm = layout == "arm"
        self.vnni = layout in ("vnni", "arm")
        self.plan: Plan = plan_memory(qgraph, {step: scratch_bytes(qgraph, node, self.threads,
                                                                   self.vnni, self.arm)
                                               for step, node in enumerate(qgraph.nodes)})
        self.program = _core.Program(max(self.plan.arena_size, 1))
        self.op_ranges = []   # per node: the program's ops it compiled to (first, stop)
        for step, node in enumerate(qgraph.nodes):
            first = len(self.program)
            if not self.plan.is_folded(step):
                _compile_node(self, step, node)
            self.op_ranges.append((first, len(self.program)))
        self.arena = np.zeros(self.plan.arena_size + READ_SLACK, dtype=np.uint8)
        self.program.bind(self.arena)
        self._input_copies = [self._input_copy(t) for t in qgraph.inputs]
        self._output_views = self._views(qgraph.outputs)
        self._lock = threading.Lock()

    def offset(self, tensor: int) -> int:
        return self.plan.tensor_offsets[tensor]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            for copy_in, x in zip(self._input_copies, inputs):
                copy_in(x)
            self.program.run()
            return [view.copy() for view in self._output_views]

    def _input_copy(self, tensor: int):
        """How the caller's array for this graph input gets into the arena: a plain copy
        into its view, or, when the planner folded the TRANSPOSE that reads it, that
        transpose written straight into the TRANSPOSE's output."""
        folded = [step for step, t in self.plan.folded_inputs.items() if t == tensor]
        if not folded:
            view = self._views([tensor])[0]
            return lambda x: np.copyto(view, x)
        node = self.qgraph.nodes[folded[0]]
        ints = _transpose_ints(self.qgraph, node)
        offset = self.offset(node.outputs[0])
        return lambda x: _core.transpose_into(np.ascontiguousarray(x), self.arena, offset, ints)

    def _views(self, tensors) -> list[np.ndarray]:
        """Typed numpy views of the arena where these tensors live (made once)."""
        views = []
        for t in tensors:
            spec = self.qgraph.tensors[t]
            start = self.offset(t)
            raw = self.arena[start:start + tensor_bytes(self.qgraph, t)]
            views.append(raw.view(np.dtype(spec.dtype)).reshape(spec.shape))
        return views


def scratch_bytes(qgraph: QGraph, node: QNode, threads: int = 1,  # noqa: C901
                  vnni: bool = False, arm: bool = False) -> int:
    """Per-op scratch the kernels need: per thread int32 accumulators (+ an im2col block
    for convolutions), then a padded copy of the input (x86 VNNI: flipped, for windows read
    in place). vnni: the packed-weight kernels (arm: their AArch64 form, which reads
    windows in place from the input itself unless it needs padding)."""
    if node.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        geometry = _conv_geometry(qgraph, node)
        padded = geometry["padded_bytes"]
        if vnni and not arm and node.op == "CONV_2D" and _vnni_in_place(node):
            n, _, _, cin = qgraph.tensors[node.inputs[0]].shape
            padded = n * geometry["hp"] * geometry["wp"] * cin + READ_SLACK
        return threads * _work_bytes(node, vnni, arm) + padded
    if node.op == "FULLY_CONNECTED" and vnni:
        return threads * _vnni_work_bytes(_fc_as_conv_weights(node.params.weights).shape)
    if node.op == "FULLY_CONNECTED":
        if _fc_rows(qgraph, node) <= FC_ROWS_FOR_DOT_PRODUCTS:
            return 4 * node.params.weights.shape[0]
        return _gemm_work_bytes(_fc_as_conv_weights(node.params.weights).shape)
    if node.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return 4 * qgraph.tensors[node.inputs[0]].shape[3]
    if node.op == "MEAN":
        return 4 * int(np.prod(qgraph.tensors[node.outputs[0]].shape))
    return 0


PIXEL_BLOCK = 4  # _core.pyx: output pixels computed together by the conv GEMM


def _work_bytes(node: QNode, vnni: bool = False, arm: bool = False) -> int:
    """One thread's working memory (4-byte aligned). Conv: int32 accumulators and the
    packed input pairs of one block of output pixels, plus one im2col window (VNNI: the
    block's flipped input rows and int32 accumulators); depthwise: one pixel's
    accumulators (none for the VNNI kernels, which keep them in registers)."""
    if node.op == "DEPTHWISE_CONV_2D":
        if vnni and _depthwise_vnni(node, arm):
            return 0
        return 4 * _round_up(node.params.weights.shape[2], 8)
    if vnni:
        return _vnni_work_bytes(node.params.weights.shape)
    return _gemm_work_bytes(node.params.weights.shape)


VNNI_PIXELS = 8   # _core.pyx: output pixels per call of the VNNI GEMM
ARM_ISAS = ("neon", "dotprod")   # _core's AArch64 levels: the packed GEMM without the flip
VNNI_ISAS = ("avx-vnni", "avx512-vnni")


def weight_layout(isa: str) -> str:
    """"plain", "vnni" or "arm": the weight layouts a model compiled under instruction set
    `isa` uses. Everything else is picked when the kernels run, so a model compiled under
    one level runs the same program as if compiled under any level with the same layout
    (under the level set when it runs; the fuzzer compiles once per layout)."""
    if isa in ARM_ISAS:
        return "arm"
    return "vnni" if isa in VNNI_ISAS else "plain"


def _vnni_work_bytes(weights_shape) -> int:
    """Input rows [8][depth4] + their copies' overrun (READ_SLACK) + int32 acc [8][coutp]."""
    coutp, row_bytes = _vnni_sizes(weights_shape)
    return VNNI_PIXELS * row_bytes + READ_SLACK + VNNI_PIXELS * 4 * coutp


def _arm_row_taps(cm: CompiledModel, node: QNode) -> bool:
    """On AArch64, a window read in place takes each kernel row as one tap when its kw taps
    are contiguous (width dilation 1): kw * cin bytes, rounded up to 4 once per row rather
    than per tap, so the NEON / SDOT tiles run kh deep taps (3-channel first layers: one
    16-byte load per row instead of 3 loads) and 1-channel inputs (DS-CNN) read in place."""
    return cm.arm and node.params.dilation[1] == 1


def _arm_kind(cm: CompiledModel, weights: np.ndarray) -> int:
    """_core.pyx's i[26] of CONV_VNNI (i[28] of DWCONV_VNNI): 0 on x86; on AArch64 1, or 2
    when no weight is -128, so two int8 products always fit an int16 sum
    (firmware_export/runtime/ec_a64_neon.h)."""
    if not cm.arm:
        return 0
    return 2 if a64_pairs(weights) else 1


def _compile_conv_vnni(cm: CompiledModel, step: int, node: QNode, weights: np.ndarray,
                       geometry: list[int], out_shape, padded: bool) -> None:
    """CONV_2D (or FC as a 1x1 convolution) on the packed GEMM. On x86 (VPDPBUSD) its
    inputs arrive as x + 128, so the bias absorbs -(zp + 128) * sum(w) instead of
    -zp * sum(w); on AArch64 (signed SMULL / SDOT) they arrive as they are."""
    p = node.params
    coutp, row_bytes = _vnni_sizes(weights.shape)
    cout, kh, kw, cin = weights.shape
    folded = _folded_bias(p.bias, weights, p.input_zero_point + (0 if cm.arm else 128))
    scratch = cm.plan.scratch_offsets[step]
    work = _vnni_work_bytes(weights.shape)
    row_taps = node.op == "CONV_2D" and _arm_row_taps(cm, node)
    in_place = _vnni_in_place(node, row_taps)
    row_taps = row_taps and in_place
    flipped_copy = in_place and not cm.arm
    pad_at = scratch + cm.threads * work if (padded or flipped_copy) else -1
    taps, tap_depth = (kh, kw * cin) if row_taps else (kh * kw, cin)
    ints = geometry + [scratch, work, _threads_for(cm, out_shape, weights[0].size), row_bytes,
                       int(in_place), _arm_kind(cm, weights), taps, -(-tap_depth // 4)]
    requant = _pad_channels(_requant_arrays(p.requant, cout), coutp)
    tap_offsets = _tap_offsets(kh, 1 if row_taps else kw, p.dilation, geometry[16], cin) \
        if in_place else None
    arrays = [_vnni_weights(weights, per_tap=in_place, row_taps=row_taps),
              *_pad_channels([folded], coutp)] + requant + [tap_offsets]
    cm.program.add("CONV_VNNI", cm.offset(node.inputs[0]), -1, cm.offset(node.outputs[0]),
                   pad_at, ints, arrays, p.requant.rounding)


def _depthwise_vnni(node: QNode, arm: bool = False) -> bool:
    """Whether a depthwise convolution has a VNNI kernel: depth multiplier 1 (AArch64: any),
    and a requantization those kernels do in registers."""
    p = node.params
    return (p.depth_multiplier == 1 or arm) and p.requant.rounding in ("double", "float32")


def _compile_depthwise_vnni(cm: CompiledModel, step: int, node: QNode, geometry: list[int],
                            scratch: int, padded: bool) -> None:
    """DEPTHWISE_CONV_2D with depth multiplier 1 on the VNNI kernels: tap pairs as int16
    (VPDPWSSD) on 16 lanes (in 8-lane pieces with AVX-VNNI), or on AArch64 int8 taps on
    16 NEON lanes (there any depth multiplier: i[21]), the taps' offsets within a window
    computed here once. With stride 1, multiplier 1 and channels dividing 16, the 16 lanes
    hold 16 / channels whole pixels and every per-channel array is repeated to match."""
    p = node.params
    kh, kw, cout = p.weights.shape
    cin, wp = geometry[3], geometry[16]
    per_vector, _, coutp = depthwise_lanes(cout, p.stride[1], p.depth_multiplier)
    tap_offsets = _tap_offsets(kh, kw, p.dilation, wp, cin)
    bias = _folded_bias(p.bias, np.moveaxis(p.weights, 2, 0), p.input_zero_point)
    pad_at = scratch if padded else -1
    columns = (kh, kw) == (3, 3) and p.stride[1] in (1, 2) and p.dilation[1] == 1 and \
        per_vector == 1 and not cm.arm
    threads = _threads_for(cm, cm.qgraph.tensors[node.outputs[0]].shape, kh * kw)
    ints = geometry + [p.depth_multiplier, scratch, 0, threads, coutp, per_vector,
                       int(columns), _arm_kind(cm, p.weights)]
    requant = _requant_arrays(p.requant, cout)
    per_lane = [None if a is None else np.tile(a, per_vector) for a in [bias] + requant]
    weights = np.tile(p.weights, (1, 1, per_vector))
    if cm.arm:   # int8 [taps][coutp] for ec_a64_neon.h's depthwise rows
        pairs = a64_depthwise_weights(p.weights, per_vector, coutp)
    elif columns:
        pairs = _depthwise_column_pairs(weights, coutp)
    else:
        pairs = _depthwise_tap_pairs(weights, channel_multiple=16)
    arrays = [tap_offsets, *_pad_channels(per_lane, coutp), pairs]
    cm.program.add("DWCONV_VNNI", cm.offset(node.inputs[0]), -1, cm.offset(node.outputs[0]),
                   pad_at, ints, arrays, p.requant.rounding)


def _conv_ints(p, in_shape, out_shape, kernel, geometry) -> list[int]:
    """The integers every convolution kernel reads first (i[0..20] in _core.pyx)."""
    n, h, w, cin = in_shape
    _, oh, ow, cout = out_shape
    return [n, h, w, cin, oh, ow, cout, kernel[0], kernel[1], p.stride[0], p.stride[1],
            p.dilation[0], p.dilation[1], p.padding[0], p.padding[1], geometry["hp"],
            geometry["wp"], p.output_zero_point, p.activation_min, p.activation_max,
            p.input_zero_point]


MAX_DEPTHWISE_PAIR_TAPS = 64   # _core.pyx depthwise_rows keeps the tap pointers on the stack


def _depthwise_tap_pairs(weights: np.ndarray, channel_multiple: int = 8) -> np.ndarray | None:
    """Depthwise weights [kh, kw, cout] as int16 tap pairs [taps/2][coutp][2] (coutp =
    cout rounded up to channel_multiple, zeros in the padding and for an odd last tap)."""
    kh, kw, cout = weights.shape
    taps = kh * kw
    if taps > MAX_DEPTHWISE_PAIR_TAPS and channel_multiple == 8:
        return None
    coutp = _round_up(cout, channel_multiple)
    by_tap = np.zeros((_round_up(taps, 2), coutp), np.int16)
    by_tap[:taps, :cout] = weights.reshape(taps, cout)
    return np.ascontiguousarray(by_tap.reshape(-1, 2, coutp).transpose(0, 2, 1))


def _depthwise_column_pairs(weights: np.ndarray, coutp: int) -> np.ndarray:
    """3x3 depthwise weights as _core_simd.h's column kernel reads them: [6][coutp][2] int16,
    the pairs (w[0][kx], w[1][kx]) for kx = 0..2, then (w[2][kx], 0)."""
    cout = weights.shape[2]
    out = np.zeros((6, coutp, 2), np.int16)
    out[:3, :cout, 0] = weights[0]
    out[:3, :cout, 1] = weights[1]
    out[3:, :cout, 0] = weights[2]
    return out


def _gemm_work_bytes(weights_shape) -> int:
    cout, kh, kw, cin = weights_shape
    coutp, kpairs = _padded_gemm_sizes(weights_shape)
    return 4 * PIXEL_BLOCK * (coutp + kpairs) + -(-kh * kw * cin // 4) * 4


def _padded_gemm_sizes(weights_shape) -> tuple[int, int]:
    """(output channels rounded up to 8 (SSE2 takes 4 at a time, AVX2 8), input pairs =
    depth rounded up to even / 2)."""
    cout, kh, kw, cin = weights_shape
    return _round_up(cout, 8), -(-(kh * kw * cin) // 2)


def _weight_pairs(weights: np.ndarray) -> np.ndarray:
    """Conv weights [cout, kh, kw, cin] as int16 pairs [depth/2][coutp][2] for _core's GEMM."""
    cout = weights.shape[0]
    coutp, kpairs = _padded_gemm_sizes(weights.shape)
    by_k = np.zeros((2 * kpairs, coutp), np.int16)
    by_k[:weights[0].size, :cout] = weights.reshape(cout, -1).T
    return np.ascontiguousarray(by_k.reshape(kpairs, 2, coutp).transpose(0, 2, 1))


def _compile_node(cm: CompiledModel, step: int, node: QNode) -> None:
    compiler = _COMPILERS.get(node.op)
    if compiler is None:
        raise BackendUnavailableError(f"the core has no kernel for {node.op}", node.describe())
    compiler(cm, step, node)


def _io(cm, node):
    q = cm.qgraph
    x = q.tensors[node.inputs[0]] if node.inputs else None
    y = q.tensors[node.outputs[0]]
    return x, y, (cm.offset(x.index) if x is not None else 0), cm.offset(y.index)


def _compile_conv(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    n, h, w, cin = x.shape
    _, oh, ow, cout = y.shape
    g = _conv_geometry(cm.qgraph, node)
    scratch = cm.plan.scratch_offsets.get(step, -1)
    if node.op == "CONV_2D" and cm.vnni:
        return _compile_conv_vnni(cm, step, node, p.weights,
                                  _conv_ints(p, x.shape, y.shape, p.weights.shape[1:3], g),
                                  y.shape, g["padded_bytes"] > 0)
    if node.op == "DEPTHWISE_CONV_2D" and cm.vnni and _depthwise_vnni(node, cm.arm):
        return _compile_depthwise_vnni(cm, step, node, _conv_ints(
            p, x.shape, y.shape, p.weights.shape[0:2], g), scratch, g["padded_bytes"] > 0)
    if node.op == "CONV_2D":
        _, kh, kw, _ = p.weights.shape
        bias = _folded_bias(p.bias, p.weights, p.input_zero_point)
        work = _work_bytes(node)
        coutp, kpairs = _padded_gemm_sizes(p.weights.shape)
        extra, kind = [scratch, work, _threads_for(cm, y.shape, kh * kw * cin), coutp, kpairs], \
            "CONV"
        pad_at = scratch + cm.threads * work if g["padded_bytes"] else -1
        weights = _weight_pairs(p.weights)
        bias = _pad_channels([bias], coutp)[0]
    else:
        kh, kw, _ = p.weights.shape
        per_output = np.moveaxis(p.weights, 2, 0)                       # [cout, kh, kw]
        bias = _folded_bias(p.bias, per_output, p.input_zero_point)
        work = _work_bytes(node)
        pairs = _depthwise_tap_pairs(p.weights) if p.depth_multiplier == 1 else None
        extra, kind = [p.depth_multiplier, scratch, work, _threads_for(cm, y.shape, kh * kw),
                       _round_up(cout, 8)], "DWCONV"
        pad_at = scratch + cm.threads * work if g["padded_bytes"] else -1
        weights = np.ascontiguousarray(p.weights)
    ints = _conv_ints(p, x.shape, y.shape, (kh, kw), g) + extra
    arrays = [weights, bias] + _requant_arrays(p.requant, cout)
    if node.op == "DEPTHWISE_CONV_2D":
        arrays[1] = _pad_channels([bias], _round_up(cout, 8))[0]
        arrays.append(pairs)
    cm.program.add(kind, x_off, -1, y_off, pad_at, ints, arrays, p.requant.rounding)


# Below this many MACs a layer runs on one thread: waking a second one costs more.
MIN_MACS_PER_THREAD = 200_000


def _threads_for(cm: CompiledModel, out_shape, macs_per_output: int) -> int:
    macs = int(np.prod(out_shape)) * macs_per_output
    return max(1, min(cm.threads, macs // MIN_MACS_PER_THREAD, out_shape[0] * out_shape[1]))


# Up to this many rows an FC runs as int8 dot products (each weight is read once per
# inference, so reading int8 beats the GEMM's int16 pairs); more rows use the GEMM.
FC_ROWS_FOR_DOT_PRODUCTS = 4


def _fc_rows(qgraph: QGraph, node: QNode) -> int:
    return int(np.prod(qgraph.tensors[node.inputs[0]].shape)) // node.params.weights.shape[1]


def _compile_fc(cm: CompiledModel, step: int, node: QNode) -> None:
    """FULLY_CONNECTED: int8 dot products for a few rows, else a 1x1 convolution over the
    rows on the GEMM (same arithmetic: bias + sum w * (x - zp), then requantize)."""
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    out_f, in_f = p.weights.shape
    rows = int(np.prod(x.shape)) // in_f
    # the rows as a 1 x rows image of in_f channels, for the convolution kernels
    geometry = [1, 1, rows, in_f, 1, rows, out_f, 1, 1, 1, 1, 1, 1, 0, 0, 1, rows,
                p.output_zero_point, p.activation_min, p.activation_max, p.input_zero_point]
    if cm.vnni:
        return _compile_conv_vnni(cm, step, node, _fc_as_conv_weights(p.weights), geometry,
                                  (1, 1, rows, out_f), padded=False)
    if rows <= FC_ROWS_FOR_DOT_PRODUCTS:
        bias = _folded_bias(p.bias, p.weights, p.input_zero_point)
        ints = [rows, in_f, out_f, p.output_zero_point, p.activation_min, p.activation_max]
        arrays = [np.ascontiguousarray(p.weights), bias] + _requant_arrays(p.requant, out_f)
        cm.program.add("FC", x_off, -1, y_off, cm.plan.scratch_offsets[step], ints, arrays,
                       p.requant.rounding)
        return
    weights = _fc_as_conv_weights(p.weights)
    coutp, kpairs = _padded_gemm_sizes(weights.shape)
    bias = _folded_bias(p.bias, p.weights, p.input_zero_point)
    bias = _pad_channels([bias], coutp)[0]
    work = _gemm_work_bytes(weights.shape)
    ints = geometry + [cm.plan.scratch_offsets[step], work, 1, coutp, kpairs]
    arrays = [_weight_pairs(weights), bias] + _requant_arrays(p.requant, out_f)
    cm.program.add("CONV", x_off, -1, y_off, -1, ints, arrays, p.requant.rounding)


def _compile_pool(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    ints = [n, h, w, c, oh, ow, p.filter_size[0], p.filter_size[1], p.stride[0], p.stride[1],
            p.padding[0], p.padding[1], p.activation_min, p.activation_max]
    kind = "MAXPOOL" if node.op == "MAX_POOL_2D" else "AVGPOOL"
    cm.program.add(kind, x_off, -1, y_off, cm.plan.scratch_offsets[step], ints, [])


def _broadcast_index(shape, out_shape):
    if tuple(shape) == tuple(out_shape):
        return None
    index = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    return np.ascontiguousarray(np.broadcast_to(index, out_shape)).reshape(-1)


def _compile_add(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    q = cm.qgraph
    a = q.tensors[node.inputs[0]]
    y = q.tensors[node.outputs[0]]
    if p.input2_constant is not None:
        b_shape, b_off = p.input2_constant.shape, -1
        constant = np.ascontiguousarray(p.input2_constant, np.int8)
    else:
        b = q.tensors[node.inputs[1]]
        b_shape, b_off, constant = b.shape, cm.offset(b.index), None
    ints = [int(np.prod(y.shape)), p.input1_zero_point, p.input2_zero_point, p.output_zero_point,
            p.left_shift, p.input1_multiplier, p.input1_shift, p.input2_multiplier,
            p.input2_shift, p.output_multiplier, p.output_shift, p.activation_min,
            p.activation_max]
    arrays = [_broadcast_index(a.shape, y.shape), _broadcast_index(b_shape, y.shape), constant]
    cm.program.add("ADD", cm.offset(a.index), b_off, cm.offset(y.index), -1, ints, arrays,
                   p.rounding)


def _compile_mean(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    kept = tuple(1 if i in p.axes else d for i, d in enumerate(x.shape))
    out_size = int(np.prod(kept))
    out_index = np.broadcast_to(np.arange(out_size, dtype=np.int32).reshape(kept), x.shape)
    ints = [int(np.prod(x.shape)), out_size, p.count, p.input_zero_point, p.output_zero_point,
            p.multiplier, p.shift, int(p.rounding == "xnnpack")]
    axes = sorted({a % len(x.shape) for a in p.axes})
    if axes and axes == list(range(axes[0], axes[-1] + 1)):   # a contiguous block: plain row sums
        ints += [int(np.prod(x.shape[:axes[0]])), int(np.prod(x.shape[axes[0]:axes[-1] + 1])),
                 int(np.prod(x.shape[axes[-1] + 1:]))]
    else:
        ints += [0, 0, 0]
    row_arrays = [None, None, None]
    if p.rounding == "double":
        row_arrays = [np.full(out_size, p.multiplier, np.int32),
                      np.full(out_size, max(p.shift, 0), np.int32),
                      np.full(out_size, max(-p.shift, 0), np.int32)]
    cm.program.add("MEAN", x_off, -1, y_off, cm.plan.scratch_offsets[step], ints,
                   [np.ascontiguousarray(out_index).reshape(-1),
                    np.array([p.float_scale, p.float_zero_point], np.float32)] + row_arrays)


def _compile_softmax(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    depth = x.shape[-1]
    exp_q0, exp_acc = softmax_exp_tables(p)
    ints = [int(np.prod(x.shape)) // depth, depth, p.diff_min, p.output_zero_point]
    lut16 = [None, None]   # LiteRT's aarch64 variant: its table and the output scale
    if p.exp_lut16 is not None:
        lut16 = [p.exp_lut16.astype(np.int32), np.array([p.output_scale], np.float32)]
    cm.program.add("SOFTMAX", x_off, -1, y_off, -1, ints, [exp_q0, exp_acc] + lut16)


def _compile_lut(cm: CompiledModel, step: int, node: QNode) -> None:
    """Elementwise int8/uint8 -> int8/uint8 ops as a 256-entry table built by the reference."""
    x, y, x_off, y_off = _io(cm, node)
    size = int(np.prod(x.shape))
    table, flip = elementwise_table(node, x.dtype)
    tail, body = None, size
    if getattr(node.params, "rounding", None) == "litert-optimized":
        # LiteRT's optimized requantize rounds the last size % 16 elements differently
        # (reference/quantize.py): their own table, from the scalar formula.
        scalar_params = dataclasses.replace(node.params, rounding="tflite")
        tail = elementwise_table(dataclasses.replace(node, params=scalar_params), x.dtype)[0]
        body = size // VECTOR_BLOCK * VECTOR_BLOCK
    cm.program.add("LUT", x_off, -1, y_off, -1, [size, flip, body], [table, tail])


def _compile_quantize(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    if x.dtype != "float32":
        return _compile_lut(cm, step, node)
    info = np.iinfo(p.output_dtype)
    ints = [int(np.prod(x.shape)), p.output_zero_point, info.min, info.max,
            int(p.output_dtype == "uint8")]
    scale = np.float32(p.scale)
    if p.rounding == "xnnpack":
        scale = np.float32(1.0) / scale   # XNNPACK multiplies by the float32 reciprocal
    cm.program.add("QUANTIZE_FLOAT", x_off, -1, y_off, -1, ints,
                   [np.array([scale], dtype=np.float32)], p.rounding)


def _compile_dequantize(cm: CompiledModel, step: int, node: QNode) -> None:
    p = node.params
    x, y, x_off, y_off = _io(cm, node)
    ints = [int(np.prod(x.shape)), p.zero_point, int(x.dtype == "uint8")]
    cm.program.add("DEQUANTIZE", x_off, -1, y_off, -1, ints, [np.array([p.scale], np.float64)])


def _compile_gather(cm: CompiledModel, step: int, node: QNode) -> None:
    """Byte-moving ops: run the reference kernel on an array of indices (pad value -1)."""
    from .executor import REFERENCE_KERNELS
    x, y, x_off, y_off = _io(cm, node)
    params = node.params
    pad_value = getattr(params, "pad_value", 0)
    if hasattr(params, "pad_value"):
        params = dataclasses.replace(params, pad_value=-1)
    indices = np.arange(int(np.prod(x.shape)), dtype=np.int32).reshape(x.shape)
    index = REFERENCE_KERNELS[node.op]([indices], params, y.shape)
    index = np.ascontiguousarray(index, dtype=np.int32).reshape(-1)
    cm.program.add("GATHER", x_off, -1, y_off, -1, [index.size, pad_value & 0xFF], [index])


def _compile_reshape(cm: CompiledModel, step: int, node: QNode) -> None:
    x, y, x_off, y_off = _io(cm, node)
    if x_off != y_off:  # the planner aliases reshapes where it can
        cm.program.add("COPY", x_off, -1, y_off, -1, [tensor_bytes(cm.qgraph, x.index)], [])


def _transpose_ints(qgraph: QGraph, node: QNode) -> list[int]:
    """_core.pyx transpose's ints: rank, element size, output shape and input strides of
    the collapsed transpose (reference/layout.py transpose_walk), each padded to 6."""
    x = qgraph.tensors[node.inputs[0]]
    out_shape, in_strides = layout.transpose_walk(x.shape, node.params.perm)
    pad = [0] * (6 - len(out_shape))
    return [len(out_shape), np.dtype(x.dtype).itemsize, *out_shape, *pad, *in_strides, *pad]


def _compile_transpose(cm: CompiledModel, step: int, node: QNode) -> None:
    x, y, x_off, y_off = _io(cm, node)
    cm.program.add("TRANSPOSE", x_off, -1, y_off, -1, _transpose_ints(cm.qgraph, node), [])


def _compile_concatenation(cm: CompiledModel, step: int, node: QNode) -> None:
    q = cm.qgraph
    y = q.tensors[node.outputs[0]]
    axis = node.params.axis
    positions = np.arange(int(np.prod(y.shape)), dtype=np.int32).reshape(y.shape)
    bounds = np.cumsum([q.tensors[t].shape[axis] for t in node.inputs])[:-1]
    for t, part in zip(node.inputs, np.split(positions, bounds, axis=axis)):
        index = np.ascontiguousarray(part).reshape(-1)
        cm.program.add("SCATTER", cm.offset(t), -1, cm.offset(y.index), -1, [index.size], [index])


_COMPILERS = {
    "CONV_2D": _compile_conv, "DEPTHWISE_CONV_2D": _compile_conv,
    "FULLY_CONNECTED": _compile_fc,
    "MAX_POOL_2D": _compile_pool, "AVERAGE_POOL_2D": _compile_pool,
    "ADD": _compile_add, "MEAN": _compile_mean, "SOFTMAX": _compile_softmax,
    "LOGISTIC": _compile_lut, "HARD_SWISH": _compile_lut, "RELU": _compile_lut,
    "RELU6": _compile_lut, "RELU_N1_TO_1": _compile_lut,
    "QUANTIZE": _compile_quantize, "DEQUANTIZE": _compile_dequantize,
    "PAD": _compile_gather, "PADV2": _compile_gather, "SPACE_TO_BATCH_ND": _compile_gather,
    "BATCH_TO_SPACE_ND": _compile_gather,
    "RESHAPE": _compile_reshape, "SQUEEZE": _compile_reshape, "EXPAND_DIMS": _compile_reshape,
    "CONCATENATION": _compile_concatenation, "TRANSPOSE": _compile_transpose,
}


_CACHE_ATTRIBUTE = "_edgecnn_core_compiled"


# Compiled copies kept per QGraph (one per thread count asked for, the least recently
# used evicted first): a caller cycling through thread counts must not grow memory.
MAX_COMPILED_PER_MODEL = 4


def run_core(qgraph: QGraph, inputs: list[np.ndarray], num_threads: int = 1) -> list[np.ndarray]:
    """Backend entry point: compile once per QGraph and thread count (cached), then run."""
    return _compiled(qgraph, max(1, int(num_threads or 1))).run(inputs)


_CACHE_LOCK = threading.Lock()


def _compiled(qgraph: QGraph, threads: int) -> CompiledModel:
    with _CACHE_LOCK:
        cache = qgraph.__dict__.get(_CACHE_ATTRIBUTE)
        if cache is None:
            cache = {}
            object.__setattr__(qgraph, _CACHE_ATTRIBUTE, cache)
        compiled = cache.pop(threads, None)
        if compiled is not None:
            cache[threads] = compiled          # most recently used last
            return compiled
    compiled = CompiledModel(qgraph, threads)  # outside the lock: compiling takes a while
    with _CACHE_LOCK:
        compiled = cache.setdefault(threads, compiled)
        while len(cache) > MAX_COMPILED_PER_MODEL:
            del cache[next(iter(cache))]
    return compiled


def lean_run(qgraph: QGraph):
    """Model.run's lean path for this model (a _core.LeanRun), once the one-thread core
    has compiled it; None where it does not apply (the checked path always does)."""
    compiled = (qgraph.__dict__.get(_CACHE_ATTRIBUTE) or {}).get(1)
    if compiled is None or len(qgraph.inputs) != 1 or len(qgraph.outputs) != 1:
        return None
    tensor = qgraph.inputs[0]
    if tensor in compiled.plan.folded_inputs.values():   # written through a TRANSPOSE
        return None
    (view,), (output,) = compiled._views([tensor]), compiled._output_views
    if view.dtype.kind not in "iu":   # float inputs need their NaN check
        return None
    return _core.LeanRun(compiled.program, compiled._lock, np.ndarray, view.dtype,
                         view.shape, compiled.offset(tensor), output)


def register() -> None:
    from . import executor
    if _core is None:
        def unavailable(qgraph, inputs, num_threads=1):
            raise BackendUnavailableError(
                f"the Cython core is not built ({_IMPORT_ERROR}); reinstall edgecnn with a C "
                "compiler, or use backend='reference'", "core backend")
        executor.BACKENDS["core"] = unavailable
    else:
        executor.BACKENDS["core"] = run_core


register()
