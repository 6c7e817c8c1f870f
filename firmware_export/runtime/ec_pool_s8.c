/* MAX_POOL_2D and AVERAGE_POOL_2D, int8 (reference/pooling.py, TFLite
 * integer_ops/pooling.h): only the taps inside the image count; the average
 * rounds half away from zero with C's truncating division. */
#include "ec_runtime.h"

static void pool(const ec_pool_params *p, const int8_t *input, int8_t *output, int is_max)
{
    int32_t b, oy, ox, c, iy, ix;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_height; ++oy) {
            int32_t y_start, y_end;
            ec_pool_window(oy, p->stride_height, p->pad_top, p->filter_height, p->height,
                           &y_start, &y_end);
            for (ox = 0; ox < p->out_width; ++ox) {
                int32_t x_start, x_end;
                ec_pool_window(ox, p->stride_width, p->pad_left, p->filter_width, p->width,
                               &x_start, &x_end);
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                for (c = 0; c < p->channels; ++c) {
                    int32_t acc = is_max ? -128 : 0;
                    for (iy = y_start; iy < y_end; ++iy) {
                        for (ix = x_start; ix < x_end; ++ix) {
                            const int32_t v =
                                input[((b * p->height + iy) * p->width + ix) * p->channels + c];
                            if (is_max) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                        }
                    }
                    if (!is_max && count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    output[((b * p->out_height + oy) * p->out_width + ox) * p->channels + c] =
                        (int8_t)ec_clamp(acc, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

void ec_max_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, 1);
}

void ec_average_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, 0);
}
