/* CONV_2D, FULLY_CONNECTED and DEPTHWISE_CONV_2D of C exported for AArch64 (`make aarch64`, a
 * Raspberry Pi 3/4/5): drivers over the NEON / SDOT kernels of ec_a64_neon.h, the code the
 * Python core runs on the same CPUs, so the exported C and the core share one home per
 * kernel. The SDOT GEMM is compiled in when the target has the dot product
 * (-mcpu=cortex-a76, -march=armv8.2-a+dotprod: __ARM_FEATURE_DOTPROD), the NEON one
 * otherwise. Twins of reference/conv2d.py, depthwise_conv2d.py and fully_connected.py with
 * double rounding (the exporter sends any other requantization to the portable kernels).
 * On other targets this file is empty: their layers keep the portable or Cortex-M kernels. */
#include "ec_runtime.h"

#if EC_A64
#include "ec_a64_neon.h"

/* The input, or its copy padded with the zero point into `padded` when windows leave it. */
static const int8_t *ec_a64_padded_input(const ec_a64_conv_params *p, const int8_t *input,
                                         int8_t *padded)
{
    const size_t row = (size_t)p->width * (size_t)p->in_channels;
    const size_t padded_row = (size_t)p->padded_width * (size_t)p->in_channels;
    int32_t b, y;
    if (p->padded_height == p->height && p->padded_width == p->width)
        return input;
    memset(padded, p->input_zero_point,
           (size_t)p->batch * (size_t)p->padded_height * padded_row);
    for (b = 0; b < p->batch; ++b)
        for (y = 0; y < p->height; ++y)
            memcpy(padded + ((size_t)b * (size_t)p->padded_height + (size_t)(y + p->pad_top))
                                * padded_row + (size_t)p->pad_left * (size_t)p->in_channels,
                   input + ((size_t)b * (size_t)p->height + (size_t)y) * row, row);
    return padded;
}

static ec_conv_geometry ec_a64_geometry(const ec_a64_conv_params *p)
{
    const ec_conv_geometry g = {p->in_channels, p->out_height, p->out_width,
                                p->kernel_height, p->kernel_width, p->stride_height,
                                p->stride_width, p->dilation_height, p->dilation_width,
                                p->padded_height, p->padded_width};
    return g;
}

/* Double rounding, in the GEMM's registers (ec_a64_neon.h). */
static ec_gemm_out ec_a64_output(const ec_a64_conv_params *p)
{
    const ec_gemm_out out = {EC_OUT_DOUBLE, p->multiplier, p->left, p->right, NULL,
                             p->output_zero_point, p->activation_min, p->activation_max};
    return out;
}

/* Blocks of up to EC_GEMM_MAX_PIXELS output pixels (over batch x height x width) on the
   packed GEMM, windows read in place or copied (im2col) after the padded input. */
void ec_a64_conv2d_s8(const ec_a64_conv_params *p, const int8_t *input, int8_t *output,
                      int8_t *scratch)
{
    const ec_conv_geometry g = ec_a64_geometry(p);
    const ec_gemm_out out = ec_a64_output(p);
    const int8_t *x = ec_a64_padded_input(p, input, scratch);
    const size_t padded_bytes = x == input ? 0 : (size_t)p->batch * (size_t)g.hp
                                                     * (size_t)g.wp * (size_t)g.cin;
    uint8_t *rows = (uint8_t *)scratch + padded_bytes;
    const ptrdiff_t total = (ptrdiff_t)p->batch * g.oh * g.ow, cout = p->out_channels;
    const ptrdiff_t no_offset = 0;
    ec_gemm_windows win;
    ptrdiff_t start;
    if (p->windows == EC_A64_IN_PLACE) {
        win.tap_offset = p->tap_offset;
        win.ntaps = g.kh * g.kw;
    } else {
        win.tap_offset = &no_offset;
        win.ntaps = 1;
    }
    win.kq_per_tap = p->depth / 4;
    for (start = 0; start < total; start += EC_GEMM_MAX_PIXELS) {
        win.pixels = total - start < EC_GEMM_MAX_PIXELS ? total - start : EC_GEMM_MAX_PIXELS;
        if (p->windows == EC_A64_IN_PLACE)
            ec_window_corners(&win, (const uint8_t *)x, &g, start);
        else
            ec_a64_windows(&win, rows, p->depth, x, &g, start);
#if defined(__ARM_FEATURE_DOTPROD)
        ec_a64_gemm_sdot(&win, p->weights, p->folded_bias, cout, &out, output + start * cout,
                         cout);
#else
        ec_a64_gemm_neon(&win, p->weights, p->folded_bias, cout, &out, output + start * cout,
                         cout, p->pairs);
#endif
    }
}

/* One output row at a time on 16 lanes (channels, or 16 / channels whole pixels). */
void ec_a64_depthwise_conv2d_s8(const ec_a64_conv_params *p, const int8_t *input,
                                int8_t *output, int8_t *scratch)
{
    const ec_gemm_out out = ec_a64_output(p);
    const int8_t *x = ec_a64_padded_input(p, input, scratch);
    const ptrdiff_t cin = p->in_channels, ow = p->out_width, cout = p->out_channels;
    const ptrdiff_t per_vector = p->windows, rows = (ptrdiff_t)p->batch * p->out_height;
    const ptrdiff_t vectors = (ow + per_vector - 1) / per_vector;
    const ptrdiff_t pixel_step = per_vector > 1 ? 16 : p->stride_width * cin;
    const ptrdiff_t out_step = per_vector > 1 ? 16 : cout;
    const ptrdiff_t lanes = per_vector > 1 ? 16 : cout;
    ptrdiff_t row;
    for (row = 0; row < rows; ++row) {
        const ptrdiff_t b = row / p->out_height, oy = row % p->out_height;
        ec_a64_depthwise_row(x + (b * p->padded_height + oy * p->stride_height)
                                     * p->padded_width * cin,
                             vectors, pixel_step, out_step, ow * cout, p->tap_offset,
                             (ptrdiff_t)p->kernel_height * p->kernel_width, p->weights,
                             p->folded_bias, lanes, p->depth, &out, output + row * ow * cout,
                             p->pairs);
    }
}

#else
typedef int ec_a64_s8_is_empty_here; /* ISO C wants a declaration in every file */
#endif
