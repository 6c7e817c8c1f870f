/* Elementwise int8/uint8 ops (LOGISTIC, HARD_SWISH, RELU, RELU6, RELU_N1_TO_1,
 * QUANTIZE between int8 and uint8) as a 256-entry table of the op's values,
 * computed by the exporter with the reference kernel itself. */
#include "ec_runtime.h"

void ec_lut_u8(const ec_lut_params *p, const uint8_t *input, uint8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->table[(uint8_t)(input[i] ^ p->flip)];
    }
}
