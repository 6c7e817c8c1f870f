/* Microcontroller kernels for CONV_2D, FULLY_CONNECTED and DEPTHWISE_CONV_2D, int8.
 * The same sums as ec_conv2d_s8.c / ec_fully_connected_s8.c (twins of reference/conv2d.py,
 * depthwise_conv2d.py, fully_connected.py), arranged for in-order cores:
 *  - requantization inline and branch-free (ec_mcu_output_value; the exporter checked
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

/* The small helpers below must be inlined (their accumulators then stay in registers);
   gcc's size heuristics at -O2 would otherwise call them with the accumulators in memory. */
#if defined(__GNUC__)
#define EC_MCU_INLINE static inline __attribute__((always_inline))
#else
#define EC_MCU_INLINE static inline
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

/* acc00..acc11 += 4 bytes of rows a0, a0 + a_stride times 4 bytes of the weight rows
   w, w + w_stride (each loaded word serves two products; 4 loads, 8 SXTB16, 8 SMLAD for 16
   multiply-accumulates). */
#define EC_MCU_TILE_STEP(a0, a_stride, w, w_stride)                                        \
    do {                                                                                 \
        const uint32_t ya = ec_load32(w), yb = ec_load32((w) + (w_stride));              \
        const uint32_t ya_e = __sxtb16(ya), ya_o = sxtb16_ror8(ya);                      \
        const uint32_t yb_e = __sxtb16(yb), yb_o = sxtb16_ror8(yb);                      \
        uint32_t x = ec_load32(a0);                                                      \
        uint32_t x_e = __sxtb16(x), x_o = sxtb16_ror8(x);                                \
        acc00 = (int32_t)__smlad(x_e, ya_e, (uint32_t)acc00);                            \
        acc01 = (int32_t)__smlad(x_e, yb_e, (uint32_t)acc01);                            \
        acc00 = (int32_t)__smlad(x_o, ya_o, (uint32_t)acc00);                            \
        acc01 = (int32_t)__smlad(x_o, yb_o, (uint32_t)acc01);                            \
        x = ec_load32((a0) + (a_stride));                                                \
        x_e = __sxtb16(x);                                                               \
        x_o = sxtb16_ror8(x);                                                            \
        acc10 = (int32_t)__smlad(x_e, ya_e, (uint32_t)acc10);                            \
        acc11 = (int32_t)__smlad(x_e, yb_e, (uint32_t)acc11);                            \
        acc10 = (int32_t)__smlad(x_o, ya_o, (uint32_t)acc10);                            \
        acc11 = (int32_t)__smlad(x_o, yb_o, (uint32_t)acc11);                            \
    } while (0)
#endif

/* ---- dot products (accumulating into acc[]) ------------------------------------------ */

/* Two rows (a0, a0 + a_stride) x two weight rows (w, w + w_stride) over `depth` bytes:
   acc = {00, 01, 10, 11}. Two pointers and two strides keep every value in a register. */
EC_MCU_INLINE void tile_2x2(const int8_t *a0, int32_t a_stride, const int8_t *w,
                            int32_t w_stride, int32_t depth, int32_t acc[4])
{
    int32_t acc00 = acc[0], acc01 = acc[1], acc10 = acc[2], acc11 = acc[3];
    const int8_t *end = a0 + depth;
#if defined(__ARM_FEATURE_DSP)
    for (; end - a0 >= 8; a0 += 8, w += 8) {
        EC_MCU_TILE_STEP(a0, a_stride, w, w_stride);
        EC_MCU_TILE_STEP(a0 + 4, a_stride, w + 4, w_stride);
    }
    if (end - a0 >= 4) {
        EC_MCU_TILE_STEP(a0, a_stride, w, w_stride);
        a0 += 4, w += 4;
    }
#endif
    for (; a0 < end; ++a0, ++w) {
        const int32_t xa = a0[0], xb = a0[a_stride], ya = w[0], yb = w[w_stride];
        acc00 += xa * ya;
        acc01 += xa * yb;
        acc10 += xb * ya;
        acc11 += xb * yb;
    }
    acc[0] = acc00;
    acc[1] = acc01;
    acc[2] = acc10;
    acc[3] = acc11;
}

/* One row x four weight rows (w, w + rows, w + 2 rows, w + 3 rows) over `depth` bytes. */
EC_MCU_INLINE void tile_1x4(const int8_t *a, const int8_t *w, int32_t depth, int32_t rows,
                            int32_t acc[4])
{
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    const int8_t *end = a + depth;
#if defined(__ARM_FEATURE_DSP)
    for (; end - a >= 4; a += 4, w += 4) {
        const uint32_t x = ec_load32(a);
        const uint32_t xe = __sxtb16(x), xo = sxtb16_ror8(x);
        uint32_t y = ec_load32(w);
        acc0 = (int32_t)__smlad(xe, __sxtb16(y), (uint32_t)acc0);
        acc0 = (int32_t)__smlad(xo, sxtb16_ror8(y), (uint32_t)acc0);
        y = ec_load32(w + rows);
        acc1 = (int32_t)__smlad(xe, __sxtb16(y), (uint32_t)acc1);
        acc1 = (int32_t)__smlad(xo, sxtb16_ror8(y), (uint32_t)acc1);
        y = ec_load32(w + 2 * rows);
        acc2 = (int32_t)__smlad(xe, __sxtb16(y), (uint32_t)acc2);
        acc2 = (int32_t)__smlad(xo, sxtb16_ror8(y), (uint32_t)acc2);
        y = ec_load32(w + 3 * rows);
        acc3 = (int32_t)__smlad(xe, __sxtb16(y), (uint32_t)acc3);
        acc3 = (int32_t)__smlad(xo, sxtb16_ror8(y), (uint32_t)acc3);
    }
#endif
    for (; a < end; ++a, ++w) {
        const int32_t x = *a;
        acc0 += x * w[0];
        acc1 += x * w[rows];
        acc2 += x * w[2 * rows];
        acc3 += x * w[3 * rows];
    }
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
}

/* One row x one weight row. */
EC_MCU_INLINE int32_t dot_1x1(const int8_t *a, const int8_t *w, int32_t depth, int32_t acc)
{
    const int8_t *end = a + depth;
#if defined(__ARM_FEATURE_DSP)
    for (; end - a >= 4; a += 4, w += 4) {
        const uint32_t x = ec_load32(a), y = ec_load32(w);
        acc = (int32_t)__smlad(__sxtb16(x), __sxtb16(y), (uint32_t)acc);
        acc = (int32_t)__smlad(sxtb16_ror8(x), sxtb16_ror8(y), (uint32_t)acc);
    }
#endif
    for (; a < end; ++a, ++w) {
        acc += *a * *w;
    }
    return acc;
}

/* The same with each input byte plus `offset` (minus the input zero point, for a border
   pixel: |x + offset| <= 255 fits in a halfword). */
EC_MCU_INLINE int32_t dot_1x1_offset(const int8_t *a, const int8_t *w, int32_t depth,
                                     int32_t offset, int32_t acc)
{
    const int8_t *end = a + depth;
#if defined(__ARM_FEATURE_DSP)
    const uint32_t offset2 = ((uint32_t)offset & 0xFFFFu) * 0x10001u;
    for (; end - a >= 4; a += 4, w += 4) {
        const uint32_t x = ec_load32(a), y = ec_load32(w);
        acc = (int32_t)__smlad(__sadd16(__sxtb16(x), offset2), __sxtb16(y), (uint32_t)acc);
        acc = (int32_t)__smlad(__sadd16(sxtb16_ror8(x), offset2), sxtb16_ror8(y),
                               (uint32_t)acc);
    }
#endif
    for (; a < end; ++a, ++w) {
        acc += (*a + offset) * *w;
    }
    return acc;
}

/* ---- conv / FC as a GEMM: out[p][o] = requantize(bias[o] + sum_k a[p][k] w[o][k]) ----- */

/* `pixels` windows starting a_stride bytes apart; outputs out_channels bytes apart.
   Inlined into its two callers, so that `clamp` is a constant in each copy. */
EC_MCU_INLINE void gemm_impl(const ec_mcu_conv_params *p, const ec_mcu_window *win_in,
                             const int8_t *a, int32_t a_stride, int32_t pixels, int8_t *out,
                             int clamp, int32_t fixed_depth)
{
    /* fixed_depth: a constant one-segment depth in this copy (its loops unrolled) */
    const ec_mcu_window one = {1, fixed_depth, 0};
    const ec_mcu_window *win = fixed_depth ? &one : win_in;
    const int32_t channels = p->out_channels;
    const int32_t depth = win->segments * win->length; /* a weight row */
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    const int32_t *bias2 = p->folded_bias;
    int32_t px, oc, s;
    for (px = 0; px + 2 <= pixels; px += 2) {
        const int8_t *a0 = a + px * a_stride;
        int8_t *out0 = out + px * channels;
        int8_t *out1 = out0 + channels;
        const int8_t *w = p->weights;
        for (oc = 0; oc + 2 <= channels; oc += 2, w += 2 * depth) {
            int32_t acc[4] = {0, 0, 0, 0};
            int32_t b0, b1;
            for (s = 0; s < win->segments; ++s) {
                tile_2x2(a0 + s * win->step, a_stride, w + s * win->length, depth, win->length,
                         acc);
            }
            b0 = bias2[oc];
            b1 = bias2[oc + 1];
            out0[oc] = ec_mcu_output_value(o, b0 + 2 * acc[0], oc, clamp);
            out0[oc + 1] = ec_mcu_output_value(o, b1 + 2 * acc[1], oc + 1, clamp);
            out1[oc] = ec_mcu_output_value(o, b0 + 2 * acc[2], oc, clamp);
            out1[oc + 1] = ec_mcu_output_value(o, b1 + 2 * acc[3], oc + 1, clamp);
        }
        for (; oc < channels; ++oc, w += depth) {
            int32_t acc0 = 0, acc1 = 0;
            for (s = 0; s < win->segments; ++s) {
                acc0 = dot_1x1(a0 + s * win->step, w + s * win->length, win->length, acc0);
                acc1 = dot_1x1(a0 + a_stride + s * win->step, w + s * win->length,
                               win->length, acc1);
            }
            out0[oc] = ec_mcu_output_value(o, bias2[oc] + 2 * acc0, oc, clamp);
            out1[oc] = ec_mcu_output_value(o, bias2[oc] + 2 * acc1, oc, clamp);
        }
    }
    if (px < pixels) { /* one pixel: four channels at a time */
        const int8_t *a0 = a + px * a_stride;
        int8_t *out0 = out + px * channels;
        const int8_t *w = p->weights;
        for (oc = 0; oc + 4 <= channels; oc += 4, w += 4 * depth) {
            int32_t acc[4] = {0, 0, 0, 0};
            int32_t k;
            for (s = 0; s < win->segments; ++s) {
                tile_1x4(a0 + s * win->step, w + s * win->length, win->length, depth, acc);
            }
            for (k = 0; k < 4; ++k) {
                out0[oc + k] = ec_mcu_output_value(o, bias2[oc + k] + 2 * acc[k], oc + k, clamp);
            }
        }
        for (; oc < channels; ++oc, w += depth) {
            int32_t acc = 0;
            for (s = 0; s < win->segments; ++s) {
                acc = dot_1x1(a0 + s * win->step, w + s * win->length, win->length, acc);
            }
            out0[oc] = ec_mcu_output_value(o, bias2[oc] + 2 * acc, oc, clamp);
        }
    }
}

/* The variants of the GEMM (ec_runtime.h): in each, the activation clamp and, for
   8-byte rows, the depth are compile-time constants. */
void ec_mcu_gemm_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win, const int8_t *a,
                    int32_t a_stride, int32_t pixels, int8_t *out)
{
    gemm_impl(p, win, a, a_stride, pixels, out, 0, 0);
}

void ec_mcu_gemm_depth8_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win,
                           const int8_t *a, int32_t a_stride, int32_t pixels, int8_t *out)
{
    gemm_impl(p, win, a, a_stride, pixels, out, 0, 8);
}

void ec_mcu_gemm_clamp_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win,
                          const int8_t *a, int32_t a_stride, int32_t pixels, int8_t *out)
{
    gemm_impl(p, win, a, a_stride, pixels, out, 1, 0);
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

/* A pixel whose window crosses the border, without scratch: the raw bias plus
   w * (x - input zero point) over the taps inside the image, one channel at a time. */
static void conv_border_pixel(const ec_mcu_conv_params *p, const int8_t *image, int32_t oy,
                              int32_t ox, int8_t *out)
{
    const int32_t c = p->in_channels, kw = p->kernel_width;
    const int32_t depth = p->kernel_height * kw * c;
    const int32_t y0 = oy * p->stride_height - p->pad_top;
    const int32_t x0 = ox * p->stride_width - p->pad_left;
    const int32_t ky0 = first_tap(y0, p->dilation_height);
    const int32_t ky1 = end_tap(y0, p->dilation_height, p->kernel_height, p->height);
    const int32_t kx0 = first_tap(x0, p->dilation_width);
    const int32_t kx1 = end_tap(x0, p->dilation_width, kw, p->width);
    const ec_mcu_output out_stage = p->output;
    const int clamp = out_stage.activation_min != -128 || out_stage.activation_max != 127;
    int32_t oc, ky, kx;
    for (oc = 0; oc < p->out_channels; ++oc) {
        const int8_t *w = p->weights + oc * depth;
        int32_t acc = p->bias[oc];
        for (ky = ky0; ky < ky1; ++ky) {
            const int8_t *row = image + (y0 + ky * p->dilation_height) * p->width * c;
            if (p->dilation_width == 1) {
                acc = dot_1x1_offset(row + (x0 + kx0) * c, w + (ky * kw + kx0) * c,
                                     (kx1 - kx0) * c, -p->input_zero_point, acc);
                continue;
            }
            for (kx = kx0; kx < kx1; ++kx) {
                acc = dot_1x1_offset(row + (x0 + kx * p->dilation_width) * c,
                                     w + (ky * kw + kx) * c, c, -p->input_zero_point, acc);
            }
        }
        out[oc] = ec_mcu_output_value(&out_stage, 2 * acc, oc, clamp);
    }
}

/* A KxK kernel read in place: interior pixels through the GEMM (one segment per
   kernel row, so only without horizontal dilation), the others one at a time. */
static void conv_direct(const ec_mcu_conv_params *p, const int8_t *image, int8_t *out)
{
    const int32_t c = p->in_channels;
    const ec_mcu_window win = {p->kernel_height, p->kernel_width * c,
                               p->dilation_height * p->width * c};
    const int32_t step = p->stride_width * c;
    int32_t oy, ox;
    for (oy = 0; oy < p->out_height; ++oy) {
        const int32_t y0 = oy * p->stride_height - p->pad_top;
        const int rows_inside = p->dilation_width == 1 && y0 >= 0 &&
                                y0 + (p->kernel_height - 1) * p->dilation_height < p->height;
        for (ox = 0; ox < p->out_width;) {
            const int32_t x0 = ox * p->stride_width - p->pad_left;
            int8_t *o = out + (oy * p->out_width + ox) * p->out_channels;
            if (rows_inside && ox + 1 < p->out_width && x0 >= 0 &&
                x0 + p->stride_width + p->kernel_width - 1 < p->width) {
                p->gemm(p, &win, image + (y0 * p->width + x0) * c, step, 2, o);
                ox += 2;
            } else if (rows_inside && x0 >= 0 && x0 + p->kernel_width - 1 < p->width) {
                p->gemm(p, &win, image + (y0 * p->width + x0) * c, step, 1, o);
                ox += 1;
            } else {
                conv_border_pixel(p, image, oy, ox, o);
                ox += 1;
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
    const ec_mcu_window row = {1, depth, 0};
    int32_t b, oy, k;
    for (b = 0; b < p->batch; ++b) {
        const int8_t *image = input + b * in_image;
        int8_t *out = output + b * out_pixels * p->out_channels;
        if (depth == p->in_channels && p->pad_top == 0 && p->pad_left == 0) {
            /* 1x1 without padding: the pixels are the GEMM's rows */
            if (p->stride_height == 1 && p->stride_width == 1) {
                p->gemm(p, &row, image, depth, out_pixels, out);
                continue;
            }
            for (oy = 0; oy < p->out_height; ++oy) {
                p->gemm(p, &row, image + oy * p->stride_height * p->width * depth,
                     p->stride_width * depth, p->out_width,
                     out + oy * p->out_width * p->out_channels);
            }
            continue;
        }
        if (scratch == NULL) {
            conv_direct(p, image, out);
            continue;
        }
        for (k = 0; k < out_pixels; k += 2) {
            const int32_t pair = out_pixels - k < 2 ? 1 : 2;
            im2col_patch(p, image, k / p->out_width, k % p->out_width, scratch);
            if (pair == 2) {
                im2col_patch(p, image, (k + 1) / p->out_width, (k + 1) % p->out_width,
                             scratch + depth);
            }
            p->gemm(p, &row, scratch, depth, pair, out + k * p->out_channels);
        }
    }
}

void ec_mcu_fully_connected_s8(const ec_mcu_conv_params *p, int32_t rows, const int8_t *input,
                               int8_t *output)
{
    const ec_mcu_window row = {1, p->in_channels, 0};
    p->gemm(p, &row, input, p->in_channels, rows, output);
}

/* ---- FC with one or two outputs per pair (ec_mcu_fully_connected_narrow_s8) -----------
 * A narrow FC (MobileNetV2's 1280 -> 2) is a long dot product per output, where the
 * sign extension of the weights costs as much as the multiplies. The exporter stores
 * its weights already extended, as int32 words of two int16 halves, for each pair of
 * outputs (o, o + 1; a missing o + 1 has zeros) and each 4 inputs i..i+3:
 * {w[o][i], w[o][i+2]}, {w[o][i+1], w[o][i+3]}, {w[o+1][i], w[o+1][i+2]},
 * {w[o+1][i+1], w[o+1][i+3]}: the input word's SXTB16 halves (bytes 0, 2 and 1, 3) meet
 * them in SMLAD directly. The input count is a multiple of 4. */

/* acc0, acc1 += 4 inputs at a times 4 packed words at w (low half first) */
#if defined(__ARM_FEATURE_DSP)
#define EC_MCU_NARROW_STEP(a, w)                                                         \
    do {                                                                                 \
        const uint32_t x = ec_load32(a);                                                 \
        const uint32_t xe = __sxtb16(x), xo = sxtb16_ror8(x);                            \
        acc0 = (int32_t)__smlad(xe, (uint32_t)(w)[0], (uint32_t)acc0);                   \
        acc0 = (int32_t)__smlad(xo, (uint32_t)(w)[1], (uint32_t)acc0);                   \
        acc1 = (int32_t)__smlad(xe, (uint32_t)(w)[2], (uint32_t)acc1);                   \
        acc1 = (int32_t)__smlad(xo, (uint32_t)(w)[3], (uint32_t)acc1);                   \
    } while (0)
#else
#define EC_MCU_NARROW_HALVES(x0, x1, word) \
    ((x0) * (int32_t)(int16_t)((word) & 0xFFFF) + (x1) * ((int32_t)(word) >> 16))
#define EC_MCU_NARROW_STEP(a, w)                                                         \
    do {                                                                                 \
        acc0 += EC_MCU_NARROW_HALVES((a)[0], (a)[2], (w)[0]) +                           \
                EC_MCU_NARROW_HALVES((a)[1], (a)[3], (w)[1]);                            \
        acc1 += EC_MCU_NARROW_HALVES((a)[0], (a)[2], (w)[2]) +                           \
                EC_MCU_NARROW_HALVES((a)[1], (a)[3], (w)[3]);                            \
    } while (0)
#endif

void ec_mcu_fully_connected_narrow_s8(const ec_mcu_conv_params *p, int32_t rows,
                                      const int8_t *input, int8_t *output)
{
    const int32_t depth = p->in_channels, channels = p->out_channels;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    const int clamp = o->activation_min != -128 || o->activation_max != 127;
    int32_t r, oc;
    for (r = 0; r < rows; ++r, input += depth, output += channels) {
        const int32_t *w = (const int32_t *)(const void *)p->weights;
        for (oc = 0; oc < channels; oc += 2) {
            const int8_t *a = input, *end = input + depth;
            int32_t acc0 = 0, acc1 = 0;
#if defined(__ARM_FEATURE_DSP)
            for (; end - a >= 8; a += 8, w += 8) {
                EC_MCU_NARROW_STEP(a, w);
                EC_MCU_NARROW_STEP(a + 4, w + 4);
            }
#endif
            for (; a < end; a += 4, w += 4) {
                EC_MCU_NARROW_STEP(a, w);
            }
            output[oc] = ec_mcu_output_value(o, p->folded_bias[oc] + 2 * acc0, oc, clamp);
            if (oc + 1 < channels) {
                output[oc + 1] = ec_mcu_output_value(o, p->folded_bias[oc + 1] + 2 * acc1,
                                                     oc + 1, clamp);
            }
        }
    }
}

/* ---- depthwise (depth multiplier 1, at least 4 channels) ----------------------------
 * Channels in groups of four: 0, 4, 8, ... and, when the count is not a multiple of 4,
 * in a second pass over the image, a last group at channels - 4 that overlaps the one
 * before (its first outputs are computed twice, the same). Weights are packed by the
 * exporter per group, in this order, as [group][kh * kw][4]: the taps of four channels
 * are consecutive words. The sum of a channel is acc = start + sum over the
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

/* An interior output pixel of a 3x3 depthwise, its first `channels` channels: x = its
   top-left tap, row = bytes per input row, col = bytes between horizontal taps. */
static void depthwise_3x3_interior(const ec_mcu_conv_params *p, int32_t channels,
                                   const int8_t *x, int32_t row, int32_t col, int8_t *out)
{
    const int8_t *w = p->weights;
    const int32_t *bias = p->folded_bias;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    const int clamp = o->activation_min != -128 || o->activation_max != 127;
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
        out[c] = ec_mcu_output_value(o, 2 * a0, c, clamp);
        out[c + 1] = ec_mcu_output_value(o, 2 * a1, c + 1, clamp);
        out[c + 2] = ec_mcu_output_value(o, 2 * a2, c + 2, clamp);
        out[c + 3] = ec_mcu_output_value(o, 2 * a3, c + 3, clamp);
    }
}

/* Any output pixel, its first `channels` channels: taps ky in [ky0, ky1), kx in
   [kx0, kx1) of the window whose top-left tap is at x. */
static void depthwise_pixel(const ec_mcu_conv_params *p, int32_t channels, const int8_t *x,
                            int32_t row, int32_t col, int32_t ky0, int32_t ky1, int32_t kx0,
                            int32_t kx1, const int32_t *start, int32_t offset, int8_t *out)
{
    const int32_t kw = p->kernel_width, taps = p->kernel_height * kw;
    const int8_t *w = p->weights;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    const int clamp = o->activation_min != -128 || o->activation_max != 127;
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
        out[c] = ec_mcu_output_value(o, 2 * a0, c, clamp);
        out[c + 1] = ec_mcu_output_value(o, 2 * a1, c + 1, clamp);
        out[c + 2] = ec_mcu_output_value(o, 2 * a2, c + 2, clamp);
        out[c + 3] = ec_mcu_output_value(o, 2 * a3, c + 3, clamp);
    }
}

/* The first `groups` channels (a multiple of 4) of every output pixel; the pixels are
   p->out_channels bytes apart. */
static void depthwise_groups(const ec_mcu_conv_params *p, int32_t groups, const int8_t *input,
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
                        depthwise_3x3_interior(p, groups, x, drow, col, out);
                    } else {
                        depthwise_pixel(p, groups, x, drow, col, 0, kh, 0, kw,
                                        p->folded_bias, 0, out);
                    }
                } else {
                    depthwise_pixel(p, groups, x, drow, col, ky0, ky1, kx0, kx1, p->bias,
                                    -p->input_zero_point, out);
                }
            }
        }
    }
}

void ec_mcu_depthwise_conv2d_s8(const ec_mcu_conv_params *p, const int8_t *input,
                                int8_t *output)
{
    const int32_t channels = p->out_channels, whole = channels / 4 * 4;
    depthwise_groups(p, whole, input, output);
    if (whole < channels) { /* the last four channels, as a layer of their own */
        const int32_t first = channels - 4;
        ec_mcu_conv_params last = *p;
        last.weights += whole * p->kernel_height * p->kernel_width;
        last.bias += first;
        last.folded_bias += first;
        last.output.requant += 2 * first;
        depthwise_groups(&last, 4, input + first, output + first);
    }
}

/* ---- depthwise, any depth multiplier M and channel count ------------------------------
 * Output channel c * M + m takes input channel c. The taps of an output pixel (padded to
 * an even count: an extra tap repeats the last one, with weights 0) are found in one of
 * two ways: a pixel whose window lies inside the image reads tap t at x + offsets[t],
 * x its first tap, offsets the same for every such pixel; another pixel builds a table
 * of pointers, a tap outside the image pointing at a row of input zero points (the
 * exporter's padding_row): with the folded bias, x = zero point adds nothing, as TFLite
 * skips the tap. For each input channel, the inputs of two taps are paired in one word
 * (halfwords x[t], x[t + 1]) and SMLAD multiplies them with the two taps' weights of one
 * output channel. The exporter packs the weights per input channel, per group of four
 * output channels (then a group of two, then one), per tap pair, as words
 * {w[t][m], w[t][m + 1], w[t + 1][m], w[t + 1][m + 1]}: SXTB16 gives m's pair and, with
 * the rotation, m + 1's; a group of one has zeros for m + 1. */

/* Where the taps of a pixel are: taps != NULL: the pointer table; else x + offsets[t]. */
typedef struct {
    const int8_t *const *taps;
    const int8_t *x;
    const int32_t *offsets;
} ec_mcu_taps;

/* the input bytes of channel c under taps t and t + 1, as two halfwords */
EC_MCU_INLINE uint32_t tap_pair(const ec_mcu_taps *at, int32_t t, int32_t c)
{
    const int32_t x0 = at->taps != NULL ? at->taps[t][c] : at->x[at->offsets[t] + c];
    const int32_t x1 = at->taps != NULL ? at->taps[t + 1][c] : at->x[at->offsets[t + 1] + c];
#if defined(__ARM_FEATURE_DSP)
    uint32_t r; /* gcc writes the portable expression as two instructions */
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(x0), "r"(x1));
    return r;
#else
    return ((uint32_t)x0 & 0xFFFFu) | ((uint32_t)x1 << 16);
#endif
}

#if defined(__ARM_FEATURE_DSP)
/* acc += the taps' pair x times the weight pair of output m (bytes 0, 2 of the word at
   w) or of output m + 1 (bytes 1, 3) */
#define EC_MCU_PAIR_EVEN(acc, x, w)                                                      \
    acc = (int32_t)__smlad((x), __sxtb16(ec_load32(w)), (uint32_t)(acc))
#define EC_MCU_PAIR_ODD(acc, x, w)                                                       \
    acc = (int32_t)__smlad((x), sxtb16_ror8(ec_load32(w)), (uint32_t)(acc))
#else
#define EC_MCU_PAIR_EVEN(acc, x, w)                                                      \
    acc += (int32_t)(int16_t)(x) * (w)[0] + ((int32_t)(x) >> 16) * (w)[2]
#define EC_MCU_PAIR_ODD(acc, x, w)                                                       \
    acc += (int32_t)(int16_t)(x) * (w)[1] + ((int32_t)(x) >> 16) * (w)[3]
#endif

/* one tap pair of channel c for a group of 4, 2 or 1 outputs (weights at w) */
#define EC_MCU_PAIRS_STEP4                                                               \
    do {                                                                                 \
        const uint32_t x = tap_pair(at, t, c);                                           \
        EC_MCU_PAIR_EVEN(a0, x, w);                                                      \
        EC_MCU_PAIR_ODD(a1, x, w);                                                       \
        EC_MCU_PAIR_EVEN(a2, x, w + 4);                                                  \
        EC_MCU_PAIR_ODD(a3, x, w + 4);                                                   \
    } while (0)
#define EC_MCU_PAIRS_STEP2                                                               \
    do {                                                                                 \
        const uint32_t x = tap_pair(at, t, c);                                           \
        EC_MCU_PAIR_EVEN(a0, x, w);                                                      \
        EC_MCU_PAIR_ODD(a1, x, w);                                                       \
    } while (0)
#define EC_MCU_PAIRS_STEP1 EC_MCU_PAIR_EVEN(a0, tap_pair(at, t, c), w)

/* complete unrolling of a tap loop whose pair count is a constant (3x3: 5) */
#if defined(__GNUC__) && !defined(__clang__)
#define EC_MCU_UNROLL _Pragma("GCC unroll 8")
#else
#define EC_MCU_UNROLL
#endif

/* all pairs of channel c for a group, w advancing by `bytes` per pair; unrolled when
   fixed_pairs (a constant in each inlined copy) is not 0 */
#define EC_MCU_PAIRS_LOOP(step, bytes)                                                   \
    do {                                                                                 \
        if (fixed_pairs) {                                                               \
            EC_MCU_UNROLL                                                                \
            for (t = 0; t < 2 * fixed_pairs; t += 2, w += (bytes)) {                     \
                step;                                                                    \
            }                                                                            \
        } else {                                                                         \
            for (t = 0; t < 2 * pairs; t += 2, w += (bytes)) {                           \
                step;                                                                    \
            }                                                                            \
        }                                                                                \
    } while (0)

/* The outputs of one pixel. On DSP cores inlined into the three variants below (each
   with its constants); elsewhere one function (the portable loops gain little from
   copies, and sanitizer builds take three times as long to compile them). */
#if defined(__ARM_FEATURE_DSP)
#define EC_MCU_PAIRS_INLINE EC_MCU_INLINE
#else
#define EC_MCU_PAIRS_INLINE static
#endif
EC_MCU_PAIRS_INLINE void depthwise_pairs_pixel(const ec_mcu_conv_params *p, const ec_mcu_taps *at,
                                         int32_t pairs, int32_t fixed_pairs, int8_t *out)
{
    const int32_t channels = p->in_channels, mult = p->out_channels / channels;
    const int8_t *w = p->weights;
    const int32_t *bias = p->folded_bias;
    const ec_mcu_output out_stage = p->output;
    const ec_mcu_output *o = &out_stage;
    const int clamp = o->activation_min != -128 || o->activation_max != 127;
    int32_t c, m, t, k = 0; /* k: the output channel c * mult + m */
    for (c = 0; c < channels; ++c) {
        for (m = 0; m + 4 <= mult; m += 4, k += 4) {
            int32_t a0 = bias[k], a1 = bias[k + 1], a2 = bias[k + 2], a3 = bias[k + 3];
            EC_MCU_PAIRS_LOOP(EC_MCU_PAIRS_STEP4, 8);
            out[k] = ec_mcu_output_value(o, 2 * a0, k, clamp);
            out[k + 1] = ec_mcu_output_value(o, 2 * a1, k + 1, clamp);
            out[k + 2] = ec_mcu_output_value(o, 2 * a2, k + 2, clamp);
            out[k + 3] = ec_mcu_output_value(o, 2 * a3, k + 3, clamp);
        }
        if (mult - m >= 2) {
            int32_t a0 = bias[k], a1 = bias[k + 1];
            EC_MCU_PAIRS_LOOP(EC_MCU_PAIRS_STEP2, 4);
            out[k] = ec_mcu_output_value(o, 2 * a0, k, clamp);
            out[k + 1] = ec_mcu_output_value(o, 2 * a1, k + 1, clamp);
            m += 2, k += 2;
        }
        if (m < mult) {
            int32_t a0 = bias[k];
            EC_MCU_PAIRS_LOOP(EC_MCU_PAIRS_STEP1, 4);
            out[k] = ec_mcu_output_value(o, 2 * a0, k, clamp);
            k += 1;
        }
    }
}

/* a pixel inside the image, 3x3 kernel: 5 pairs, unrolled */
static void depthwise_pairs_inside_3x3(const ec_mcu_conv_params *p, const int8_t *x,
                                       const int32_t *offsets, int8_t *out)
{
    const ec_mcu_taps at = {NULL, x, offsets};
    depthwise_pairs_pixel(p, &at, 5, 5, out);
}

/* a pixel inside the image, any kernel */
static void depthwise_pairs_inside(const ec_mcu_conv_params *p, const int8_t *x,
                                   const int32_t *offsets, int32_t pairs, int8_t *out)
{
    const ec_mcu_taps at = {NULL, x, offsets};
    depthwise_pairs_pixel(p, &at, pairs, 0, out);
}

/* a pixel whose window crosses the border: through the pointer table */
static void depthwise_pairs_border(const ec_mcu_conv_params *p, const int8_t *const *taps,
                                   int32_t pairs, int8_t *out)
{
    const ec_mcu_taps at = {taps, NULL, NULL};
    depthwise_pairs_pixel(p, &at, pairs, 0, out);
}

/* taps[] of the window whose top-left tap is at (y0, x0) (a tap outside the image:
   padding_row), padded to an even count */
static void depthwise_tap_table(const ec_mcu_conv_params *p, const int8_t *image, int32_t y0,
                                int32_t x0, const int8_t **taps)
{
    const int32_t c = p->in_channels, taps_n = p->kernel_height * p->kernel_width;
    int32_t ky, kx, n = 0;
    for (ky = 0; ky < p->kernel_height; ++ky) {
        const int32_t iy = y0 + ky * p->dilation_height;
        for (kx = 0; kx < p->kernel_width; ++kx, ++n) {
            const int32_t ix = x0 + kx * p->dilation_width;
            const int inside = iy >= 0 && iy < p->height && ix >= 0 && ix < p->width;
            taps[n] = inside ? image + (iy * p->width + ix) * c : p->padding_row;
        }
    }
    taps[taps_n] = taps[taps_n - 1];
}

void ec_mcu_depthwise_pairs_s8(const ec_mcu_conv_params *p, const int8_t *input,
                               int8_t *output)
{
    const int8_t *taps[EC_MCU_DEPTHWISE_MAX_TAPS + 1];
    int32_t offsets[EC_MCU_DEPTHWISE_MAX_TAPS + 1];
    const int32_t c = p->in_channels, kh = p->kernel_height, kw = p->kernel_width;
    const int32_t in_image = p->height * p->width * c, taps_n = kh * kw;
    const int32_t pairs = (taps_n + 1) / 2;
    const int32_t span_y = (kh - 1) * p->dilation_height, span_x = (kw - 1) * p->dilation_width;
    int32_t b, oy, ox, ky, kx;
    for (ky = 0; ky < kh; ++ky) {
        for (kx = 0; kx < kw; ++kx) {
            offsets[ky * kw + kx] = (ky * p->dilation_height * p->width + kx * p->dilation_width) * c;
        }
    }
    offsets[taps_n] = offsets[taps_n - 1];
    for (b = 0; b < p->batch; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_height; ++oy) {
            const int32_t y0 = oy * p->stride_height - p->pad_top;
            const int rows_inside = y0 >= 0 && y0 + span_y < p->height;
            for (ox = 0; ox < p->out_width; ++ox, output += p->out_channels) {
                const int32_t x0 = ox * p->stride_width - p->pad_left;
                if (rows_inside && x0 >= 0 && x0 + span_x < p->width) {
                    const int8_t *x = image + (y0 * p->width + x0) * c;
                    if (pairs == 5) {
                        depthwise_pairs_inside_3x3(p, x, offsets, output);
                    } else {
                        depthwise_pairs_inside(p, x, offsets, pairs, output);
                    }
                } else {
                    depthwise_tap_table(p, image, y0, x0, taps);
                    depthwise_pairs_border(p, taps, pairs, output);
                }
            }
        }
    }
}

/* ---- ADD (no broadcasting) ----------------------------------------------------------- */

/* RoundingDivideByPOT(x, shift1 + 1) (see ec_runtime.h) */
static inline int32_t ec_mcu_divide_by_pot(int32_t x, int32_t shift1)
{
    return (((x + (x >> 31)) >> shift1) + 1) >> 1;
}

void ec_mcu_add_s8(const ec_mcu_add_params *p, const int8_t *a, const int8_t *b, int8_t *output)
{
    const ec_mcu_add_params q = *p; /* a local copy: the stores below cannot change it */
    const int8_t *second = q.constant_b != NULL ? q.constant_b : b;
    const int clamp = q.activation_min != -128 || q.activation_max != 127;
    int32_t i;
    for (i = 0; i < q.size; ++i) {
        const int32_t va = ec_mcu_divide_by_pot(
            ec_mcu_high_mul_round((a[i] - q.input1_zero_point) * (1 << q.input1_left),
                                  q.input1_multiplier), q.input1_shift1);
        const int32_t vb = ec_mcu_divide_by_pot(
            ec_mcu_high_mul_round((second[i] - q.input2_zero_point) * (1 << q.input2_left),
                                  q.input2_multiplier), q.input2_shift1);
        const int32_t x = ec_mcu_high_mul_round((va + vb) * 2, q.output_multiplier);
        int32_t v = ec_mcu_halve_saturate(((x + (x >> 31)) >> q.output_shift1) +
                                          q.output_zero_point2);
        if (clamp) {
            v = v < q.activation_min ? q.activation_min : v;
            v = v > q.activation_max ? q.activation_max : v;
        }
        output[i] = (int8_t)v;
    }
}

/* ---- AVERAGE_POOL_2D (channels a multiple of 4) ----------------------------------------
 * Four channels at a time: SXTAB16 adds bytes 0,2 (and, rotated, 1,3) of a word to two
 * 16-bit sums; at most 255 taps of |x| <= 128 keep each sum within int16. The average
 * rounds half away from zero with C's truncating division (reference/quant.py
 * rounded_average). */

static inline int32_t rounded_average(int32_t total, int32_t count)
{
    return total > 0 ? (total + count / 2) / count : (total - count / 2) / count;
}

void ec_mcu_average_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels, row = p->width * channels;
    int32_t b, oy, ox, c, iy, ix;
    for (b = 0; b < p->batch; ++b) {
        const int8_t *image = input + b * p->height * row;
        for (oy = 0; oy < p->out_height; ++oy) {
            int32_t y_start, y_end;
            ec_pool_window(oy, p->stride_height, p->pad_top, p->filter_height, p->height,
                           &y_start, &y_end);
            for (ox = 0; ox < p->out_width; ++ox) {
                int32_t x_start, x_end;
                ec_pool_window(ox, p->stride_width, p->pad_left, p->filter_width, p->width,
                               &x_start, &x_end);
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                for (c = 0; c < channels; c += 4, output += 4) {
                    int32_t sum[4];
                    int32_t k;
#if defined(__ARM_FEATURE_DSP)
                    uint32_t even = 0, odd = 0;
                    for (iy = y_start; iy < y_end; ++iy) {
                        const int8_t *x = image + iy * row + x_start * channels + c;
                        for (ix = x_start; ix < x_end; ++ix, x += channels) {
                            const uint32_t v = ec_load32(x);
                            __asm__("sxtab16 %0, %0, %1" : "+r"(even) : "r"(v));
                            __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(odd) : "r"(v));
                        }
                    }
                    sum[0] = (int16_t)(even & 0xFFFFu);
                    sum[1] = (int16_t)(odd & 0xFFFFu);
                    sum[2] = (int16_t)(even >> 16);
                    sum[3] = (int16_t)(odd >> 16);
#else
                    sum[0] = sum[1] = sum[2] = sum[3] = 0;
                    for (iy = y_start; iy < y_end; ++iy) {
                        const int8_t *x = image + iy * row + x_start * channels + c;
                        for (ix = x_start; ix < x_end; ++ix, x += channels) {
                            for (k = 0; k < 4; ++k) {
                                sum[k] += x[k];
                            }
                        }
                    }
#endif
                    for (k = 0; k < 4; ++k) {
                        int32_t v = count > 0 ? rounded_average(sum[k], count) : 0;
                        v = v < p->activation_min ? p->activation_min : v;
                        output[k] = (int8_t)(v > p->activation_max ? p->activation_max : v);
                    }
                }
            }
        }
    }
}
