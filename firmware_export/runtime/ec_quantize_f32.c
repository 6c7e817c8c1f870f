/* The float boundary of float-I/O models (reference/quantize.py): QUANTIZE from
 * float32 (round(x / scale), ties away from zero, + zero point, saturated) and
 * DEQUANTIZE to float32 (float(double(scale) * (q - zero_point))). The only
 * floating point of the runtime. */
#include <math.h>

#include "ec_runtime.h"

int ec_quantize_f32(const ec_quantize_params *p, const float *input, uint8_t *output,
                    int output_is_uint8)
{
    /* Saturate in float to [qmin - zero point, qmax - zero point] (small integers, exact
     * in float) before converting: converting or adding first could overflow int32. */
    const float low = (float)(p->qmin - p->zero_point);
    const float high = (float)(p->qmax - p->zero_point);
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        float q = roundf(input[i] / p->scale); /* ties away from zero, like std::round */
        int32_t v;
        if (q != q) { /* NaN: no integer stands for it (converting it is undefined) */
            return EC_ERROR_NAN_INPUT;
        }
        if (q > high) {
            q = high;
        } else if (q < low) {
            q = low;
        }
        v = (int32_t)q + p->zero_point;
        if (output_is_uint8) {
            output[i] = (uint8_t)v;
        } else {
            ((int8_t *)output)[i] = (int8_t)v;
        }
    }
    return EC_OK;
}

void ec_dequantize_f32(const ec_dequantize_params *p, const uint8_t *input, int input_is_uint8,
                       float *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t q = input_is_uint8 ? (int32_t)input[i] : (int32_t)((const int8_t *)input)[i];
        output[i] = (float)((double)p->scale * (double)(q - p->zero_point));
    }
}
