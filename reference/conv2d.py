"""CONV_2D, int8 (tensorflow/lite/kernels/internal/reference/integer_ops/conv.h).

For every output pixel and output channel c:
    acc = bias[c] + sum over taps and input channels of w * (x - input_zero_point)
    out = clamp(requantize(acc, multiplier[c], shift[c]) + output_zero_point)
Taps that fall outside the image are skipped. Skipping a tap is the same as
reading a padded value equal to input_zero_point (it contributes 0), which is
how this vectorized version pads.
"""

from __future__ import annotations

import numpy as np

from .quant import clamp_to_output, requantize


def padded_centered_input(x: np.ndarray, zero_point: int, padding, kernel_extent, stride,
                          out_hw) -> np.ndarray:
    """x - zero_point as float64, padded with zeros so every tap of every output is in range.

    float64 holds these integers exactly: products are below 2^15 and an
    accumulator of up to 2^16 products stays far below 2^53, so a float64
    matrix product (BLAS) computes the int32 accumulator exactly, whatever the
    summation order.
    """
    n, h, w, c = x.shape
    pad_top, pad_left = padding
    need_h = (out_hw[0] - 1) * stride[0] + kernel_extent[0]
    need_w = (out_hw[1] - 1) * stride[1] + kernel_extent[1]
    pad_bottom = max(need_h - h - pad_top, 0)
    pad_right = max(need_w - w - pad_left, 0)
    centered = x.astype(np.float64) - zero_point
    return np.pad(centered, ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right), (0, 0)))


def tap_view(padded: np.ndarray, ky: int, kx: int, dilation, stride, out_hw) -> np.ndarray:
    """The input values tap (ky, kx) sees at every output pixel: [N, OH, OW, C]."""
    y0 = ky * dilation[0]
    x0 = kx * dilation[1]
    return padded[:, y0:y0 + (out_hw[0] - 1) * stride[0] + 1:stride[0],
                  x0:x0 + (out_hw[1] - 1) * stride[1] + 1:stride[1], :]


def conv2d(x: np.ndarray, p, output_shape) -> np.ndarray:
    """x: int8 [N, H, W, Cin]; p: Conv2DParams; returns int8 [N, OH, OW, Cout]."""
    out_c, kh, kw, _ = p.weights.shape
    out_hw = tuple(output_shape[1:3])
    extent = ((kh - 1) * p.dilation[0] + 1, (kw - 1) * p.dilation[1] + 1)
    padded = padded_centered_input(x, p.input_zero_point, p.padding, extent, p.stride, out_hw)
    weights = p.weights.astype(np.float64)
    acc = np.zeros((x.shape[0],) + out_hw + (out_c,), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            acc += tap_view(padded, ky, kx, p.dilation, p.stride, out_hw) @ weights[:, ky, kx, :].T
    acc = acc.astype(np.int64) + p.bias.astype(np.int64)
    out = requantize(acc, p.requant)
    return clamp_to_output(out, p.output_zero_point, p.activation_min, p.activation_max)
