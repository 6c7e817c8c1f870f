/* TRANSPOSE (reference/layout.py transpose), on the collapsed form the exporter
 * writes (reference/layout.py transpose_walk): the output is written in order,
 * one row (last output dimension) at a time, gathering from the input; a row
 * whose input is contiguous (the last input dimension stayed last) is one memcpy.
 * Also used for a graph input's transpose, done while copying the input in. */
#include "ec_runtime.h"

static void ec_transpose_row(const uint8_t *in, uint8_t *out, int32_t n, int32_t stride,
                             int32_t element_size)
{
    int32_t i;
    if (stride == 1) {
        memcpy(out, in, (size_t)n * (size_t)element_size);
        return;
    }
    switch (element_size) {
    case 1:
        for (i = 0; i < n; ++i) {
            out[i] = in[i * stride];
        }
        break;
    case 2:
        for (i = 0; i < n; ++i) {
            ((uint16_t *)(void *)out)[i] = ((const uint16_t *)(const void *)in)[i * stride];
        }
        break;
    case 4:
        for (i = 0; i < n; ++i) {
            ((uint32_t *)(void *)out)[i] = ((const uint32_t *)(const void *)in)[i * stride];
        }
        break;
    default:
        for (i = 0; i < n; ++i) {
            ((uint64_t *)(void *)out)[i] = ((const uint64_t *)(const void *)in)[i * stride];
        }
        break;
    }
}

void ec_transpose(const ec_transpose_params *p, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const int32_t last = p->rank - 1;
    const int32_t row = p->out_shape[last];
    int32_t index[6] = {0, 0, 0, 0, 0, 0};
    int32_t offset = 0, rows = 1, k;
    for (k = 0; k < last; ++k) {
        rows *= p->out_shape[k];
    }
    if (row == 0) {
        return;
    }
    for (; rows > 0; --rows) {
        ec_transpose_row(in + (size_t)offset * (size_t)p->element_size, out, row,
                         p->in_stride[last], p->element_size);
        out += (size_t)row * (size_t)p->element_size;
        for (k = last - 1; k >= 0; --k) { /* next row: an odometer over the outer dims */
            offset += p->in_stride[k];
            if (++index[k] < p->out_shape[k]) {
                break;
            }
            offset -= p->in_stride[k] * p->out_shape[k];
            index[k] = 0;
        }
    }
}
