/* ADD, int8 (reference/elementwise.py, TFLite add_common.cc): both inputs
 * shifted left by left_shift (20) for headroom, scaled to a common scale,
 * added, scaled to the output. Broadcasting through zero strides. */
#include "ec_runtime.h"

void ec_add_s8(const ec_add_params *p, const int8_t *a, const int8_t *b, int8_t *output)
{
    int32_t i0, i1, i2, i3;
    int32_t k = 0;
    const int8_t *second = p->constant_b != NULL ? p->constant_b : b;
    const int32_t scale = (int32_t)1 << p->left_shift;
    for (i0 = 0; i0 < p->out_shape[0]; ++i0) {
        for (i1 = 0; i1 < p->out_shape[1]; ++i1) {
            for (i2 = 0; i2 < p->out_shape[2]; ++i2) {
                for (i3 = 0; i3 < p->out_shape[3]; ++i3) {
                    const int32_t ia = i0 * p->a_strides[0] + i1 * p->a_strides[1] +
                                       i2 * p->a_strides[2] + i3 * p->a_strides[3];
                    const int32_t ib = i0 * p->b_strides[0] + i1 * p->b_strides[1] +
                                       i2 * p->b_strides[2] + i3 * p->b_strides[3];
                    const int32_t va = ec_multiply_by_quantized_multiplier(
                        (a[ia] - p->input1_zero_point) * scale, p->input1_multiplier,
                        p->input1_shift, p->rounding);
                    const int32_t vb = ec_multiply_by_quantized_multiplier(
                        (second[ib] - p->input2_zero_point) * scale, p->input2_multiplier,
                        p->input2_shift, p->rounding);
                    const int32_t sum = ec_multiply_by_quantized_multiplier(
                        va + vb, p->output_multiplier, p->output_shift, p->rounding);
                    output[k++] = (int8_t)ec_offset_and_clamp(sum, p->output_zero_point,
                                                              p->activation_min,
                                                              p->activation_max);
                }
            }
        }
    }
}
