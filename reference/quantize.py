"""QUANTIZE and DEQUANTIZE: the model's float/uint8 boundary (quantize.h, dequantize.h, requantize.h)."""

from __future__ import annotations

import numpy as np

from .quant import (multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_rows,
                    shift_right_round_half_up, xnnpack_quantize_float)

VECTOR_BLOCK = 16   # LiteRT's optimized Requantize: elements per NEON iteration


def quantize(x: np.ndarray, p, output_shape) -> np.ndarray:
    info = np.iinfo(p.output_dtype)
    if p.rounding == "xnnpack":
        out = _xnnpack_quantize(x, p)
    elif x.dtype == np.float32:
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
        centered = x.astype(np.int64) - p.input_zero_point
        out = multiply_by_quantized_multiplier(centered, p.multiplier, p.shift)
        if p.rounding == "litert-optimized":
            # optimized_ops::Requantize: whole blocks of 16 on the NEON path, the tail as above
            position = np.arange(x.size).reshape(x.shape)
            body = x.size // VECTOR_BLOCK * VECTOR_BLOCK
            out = np.where(position < body,
                           multiply_by_quantized_multiplier_rows(centered, p.multiplier, p.shift),
                           out)
        out = out + p.output_zero_point
    return np.clip(out, info.min, info.max).astype(p.output_dtype)


def _xnnpack_quantize(x: np.ndarray, p) -> np.ndarray:
    """XNNPACK's converts: float times 1/scale, ties to even (f32-qs8-vcvt); int8 -> int8
    as (x - zp) * multiplier / 256, ties up (qs8-vcvt)."""
    if x.dtype == np.float32:
        return xnnpack_quantize_float(x, p.scale) + p.output_zero_point
    centered = x.astype(np.int64) - p.input_zero_point
    return shift_right_round_half_up(centered * p.multiplier, 8) + p.output_zero_point


def dequantize(x: np.ndarray, p, output_shape) -> np.ndarray:
    # (q - zp) * scale in double, rounded once to float32.
    return (np.float64(p.scale) * (x.astype(np.int64) - p.zero_point)).astype(np.float32)
