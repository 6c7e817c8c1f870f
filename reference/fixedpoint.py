"""gemmlowp's fixed-point functions (google/gemmlowp fixedpoint/fixedpoint.h), vectorized.

TFLite's SOFTMAX and LOGISTIC compute exp() and 1/(1+x) in fixed point. A
value in "Qm" format here is an int32 raw value r standing for r / 2^(31-m):
m integer bits, 31-m fractional bits. The product of a Qa and a Qb value is a
Q(a+b) value whose raw is SaturatingRoundingDoublingHighMul of the raws, and
additions are plain int32 additions of raws (they wrap, as in C).

All functions take and return int64 numpy arrays holding int32 values.
"""

from __future__ import annotations

import numpy as np

from .quant import (INT32_MAX, INT32_MIN, rounding_divide_by_pot,
                    saturating_rounding_doubling_high_mul as mul, wrap_int32)


def add(a, b):
    """Sum of two raws in the same format (int32 wrap-around, as gemmlowp's operator+)."""
    return wrap_int32(np.asarray(a, np.int64) + b)


def sub(a, b):
    return wrap_int32(np.asarray(a, np.int64) - b)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """x * 2^exponent: a saturating left shift, or a rounding right shift."""
    x = np.asarray(x, np.int64)
    if exponent > 0:
        threshold = (1 << (31 - exponent)) - 1
        shifted = wrap_int32(x << exponent)
        return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return x


def rescale(x, src_integer_bits: int, dst_integer_bits: int):
    """gemmlowp::Rescale: the same real value in a format with other integer bits."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def one(integer_bits: int) -> int:
    """Raw of 1.0 in Q(integer_bits); Q0 cannot hold 1.0, so it saturates to INT32_MAX."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), Q0 in and out: Taylor series around -1/8."""
    constant_term = 1895147668                    # exp(-1/8) in Q0
    constant_1_over_3 = 715827883                 # 1/3 in Q0
    x = add(a, 1 << 28)                           # a + 1/8
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(add(mul(add(x4_over_4, x3), constant_1_over_3), x2), -1)
    return add(constant_term, mul(constant_term, add(x, poly)))


# exp(-2^k) in Q0, for the barrel shifter below (k = -2 .. 4)
_EXP_OF_MINUS_POWERS_OF_TWO = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308,
                               2: 39332535, 3: 720401, 4: 242}


def exp_on_negative_values(a, integer_bits: int):
    """exp(a) for a <= 0 given in Q(integer_bits); result in Q0.

    a = (a mod 1/4 - 1/4) - remainder: the first part goes through the Taylor
    series, and each set bit 2^k of the remainder multiplies in exp(-2^k).
    """
    a = np.asarray(a, np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = sub(a_mod_quarter_minus_one_quarter, a)
    for exponent, multiplier in _EXP_OF_MINUS_POWERS_OF_TWO.items():
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # below -32, exp() is 0 in Q0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def rounding_half_sum(a, b):
    """(a + b) / 2 rounded half away from zero, without overflow."""
    total = np.asarray(a, np.int64) + b
    sign = np.where(total >= 0, 1, -1)
    q = np.abs(total + sign) // 2
    return np.where(total + sign < 0, -q, q)


def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a in [0, 1) in Q0; result in Q0. Newton-Raphson on the half
    denominator d = (1 + a) / 2, starting from 48/17 - 32/17 * d, three steps, in Q2."""
    half_denominator = rounding_half_sum(a, INT32_MAX)        # Q0
    constant_48_over_17 = 1515870810                          # Q2
    constant_neg_32_over_17 = -1010580540                     # Q2
    x = add(constant_48_over_17, mul(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = mul(half_denominator, x)   # Q2
        one_minus = sub(one(2), half_denominator_times_x)      # Q2
        x = add(x, rescale(mul(x, one_minus), 4, 2))          # Q2 * Q2 = Q4 -> Q2
    # x is 1/d = 2/(1+a) in Q2; the same raw read in Q1 is 1/(1+a); then Q1 -> Q0.
    return rescale(x, 1, 0)


def count_leading_zeros_u32(x):
    """Leading zero bits of x as an unsigned 32-bit value (32 for 0)."""
    x = np.asarray(x, np.int64) & 0xFFFFFFFF
    significant_bits = sum(((x >> k) > 0).astype(np.int64) for k in range(32))
    return 32 - significant_bits


def get_reciprocal(x, x_integer_digits: int):
    """GetReciprocal (TFLite common.h): 1/x for a positive Q(x_integer_digits) x.

    Returns (reciprocal in Q0 of the normalized value, num_bits_over_unit):
    x is shifted left until its top bit is set, read as 1 + f with f in [0, 1),
    and 1/(1+f) is computed; the caller shifts right by num_bits_over_unit.
    """
    x = np.asarray(x, np.int64)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def logistic(a, integer_bits: int):
    """gemmlowp::logistic: 1 / (1 + exp(-a)), a in Q(integer_bits), result Q0."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, wrap_int32(-a))
    on_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_a), integer_bits))
    on_negative = sub(INT32_MAX, on_positive)
    result = np.where(positive, on_positive, on_negative)
    return np.where(a == 0, 1 << 30, result)
