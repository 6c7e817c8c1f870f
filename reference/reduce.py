"""MEAN int8 (reference_ops::QuantizedMeanOrSum and reference_ops::Mean, reduce.h)."""

from __future__ import annotations

import numpy as np

from .quant import multiply_by_quantized_multiplier, requantize_float32, truncating_divide


def mean(x: np.ndarray, p, output_shape) -> np.ndarray:
    total = x.astype(np.int64).sum(axis=p.axes, keepdims=True)
    if p.rounding == "float32":
        # XNNPACK: the centered sum times one float32 scale in / (out * n), ties to even.
        centered = total - p.input_zero_point * p.count
        out = np.clip(requantize_float32(centered, p.float_scale) + p.output_zero_point, -128, 127)
    elif p.requantize:
        centered = total - p.input_zero_point * p.count
        out = multiply_by_quantized_multiplier(centered, p.multiplier, p.shift) + p.output_zero_point
        out = np.clip(out, -128, 127)
    else:
        # Same quantization in and out: the raw sum divided by n, C truncation.
        out = truncating_divide(total, p.count)
    return out.astype(np.int8).reshape(output_shape)
