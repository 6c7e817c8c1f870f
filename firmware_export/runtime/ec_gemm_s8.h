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

/* ---- windows of a convolution ------------------------------------------------------ */

/* Where a convolution reads its windows: the (zero-point padded) input is
   [batch][hp][wp][cin], the output [batch][oh][ow][cout]. */
typedef struct {
    ptrdiff_t cin, oh, ow, kh, kw, sh, sw, dh, dw, hp, wp;
} ec_conv_geometry;

/* Portable (every target compiles it: _core.pyx calls it outside any ISA guard).
   win->base[p] = the top-left corner of output pixel start + p's window in x (the padded
   input laid out as g says), for p < pixels; base[0] again for the rest. */
static inline void ec_window_corners(ec_gemm_windows *win, const uint8_t *x,
                                     const ec_conv_geometry *g, ptrdiff_t start) {
    ptrdiff_t ox = start % g->ow, oy = (start / g->ow) % g->oh, b = start / (g->ow * g->oh);
    for (ptrdiff_t p = 0; p < EC_GEMM_MAX_PIXELS; ++p) {
        if (p >= win->pixels) {
            win->base[p] = win->base[0];
            continue;
        }
        win->base[p] = x + ((b * g->hp + oy * g->sh) * g->wp + ox * g->sw) * g->cin;
        if (++ox == g->ow) {
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                ++b;
            }
        }
    }
}

/* The GEMM's input rows for output pixels start .. start + pixels - 1 (counted over
   batch x oh x ow): each pixel's window (kh x kw taps of cin bytes) flipped to uint8, one
   row_bytes-long row per pixel (im2col). A 1x1 stride-1 convolution's windows are its
   input pixels: consecutive, so with row_bytes == cin the block is one flipped copy.
   rows must have 64 bytes of slack after pixels * row_bytes (see ec_copy_flip_over).
   `copy` is the instruction set's copy (flipping for VNNI); the ARM GEMM packs with a plain
   copy (ec_a64_windows). */
typedef void (*ec_copy_fn)(uint8_t *dst, const int8_t *src, ptrdiff_t n);

static inline void ec_pack_windows_with(ec_copy_fn copy, uint8_t *rows, ptrdiff_t row_bytes,
        const int8_t *x, const ec_conv_geometry *g, ptrdiff_t start, ptrdiff_t pixels) {
    const ptrdiff_t cin = g->cin;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->hp == g->oh
            && g->wp == g->ow) {
        if (row_bytes == cin) {
            copy(rows, x + start * cin, pixels * cin);
            return;
        }
        for (ptrdiff_t p = 0; p < pixels; ++p)
            copy(rows + p * row_bytes, x + (start + p) * cin, cin);
        return;
    }
    ptrdiff_t ox = start % g->ow, oy = (start / g->ow) % g->oh, b = start / (g->ow * g->oh);
    const ptrdiff_t tap_row = g->kw * cin;
    for (ptrdiff_t p = 0; p < pixels; ++p) {
        uint8_t *row = rows + p * row_bytes;
        const int8_t *corner = x + ((b * g->hp + oy * g->sh) * g->wp + ox * g->sw) * cin;
        for (ptrdiff_t ky = 0; ky < g->kh; ++ky) {
            const int8_t *src = corner + ky * g->dh * g->wp * cin;
            if (g->dw == 1) {   /* the kw taps of a kernel row are contiguous */
                copy(row + ky * tap_row, src, tap_row);
            } else {
                for (ptrdiff_t kx = 0; kx < g->kw; ++kx)
                    copy(row + ky * tap_row + kx * cin, src + kx * g->dw * cin, cin);
            }
        }
        if (++ox == g->ow) {
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                ++b;
            }
        }
    }
}

#endif
