/* Microcontroller kernels for CONV_2D, FULLY_CONNECTED and DEPTHWISE_CONV_2D, int8.
 * The same sums as ec_conv2d_s8.c / ec_fully_connected_s8.c (twins of reference/conv2d.py,
 * depthwise_conv2d.py, fully_connected.py), arranged for in-order cores:
 *  - requantization inline and branch-free (ec_mcu_requantize; the exporter checked
 *    the conditions that make it exact, layer by layer);
 *  - convolution as a GEMM over 2 pixels x 2 output channels, so each loaded input
 *    word serves two channels and each weight word two pixels; a KxK kernel first
 *    copies the two patches into a scratch buffer, with the input zero point where a
 *    tap falls outside the image: such a tap then adds w * zero_point, which the folded
 *    bias (bias - zero_point * sum w) cancels, so border outputs take the same path;
 *  - on cores with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55),
 *    four bytes per load, SXTB16 (bytes 0,2 and, with the rotation folded into the
 *    instruction, bytes 1,3) and SMLAD dual multiply-accumulates; elsewhere (Cortex-M0/M3,
 *    hosts) plain C loops with the same sums.
 * Every accumulator is the exact integer sum (lowering bounded |acc| below 2^31, the
 * exporter below 2^30 for these kernels), so the order of the additions does not matter. */
#include "ec_runtime.h"

/* gcc's pre-register-allocation scheduling hoists the loads and sign extensions of all
   taps ahead of their multiply-accumulates and then spills them to the stack; keeping the
   source order keeps each tap's values in registers (-fschedule-insns off, here only). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

/* ---- dual 16-bit multiply-accumulate helpers (DSP cores) ------------------------------ */

#if defined(__ARM_FEATURE_DSP)
static inline uint32_t ec_load32(const int8_t *p)
{
    uint32_t v; /* an unaligned 32-bit load (LDR allows it on ARMv7-M) */
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t sxtb16_ror8(uint32_t x) /* bytes 1 and 3, sign-extended to halves */
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* acc00..acc11 += dot of 4 bytes of rows a0, a1 with 4 bytes of weights w0, w1 */
#define EC_MCU_TILE_STEP(a0, a1, w0, w1)                                                   \
    do {                                                                                 \
        const uint32_t xa = ec_load32(a0), xb = ec_load32(a1);                           \
        const uint32_t ya = ec_load32(w0), yb = ec_load32(w1);                           \
        const uint32_t xa_e = __sxtb16(xa), xa_o = sxtb16_ror8(xa);                      \
        const uint32_t xb_e = __sxtb16(xb), xb_o = sxtb16_ror8(xb);                      \
        const uint32_t ya_e = __sxtb16(ya), ya_o = sxtb16_ror8(ya);                      \
        const uint32_t yb_e = __sxtb16(yb), yb_o = sxtb16_ror8(yb);                      \
        acc00 = (int32_t)__smlad(xa_e, ya_e, (uint32_t)acc00);                           \
        acc01 = (int32_t)__smlad(xa_e, yb_e, (uint32_t)acc01);                           \
        acc10 = (int32_t)__smlad(xb_e, ya_e, (uint32_t)acc10);                           \
        acc11 = (int32_t)__smlad(xb_e, yb_e, (uint32_t)acc11);                           \
        acc00 = (int32_t)__smlad(xa_o, ya_o, (uint32_t)acc00);                           \
        acc01 = (int32_t)__smlad(xa_o, yb_o, (uint32_t)acc01);                           \
        acc10 = (int32_t)__smlad(xb_o, ya_o, (uint32_t)acc10);                           \
        acc11 = (int32_t)__smlad(xb_o, yb_o, (uint32_t)acc11);                           \
    } while (0)
#endif

/* ---- the GEMM: out[p][o] = requantize(folded_bias[o] + sum_k a[p][k] * w[o][k]) ------- */

/* Two pixels (rows a0, a1) x two channels (weight rows w0, w1), depth k. */
static inline void tile_2x2(const int8_t *a0, const int8_t *a1, const int8_t *w0,
                            const int8_t *w1, int32_t depth, int32_t out[4])
{
    int32_t acc00 = 0, acc01 = 0, acc10 = 0, acc11 = 0;
    int32_t k = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; k + 8 <= depth; k += 8) {
        EC_MCU_TILE_STEP(a0 + k, a1 + k, w0 + k, w1 + k);
        EC_MCU_TILE_STEP(a0 + k + 4, a1 + k + 4, w0 + k + 4, w1 + k + 4);
    }
    if (k + 4 <= depth) {
        EC_MCU_TILE_STEP(a0 + k, a1 + k, w0 + k, w1 + k);
        k += 4;
    }
#endif
    for (; k < depth; ++k) {
        const int32_t xa = a0[k], xb = a1[k], ya = w0[k], yb = w1[k];
        acc00 += xa * ya;
        acc01 += xa * yb;
        acc10 += xb * ya;
        acc11 += xb * yb;
    }
    out[0] = acc00;
    out[1] = acc01;
    out[2] = acc10;
    out[3] = acc11;
}

/* One pixel x one channel (the odd pixel or channel left over). */
static inline int32_t dot_1x1(const int8_t *a, const int8_t *w, int32_t depth)
{
    int32_t acc = 0;
    int32_t k = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; k + 4 <= depth; k += 4) {
        const uint32_t x = ec_load32(a + k), y = ec_load32(w + k);
        acc = (int32_t)__smlad(__sxtb16(x), __sxtb16(y), (uint32_t)acc);
        acc = (int32_t)__smlad(sxtb16_ror8(x), sxtb16_ror8(y), (uint32_t)acc);
    }
#endif
    for (; k < depth; ++k) {
        acc += a[k] * w[k];
    }
    return acc;
}

/* `pixels` rows of `depth` bytes, a_stride bytes apart, times the layer's weights;
   the output rows are out_channels bytes apart. */
static void gemm(const ec_mcu_conv_params *p, int32_t depth, const int8_t *a, int32_t a_stride,
                 int32_t pixels, int8_t *out)
{
    const int32_t channels = p->out_channels;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    int32_t px, oc;
    for (px = 0; px + 2 <= pixels; px += 2) {
        const int8_t *a0 = a + px * a_stride;
        const int8_t *a1 = a0 + a_stride;
        int8_t *out0 = out + px * channels;
        int8_t *out1 = out0 + channels;
        const int8_t *w = p->weights;
        for (oc = 0; oc + 2 <= channels; oc += 2, w += 2 * depth) {
            int32_t acc[4];
            const int32_t b0 = p->folded_bias[oc], b1 = p->folded_bias[oc + 1];
            tile_2x2(a0, a1, w, w + depth, depth, acc);
            out0[oc] = ec_mcu_output_value(o, acc[0] + b0, oc);
            out0[oc + 1] = ec_mcu_output_value(o, acc[1] + b1, oc + 1);
            out1[oc] = ec_mcu_output_value(o, acc[2] + b0, oc);
            out1[oc + 1] = ec_mcu_output_value(o, acc[3] + b1, oc + 1);
        }
        if (oc < channels) {
            const int32_t b = p->folded_bias[oc];
            out0[oc] = ec_mcu_output_value(o, b + dot_1x1(a0, w, depth), oc);
            out1[oc] = ec_mcu_output_value(o, b + dot_1x1(a1, w, depth), oc);
        }
    }
    if (px < pixels) {
        const int8_t *a0 = a + px * a_stride;
        int8_t *out0 = out + px * channels;
        const int8_t *w = p->weights;
        for (oc = 0; oc < channels; ++oc, w += depth) {
            out0[oc] = ec_mcu_output_value(o, p->folded_bias[oc] + dot_1x1(a0, w, depth), oc);
        }
    }
}

/* The KxK patch of output pixel (oy, ox) as one row of kh * kw * in_channels bytes,
   the input zero point where a tap lies outside the image. */
static void im2col_patch(const ec_mcu_conv_params *p, const int8_t *image, int32_t oy,
                         int32_t ox, int8_t *patch)
{
    const int32_t c = p->in_channels;
    const int32_t y0 = oy * p->stride_height - p->pad_top;
    const int32_t x0 = ox * p->stride_width - p->pad_left;
    int32_t ky, kx;
    for (ky = 0; ky < p->kernel_height; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_height;
        for (kx = 0; kx < p->kernel_width; ++kx, patch += c) {
            const int32_t ix = x0 + kx * p->dilation_width;
            if (iy < 0 || iy >= p->height || ix < 0 || ix >= p->width) {
                memset(patch, (int)(int8_t)p->input_zero_point, (size_t)c);
            } else {
                memcpy(patch, image + (iy * p->width + ix) * c, (size_t)c);
            }
        }
    }
}

void ec_mcu_conv2d_s8(const ec_mcu_conv_params *p, const int8_t *input, int8_t *output,
                      int8_t *scratch)
{
    const int32_t depth = p->kernel_height * p->kernel_width * p->in_channels;
    const int32_t out_pixels = p->out_height * p->out_width;
    const int32_t in_image = p->height * p->width * p->in_channels;
    int32_t b, oy, k;
    for (b = 0; b < p->batch; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * out_pixels * p->out_channels;
        if (scratch == NULL) { /* 1x1, no padding: the pixels are the GEMM's rows */
            if (p->stride_height == 1 && p->stride_width == 1) {
                gemm(p, depth, image, depth, out_pixels, out);
                continue;
            }
            for (oy = 0; oy < p->out_height; ++oy) {
                gemm(p, depth, image + oy * p->stride_height * p->width * depth,
                     p->stride_width * depth, p->out_width,
                     out + oy * p->out_width * p->out_channels);
            }
            continue;
        }
        for (k = 0; k < out_pixels; k += 2) {
            const int32_t pair = out_pixels - k < 2 ? 1 : 2;
            im2col_patch(p, image, k / p->out_width, k % p->out_width, scratch);
            if (pair == 2) {
                im2col_patch(p, image, (k + 1) / p->out_width, (k + 1) % p->out_width,
                             scratch + depth);
            }
            gemm(p, depth, scratch, depth, pair, out + k * p->out_channels);
        }
    }
}

void ec_mcu_fully_connected_s8(const ec_mcu_conv_params *p, int32_t rows, const int8_t *input,
                               int8_t *output)
{
    gemm(p, p->in_channels, input, p->in_channels, rows, output);
}

/* ---- depthwise (depth multiplier 1, channels a multiple of 4) -----------------------
 * Weights are packed by the exporter as [channels / 4][kh * kw][4]: the taps of four
 * channels are consecutive words. The sum of a channel is acc = start + sum over the
 * taps inside the image of w * (x + offset): interior pixels start from the folded bias
 * with offset 0, border pixels from the bias with offset -input_zero_point (TFLite skips
 * the taps outside the image). */

#if defined(__ARM_FEATURE_DSP)
/* a0..a3 (channels c..c+3) += 4 input bytes at x times 4 weight bytes at w */
#define EC_MCU_DW_TAP(x, w)                                                              \
    do {                                                                                 \
        const uint32_t xv = ec_load32(x), wv = ec_load32(w);                             \
        const uint32_t xe = __sxtb16(xv), xo = sxtb16_ror8(xv);                          \
        const uint32_t we = __sxtb16(wv), wo = sxtb16_ror8(wv);                          \
        a0 = __smlabb((int32_t)xe, (int32_t)we, a0);                                     \
        a2 = __smlatt((int32_t)xe, (int32_t)we, a2);                                     \
        a1 = __smlabb((int32_t)xo, (int32_t)wo, a1);                                     \
        a3 = __smlatt((int32_t)xo, (int32_t)wo, a3);                                     \
    } while (0)

/* the same for a border pixel: x + offset (x - input zero point, |.| <= 255 in int16) */
#define EC_MCU_DW_TAP_OFFSET(x, w, offset2)                                              \
    do {                                                                                 \
        const uint32_t xv = ec_load32(x), wv = ec_load32(w);                             \
        const uint32_t xe = __sadd16(__sxtb16(xv), offset2);                             \
        const uint32_t xo = __sadd16(sxtb16_ror8(xv), offset2);                          \
        const uint32_t we = __sxtb16(wv), wo = sxtb16_ror8(wv);                          \
        a0 = __smlabb((int32_t)xe, (int32_t)we, a0);                                     \
        a2 = __smlatt((int32_t)xe, (int32_t)we, a2);                                     \
        a1 = __smlabb((int32_t)xo, (int32_t)wo, a1);                                     \
        a3 = __smlatt((int32_t)xo, (int32_t)wo, a3);                                     \
    } while (0)
#endif

/* An interior output pixel of a 3x3 depthwise: x = its top-left tap, row = bytes per
   input row, col = bytes between horizontal taps. */
static void depthwise_3x3_interior(const ec_mcu_conv_params *p, const int8_t *x, int32_t row,
                                   int32_t col, int8_t *out)
{
    const int32_t channels = p->out_channels;
    const int8_t *w = p->weights;
    const int32_t *bias = p->folded_bias;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    int32_t c;
    for (c = 0; c < channels; c += 4, x += 4, w += 36) {
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        const int8_t *r0 = x, *r1 = x + row, *r2 = x + 2 * row;
#if defined(__ARM_FEATURE_DSP)
        EC_MCU_DW_TAP(r0, w);
        EC_MCU_DW_TAP(r0 + col, w + 4);
        EC_MCU_DW_TAP(r0 + 2 * col, w + 8);
        EC_MCU_DW_TAP(r1, w + 12);
        EC_MCU_DW_TAP(r1 + col, w + 16);
        EC_MCU_DW_TAP(r1 + 2 * col, w + 20);
        EC_MCU_DW_TAP(r2, w + 24);
        EC_MCU_DW_TAP(r2 + col, w + 28);
        EC_MCU_DW_TAP(r2 + 2 * col, w + 32);
#else
        const int8_t *rows[3];
        int32_t t, k;
        int32_t acc[4];
        rows[0] = r0, rows[1] = r1, rows[2] = r2;
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
        for (t = 0; t < 9; ++t) {
            const int8_t *tap = rows[t / 3] + (t % 3) * col;
            for (k = 0; k < 4; ++k) {
                acc[k] += tap[k] * w[4 * t + k];
            }
        }
        a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#endif
        out[c] = ec_mcu_output_value(o, a0, c);
        out[c + 1] = ec_mcu_output_value(o, a1, c + 1);
        out[c + 2] = ec_mcu_output_value(o, a2, c + 2);
        out[c + 3] = ec_mcu_output_value(o, a3, c + 3);
    }
}

/* Any output pixel: taps ky in [ky0, ky1), kx in [kx0, kx1) of the window whose
   top-left tap is at x. */
static void depthwise_pixel(const ec_mcu_conv_params *p, const int8_t *x, int32_t row,
                            int32_t col, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1,
                            const int32_t *start, int32_t offset, int8_t *out)
{
    const int32_t channels = p->out_channels;
    const int32_t kw = p->kernel_width, taps = p->kernel_height * kw;
    const int8_t *w = p->weights;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    int32_t c, ky, kx;
#if defined(__ARM_FEATURE_DSP)
    const uint32_t offset2 = ((uint32_t)offset & 0xFFFFu) * 0x10001u;
    for (c = 0; c < channels; c += 4, x += 4, w += 4 * taps) {
        int32_t a0 = start[c], a1 = start[c + 1], a2 = start[c + 2], a3 = start[c + 3];
        for (ky = ky0; ky < ky1; ++ky) {
            const int8_t *tap = x + ky * row + kx0 * col;
            const int8_t *wt = w + 4 * (ky * kw + kx0);
            for (kx = kx0; kx < kx1; ++kx, tap += col, wt += 4) {
                EC_MCU_DW_TAP_OFFSET(tap, wt, offset2);
            }
        }
#else
    int32_t k;
    for (c = 0; c < channels; c += 4, x += 4, w += 4 * taps) {
        int32_t acc[4];
        int32_t a0, a1, a2, a3;
        for (k = 0; k < 4; ++k) {
            acc[k] = start[c + k];
        }
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const int8_t *tap = x + ky * row + kx * col;
                const int8_t *wt = w + 4 * (ky * kw + kx);
                for (k = 0; k < 4; ++k) {
                    acc[k] += wt[k] * (tap[k] + offset);
                }
            }
        }
        a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#endif
        out[c] = ec_mcu_output_value(o, a0, c);
        out[c + 1] = ec_mcu_output_value(o, a1, c + 1);
        out[c + 2] = ec_mcu_output_value(o, a2, c + 2);
        out[c + 3] = ec_mcu_output_value(o, a3, c + 3);
    }
}

/* first tap index k with 0 <= origin + k * step, and one past the last below size */
static int32_t first_tap(int32_t origin, int32_t step)
{
    return origin >= 0 ? 0 : (-origin + step - 1) / step;
}

static int32_t end_tap(int32_t origin, int32_t step, int32_t taps, int32_t size)
{
    int32_t k = taps;
    while (k > 0 && origin + (k - 1) * step >= size) {
        --k;
    }
    return k;
}

void ec_mcu_depthwise_conv2d_s8(const ec_mcu_conv_params *p, const int8_t *input,
                                int8_t *output)
{
    const int32_t kh = p->kernel_height, kw = p->kernel_width, channels = p->out_channels;
    const int32_t row = p->width * channels, col = p->dilation_width * channels;
    const int32_t in_image = p->height * row;
    const int is_3x3 = kh == 3 && kw == 3;
    int32_t b, oy, ox;
    for (b = 0; b < p->batch; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * p->out_height * p->out_width * channels;
        for (oy = 0; oy < p->out_height; ++oy) {
            const int32_t y0 = oy * p->stride_height - p->pad_top;
            const int32_t ky0 = first_tap(y0, p->dilation_height);
            const int32_t ky1 = end_tap(y0, p->dilation_height, kh, p->height);
            const int32_t drow = p->dilation_height * row;
            for (ox = 0; ox < p->out_width; ++ox, out += channels) {
                const int32_t x0 = ox * p->stride_width - p->pad_left;
                const int32_t kx0 = first_tap(x0, p->dilation_width);
                const int32_t kx1 = end_tap(x0, p->dilation_width, kw, p->width);
                /* may point before the image; only taps inside it are read */
                const int8_t *x = image + (ptrdiff_t)y0 * row + (ptrdiff_t)x0 * channels;
                if (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw) {
                    if (is_3x3) {
                        depthwise_3x3_interior(p, x, drow, col, out);
                    } else {
                        depthwise_pixel(p, x, drow, col, 0, kh, 0, kw, p->folded_bias, 0, out);
                    }
                } else {
                    depthwise_pixel(p, x, drow, col, ky0, ky1, kx0, kx1, p->bias,
                                    -p->input_zero_point, out);
                }
            }
        }
    }
}
