"""QGraph + memory plan -> C99 sources for a microcontroller (or any C compiler).

Writes into the output directory:
  PREFIX_model.h / PREFIX_model.c   const weights, biases, multipliers and
                                    shifts; one const params record per layer;
                                    a static arena sized by the planner;
                                    PREFIX_invoke() and PREFIX_invoke_with_arena()
  ec_runtime.h + the ec_*.c kernels the model uses (firmware_export/runtime)
  main.c, Makefile, cortex-m/       an example driver and its build
The output is deterministic: the header records the tool version, the
model's sha256 and the command line, never a time.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import ArenaTooSmallError, EdgecnnError, UnsupportedOpError
from ..ir import QGraph, QNode
from ..packed_gemm import (READ_SLACK, a64_depthwise_weights, a64_pairs, conv_geometry,
                           depthwise_lanes, fc_as_conv_weights, folded_bias, pad_channels,
                           packed_weights, requant_arrays, round_up, tap_offsets,
                           windows_in_place)
from ..planner import plan_memory, tensor_bytes
from ..reference import layout
from ..reference.quant import accumulator_bound
from ..tables import elementwise_table, softmax_exp_tables

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_DIR = os.path.join(HERE, "runtime")
TEMPLATE_DIR = os.path.join(HERE, "templates")

# op -> runtime source file that implements it
RUNTIME_SOURCES = {
    "CONV_2D": "ec_conv2d_s8.c", "DEPTHWISE_CONV_2D": "ec_conv2d_s8.c",
    "MAX_POOL_2D": "ec_pool_s8.c", "AVERAGE_POOL_2D": "ec_pool_s8.c",
    "FULLY_CONNECTED": "ec_fully_connected_s8.c", "ADD": "ec_add_s8.c", "MEAN": "ec_mean_s8.c",
    "SOFTMAX": "ec_softmax_s8.c", "LOGISTIC": "ec_lut_u8.c", "HARD_SWISH": "ec_lut_u8.c",
    "RELU": "ec_lut_u8.c", "RELU6": "ec_lut_u8.c", "RELU_N1_TO_1": "ec_lut_u8.c",
    "PAD": "ec_layout_s8.c", "PADV2": "ec_layout_s8.c", "CONCATENATION": "ec_layout_s8.c",
    "SPACE_TO_BATCH_ND": "ec_layout_s8.c", "BATCH_TO_SPACE_ND": "ec_layout_s8.c",
    "RESHAPE": None, "SQUEEZE": None, "EXPAND_DIMS": None, "TRANSPOSE": "ec_transpose.c",
    "QUANTIZE": "ec_quantize_f32.c", "DEQUANTIZE": "ec_quantize_f32.c",
}
C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "float32": "float"}

# Every field of every params record (edgecnn/params.py), and the C struct it goes to
# (runtime/ec_runtime.h). tests/test_firmware.py fails when a record gains or loses a
# field this table (and so the emitter below) does not know about.
EXPORTED_FIELDS = {
    "Conv2DParams": ("ec_conv_params", {"input_zero_point", "output_zero_point", "stride",
                     "dilation", "padding", "weights", "bias", "requant", "activation_min",
                     "activation_max"}),
    "DepthwiseConv2DParams": ("ec_conv_params", {"input_zero_point", "output_zero_point",
                              "stride", "dilation", "padding", "depth_multiplier", "weights",
                              "bias", "requant", "activation_min", "activation_max"}),
    "Pool2DParams": ("ec_pool_params", {"filter_size", "stride", "padding", "activation_min",
                     "activation_max"}),
    "FullyConnectedParams": ("ec_fully_connected_params", {"input_zero_point",
                             "output_zero_point", "weights", "bias", "requant",
                             "activation_min", "activation_max"}),
    "AddParams": ("ec_add_params", {"input1_zero_point", "input2_zero_point",
                  "output_zero_point", "left_shift", "input1_multiplier", "input1_shift",
                  "input2_multiplier", "input2_shift", "output_multiplier", "output_shift",
                  "activation_min", "activation_max", "rounding", "input2_constant"}),
    "MeanParams": ("ec_mean_params", {"axes", "keep_dims", "count", "input_zero_point",
                   "output_zero_point", "multiplier", "shift", "rounding", "float_scale",
                   "float_zero_point"}),
    "SoftmaxParams": ("ec_softmax_params", {"input_multiplier", "input_left_shift", "diff_min",
                      "output_zero_point", "exp_lut16", "output_scale"}),
    "PadParams": ("ec_pad_params", {"paddings", "pad_value"}),
    "ConcatenationParams": ("ec_concat_part_params", {"axis"}),
    "SpaceToBatchParams": ("ec_space_batch_params", {"block_shape", "paddings", "pad_value"}),
    "BatchToSpaceParams": ("ec_space_batch_params", {"block_shape", "crops"}),
    "QuantizeParams": ("ec_quantize_params", {"output_zero_point", "output_dtype", "scale",
                       "input_zero_point", "multiplier", "shift", "rounding"}),
    "DequantizeParams": ("ec_dequantize_params", {"scale", "zero_point"}),
    "ReshapeParams": (None, {"output_shape"}),
    "TransposeParams": ("ec_transpose_params", {"perm"}),
    # elementwise ops exported as 256-entry tables computed by the reference
    "LogisticParams": ("ec_lut_params", {"input_zero_point", "input_range_radius",
                       "input_multiplier", "input_left_shift", "table", "input_scale"}),
    "HardSwishParams": ("ec_lut_params", {"input_zero_point", "output_zero_point",
                        "output_multiplier_fixedpoint_int16", "output_multiplier_exponent",
                        "reluish_multiplier_fixedpoint_int16", "reluish_multiplier_exponent"}),
    "ReluParams": ("ec_lut_params", {"input_zero_point", "output_zero_point", "multiplier",
                   "shift", "activation_min", "activation_max", "rescale"}),
}
ROUNDING = {"double": "EC_ROUND_DOUBLE", "single": "EC_ROUND_SINGLE"}
# QUANTIZE's "tflite" rounding (round(x / scale), MBQM) is the runtime's own
EXPORTED_ROUNDINGS = set(ROUNDING) | {"tflite"}
MCU_SOURCE = "ec_mcu_s8.c"   # the fast kernels (runtime/ec_mcu_s8.c)
# AArch64's kernels (runtime/ec_a64_s8.c over ec_a64_neon.h, shared with the core); a model
# whose layers use them builds those layers' records and its arena under `#if EC_A64`
A64_SOURCE = "ec_a64_s8.c"
A64_HEADERS = ["ec_gemm_s8.h", "ec_a64_neon.h"]
A64_CONDITION = "defined(__aarch64__) && defined(__ARM_NEON)"   # = EC_A64 in ec_runtime.h


@dataclass
class ExportReport:
    directory: str
    prefix: str
    arena_size: int
    lower_bound: int
    constant_bytes: int
    files: list[str] = field(default_factory=list)


def export(model, out_dir: str, prefix: str = "model", *, max_arena: int | None = None,
           max_flash: int | None = None, command_line: str = "") -> ExportReport:
    """Write the C99 export of `model` (an edgecnn.Model, a path or .tflite bytes)."""
    import edgecnn
    source_bytes = None
    if not isinstance(model, edgecnn.Model):
        source_bytes = model if isinstance(model, (bytes, bytearray)) else open(model, "rb").read()
        model = edgecnn.load(source_bytes)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise EdgecnnError(f"prefix {prefix!r} is not a C identifier", "export")
    q = model.qgraph
    _check_exportable(q)
    fast, plan = _plan_with_fast_kernels(q)
    writer = _Writer(q, prefix, {q.nodes[step].index for step in plan.folded_inputs}, fast)
    for node in q.nodes:
        writer.node(node, plan)
    _check_budgets(q, plan, writer, max_arena, max_flash)
    a64, plan64 = _plan_for_a64(q, fast)
    writer64 = None
    if a64:   # the same model for AArch64: its own layer records, calls and arena
        writer64 = _Writer(q, prefix, {q.nodes[step].index for step in plan64.folded_inputs},
                           {i: size for i, size in fast.items() if i not in a64}, set(a64))
        for node in q.nodes:
            writer64.node(node, plan64)

    os.makedirs(os.path.join(out_dir, "cortex-m"), exist_ok=True)
    digest = hashlib.sha256(source_bytes).hexdigest() if source_bytes else "(in-memory model)"
    banner = (f"/* Generated by edgecnn {edgecnn.__version__} firmware_export; do not edit.\n"
              f" * model sha256: {digest}\n * profile: {q.profile.name}\n"
              f" * command: {command_line or 'edgecnn.firmware_export.export()'} */\n")
    sources = sorted({_runtime_source(q, n, n.index in fast) for n in q.nodes} - {None}
                     | ({A64_SOURCE} if a64 else set()))
    files = {f"{prefix}_model.h": banner + writer.header(plan, plan64 if a64 else None),
             f"{prefix}_model.c": banner + writer.source(plan, writer64, plan64)}
    for name in ["ec_runtime.h"] + (A64_HEADERS if a64 else []) + sources:
        with open(os.path.join(RUNTIME_DIR, name)) as f:
            files[name] = f.read()
    substitutions = {"@PREFIX@": prefix, "@PREFIX_UPPER@": prefix.upper(),
                     "@IN_T@": C_TYPES[q.tensors[q.inputs[0]].dtype],
                     "@OUT_T@": C_TYPES[q.tensors[q.outputs[0]].dtype],
                     "@RUNTIME_SOURCES@": " ".join(sources),
                     "@INPUT_BYTES@": str(tensor_bytes(q, q.inputs[0])),
                     "@MACS@": str(max(1, _macs(q))),
                     **_io_substitutions(q, plan)}
    os.makedirs(os.path.join(out_dir, "tools"), exist_ok=True)
    for name in ("main.c", "Makefile", "README.md", "ec_bench.c", "ec_bench.h", "cortex-m/startup.c",
                 "cortex-m/mps2.ld", "tools/insncount.c"):
        with open(os.path.join(TEMPLATE_DIR, name)) as f:
            text = f.read()
        for key, value in substitutions.items():
            text = text.replace(key, value)
        files[name] = text
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w", newline="\n") as f:
            f.write(text)
    return ExportReport(out_dir, prefix, plan.arena_size, plan.lower_bound,
                        writer.constant_bytes, sorted(files))


def _io_substitutions(q: QGraph, plan) -> dict[str, str]:
    """What the generated README says about the demo's raw input and output files."""
    x, y = q.tensors[q.inputs[0]], q.tensors[q.outputs[0]]
    return {"@INPUT_COUNT@": str(int(np.prod(x.shape))), "@INPUT_SHAPE@": str(list(x.shape)),
            "@INPUT_SCALE@": repr(float(np.float32(x.scale))), "@INPUT_ZP@": str(x.zero_point),
            "@OUTPUT_COUNT@": str(int(np.prod(y.shape))), "@OUTPUT_SHAPE@": str(list(y.shape)),
            "@OUTPUT_BYTES@": str(tensor_bytes(q, y.index)),
            "@OUTPUT_SCALE@": repr(float(np.float32(y.scale))), "@OUTPUT_ZP@": str(y.zero_point),
            "@ARENA@": str(plan.arena_size)}


def _macs(q: QGraph) -> int:
    from ..tools.inspect import macs
    return sum(macs(n, q.tensors[n.outputs[0]].shape) for n in q.nodes)


def _runtime_source(q: QGraph, node: QNode, fast: bool = False) -> str | None:
    if fast:
        return MCU_SOURCE
    if node.op == "QUANTIZE" and q.tensors[node.inputs[0]].dtype != "float32":
        return "ec_lut_u8.c"   # int8 <-> uint8 requantization is a table
    return RUNTIME_SOURCES[node.op]


def _check_exportable(q: QGraph) -> None:
    problems = []
    for node in q.nodes:
        if node.op not in RUNTIME_SOURCES:
            problems.append((node.index, f"{node.op} has no C kernel"))
        requant = getattr(node.params, "requant", node.params)
        if getattr(requant, "rounding", "double") not in EXPORTED_ROUNDINGS:
            problems.append((node.index, f"{node.op}: the {q.profile.name} profile requantizes "
                             "as XNNPACK or in floating point; export with profile='tflm'"))
        for t in node.inputs + node.outputs:
            if len(q.tensors[t].shape) > 4 and node.op != "TRANSPOSE":   # (it takes 6)
                problems.append((node.index, f"{node.op}: tensors of rank > 4"))
    if problems:
        raise UnsupportedOpError(problems)
    if len(q.inputs) != 1 or len(q.outputs) != 1:
        raise EdgecnnError("the firmware export supports models with one input and one output",
                           "export")
    for t in (q.inputs[0], q.outputs[0]):
        if q.tensors[t].dtype not in C_TYPES:
            raise EdgecnnError(f"model I/O of type {q.tensors[t].dtype}", "export")


def _fast_requant(p, weights_per_output) -> bool:
    """Can ec_mcu_requantize (runtime/ec_runtime.h) stand for the layer's requantization?
    Double rounding, a right shift of at least 1, a non-negative multiplier and
    |accumulator| < 2^30 (then 2 * acc fits in int32)."""
    r = p.requant
    return (r.rounding == "double" and bool(np.all(np.asarray(r.shift) <= -1))
            and bool(np.all(np.asarray(r.multiplier) >= 0))
            and accumulator_bound(weights_per_output, p.bias) < 2**30)


def _fast_kernel(q: QGraph, node: QNode) -> int | None:
    """Scratch bytes of the node's fast kernel (runtime/ec_mcu_s8.c), None if it has none."""
    p = node.params
    if node.op == "CONV_2D" and _fast_requant(p, p.weights):
        _, kh, kw, cin = p.weights.shape
        # Short kernel rows read in place cost more in loop overhead than an im2col copy,
        # and so do windows that cross the border, read in place: their pixels take a
        # slow path (ResNet-8's 8x8 layers: 44% of the pixels). The copy is a small cost
        # next to the MACs.
        in_place = _windows_inside(q, node) and ((kh, kw) == (1, 1) or kw * cin >= 32)
        return 0 if in_place else 2 * kh * kw * cin
    if (node.op == "DEPTHWISE_CONV_2D" and p.weights.shape[0] * p.weights.shape[1] <= 49
            and _fast_requant(p, np.moveaxis(p.weights, 2, 0))):
        return 0   # (49: EC_MCU_DEPTHWISE_MAX_TAPS, runtime/ec_runtime.h)
    if node.op == "FULLY_CONNECTED" and _fast_requant(p, p.weights):
        return 0
    if node.op == "ADD" and _fast_add(q, node):
        return 0
    if node.op == "AVERAGE_POOL_2D":
        x = q.tensors[node.inputs[0]]
        if x.shape[-1] % 4 == 0 and len(x.shape) == 4 and p.filter_size[0] * p.filter_size[1] <= 255:
            return 0
    return None


def _windows_inside(q: QGraph, node: QNode) -> bool:
    """Does every window of the conv lie inside its input (no padding is read)?"""
    p = node.params
    _, h, w, _ = q.tensors[node.inputs[0]].shape
    _, out_h, out_w, _ = q.tensors[node.outputs[0]].shape
    _, kh, kw, _ = p.weights.shape
    return (tuple(p.padding) == (0, 0)
            and (out_h - 1) * p.stride[0] + (kh - 1) * p.dilation[0] < h
            and (out_w - 1) * p.stride[1] + (kw - 1) * p.dilation[1] < w)


def _depthwise_grouped(node: QNode) -> bool:
    """Does the depthwise layer take ec_mcu_depthwise_conv2d_s8 (four channels per
    word), rather than ec_mcu_depthwise_pairs_s8 (two taps per word)?"""
    return node.params.depth_multiplier == 1 and node.params.weights.shape[2] >= 4


def _pack_depthwise_groups(weights: np.ndarray) -> np.ndarray:
    """[kh, kw, C] -> [group][kh * kw][4] for groups of four channels starting at 0, 4,
    ... and, if C is not a multiple of 4, C - 4 (ec_mcu_depthwise_conv2d_s8's order)."""
    kh, kw, c = weights.shape
    starts = list(range(0, c - 3, 4)) + ([c - 4] if c % 4 else [])
    taps = weights.reshape(kh * kw, c)
    return np.stack([taps[:, s:s + 4] for s in starts])


def _pack_depthwise_pairs(weights: np.ndarray, in_channels: int) -> np.ndarray:
    """[kh, kw, C * M] -> ec_mcu_depthwise_pairs_s8's order: per input channel, per group
    of 4 (then 2, then 1) output channels, per pair of taps t, t + 1 (padded with a zero
    tap to an even count), the words {w[t][m], w[t][m+1], w[t+1][m], w[t+1][m+1]} for
    each m of the group in steps of 2 (a group of one has zeros for m + 1)."""
    kh, kw, cout = weights.shape
    mult, taps = cout // in_channels, kh * kw
    w = weights.reshape(taps, in_channels, mult).transpose(1, 0, 2)          # [c][t][m]
    w = np.concatenate([w, np.zeros((in_channels, taps % 2, mult), w.dtype)], axis=1)
    pairs = w.shape[1] // 2
    groups, m = [], 0
    for size in [4] * (mult // 4) + [2] * (mult % 4 // 2) + [1] * (mult % 2):
        g = w[:, :, m:m + size]
        if size == 1:
            g = np.concatenate([g, np.zeros_like(g)], axis=2)
        width = g.shape[2]   # [c][pair][tap of the pair][m pair][m of the pair]
        g = g.reshape(in_channels, pairs, 2, width // 2, 2).transpose(0, 1, 3, 2, 4)
        groups.append(g.reshape(in_channels, -1))
        m += size
    return np.concatenate(groups, axis=1)


def _narrow_fc(node: QNode) -> bool:
    """Does the FC take ec_mcu_fully_connected_narrow_s8 (at most 3 outputs, weights
    stored sign-extended: twice their bytes, a few KB at most)?"""
    if node.op != "FULLY_CONNECTED":
        return False
    out_f, in_f = node.params.weights.shape
    return out_f <= 3 and in_f % 4 == 0


def _pack_narrow_fc(weights: np.ndarray) -> np.ndarray:
    """[out, in] -> int32 words of two int16 halves (low first), per pair of outputs
    (o, o + 1; zeros for a missing o + 1), per 4 inputs i: {w[o][i], w[o][i+2]},
    {w[o][i+1], w[o][i+3]}, then the same for o + 1 (ec_mcu_fully_connected_narrow_s8)."""
    out_f, in_f = weights.shape
    w = np.zeros((out_f + out_f % 2, in_f), np.int64)
    w[:out_f] = weights
    w = w.reshape(-1, 2, in_f // 4, 2, 2)      # [pair][o of the pair][i // 4][i // 2 % 2][i % 2]
    w = w.transpose(0, 2, 1, 4, 3)             # [pair][i // 4][o][i % 2: word][i // 2 % 2: half]
    halves = w & 0xFFFF
    words = halves[..., 0] | (halves[..., 1] << 16)
    return words.astype(np.uint32).view(np.int32).reshape(-1)


def _mcu_weights(node: QNode, in_channels: int) -> tuple[str, np.ndarray]:
    """(C type, values) of a fast layer's weights, in the order its kernel reads them."""
    p = node.params
    if node.op == "DEPTHWISE_CONV_2D" and _depthwise_grouped(node):
        return "int8_t", _pack_depthwise_groups(p.weights)
    if node.op == "DEPTHWISE_CONV_2D":
        return "int8_t", _pack_depthwise_pairs(p.weights, in_channels)
    if _narrow_fc(node):
        return "int32_t", _pack_narrow_fc(p.weights)
    return "int8_t", p.weights


def _gemm_variant(node: QNode) -> str:
    """The ec_mcu_gemm_* function of a conv or FC layer (runtime/ec_runtime.h): chosen
    here, so that only the variants the model uses are linked."""
    p = node.params
    if node.op == "DEPTHWISE_CONV_2D" or _narrow_fc(node):
        return "NULL"
    if (p.activation_min, p.activation_max) != (-128, 127):
        return "ec_mcu_gemm_clamp_s8"
    if node.op == "FULLY_CONNECTED":
        eight = p.weights.shape[1] == 8
    else:
        _, kh, kw, cin = p.weights.shape
        eight = kh == 1 and kw * cin == 8
    return "ec_mcu_gemm_depth8_s8" if eight else "ec_mcu_gemm_s8"


def _add_input_stage(multiplier: int, shift: int, left_shift: int):
    """(left, shift1) of ec_mcu_add_params for one input, None if the fast ADD cannot
    reproduce its scaling (runtime/ec_runtime.h)."""
    if shift <= -1:
        return left_shift + 1, -shift - 1
    if shift == 0 and multiplier == 2**30:
        return left_shift + 2, 0
    return None


def _fast_add(q: QGraph, node: QNode) -> bool:
    p = node.params
    shapes = [tuple(q.tensors[t].shape) for t in node.inputs]
    if p.input2_constant is not None:
        shapes.append(tuple(p.input2_constant.shape))
    out = tuple(q.tensors[node.outputs[0]].shape)
    return (p.rounding == "double" and all(s == out for s in shapes) and len(shapes) == 2
            and 1 <= p.left_shift <= 20 and p.output_shift <= -1 and p.output_multiplier >= 0
            and _add_input_stage(p.input1_multiplier, p.input1_shift, p.left_shift) is not None
            and _add_input_stage(p.input2_multiplier, p.input2_shift, p.left_shift) is not None)


def _plan_with_fast_kernels(q: QGraph):
    """The nodes that get a fast kernel, and the memory plan with their scratch buffers.
    A scratch buffer that would make the arena larger than the plan without any is
    dropped: its conv then reads its windows in place."""
    base = plan_memory(q)
    fast = {}
    scratch = {}
    for step, node in enumerate(q.nodes):
        size = _fast_kernel(q, node)
        if size is not None:
            fast[node.index] = step
            if size:
                scratch[step] = size
    plan = plan_memory(q, scratch)
    while plan.arena_size > base.arena_size and scratch:
        # drop the buffer whose removal shrinks the arena most (ties: the largest)
        trials = {s: plan_memory(q, {k: v for k, v in scratch.items() if k != s})
                  for s in scratch}
        step = min(trials, key=lambda s: (trials[s].arena_size, -scratch[s]))
        del scratch[step]
        plan = trials[step]
    return {index: scratch.get(step, 0) for index, step in fast.items()}, plan


def _a64_kernel(q: QGraph, node: QNode) -> int | None:
    """Scratch bytes of the node's AArch64 kernel (runtime/ec_a64_s8.c), None if it has none:
    conv, FC and depthwise with depth multiplier 1, double rounding (the output stage the
    NEON kernels do in registers). Scratch: the input padded with its zero point when windows
    leave it, then 8 im2col rows for a convolution that neither reads its windows in place
    nor is 1x1 stride 1."""
    p = node.params
    if node.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or \
            p.requant.rounding != "double":
        return None
    if node.op == "FULLY_CONNECTED":
        return 0
    if node.op == "DEPTHWISE_CONV_2D" and p.depth_multiplier != 1:
        return None
    padded = conv_geometry(q, node)["padded_bytes"]
    if node.op == "CONV_2D" and _a64_windows(q, node) == "EC_A64_IM2COL":
        return padded + EC_GEMM_MAX_PIXELS * round_up(p.weights[0].size, 4)
    return padded


EC_GEMM_MAX_PIXELS = 8   # runtime/ec_gemm_s8.h: output pixels per GEMM call


def _a64_windows(q: QGraph, node: QNode) -> str:
    """How ec_a64_conv2d_s8 finds a convolution's windows (ec_runtime.h)."""
    p = node.params
    if windows_in_place(node):
        return "EC_A64_IN_PLACE"
    pointwise = (p.weights.shape[1:3] == (1, 1) and tuple(p.stride) == (1, 1)
                 and conv_geometry(q, node)["padded_bytes"] == 0)
    return "EC_A64_POINTWISE" if pointwise else "EC_A64_IM2COL"


def _plan_for_a64(q: QGraph, fast: dict[int, int]):
    """The nodes that run on AArch64's kernels (index -> scratch bytes) and the arena plan of
    the AArch64 build: their scratch, and the Cortex-M kernels' for the other fast nodes.
    (The kernels' reads past a tensor's end are covered by READ_SLACK bytes more arena.)"""
    a64 = {}
    scratch = {}
    for step, node in enumerate(q.nodes):
        size = _a64_kernel(q, node)
        if size is not None:
            a64[node.index] = size
        else:
            size = fast.get(node.index, 0)
        if size:
            scratch[step] = size
    return a64, plan_memory(q, scratch)


def _check_budgets(q: QGraph, plan, writer: "_Writer", max_arena, max_flash) -> None:
    if max_arena is not None and plan.arena_size > max_arena:
        node, need = max(((n, sum(tensor_bytes(q, t) for t in n.inputs + n.outputs))
                          for n in q.nodes), key=lambda item: item[1])
        raise ArenaTooSmallError(
            f"the model needs a {plan.arena_size}-byte arena (lower bound {plan.lower_bound}), "
            f"more than --max-arena {max_arena}; the largest layer is {node.describe()} with "
            f"{need} bytes of input and output", "export")
    if max_flash is not None and writer.constant_bytes > max_flash:
        index, op, size = max(writer.constant_bytes_by_node, key=lambda item: item[2])
        raise ArenaTooSmallError(
            f"the model's constants take {writer.constant_bytes} bytes of flash, more than "
            f"--max-flash {max_flash}; the largest layer is operator {index} ({op}) with "
            f"{size} bytes", "export")


def _c_array(ctype: str, name: str, values) -> str:
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        items = [f"{float(v)!r}f" for v in flat.astype(np.float32)]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + 24]) for i in range(0, len(items), 24)]
    body = ",\n    ".join(lines) if lines else "0"
    return f"static const {ctype} {name}[{max(len(items), 1)}] = {{\n    {body}\n}};\n"


def _shape4(shape) -> list[int]:
    shape = list(shape)
    return [1] * (4 - len(shape)) + shape


def _strides(shape4, out4) -> list[int]:
    strides = [0] * 4
    step = 1
    for d in (3, 2, 1, 0):
        strides[d] = 0 if (shape4[d] == 1 and out4[d] != 1) else step
        step *= shape4[d]
    return strides


def _ints(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


class _Writer:
    def __init__(self, q: QGraph, prefix: str, folded: set[int],
                 fast: dict[int, int] | None = None, a64: set[int] | None = None):
        self.q = q
        self.prefix = prefix
        self.folded = folded          # operator indices of TRANSPOSEs done by the input copy
        self.input_copy = ""          # their call, which replaces the input's memcpy
        self.fast = fast or {}        # node index -> scratch bytes of its fast kernel
        self.a64 = a64 or set()       # node indices on AArch64's kernels (this writer's target)
        self.node_definitions: dict[int, list[str]] = {}
        self.definitions: list[str] = []
        self.calls: list[str] = []
        self.constant_bytes = 0
        self.constant_bytes_by_node: list[tuple[int, str, int]] = []

    def array(self, ctype: str, name: str, values) -> str:
        values = np.asarray(values)
        self.constant_bytes += values.nbytes
        self._node_bytes += values.nbytes
        full = f"{self.prefix}_{name}"
        self.definitions.append(_c_array(ctype, full, values))
        return full

    def tensor(self, t: int, plan, const: bool) -> str:
        ctype = C_TYPES.get(self.q.tensors[t].dtype, "int8_t")
        qualifier = "const " if const else ""
        return f"({qualifier}{ctype} *)(void *)(arena + {plan.offset(t)})"

    def node(self, node: QNode, plan) -> None:
        first = len(self.definitions)
        self.layer(node, plan)
        self.node_definitions[node.index] = self.definitions[first:]

    def layer(self, node: QNode, plan) -> None:
        self._node_bytes = 0
        name = f"op{node.index}"
        p = node.params
        q = self.q
        x = q.tensors[node.inputs[0]] if node.inputs else None
        y = q.tensors[node.outputs[0]]
        params = f"{self.prefix}_{name}_params"
        call = None
        if node.index in self.a64:
            call = self.a64_node(node, plan, name, params)
        elif node.index in self.fast:
            call = self.mcu_node(node, plan, name, params)
        elif node.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = node.op == "DEPTHWISE_CONV_2D"
            kh, kw = p.weights.shape[0:2] if depthwise else p.weights.shape[1:3]
            cout = y.shape[3]
            w = self.array("int8_t", f"{name}_weights", p.weights)
            b = self.array("int32_t", f"{name}_bias", p.bias)
            per_output = np.moveaxis(p.weights, 2, 0) if depthwise else p.weights
            fb = self.array("int32_t", f"{name}_folded_bias",
                            folded_bias(p.bias, per_output, p.input_zero_point))
            m = self.array("int32_t", f"{name}_multiplier", np.broadcast_to(p.requant.multiplier, (cout,)))
            s = self.array("int32_t", f"{name}_shift", np.broadcast_to(p.requant.shift, (cout,)))
            fields = [*x.shape, y.shape[1], y.shape[2], cout, kh, kw, *p.stride, *p.dilation,
                      *p.padding, p.depth_multiplier if depthwise else 1, p.input_zero_point,
                      p.output_zero_point, p.activation_min, p.activation_max]
            self.definitions.append(
                f"static const ec_conv_params {params} = {{{', '.join(map(str, fields))}, "
                f"{w}, {b}, {fb}, {{{m}, {s}, {ROUNDING[p.requant.rounding]}}}}};\n")
            fn = "ec_depthwise_conv2d_s8" if depthwise else "ec_conv2d_s8"
            call = f"{fn}(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            fields = [*x.shape, y.shape[1], y.shape[2], *p.filter_size, *p.stride, *p.padding,
                      p.activation_min, p.activation_max]
            self.definitions.append(f"static const ec_pool_params {params} = {_ints(fields)};\n")
            fn = "ec_max_pool2d_s8" if node.op == "MAX_POOL_2D" else "ec_average_pool2d_s8"
            call = f"{fn}(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op == "FULLY_CONNECTED":
            out_f, in_f = p.weights.shape
            rows = int(np.prod(x.shape)) // in_f
            w = self.array("int8_t", f"{name}_weights", p.weights)
            b = self.array("int32_t", f"{name}_folded_bias",
                           folded_bias(p.bias, p.weights, p.input_zero_point))
            m = self.array("int32_t", f"{name}_multiplier", np.broadcast_to(p.requant.multiplier, (out_f,)))
            s = self.array("int32_t", f"{name}_shift", np.broadcast_to(p.requant.shift, (out_f,)))
            fields = [rows, in_f, out_f, p.input_zero_point, p.output_zero_point,
                      p.activation_min, p.activation_max]
            self.definitions.append(
                f"static const ec_fully_connected_params {params} = {{{', '.join(map(str, fields))}, "
                f"{w}, {b}, {{{m}, {s}, {ROUNDING[p.requant.rounding]}}}}};\n")
            call = f"ec_fully_connected_s8(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op == "ADD":
            out4 = _shape4(y.shape)
            a4 = _shape4(x.shape)
            if p.input2_constant is not None:
                b_shape = p.input2_constant.shape
                constant = self.array("int8_t", f"{name}_constant", p.input2_constant)
                b_arg = "NULL"
            else:
                b_t = q.tensors[node.inputs[1]]
                b_shape, constant = b_t.shape, "NULL"
                b_arg = self.tensor(b_t.index, plan, True)
            fields = [_ints(out4), _ints(_strides(a4, out4)), _ints(_strides(_shape4(b_shape), out4)),
                      p.input1_zero_point, p.input2_zero_point, p.output_zero_point, p.left_shift,
                      p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift,
                      p.output_multiplier, p.output_shift, p.activation_min, p.activation_max,
                      ROUNDING[p.rounding], constant]
            self.definitions.append(f"static const ec_add_params {params} = {{{', '.join(map(str, fields))}}};\n")
            call = f"ec_add_s8(&{params}, {self.tensor(x.index, plan, True)}, {b_arg}, {self.tensor(y.index, plan, False)});"
        elif node.op == "MEAN":
            rank = len(x.shape)
            reduced = [0] * (4 - rank) + [1 if d in p.axes else 0 for d in range(rank)]
            fields = [_ints(_shape4(x.shape)), _ints(reduced), p.count, p.input_zero_point,
                      p.output_zero_point, p.multiplier, p.shift]
            self.definitions.append(f"static const ec_mean_params {params} = {{{', '.join(map(str, fields))}}};\n")
            call = f"ec_mean_s8(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op == "SOFTMAX":
            depth = x.shape[-1]
            fields = [int(np.prod(x.shape)) // depth, depth, p.diff_min, p.output_zero_point]
            if p.exp_lut16 is None:
                exp_q0, exp_acc = softmax_exp_tables(p)
                fields += [self.array("int32_t", f"{name}_exp_q0", exp_q0),
                           self.array("int32_t", f"{name}_exp_acc", exp_acc), "NULL", "0.0f"]
            else:  # LiteRT's aarch64 variant (profile xnnpack-aarch64)
                table = self.array("uint16_t", f"{name}_exp_lut16", p.exp_lut16.astype(np.uint16))
                fields += ["NULL", "NULL", table, f"{float(np.float32(p.output_scale))!r}f"]
            self.definitions.append(f"static const ec_softmax_params {params} = {{{', '.join(map(str, fields))}}};\n")
            call = f"ec_softmax_s8(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op in ("LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1") or (
                node.op == "QUANTIZE" and x.dtype != "float32"):
            table, flip = elementwise_table(node, x.dtype)
            t = self.array("uint8_t", f"{name}_table", table)
            self.definitions.append(f"static const ec_lut_params {params} = "
                                    f"{{{int(np.prod(x.shape))}, {flip}, {t}}};\n")
            call = (f"ec_lut_u8(&{params}, (const uint8_t *)(arena + {plan.offset(x.index)}), "
                    f"(uint8_t *)(arena + {plan.offset(y.index)}));")
        elif node.op == "QUANTIZE":
            info = np.iinfo(p.output_dtype)
            self.definitions.append(
                f"static const ec_quantize_params {params} = {{{int(np.prod(x.shape))}, "
                f"{p.output_zero_point}, {info.min}, {info.max}, {float(np.float32(p.scale))!r}f}};\n")
            call = (f"if (ec_quantize_f32(&{params}, {self.tensor(x.index, plan, True)}, "
                    f"(uint8_t *)(arena + {plan.offset(y.index)}), "
                    f"{int(p.output_dtype == 'uint8')}) != EC_OK) {{\n"
                    f"        return EC_ERROR_NAN_INPUT;\n    }}")
        elif node.op == "DEQUANTIZE":
            self.definitions.append(
                f"static const ec_dequantize_params {params} = {{{int(np.prod(x.shape))}, "
                f"{p.zero_point}, {float(np.float32(p.scale))!r}f}};\n")
            call = (f"ec_dequantize_f32(&{params}, (const uint8_t *)(arena + {plan.offset(x.index)}), "
                    f"{int(x.dtype == 'uint8')}, {self.tensor(y.index, plan, False)});")
        elif node.op in ("PAD", "PADV2"):
            rank = len(x.shape)
            before = [0] * (4 - rank) + [a for a, _ in p.paddings]
            fields = [_ints(_shape4(x.shape)), _ints(before), _ints(_shape4(y.shape)), p.pad_value]
            self.definitions.append(f"static const ec_pad_params {params} = {{{', '.join(map(str, fields))}}};\n")
            call = f"ec_pad_s8(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op in ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"):
            pairs = p.paddings if node.op == "SPACE_TO_BATCH_ND" else p.crops
            pad_value = getattr(p, "pad_value", 0)
            fields = [_ints(x.shape), _ints(y.shape), _ints(p.block_shape),
                      _ints([a for a, _ in pairs]), pad_value]
            self.definitions.append(f"static const ec_space_batch_params {params} = {{{', '.join(map(str, fields))}}};\n")
            fn = "ec_space_to_batch_s8" if node.op == "SPACE_TO_BATCH_ND" else "ec_batch_to_space_s8"
            call = f"{fn}(&{params}, {self.tensor(x.index, plan, True)}, {self.tensor(y.index, plan, False)});"
        elif node.op == "CONCATENATION":
            axis = p.axis
            outer = int(np.prod(y.shape[:axis]))
            inner_out = int(np.prod(y.shape[axis:]))
            offset = 0
            calls = []
            for k, t in enumerate(node.inputs):
                shape = q.tensors[t].shape
                inner_in = int(np.prod(shape[axis:]))
                part = f"{params}{k}"
                self.definitions.append(f"static const ec_concat_part_params {part} = "
                                        f"{_ints([outer, inner_in, inner_out, offset])};\n")
                calls.append(f"ec_concat_part(&{part}, (const uint8_t *)(arena + {plan.offset(t)}), "
                             f"(uint8_t *)(arena + {plan.offset(y.index)}));")
                offset += inner_in
            call = "\n    ".join(calls)
        elif node.op == "TRANSPOSE":
            out_shape, in_strides = layout.transpose_walk(x.shape, p.perm)
            pad = [0] * (6 - len(out_shape))
            fields = [len(out_shape), np.dtype(x.dtype).itemsize, _ints([*out_shape, *pad]),
                      _ints([*in_strides, *pad])]
            self.definitions.append(f"static const ec_transpose_params {params} = "
                                    f"{{{', '.join(map(str, fields))}}};\n")
            if node.index in self.folded:
                call = "/* TRANSPOSE: done while copying the input in (above) */"
                self.input_copy = f"ec_transpose(&{params}, input, arena + {plan.offset(y.index)});"
            else:
                call = (f"ec_transpose(&{params}, arena + {plan.offset(x.index)}, "
                        f"arena + {plan.offset(y.index)});")
        elif node.op in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
            if plan.offset(x.index) != plan.offset(y.index):
                call = (f"memmove(arena + {plan.offset(y.index)}, arena + {plan.offset(x.index)}, "
                        f"{tensor_bytes(q, x.index)});")
            else:
                call = f"/* {node.op}: output aliases the input, nothing to do */"
        if call is None:
            raise EdgecnnError(f"no C emitter for {node.op}", node.describe())
        self.calls.append(f"    /* {node.describe()} */\n    {call}\n    EC_LAYER_DONE();")
        self.constant_bytes_by_node.append((node.index, node.op, self._node_bytes))

    def mcu_node(self, node: QNode, plan, name: str, params: str) -> str:
        """A layer on a fast kernel of runtime/ec_mcu_s8.c: conv, depthwise or FC."""
        p, q = node.params, self.q
        x, y = q.tensors[node.inputs[0]], q.tensors[node.outputs[0]]
        src, dst = self.tensor(x.index, plan, True), self.tensor(y.index, plan, False)
        if node.op == "AVERAGE_POOL_2D":
            fields = [*x.shape, y.shape[1], y.shape[2], *p.filter_size, *p.stride, *p.padding,
                      p.activation_min, p.activation_max]
            self.definitions.append(f"static const ec_pool_params {params} = {_ints(fields)};\n")
            return f"ec_mcu_average_pool2d_s8(&{params}, {src}, {dst});"
        if node.op == "ADD":
            return self.mcu_add(node, plan, name, params, src, dst)
        cout = y.shape[-1]
        bias = "NULL"
        if node.op == "FULLY_CONNECTED":
            out_f, in_f = p.weights.shape
            per_output = p.weights
            geometry = [1, 1, 1, in_f, 1, 1, out_f, 1, 1, 1, 1, 1, 1, 0, 0]
        else:
            depthwise = node.op == "DEPTHWISE_CONV_2D"
            kh, kw = p.weights.shape[0:2] if depthwise else p.weights.shape[1:3]
            per_output = np.moveaxis(p.weights, 2, 0) if depthwise else p.weights
            geometry = [*x.shape, y.shape[1], y.shape[2], cout, kh, kw, *p.stride, *p.dilation,
                        *p.padding]
            if depthwise and _depthwise_grouped(node):   # border outputs start from the raw bias
                bias = self.array("int32_t", f"{name}_bias", p.bias)
        padding_row = "NULL"
        folded = folded_bias(p.bias, per_output, p.input_zero_point)
        if node.op == "DEPTHWISE_CONV_2D" and not _depthwise_grouped(node):
            # taps outside the image read the zero point
            padding_row = self.array("int8_t", f"{name}_padding_row",
                                     np.full(x.shape[-1], p.input_zero_point, np.int8))
        elif node.op != "DEPTHWISE_CONV_2D":  # the GEMM's output stage takes 2 * accumulator
            folded = (2 * folded.astype(np.int64)).astype(np.int32)
            if node.op == "CONV_2D" and not self.fast[node.index] and (
                    p.weights.shape[1:3] != (1, 1) or tuple(p.padding) != (0, 0)):
                bias = self.array("int32_t", f"{name}_bias", p.bias)   # border pixels
        ctype, packed = _mcu_weights(node, x.shape[-1])
        w = self.array(ctype, f"{name}_weights", packed)
        if ctype != "int8_t":   # aligned words, read as such by the kernel
            w = f"(const int8_t *){w}"
        fb = self.array("int32_t", f"{name}_folded_bias", folded)
        requant = np.stack([np.broadcast_to(p.requant.multiplier, (cout,)),
                            np.broadcast_to(-np.asarray(p.requant.shift) - 1, (cout,))], axis=1)
        rq = self.array("int32_t", f"{name}_requant", requant)
        fields = [*geometry, p.input_zero_point, w, bias, fb,
                  f"{{{rq}, {2 * p.output_zero_point + 1}, {p.activation_min}, "
                  f"{p.activation_max}}}", _gemm_variant(node), padding_row]
        self.definitions.append(f"static const ec_mcu_conv_params {params} = "
                                f"{{{', '.join(map(str, fields))}}};\n")
        if node.op == "FULLY_CONNECTED":
            rows = int(np.prod(x.shape)) // p.weights.shape[1]
            fn = "ec_mcu_fully_connected_narrow_s8" if _narrow_fc(node) else "ec_mcu_fully_connected_s8"
            return f"{fn}(&{params}, {rows}, {src}, {dst});"
        if node.op == "DEPTHWISE_CONV_2D":
            fn = "conv2d" if _depthwise_grouped(node) else "pairs"
            return f"ec_mcu_depthwise_{fn}_s8(&{params}, {src}, {dst});"
        step = next(k for k, n in enumerate(q.nodes) if n is node)
        scratch = (f"(int8_t *)(void *)(arena + {plan.scratch_offsets[step]})"
                   if self.fast[node.index] else "NULL")
        return f"ec_mcu_conv2d_s8(&{params}, {src}, {dst}, {scratch});"

    def a64_node(self, node: QNode, plan, name: str, params: str) -> str:
        """A layer on AArch64's kernels (runtime/ec_a64_s8.c): the core's packed weights
        (edgecnn/packed_gemm.py), per-lane folded bias and output stage, the window kind."""
        p, q = node.params, self.q
        x, y = q.tensors[node.inputs[0]], q.tensors[node.outputs[0]]
        cout = y.shape[-1]
        taps = "NULL"
        if node.op == "FULLY_CONNECTED":
            out_f, in_f = p.weights.shape
            rows = int(np.prod(x.shape)) // in_f
            geometry = [1, 1, rows, in_f, 1, rows, out_f, 1, 1, 1, 1, 1, 1, 0, 0, 1, rows]
            windows, depth = "EC_A64_POINTWISE", round_up(in_f, 4)
            weights = packed_weights(fc_as_conv_weights(p.weights))
            per_output, lanes, per_vector = p.weights, round_up(cout, 16), 1
        else:
            depthwise = node.op == "DEPTHWISE_CONV_2D"
            kh, kw = p.weights.shape[0:2] if depthwise else p.weights.shape[1:3]
            cin = x.shape[3]
            g = conv_geometry(q, node)
            geometry = [*x.shape, y.shape[1], y.shape[2], cout, kh, kw, *p.stride, *p.dilation,
                        *p.padding, g["hp"], g["wp"]]
            offsets = tap_offsets(kh, kw, p.dilation, g["wp"], cin)
            if depthwise:
                per_vector, _, lanes = depthwise_lanes(cout, p.stride[1])
                weights = a64_depthwise_weights(p.weights, per_vector, lanes)
                per_output, windows, depth = np.moveaxis(p.weights, 2, 0), per_vector, lanes
            else:
                windows = _a64_windows(q, node)
                in_place = windows == "EC_A64_IN_PLACE"
                depth = round_up(cin if in_place else p.weights[0].size, 4)
                weights = packed_weights(p.weights, per_tap=in_place)
                per_output, lanes, per_vector = p.weights, round_up(cout, 16), 1
                if not in_place:
                    offsets = None
            if offsets is not None:
                taps = self.array("ptrdiff_t", f"{name}_taps", offsets)
        multiplier, _, _, left, right = requant_arrays(p.requant, cout)
        per_lane = [np.tile(a, per_vector) for a in
                    (folded_bias(p.bias, per_output, p.input_zero_point), multiplier, left, right)]
        names = ("folded_bias", "multiplier", "left", "right")
        arrays = [self.array("int32_t", f"{name}_{what}", a)
                  for what, a in zip(names, pad_channels(per_lane, lanes))]
        fields = [*geometry, p.input_zero_point, p.output_zero_point, p.activation_min,
                  p.activation_max, windows, depth, int(a64_pairs(p.weights)),
                  self.array("int8_t", f"{name}_weights", weights), *arrays, taps]
        self.definitions.append(f"static const ec_a64_conv_params {params} = "
                                f"{{{', '.join(map(str, fields))}}};\n")
        step = next(k for k, n in enumerate(q.nodes) if n is node)
        scratch = (f"(int8_t *)(void *)(arena + {plan.scratch_offsets[step]})"
                   if step in plan.scratch_offsets else "NULL")
        src, dst = self.tensor(x.index, plan, True), self.tensor(y.index, plan, False)
        fn = "ec_a64_depthwise_conv2d_s8" if node.op == "DEPTHWISE_CONV_2D" else "ec_a64_conv2d_s8"
        return f"{fn}(&{params}, {src}, {dst}, {scratch});"

    def mcu_add(self, node: QNode, plan, name: str, params: str, src: str, dst: str) -> str:
        p = node.params
        left1, shift1 = _add_input_stage(p.input1_multiplier, p.input1_shift, p.left_shift)
        left2, shift2 = _add_input_stage(p.input2_multiplier, p.input2_shift, p.left_shift)
        if p.input2_constant is not None:
            constant = self.array("int8_t", f"{name}_constant", p.input2_constant)
            b_arg = "NULL"
        else:
            constant = "NULL"
            b_arg = self.tensor(node.inputs[1], plan, True)
        fields = [int(np.prod(self.q.tensors[node.outputs[0]].shape)),
                  p.input1_zero_point, left1, p.input1_multiplier, shift1,
                  p.input2_zero_point, left2, p.input2_multiplier, shift2,
                  p.output_multiplier, -p.output_shift - 1, 2 * p.output_zero_point + 1,
                  p.activation_min, p.activation_max, constant]
        self.definitions.append(f"static const ec_mcu_add_params {params} = "
                                f"{{{', '.join(map(str, fields))}}};\n")
        return f"ec_mcu_add_s8(&{params}, {src}, {b_arg}, {dst});"

    def header(self, plan, plan64=None) -> str:
        q, P, U = self.q, self.prefix, self.prefix.upper()
        x, y = q.tensors[q.inputs[0]], q.tensors[q.outputs[0]]
        arena = f"#define {U}_ARENA_SIZE {max(plan.arena_size, 1)}u"
        if plan64 is not None:
            arena = (f"#if {A64_CONDITION}  /* AArch64's kernels: their scratch, and the "
                     f"{READ_SLACK} bytes their vector loads may read past the end */\n"
                     f"#define {U}_ARENA_SIZE {plan64.arena_size + READ_SLACK}u\n#else\n"
                     f"{arena}\n#endif")
        return f"""#ifndef {U}_MODEL_H
#define {U}_MODEL_H

#include <stddef.h>
#include <stdint.h>

{arena}
#define {U}_INPUT_SIZE {int(np.prod(x.shape))}u   /* elements of {C_TYPES[x.dtype]}, shape {list(x.shape)} */
#define {U}_OUTPUT_SIZE {int(np.prod(y.shape))}u  /* elements of {C_TYPES[y.dtype]}, shape {list(y.shape)} */
#define {U}_INPUT_SCALE {float(np.float32(x.scale))!r}f
#define {U}_INPUT_ZERO_POINT {x.zero_point}
#define {U}_OUTPUT_SCALE {float(np.float32(y.scale))!r}f
#define {U}_OUTPUT_ZERO_POINT {y.zero_point}

/* Bytes of working memory the model needs (activations, planned offline). */
size_t {P}_arena_size(void);

/* One inference using the built-in static arena. Returns 0 (EC_OK) or an ec_status
 * (EC_ERROR_NAN_INPUT (3) when a float input holds a NaN). */
int {P}_invoke(const {C_TYPES[x.dtype]} *input, {C_TYPES[y.dtype]} *output);

/* The same with a caller-provided arena of at least {P}_arena_size() bytes,
 * aligned to 8 bytes; returns EC_ERROR_ARENA_TOO_SMALL (2) if it is smaller. */
int {P}_invoke_with_arena(uint8_t *arena, size_t arena_size,
                          const {C_TYPES[x.dtype]} *input, {C_TYPES[y.dtype]} *output);

#endif
"""

    def body(self, plan) -> str:
        """The layers' calls between copying the input in and the output out."""
        q = self.q
        x, y = q.tensors[q.inputs[0]], q.tensors[q.outputs[0]]
        copy_in = self.input_copy or (f"memcpy(arena + {plan.offset(x.index)}, input, "
                                      f"{tensor_bytes(q, x.index)});")
        calls = "\n".join(self.calls)
        return (f"    {copy_in}\n{calls}\n"
                f"    memcpy(output, arena + {plan.offset(y.index)}, {tensor_bytes(q, y.index)});")

    def constants(self, other: "_Writer | None") -> str:
        """The layers' constants; with `other` (the AArch64 writer) each layer whose records
        differ gets both, chosen by EC_A64, so every build holds one copy of its weights."""
        if other is None:
            return "".join(self.definitions)
        parts = []
        for node in self.q.nodes:
            mine, theirs = self.node_definitions[node.index], other.node_definitions[node.index]
            if mine == theirs:
                parts += mine
            else:
                parts += ["#if EC_A64\n", *theirs, "#else\n", *mine, "#endif\n"]
        return "".join(parts)

    def source(self, plan, other: "_Writer | None" = None, plan64=None) -> str:
        q, P, U = self.q, self.prefix, self.prefix.upper()
        x, y = q.tensors[q.inputs[0]], q.tensors[q.outputs[0]]
        body = self.body(plan)
        if other is not None:
            body = f"#if EC_A64\n{other.body(plan64)}\n#else\n{body}\n#endif"
        return f"""#include <string.h>

#include "{P}_model.h"
#include "ec_runtime.h"

#if defined(EC_BENCH_LAYERS) /* per-layer instruction counts (benchmarks/bench_mcu.py) */
void ec_bench_layer(void);
#define EC_LAYER_DONE() ec_bench_layer()
#else
#define EC_LAYER_DONE() ((void)0)
#endif

/* ---- constants (flash) ---- */
{self.constants(other)}
/* ---- the arena: activations at offsets planned offline (lower bound {plan.lower_bound} bytes) ---- */
static union {{
    double align;
    uint8_t bytes[{U}_ARENA_SIZE];
}} {P}_arena;

size_t {P}_arena_size(void)
{{
    return {U}_ARENA_SIZE;
}}

int {P}_invoke_with_arena(uint8_t *arena, size_t arena_size,
                          const {C_TYPES[x.dtype]} *input, {C_TYPES[y.dtype]} *output)
{{
    if (arena == NULL || input == NULL || output == NULL) {{
        return EC_ERROR_NULL;
    }}
    if (arena_size < {U}_ARENA_SIZE) {{
        return EC_ERROR_ARENA_TOO_SMALL;
    }}
{body}
    return EC_OK;
}}

int {P}_invoke(const {C_TYPES[x.dtype]} *input, {C_TYPES[y.dtype]} *output)
{{
    return {P}_invoke_with_arena({P}_arena.bytes, sizeof {P}_arena.bytes, input, output);
}}
"""
