/* TRANSPOSE for the Cython core: twin of reference/layout.py transpose.
 *
 * The compiler (core_backend.py, via reference/layout.py transpose_walk) hands over
 * the collapsed form: size-1 dimensions dropped and input dimensions that stay
 * together merged, so an NCHW -> NHWC transpose of one image is a 2-D [C][H*W] ->
 * [H*W][C] transpose. The kernel writes the output plane by plane (a plane: the
 * last two output dimensions), gathering from the input with the strides of the
 * output's dimensions: in 32 x 32 tiles (bytes of a 2-D transpose: 8 x 8 blocks moved
 * as 64-bit words), or with one memcpy per row when the last input dimension stayed
 * last (its rows are contiguous runs of the input). Whole elements of 1, 2, 4 or 8
 * bytes move: the dtype does not matter.
 */
#ifndef EDGECNN_CORE_TRANSPOSE_H
#define EDGECNN_CORE_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EC_TRANSPOSE_MAX_RANK 6
#define EC_TRANSPOSE_TILE 32   /* plane tiles of 32 x 32 elements: both sides stay in L1 */

/* One plane, the last two output dimensions: out[r][c] = in[r * row_stride + c * col_stride].
 * Rows with contiguous input are memcpy'd. Short rows (NCHW -> NHWC of an image: rows
 * of C = 3 channels, read H*W apart) are written column by column, a long simple loop
 * down each input plane instead of a short one per row. Otherwise the plane is walked
 * in tiles, so reads and writes both stay within a few cache lines. */
#define EC_TRANSPOSE_PLANE(T)                                                             \
    static void ec_transpose_plane_##T(const T *in, T *out, ptrdiff_t rows, ptrdiff_t cols, \
                                       ptrdiff_t row_stride, ptrdiff_t col_stride)         \
    {                                                                                     \
        ptrdiff_t r0, c0, r, c, r_end, c_end;                                             \
        if (col_stride == 1) {                                                            \
            for (r = 0; r < rows; ++r)                                                    \
                memcpy(out + r * cols, in + r * row_stride, (size_t)cols * sizeof(T));    \
            return;                                                                       \
        }                                                                                 \
        if (cols < EC_TRANSPOSE_TILE) {  /* short rows: walk each column down the plane */ \
            for (c = 0; c < cols; ++c) {                                                  \
                const T *src = in + c * col_stride;                                       \
                T *dst = out + c;                                                         \
                for (r = 0; r < rows; ++r) dst[r * cols] = src[r * row_stride];           \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        for (r0 = 0; r0 < rows; r0 += EC_TRANSPOSE_TILE) {                                \
            r_end = r0 + EC_TRANSPOSE_TILE < rows ? r0 + EC_TRANSPOSE_TILE : rows;        \
            for (c0 = 0; c0 < cols; c0 += EC_TRANSPOSE_TILE) {                            \
                c_end = c0 + EC_TRANSPOSE_TILE < cols ? c0 + EC_TRANSPOSE_TILE : cols;    \
                for (r = r0; r < r_end; ++r) {                                            \
                    const T *src = in + r * row_stride;                                   \
                    T *dst = out + r * cols;                                              \
                    for (c = c0; c < c_end; ++c) dst[c] = src[c * col_stride];            \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }
EC_TRANSPOSE_PLANE(uint8_t)
EC_TRANSPOSE_PLANE(uint16_t)
EC_TRANSPOSE_PLANE(uint32_t)
EC_TRANSPOSE_PLANE(uint64_t)
#undef EC_TRANSPOSE_PLANE

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EC_TRANSPOSE_WORDS 1   /* byte k of a uint64_t loaded from memory is byte k in memory */
#else
#define EC_TRANSPOSE_WORDS 0
#endif

/* An 8 x 8 block of bytes: out row j, byte i = in row i, byte j. Eight 64-bit loads, the
 * transpose in registers (swap the off-diagonal 4x4 blocks, then the 2x2 blocks within
 * them, then the single bytes), eight 64-bit stores: the scalar loop's 64 loads and
 * 64 stores become 16 memory operations. */
static void ec_transpose_8x8_bytes(const uint8_t *in, ptrdiff_t in_step, uint8_t *out,
                                   ptrdiff_t out_step)
{
    uint64_t m[8], t;
    int k;
    for (k = 0; k < 8; ++k) memcpy(&m[k], in + k * in_step, 8);
    for (k = 0; k < 4; ++k) {
        t = ((m[k] >> 32) ^ m[k + 4]) & 0x00000000FFFFFFFFull;
        m[k] ^= t << 32;
        m[k + 4] ^= t;
    }
    for (k = 0; k < 8; k += (k & 1) ? 3 : 1) {           /* k = 0, 1, 4, 5 */
        t = ((m[k] >> 16) ^ m[k + 2]) & 0x0000FFFF0000FFFFull;
        m[k] ^= t << 16;
        m[k + 2] ^= t;
    }
    for (k = 0; k < 8; k += 2) {
        t = ((m[k] >> 8) ^ m[k + 1]) & 0x00FF00FF00FF00FFull;
        m[k] ^= t << 8;
        m[k + 1] ^= t;
    }
    for (k = 0; k < 8; ++k) memcpy(out + k * out_step, &m[k], 8);
}

/* A byte plane whose columns are contiguous in the input (row_stride 1: a 2-D transpose,
 * e.g. NHWC -> NCHW before a flatten): 8 x 8 blocks, the ragged edges element by element. */
static void ec_transpose_plane_blocks(const uint8_t *in, uint8_t *out, ptrdiff_t rows,
                                      ptrdiff_t cols, ptrdiff_t col_stride)
{
    const ptrdiff_t rows8 = rows & ~(ptrdiff_t)7, cols8 = cols & ~(ptrdiff_t)7;
    ptrdiff_t r, c;
    for (r = 0; r < rows8; r += 8) {
        for (c = 0; c < cols8; c += 8)
            ec_transpose_8x8_bytes(in + c * col_stride + r, col_stride, out + r * cols + c, cols);
        for (; c < cols; ++c) {
            ptrdiff_t i;
            for (i = r; i < r + 8; ++i) out[i * cols + c] = in[c * col_stride + i];
        }
    }
    for (; r < rows; ++r)
        for (c = 0; c < cols; ++c) out[r * cols + c] = in[c * col_stride + r];
}

static void ec_transpose_plane(const uint8_t *in, uint8_t *out, ptrdiff_t element_size,
                               ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t row_stride,
                               ptrdiff_t col_stride)
{
    switch (element_size) {
    case 1:
        if (EC_TRANSPOSE_WORDS && row_stride == 1 && col_stride != 1 && rows >= 8 && cols >= 8)
            ec_transpose_plane_blocks(in, out, rows, cols, col_stride);
        else
            ec_transpose_plane_uint8_t(in, out, rows, cols, row_stride, col_stride);
        break;
    case 2:
        ec_transpose_plane_uint16_t((const uint16_t *)in, (uint16_t *)out, rows, cols,
                                    row_stride, col_stride);
        break;
    case 4:
        ec_transpose_plane_uint32_t((const uint32_t *)in, (uint32_t *)out, rows, cols,
                                    row_stride, col_stride);
        break;
    default:
        ec_transpose_plane_uint64_t((const uint64_t *)in, (uint64_t *)out, rows, cols,
                                    row_stride, col_stride);
        break;
    }
}

/* out = transpose(in): out_shape[k] elements along output dimension k, which the
 * input steps through in_stride[k] elements apart (rank 1..EC_TRANSPOSE_MAX_RANK).
 * The output is written plane after plane, in order. */
static void ec_transpose(const uint8_t *in, uint8_t *out, ptrdiff_t element_size,
                         ptrdiff_t rank, const ptrdiff_t *out_shape, const ptrdiff_t *in_stride)
{
    ptrdiff_t index[EC_TRANSPOSE_MAX_RANK] = {0};
    const ptrdiff_t cols = out_shape[rank - 1], col_stride = in_stride[rank - 1];
    const ptrdiff_t rows = rank > 1 ? out_shape[rank - 2] : 1;
    const ptrdiff_t row_stride = rank > 1 ? in_stride[rank - 2] : 0;
    const ptrdiff_t outer = rank - 2, plane_bytes = rows * cols * element_size;
    ptrdiff_t offset = 0, k, planes = 1;
    for (k = 0; k < outer; ++k) planes *= out_shape[k];
    if (plane_bytes == 0) return;
    while (planes-- > 0) {
        ec_transpose_plane(in + offset * element_size, out, element_size, rows, cols,
                           row_stride, col_stride);
        out += plane_bytes;
        /* next plane: an odometer over the outer output dimensions */
        for (k = outer - 1; k >= 0; --k) {
            offset += in_stride[k];
            if (++index[k] < out_shape[k]) break;
            offset -= in_stride[k] * out_shape[k];
            index[k] = 0;
        }
    }
}

#endif
