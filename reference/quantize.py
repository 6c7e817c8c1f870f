"""QUANTIZE and DEQUANTIZE: the model's float/uint8 boundary (quantize.h, dequantize.h, requantize.h)."""

from __future__ import annotations

import numpy as np

from .quant import multiply_by_quantized_multiplier


def quantize(x: np.ndarray, p, output_shape) -> np.ndarray:
    info = np.iinfo(p.output_dtype)
    if x.dtype == np.float32:
        # AffineQuantize: round(x / scale), the division in float32, ties away from
        # zero (std::round). floor(|q| + 0.5) would be wrong for q = 0.49999997,
        # where the float sum rounds up to 1.0: split q exactly instead.
        quotient = (x / np.float32(p.scale)).astype(np.float64)
        whole = np.floor(np.abs(quotient))
        rounded = np.sign(quotient) * (whole + (np.abs(quotient) - whole >= 0.5))
        # Clamp in float before converting: a huge float must saturate, not wrap.
        rounded = np.clip(rounded.astype(np.float64), -2.0**31, 2.0**31 - 1)
        out = rounded.astype(np.int64) + p.output_zero_point
    else:
        # Requantize between int8 and uint8 (also of a different scale).
        out = multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_zero_point,
                                               p.multiplier, p.shift) + p.output_zero_point
    return np.clip(out, info.min, info.max).astype(p.output_dtype)


def dequantize(x: np.ndarray, p, output_shape) -> np.ndarray:
    # (q - zp) * scale in double, rounded once to float32.
    return (np.float64(p.scale) * (x.astype(np.int64) - p.zero_point)).astype(np.float32)
