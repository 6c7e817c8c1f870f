/* edgecnn firmware runtime: portable C99 int8 kernels, bit-exact with edgecnn's
 * Python reference (the reference/ package) and tflite-micro.
 *
 * No malloc, no printf, no float in the integer path (float appears only in
 * QUANTIZE from a float32 model input and DEQUANTIZE to a float32 output).
 * Every arithmetic helper below is the twin of the function of the same name
 * in reference/quant.py; every kernel the twin of the reference kernel its
 * comment names. Tensors are NHWC, shapes are given as 4-D (leading 1s). */
#ifndef EC_RUNTIME_H
#define EC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

/* Builds for AArch64 run conv, FC and depthwise layers on the NEON / SDOT kernels the core
   shares (ec_a64_s8.c, ec_a64_neon.h); an exported model picks those layers' records and its
   arena by this (its header repeats the condition for the arena size). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define EC_A64 1
#else
#define EC_A64 0
#endif

/* EC_ERROR_NAN_INPUT: a float input holds a NaN (the outputs are then not written). */
enum ec_status { EC_OK = 0, EC_ERROR_NULL = 1, EC_ERROR_ARENA_TOO_SMALL = 2,
                 EC_ERROR_NAN_INPUT = 3 };

enum ec_rounding { EC_ROUND_DOUBLE = 0, EC_ROUND_SINGLE = 1 };

/* ---- quantization arithmetic (twins of reference/quant.py) ------------------ */

static inline int32_t ec_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates */
}

static inline int32_t ec_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t ec_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift, int32_t rounding)
{
    if (rounding == EC_ROUND_SINGLE) {
        const int total = 31 - (int)shift;
        const int64_t product = (int64_t)x * multiplier + ((int64_t)1 << (total - 1));
        return (int32_t)(product >> total);
    } else {
        const int left = shift > 0 ? (int)shift : 0;
        const int right = shift < 0 ? (int)-shift : 0;
        /* x * 2^left through uint32: a left shift of a negative int is undefined */
        const int32_t shifted = (int32_t)((uint32_t)x << left);
        return ec_rounding_divide_by_pot(
            ec_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
    }
}

/* sum of w[i] * x[i], four products per step (fewer loop instructions on a Cortex-M).
   |sum| <= 128 * sum|w| < 2^31: lowering checked the bound, so no partial sum overflows.
   On cores with the DSP extension (Cortex-M4/M7/M33...), four bytes at a time go through
   SXTB16 (bytes 0,2 and, rotated, 1,3 as int16 pairs) and two SMLAD dual multiply-adds:
   the same integer sum, exact. */
static inline int32_t ec_dot_s8(const int8_t *w, const int8_t *x, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; i + 4 <= n; i += 4) {
        uint32_t wv, xv; /* memcpy: an unaligned 32-bit load, no aliasing games */
        memcpy(&wv, w + i, 4);
        memcpy(&xv, x + i, 4);
        acc = (int32_t)__smlad(__sxtb16(xv), __sxtb16(wv), (uint32_t)acc);
        xv = (xv >> 8) | (xv << 24); /* rotate right by 8: bytes 1,3 into the low halves */
        wv = (wv >> 8) | (wv << 24);
        acc = (int32_t)__smlad(__sxtb16(xv), __sxtb16(wv), (uint32_t)acc);
    }
#endif
    for (; i + 4 <= n; i += 4) {
        acc += w[i] * x[i] + w[i + 1] * x[i + 1] + w[i + 2] * x[i + 2] + w[i + 3] * x[i + 3];
    }
    for (; i < n; ++i) {
        acc += w[i] * x[i];
    }
    return acc;
}

static inline int32_t ec_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* clamp(v + zero_point, lo, hi) without the int32 overflow of v + zero_point. */
static inline int32_t ec_offset_and_clamp(int32_t v, int32_t zero_point, int32_t lo, int32_t hi)
{
    return ec_clamp(v, lo - zero_point, hi - zero_point) + zero_point;
}

/* ---- microcontroller fast paths (ec_mcu_s8.c) --------------------------------
 * Used for layers whose requantization the exporter proved simple: double rounding
 * (TFLite's reference), a right shift e >= 1 and |accumulator| < 2^30. Then, with
 * acc2 = 2 * acc (fits in int32):
 *  - SaturatingRoundingDoublingHighMul(acc, m) = floor((acc * m + 2^30) / 2^31)
 *    = (acc2 * m + 2^31) >> 32: for m >= 0 the saturating case cannot occur and
 *    TFLite's sign-dependent nudge gives the same value as flooring; one SMMULR;
 *  - RoundingDivideByPOT(x, e) (half away from zero) = ((x' >> (e - 1)) + 1) >> 1 with
 *    x' = x - 1 for negative x (floor((x - [x < 0]) / 2^(e-1)) then a rounding halving);
 *  - the output zero point joins before the halving: + (2 * zero_point + 1), and the
 *    halving joins the saturation to int8 (SSAT #8 with ASR #1).
 * Shifts of negative values are arithmetic (gcc, clang and armcc on every target). */

#if defined(__ARM_FEATURE_DSP)
/* (a * b + 2^31) >> 32: one instruction on DSP cores */
static inline int32_t ec_mcu_high_mul_round(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline int32_t ec_mcu_high_mul_round(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}
#endif

#if defined(__ARM_ARCH) && (__ARM_ARCH >= 6) && defined(__thumb2__)
/* clamp(v2 >> 1, -128, 127): one SSAT on ARMv7-M (Cortex-M3 and up) */
static inline int32_t ec_mcu_halve_saturate(int32_t v2)
{
    int32_t r;
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(r) : "r"(v2));
    return r;
}
#else
static inline int32_t ec_mcu_halve_saturate(int32_t v2)
{
    const int32_t v = v2 >> 1;
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}
#endif

/* The output stage of a fast layer. requant holds per channel {multiplier, e - 1}
   (e = -TFLite's shift >= 1); zero_point2 = 2 * output zero point + 1. */
typedef struct {
    const int32_t *requant;
    int32_t zero_point2, activation_min, activation_max;
} ec_mcu_output;

/* int8 output of channel `channel` for acc2 = 2 * accumulator. `clamp`: the activation
   range is narrower than int8 (a constant at each call site, so each use compiles to
   one of the two variants). Copy the record into a local before the loops: then the
   compiler knows the int8 output stores cannot change it. */
static inline int8_t ec_mcu_output_value(const ec_mcu_output *o, int32_t acc2,
                                         int32_t channel, int clamp)
{
    const int32_t x = ec_mcu_high_mul_round(acc2, o->requant[2 * channel]);
    int32_t v = ec_mcu_halve_saturate(((x + (x >> 31)) >> o->requant[2 * channel + 1]) +
                                      o->zero_point2);
    if (clamp) {
        v = v < o->activation_min ? o->activation_min : v;
        v = v > o->activation_max ? o->activation_max : v;
    }
    return (int8_t)v;
}

/* ---- parameter records (one per op, mirroring edgecnn/params.py) ------------- */

typedef struct {
    const int32_t *multiplier; /* per output channel */
    const int32_t *shift;      /* TFLite's sign: positive = left */
    int32_t rounding;          /* enum ec_rounding */
} ec_requant;

typedef struct {
    int32_t batch, height, width, in_channels;
    int32_t out_height, out_width, out_channels;
    int32_t kernel_height, kernel_width, stride_height, stride_width;
    int32_t dilation_height, dilation_width, pad_top, pad_left;
    int32_t depth_multiplier; /* depthwise only */
    int32_t input_zero_point, output_zero_point, activation_min, activation_max;
    const int8_t *weights; /* conv: [out][kh][kw][in]; depthwise: [kh][kw][out] */
    const int32_t *bias;
    /* bias - input_zero_point * sum(weights of the channel): with it, an output whose taps
       all lie inside the image is bias + sum(w * x), one multiply-accumulate per tap */
    const int32_t *folded_bias;
    ec_requant requant;
} ec_conv_params;

typedef struct {
    int32_t batch, height, width, channels, out_height, out_width;
    int32_t filter_height, filter_width, stride_height, stride_width, pad_top, pad_left;
    int32_t activation_min, activation_max;
} ec_pool_params;

/* The in-image taps [*start, *end) of one pooling window along one axis: output index `o`,
   the window's first tap o * stride - pad, clipped to [0, size) (TFLite counts only the taps
   inside the image). Shared by the portable and the Cortex-M pooling kernels. */
static inline void ec_pool_window(int32_t o, int32_t stride, int32_t pad, int32_t filter,
                                  int32_t size, int32_t *start, int32_t *end)
{
    const int32_t first = o * stride - pad;
    *start = first < 0 ? 0 : first;
    *end = first + filter > size ? size : first + filter;
}

typedef struct {
    int32_t rows, in_features, out_features;
    int32_t input_zero_point, output_zero_point, activation_min, activation_max;
    const int8_t *weights; /* [out][in] */
    const int32_t *folded_bias; /* bias - input_zero_point * sum(weights of the output) */
    ec_requant requant;
} ec_fully_connected_params;

typedef struct {
    int32_t out_shape[4];
    int32_t a_strides[4], b_strides[4]; /* 0 along broadcast dimensions */
    int32_t input1_zero_point, input2_zero_point, output_zero_point, left_shift;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, activation_min, activation_max, rounding;
    const int8_t *constant_b; /* the second operand when it is a constant, else NULL */
} ec_add_params;

typedef struct {
    int32_t in_shape[4];
    int32_t reduced[4]; /* 1 for the averaged dimensions */
    int32_t count, input_zero_point, output_zero_point, multiplier, shift;
} ec_mean_params;

typedef struct {
    int32_t rows, depth, diff_min, output_zero_point;
    const int32_t *exp_q0;  /* exp(-d) in Q0.31 for d = 0..255 below the row max */
    const int32_t *exp_acc; /* the same in Q12.19, the accumulation format */
    /* LiteRT's aarch64 arithmetic (profile xnnpack-aarch64), else NULL: exp(-d) in units of
     * 1/65535 (the exp_q0/exp_acc tables are then NULL), normalized per row in float32 */
    const uint16_t *exp_lut16;
    float output_scale;
} ec_softmax_params;

typedef struct {
    int32_t size;
    uint8_t flip;          /* 0x80 for int8 input, 0 for uint8 */
    const uint8_t *table;  /* the op's value for each of the 256 inputs */
} ec_lut_params;

typedef struct {
    int32_t in_shape[4], before[4], out_shape[4];
    int8_t pad_value;
} ec_pad_params;

typedef struct {
    int32_t outer, inner_in, inner_out, offset; /* bytes per outer slice */
} ec_concat_part_params;

typedef struct {
    int32_t in_shape[4], out_shape[4], block[2], before[2];
    int8_t pad_value;
} ec_space_batch_params;

typedef struct {
    int32_t rank;         /* 1..6, after collapsing (size-1 dims dropped, dims that stay together merged) */
    int32_t element_size; /* bytes: 1, 2, 4 or 8 (only whole elements move) */
    int32_t out_shape[6];
    int32_t in_stride[6]; /* input elements between neighbours along each output dimension */
} ec_transpose_params;

typedef struct {
    int32_t size, zero_point, qmin, qmax;
    float scale;
} ec_quantize_params;

typedef struct {
    int32_t size, zero_point;
    float scale;
} ec_dequantize_params;

/* CONV_2D (as a GEMM: 1x1 in place, KxK through an im2col scratch of two patches),
   FULLY_CONNECTED (pixels = rows) and DEPTHWISE_CONV_2D, for ec_mcu_s8.c. */

/* Where a pixel's taps are for the GEMM: `segments` runs of `length` bytes, `step` bytes
   apart (a KxK window read in place: one run per kernel row; a 1x1 pixel or an im2col
   patch: one run). */
typedef struct {
    int32_t segments, length, step;
} ec_mcu_window;

struct ec_mcu_conv_params;
/* The GEMM of a conv or FC layer: `pixels` windows a_stride bytes apart, outputs
   out_channels bytes apart. The exporter names the variant in the layer's record, so
   that only the variants a model uses are linked:
   ec_mcu_gemm_s8             activation range = int8 range
   ec_mcu_gemm_depth8_s8      the same, one 8-byte segment (8 input channels, 1x1)
   ec_mcu_gemm_clamp_s8       a narrower activation range (ReLU, ReLU6) */
typedef void (*ec_mcu_gemm_fn)(const struct ec_mcu_conv_params *p, const ec_mcu_window *win,
                               const int8_t *a, int32_t a_stride, int32_t pixels,
                               int8_t *out);

typedef struct ec_mcu_conv_params {
    int32_t batch, height, width, in_channels;
    int32_t out_height, out_width, out_channels;
    int32_t kernel_height, kernel_width, stride_height, stride_width;
    int32_t dilation_height, dilation_width, pad_top, pad_left;
    int32_t input_zero_point;
    const int8_t *weights;      /* conv, FC: [out][kh][kw][in]; depthwise: packed as
                                   its kernel reads them (ec_mcu_s8.c) */
    const int32_t *bias;        /* the raw bias (outputs near the border), or NULL */
    /* bias - input_zero_point * sum(weights of the channel), doubled for conv and FC
       (their output stage takes 2 * accumulator), as is for depthwise */
    const int32_t *folded_bias;
    ec_mcu_output output;
    ec_mcu_gemm_fn gemm; /* conv and FC: one of the ec_mcu_gemm_* below; depthwise: NULL */
    /* ec_mcu_depthwise_pairs_s8: in_channels bytes of the input zero point (the input
       of a tap outside the image); otherwise NULL */
    const int8_t *padding_row;
} ec_mcu_conv_params;

/* the largest kernel (kh * kw taps) ec_mcu_depthwise_pairs_s8 takes */
#define EC_MCU_DEPTHWISE_MAX_TAPS 49

/* ADD without broadcasting, for ec_mcu_s8.c: double rounding, left_shift <= 20, the output
   shift a right shift e >= 1, each input's e >= 1, or e = 0 with the multiplier 2^30 (the
   input with the larger scale: x 0.5). An input is scaled as
   RoundingDivideByPOT(SRDHM((x - zp) << left_shift, m), e) =
   halve_round(((y + (y >> 31)) >> shift1) with y = SMMULR((x - zp) << left, m):
   left = left_shift + 1, shift1 = e - 1 for e >= 1; left = left_shift + 2, shift1 = 0 for
   e = 0 (y is then exactly 2 * (x - zp) << (left_shift - 1), halving it is exact).
   The scaled inputs stay below 2^28, their sum below 2^29. */
typedef struct {
    int32_t size;
    int32_t input1_zero_point, input1_left, input1_multiplier, input1_shift1;
    int32_t input2_zero_point, input2_left, input2_multiplier, input2_shift1;
    int32_t output_multiplier, output_shift1, output_zero_point2;
    int32_t activation_min, activation_max;
    const int8_t *constant_b; /* the second operand when it is a constant, else NULL */
} ec_mcu_add_params;

/* A CONV_2D, FULLY_CONNECTED (a 1x1 convolution over its rows) or DEPTHWISE_CONV_2D layer
   on the AArch64 NEON / SDOT kernels of ec_a64_neon.h (ec_a64_s8.c; the exporter emits these
   records only inside `#if EC_A64`, with the portable record in the #else). Windows are read
   from the input, or from its copy padded with the input zero point (padded_height x
   padded_width pixels at the start of scratch; == height, width when no window leaves the
   input). */
enum { EC_A64_POINTWISE = 0, EC_A64_IN_PLACE = 1, EC_A64_IM2COL = 2 };
typedef struct {
    int32_t batch, height, width, in_channels;
    int32_t out_height, out_width, out_channels;
    int32_t kernel_height, kernel_width, stride_height, stride_width;
    int32_t dilation_height, dilation_width, pad_top, pad_left;
    int32_t padded_height, padded_width;
    int32_t input_zero_point, output_zero_point, activation_min, activation_max;
    int32_t windows;    /* conv: EC_A64_POINTWISE (the input pixels themselves), EC_A64_IN_PLACE
                           (tap by tap), EC_A64_IM2COL (rows after the padded copy);
                           depthwise: output pixels per 16-lane vector */
    int32_t depth;      /* conv: bytes of weights per tap (in place) or per window, a multiple
                           of 4; depthwise: lanes, a multiple of 16 */
    int32_t pairs;      /* no weight is -128: two products fit an int16 sum */
    const int8_t *weights;        /* conv: [lanes / 16][depth / 4][16][4];
                                     depthwise: [taps][lanes] */
    const int32_t *folded_bias;   /* per lane: bias - input_zero_point * sum(w) */
    const int32_t *multiplier, *left, *right; /* per lane; left, right = max(+-shift, 0) */
    const ptrdiff_t *tap_offset;  /* in place, depthwise: a window's taps in the padded input */
} ec_a64_conv_params;

/* ---- kernels ---------------------------------------------------------------- */

void ec_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output);
void ec_depthwise_conv2d_s8(const ec_conv_params *p, const int8_t *input, int8_t *output);
/* scratch: NULL, or 2 * kernel_height * kernel_width * in_channels bytes for a KxK kernel
   (im2col of two patches; without it, border pixels take a slower path) */
void ec_mcu_conv2d_s8(const ec_mcu_conv_params *p, const int8_t *input, int8_t *output,
                      int8_t *scratch);
/* depthwise: multiplier 1 and at least 4 channels */
void ec_mcu_depthwise_conv2d_s8(const ec_mcu_conv_params *p, const int8_t *input,
                                int8_t *output);
/* depthwise: any multiplier and channel count, at most EC_MCU_DEPTHWISE_MAX_TAPS taps */
void ec_mcu_depthwise_pairs_s8(const ec_mcu_conv_params *p, const int8_t *input,
                               int8_t *output);
void ec_mcu_gemm_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win, const int8_t *a,
                    int32_t a_stride, int32_t pixels, int8_t *out);
void ec_mcu_gemm_depth8_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win,
                           const int8_t *a, int32_t a_stride, int32_t pixels, int8_t *out);
void ec_mcu_gemm_clamp_s8(const ec_mcu_conv_params *p, const ec_mcu_window *win,
                          const int8_t *a, int32_t a_stride, int32_t pixels, int8_t *out);
void ec_mcu_add_s8(const ec_mcu_add_params *p, const int8_t *a, const int8_t *b, int8_t *output);
/* channels a multiple of 4, at most 255 taps per window */
void ec_mcu_average_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output);
/* rows x in_channels input, rows x out_channels output (the conv fields unused) */
void ec_mcu_fully_connected_s8(const ec_mcu_conv_params *p, int32_t rows, const int8_t *input,
                               int8_t *output);
/* the same for at most 3 outputs, in_channels a multiple of 4, weights packed as int32
   (ec_mcu_s8.c) */
void ec_mcu_fully_connected_narrow_s8(const ec_mcu_conv_params *p, int32_t rows,
                                      const int8_t *input, int8_t *output);
/* AArch64 only; scratch: the padded copy of the input, then 8 im2col rows of `depth` bytes */
void ec_a64_conv2d_s8(const ec_a64_conv_params *p, const int8_t *input, int8_t *output,
                      int8_t *scratch);
void ec_a64_depthwise_conv2d_s8(const ec_a64_conv_params *p, const int8_t *input,
                                int8_t *output, int8_t *scratch);
void ec_max_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output);
void ec_average_pool2d_s8(const ec_pool_params *p, const int8_t *input, int8_t *output);
void ec_fully_connected_s8(const ec_fully_connected_params *p, const int8_t *input,
                           int8_t *output);
void ec_add_s8(const ec_add_params *p, const int8_t *a, const int8_t *b, int8_t *output);
void ec_mean_s8(const ec_mean_params *p, const int8_t *input, int8_t *output);
void ec_softmax_s8(const ec_softmax_params *p, const int8_t *input, int8_t *output);
void ec_lut_u8(const ec_lut_params *p, const uint8_t *input, uint8_t *output);
void ec_pad_s8(const ec_pad_params *p, const int8_t *input, int8_t *output);
void ec_concat_part(const ec_concat_part_params *p, const uint8_t *input, uint8_t *output);
void ec_space_to_batch_s8(const ec_space_batch_params *p, const int8_t *input, int8_t *output);
void ec_batch_to_space_s8(const ec_space_batch_params *p, const int8_t *input, int8_t *output);
void ec_transpose(const ec_transpose_params *p, const void *input, void *output);
int ec_quantize_f32(const ec_quantize_params *p, const float *input, uint8_t *output,
                    int output_is_uint8); /* EC_OK, or EC_ERROR_NAN_INPUT */
void ec_dequantize_f32(const ec_dequantize_params *p, const uint8_t *input, int input_is_uint8,
                       float *output);

#endif /* EC_RUNTIME_H */
