/* A-profile (AArch64) NEON and SDOT kernels: the packed-weight int8 GEMM of every convolution
 * and fully connected layer, depthwise rows and the output stages of reference/quant.py on
 * vectors. One home for both users: the Cython core includes this file on aarch64 (and picks
 * the SDOT functions at run time, from HWCAP_ASIMDDP), and so does C exported for a
 * Cortex-A (`make aarch64`). Everything is bit-exact with the reference:
 *
 * - Products and sums are exact. SDOT adds four int8 x int8 products to an int32 lane. The
 *   NEON-only path multiplies int8 pairs into int16 (SMULL, |x * w| <= 2^14) and adds
 *   neighbouring int16 lanes into int32 (SADALP); with `pairs` it first adds a second
 *   product in int16 (SMLAL), exact only when no weight is -128 (|x * w| <= 128 * 127, two
 *   of them < 2^15): the caller checks the weights once. Accumulators wrap like the rest of
 *   the core, and lowering checked that the true sums fit in int32.
 * - Double rounding: SQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly (ties
 *   up, INT32_MIN * INT32_MIN saturates); RoundingDivideByPOT (ties away from zero) is a
 *   rounding shift (SRSHL, ties up) after subtracting one from negative values, saturating
 *   (SQADD) so INT32_MIN stays put.
 * - float32 (XNNPACK): SCVTF, FMUL in float32, FCVTNS rounds to nearest with ties to even
 *   and saturates, as rint() then a clamp does.
 * - + zero point and the clamp: saturating narrows to int16, a saturating add of the zero
 *   point, a saturating narrow to int8 and the clamp give clamp(v + zero_point, lo, hi)
 *   for every int32 v (a saturated value stays beyond any int8 bound).
 *
 * Vector loads may read up to 15 bytes past the data (the core's arena and the exported
 * arena have slack for it; whatever those bytes are, they meet zero weights or are not
 * stored). */
#ifndef EC_A64_NEON_H
#define EC_A64_NEON_H

#include "ec_gemm_s8.h"

/* ADD's parameters (reference/elementwise.py add), each shift split into left = max(shift, 0)
   and right = max(-shift, 0). TFLite (xnnpack = 0, add_common.cc): left_shift and three
   double-rounding multipliers. XNNPACK (xnnpack = 1, qs8-vadd): m1, m2 and one right shift
   ro of the sum; left_shift, the l/r shifts and mo unused. */
typedef struct {
    int32_t zp1, zp2, out_zp, left_shift;
    int32_t m1, l1, r1, m2, l2, r2, mo, lo_shift, ro;
    int32_t act_min, act_max;
    int32_t xnnpack;
} ec_a64_add_params;

/* The largest window ec_a64_average_pool divides exactly in float32 (ec_a64_rounded_average). */
#define EC_A64_POOL_MAX_COUNT 65536

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>

#define EC_A64_INLINE static inline __attribute__((always_inline))
/* Loops over a tile's pixels and channel quarters (constant bounds once inlined) are
   unrolled completely, so every accumulator is a register, never an array in memory. */
#define EC_A64_UNROLL _Pragma("GCC unroll 8")
/* No instruction: a scheduling barrier, so GCC does not hoist later loads above earlier
   arithmetic and run out of vector registers (it then spills accumulators in the loop). */
#define EC_A64_STEP() __asm__ __volatile__("")
/* The SDOT code, whatever the file's -march: call it only where the CPU has the dot product
   (ARMv8.2-A FEAT_DotProd: HWCAP_ASIMDDP on Linux; a Raspberry Pi 5, not a Pi 4). */
#if defined(__ARM_FEATURE_DOTPROD)
#define EC_A64_DOTPROD   /* the whole file is built for such a CPU (e.g. -mcpu=cortex-a76):
                            a narrower target here would stop its helpers from inlining */
#else
#define EC_A64_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/* ---- output stages ------------------------------------------------------------------ */

/* reference.quant.multiply_by_quantized_multiplier on four lanes (double rounding), the
   shift split into left = max(shift, 0) and neg_right = -max(-shift, 0). */
EC_A64_INLINE int32x4_t ec_a64_mbqm(int32x4_t x, int32x4_t multiplier, int32x4_t left,
                                    int32x4_t neg_right)
{
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(x, left), multiplier);
    /* -1 for negative values when there is a right shift (neg_right < 0), else 0 */
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), neg_right);
}

/* Four int32 vectors + zero point, clamped to [lo, hi], as 16 bytes (see the top). */
EC_A64_INLINE int8x16_t ec_a64_narrow(int32x4_t q0, int32x4_t q1, int32x4_t q2, int32x4_t q3,
                                      int16x8_t zero_point, int8x16_t lo, int8x16_t hi)
{
    const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(q0), q1), zero_point);
    const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(q2), q3), zero_point);
    return vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(h0), h1), lo), hi);
}

/* The output stage of 16 channels starting at c, loaded once for many pixels. */
typedef struct {
    int32x4_t multiplier[4], left[4], neg_right[4];
    float32x4_t scale[4];
    int16x8_t zero_point;
    int8x16_t lo, hi;
} ec_a64_stage;

EC_A64_INLINE void ec_a64_stage_load(ec_a64_stage *s, const int mode, const ec_gemm_out *out,
                                     ptrdiff_t c)
{
    int j;
    s->zero_point = vdupq_n_s16((int16_t)out->zero_point);
    s->lo = vdupq_n_s8((int8_t)out->lo);
    s->hi = vdupq_n_s8((int8_t)out->hi);
    EC_A64_UNROLL for (j = 0; j < 4; ++j) {
        if (mode == EC_OUT_FLOAT32) {
            s->scale[j] = vld1q_f32(out->scale + c + 4 * j);
        } else {
            s->multiplier[j] = vld1q_s32(out->multiplier + c + 4 * j);
            s->left[j] = vld1q_s32(out->left + c + 4 * j);
            s->neg_right[j] = vnegq_s32(vld1q_s32(out->right + c + 4 * j));
        }
    }
}

/* One vector of 4 channels (j-th of the stage) before the zero point. */
EC_A64_INLINE int32x4_t ec_a64_stage_scale(const ec_a64_stage *s, const int mode, int j,
                                           int32x4_t acc)
{
    if (mode == EC_OUT_FLOAT32)
        return vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(acc), s->scale[j]));
    return ec_a64_mbqm(acc, s->multiplier[j], s->left[j], s->neg_right[j]);
}

EC_A64_INLINE int8x16_t ec_a64_stage_apply(const ec_a64_stage *s, const int mode,
                                           const int32x4_t acc[4])
{
    return ec_a64_narrow(ec_a64_stage_scale(s, mode, 0, acc[0]),
                         ec_a64_stage_scale(s, mode, 1, acc[1]),
                         ec_a64_stage_scale(s, mode, 2, acc[2]),
                         ec_a64_stage_scale(s, mode, 3, acc[3]), s->zero_point, s->lo, s->hi);
}

/* The first n (<= 16 stored, n > 0) bytes of v: a partial vector in pieces of 8, 4, 2, 1
   (no copy through memory, no call: GCC then keeps a tile's vectors in registers). */
EC_A64_INLINE void ec_a64_store_bytes(int8_t *dst, ptrdiff_t n, int8x16_t v)
{
    if (n >= 16) {
        vst1q_s8(dst, v);
        return;
    }
    if (n & 8) {
        vst1_s8(dst, vget_low_s8(v));
        v = vextq_s8(v, v, 8);
        dst += 8;
    }
    if (n & 4) {
        vst1q_lane_s32((int32_t *)(void *)dst, vreinterpretq_s32_s8(v), 0);
        v = vextq_s8(v, v, 4);
        dst += 4;
    }
    if (n & 2) {
        vst1q_lane_s16((int16_t *)(void *)dst, vreinterpretq_s16_s8(v), 0);
        v = vextq_s8(v, v, 2);
        dst += 2;
    }
    if (n & 1)
        vst1q_lane_s8(dst, v, 0);
}

/* A tile's channels of one pixel (nq quarters of 4): requantized bytes, or the int32
   accumulators; n of them stored (n > 0). */
EC_A64_INLINE void ec_a64_store_pixel(const int nq, const int mode, const ec_a64_stage *s,
                                      const int32x4_t acc[4], void *dst, ptrdiff_t n)
{
    int j;
    if (mode != EC_OUT_INT32) {
        if (nq == 2) {
            const int32x4_t zero = vdupq_n_s32(0);
            const int8x16_t v = ec_a64_narrow(ec_a64_stage_scale(s, mode, 0, acc[0]),
                                              ec_a64_stage_scale(s, mode, 1, acc[1]), zero, zero,
                                              s->zero_point, s->lo, s->hi);
            if (n >= 8) {
                vst1_s8((int8_t *)dst, vget_low_s8(v));
                return;
            }
            ec_a64_store_bytes((int8_t *)dst, n, v);
            return;
        }
        ec_a64_store_bytes((int8_t *)dst, n, ec_a64_stage_apply(s, mode, acc));
        return;
    }
    if (n >= 4 * nq) {
        EC_A64_UNROLL for (j = 0; j < nq; ++j)
            vst1q_s32((int32_t *)dst + 4 * j, acc[j]);
    } else {
        int32_t tmp[16];
        EC_A64_UNROLL for (j = 0; j < nq; ++j)
            vst1q_s32(tmp + 4 * j, acc[j]);
        memcpy(dst, tmp, (size_t)n * 4);
    }
}

/* The tile's output: its first `count` (<= mr) pixels x the 4 * nq channels at oc0 (fewer
   at the end of cout). Everything is read before the first store (int8 stores may alias
   anything, which would make GCC reload it after each). */
EC_A64_INLINE void ec_a64_tile_out(const int mr, const int nq, const int mode,
                                   int32x4_t acc[][4], ptrdiff_t count, ptrdiff_t oc0,
                                   ptrdiff_t cout, const ec_gemm_out *out, void *dst,
                                   ptrdiff_t dst_stride)
{
    const ptrdiff_t element = mode == EC_OUT_INT32 ? 4 : 1, n = cout - oc0;
    int8_t *first = (int8_t *)dst + oc0 * element;
    ec_a64_stage s;
    int p;
    if (mode != EC_OUT_INT32)
        ec_a64_stage_load(&s, mode, out, oc0);
    else
        memset(&s, 0, sizeof s);
    if (count >= mr && n >= 4 * nq) {   /* the usual tile: every pixel, every channel */
        EC_A64_UNROLL for (p = 0; p < mr; ++p)
            ec_a64_store_pixel(nq, mode, &s, acc[p], first + p * dst_stride * element, 4 * nq);
        return;
    }
    EC_A64_UNROLL for (p = 0; p < mr; ++p)
        if (p < count)
            ec_a64_store_pixel(nq, mode, &s, acc[p], first + p * dst_stride * element, n);
}

/* 4 input bytes of a pixel, repeated in every 32-bit lane (one LD1R; AArch64 loads need
   no alignment). */
EC_A64_INLINE int8x16_t ec_a64_load_quad(const int8_t *p)
{
    return vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)(const void *)p));
}

/* A tile's pixels, copied out of ec_gemm_windows into locals once per run of groups (the
   int8 stores of the output may alias anything, so GCC would reload the fields through a
   pointer after each store): their rows (count of them real, up to mr), the taps. */
typedef struct {
    const int8_t *base[8];
    ptrdiff_t count, ntaps, kq_per_tap;
    const ptrdiff_t *tap_offset;
} ec_a64_rows;

EC_A64_INLINE void ec_a64_rows_at(ec_a64_rows *r, const int mr, const ec_gemm_windows *win,
                                  ptrdiff_t first)
{
    int p;
    EC_A64_UNROLL for (p = 0; p < mr; ++p)
        r->base[p] = (const int8_t *)win->base[first + p];
    r->count = win->pixels - first;
    r->ntaps = win->ntaps;
    r->kq_per_tap = win->kq_per_tap;
    r->tap_offset = win->tap_offset;
}

/* ---- GEMM, NEON only (every AArch64 CPU: Cortex-A53, A72 = Raspberry Pi 3, 4) --------- */

/* One depth quad for mr pixels (x[p]: the pixel's 4 bytes repeated; w: 16 channels x 4
   depths, the first nq quarters used): the quarter j of the weights holds channels
   4j..4j+3 x 4 depths; SMULL / SMULL2 give the 16 products as int16, SADALP adds
   neighbours into int32: lo[j] = (c0: k0+k1, k2+k3, c1: ...), hi[j] the same for c2, c3. */
EC_A64_INLINE void ec_a64_neon_quad(const int mr, const int nq, int32x4_t lo[][4],
                                    int32x4_t hi[][4], const int8_t *w, const int8x16_t x[])
{
    int p, j;
    EC_A64_UNROLL for (j = 0; j < nq; ++j) {
        const int8x16_t wj = vld1q_s8(w + 16 * j);
        EC_A64_UNROLL for (p = 0; p < mr; ++p) {
            lo[p][j] = vpadalq_s16(lo[p][j], vmull_s8(vget_low_s8(wj), vget_low_s8(x[p])));
            hi[p][j] = vpadalq_s16(hi[p][j], vmull_high_s8(wj, x[p]));
        }
        if (mr > 1)   /* one pixel has registers to spare: let loads pair up */
            EC_A64_STEP();
    }
}

/* Two depth quads (w: the second 64 bytes on), their products summed in int16 first (SMLAL;
   exact when no weight is -128). */
EC_A64_INLINE void ec_a64_neon_quad_pair(const int mr, const int nq, int32x4_t lo[][4],
                                         int32x4_t hi[][4], const int8_t *w,
                                         const int8x16_t x0[], const int8x16_t x1[])
{
    int p, j;
    EC_A64_UNROLL for (j = 0; j < nq; ++j) {
        const int8x16_t w0 = vld1q_s8(w + 16 * j), w1 = vld1q_s8(w + 64 + 16 * j);
        EC_A64_UNROLL for (p = 0; p < mr; ++p) {
            int16x8_t l = vmull_s8(vget_low_s8(w0), vget_low_s8(x0[p]));
            int16x8_t h = vmull_high_s8(w0, x0[p]);
            l = vmlal_s8(l, vget_low_s8(w1), vget_low_s8(x1[p]));
            h = vmlal_high_s8(h, w1, x1[p]);
            lo[p][j] = vpadalq_s16(lo[p][j], l);
            hi[p][j] = vpadalq_s16(hi[p][j], h);
        }
        if (mr > 1)   /* one pixel has registers to spare: let loads pair up */
            EC_A64_STEP();
    }
}

/* One tile: mr pixels x nq quarters (4 channels each) of one group of 16 output channels (w
   at the group). A final pairwise add (ADDP) makes one lane per channel. With `pairs`, depth
   quads go two at a time: within a tap, or across taps when a tap is one quad deep. */
EC_A64_INLINE void ec_a64_tile_neon(const int mr, const int nq, const int mode,
                                    const int pairs, const ec_a64_rows *r, const int8_t *w,
                                    const int32_t *bias, ptrdiff_t oc0, ptrdiff_t cout,
                                    const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride)
{
    int32x4_t lo[8][4], hi[8][4], acc[8][4];
    int8x16_t x0[8], x1[8];
    const ptrdiff_t kq_per_tap = r->kq_per_tap, ntaps = r->ntaps;
    const ptrdiff_t *tap_offset = r->tap_offset;
    const int8_t *const *base = r->base;
    ptrdiff_t t, kq;
    int p, j;
    EC_A64_UNROLL for (p = 0; p < mr; ++p)
        EC_A64_UNROLL for (j = 0; j < nq; ++j)
            lo[p][j] = hi[p][j] = vdupq_n_s32(0);
    if (pairs && kq_per_tap == 1) {
        for (t = 0; t + 2 <= ntaps; t += 2, w += 128) {
            EC_A64_UNROLL for (p = 0; p < mr; ++p) {
                x0[p] = ec_a64_load_quad(base[p] + tap_offset[t]);
                x1[p] = ec_a64_load_quad(base[p] + tap_offset[t + 1]);
            }
            ec_a64_neon_quad_pair(mr, nq, lo, hi, w, x0, x1);
        }
        if (t < ntaps) {
            EC_A64_UNROLL for (p = 0; p < mr; ++p)
                x0[p] = ec_a64_load_quad(base[p] + tap_offset[t]);
            ec_a64_neon_quad(mr, nq, lo, hi, w, x0);
        }
    } else {
        for (t = 0; t < ntaps; ++t) {
            const int8_t *row[8];
            EC_A64_UNROLL for (p = 0; p < mr; ++p)
                row[p] = base[p] + tap_offset[t];
            kq = 0;
            if (pairs) {
                for (; kq + 2 <= kq_per_tap; kq += 2, w += 128) {
                    EC_A64_UNROLL for (p = 0; p < mr; ++p) {
                        x0[p] = ec_a64_load_quad(row[p] + 4 * kq);
                        x1[p] = ec_a64_load_quad(row[p] + 4 * kq + 4);
                    }
                    ec_a64_neon_quad_pair(mr, nq, lo, hi, w, x0, x1);
                }
            }
            for (; kq < kq_per_tap; ++kq, w += 64) {
                EC_A64_UNROLL for (p = 0; p < mr; ++p)
                    x0[p] = ec_a64_load_quad(row[p] + 4 * kq);
                ec_a64_neon_quad(mr, nq, lo, hi, w, x0);
            }
        }
    }
    EC_A64_UNROLL for (j = 0; j < nq; ++j) {
        const int32x4_t b = vld1q_s32(bias + oc0 + 4 * j);
        EC_A64_UNROLL for (p = 0; p < mr; ++p)
            acc[p][j] = vaddq_s32(b, vpaddq_s32(lo[p][j], hi[p][j]));
    }
    ec_a64_tile_out(mr, nq, mode, acc, r->count, oc0, cout, out, dst, dst_stride);
}

/* ---- GEMM with SDOT (ARMv8.2-A dot product: Cortex-A55, A76 = Raspberry Pi 5) --------- */

/* The first nq quarters of 64 weight bytes, in one LD1 of 2 or 4 registers. */
EC_A64_INLINE void ec_a64_load_weights(const int nq, int8x16_t wv[4], const int8_t *w)
{
    if (nq == 4) {
        const int8x16x4_t v = vld1q_s8_x4(w);
        wv[0] = v.val[0], wv[1] = v.val[1], wv[2] = v.val[2], wv[3] = v.val[3];
    } else {
        const int8x16x2_t v = vld1q_s8_x2(w);
        wv[0] = v.val[0], wv[1] = v.val[1];
    }
}

/* One tile: mr pixels x nq quarters of 4 channels; SDOT adds, per 32-bit lane, the 4
   products of a channel's 4 weights with the pixel's 4 bytes picked by lane (16 bytes = 4
   depth quads loaded at once where a tap has 4 or more). Each quad is a step: its nq weight
   vectors are loaded, used by every pixel, and dead before the next step's (EC_A64_STEP),
   so mr * nq accumulators + mr inputs + nq weights stay in registers (28 for 4 x 16). */
#define EC_A64_SDOT_QUAD(s)                                                                 \
    do {                                                                                    \
        int8x16_t wv[4];                                                                    \
        ec_a64_load_weights(nq, wv, w + 64 * (s));                                          \
        EC_A64_UNROLL for (p = 0; p < mr; ++p)                                              \
            EC_A64_UNROLL for (j = 0; j < nq; ++j)                                          \
                acc[p][j] = vdotq_laneq_s32(acc[p][j], wv[j], x[p], (s));                   \
        if (mr > 1)                                                                         \
            EC_A64_STEP();                                                                  \
    } while (0)

EC_A64_INLINE EC_A64_DOTPROD void ec_a64_tile_sdot(const int mr, const int nq, const int mode,
        const ec_a64_rows *r, const int8_t *w, const int32_t *bias, ptrdiff_t oc0,
        ptrdiff_t cout, const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride)
{
    int32x4_t acc[8][4];
    const ptrdiff_t kq_per_tap = r->kq_per_tap;
    ptrdiff_t ntaps = r->ntaps;
    ptrdiff_t t, kq;
    int p, j;
    EC_A64_UNROLL for (j = 0; j < nq; ++j) {
        const int32x4_t b = vld1q_s32(bias + oc0 + 4 * j);
        EC_A64_UNROLL for (p = 0; p < mr; ++p)
            acc[p][j] = b;
    }
    if (kq_per_tap == 1) {   /* first layers (3 channels): one quad per tap, lane 0 */
        for (t = 0; t < ntaps; ++t, w += 64) {
            const ptrdiff_t offset = r->tap_offset[t];
            int8x16_t x[8];
            EC_A64_UNROLL for (p = 0; p < mr; ++p)
                x[p] = vld1q_s8(r->base[p] + offset);
            EC_A64_SDOT_QUAD(0);
        }
        ntaps = 0;
    }
    for (t = 0; t < ntaps; ++t) {
        const int8_t *row[8];
        EC_A64_UNROLL for (p = 0; p < mr; ++p)
            row[p] = r->base[p] + r->tap_offset[t];
        for (kq = 0; kq + 4 <= kq_per_tap; kq += 4, w += 256) {
            int8x16_t x[8];
            EC_A64_UNROLL for (p = 0; p < mr; ++p)
                x[p] = vld1q_s8(row[p] + 4 * kq);
            EC_A64_SDOT_QUAD(0);
            EC_A64_SDOT_QUAD(1);
            EC_A64_SDOT_QUAD(2);
            EC_A64_SDOT_QUAD(3);
        }
        if (kq < kq_per_tap) {   /* 1 to 3 quads left: one 16-byte load, their lanes */
            const ptrdiff_t left = kq_per_tap - kq;
            int8x16_t x[8];
            EC_A64_UNROLL for (p = 0; p < mr; ++p)
                x[p] = vld1q_s8(row[p] + 4 * kq);
            EC_A64_SDOT_QUAD(0);
            if (left >= 2)
                EC_A64_SDOT_QUAD(1);
            if (left == 3)
                EC_A64_SDOT_QUAD(2);
            w += 64 * left;
        }
    }
    ec_a64_tile_out(mr, nq, mode, acc, r->count, oc0, cout, out, dst, dst_stride);
}
#undef EC_A64_SDOT_QUAD

/* ---- windows (the GEMM's input rows) ---------------------------------------------- */

static inline void ec_a64_copy_plain(uint8_t *dst, const int8_t *src, ptrdiff_t n)
{
    memcpy(dst, src, (size_t)n);
}

/* win->base for output pixels start .. start + win->pixels - 1 when windows are not read in
   place: a 1x1 stride-1 convolution reads its input pixels where they are (the row's depth
   rounded up to 4 reads into the next pixel, whose bytes meet zero weights); other windows
   are copied into `rows` (im2col, row_bytes apart). */
static inline void ec_a64_windows(ec_gemm_windows *win, uint8_t *rows, ptrdiff_t row_bytes,
                                  const int8_t *x, const ec_conv_geometry *g, ptrdiff_t start)
{
    const int pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
                          && g->hp == g->oh && g->wp == g->ow;
    ptrdiff_t p;
    if (!pointwise)
        ec_pack_windows_with(ec_a64_copy_plain, rows, row_bytes, x, g, start, win->pixels);
    for (p = 0; p < EC_GEMM_MAX_PIXELS; ++p) {
        const ptrdiff_t q = p < win->pixels ? p : 0;
        win->base[p] = pointwise ? (const uint8_t *)(x + (start + q) * g->cin)
                                 : rows + q * row_bytes;
    }
}

/* ---- GEMM drivers: every group of 16 channels for up to EC_GEMM_MAX_PIXELS pixels ---- */

/* Tiles over pixels first .. first + mr - 1 of win (fewer at its end; first + mr <= 8, so
   the rows past win->pixels it reads are win->base's repeats of base[0]), for the groups
   of 16 output channels from oc0 up to oc_end (w at the first, group_stride bytes apart). */
typedef void (*ec_a64_tile_fn)(const ec_gemm_windows *win, ptrdiff_t first, const int8_t *w,
                               ptrdiff_t group_stride, const int32_t *bias, ptrdiff_t oc0,
                               ptrdiff_t oc_end, ptrdiff_t cout, const ec_gemm_out *out,
                               void *dst, ptrdiff_t dst_stride);

/* The tiles of one kernel family and output mode: mr pixels x 16 channels, one pixel x 16,
   and for a last group of at most 8 channels mr8 pixels x 8, one pixel x 8. */
typedef struct {
    ec_a64_tile_fn wide, wide1, narrow, narrow1;
    int mr, mr8;
} ec_a64_tiles;

/* Instantiations with every constant fixed, so the accumulators live in registers; one
   call runs a run of groups (the rows and the saved registers are set up once). */
#define EC_A64_TILE_SIGNATURE(NAME)                                                         \
    void NAME(const ec_gemm_windows *win, ptrdiff_t first, const int8_t *w,                 \
              ptrdiff_t group_stride, const int32_t *bias, ptrdiff_t oc0, ptrdiff_t oc_end, \
              ptrdiff_t cout, const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride)
#define EC_A64_NEON_TILE(MR, NQ, MODE, PAIRS, NAME)                                         \
    static EC_A64_TILE_SIGNATURE(NAME)                                                      \
    {                                                                                       \
        ec_a64_rows r;                                                                      \
        ec_a64_rows_at(&r, MR, win, first);                                                 \
        if (oc_end - oc0 <= 16) {   /* one group: the common case, no loop to keep */        \
            ec_a64_tile_neon(MR, NQ, MODE, PAIRS, &r, w, bias, oc0, cout, out, dst,         \
                             dst_stride);                                                   \
            return;                                                                         \
        }                                                                                   \
        for (; oc0 < oc_end; oc0 += 16, w += group_stride)                                  \
            ec_a64_tile_neon(MR, NQ, MODE, PAIRS, &r, w, bias, oc0, cout, out, dst,         \
                             dst_stride);                                                   \
    }
#define EC_A64_SDOT_TILE(MR, NQ, MODE, NAME)                                                \
    EC_A64_DOTPROD static EC_A64_TILE_SIGNATURE(NAME)                                       \
    {                                                                                       \
        ec_a64_rows r;                                                                      \
        ec_a64_rows_at(&r, MR, win, first);                                                 \
        if (oc_end - oc0 <= 16) {                                                           \
            ec_a64_tile_sdot(MR, NQ, MODE, &r, w, bias, oc0, cout, out, dst, dst_stride);   \
            return;                                                                         \
        }                                                                                   \
        for (; oc0 < oc_end; oc0 += 16, w += group_stride)                                  \
            ec_a64_tile_sdot(MR, NQ, MODE, &r, w, bias, oc0, cout, out, dst, dst_stride);   \
    }
#define EC_A64_NEON_TILES(MODE, PAIRS, NAME)                                                \
    EC_A64_NEON_TILE(2, 4, MODE, PAIRS, NAME##_2x16)                                        \
    EC_A64_NEON_TILE(1, 4, MODE, PAIRS, NAME##_1x16)                                        \
    EC_A64_NEON_TILE(4, 2, MODE, PAIRS, NAME##_4x8)                                         \
    EC_A64_NEON_TILE(1, 2, MODE, PAIRS, NAME##_1x8)                                         \
    static const ec_a64_tiles NAME = {NAME##_2x16, NAME##_1x16, NAME##_4x8, NAME##_1x8, 2, 4};
#define EC_A64_SDOT_TILES(MODE, NAME)                                                       \
    EC_A64_SDOT_TILE(4, 4, MODE, NAME##_4x16)                                               \
    EC_A64_SDOT_TILE(1, 4, MODE, NAME##_1x16)                                               \
    EC_A64_SDOT_TILE(8, 2, MODE, NAME##_8x8)                                                \
    EC_A64_SDOT_TILE(1, 2, MODE, NAME##_1x8)                                                \
    static const ec_a64_tiles NAME = {NAME##_4x16, NAME##_1x16, NAME##_8x8, NAME##_1x8, 4, 8};
EC_A64_NEON_TILES(EC_OUT_DOUBLE, 1, ec_a64_neon_pairs_double)
EC_A64_NEON_TILES(EC_OUT_FLOAT32, 1, ec_a64_neon_pairs_float32)
EC_A64_NEON_TILES(EC_OUT_INT32, 1, ec_a64_neon_pairs_int32)
EC_A64_NEON_TILES(EC_OUT_DOUBLE, 0, ec_a64_neon_double)
EC_A64_NEON_TILES(EC_OUT_FLOAT32, 0, ec_a64_neon_float32)
EC_A64_NEON_TILES(EC_OUT_INT32, 0, ec_a64_neon_int32)
EC_A64_SDOT_TILES(EC_OUT_DOUBLE, ec_a64_sdot_double)
EC_A64_SDOT_TILES(EC_OUT_FLOAT32, ec_a64_sdot_float32)
EC_A64_SDOT_TILES(EC_OUT_INT32, ec_a64_sdot_int32)
#undef EC_A64_SDOT_TILES
#undef EC_A64_NEON_TILES
#undef EC_A64_SDOT_TILE
#undef EC_A64_NEON_TILE
#undef EC_A64_TILE_SIGNATURE

/* Runs tiles over the window's pixels in runs of the tile's height (a single pixel at the
   end), each over every group of 16 channels but a last one of at most 8, then that one
   8 wide. */
static inline void ec_a64_gemm_with(const ec_a64_tiles *tiles, const ec_gemm_windows *win,
                                    const int8_t *w, const int32_t *bias, ptrdiff_t cout,
                                    const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride)
{
    const ptrdiff_t group_stride = win->ntaps * win->kq_per_tap * 64;
    const ptrdiff_t element = out->mode == EC_OUT_INT32 ? 4 : 1;
    const ptrdiff_t wide_end = (cout + 7) / 16 * 16;   /* the 16-wide groups' channels */
    ptrdiff_t first;
    int8_t *const out0 = (int8_t *)dst;
    if (wide_end > 0)
        for (first = 0; first < win->pixels; first += tiles->mr)
            (win->pixels - first == 1 ? tiles->wide1 : tiles->wide)(
                win, first, w, group_stride, bias, 0, wide_end, cout, out,
                out0 + first * dst_stride * element, dst_stride);
    if (wide_end < cout)
        for (first = 0; first < win->pixels; first += tiles->mr8)
            (win->pixels - first == 1 ? tiles->narrow1 : tiles->narrow)(
                win, first, w + wide_end / 16 * group_stride, group_stride, bias, wide_end,
                cout, cout, out, out0 + first * dst_stride * element, dst_stride);
}

/* out[p][oc] for the window's pixels and every output channel (bias and the output stage's
   arrays are cout rounded up to 16 long); dst_stride counts elements of the output (int8,
   or int32 for EC_OUT_INT32). pairs: no weight is -128 (see the top). */
static inline void ec_a64_gemm_neon(const ec_gemm_windows *win, const int8_t *w,
                                    const int32_t *bias, ptrdiff_t cout,
                                    const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride,
                                    int pairs)
{
    const ec_a64_tiles *tiles;
    if (out->mode == EC_OUT_DOUBLE)
        tiles = pairs ? &ec_a64_neon_pairs_double : &ec_a64_neon_double;
    else if (out->mode == EC_OUT_FLOAT32)
        tiles = pairs ? &ec_a64_neon_pairs_float32 : &ec_a64_neon_float32;
    else
        tiles = pairs ? &ec_a64_neon_pairs_int32 : &ec_a64_neon_int32;
    ec_a64_gemm_with(tiles, win, w, bias, cout, out, dst, dst_stride);
}

/* The same contract with SDOT (call only on a CPU with the dot product). */
static inline void ec_a64_gemm_sdot(const ec_gemm_windows *win, const int8_t *w,
                                    const int32_t *bias, ptrdiff_t cout,
                                    const ec_gemm_out *out, void *dst, ptrdiff_t dst_stride)
{
    ec_a64_gemm_with(out->mode == EC_OUT_DOUBLE ? &ec_a64_sdot_double
                     : out->mode == EC_OUT_FLOAT32 ? &ec_a64_sdot_float32 : &ec_a64_sdot_int32,
                     win, w, bias, cout, out, dst, dst_stride);
}

/* ---- depthwise ------------------------------------------------------------------------ */

/* One row of depthwise output pixels, depth multiplier 1: for each output vector ox (its
   window at x + ox * pixel_step), acc[c] = bias[c] + sum over taps t of
   x[tap_offset[t] + c] * w[t][c] (w: int8 [ntaps][coutp], coutp a multiple of 16),
   requantized (EC_OUT_DOUBLE or EC_OUT_FLOAT32), stored at dst + ox * out_step + c (only the
   first row_elements bytes of the row). 16 lanes hold 16 channels of a pixel; with fewer
   channels and stride 1 they hold 16 / channels whole pixels (the caller passes the weights
   and output stage repeated, pixel_step = out_step = 16, cout = 16). SMULL gives a tap's
   products as int16, SMLAL adds a second tap's (with `pairs`: no weight is -128), SADDW
   widens them into the int32 accumulators. */
EC_A64_INLINE void ec_a64_depthwise_row_body(const int fixed_taps, const int mode,
        const int pairs, const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset,
        ptrdiff_t ntaps, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_gemm_out *out, int8_t *dst)
{
    ptrdiff_t c, ox, t;
    ptrdiff_t fixed_offset[9];   /* a fixed tap count's offsets, as locals (the int8 stores
                                    below could alias tap_offset[]: no reload per pixel) */
    if (fixed_taps)
        ntaps = fixed_taps;
    EC_A64_UNROLL for (t = 0; t < fixed_taps; ++t)
        fixed_offset[t] = tap_offset[t];
    for (c = 0; c < cout; c += 16) {
        ec_a64_stage s;
        const int8_t *pixel = x + c;
        int j;
        ec_a64_stage_load(&s, mode, out, c);
        int8x16_t wf[9];   /* a fixed tap count's weights, loaded once per 16 channels */
        EC_A64_UNROLL for (t = 0; t < fixed_taps; ++t)
            wf[t] = vld1q_s8(w + t * coutp + c);
        for (ox = 0; ox < ow; ++ox, pixel += pixel_step) {
            int32x4_t acc[4];
            ptrdiff_t valid = row_elements - ox * out_step - c;
            EC_A64_UNROLL for (j = 0; j < 4; ++j)   /* from memory: registers are scarce */
                acc[j] = vld1q_s32(bias + c + 4 * j);
            for (t = 0; t < ntaps; t += 1 + pairs) {
                const int8x16_t x0 = vld1q_s8(pixel + (fixed_taps ? fixed_offset[t]
                                                                   : tap_offset[t]));
                const int8x16_t w0 = fixed_taps ? wf[t] : vld1q_s8(w + t * coutp + c);
                int16x8_t l = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));
                int16x8_t h = vmull_high_s8(x0, w0);
                if (pairs && t + 1 < ntaps) {
                    const int8x16_t x1 = vld1q_s8(pixel + (fixed_taps ? fixed_offset[t + 1]
                                                                       : tap_offset[t + 1]));
                    const int8x16_t w1 = fixed_taps ? wf[t + 1]
                                                    : vld1q_s8(w + (t + 1) * coutp + c);
                    l = vmlal_s8(l, vget_low_s8(x1), vget_low_s8(w1));
                    h = vmlal_high_s8(h, x1, w1);
                }
                acc[0] = vaddw_s16(acc[0], vget_low_s16(l));
                acc[1] = vaddw_high_s16(acc[1], l);
                acc[2] = vaddw_s16(acc[2], vget_low_s16(h));
                acc[3] = vaddw_high_s16(acc[3], h);
            }
            if (valid > cout - c)
                valid = cout - c;
            ec_a64_store_bytes(dst + ox * out_step + c, valid, ec_a64_stage_apply(&s, mode, acc));
        }
    }
}

#define EC_A64_DEPTHWISE(TAPS, MODE, PAIRS, NAME)                                           \
    static void NAME(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step, ptrdiff_t out_step, \
                     ptrdiff_t row_elements, const ptrdiff_t *tap_offset, ptrdiff_t ntaps,  \
                     const int8_t *w, const int32_t *bias, ptrdiff_t cout, ptrdiff_t coutp, \
                     const ec_gemm_out *out, int8_t *dst)                                   \
    {                                                                                       \
        ec_a64_depthwise_row_body(TAPS, MODE, PAIRS, x, ow, pixel_step, out_step,           \
                                  row_elements, tap_offset, ntaps, w, bias, cout, coutp,    \
                                  out, dst);                                                \
    }
EC_A64_DEPTHWISE(9, EC_OUT_DOUBLE, 1, ec_a64_depthwise9p_double)
EC_A64_DEPTHWISE(9, EC_OUT_FLOAT32, 1, ec_a64_depthwise9p_float32)
EC_A64_DEPTHWISE(0, EC_OUT_DOUBLE, 1, ec_a64_depthwisep_double)
EC_A64_DEPTHWISE(0, EC_OUT_FLOAT32, 1, ec_a64_depthwisep_float32)
EC_A64_DEPTHWISE(0, EC_OUT_DOUBLE, 0, ec_a64_depthwise_double)
EC_A64_DEPTHWISE(0, EC_OUT_FLOAT32, 0, ec_a64_depthwise_float32)
#undef EC_A64_DEPTHWISE

/* The contract of ec_a64_depthwise_row_body, any taps (out->mode DOUBLE or FLOAT32). */
static inline void ec_a64_depthwise_row(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset, ptrdiff_t ntaps,
        const int8_t *w, const int32_t *bias, ptrdiff_t cout, ptrdiff_t coutp,
        const ec_gemm_out *out, int8_t *dst, int pairs)
{
    const int f32 = out->mode == EC_OUT_FLOAT32;
    if (pairs && ntaps == 9)   /* 3x3, by far the most common */
        (f32 ? ec_a64_depthwise9p_float32 : ec_a64_depthwise9p_double)(
            x, ow, pixel_step, out_step, row_elements, tap_offset, ntaps, w, bias, cout, coutp,
            out, dst);
    else if (pairs)
        (f32 ? ec_a64_depthwisep_float32 : ec_a64_depthwisep_double)(
            x, ow, pixel_step, out_step, row_elements, tap_offset, ntaps, w, bias, cout, coutp,
            out, dst);
    else
        (f32 ? ec_a64_depthwise_float32 : ec_a64_depthwise_double)(
            x, ow, pixel_step, out_step, row_elements, tap_offset, ntaps, w, bias, cout, coutp,
            out, dst);
}

/* One row of depthwise output pixels with depth multiplier > 1: output channel oc reads input
   channel oc / multiplier. For each output pixel ox (its window's corner at x + ox *
   pixel_step, tap t at + tap_offset[t]), acc[oc] = bias[oc] + sum over taps of
   x[oc / multiplier] * w[t][oc] (w: int8 [ntaps][coutp], coutp a multiple of 16), requantized
   (out->mode EC_OUT_DOUBLE or EC_OUT_FLOAT32) into dst + ox * cout + oc. A table lookup
   (TBL) spreads the input channels of 16 output lanes, fixed per group of 16, over them;
   products as int16 (SMULL), widened into int32 (SADDW). */
static inline void ec_a64_depthwise_multiplier_row(const int8_t *x, ptrdiff_t ow,
        ptrdiff_t pixel_step, const ptrdiff_t *tap_offset, ptrdiff_t ntaps,
        ptrdiff_t multiplier, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_gemm_out *out, int8_t *dst)
{
    const int mode = out->mode;
    ptrdiff_t c, ox, t;
    int j;
    for (c = 0; c < cout; c += 16) {
        const ptrdiff_t first = c / multiplier;   /* the group's first input channel */
        uint8_t lane[16];
        uint8x16_t spread;
        ec_a64_stage s;
        for (j = 0; j < 16; ++j)   /* (c + j) / m - c / m <= 15 / m + 1 < 16 */
            lane[j] = (uint8_t)((c + j) / multiplier - first);
        spread = vld1q_u8(lane);
        ec_a64_stage_load(&s, mode, out, c);
        for (ox = 0; ox < ow; ++ox) {
            const int8_t *pixel = x + ox * pixel_step + first;
            int32x4_t acc[4];
            for (j = 0; j < 4; ++j)
                acc[j] = vld1q_s32(bias + c + 4 * j);
            for (t = 0; t < ntaps; ++t) {
                const int8x16_t xv = vqtbl1q_s8(vld1q_s8(pixel + tap_offset[t]), spread);
                const int8x16_t wv = vld1q_s8(w + t * coutp + c);
                const int16x8_t l = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
                const int16x8_t h = vmull_high_s8(xv, wv);
                acc[0] = vaddw_s16(acc[0], vget_low_s16(l));
                acc[1] = vaddw_high_s16(acc[1], l);
                acc[2] = vaddw_s16(acc[2], vget_low_s16(h));
                acc[3] = vaddw_high_s16(acc[3], h);
            }
            ec_a64_store_bytes(dst + ox * cout + c, cout - c, ec_a64_stage_apply(&s, mode, acc));
        }
    }
}

/* ---- requantization rows ------------------------------------------------------------ */

/* dst[c] = the output stage of acc[c] (out->mode EC_OUT_DOUBLE or EC_OUT_FLOAT32, per-channel
   arrays n long) for c < n; nothing read or written past n (a last partial vector goes
   through zero-padded copies). */
static inline void ec_a64_requantize_row(const int32_t *acc, int8_t *dst, ptrdiff_t n,
                                         const ec_gemm_out *out)
{
    const int mode = out->mode;
    ec_a64_stage s;
    int32x4_t v[4];
    ptrdiff_t c;
    int j;
    for (c = 0; c + 16 <= n; c += 16) {
        ec_a64_stage_load(&s, mode, out, c);
        for (j = 0; j < 4; ++j)
            v[j] = vld1q_s32(acc + c + 4 * j);
        vst1q_s8(dst + c, ec_a64_stage_apply(&s, mode, v));
    }
    if (c < n) {
        const size_t rest = (size_t)(n - c);
        int32_t a[16] = {0}, m[16] = {0}, l[16] = {0}, r[16] = {0};
        float f[16] = {0};
        ec_gemm_out tail = *out;
        memcpy(a, acc + c, rest * sizeof a[0]);
        if (mode == EC_OUT_FLOAT32) {
            memcpy(f, out->scale + c, rest * sizeof f[0]);
        } else {
            memcpy(m, out->multiplier + c, rest * sizeof m[0]);
            memcpy(l, out->left + c, rest * sizeof l[0]);
            memcpy(r, out->right + c, rest * sizeof r[0]);
        }
        tail.multiplier = m;
        tail.left = l;
        tail.right = r;
        tail.scale = f;
        ec_a64_stage_load(&s, mode, &tail, 0);
        for (j = 0; j < 4; ++j)
            v[j] = vld1q_s32(a + 4 * j);
        ec_a64_store_bytes(dst + c, (ptrdiff_t)rest, ec_a64_stage_apply(&s, mode, v));
    }
}

/* ---- ADD ------------------------------------------------------------------------------ */

/* (x - zero point) << left_shift for the 8 int8 of x as two int32 vectors. */
EC_A64_INLINE void ec_a64_add_widen(int8x8_t x, int16x8_t zero_point, int32x4_t shift,
                                    int32x4_t *lo, int32x4_t *hi)
{
    const int16x8_t centred = vsubq_s16(vmovl_s8(x), zero_point);   /* |.| <= 255 */
    *lo = vshlq_s32(vmovl_s16(vget_low_s16(centred)), shift);
    *hi = vshlq_s32(vmovl_high_s16(centred), shift);
}

/* XNNPACK's ADD sums of 16 lanes: bias + a * m1 + b * m2 with the zero points folded into
   bias = -(zp1 * m1 + zp2 * m2) (exact: every term is below 2^29 in magnitude), then the
   rounding shift (SRSHL by -ro, ties up). */
EC_A64_INLINE void ec_a64_add16_xnnpack(int8x16_t va, int8x16_t vb, int32x4_t bias,
                                        int32x4_t m1, int32x4_t m2, int32x4_t neg_ro,
                                        int32x4_t sum[4])
{
    const int16x8_t a0 = vmovl_s8(vget_low_s8(va)), a1 = vmovl_high_s8(va);
    const int16x8_t b0 = vmovl_s8(vget_low_s8(vb)), b1 = vmovl_high_s8(vb);
    sum[0] = vmlaq_s32(vmlaq_s32(bias, vmovl_s16(vget_low_s16(a0)), m1),
                       vmovl_s16(vget_low_s16(b0)), m2);
    sum[1] = vmlaq_s32(vmlaq_s32(bias, vmovl_high_s16(a0), m1), vmovl_high_s16(b0), m2);
    sum[2] = vmlaq_s32(vmlaq_s32(bias, vmovl_s16(vget_low_s16(a1)), m1),
                       vmovl_s16(vget_low_s16(b1)), m2);
    sum[3] = vmlaq_s32(vmlaq_s32(bias, vmovl_high_s16(a1), m1), vmovl_high_s16(b1), m2);
    sum[0] = vrshlq_s32(sum[0], neg_ro);
    sum[1] = vrshlq_s32(sum[1], neg_ro);
    sum[2] = vrshlq_s32(sum[2], neg_ro);
    sum[3] = vrshlq_s32(sum[3], neg_ro);
}

/* 16 bytes of a and of b from where they point, the last partial vector (left < 16)
   through zeroed copies: nothing read past the rows. */
EC_A64_INLINE void ec_a64_add_load(const int8_t *a, const int8_t *b, ptrdiff_t left,
                                   int8x16_t *va, int8x16_t *vb)
{
    if (left >= 16) {
        *va = vld1q_s8(a);
        *vb = vld1q_s8(b);
    } else {
        int8_t ta[16] = {0}, tb[16] = {0};
        memcpy(ta, a, (size_t)left);
        memcpy(tb, b, (size_t)left);
        *va = vld1q_s8(ta);
        *vb = vld1q_s8(tb);
    }
}

/* TFLite's ADD: out = clamp(MBQM(MBQM((a - zp1) << left_shift, m1) + MBQM((b - zp2) <<
   left_shift, m2), mo) + out_zp), double rounding. */
static inline void ec_a64_add_rows_tflite(const int8_t *a, const int8_t *b, int8_t *out,
                                          ptrdiff_t n, const ec_a64_add_params *q)
{
    const int16x8_t zp1 = vdupq_n_s16((int16_t)q->zp1), zp2 = vdupq_n_s16((int16_t)q->zp2);
    const int16x8_t out_zp = vdupq_n_s16((int16_t)q->out_zp);
    const int32x4_t shift = vdupq_n_s32(q->left_shift);
    const int32x4_t m1 = vdupq_n_s32(q->m1), l1 = vdupq_n_s32(q->l1), r1 = vdupq_n_s32(-q->r1);
    const int32x4_t m2 = vdupq_n_s32(q->m2), l2 = vdupq_n_s32(q->l2), r2 = vdupq_n_s32(-q->r2);
    const int32x4_t mo = vdupq_n_s32(q->mo), lo_shift = vdupq_n_s32(q->lo_shift);
    const int32x4_t ro = vdupq_n_s32(-q->ro);
    const int8x16_t lo = vdupq_n_s8((int8_t)q->act_min), hi = vdupq_n_s8((int8_t)q->act_max);
    ptrdiff_t i;
    for (i = 0; i < n; i += 16) {
        int8x16_t va, vb;
        int32x4_t x[4], y[4], sum[4];
        int j;
        ec_a64_add_load(a + i, b + i, n - i, &va, &vb);
        ec_a64_add_widen(vget_low_s8(va), zp1, shift, &x[0], &x[1]);
        ec_a64_add_widen(vget_high_s8(va), zp1, shift, &x[2], &x[3]);
        ec_a64_add_widen(vget_low_s8(vb), zp2, shift, &y[0], &y[1]);
        ec_a64_add_widen(vget_high_s8(vb), zp2, shift, &y[2], &y[3]);
        for (j = 0; j < 4; ++j)
            sum[j] = ec_a64_mbqm(vaddq_s32(ec_a64_mbqm(x[j], m1, l1, r1),
                                           ec_a64_mbqm(y[j], m2, l2, r2)), mo, lo_shift, ro);
        ec_a64_store_bytes(out + i, n - i,
                           ec_a64_narrow(sum[0], sum[1], sum[2], sum[3], out_zp, lo, hi));
    }
}

/* XNNPACK's ADD: out = clamp((((a - zp1) * m1 + (b - zp2) * m2 + 2^(ro-1)) >> ro) + out_zp):
   the multipliers are below 2^21 (reference.quant.xnnpack_add_multipliers) so |sum| < 2^30,
   and SRSHL by -ro is exactly that rounding shift (ties up; ec_a64_add16_xnnpack). */
static inline void ec_a64_add_rows_xnnpack(const int8_t *a, const int8_t *b, int8_t *out,
                                           ptrdiff_t n, const ec_a64_add_params *q)
{
    const int16x8_t out_zp = vdupq_n_s16((int16_t)q->out_zp);
    const int32x4_t bias = vdupq_n_s32(-(q->zp1 * q->m1 + q->zp2 * q->m2));
    const int32x4_t m1 = vdupq_n_s32(q->m1), m2 = vdupq_n_s32(q->m2);
    const int32x4_t ro = vdupq_n_s32(-q->ro);
    const int8x16_t lo = vdupq_n_s8((int8_t)q->act_min), hi = vdupq_n_s8((int8_t)q->act_max);
    ptrdiff_t i;
    for (i = 0; i < n; i += 16) {
        int8x16_t va, vb;
        int32x4_t sum[4];
        ec_a64_add_load(a + i, b + i, n - i, &va, &vb);
        ec_a64_add16_xnnpack(va, vb, bias, m1, m2, ro, sum);
        ec_a64_store_bytes(out + i, n - i,
                           ec_a64_narrow(sum[0], sum[1], sum[2], sum[3], out_zp, lo, hi));
    }
}

/* ADD of two same-shape int8 rows of n (q->xnnpack picks the arithmetic), 16 at a time. */
static inline void ec_a64_add_rows(const int8_t *a, const int8_t *b, int8_t *out, ptrdiff_t n,
                                   const ec_a64_add_params *q)
{
    if (q->xnnpack)
        ec_a64_add_rows_xnnpack(a, b, out, n, q);
    else
        ec_a64_add_rows_tflite(a, b, out, n, q);
}

/* ---- AVERAGE_POOL_2D and MEAN: sums over taps ----------------------------------------- */

/* The sums of 16 channels over ny x nx taps (tap (iy, ix) at x + iy * row_stride + ix *
   tap_stride) plus start, as 4 int32 vectors. The lanes add in int16 for up to 256 taps
   at a time (|sum| <= 128 * 256 fits), then widen into int32. */
EC_A64_INLINE void ec_a64_sum_taps16(const int8_t *x, ptrdiff_t ny, ptrdiff_t nx,
                                     ptrdiff_t row_stride, ptrdiff_t tap_stride, int32_t start,
                                     int32x4_t sum[4])
{
    int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
    ptrdiff_t iy, ix;
    int pending = 0;
    sum[0] = sum[1] = sum[2] = sum[3] = vdupq_n_s32(start);
    for (iy = 0; iy < ny; ++iy) {
        const int8_t *row = x + iy * row_stride;
        for (ix = 0; ix < nx; ++ix) {
            const int8x16_t v = vld1q_s8(row + ix * tap_stride);
            lo = vaddw_s8(lo, vget_low_s8(v));
            hi = vaddw_high_s8(hi, v);
            if (++pending == 256) {
                sum[0] = vaddw_s16(sum[0], vget_low_s16(lo));
                sum[1] = vaddw_high_s16(sum[1], lo);
                sum[2] = vaddw_s16(sum[2], vget_low_s16(hi));
                sum[3] = vaddw_high_s16(sum[3], hi);
                lo = hi = vdupq_n_s16(0);
                pending = 0;
            }
        }
    }
    sum[0] = vaddw_s16(sum[0], vget_low_s16(lo));
    sum[1] = vaddw_high_s16(sum[1], lo);
    sum[2] = vaddw_s16(sum[2], vget_low_s16(hi));
    sum[3] = vaddw_high_s16(sum[3], hi);
}

/* reference.quant.rounded_average on 4 lanes: (sum + count / 2) / count for positive sums,
   (sum - count / 2) / count otherwise, C division (towards zero). In float32: for count <=
   EC_A64_POOL_MAX_COUNT the numerator (|.| <= 128.5 * count < 2^24) and count convert
   exactly; FDIV rounds the quotient q (|q| <= 128.5) correctly, with an error of at most
   2^-17 (half an ulp below 256), while a q that is not an integer lies at least 1 / count
   >= 2^-16 from every integer, so the rounding never reaches the next integer and FCVTZS's
   truncation gives C's quotient. */
EC_A64_INLINE int32x4_t ec_a64_rounded_average(int32x4_t sum, int32x4_t half, float32x4_t count)
{
    const int32x4_t numerator = vbslq_s32(vcgtzq_s32(sum), vaddq_s32(sum, half),
                                          vsubq_s32(sum, half));
    return vcvtq_s32_f32(vdivq_f32(vcvtq_f32_s32(numerator), count));
}

/* AVERAGE_POOL_2D int8 (reference/pooling.py): x [n][h][w][c] -> y [n][oh][ow][c], the
   average over each window's in-image taps (count = taps inside, at most
   EC_A64_POOL_MAX_COUNT: the caller checks fh * fw), clamped to [lo, hi]. Loads may read up
   to 15 bytes past a pixel's channels (the top of this file). */
static inline void ec_a64_average_pool(const int8_t *x, ptrdiff_t n, ptrdiff_t h, ptrdiff_t w,
                                       ptrdiff_t c, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t fh,
                                       ptrdiff_t fw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t top,
                                       ptrdiff_t left, int32_t lo, int32_t hi, int8_t *y)
{
    const int16x8_t no_offset = vdupq_n_s16(0);
    const int8x16_t vlo = vdupq_n_s8((int8_t)lo), vhi = vdupq_n_s8((int8_t)hi);
    ptrdiff_t b, oy, ox, ch;
    for (b = 0; b < n; ++b)
        for (oy = 0; oy < oh; ++oy) {
            const ptrdiff_t y0 = oy * sh - top < 0 ? 0 : oy * sh - top;
            const ptrdiff_t y1 = oy * sh - top + fh < h ? oy * sh - top + fh : h;
            for (ox = 0; ox < ow; ++ox) {
                const ptrdiff_t x0 = ox * sw - left < 0 ? 0 : ox * sw - left;
                const ptrdiff_t x1 = ox * sw - left + fw < w ? ox * sw - left + fw : w;
                const int32_t count = (int32_t)((y1 - y0) * (x1 - x0));
                const int32x4_t half = vdupq_n_s32(count / 2);
                const float32x4_t fcount = vdupq_n_f32((float)count);
                const int8_t *corner = x + ((b * h + y0) * w + x0) * c;
                int8_t *dst = y + ((b * oh + oy) * ow + ox) * c;
                for (ch = 0; ch < c; ch += 16) {
                    int32x4_t s[4];
                    int j;
                    ec_a64_sum_taps16(corner + ch, y1 - y0, x1 - x0, w * c, c, 0, s);
                    if (count > 0)
                        for (j = 0; j < 4; ++j)
                            s[j] = ec_a64_rounded_average(s[j], half, fcount);
                    ec_a64_store_bytes(dst + ch, c - ch,
                                       ec_a64_narrow(s[0], s[1], s[2], s[3], no_offset, vlo,
                                                     vhi));
                }
            }
        }
}

/* MEAN over a block of axes (reference/reduce.py): x [outer][reduced][inner] ->
   total[outer][inner] = start + the sum over the reduced axis (start: TFLite's
   -zero_point * count, XNNPACK's 0). */
static inline void ec_a64_mean_sums(const int8_t *x, ptrdiff_t outer, ptrdiff_t reduced,
                                    ptrdiff_t inner, int32_t start, int32_t *total)
{
    ptrdiff_t o, i;
    for (o = 0; o < outer; ++o)
        for (i = 0; i < inner; i += 16) {
            int32x4_t s[4];
            int32_t *dst = total + o * inner + i;
            int j;
            ec_a64_sum_taps16(x + o * reduced * inner + i, reduced, 1, inner, 0, start, s);
            if (inner - i >= 16) {
                for (j = 0; j < 4; ++j)
                    vst1q_s32(dst + 4 * j, s[j]);
            } else {
                int32_t tmp[16];
                for (j = 0; j < 4; ++j)
                    vst1q_s32(tmp + 4 * j, s[j]);
                memcpy(dst, tmp, (size_t)(inner - i) * sizeof tmp[0]);
            }
        }
}

/* XNNPACK's MEAN output (reference.quant.xnnpack_mean_convert): y = clamp(rint(float(total)
   * scale + zero_point), -128, 127), the multiply and the add rounded separately in float32
   (build with -ffp-contract=off, as ISO C modes do: a fused FMLA would round once), FCVTNS
   rounds ties to even and saturates. Nothing read or written past n. */
static inline void ec_a64_mean_xnnpack_row(const int32_t *total, ptrdiff_t n, float scale,
                                           float zero_point, int8_t *y)
{
    const float32x4_t vs = vdupq_n_f32(scale), vz = vdupq_n_f32(zero_point);
    const int16x8_t no_offset = vdupq_n_s16(0);
    const int8x16_t lo = vdupq_n_s8(-128), hi = vdupq_n_s8(127);
    ptrdiff_t i;
    for (i = 0; i < n; i += 16) {
        int32_t t[16] = {0};
        int32x4_t q[4];
        int j;
        const int32_t *src = total + i;
        if (n - i < 16) {
            memcpy(t, total + i, (size_t)(n - i) * sizeof t[0]);
            src = t;
        }
        for (j = 0; j < 4; ++j) {
            const float32x4_t product = vmulq_f32(vcvtq_f32_s32(vld1q_s32(src + 4 * j)), vs);
            q[j] = vcvtnq_s32_f32(vaddq_f32(product, vz));
        }
        ec_a64_store_bytes(y + i, n - i, ec_a64_narrow(q[0], q[1], q[2], q[3], no_offset, lo, hi));
    }
}

#endif /* __aarch64__ && __ARM_NEON */
#endif
