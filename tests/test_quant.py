"""reference/quant.py against first principles: exact rational arithmetic in Python ints.

No oracle here: each property is what the TFLite/gemmlowp definition says,
computed another way (with unbounded integers and Fractions).
"""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edgecnn.reference import quant

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
multipliers = st.integers(min_value=2**30, max_value=2**31 - 1)


def floor_half_up(fraction: Fraction) -> int:
    return math.floor(fraction + Fraction(1, 2))


def round_away(fraction: Fraction) -> int:
    sign = -1 if fraction < 0 else 1
    return sign * math.floor(abs(fraction) + Fraction(1, 2))


@given(st.floats(min_value=1e-12, max_value=1e6, allow_nan=False))
def test_quantize_multiplier_is_nearest_q31(m):
    q_fixed, shift = quant.quantize_multiplier(m)
    if shift < -31 or q_fixed == 0:
        assert (q_fixed, shift) == (0, 0)
        return
    assert 2**30 <= q_fixed < 2**31
    mantissa, exponent = math.frexp(m)
    exact = Fraction(mantissa) * 2**31
    expected = round_away(exact)
    if expected == 2**31:
        assert (q_fixed, shift) == (2**30, exponent + 1)
    else:
        assert (q_fixed, shift) == (expected, exponent)


def test_quantize_multiplier_edge_cases():
    assert quant.quantize_multiplier(0.0) == (0, 0)
    assert quant.quantize_multiplier(0.5) == (2**30, 0)
    assert quant.quantize_multiplier(1.0) == (2**30, 1)
    # q * 2^31 rounds up to 2^31: the mantissa is renormalised
    assert quant.quantize_multiplier(1 - 2**-40) == (2**30, 1)
    assert quant.quantize_multiplier(2.0**-40) == (0, 0)  # flushed below shift -31
    assert quant.round_half_away(2.5) == 3 and quant.round_half_away(-2.5) == -3


@given(int32s, int32s)
def test_srdhm_is_floor_half_up(a, b):
    got = int(quant.saturating_rounding_doubling_high_mul(a, b))
    if a == b == -(2**31):
        assert got == 2**31 - 1
    else:
        assert got == floor_half_up(Fraction(a * b, 2**31))


@given(int32s, st.integers(min_value=0, max_value=31))
def test_rounding_divide_by_pot_rounds_half_away(x, exponent):
    got = int(quant.rounding_divide_by_pot(x, exponent))
    assert got == round_away(Fraction(x, 2**exponent))


@settings(max_examples=300)
@given(int32s, multipliers, st.integers(min_value=-31, max_value=0))
def test_double_rounding_is_srdhm_then_rdbpot(x, m, shift):
    got = int(quant.multiply_by_quantized_multiplier(x, m, shift, "double"))
    high = floor_half_up(Fraction(x * m, 2**31))
    if x == m == -(2**31):
        high = 2**31 - 1
    assert got == round_away(Fraction(high, 2**-shift))


@settings(max_examples=300)
@given(int32s, multipliers, st.integers(min_value=-31, max_value=0))
def test_single_rounding_is_one_floor_half_up(x, m, shift):
    got = int(quant.multiply_by_quantized_multiplier(x, m, shift, "single"))
    exact = floor_half_up(Fraction(x * m, 2**(31 - shift)))
    assert got == exact


def test_double_and_single_rounding_differ_somewhere():
    # x * m / 2^31 = 2.5 exactly -> SRDHM gives 3 (half up) ... while the single
    # rounding of x * m / 2^32 = 1.25 gives 1. Pick a case where they differ:
    # value 0.75 at shift -1: double: SRDHM(3, 2^30)=floor(1.5+.5)=2, /2 -> 1; single: 0.75 -> 1.
    # and value -1.25 at shift -1: double: high=floor(-2.5+.5)=-2, /2 = -1; single floor(-1.25+.5) = -1.
    x = np.arange(-5000, 5000)
    double = quant.multiply_by_quantized_multiplier(x, 2**30 + 12345, -3, "double")
    single = quant.multiply_by_quantized_multiplier(x, 2**30 + 12345, -3, "single")
    assert np.any(double != single)
    assert np.max(np.abs(double - single)) == 1


def test_truncating_divide_and_rounded_average():
    n = np.array([7, -7, 7, -7, 5, -5])
    d = np.array([2, 2, -2, -2, 2, 2])
    assert quant.truncating_divide(n, d).tolist() == [3, -3, -3, 3, 2, -2]
    # pooling.h: (acc + n/2)/n for positive, (acc - n/2)/n for negative, C division
    assert quant.rounded_average(np.array([5, -5, 4, -4, 0]), 2).tolist() == [3, -3, 2, -2, 0]
    assert quant.rounded_average(np.array([4, -4]), 3).tolist() == [1, -1]


def test_activation_range_follows_float32_quantization():
    scale, zp = 0.0235, -128
    assert quant.activation_range("NONE", scale, zp) == (-128, 127)
    assert quant.activation_range("RELU", scale, zp) == (-128, 127)
    lo, hi = quant.activation_range("RELU6", scale, zp)
    assert lo == -128 and hi == zp + round(6 / 0.0235)
    assert quant.activation_range("RELU_N1_TO_1", 0.01, 3) == (-97, 103)
    with pytest.raises(ValueError):
        quant.activation_range("TANH", 0.1, 0)


def test_same_padding_matches_tensorflow_definition():
    # out = ceil(in / stride); the odd pixel of padding goes to the end
    assert quant.output_size_and_padding("SAME", 9, 3, 2) == (5, 1)
    assert quant.output_size_and_padding("SAME", 10, 3, 2) == (5, 0)
    assert quant.output_size_and_padding("SAME", 10, 4, 1) == (10, 1)
    assert quant.output_size_and_padding("VALID", 10, 3, 2) == (4, 0)
    assert quant.output_size_and_padding("SAME", 9, 3, 1, dilation=2) == (9, 2)
    assert quant.output_size_and_padding("VALID", 9, 3, 1, dilation=2) == (5, 0)
