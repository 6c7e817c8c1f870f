/* The C kernels of the Cython core (edgecnn/_core.pyx): the loops that want intrinsics or
   `restrict` (int8 pointers may alias anything as far as C knows), chosen at run time.

   The extension is compiled for baseline x86-64 (or whatever the target's
   default is), so every function here that uses a newer instruction set
   carries a target attribute and is only called after ec_isa() said the CPU
   has it. ec_set_isa() lowers the level for tests and for users who want
   the portable paths (EDGECNN_ISA=baseline).

   The int8 GEMM with AVX-512 VNNI: VPDPBUSD multiplies 4 unsigned bytes by
   4 signed bytes and adds the 4 products to an int32 lane. Activations are
   int8, so the core feeds u = x + 128 (x ^ 0x80) and folds the difference
   into the bias at compile time:
       sum_k x[k] w[k] = sum_k u[k] w[k] - 128 * sum_k w[k].
   Products and sums are exact (|u * w| < 2^15, four of them < 2^17) and the
   int32 accumulation wraps like the rest of the core, so the accumulator is
   the same integer the reference computes; requantization then follows
   reference/quant.py exactly (see ec_requant_double_512). */
#ifndef EDGECNN_CORE_SIMD_H
#define EDGECNN_CORE_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

/* Instruction-set levels. AVX-VNNI is the 256-bit VEX form of VPDPBUSD (Alder Lake and
   later client CPUs, Zen 5); a CPU may have AVX-512 VNNI without it, so levels are checked
   one by one, not as a range. NEON is every AArch64 CPU (Raspberry Pi 3, 4), DOTPROD adds
   SDOT (ARMv8.2-A dot product: Raspberry Pi 5). The core prefers the highest level the CPU
   runs. */
enum { EC_ISA_BASELINE = 0, EC_ISA_AVX2 = 1, EC_ISA_AVX_VNNI = 2, EC_ISA_AVX512_VNNI = 3,
       EC_ISA_NEON = 4, EC_ISA_DOTPROD = 5, EC_ISA_LAST = EC_ISA_DOTPROD };

/* The packed-weight GEMM's types (output stage, windows), shared with the A-profile kernels
   of firmware_export/runtime/ec_a64_neon.h. */
#include "ec_gemm_s8.h"
typedef ec_gemm_out ec_requant;
typedef ec_gemm_windows ec_windows;

/* ADD's parameters (reference/elementwise.py add): the A-profile header's record (defined
   for every target; its kernels only on AArch64). */
#include "ec_a64_neon.h"
typedef ec_a64_add_params ec_add_params;

#if defined(__aarch64__) && defined(__ARM_NEON)
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)   /* Linux arm64 uapi hwcap.h */
#endif
#endif

static int ec_isa_mask = -1;     /* bit L set: the CPU runs level L */
static int ec_isa_level = -1;

static int ec_isa_supported_mask(void) {
    if (ec_isa_mask < 0) {
        int mask = 1 << EC_ISA_BASELINE;
#if defined(__GNUC__) && defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) {
            mask |= 1 << EC_ISA_AVX2;
            if (__builtin_cpu_supports("avxvnni"))
                mask |= 1 << EC_ISA_AVX_VNNI;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                    && __builtin_cpu_supports("avx512vl")
                    && __builtin_cpu_supports("avx512vnni"))
                mask |= 1 << EC_ISA_AVX512_VNNI;
        }
#elif defined(__aarch64__) && defined(__ARM_NEON)
        mask |= 1 << EC_ISA_NEON;
#if defined(__linux__)
        if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
            mask |= 1 << EC_ISA_DOTPROD;
#endif
#endif
        ec_isa_mask = mask;   /* benign race: every thread finds the same */
    }
    return ec_isa_mask;
}

/* The best level this CPU runs. */
static int ec_isa_supported(void) {
    const int mask = ec_isa_supported_mask();
    int level = EC_ISA_LAST;
    while (!(mask & (1 << level)))
        --level;
    return level;
}

static inline int ec_isa(void) {
    if (ec_isa_level < 0)
        ec_isa_level = ec_isa_supported();
    return ec_isa_level;
}

/* 0, or -1 when the CPU lacks the level (running it would be an illegal instruction). */
static int ec_set_isa(int level) {
    if (level < EC_ISA_BASELINE || level > EC_ISA_LAST
            || !(ec_isa_supported_mask() & (1 << level)))
        return -1;
    ec_isa_level = level;
    return 0;
}

/* ------------------------------------------------------------------------------------
   Kernels for every CPU: portable C, SSE2 where the target has it (baseline x86-64), AVX2
   variants chosen at run time.
   ------------------------------------------------------------------------------------ */

/* out[c] = clamp(MBQM(acc[c], multiplier[c], shift[c]) + zero_point) for a row of
   channels, double rounding, in the branch-free form of the same arithmetic:
   SRDHM(a, m) = floor((a * m + 2^30) / 2^31) = (a * m + 2^30) >> 31 (the saturating
   case INT32_MIN * INT32_MIN cannot occur: multipliers are positive), and
   RoundingDivideByPOT(v, r) = (v + 2^(r-1) - (v < 0)) >> r for r > 0 (ties away
   from zero). `left` and `right` are max(shift, 0) and max(-shift, 0). */
static inline void edgecnn_requantize_row_double_scalar(const int32_t *restrict acc,
        int8_t *restrict out, ptrdiff_t n, const int32_t *restrict multiplier,
        const int32_t *restrict left, const int32_t *restrict right,
        int32_t zero_point, int32_t lo, int32_t hi) {
    for (ptrdiff_t c = 0; c < n; ++c) {
        const int32_t shifted = (int32_t)((uint32_t)acc[c] << left[c]);
        int32_t v = (int32_t)(((int64_t)shifted * multiplier[c] + ((int64_t)1 << 30)) >> 31);
        const int32_t r = right[c];
        if (r > 0)
            v = (int32_t)(((int64_t)v + ((int64_t)1 << (r - 1)) - (v < 0)) >> r);
        /* clamp before adding the zero point: v + zero_point could overflow int32 */
        v = v < lo - zero_point ? lo - zero_point : (v > hi - zero_point ? hi - zero_point : v);
        out[c] = (int8_t)(v + zero_point);
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
/* The same, eight channels at a time with AVX2 (chosen at run time, the module itself
   is built for baseline x86-64): 32x32->64-bit products for even and odd lanes,
   + 2^30, >> 31 (the low 32 bits are SRDHM's result), then RoundingDivideByPOT in
   gemmlowp's form (v >> r) + ((v & mask) > (mask >> 1) + (v < 0)) with per-lane shifts,
   which never overflows. */
#define EC_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))

EC_AVX2_INLINE __m256i ec_mbqm_256(__m256i acc, __m256i m, __m256i left, __m256i r) {
    const __m256i nudge = _mm256_set1_epi64x((long long)1 << 30);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i x = _mm256_sllv_epi32(acc, left);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge), 31);
    const __m256i odd = _mm256_srli_epi64(_mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge), 31);
    const __m256i v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, r), one);
    const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1),
                                               _mm256_srli_epi32(v, 31));
    const __m256i up = _mm256_cmpgt_epi32(_mm256_and_si256(v, mask), threshold);
    return _mm256_sub_epi32(_mm256_srav_epi32(v, r), up);  /* up is -1 or 0 */
}

__attribute__((target("avx2")))
static void edgecnn_requantize_row_double_avx2(const int32_t *restrict acc,
        int8_t *restrict out, ptrdiff_t n, const int32_t *restrict multiplier,
        const int32_t *restrict left, const int32_t *restrict right,
        int32_t zero_point, int32_t lo, int32_t hi) {
    const __m256i vlo = _mm256_set1_epi32(lo - zero_point);
    const __m256i vhi = _mm256_set1_epi32(hi - zero_point);
    const __m256i vzp = _mm256_set1_epi32(zero_point);
    ptrdiff_t c = 0;
    int32_t tmp[8];
    for (; c + 8 <= n; c += 8) {
        __m256i q = ec_mbqm_256(_mm256_loadu_si256((const __m256i *)(acc + c)),
                                _mm256_loadu_si256((const __m256i *)(multiplier + c)),
                                _mm256_loadu_si256((const __m256i *)(left + c)),
                                _mm256_loadu_si256((const __m256i *)(right + c)));
        q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, vlo), vhi), vzp);
        _mm256_storeu_si256((__m256i *)tmp, q);
        for (int k = 0; k < 8; ++k)
            out[c + k] = (int8_t)tmp[k];
    }
    edgecnn_requantize_row_double_scalar(acc + c, out + c, n - c, multiplier + c, left + c,
                                         right + c, zero_point, lo, hi);
}

#endif

static inline void edgecnn_requantize_row_double(const int32_t *restrict acc,
        int8_t *restrict out, ptrdiff_t n, const int32_t *restrict multiplier,
        const int32_t *restrict left, const int32_t *restrict right,
        int32_t zero_point, int32_t lo, int32_t hi) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (n >= 8 && ec_isa() >= EC_ISA_AVX2) {
        edgecnn_requantize_row_double_avx2(acc, out, n, multiplier, left, right,
                                           zero_point, lo, hi);
        return;
    }
#elif defined(__aarch64__) && defined(__ARM_NEON)
    if (ec_isa() >= EC_ISA_NEON) {   /* the GEMM's vector output stage, ec_a64_mbqm */
        const ec_gemm_out stage = {EC_OUT_DOUBLE, multiplier, left, right, NULL, zero_point,
                                   lo, hi};
        ec_a64_requantize_row(acc, out, n, &stage);
        return;
    }
#endif
    edgecnn_requantize_row_double_scalar(acc, out, n, multiplier, left, right,
                                         zero_point, lo, hi);
}

/* Double-rounding MBQM for shift <= 0 with a positive multiplier, branch-free:
   see edgecnn_requantize_row_double. */
static inline int32_t edgecnn_mbqm_right(int32_t x, int32_t multiplier, int32_t right) {
    int32_t v = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
    if (right > 0)
        v = (int32_t)(((int64_t)v + ((int64_t)1 << (right - 1)) - (v < 0)) >> right);
    return v;
}
/* ADD of two same-shape int8 rows (add_common.cc), double rounding. */
static inline void edgecnn_add_row_double(const int8_t *restrict a, const int8_t *restrict b,
        int8_t *restrict out, ptrdiff_t n, int32_t zp1, int32_t zp2, int32_t out_zp,
        int32_t left_shift, int32_t m1, int32_t r1, int32_t m2, int32_t r2, int32_t mo,
        int32_t ro, int32_t lo, int32_t hi) {
    for (ptrdiff_t i = 0; i < n; ++i) {
        const int32_t va = edgecnn_mbqm_right((a[i] - zp1) * (1 << left_shift), m1, r1);
        const int32_t vb = edgecnn_mbqm_right((b[i] - zp2) * (1 << left_shift), m2, r2);
        const int32_t v = edgecnn_mbqm_right(va + vb, mo, ro);   /* clamp, then offset */
        out[i] = (int8_t)((v < lo - out_zp ? lo - out_zp : (v > hi - out_zp ? hi - out_zp : v))
                          + out_zp);
    }
}

/* One depthwise output pixel, depth multiplier 1: acc[c] = bias[c] + sum over taps
   t of x_t[c] * w_t[c]. Taps go in pairs: wpairs[j][c] holds (w_2j[c], w_2j+1[c])
   as int16 (an odd last tap is paired with zero weights), so with SSE2 one
   _mm_madd_epi16 adds two taps' products for four channels, exactly in int32.
   coutp is the channel count rounded up to 8; the bytes read past the last
   channel meet zero weights (the arena has slack for those reads). */
static inline void edgecnn_depthwise_pixel(int32_t *restrict acc,
        const int8_t *const *taps, ptrdiff_t ntaps, const int16_t *restrict wpairs,
        const int32_t *restrict bias, ptrdiff_t coutp) {
    const ptrdiff_t npairs = (ntaps + 1) / 2;
#if defined(__SSE2__)
    for (ptrdiff_t c = 0; c < coutp; c += 8) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(bias + c));
        __m128i hi = _mm_loadu_si128((const __m128i *)(bias + c + 4));
        for (ptrdiff_t j = 0; j < npairs; ++j) {
            const int8_t *x0 = taps[2 * j];
            const int8_t *x1 = 2 * j + 1 < ntaps ? taps[2 * j + 1] : x0;
            const __m128i a = _mm_loadl_epi64((const __m128i *)(x0 + c));
            const __m128i b = _mm_loadl_epi64((const __m128i *)(x1 + c));
            const __m128i a16 = _mm_srai_epi16(_mm_unpacklo_epi8(a, a), 8);
            const __m128i b16 = _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8);
            const int16_t *w = wpairs + (j * coutp + c) * 2;
            lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(a16, b16),
                                                  _mm_loadu_si128((const __m128i *)w)));
            hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(a16, b16),
                                                  _mm_loadu_si128((const __m128i *)(w + 8))));
        }
        _mm_storeu_si128((__m128i *)(acc + c), lo);
        _mm_storeu_si128((__m128i *)(acc + c + 4), hi);
    }
#else
    for (ptrdiff_t c = 0; c < coutp; ++c)
        acc[c] = bias[c];
    for (ptrdiff_t j = 0; j < npairs; ++j) {
        const int8_t *x0 = taps[2 * j];
        const int8_t *x1 = 2 * j + 1 < ntaps ? taps[2 * j + 1] : x0;
        const int16_t *w = wpairs + j * coutp * 2;
        for (ptrdiff_t c = 0; c < coutp; ++c)
            acc[c] += (int32_t)x0[c] * w[2 * c] + (int32_t)x1[c] * w[2 * c + 1];
    }
#endif
}

/* acc[o] = bias[o] + sum_i x[i] * w[o][i] for every output of one FC row, with int8
   weights (half the memory traffic of the int16 pairs the convolution GEMM reads: an
   FC touches each weight once per inference). AVX2, chosen at run time, multiplies 16
   sign-extended pairs per _mm256_madd_epi16; the portable loop is the same sum. */
static void edgecnn_fc_row_scalar(int32_t *restrict acc, const int8_t *restrict x,
                                  const int8_t *restrict w, const int32_t *restrict bias,
                                  ptrdiff_t out_f, ptrdiff_t in_f) {
    for (ptrdiff_t o = 0; o < out_f; ++o) {
        const int8_t *restrict wo = w + o * in_f;
        int32_t sum = 0;
        for (ptrdiff_t i = 0; i < in_f; ++i)
            sum += (int16_t)(x[i] * wo[i]);
        acc[o] = bias[o] + sum;
    }
}
#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2")))
static void edgecnn_fc_row_avx2(int32_t *restrict acc, const int8_t *restrict x,
                                const int8_t *restrict w, const int32_t *restrict bias,
                                ptrdiff_t out_f, ptrdiff_t in_f) {
    const ptrdiff_t vector_end = in_f & ~(ptrdiff_t)15;
    for (ptrdiff_t o = 0; o < out_f; ++o) {
        const int8_t *restrict wo = w + o * in_f;
        __m256i sum8 = _mm256_setzero_si256();
        for (ptrdiff_t i = 0; i < vector_end; i += 16) {
            const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + i)));
            const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wo + i)));
            sum8 = _mm256_add_epi32(sum8, _mm256_madd_epi16(xv, wv));
        }
        __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(sum8),
                                     _mm256_extracti128_si256(sum8, 1));
        sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0x4E));
        sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0xB1));
        int32_t sum = _mm_cvtsi128_si32(sum4);
        for (ptrdiff_t i = vector_end; i < in_f; ++i)
            sum += (int16_t)(x[i] * wo[i]);
        acc[o] = bias[o] + sum;
    }
}
#endif
static inline void edgecnn_fc_row(int32_t *restrict acc, const int8_t *restrict x,
                                  const int8_t *restrict w, const int32_t *restrict bias,
                                  ptrdiff_t out_f, ptrdiff_t in_f) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (in_f >= 16 && ec_isa() >= EC_ISA_AVX2) {
        edgecnn_fc_row_avx2(acc, x, w, bias, out_f, in_f);
        return;
    }
#endif
    edgecnn_fc_row_scalar(acc, x, w, bias, out_f, in_f);
}

/* acc[p][oc] += sum_k x_p[k] * w[k][oc] for a block of up to 4 pixels.

   Weights come in pairs along k, as int16: wpairs[(k/2) * coutp + oc][k % 2]
   (coutp = output channels rounded up to 8, depth rounded up to even, the
   padding zero). Each pixel's inputs come the same way, two int16 in one
   int32: xpairs[p][k/2]. With SSE2, one _mm_madd_epi16 then computes
   x[k] * w[k][oc] + x[k+1] * w[k+1][oc] for four channels at once, exactly
   in int32: every product fits in int16 * int16, and the accumulator's
   range was checked at lowering. Written in C for the intrinsics and for
   `restrict` (int8 pointers may alias anything as far as C knows). */
static inline void edgecnn_accumulate_pixels_portable(int32_t *restrict acc,
                                             const int32_t *restrict xpairs,
                                             ptrdiff_t pixels,
                                             const int16_t *restrict wpairs,
                                             ptrdiff_t kpairs, ptrdiff_t coutp) {
#if defined(__SSE2__)
    for (ptrdiff_t oc = 0; oc < coutp; oc += 4) {
        __m128i a0 = _mm_loadu_si128((const __m128i *)(acc + oc));
        __m128i a1 = pixels > 1 ? _mm_loadu_si128((const __m128i *)(acc + coutp + oc)) : a0;
        __m128i a2 = pixels > 2 ? _mm_loadu_si128((const __m128i *)(acc + 2 * coutp + oc)) : a0;
        __m128i a3 = pixels > 3 ? _mm_loadu_si128((const __m128i *)(acc + 3 * coutp + oc)) : a0;
        const int16_t *w = wpairs + 2 * oc;
        for (ptrdiff_t kp = 0; kp < kpairs; ++kp, w += 2 * coutp) {
            const __m128i wv = _mm_loadu_si128((const __m128i *)w);
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(wv, _mm_set1_epi32(xpairs[kp])));
            if (pixels > 1)
                a1 = _mm_add_epi32(a1, _mm_madd_epi16(wv, _mm_set1_epi32(xpairs[kpairs + kp])));
            if (pixels > 2)
                a2 = _mm_add_epi32(a2, _mm_madd_epi16(wv, _mm_set1_epi32(xpairs[2 * kpairs + kp])));
            if (pixels > 3)
                a3 = _mm_add_epi32(a3, _mm_madd_epi16(wv, _mm_set1_epi32(xpairs[3 * kpairs + kp])));
        }
        _mm_storeu_si128((__m128i *)(acc + oc), a0);
        if (pixels > 1) _mm_storeu_si128((__m128i *)(acc + coutp + oc), a1);
        if (pixels > 2) _mm_storeu_si128((__m128i *)(acc + 2 * coutp + oc), a2);
        if (pixels > 3) _mm_storeu_si128((__m128i *)(acc + 3 * coutp + oc), a3);
    }
#else
    for (ptrdiff_t p = 0; p < pixels; ++p) {
        int32_t *restrict acc_p = acc + p * coutp;
        for (ptrdiff_t kp = 0; kp < kpairs; ++kp) {
            const int32_t pair = xpairs[p * kpairs + kp];
            const int16_t x0 = (int16_t)(pair & 0xFFFF), x1 = (int16_t)(pair >> 16);
            const int16_t *restrict w = wpairs + 2 * kp * coutp;
            for (ptrdiff_t oc = 0; oc < coutp; ++oc)
                acc_p[oc] += (int32_t)x0 * w[2 * oc] + (int32_t)x1 * w[2 * oc + 1];
        }
    }
#endif
}

#if defined(__GNUC__) && defined(__x86_64__)
/* The same with AVX2: eight output channels per _mm256_madd_epi16 (coutp % 8 == 0). */
__attribute__((target("avx2")))
static void edgecnn_accumulate_pixels_avx2(int32_t *restrict acc,
                                           const int32_t *restrict xpairs, ptrdiff_t pixels,
                                           const int16_t *restrict wpairs, ptrdiff_t kpairs,
                                           ptrdiff_t coutp) {
    for (ptrdiff_t oc = 0; oc < coutp; oc += 8) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(acc + oc));
        __m256i a1 = pixels > 1 ? _mm256_loadu_si256((const __m256i *)(acc + coutp + oc)) : a0;
        __m256i a2 = pixels > 2 ? _mm256_loadu_si256((const __m256i *)(acc + 2 * coutp + oc)) : a0;
        __m256i a3 = pixels > 3 ? _mm256_loadu_si256((const __m256i *)(acc + 3 * coutp + oc)) : a0;
        const int16_t *w = wpairs + 2 * oc;
        for (ptrdiff_t kp = 0; kp < kpairs; ++kp, w += 2 * coutp) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(wv, _mm256_set1_epi32(xpairs[kp])));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(wv, _mm256_set1_epi32(xpairs[kpairs + kp])));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(wv, _mm256_set1_epi32(xpairs[2 * kpairs + kp])));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(wv, _mm256_set1_epi32(xpairs[3 * kpairs + kp])));
        }
        _mm256_storeu_si256((__m256i *)(acc + oc), a0);
        if (pixels > 1) _mm256_storeu_si256((__m256i *)(acc + coutp + oc), a1);
        if (pixels > 2) _mm256_storeu_si256((__m256i *)(acc + 2 * coutp + oc), a2);
        if (pixels > 3) _mm256_storeu_si256((__m256i *)(acc + 3 * coutp + oc), a3);
    }
}
#endif

static inline void edgecnn_accumulate_pixels(int32_t *restrict acc,
                                             const int32_t *restrict xpairs,
                                             ptrdiff_t pixels,
                                             const int16_t *restrict wpairs,
                                             ptrdiff_t kpairs, ptrdiff_t coutp) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (coutp % 8 == 0 && ec_isa() >= EC_ISA_AVX2) {
        edgecnn_accumulate_pixels_avx2(acc, xpairs, pixels, wpairs, kpairs, coutp);
        return;
    }
#endif
    edgecnn_accumulate_pixels_portable(acc, xpairs, pixels, wpairs, kpairs, coutp);
}

/* Two consecutive int8 inputs as the int16 pair the kernel above reads. */
static inline void edgecnn_pack_pairs(int32_t *restrict out, const int8_t *restrict x,
                                      ptrdiff_t depth) {
    ptrdiff_t k;
    for (k = 0; k + 1 < depth; k += 2)
        out[k / 2] = (int32_t)((uint32_t)(uint16_t)(int16_t)x[k] |
                               ((uint32_t)(uint16_t)(int16_t)x[k + 1] << 16));
    if (k < depth)
        out[k / 2] = (int32_t)(uint32_t)(uint16_t)(int16_t)x[k];
}

/* total[i] += x[i]: `restrict` lets the compiler vectorize the widening adds. */
static inline void edgecnn_accumulate_row(int32_t *restrict total, const int8_t *restrict x,
                                          ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; ++i)
        total[i] += x[i];
}


/* Whether ADD has a vector kernel at the core's level (ec_add_rows_simd) for this
   arithmetic (xnnpack: XNNPACK's qs8-vadd, else TFLite's double rounding). */
static inline int ec_add_rows_simd_available(int xnnpack) {
#if defined(__GNUC__) && defined(__x86_64__)
    return !xnnpack && ec_isa() >= EC_ISA_AVX2;
#elif defined(__aarch64__) && defined(__ARM_NEON)
    (void)xnnpack;
    return ec_isa() >= EC_ISA_NEON;
#else
    (void)xnnpack;
    return 0;
#endif
}

/* Whether the NEON row kernels of ec_a64_neon.h serve the core now (AArch64 at level neon
   or dotprod): the float32 requantization row, AVERAGE_POOL_2D, MEAN. */
static inline int ec_neon_rows(void) {
    return ec_isa() >= EC_ISA_NEON;
}

#if defined(__aarch64__) && defined(__ARM_NEON)
/* ------------------------------------------------------------------------------------
   AArch64: the NEON / SDOT kernels of firmware_export/runtime/ec_a64_neon.h on the GEMM's
   packed weights (the same layout as VNNI's, inputs signed: no flip, the bias folds the
   input zero point itself). SDOT is used when the core's level is dotprod.
   ------------------------------------------------------------------------------------ */
/* ec_a64_windows (im2col rows, or the input pixels of a 1x1 stride-1 convolution). */
static void ec_windows_arm(ec_windows *win, uint8_t *rows, ptrdiff_t row_bytes,
                           const int8_t *x, const ec_conv_geometry *g, ptrdiff_t start) {
    ec_a64_windows(win, rows, row_bytes, x, g, start);
}

/* out[p][oc] for the window's pixels, every output channel (see ec_a64_gemm_neon). */
static void ec_gemm_arm(const ec_windows *win, const int8_t *w, const int32_t *bias,
                        ptrdiff_t cout, const ec_requant *rq, void *out, ptrdiff_t out_stride,
                        int pairs) {
    if (ec_isa() == EC_ISA_DOTPROD)
        ec_a64_gemm_sdot(win, w, bias, cout, rq, out, out_stride);
    else
        ec_a64_gemm_neon(win, w, bias, cout, rq, out, out_stride, pairs);
}

/* ADD on NEON (ec_add_rows_simd_available). */
static void ec_add_rows_simd(const int8_t *a, const int8_t *b, int8_t *out, ptrdiff_t n,
                             const ec_add_params *q) {
    ec_a64_add_rows(a, b, out, n, q);
}

static void ec_depthwise_multiplier_row_arm(const int8_t *x, ptrdiff_t ow,
        ptrdiff_t pixel_step, const ptrdiff_t *tap_offset, ptrdiff_t ntaps,
        ptrdiff_t multiplier, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    ec_a64_depthwise_multiplier_row(x, ow, pixel_step, tap_offset, ntaps, multiplier, w, bias,
                                    cout, coutp, rq, out);
}

/* The float32 (XNNPACK) requantization of a row of channels (ec_neon_rows). */
static void ec_requantize_row_float32_neon(const int32_t *acc, int8_t *out, ptrdiff_t n,
                                           const float *scale, int32_t zero_point, int32_t lo,
                                           int32_t hi) {
    const ec_gemm_out stage = {EC_OUT_FLOAT32, NULL, NULL, NULL, scale, zero_point, lo, hi};
    ec_a64_requantize_row(acc, out, n, &stage);
}

static void ec_average_pool_neon(const int8_t *x, ptrdiff_t n, ptrdiff_t h, ptrdiff_t w,
        ptrdiff_t c, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t fh, ptrdiff_t fw, ptrdiff_t sh,
        ptrdiff_t sw, ptrdiff_t top, ptrdiff_t left, int32_t lo, int32_t hi, int8_t *y) {
    ec_a64_average_pool(x, n, h, w, c, oh, ow, fh, fw, sh, sw, top, left, lo, hi, y);
}

static void ec_mean_sums_neon(const int8_t *x, ptrdiff_t outer, ptrdiff_t reduced,
                              ptrdiff_t inner, int32_t start, int32_t *total) {
    ec_a64_mean_sums(x, outer, reduced, inner, start, total);
}

static void ec_mean_xnnpack_row_neon(const int32_t *total, ptrdiff_t n, float scale,
                                     float zero_point, int8_t *y) {
    ec_a64_mean_xnnpack_row(total, n, scale, zero_point, y);
}

static void ec_depthwise_row_arm(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset,
        ptrdiff_t ntaps, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out, int pairs) {
    ec_a64_depthwise_row(x, ow, pixel_step, out_step, row_elements, tap_offset, ntaps, w, bias,
                         cout, coutp, rq, out, pairs);
}
#else
/* Never called: core_backend only compiles ARM ops when ec_isa() reports NEON, and the row
   kernels run only when ec_neon_rows(). */
static void ec_depthwise_multiplier_row_arm(const int8_t *x, ptrdiff_t ow,
        ptrdiff_t pixel_step, const ptrdiff_t *tap_offset, ptrdiff_t ntaps,
        ptrdiff_t multiplier, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    (void)x; (void)ow; (void)pixel_step; (void)tap_offset; (void)ntaps; (void)multiplier;
    (void)w; (void)bias; (void)cout; (void)coutp; (void)rq; (void)out;
}
static void ec_requantize_row_float32_neon(const int32_t *acc, int8_t *out, ptrdiff_t n,
                                           const float *scale, int32_t zero_point, int32_t lo,
                                           int32_t hi) {
    (void)acc; (void)out; (void)n; (void)scale; (void)zero_point; (void)lo; (void)hi;
}
static void ec_average_pool_neon(const int8_t *x, ptrdiff_t n, ptrdiff_t h, ptrdiff_t w,
        ptrdiff_t c, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t fh, ptrdiff_t fw, ptrdiff_t sh,
        ptrdiff_t sw, ptrdiff_t top, ptrdiff_t left, int32_t lo, int32_t hi, int8_t *y) {
    (void)x; (void)n; (void)h; (void)w; (void)c; (void)oh; (void)ow; (void)fh; (void)fw;
    (void)sh; (void)sw; (void)top; (void)left; (void)lo; (void)hi; (void)y;
}
static void ec_mean_sums_neon(const int8_t *x, ptrdiff_t outer, ptrdiff_t reduced,
                              ptrdiff_t inner, int32_t start, int32_t *total) {
    (void)x; (void)outer; (void)reduced; (void)inner; (void)start; (void)total;
}
static void ec_mean_xnnpack_row_neon(const int32_t *total, ptrdiff_t n, float scale,
                                     float zero_point, int8_t *y) {
    (void)total; (void)n; (void)scale; (void)zero_point; (void)y;
}
static void ec_windows_arm(ec_windows *win, uint8_t *rows, ptrdiff_t row_bytes,
                           const int8_t *x, const ec_conv_geometry *g, ptrdiff_t start) {
    (void)win; (void)rows; (void)row_bytes; (void)x; (void)g; (void)start;
}
static void ec_gemm_arm(const ec_windows *win, const int8_t *w, const int32_t *bias,
                        ptrdiff_t cout, const ec_requant *rq, void *out, ptrdiff_t out_stride,
                        int pairs) {
    (void)win; (void)w; (void)bias; (void)cout; (void)rq; (void)out; (void)out_stride;
    (void)pairs;
}
static void ec_depthwise_row_arm(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset,
        ptrdiff_t ntaps, const int8_t *w, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out, int pairs) {
    (void)x; (void)ow; (void)pixel_step; (void)out_step; (void)row_elements; (void)tap_offset;
    (void)ntaps; (void)w; (void)bias; (void)cout; (void)coutp; (void)rq; (void)out;
    (void)pairs;
}
#endif

/* ------------------------------------------------------------------------------------
   AVX-512 VNNI kernels (chosen at run time; see the top of this file).
   ------------------------------------------------------------------------------------ */

#if defined(__GNUC__) && defined(__x86_64__)
#define EC_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define EC_VNNI_INLINE static inline __attribute__((always_inline)) EC_VNNI_TARGET

/* dst[i] = src[i] + 128 as uint8 (the flip to VPDPBUSD's unsigned operand). */
EC_VNNI_TARGET static void ec_copy_flip_vnni(uint8_t *restrict dst, const int8_t *restrict src,
                                             ptrdiff_t n) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    ptrdiff_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), flip));
    if (i < n) {
        const __mmask64 m = ((uint64_t)1 << (n - i)) - 1;   /* n - i < 64 */
        _mm512_mask_storeu_epi8(dst + i, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + i),
                                                             flip));
    }
}

/* dst[i] = src[i] ^ 0x80 for i < n, in whole vectors: up to 63 bytes past n are read
   (the arena has READ_SLACK bytes after the last tensor) and written (the caller's buffer
   has as much slack, and later copies overwrite what lands in the next window). Masked
   loads and stores would be exact but cost more than the copy itself. */
EC_VNNI_TARGET static void ec_copy_flip_over(uint8_t *restrict dst, const int8_t *restrict src,
                                             ptrdiff_t n) {
    if (n <= 16) {
        _mm_storeu_si128((__m128i *)dst, _mm_xor_si128(_mm_loadu_si128((const __m128i *)src),
                                                       _mm_set1_epi8((char)0x80)));
    } else if (n <= 32) {
        _mm256_storeu_si256((__m256i *)dst, _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)src), _mm256_set1_epi8((char)0x80)));
    } else {
        for (ptrdiff_t i = 0; i < n; i += 64)
            _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i),
                                                          _mm512_set1_epi8((char)0x80)));
    }
}

/* Sixteen lanes of reference.quant.multiply_by_quantized_multiplier (double rounding)
   with shifts split into left = max(shift, 0) and right = max(-shift, 0).
   SRDHM(a, m) = (a * m + 2^30) >> 31 for a positive multiplier (floor division; the
   saturating case needs m = INT32_MIN), computed on the even and odd lanes as 64-bit
   products; RoundingDivideByPOT in gemmlowp's form
   (v >> r) + ((v & mask) > (mask >> 1) + (v < 0)). */
EC_VNNI_INLINE __m512i ec_mbqm_512(__m512i acc, __m512i multiplier, __m512i left,
                                   __m512i right) {
    const __m512i nudge = _mm512_set1_epi64((long long)1 << 30);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i x = _mm512_sllv_epi32(acc, left);
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, multiplier),
                                                            nudge), 31);
    const __m512i odd = _mm512_slli_epi64(_mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(multiplier, 32)), nudge), 1);
    const __m512i v = _mm512_mask_blend_epi32(0xAAAA, even, odd);  /* odd: the high halves */
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    const __m512i threshold = _mm512_add_epi32(_mm512_srli_epi32(mask, 1),
                                               _mm512_srli_epi32(v, 31));
    const __mmask16 up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(v, mask), threshold);
    const __m512i q = _mm512_srav_epi32(v, right);
    return _mm512_mask_add_epi32(q, up, q, one);
}

/* ... + zero point, clamped to [lo, hi] (given here minus the zero point: clamping before
   the zero point is added keeps the sum from overflowing). */
EC_VNNI_INLINE __m512i ec_requant_double_512(__m512i acc, __m512i multiplier, __m512i left,
                                             __m512i right, __m512i lo, __m512i hi,
                                             __m512i zero_point) {
    const __m512i q = ec_mbqm_512(acc, multiplier, left, right);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), zero_point);
}

/* reference.quant.requantize_float32: rint(float(acc) * scale) with ties to even (the
   MXCSR default), + zero point, clamped. Clamping the float to the integer bounds first
   gives the same result (rint is monotonic, the bounds are integers) and keeps the
   conversion in range. */
EC_VNNI_INLINE __m512i ec_requant_float32_512(__m512i acc, __m512 scale, __m512 lo, __m512 hi,
                                              __m512i zero_point) {
    const __m512 scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(scaled, lo), hi)),
                            zero_point);
}

static inline __mmask16 ec_lanes_below(ptrdiff_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}

/* Sixteen int32 lanes (already in -128..127) stored as bytes, only `lanes` of them. */
EC_VNNI_INLINE void ec_store_bytes(int8_t *out, __mmask16 lanes, __m512i v) {
    _mm_mask_storeu_epi8(out, lanes, _mm512_cvtepi32_epi8(v));
}

static inline int32_t ec_load_u32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}


#define EC_V __m512i
#define EC_V_LANES 16
#define EC_V_TARGET EC_VNNI_TARGET
#define EC_V_INLINE EC_VNNI_INLINE
#define EC_V_NAME(f) f##_512
#define EC_V_LOADU(p) _mm512_loadu_si512(p)
#define EC_V_WIDEN(p) _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define EC_V_PAIR(t0, t1) _mm512_mask_blend_epi16(0xAAAAAAAA, (t0), _mm512_slli_epi32((t1), 16))
#define EC_V_DPWSSD(acc, a, b) _mm512_dpwssd_epi32((acc), (a), (b))
#define EC_V_MADD(a, b) _mm512_madd_epi16((a), (b))
#define EC_V_ADD(a, b) _mm512_add_epi32((a), (b))
#define EC_V_STORE(out, n, v) ec_store_bytes((out), ec_lanes_below(n), (v))
#define EC_V_TARGET_PLAIN EC_VNNI_TARGET
#define EC_V_SET1(v) _mm512_set1_epi32(v)
#define EC_V_SUB(a, b) _mm512_sub_epi32((a), (b))
#define EC_V_SLLV(a, b) _mm512_sllv_epi32((a), (b))
#define EC_V_WIDEN_N(p, n) _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(ec_lanes_below(n), (p)))
#define EC_V_MBQM(x, m, l, r) ec_mbqm_512((x), (m), (l), (r))
#define EC_V_REQUANT_DOUBLE(acc, m, l, r, lo, hi, zp) \
    ec_requant_double_512((acc), (m), (l), (r), (lo), (hi), (zp))
#define EC_VF __m512
#define EC_V_DPBUSD(acc, u8, s8) _mm512_dpbusd_epi32((acc), (u8), (s8))
#define EC_V_STORE_INT32(out, n, v) _mm512_mask_storeu_epi32((out), ec_lanes_below(n), (v))
#define EC_V_SET1_PS(v) _mm512_set1_ps(v)
#define EC_V_LOADU_PS(p) _mm512_loadu_ps(p)
#define EC_V_REQUANT_FLOAT32(acc, scale, lo, hi, zp) \
    ec_requant_float32_512((acc), (scale), (lo), (hi), (zp))
#include "_core_kernels.inc"   /* (it #undefs the EC_V_* macros) */

#define EC_VNNI_TILE(MR, NB)                                                                  \
    EC_VNNI_TARGET static void ec_vnni_tile_##MR##x##NB(                                      \
            const ec_windows *win, const int8_t *w, const int32_t *bias, ptrdiff_t oc0,       \
            ptrdiff_t cout, const ec_requant *rq, void *out, ptrdiff_t out_stride) {          \
        ec_gemm_tile_512(MR, NB, win, w, bias, oc0, cout, rq, out, out_stride);               \
    }
EC_VNNI_TILE(8, 2)
EC_VNNI_TILE(8, 1)
EC_VNNI_TILE(4, 2)
EC_VNNI_TILE(4, 1)
EC_VNNI_TILE(1, 8)
EC_VNNI_TILE(1, 1)

/* out[p][oc] for the window's pixels (<= 8) and every output channel; bias and the
   requantization arrays are cout rounded up to 16 long. out_stride counts elements of
   the output (int8, or int32 for EC_OUT_INT32). */
EC_VNNI_TARGET static void ec_gemm_vnni512(const ec_windows *win, const int8_t *w,
                                           const int32_t *bias, ptrdiff_t cout,
                                           const ec_requant *rq, void *out,
                                           ptrdiff_t out_stride) {
    const ptrdiff_t groups = (cout + 15) / 16;
    const ptrdiff_t group_stride = win->ntaps * win->kq_per_tap * 64;
    ptrdiff_t g = 0;
    if (win->pixels == 1) {      /* a fully connected row: 8 groups keep 8 chains busy */
        for (; g + 8 <= groups; g += 8)
            ec_vnni_tile_1x8(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
        for (; g < groups; ++g)
            ec_vnni_tile_1x1(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
    } else if (win->pixels <= 4) {
        for (; g + 2 <= groups; g += 2)
            ec_vnni_tile_4x2(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
        if (g < groups)
            ec_vnni_tile_4x1(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
    } else {
        for (; g + 2 <= groups; g += 2)
            ec_vnni_tile_8x2(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
        if (g < groups)
            ec_vnni_tile_8x1(win, w + g * group_stride, bias, 16 * g, cout, rq, out, out_stride);
    }
}

/* The input of a convolution read in place: flipped to uint8, padded with the flipped
   zero point (dst [n][hp][wp][c], the image at (top, left)). Exact copies: the padding
   around each row must survive. */
static void ec_pad_flip_with(ec_copy_fn copy_exact, const int8_t *src, uint8_t *dst,
        ptrdiff_t n, ptrdiff_t h, ptrdiff_t w, ptrdiff_t c, ptrdiff_t hp, ptrdiff_t wp,
        ptrdiff_t top, ptrdiff_t left, int8_t zero_point) {
    if (hp != h || wp != w)
        memset(dst, (uint8_t)zero_point ^ 0x80, (size_t)(n * hp * wp * c));
    for (ptrdiff_t b = 0; b < n; ++b)
        for (ptrdiff_t y = 0; y < h; ++y)
            copy_exact(dst + ((b * hp + y + top) * wp + left) * c, src + (b * h + y) * w * c,
                       w * c);
}


/* ------------------------------------------------------------------------------------
   AVX-VNNI (the 256-bit VEX form of VPDPBUSD, with AVX2): the same GEMM on the same weight
   layout for CPUs without AVX-512 (Alder Lake and later client CPUs). Eight channels per
   vector, so a 16-channel group is two vectors, and 16 vector registers hold tiles of 4
   pixels x 16 channels.
   ------------------------------------------------------------------------------------ */

#define EC_AVXVNNI_TARGET __attribute__((target("avx2,avxvnni")))
#define EC_AVXVNNI_INLINE static inline __attribute__((always_inline)) EC_AVXVNNI_TARGET

/* ec_copy_flip_over with 32-byte vectors: reads and writes up to 31 bytes past n. */
__attribute__((target("avx2")))
static void ec_copy_flip_over_avx2(uint8_t *restrict dst, const int8_t *restrict src,
                                   ptrdiff_t n) {
    if (n <= 16) {
        _mm_storeu_si128((__m128i *)dst, _mm_xor_si128(_mm_loadu_si128((const __m128i *)src),
                                                       _mm_set1_epi8((char)0x80)));
        return;
    }
    for (ptrdiff_t i = 0; i < n; i += 32)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)(src + i)), _mm256_set1_epi8((char)0x80)));
}

/* dst[i] = src[i] ^ 0x80 for exactly i < n. */
__attribute__((target("avx2")))
static void ec_copy_flip_avx2(uint8_t *restrict dst, const int8_t *restrict src, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)(src + i)), _mm256_set1_epi8((char)0x80)));
    for (; i < n; ++i)
        dst[i] = (uint8_t)(src[i] ^ 0x80);
}

/* Eight int32 lanes (already in -128..127) stored as n <= 8 bytes. */
EC_AVX2_INLINE void ec_store_bytes_256(int8_t *out, ptrdiff_t n, __m256i v) {
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(v),
                                          _mm256_extracti128_si256(v, 1));
    const __m128i bytes = _mm_packs_epi16(words, words);
    if (n >= 8) {
        _mm_storel_epi64((__m128i *)out, bytes);
    } else if (n > 0) {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, bytes);
        memcpy(out, tmp, (size_t)n);
    }
}

/* ec_requant_double_512 with 256-bit vectors. */
EC_AVX2_INLINE __m256i ec_requant_double_256(__m256i acc, __m256i multiplier, __m256i left,
                                             __m256i right, __m256i lo, __m256i hi,
                                             __m256i zero_point) {
    const __m256i q = ec_mbqm_256(acc, multiplier, left, right);
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, lo), hi), zero_point);
}

/* The first min(n, 8) int8 at p, sign-extended (nothing read past them). */
EC_AVX2_INLINE __m256i ec_widen_n_256(const int8_t *p, ptrdiff_t n) {
    if (n >= 8)
        return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
    int8_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)n);
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)tmp));
}

/* Eight int32 lanes stored as n <= 8 int32. */
EC_AVX2_INLINE void ec_store_int32_256(int32_t *out, ptrdiff_t n, __m256i v) {
    if (n >= 8) {
        _mm256_storeu_si256((__m256i *)out, v);
    } else if (n > 0) {
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, v);
        memcpy(out, tmp, (size_t)n * 4);
    }
}

/* ec_requant_float32_512 with 256-bit vectors. */
EC_AVX2_INLINE __m256i ec_requant_float32_256(__m256i acc, __m256 scale, __m256 lo, __m256 hi,
                                              __m256i zero_point) {
    const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(scaled, lo), hi)),
                            zero_point);
}

#define EC_V __m256i
#define EC_V_LANES 8
#define EC_V_TARGET EC_AVXVNNI_TARGET
#define EC_V_INLINE EC_AVXVNNI_INLINE
#define EC_V_NAME(f) f##_256
#define EC_V_LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define EC_V_WIDEN(p) _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#define EC_V_PAIR(t0, t1) _mm256_blend_epi16((t0), _mm256_slli_epi32((t1), 16), 0xAA)
#define EC_V_DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32((acc), (a), (b))
#define EC_V_MADD(a, b) _mm256_madd_epi16((a), (b))
#define EC_V_ADD(a, b) _mm256_add_epi32((a), (b))
#define EC_V_STORE(out, n, v) ec_store_bytes_256((out), (n), (v))
#define EC_V_TARGET_PLAIN __attribute__((target("avx2")))
#define EC_V_SET1(v) _mm256_set1_epi32(v)
#define EC_V_SUB(a, b) _mm256_sub_epi32((a), (b))
#define EC_V_SLLV(a, b) _mm256_sllv_epi32((a), (b))
#define EC_V_WIDEN_N(p, n) ec_widen_n_256((p), (n))
#define EC_V_MBQM(x, m, l, r) ec_mbqm_256((x), (m), (l), (r))
#define EC_V_REQUANT_DOUBLE(acc, m, l, r, lo, hi, zp) \
    ec_requant_double_256((acc), (m), (l), (r), (lo), (hi), (zp))
#define EC_VF __m256
#define EC_V_DPBUSD(acc, u8, s8) _mm256_dpbusd_avx_epi32((acc), (u8), (s8))
#define EC_V_STORE_INT32(out, n, v) ec_store_int32_256((out), (n), (v))
#define EC_V_SET1_PS(v) _mm256_set1_ps(v)
#define EC_V_LOADU_PS(p) _mm256_loadu_ps(p)
#define EC_V_REQUANT_FLOAT32(acc, scale, lo, hi, zp) \
    ec_requant_float32_256((acc), (scale), (lo), (hi), (zp))
#include "_core_kernels.inc"   /* (it #undefs the EC_V_* macros) */

EC_AVXVNNI_TARGET static void ec_avxvnni_tile_4(const ec_windows *win, const int8_t *w,
        const int32_t *bias, ptrdiff_t oc0, ptrdiff_t cout, const ec_requant *rq, void *out,
        ptrdiff_t out_stride) {
    ec_gemm_tile_256(4, 2, win, w, bias, oc0, cout, rq, out, out_stride);   /* 2 vectors: 16 */
}

EC_AVXVNNI_TARGET static void ec_avxvnni_tile_1(const ec_windows *win, const int8_t *w,
        const int32_t *bias, ptrdiff_t oc0, ptrdiff_t cout, const ec_requant *rq, void *out,
        ptrdiff_t out_stride) {
    ec_gemm_tile_256(1, 2, win, w, bias, oc0, cout, rq, out, out_stride);
}

/* ec_gemm_vnni512's contract with 256-bit vectors: the pixels in runs of 4. */
static void ec_gemm_avxvnni(const ec_windows *win, const int8_t *w, const int32_t *bias,
                            ptrdiff_t cout, const ec_requant *rq, void *out,
                            ptrdiff_t out_stride) {
    const ptrdiff_t groups = (cout + 15) / 16;
    const ptrdiff_t group_stride = win->ntaps * win->kq_per_tap * 64;
    const ptrdiff_t element = rq->mode == EC_OUT_INT32 ? 4 : 1;
    for (ptrdiff_t first = 0; first < win->pixels; first += 4) {
        ec_windows part = *win;
        part.pixels = win->pixels - first < 4 ? win->pixels - first : 4;
        for (int p = 0; p < 4; ++p)
            part.base[p] = win->base[first + p < win->pixels ? first + p : first];
        void *part_out = (uint8_t *)out + first * out_stride * element;
        for (ptrdiff_t g = 0; g < groups; ++g) {
            if (part.pixels == 1)
                ec_avxvnni_tile_1(&part, w + g * group_stride, bias, 16 * g, cout, rq, part_out,
                                  out_stride);
            else
                ec_avxvnni_tile_4(&part, w + g * group_stride, bias, 16 * g, cout, rq, part_out,
                                  out_stride);
        }
    }
}


/* The VNNI entry points pick the vector width: AVX-512 when the core may use it (or the
   CPU has nothing else: an op compiled for it keeps working if the level is lowered). */
static inline int ec_use_avx512(void) {
    return ec_isa() == EC_ISA_AVX512_VNNI
        || !(ec_isa_supported_mask() & (1 << EC_ISA_AVX_VNNI));
}

static void ec_gemm_vnni(const ec_windows *win, const int8_t *w, const int32_t *bias,
                         ptrdiff_t cout, const ec_requant *rq, void *out, ptrdiff_t out_stride) {
    if (ec_use_avx512())
        ec_gemm_vnni512(win, w, bias, cout, rq, out, out_stride);
    else
        ec_gemm_avxvnni(win, w, bias, cout, rq, out, out_stride);
}

static void ec_pack_windows_vnni(uint8_t *rows, ptrdiff_t row_bytes, const int8_t *x,
                                 const ec_conv_geometry *g, ptrdiff_t start, ptrdiff_t pixels) {
    ec_pack_windows_with(ec_use_avx512() ? ec_copy_flip_over : ec_copy_flip_over_avx2, rows,
                         row_bytes, x, g, start, pixels);
}

/* ADD on vectors: AVX-512 when the core may use it, else AVX2 (call only from AVX2 up). */
static void ec_add_rows_simd(const int8_t *a, const int8_t *b, int8_t *out, ptrdiff_t n,
                             const ec_add_params *q) {
    (ec_isa() == EC_ISA_AVX512_VNNI ? ec_add_rows_512 : ec_add_rows_256)(a, b, out, n, q);
}

static void ec_depthwise_row_vnni(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset,
        ptrdiff_t ntaps, const int16_t *wpairs, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    (ec_use_avx512() ? ec_depthwise_row_512 : ec_depthwise_row_256)(
        x, ow, pixel_step, out_step, row_elements, tap_offset, ntaps, wpairs, bias, cout, coutp,
        rq, out);
}

static void ec_depthwise3x3_row_vnni(const int8_t *x, ptrdiff_t ow, ptrdiff_t stride,
        ptrdiff_t row_step, ptrdiff_t cin, const int16_t *wcols, const int32_t *bias,
        ptrdiff_t cout, ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    (ec_use_avx512() ? ec_depthwise3x3_row_512 : ec_depthwise3x3_row_256)(
        x, ow, stride, row_step, cin, wcols, bias, cout, coutp, rq, out);
}

static void ec_pad_flip_vnni(const int8_t *src, uint8_t *dst, ptrdiff_t n, ptrdiff_t h,
        ptrdiff_t w, ptrdiff_t c, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t top, ptrdiff_t left,
        int8_t zero_point) {
    ec_pad_flip_with(ec_use_avx512() ? ec_copy_flip_vnni : ec_copy_flip_avx2, src, dst, n, h,
                     w, c, hp, wp, top, left, zero_point);
}
#else
/* Never called: core_backend only compiles VNNI ops when ec_isa() reports them. */
static void ec_gemm_vnni(const ec_windows *win, const int8_t *w, const int32_t *bias,
                         ptrdiff_t cout, const ec_requant *rq, void *out, ptrdiff_t out_stride) {
    (void)win; (void)w; (void)bias; (void)cout; (void)rq; (void)out; (void)out_stride;
}
static void ec_pad_flip_vnni(const int8_t *src, uint8_t *dst, ptrdiff_t n, ptrdiff_t h,
        ptrdiff_t w, ptrdiff_t c, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t top, ptrdiff_t left,
        int8_t zero_point) {
    (void)src; (void)dst; (void)n; (void)h; (void)w; (void)c; (void)hp; (void)wp; (void)top;
    (void)left; (void)zero_point;
}
static void ec_pack_windows_vnni(uint8_t *rows, ptrdiff_t row_bytes, const int8_t *x,
                                 const ec_conv_geometry *g, ptrdiff_t start, ptrdiff_t pixels) {
    (void)rows; (void)row_bytes; (void)x; (void)g; (void)start; (void)pixels;
}
#if !(defined(__aarch64__) && defined(__ARM_NEON))   /* AArch64 has its own (above) */
static void ec_add_rows_simd(const int8_t *a, const int8_t *b, int8_t *out, ptrdiff_t n,
                             const ec_add_params *q) {
    (void)a; (void)b; (void)out; (void)n; (void)q;
}
#endif
static void ec_depthwise3x3_row_vnni(const int8_t *x, ptrdiff_t ow, ptrdiff_t stride,
        ptrdiff_t row_step, ptrdiff_t cin, const int16_t *wcols, const int32_t *bias,
        ptrdiff_t cout, ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    (void)x; (void)ow; (void)stride; (void)row_step; (void)cin; (void)wcols; (void)bias; (void)cout;
    (void)coutp; (void)rq; (void)out;
}
static void ec_depthwise_row_vnni(const int8_t *x, ptrdiff_t ow, ptrdiff_t pixel_step,
        ptrdiff_t out_step, ptrdiff_t row_elements, const ptrdiff_t *tap_offset,
        ptrdiff_t ntaps, const int16_t *wpairs, const int32_t *bias, ptrdiff_t cout,
        ptrdiff_t coutp, const ec_requant *rq, int8_t *out) {
    (void)x; (void)ow; (void)pixel_step; (void)out_step; (void)row_elements; (void)tap_offset;
    (void)ntaps; (void)wpairs; (void)bias; (void)cout; (void)coutp; (void)rq; (void)out;
}
#endif

#endif
