"""The packed-weight GEMM's arrays, made once for its two users: the Cython core (x86 VNNI,
AArch64 NEON / SDOT; core_backend.py) and the C exported for AArch64 (firmware_export/emit.py),
which run the same kernels (firmware_export/runtime/ec_gemm_s8.h, ec_a64_neon.h).

Weights are packed [cout/16][depth/4][16][4]; per-channel arrays (folded bias, output stage)
are padded to cout rounded up to 16, because the kernels read whole vectors."""

from __future__ import annotations

import numpy as np

from .ir import QGraph, QNode
from .reference import quant

# Bytes the vector kernels may read past the end of a tensor (their products with
# zero weights vanish, or later copies overwrite them); the arena is allocated this much
# larger. _core_simd.h's copies move whole 64-byte vectors.
READ_SLACK = 64


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def packed_sizes(weights_shape) -> tuple[int, int]:
    """(output channels rounded up to 16, depth rounded up to 4) of the packed GEMM."""
    cout, kh, kw, cin = weights_shape
    return round_up(cout, 16), round_up(kh * kw * cin, 4)


def windows_in_place(node: QNode, row_taps: bool = False) -> bool:
    """Whether the packed GEMM reads windows in place (from the input, or its padded copy,
    tap by tap, 4 bytes at a time) rather than from an im2col block: when windows overlap or
    skip pixels, where an im2col block would copy more than the input. Each tap's depth is
    then rounded up to 4 with zero weights (the extra bytes read belong to the next pixel
    and vanish), so depths that would waste more than a quarter of the multiplications
    (1, 2, 5) keep im2col. A 1x1 stride-1 convolution's windows are the input pixels
    themselves (read where they are on AArch64, one flipped copy per block on x86).
    row_taps: a tap is a kernel row, kw * cin bytes deep (core_backend._arm_row_taps)."""
    if node.op != "CONV_2D":
        return False
    p = node.params
    cin = p.weights.shape[3]
    depth = p.weights.shape[2] * cin if row_taps else cin
    pointwise = p.weights.shape[1:3] == (1, 1) and tuple(p.stride) == (1, 1)
    return not pointwise and 3 * round_up(depth, 4) <= 4 * depth


def packed_weights(weights: np.ndarray, per_tap: bool = False,
                   row_taps: bool = False) -> np.ndarray:
    """Conv weights [cout, kh, kw, cin] as the packed GEMM reads them: [cout/16][depth/4][16][4]
    (16 output channels x 4 consecutive depths per 64-byte vector, zeros in the padding).
    per_tap: each tap's depth rounded up to 4 first (windows read in place); row_taps: a
    tap is a kernel row."""
    if row_taps:
        cout, kh, kw, cin = weights.shape
        weights = weights.reshape(cout, kh, 1, kw * cin)
    if per_tap:
        cin = weights.shape[3]
        weights = np.pad(weights, [(0, 0), (0, 0), (0, 0), (0, round_up(cin, 4) - cin)])
    cout = weights.shape[0]
    coutp, depth4 = packed_sizes(weights.shape)
    padded = np.zeros((coutp, depth4), np.int8)
    padded[:cout, :weights[0].size] = weights.reshape(cout, -1)
    return np.ascontiguousarray(padded.reshape(coutp // 16, 16, depth4 // 4, 4)
                                .transpose(0, 2, 1, 3))


def fc_as_conv_weights(weights: np.ndarray) -> np.ndarray:
    """FC weights [out, in] as 1x1 conv weights [out, 1, 1, in]: an FC is a pointwise
    convolution over a row of `rows` pixels, and runs on the same GEMM."""
    return weights.reshape(weights.shape[0], 1, 1, weights.shape[1])


def pad_channels(arrays: list, channels: int) -> list:
    """Per-channel arrays zero-padded to `channels` (vector kernels read whole vectors)."""
    padded = []
    for a in arrays:
        if a is not None:
            a = np.concatenate([a, np.zeros(channels - a.shape[0], a.dtype)])
        padded.append(a)
    return padded


def tap_offsets(kh: int, kw: int, dilation, wp: int, cin: int) -> np.ndarray:
    """Byte offsets of a window's taps from its top-left corner, in an input wp pixels
    wide (row-major taps, the order of the weights)."""
    return np.array([(ky * dilation[0] * wp + kx * dilation[1]) * cin
                     for ky in range(kh) for kx in range(kw)], np.intp)


def conv_geometry(qgraph: QGraph, node: QNode) -> dict:
    """The (zero-point) padded input a convolution reads its windows from: hp x wp pixels
    (the input itself, padded_bytes 0, when no window leaves it)."""
    p = node.params
    n, h, w, c = qgraph.tensors[node.inputs[0]].shape
    _, oh, ow, _ = qgraph.tensors[node.outputs[0]].shape
    if node.op == "CONV_2D":
        kh, kw = p.weights.shape[1:3]
    else:
        kh, kw = p.weights.shape[0:2]
    top, left = p.padding
    need_h = (oh - 1) * p.stride[0] + (kh - 1) * p.dilation[0] + 1
    need_w = (ow - 1) * p.stride[1] + (kw - 1) * p.dilation[1] + 1
    if top == 0 and left == 0 and need_h <= h and need_w <= w:
        return dict(hp=h, wp=w, padded_bytes=0)
    hp = max(need_h, h + top)
    wp = max(need_w, w + left)
    return dict(hp=hp, wp=wp, padded_bytes=n * hp * wp * c)


def folded_bias(bias: np.ndarray, weights_per_output: np.ndarray, input_zero_point: int):
    """bias - zp_in * sum(w): the zero-point correction done once, wrapped to int32."""
    sums = weights_per_output.reshape(weights_per_output.shape[0], -1).astype(np.int64).sum(axis=1)
    folded = bias.astype(np.int64) - input_zero_point * sums
    return quant.wrap_int32(folded).astype(np.int32)


def requant_arrays(requant, channels: int) -> list:
    """[multiplier, shift, real scale, left, right] per channel, the kernels' p[2] to p[6]:
    the real scale for the float roundings, left and right = max(shift, 0), max(-shift, 0)
    for double rounding's vector rows (None where the rounding does not use them)."""
    multiplier = np.ascontiguousarray(np.broadcast_to(requant.multiplier, (channels,)), np.int32)
    shift = np.ascontiguousarray(np.broadcast_to(requant.shift, (channels,)), np.int32)
    real = None
    if requant.rounding == "float":
        real = np.ascontiguousarray(np.broadcast_to(requant.real_scale, (channels,)), np.float64)
    elif requant.rounding == "float32":
        real = np.ascontiguousarray(np.broadcast_to(requant.real_scale, (channels,)), np.float32)
    if requant.rounding != "double":
        return [multiplier, shift, real, None, None]
    return [multiplier, shift, real, np.maximum(shift, 0).astype(np.int32),
            np.maximum(-shift, 0).astype(np.int32)]


def a64_pairs(weights: np.ndarray) -> bool:
    """ec_a64_neon.h's `pairs`: no weight is -128, so two int8 products always fit an int16
    sum (the NEON kernels then add them before widening)."""
    return not bool((weights == -128).any())


def depthwise_lanes(cout: int, stride_w: int, depth_multiplier: int = 1) -> tuple[int, int, int]:
    """(pixels per vector, lanes used, lanes rounded up to 16) of the vector depthwise
    kernels: 16 lanes hold 16 channels of a pixel; with stride 1, multiplier 1 and fewer
    channels than 16 dividing it, 16 / cout whole pixels, every per-channel array then
    repeated to match."""
    per_vector = 16 // cout if (stride_w == 1 and cout < 16 and 16 % cout == 0
                                and depth_multiplier == 1) else 1
    lanes = cout * per_vector
    return per_vector, lanes, round_up(lanes, 16)


def a64_depthwise_weights(weights: np.ndarray, per_vector: int, coutp: int) -> np.ndarray:
    """Depthwise weights [kh, kw, cout] as ec_a64_depthwise_row reads them: int8 [taps][coutp],
    repeated per_vector times along the lanes (depthwise_lanes), zeros in the padding."""
    kh, kw, cout = weights.shape
    by_tap = np.zeros((kh * kw, coutp), np.int8)
    by_tap[:, :cout * per_vector] = np.tile(weights, (1, 1, per_vector)).reshape(kh * kw, -1)
    return by_tap
