"""The quantization arithmetic of TFLite int8 inference: the one home for it.

Every other implementation (the Cython core, the exported C runtime) has a twin
of each function here under the same name, with a comment pointing back.

Conventions (TFLite's, kept everywhere in edgecnn):
  real = scale * (q - zero_point)
  a requantization is (multiplier, shift): multiplier is a Q0.31 int32 in
  [2^30, 2^31) (or 0), shift keeps TFLite's sign: positive = left shift.

All array functions work on int64 numpy arrays holding int32 values, so that
products of two int32 values are exact, and return int64 arrays holding int32
values. Sources are the TFLite/tflite-micro files named in each docstring; see
also ../shared/QUANT-NOTES.md.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Rounding profiles of a requantization (a field of every Requant record).
DOUBLE_ROUNDING = "double"  # gemmlowp: SRDHM then RoundingDivideByPOT (TFLM, TFLite reference)
SINGLE_ROUNDING = "single"  # TFLITE_SINGLE_ROUNDING: one rounding, ties towards +inf
ROUNDINGS = (DOUBLE_ROUNDING, SINGLE_ROUNDING)


# --------------------------------------------------------------------------
# Scalars: float scale -> fixed point, computed once at lowering time
# --------------------------------------------------------------------------

def round_half_away(x: float) -> int:
    """C's round()/TfLiteRound: ties away from zero (Python's round() is banker's)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier (tensorflow/lite/kernels/internal/quantization_util.cc).

    Splits a positive double m into q_fixed * 2^(shift - 31) with q_fixed a
    Q0.31 value in [2^30, 2^31). Multipliers too small to represent (shift
    below -31) are flushed to (0, 0), exactly as TFLite does.
    """
    if real_multiplier < 0:
        raise ValueError(f"negative multiplier {real_multiplier!r}")
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)  # q in [0.5, 1)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:  # q rounded up to 1.0
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_single_rounding(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier as built with TFLITE_SINGLE_ROUNDING: shift capped at 30."""
    q_fixed, shift = quantize_multiplier(real_multiplier)
    if shift > 30:
        return INT32_MAX, 30
    return q_fixed, shift


def quantize_scalar_float32(value: float, scale: float, zero_point: int) -> int:
    """zero_point + TfLiteRound(value / scale), the division done in float32.

    This is how TFLite quantizes the fused activation bounds (kernel_util.cc,
    CalculateActivationRangeQuantizedImpl), so it must be float32 here too.
    """
    with np.errstate(over="ignore"):
        quotient = float(np.float32(value) / np.float32(scale))
    # TFLite converts to int32 unchecked (undefined beyond it); every caller clamps the
    # result to an 8-bit range, so saturating at int32 gives the same bounds, defined.
    quotient = min(max(quotient, float(INT32_MIN)), float(INT32_MAX))
    return zero_point + round_half_away(quotient)


def quantize_scalar_xnnpack(value: float, scale: float, zero_point: int) -> int:
    """XNNPACK's xnn_qs8_quantize (src/xnnpack/requantization.h), for fused activation
    bounds: lrintf(value / scale + zero_point) in float32, ties to even."""
    total = np.float32(value) / np.float32(scale) + np.float32(zero_point)
    return int(np.rint(np.clip(total, -2.0**31, 2.0**31 - 1)))


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127, xnnpack: bool = False) -> tuple[int, int]:
    """The [min, max] clamp of a fused activation, in the output's quantized domain
    (TFLite's rounding, or XNNPACK's where the delegate runs the op)."""
    def q(value):
        if xnnpack:
            return quantize_scalar_xnnpack(value, scale, zero_point)
        return quantize_scalar_float32(value, scale, zero_point)

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unknown fused activation {activation!r}")


# --------------------------------------------------------------------------
# Arrays: the integer arithmetic of the kernels
# --------------------------------------------------------------------------

def _as_int64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (what C int32 arithmetic does)."""
    x = _as_int64(x)
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def truncating_divide(numerator, denominator) -> np.ndarray:
    """C integer division: the quotient truncated towards zero (numpy's // floors)."""
    n = _as_int64(numerator)
    d = _as_int64(denominator)
    q = np.abs(n) // np.abs(d)
    return np.where((n < 0) != (d < 0), -q, q)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul (gemmlowp fixedpoint.h): a*b / 2^31 rounded.

    The nudge (+2^30, or 1 - 2^30 for negative products) followed by C's
    truncating division gives floor(a*b / 2^31 + 1/2): ties round up, towards
    +infinity (-0.5 -> 0, +0.5 -> 1). The only overflow, INT32_MIN * INT32_MIN,
    saturates to INT32_MAX.
    """
    a = _as_int64(a)
    b = _as_int64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    result = truncating_divide(ab + nudge, 1 << 31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, result)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT (gemmlowp fixedpoint.h): x / 2^exponent, ties away from zero."""
    x = _as_int64(x)
    exponent = _as_int64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift,
                                     rounding: str = DOUBLE_ROUNDING) -> np.ndarray:
    """MultiplyByQuantizedMultiplier (tensorflow/lite/kernels/internal/common.cc).

    x * multiplier * 2^(shift - 31) rounded to an int32. `multiplier` and
    `shift` may be scalars or arrays broadcasting against x (per channel).

    double rounding (default of TFLite and tflite-micro): a rounding
    high-multiply, then a rounding right shift: two roundings.
    single rounding (TFLITE_SINGLE_ROUNDING): one 64-bit product, one
    rounding with ties towards +infinity.
    """
    x = _as_int64(x)
    multiplier = _as_int64(multiplier)
    shift = _as_int64(shift)
    if rounding == DOUBLE_ROUNDING:
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        # TFLite does x * (1 << left) in int32 unchecked; C wraps in practice.
        shifted = wrap_int32(x << left)
        high = saturating_rounding_doubling_high_mul(shifted, multiplier)
        return rounding_divide_by_pot(high, right)
    if rounding == SINGLE_ROUNDING:
        total_shift = 31 - shift
        rounder = np.int64(1) << (total_shift - 1)
        return wrap_int32((x * multiplier + rounder) >> total_shift)
    raise ValueError(f"unknown rounding {rounding!r}")


def multiply_by_quantized_multiplier_rows(x, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier4Rows (TFLite optimized_ops, NEON): vshl, vqrdmulh,
    vrshl. Both roundings are half up (towards +infinity), unlike gemmlowp's
    RoundingDivideByPOT (half away from zero). LiteRT's x86 build compiles its NEON
    paths through NEON_2_SSE, so its default (optimized) kernels compute this on x86 too.
    """
    x = _as_int64(x)
    shifted = wrap_int32(x << max(shift, 0))
    high = (2 * shifted * multiplier + (1 << 31)) >> 32      # vqrdmulh (no saturation: m >= 0)
    right = max(-shift, 0)
    return (high + ((np.int64(1) << right) >> 1)) >> right  # vrshl by -right


def saturate_cast(x, dtype) -> np.ndarray:
    """Clamp to the range of an integer dtype and cast."""
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def rounded_average(total, count) -> np.ndarray:
    """Average-pool rounding (integer_ops/pooling.h): half away from zero, C division."""
    total = _as_int64(total)
    count = _as_int64(count)
    half = count // 2
    return np.where(total > 0,
                    truncating_divide(total + half, count),
                    truncating_divide(total - half, count))


# --------------------------------------------------------------------------
# Bounds checked at lowering
# --------------------------------------------------------------------------

def accumulator_bound(weights_per_output: np.ndarray, bias) -> int:
    """Largest |int32 accumulator| a conv/FC output channel can reach.

    |x - zp_in| <= 255 for int8 activations, so |acc| <= 255 * sum|w| + |bias|.
    TFLite leaves this unchecked (conv.h: "at least 2^16 multiplications
    without overflow"); lowering refuses a layer above INT32_MAX instead of
    silently wrapping.
    """
    w = np.abs(np.asarray(weights_per_output, dtype=np.int64))
    per_channel = 255 * w.reshape(w.shape[0], -1).sum(axis=1)
    per_channel = per_channel + np.abs(np.asarray(bias, dtype=np.int64))
    return int(per_channel.max()) if per_channel.size else 0


def requantize(acc, requant, channel_axis: int = -1) -> np.ndarray:
    """Apply a `Requant` record to int32 accumulators (per channel along `channel_axis`).

    "double"/"single": multiply_by_quantized_multiplier above.
    "float": LiteRT's BUILTIN_REF fully-connected requantization, which
    scales in floating point (see `requantize_float`).
    """
    acc = _as_int64(acc)
    shape = [1] * acc.ndim
    if acc.ndim:
        shape[channel_axis] = -1
    if requant.rounding == "float":
        return requantize_float(acc, np.asarray(requant.real_scale).reshape(shape))
    if requant.rounding == "float32":
        return requantize_float32(acc, np.asarray(requant.real_scale).reshape(shape))
    multiplier = np.asarray(requant.multiplier, dtype=np.int64).reshape(shape)
    shift = np.asarray(requant.shift, dtype=np.int64).reshape(shape)
    return multiply_by_quantized_multiplier(acc, multiplier, shift, requant.rounding)


def requantize_float(acc, real_scale) -> np.ndarray:
    """round(acc * real_scale) in double precision, ties away from zero.

    LiteRT's reference FULLY_CONNECTED (internal/reference/integer_ops/
    fully_connected.h, float-scale overload) scales the accumulator by
    input_scale * weight_scale / output_scale in floating point.

    Beyond the int32 range LiteRT's static_cast<int32_t> is undefined behaviour
    (x86 gives INT32_MIN, ARM saturates); edgecnn saturates, as for QUANTIZE.
    """
    scaled = _as_int64(acc).astype(np.float64) * np.asarray(real_scale, dtype=np.float64)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded, INT32_MIN, INT32_MAX).astype(np.int64)


def requantize_float32(acc, scale) -> np.ndarray:
    """rint(float(acc) * scale) in float32, ties to even: XNNPACK's fp32 requantization
    (the accumulator converted to float32, one float32 multiply, round to nearest even).
    XNNPACK clamps the float to the output range before converting it, so values beyond
    int32 saturate."""
    product = _as_int64(acc).astype(np.float32) * np.asarray(scale, dtype=np.float32)
    rounded = np.rint(product).astype(np.float64)
    return np.clip(rounded, INT32_MIN, INT32_MAX).astype(np.int64)


def clamp_to_output(requantized, zero_point: int, act_min: int, act_max: int,
                    dtype=np.int8) -> np.ndarray:
    """Add the output zero point and clamp to the activation range (the last step of every op)."""
    return np.clip(_as_int64(requantized) + zero_point, act_min, act_max).astype(dtype)


# --------------------------------------------------------------------------
# Geometry shared by convolutions and pooling
# --------------------------------------------------------------------------

def output_size_and_padding(padding: str, size: int, filter_size: int, stride: int,
                            dilation: int = 1) -> tuple[int, int]:
    """(output size, padding before) along one axis, as TFLite's ComputePaddingHeightWidth.

    SAME pads so that out = ceil(size / stride); when the total padding is
    odd the extra row/column goes after (bottom/right).
    """
    extent = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (size + stride - 1) // stride
    elif padding == "VALID":
        out = (size - extent + stride) // stride
    else:
        raise ValueError(f"unknown padding {padding!r}")
    total = max((out - 1) * stride + extent - size, 0)
    return out, total // 2


# --------------------------------------------------------------------------
# Helpers of the fixed-point special ops (softmax, logistic, hard swish, mean)
# --------------------------------------------------------------------------

def input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """CalculateInputRadius (quantization_util.cc): the largest |input| that does not
    saturate once scaled into Q(input_integer_bits)."""
    max_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                    * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift))
    return int(math.floor(max_rescaled))


def downscale_multiplier_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier: a Q0.31 multiplier rounded to Q0.15."""
    if multiplier >= INT32_MAX - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


def fold_division_into_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """QuantizedMeanOrSum (reduce.h): fold 1/count into (multiplier, shift).

    The multiplier is scaled up by 2^s (s = floor(log2 count), at most 32 and
    at most 31 + shift), divided by count with truncation, and s is taken
    back from the shift.
    """
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << s) // count, shift - s


# --------------------------------------------------------------------------
# LiteRT's aarch64 SOFTMAX: a 16-bit exp() table and a float32 normalizer
# --------------------------------------------------------------------------
# TFLite built by clang for aarch64 (LiteRT's aarch64 wheels, so a Raspberry Pi) defines
# TFLITE_SOFTMAX_USE_UINT16_LUT (optimized_ops.h): its optimized int8 SOFTMAX (the builtin
# kernel, used with and without XNNPACK; not BUILTIN_REF) then reads exp() from a table of
# 16-bit values made in Prepare (activations.cc, PopulateSoftmaxUInt8LookupTable) and
# normalizes each row with a multiplier computed in float32 (SoftmaxInt8LUT). Elsewhere
# (x86-64, 32-bit ARM, gcc builds) the fixed-point reference_ops arithmetic is used.

SOFTMAX_LUT16_ONE = 65535   # exp(0) in the table's units


def softmax_exp_lut16(input_scale: float, beta: float) -> np.ndarray:
    """exp(-d * input_scale * beta) in units of 1/65535 for d = 0..255 below the row max
    (int64 [256], entry d = LiteRT's table entry 255 - d).

    As LiteRT computes it: scale = input_scale * beta in float32; x = scale * -d in float32;
    expf(x) * 65535 in float32; then + 0.5 in double, truncated, capped at 65535. expf is
    taken as exp() in double rounded to float32 (the correctly rounded value, which is
    glibc's expf everywhere the table was checked against LiteRT; see tests/data)."""
    scale = np.float32(input_scale) * np.float32(beta)
    x = scale * -np.arange(256, dtype=np.float32)
    expf = np.exp(x.astype(np.float64)).astype(np.float32)
    scaled = (expf * np.float32(SOFTMAX_LUT16_ONE)).astype(np.float64) + 0.5
    return np.minimum(np.floor(scaled), SOFTMAX_LUT16_ONE).astype(np.int64)


def softmax_lut16_normalizer(sum_of_exps: int, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) that turn a table value into the output (SoftmaxInt8LUT):
    1 / (sum * output_scale) in float32 (sum converted to float32 first, as C does),
    then QuantizeMultiplier of that float."""
    inverse = np.float32(1.0) / (np.float32(sum_of_exps) * np.float32(output_scale))
    return quantize_multiplier(float(inverse))


# --------------------------------------------------------------------------
# XNNPACK's own arithmetic (the `xnnpack` profile: LiteRT's default delegate)
#
# XNNPACK does not use TFLite's multiplier/shift pairs. Each function names the
# XNNPACK source it follows (google/XNNPACK, src/...); ../notes: fid.md.
# --------------------------------------------------------------------------

def float32_ratio(numerator: float, denominator: float) -> np.float32:
    """numerator / denominator evaluated in float32 (XNNPACK's scale ratios)."""
    return np.float32(numerator) / np.float32(denominator)


def xnnpack_add_multipliers(scale_a: float, scale_b: float,
                            scale_out: float) -> tuple[int, int, int]:
    """(a_multiplier, b_multiplier, shift) of XNNPACK's int8 ADD
    (microparams-init.c, xnn_init_qs8_add_minmax_scalar_params).

    The float32 ratios a/out and b/out are scaled by 2^shift, with shift
    chosen so that the larger one lands in [2^20, 2^21), and rounded to the
    nearest integer, ties to even (lrintf).
    """
    a_ratio = float(float32_ratio(scale_a, scale_out))
    b_ratio = float(float32_ratio(scale_b, scale_out))
    shift = 20 - (math.frexp(max(a_ratio, b_ratio))[1] - 1)
    # a float32 times a power of two is exact in double: rint gives lrintf's answer
    return int(np.rint(a_ratio * 2.0**shift)), int(np.rint(b_ratio * 2.0**shift)), shift


def xnnpack_add_supported(scale_a: float, scale_b: float, scale_out: float) -> bool:
    """LiteRT's XNNPACK delegate takes an int8 ADD only when both float32 ratios
    input/output lie in [1/1024, 256) (xnnpack_delegate.cc, CheckTensorsInputOutputScale);
    otherwise LiteRT's own ADD kernel runs."""
    return all(2.0**-10 <= float32_ratio(s, scale_out) < 256.0 for s in (scale_a, scale_b))


def shift_right_round_half_up(x, shift: int) -> np.ndarray:
    """floor(x / 2^shift + 1/2): XNNPACK adds 2^(shift-1) and shifts arithmetically."""
    return (_as_int64(x) + (np.int64(1) << (shift - 1))) >> shift


def xnnpack_requantize_multiplier(scale_in: float, scale_out: float) -> int:
    """XNNPACK's int8 -> int8 requantizing convert (xnn_init_qs8_cvt_scalar_params):
    lrintf(256 * float32(in / out)), applied as (x * m + 128) >> 8."""
    return int(np.rint(np.float32(256.0) * float32_ratio(scale_in, scale_out)))


def xnnpack_requantize_supported(scale_in: float, scale_out: float) -> bool:
    """The delegate takes an int8 -> int8 QUANTIZE only for in/out in [1/256, 128]."""
    return 2.0**-8 <= float32_ratio(scale_in, scale_out) <= 128.0


def xnnpack_quantize_float(x, scale: float) -> np.ndarray:
    """XNNPACK's float32 -> int8/uint8 convert (f32-qs8-vcvt, microparams-init.c):
    x times the float32 reciprocal 1/scale, rounded to nearest, ties to even.
    Saturated (XNNPACK clamps the float before converting); NaN gives 0 here."""
    product = np.asarray(x, np.float32) * (np.float32(1.0) / np.float32(scale))
    rounded = np.rint(np.nan_to_num(product, nan=0.0).astype(np.float64))
    return np.clip(rounded, INT32_MIN, INT32_MAX).astype(np.int64)


def xnnpack_mean_scale_and_zero_point(scale_in: float, zero_in: int, scale_out: float,
                                      zero_out: int, count: int) -> tuple[float, float]:
    """XNNPACK's int8 MEAN (operators/reduce-nd.c, microparams-init.c): the raw int32
    sum is converted by y = rint(float(sum) * s + z) with, all in float32,
      s = float32(in / out) * (1 / count),
      z = zero_out - float(count * zero_in) * s.
    The input zero point is folded into the float zero point z, so the rounding
    (ties to even) applies to the whole value, zero point included."""
    f32 = np.float32
    s = float32_ratio(scale_in, scale_out) * (f32(1.0) / f32(count))
    z = f32(zero_out) - (f32(count) * f32(zero_in)) * s
    return float(s), float(z)


def xnnpack_mean_convert(total, scale: float, zero_point: float) -> np.ndarray:
    """rint(float32(total) * scale + zero_point) in float32 (no fused multiply-add),
    clamped to the int32 range while still a float (XNNPACK clamps before converting), so
    that a product that overflows float32 to +-inf saturates instead of converting to an
    undefined integer. (Lowering refuses a scale or zero point that is not finite.)"""
    with np.errstate(over="ignore"):
        product = _as_int64(total).astype(np.float32) * np.float32(scale)
        value = np.rint((product + np.float32(zero_point)).astype(np.float64))
    return np.clip(value, INT32_MIN, INT32_MAX).astype(np.int64)
