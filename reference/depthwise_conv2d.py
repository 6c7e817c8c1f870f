"""DEPTHWISE_CONV_2D, int8 (reference/integer_ops/depthwise_conv.h).

Each input channel ic is filtered on its own by depth_multiplier filters;
output channel oc = ic * depth_multiplier + m. Weights are [1, KH, KW, OC].
Same accumulate / requantize / clamp steps as conv2d.
"""

from __future__ import annotations

import numpy as np

from .conv2d import padded_centered_input, tap_view
from .quant import clamp_to_output, requantize


def depthwise_conv2d(x: np.ndarray, p, output_shape) -> np.ndarray:
    """x: int8 [N, H, W, C]; p: DepthwiseConv2DParams; returns int8 [N, OH, OW, C*M]."""
    kh, kw, out_c = p.weights.shape
    out_hw = tuple(output_shape[1:3])
    extent = ((kh - 1) * p.dilation[0] + 1, (kw - 1) * p.dilation[1] + 1)
    padded = padded_centered_input(x, p.input_zero_point, p.padding, extent, p.stride, out_hw)
    # np.repeat puts channel ic at positions ic*M .. ic*M+M-1: the oc = ic*M + m layout.
    padded = np.repeat(padded, p.depth_multiplier, axis=3)
    weights = p.weights.astype(np.float64)
    acc = np.zeros((x.shape[0],) + out_hw + (out_c,), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            acc += tap_view(padded, ky, kx, p.dilation, p.stride, out_hw) * weights[ky, kx]
    acc = acc.astype(np.int64) + p.bias.astype(np.int64)
    out = requantize(acc, p.requant)
    return clamp_to_output(out, p.output_zero_point, p.activation_min, p.activation_max)
