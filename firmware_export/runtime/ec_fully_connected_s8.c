/* FULLY_CONNECTED, int8 (reference/fully_connected.py), fixed-point
 * requantization (the tflm profile; LiteRT's float requantization is not
 * exported). */
#include "ec_runtime.h"

void ec_fully_connected_s8(const ec_fully_connected_params *p, const int8_t *input,
                           int8_t *output)
{
    int32_t r, o;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            /* bias + sum w * (x - zp) = (bias - zp * sum w) + sum w * x */
            const int32_t acc = p->folded_bias[o] +
                                ec_dot_s8(p->weights + o * p->in_features, x, p->in_features);
            int32_t scaled;
            scaled = ec_multiply_by_quantized_multiplier(acc, p->requant.multiplier[o],
                                                         p->requant.shift[o], p->requant.rounding);
            output[r * p->out_features + o] = (int8_t)ec_offset_and_clamp(
                scaled, p->output_zero_point, p->activation_min, p->activation_max);
        }
    }
}
