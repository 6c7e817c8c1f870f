/* The int8 GEMM's contract, shared by every packed-weight GEMM (the Cython core's x86 VNNI
 * kernels in edgecnn/_core_simd.h, the A-profile NEON / SDOT kernels in ec_a64_neon.h):
 * where a block of output pixels finds its input windows, and what the int32 accumulators
 * become. Types only; C99.
 *
 * Weights are packed [cout / 16][depth / 4][16][4]: per group of 16 output channels and 4
 * consecutive depths, 64 bytes (channel-major, 4 depths each), zeros in the padding. One
 * 16-byte quarter holds 4 channels x 4 depths, which is what VPDPBUSD (x86) and SDOT
 * (ARMv8.2) multiply against 4 input bytes per 32-bit lane. */
#ifndef EC_GEMM_S8_H
#define EC_GEMM_S8_H

#include <stddef.h>
#include <stdint.h>

/* What the accumulators become: int8 by double-rounding fixed point (TFLite's
   MultiplyByQuantizedMultiplier), int8 by float32 scaling with ties to even (XNNPACK), or
   raw int32 for a scalar requantization of the other roundings. */
enum { EC_OUT_DOUBLE = 0, EC_OUT_FLOAT32 = 1, EC_OUT_INT32 = 2 };

typedef struct {
    int mode;
    const int32_t *multiplier, *left, *right;   /* EC_OUT_DOUBLE, per channel; left and
                                                   right = max(shift, 0), max(-shift, 0) */
    const float *scale;                          /* EC_OUT_FLOAT32, per channel */
    int32_t zero_point, lo, hi;                  /* output zero point, activation clamp */
} ec_gemm_out;

/* Where the GEMM finds each pixel's window: tap t of pixel p starts at base[p] +
   tap_offset[t] and holds kq_per_tap * 4 bytes (the weights' depth per tap, zero-padded).
   An im2col block is the one-tap case (base[p] = its row p); a window read in place from a
   padded input has kh * kw taps. Bytes read past a tap's channels meet zero weights. */
#define EC_GEMM_MAX_PIXELS 8
typedef struct {
    const uint8_t *base[EC_GEMM_MAX_PIXELS];   /* rows past `pixels` repeat base[0] */
    ptrdiff_t pixels;
    const ptrdiff_t *tap_offset;
    ptrdiff_t ntaps, kq_per_tap;
} ec_gemm_windows;

#endif
