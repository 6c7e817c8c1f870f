"""MEAN int8 (reference_ops::QuantizedMeanOrSum, reduce.h; XNNPACK's reduce-nd.c)."""

from __future__ import annotations

import numpy as np

from .quant import multiply_by_quantized_multiplier, xnnpack_mean_convert


def mean(x: np.ndarray, p, output_shape) -> np.ndarray:
    total = x.astype(np.int64).sum(axis=p.axes, keepdims=True)
    if p.rounding == "xnnpack":
        # XNNPACK: the raw sum through one float32 multiply-add, ties to even.
        out = xnnpack_mean_convert(total, p.float_scale, p.float_zero_point)
    else:
        # TFLite and tflite-micro, also when input and output share their quantization:
        # the centered sum times the multiplier of in/out with 1/n folded in.
        centered = total - p.input_zero_point * p.count
        out = multiply_by_quantized_multiplier(centered, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(out, -128, 127).astype(np.int8).reshape(output_shape)
