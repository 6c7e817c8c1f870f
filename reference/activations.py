"""SOFTMAX, LOGISTIC, HARD_SWISH and the standalone RELUs, int8.

Softmax and logistic never touch floats: exp() and 1/(1+x) are gemmlowp's
fixed-point approximations (reference/fixedpoint.py), exactly as TFLite's
reference kernels compute them.
"""

from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from .quant import (multiply_by_quantized_multiplier, rounding_divide_by_pot,
                    saturating_rounding_doubling_high_mul, softmax_lut16_normalizer, wrap_int32)

SOFTMAX_DIFF_INTEGER_BITS = 5       # (x - max) * beta is held in Q5.26 (exp(-16) ~ 0)
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12  # the sum of up to 4096 exp() values: Q12.19
LOGISTIC_INPUT_INTEGER_BITS = 4


def softmax(x: np.ndarray, p, output_shape) -> np.ndarray:
    """reference_ops::Softmax (softmax.h), int8 in, int8 out, along the last axis;
    LiteRT's aarch64 table variant when the profile asks for it (p.exp_lut16)."""
    if p.exp_lut16 is not None:
        return softmax_lut16(x, p)
    values = x.astype(np.int64)
    diff = values - values.max(axis=-1, keepdims=True)             # <= 0
    used = diff >= p.diff_min
    scaled = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
    exp_q0 = fp.exp_on_negative_values(scaled, SOFTMAX_DIFF_INTEGER_BITS)
    exp_acc = fp.rescale(exp_q0, 0, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    sum_of_exps = wrap_int32(np.where(used, exp_acc, 0).sum(axis=-1, keepdims=True))
    reciprocal, bits_over_unit = fp.get_reciprocal(sum_of_exps, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = bits_over_unit + 31 - 8
    unsaturated = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exp_q0),
                                         exponent)
    out = np.clip(unsaturated + p.output_zero_point, -128, 127)
    return np.where(used, out, -128).astype(np.int8)


def softmax_lut16(x: np.ndarray, p) -> np.ndarray:
    """optimized_ops::SoftmaxInt8LUT (LiteRT built by clang for aarch64): exp() from a
    16-bit table (quant.softmax_exp_lut16), one multiplier per row computed in float32
    from the row's sum, then MultiplyByQuantizedMultiplier (its NEON and scalar forms agree:
    every value is non-negative), the output zero point, and the clamp."""
    values = x.astype(np.int64)
    exps = p.exp_lut16[values.max(axis=-1, keepdims=True) - values]
    sums = exps.sum(axis=-1).reshape(-1)
    rows = exps.reshape(len(sums), -1)
    out = np.empty_like(rows)
    for r, total in enumerate(sums):
        multiplier, shift = softmax_lut16_normalizer(int(total), p.output_scale)
        out[r] = multiply_by_quantized_multiplier(rows[r], multiplier, shift)
    out = np.clip(out + p.output_zero_point, -128, 127)
    return out.reshape(x.shape).astype(np.int8)


def logistic(x: np.ndarray, p, output_shape) -> np.ndarray:
    """reference_integer_ops::Logistic (logistic.h): Q4.27 in, Q0.31 out, then to 1/256 steps.
    Tables: "litert" is LUTPopulateInt8 (LiteRT common.h): 1 / (1 + exp(-x)) in float32 on
    the dequantized input, times 256, TfLiteRound (half away from zero), - 128. "xnnpack"
    (XNNPACK's quantized sigmoid): the sigmoid to float32 accuracy (computed in double
    here), then rint(y * 256 - 128), ties to even."""
    if p.table:
        real = (x.astype(np.float32) - np.float32(p.input_zero_point)) * np.float32(p.input_scale)
        with np.errstate(over="ignore"):   # exp(large) = inf gives 0, as in C
            if p.table == "litert":
                value = np.float32(1) / (np.float32(1) + np.exp(-real)) * np.float32(256)
                rounded = np.floor(value.astype(np.float64) + 0.5)   # value >= 0
            else:
                sigmoid = (1.0 / (1.0 + np.exp(-real.astype(np.float64)))).astype(np.float32)
                rounded = np.rint(sigmoid * np.float32(256) + np.float32(-128)) + 128
        return np.clip(rounded - 128, -128, 127).astype(np.int8)
    centered = x.astype(np.int64) - p.input_zero_point
    in_q4 = multiply_by_quantized_multiplier(centered, p.input_multiplier, p.input_left_shift)
    out_q0 = fp.logistic(in_q4, LOGISTIC_INPUT_INTEGER_BITS)
    out = np.clip(rounding_divide_by_pot(out_q0, 23) - 128, -128, 127)
    out = np.where(centered <= -p.input_range_radius, -128, out)
    out = np.where(centered >= p.input_range_radius, 127, out)
    return out.astype(np.int8)


def _srdhm_int16(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16: round(a*b / 2^15)."""
    ab = np.asarray(a, np.int64) * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.abs(ab + nudge) // (1 << 15)
    result = np.where(ab + nudge < 0, -q, q)
    return np.where((np.asarray(a) == -32768) & (np.asarray(b) == -32768), 32767, result)


def _doubling_high_mul_int16(a, b):
    """SaturatingDoublingHighMul (hard_swish.h): a*b / 2^15 truncated, no rounding nudge."""
    ab = np.asarray(a, np.int64) * b
    q = np.abs(ab) // (1 << 15)
    result = np.where(ab < 0, -q, q)
    return np.where((np.asarray(a) == -32768) & (np.asarray(b) == -32768), 32767, result)


def _saturating_left_shift_int16(value, amount: int):
    return np.clip(np.asarray(value, np.int64) * (1 << amount), -32768, 32767)


def hard_swish(x: np.ndarray, p, output_shape) -> np.ndarray:
    """reference_ops::HardSwish (hard_swish.h): x * relu6(x + 3) / 6 in int16 fixed point.

    The input is moved to a 'hires' scale (x 128). One branch rescales it to
    the output scale; the other maps [-3, 3] to the 'reluish' factor in [0, 1]
    (Q0.15); their product, shifted to the output scale, is the result.
    """
    hires = (x.astype(np.int64) - p.input_zero_point) * 128
    preshift_output = _srdhm_int16(hires, p.output_multiplier_fixedpoint_int16)
    reluish = hires
    if p.reluish_multiplier_exponent > 0:
        reluish = _saturating_left_shift_int16(reluish, p.reluish_multiplier_exponent - 1)
    reluish = _srdhm_int16(reluish, p.reluish_multiplier_fixedpoint_int16)
    if p.reluish_multiplier_exponent > 0:
        reluish = _saturating_left_shift_int16(reluish, 1)
    if p.reluish_multiplier_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -p.reluish_multiplier_exponent)
    reluish = (reluish + (1 << 15)) >> 1                      # [-1, 1] -> [0, 1] in Q0.15
    output = _doubling_high_mul_int16(reluish, preshift_output)
    output = rounding_divide_by_pot(output, -p.output_multiplier_exponent) + p.output_zero_point
    return np.clip(output, -128, 127).astype(np.int8)


def relu(x: np.ndarray, p, output_shape) -> np.ndarray:
    """Standalone RELU / RELU6 / RELU_N1_TO_1 (activations.cc ReluQuantized / Relu6Quantized)."""
    values = x.astype(np.int64)
    if p.rescale:
        values = p.output_zero_point + multiply_by_quantized_multiplier(
            values - p.input_zero_point, p.multiplier, p.shift)
    return np.clip(values, p.activation_min, p.activation_max).astype(np.int8)
