/* MEAN, int8 (reference/reduce.py, TFLite reduce.h QuantizedMeanOrSum):
 * the raw sum over the reduced dimensions, centered and requantized with 1/n
 * folded into the multiplier (also when input and output share their
 * quantization). Output elements are written in order. */
#include "ec_runtime.h"

void ec_mean_s8(const ec_mean_params *p, const int8_t *input, int8_t *output)
{
    int32_t o[4], r[4], extent[4], d;
    int32_t k = 0;
    for (d = 0; d < 4; ++d) {
        extent[d] = p->reduced[d] ? 1 : p->in_shape[d];
    }
    for (o[0] = 0; o[0] < extent[0]; ++o[0]) {
        for (o[1] = 0; o[1] < extent[1]; ++o[1]) {
            for (o[2] = 0; o[2] < extent[2]; ++o[2]) {
                for (o[3] = 0; o[3] < extent[3]; ++o[3]) {
                    int32_t total = 0;
                    int32_t v;
                    for (r[0] = 0; r[0] < (p->reduced[0] ? p->in_shape[0] : 1); ++r[0]) {
                        for (r[1] = 0; r[1] < (p->reduced[1] ? p->in_shape[1] : 1); ++r[1]) {
                            for (r[2] = 0; r[2] < (p->reduced[2] ? p->in_shape[2] : 1); ++r[2]) {
                                for (r[3] = 0; r[3] < (p->reduced[3] ? p->in_shape[3] : 1);
                                     ++r[3]) {
                                    const int32_t i0 = o[0] + r[0], i1 = o[1] + r[1];
                                    const int32_t i2 = o[2] + r[2], i3 = o[3] + r[3];
                                    total += input[((i0 * p->in_shape[1] + i1) * p->in_shape[2] +
                                                    i2) * p->in_shape[3] + i3];
                                }
                            }
                        }
                    }
                    v = ec_multiply_by_quantized_multiplier(
                            total - p->input_zero_point * p->count, p->multiplier, p->shift,
                            EC_ROUND_DOUBLE);
                    output[k++] = (int8_t)ec_offset_and_clamp(v, p->output_zero_point, -128, 127);
                }
            }
        }
    }
}
