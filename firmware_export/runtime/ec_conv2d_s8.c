/* CONV_2D and DEPTHWISE_CONV_2D, int8. Twins of reference/conv2d.py and
 * reference/depthwise_conv2d.py (TFLite integer_ops/conv.h, depthwise_conv.h):
 * acc = bias + sum of w * (x - input_zero_point) over the taps inside the image
 * (a skipped tap is a tap reading the zero point), then requantize, add the
 * output zero point, clamp. The accumulator fits in int32: lowering checked
 * the bound for every output channel. */
#include "ec_runtime.h"

static int8_t requantize_output(const ec_conv_params *p, int32_t acc, int32_t channel)
{
    const int32_t scaled = ec_multiply_by_quantized_multiplier(
        acc, p->requant.multiplier[channel], p->requant.shift[channel], p->requant.rounding);
    return (int8_t)ec_clamp(scaled + p->output_zero_point, p->activation_min, p->activation_max);
}

void ec_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_height; ++oy) {
            for (ox = 0; ox < p->out_width; ++ox) {
                for (oc = 0; oc < p->out_channels; ++oc) {
                    int32_t acc = p->bias[oc];
                    for (ky = 0; ky < p->kernel_height; ++ky) {
                        const int32_t iy = oy * p->stride_height - p->pad_top +
                                           ky * p->dilation_height;
                        if (iy < 0 || iy >= p->height) {
                            continue;
                        }
                        for (kx = 0; kx < p->kernel_width; ++kx) {
                            const int32_t ix = ox * p->stride_width - p->pad_left +
                                               kx * p->dilation_width;
                            const int8_t *x;
                            const int8_t *w;
                            if (ix < 0 || ix >= p->width) {
                                continue;
                            }
                            x = input + ((b * p->height + iy) * p->width + ix) * p->in_channels;
                            w = p->weights +
                                ((oc * p->kernel_height + ky) * p->kernel_width + kx) *
                                    p->in_channels;
                            for (ic = 0; ic < p->in_channels; ++ic) {
                                acc += (int32_t)w[ic] * ((int32_t)x[ic] - p->input_zero_point);
                            }
                        }
                    }
                    output[((b * p->out_height + oy) * p->out_width + ox) * p->out_channels + oc] =
                        requantize_output(p, acc, oc);
                }
            }
        }
    }
}

void ec_depthwise_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_height; ++oy) {
            for (ox = 0; ox < p->out_width; ++ox) {
                for (ic = 0; ic < p->in_channels; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int32_t acc = p->bias[oc];
                        for (ky = 0; ky < p->kernel_height; ++ky) {
                            const int32_t iy = oy * p->stride_height - p->pad_top +
                                               ky * p->dilation_height;
                            if (iy < 0 || iy >= p->height) {
                                continue;
                            }
                            for (kx = 0; kx < p->kernel_width; ++kx) {
                                const int32_t ix = ox * p->stride_width - p->pad_left +
                                                   kx * p->dilation_width;
                                int32_t x;
                                if (ix < 0 || ix >= p->width) {
                                    continue;
                                }
                                x = input[((b * p->height + iy) * p->width + ix) * p->in_channels +
                                          ic];
                                acc += (int32_t)p->weights[(ky * p->kernel_width + kx) *
                                                               p->out_channels + oc] *
                                       (x - p->input_zero_point);
                            }
                        }
                        output[((b * p->out_height + oy) * p->out_width + ox) * p->out_channels +
                               oc] = requantize_output(p, acc, oc);
                    }
                }
            }
        }
    }
}
