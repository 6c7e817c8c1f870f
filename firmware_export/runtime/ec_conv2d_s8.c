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
    return (int8_t)ec_offset_and_clamp(scaled, p->output_zero_point, p->activation_min,
                                       p->activation_max);
}

/* All taps of output (oy, ox) inside the image? Then the folded bias applies. */
static int taps_inside(const ec_conv_params *p, int32_t oy, int32_t ox)
{
    const int32_t y0 = oy * p->stride_height - p->pad_top;
    const int32_t x0 = ox * p->stride_width - p->pad_left;
    return y0 >= 0 && y0 + (p->kernel_height - 1) * p->dilation_height < p->height &&
           x0 >= 0 && x0 + (p->kernel_width - 1) * p->dilation_width < p->width;
}

/* An interior output: folded bias + sum of w * x, each kernel row one dot product
   when its taps are contiguous (dilation 1). */
static int32_t conv_interior(const ec_conv_params *p, const int8_t *input, int32_t b,
                             int32_t oy, int32_t ox, int32_t oc)
{
    const int32_t y0 = oy * p->stride_height - p->pad_top;
    const int32_t x0 = ox * p->stride_width - p->pad_left;
    const int32_t row_taps = p->kernel_width * p->in_channels;
    int32_t raw = 0;
    int32_t ky, kx;
    for (ky = 0; ky < p->kernel_height; ++ky) {
        const int8_t *x = input + ((b * p->height + y0 + ky * p->dilation_height) * p->width + x0) *
                                      p->in_channels;
        const int8_t *w = p->weights + (oc * p->kernel_height + ky) * row_taps;
        if (p->dilation_width == 1) {
            raw += ec_dot_s8(w, x, row_taps);
        } else {
            for (kx = 0; kx < p->kernel_width; ++kx) {
                raw += ec_dot_s8(w + kx * p->in_channels,
                                 x + kx * p->dilation_width * p->in_channels, p->in_channels);
            }
        }
    }
    return p->folded_bias[oc] + raw;
}

void ec_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_height; ++oy) {
            for (ox = 0; ox < p->out_width; ++ox) {
                if (taps_inside(p, oy, ox)) {
                    for (oc = 0; oc < p->out_channels; ++oc) {
                        output[((b * p->out_height + oy) * p->out_width + ox) *
                               p->out_channels + oc] =
                            requantize_output(p, conv_interior(p, input, b, oy, ox, oc), oc);
                    }
                    continue;
                }
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

/* An interior depthwise output: folded bias + sum of w * x over the taps. */
static int32_t depthwise_interior(const ec_conv_params *p, const int8_t *input, int32_t b,
                                  int32_t oy, int32_t ox, int32_t ic, int32_t oc)
{
    const int32_t y0 = oy * p->stride_height - p->pad_top;
    const int32_t x0 = ox * p->stride_width - p->pad_left;
    int32_t raw = 0;
    int32_t ky, kx;
    for (ky = 0; ky < p->kernel_height; ++ky) {
        const int8_t *x = input + ((b * p->height + y0 + ky * p->dilation_height) * p->width +
                                   x0) * p->in_channels + ic;
        const int8_t *w = p->weights + ky * p->kernel_width * p->out_channels + oc;
        for (kx = 0; kx < p->kernel_width; ++kx) {
            raw += w[kx * p->out_channels] * x[kx * p->dilation_width * p->in_channels];
        }
    }
    return p->folded_bias[oc] + raw;
}

void ec_depthwise_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_height; ++oy) {
            for (ox = 0; ox < p->out_width; ++ox) {
                if (taps_inside(p, oy, ox)) {
                    for (ic = 0; ic < p->in_channels; ++ic) {
                        for (m = 0; m < p->depth_multiplier; ++m) {
                            const int32_t oc = ic * p->depth_multiplier + m;
                            output[((b * p->out_height + oy) * p->out_width + ox) *
                                   p->out_channels + oc] =
                                requantize_output(p, depthwise_interior(p, input, b, oy, ox, ic,
                                                                        oc), oc);
                        }
                    }
                    continue;
                }
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
