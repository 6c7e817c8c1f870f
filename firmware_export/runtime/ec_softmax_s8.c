/* SOFTMAX, int8 -> int8 (reference/activations.py, TFLite reference_ops::Softmax).
 * exp() of every possible difference from the row maximum (0 .. -255) comes
 * from tables the exporter computed with the reference (gemmlowp's fixed-point
 * exp); the sum's reciprocal is gemmlowp's one_over_one_plus_x_for_x_in_0_1,
 * twin of reference/fixedpoint.py. With exp_lut16, LiteRT's aarch64 variant
 * (activations.py softmax_lut16) instead. */
#include <math.h>

#include "ec_runtime.h"

static int32_t wrapping_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t saturating_left_shift(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int64_t total = (int64_t)a + INT32_MAX;
    const int64_t sign = total >= 0 ? 1 : -1;
    const int32_t half_denominator = (int32_t)((total + sign) / 2);
    int32_t x = wrapping_add(1515870810, /* 48/17 in Q2.29 */
                             ec_saturating_rounding_doubling_high_mul(half_denominator,
                                                                      -1010580540)); /* -32/17 */
    int i;
    for (i = 0; i < 3; ++i) { /* Newton-Raphson on 1 / half_denominator, in Q2.29 */
        const int32_t one_minus = (int32_t)((uint32_t)((int32_t)1 << 29) -
            (uint32_t)ec_saturating_rounding_doubling_high_mul(half_denominator, x));
        x = wrapping_add(x, saturating_left_shift(
                                ec_saturating_rounding_doubling_high_mul(x, one_minus), 2));
    }
    return saturating_left_shift(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* Twin of reference/quant.py quantize_multiplier (TFLite's QuantizeMultiplier), real >= 0. */
static void quantize_multiplier(double real, int32_t *multiplier, int *shift)
{
    int exponent = 0;
    int64_t q_fixed = 0;
    if (real != 0.0) {
        q_fixed = (int64_t)round(frexp(real, &exponent) * 2147483648.0);
        if (q_fixed == ((int64_t)1 << 31)) {
            q_fixed /= 2;
            ++exponent;
        }
        if (exponent < -31) {
            q_fixed = 0;
            exponent = 0;
        }
    }
    *multiplier = (int32_t)q_fixed;
    *shift = exponent;
}

/* Twin of reference/activations.py softmax_lut16: one multiplier per row from the
 * row's sum of table values, in float32 as LiteRT's SoftmaxInt8LUT computes it. */
static void softmax_lut16(const ec_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * p->depth;
        int8_t *y = output + r * p->depth;
        int32_t row_max = -128, total = 0, multiplier;
        int shift;
        float inverse;
        for (c = 0; c < p->depth; ++c) {
            row_max = x[c] > row_max ? x[c] : row_max;
        }
        for (c = 0; c < p->depth; ++c) {
            total += p->exp_lut16[row_max - x[c]];
        }
        inverse = 1.0f / ((float)total * p->output_scale);
        quantize_multiplier((double)inverse, &multiplier, &shift);
        for (c = 0; c < p->depth; ++c) {
            y[c] = (int8_t)ec_clamp(ec_multiply_by_quantized_multiplier(
                                        p->exp_lut16[row_max - x[c]], multiplier, shift,
                                        EC_ROUND_DOUBLE) + p->output_zero_point,
                                    -128, 127);
        }
    }
}

/* Rows whose exp() values sum to 512 or more give exponents 32-35, where a 32-bit shift is
 * undefined (gemmlowp asserts exponent <= 31; see the core's softmax_divide_by_pot): the exact
 * rounded quotient of an int32 by 2^32 or more is 0, or -1 for INT32_MIN / 2^32. */
static int32_t softmax_divide_by_pot(int32_t x, int exponent)
{
    if (exponent <= 31) {
        return ec_rounding_divide_by_pot(x, exponent);
    }
    return (exponent == 32 && x == INT32_MIN) ? -1 : 0;
}

void ec_softmax_s8(const ec_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t r, c;
    if (p->exp_lut16 != NULL) {
        softmax_lut16(p, input, output);
        return;
    }
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * p->depth;
        int8_t *y = output + r * p->depth;
        int32_t row_max = -128, total = 0, reciprocal;
        int headroom_plus_one, exponent;
        for (c = 0; c < p->depth; ++c) {
            row_max = x[c] > row_max ? x[c] : row_max;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = x[c] - row_max;
            if (diff >= p->diff_min) {
                total = wrapping_add(total, p->exp_acc[-diff]);
            }
        }
        headroom_plus_one = count_leading_zeros((uint32_t)total);
        reciprocal = one_over_one_plus_x_for_x_in_0_1(
            (int32_t)(((uint32_t)total << headroom_plus_one) - ((uint32_t)1 << 31)));
        exponent = (12 - headroom_plus_one) + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = x[c] - row_max;
            if (diff >= p->diff_min) {
                const int32_t unsaturated = softmax_divide_by_pot(
                    ec_saturating_rounding_doubling_high_mul(reciprocal, p->exp_q0[-diff]),
                    exponent);
                y[c] = (int8_t)ec_clamp(unsaturated + p->output_zero_point, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}
