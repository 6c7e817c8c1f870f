/* Ops that only move bytes (reference/layout.py): PAD, CONCATENATION (one
 * input at a time), SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND. Padding writes the
 * zero point. */
#include "ec_runtime.h"

void ec_pad_s8(const ec_pad_params *p, const int8_t *input, int8_t *output)
{
    int32_t o0, o1, o2, o3;
    int32_t k = 0;
    for (o0 = 0; o0 < p->out_shape[0]; ++o0) {
        for (o1 = 0; o1 < p->out_shape[1]; ++o1) {
            for (o2 = 0; o2 < p->out_shape[2]; ++o2) {
                for (o3 = 0; o3 < p->out_shape[3]; ++o3) {
                    const int32_t i0 = o0 - p->before[0], i1 = o1 - p->before[1];
                    const int32_t i2 = o2 - p->before[2], i3 = o3 - p->before[3];
                    const int inside = i0 >= 0 && i0 < p->in_shape[0] && i1 >= 0 &&
                                       i1 < p->in_shape[1] && i2 >= 0 && i2 < p->in_shape[2] &&
                                       i3 >= 0 && i3 < p->in_shape[3];
                    output[k++] = inside ? input[((i0 * p->in_shape[1] + i1) * p->in_shape[2] +
                                                  i2) * p->in_shape[3] + i3]
                                         : p->pad_value;
                }
            }
        }
    }
}

void ec_concat_part(const ec_concat_part_params *p, const uint8_t *input, uint8_t *output)
{
    int32_t outer, i;
    for (outer = 0; outer < p->outer; ++outer) {
        for (i = 0; i < p->inner_in; ++i) {
            output[outer * p->inner_out + p->offset + i] = input[outer * p->inner_in + i];
        }
    }
}

/* Batch index of block (dy, dx) for image b is (dy * block_w + dx) * batch + b. */
void ec_space_to_batch_s8(const ec_space_batch_params *p, const int8_t *input, int8_t *output)
{
    const int32_t batch = p->in_shape[0];
    int32_t ob, oy, ox, c;
    for (ob = 0; ob < p->out_shape[0]; ++ob) {
        const int32_t b = ob % batch, block = ob / batch;
        const int32_t dy = block / p->block[1], dx = block % p->block[1];
        for (oy = 0; oy < p->out_shape[1]; ++oy) {
            const int32_t iy = oy * p->block[0] + dy - p->before[0];
            for (ox = 0; ox < p->out_shape[2]; ++ox) {
                const int32_t ix = ox * p->block[1] + dx - p->before[1];
                const int inside = iy >= 0 && iy < p->in_shape[1] && ix >= 0 &&
                                   ix < p->in_shape[2];
                for (c = 0; c < p->out_shape[3]; ++c) {
                    output[((ob * p->out_shape[1] + oy) * p->out_shape[2] + ox) *
                           p->out_shape[3] + c] =
                        inside ? input[((b * p->in_shape[1] + iy) * p->in_shape[2] + ix) *
                                       p->in_shape[3] + c]
                               : p->pad_value;
                }
            }
        }
    }
}

/* The inverse, with `before` holding the crops at the top and left. */
void ec_batch_to_space_s8(const ec_space_batch_params *p, const int8_t *input, int8_t *output)
{
    const int32_t batch = p->out_shape[0];
    int32_t b, oy, ox, c;
    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < p->out_shape[1]; ++oy) {
            const int32_t y = oy + p->before[0];
            const int32_t dy = y % p->block[0], iy = y / p->block[0];
            for (ox = 0; ox < p->out_shape[2]; ++ox) {
                const int32_t x = ox + p->before[1];
                const int32_t dx = x % p->block[1], ix = x / p->block[1];
                const int32_t ib = (dy * p->block[1] + dx) * batch + b;
                for (c = 0; c < p->out_shape[3]; ++c) {
                    output[((b * p->out_shape[1] + oy) * p->out_shape[2] + ox) *
                           p->out_shape[3] + c] =
                        input[((ib * p->in_shape[1] + iy) * p->in_shape[2] + ix) *
                              p->in_shape[3] + c];
                }
            }
        }
    }
}
