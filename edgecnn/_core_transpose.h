/* TRANSPOSE for the Cython core: twin of reference/layout.py transpose.
 *
 * The compiler (core_backend.py, via reference/layout.py transpose_walk) hands over
 * the collapsed form: size-1 dimensions dropped and input dimensions that stay
 * together merged, so an NCHW -> NHWC transpose of one image is a 2-D [C][H*W] ->
 * [H*W][C] transpose. The kernel walks the output in order (every store is
 * sequential) and gathers from the input with the strides of the output's
 * dimensions; when the last input dimension stays last, each output row is one
 * contiguous run of the input and is copied with memcpy. Whole elements of 1, 2, 4
 * or 8 bytes move: the dtype does not matter.
 */
#ifndef EDGECNN_CORE_TRANSPOSE_H
#define EDGECNN_CORE_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EC_TRANSPOSE_MAX_RANK 6

/* One output row: n elements read `stride` elements apart. */
static void ec_transpose_row(const uint8_t *in, uint8_t *out, ptrdiff_t n, ptrdiff_t stride,
                             ptrdiff_t element_size)
{
    ptrdiff_t i;
    if (stride == 1) {
        memcpy(out, in, (size_t)(n * element_size));
        return;
    }
    switch (element_size) {
    case 1:
        for (i = 0; i < n; ++i) out[i] = in[i * stride];
        break;
    case 2:
        for (i = 0; i < n; ++i) ((uint16_t *)out)[i] = ((const uint16_t *)in)[i * stride];
        break;
    case 4:
        for (i = 0; i < n; ++i) ((uint32_t *)out)[i] = ((const uint32_t *)in)[i * stride];
        break;
    default:
        for (i = 0; i < n; ++i) ((uint64_t *)out)[i] = ((const uint64_t *)in)[i * stride];
        break;
    }
}

/* out = transpose(in): out_shape[k] elements along output dimension k, which the
 * input steps through in_stride[k] elements apart (rank 1..EC_TRANSPOSE_MAX_RANK). */
static void ec_transpose(const uint8_t *in, uint8_t *out, ptrdiff_t element_size,
                         ptrdiff_t rank, const ptrdiff_t *out_shape, const ptrdiff_t *in_stride)
{
    ptrdiff_t index[EC_TRANSPOSE_MAX_RANK] = {0};
    const ptrdiff_t last = rank - 1;
    const ptrdiff_t row = out_shape[last], row_bytes = row * element_size;
    ptrdiff_t offset = 0, k, rows = 1;
    for (k = 0; k < last; ++k) rows *= out_shape[k];
    if (row == 0) return;
    while (rows-- > 0) {
        ec_transpose_row(in + offset * element_size, out, row, in_stride[last], element_size);
        out += row_bytes;
        /* next row: an odometer over the outer output dimensions */
        for (k = last - 1; k >= 0; --k) {
            offset += in_stride[k];
            if (++index[k] < out_shape[k]) break;
            offset -= in_stride[k] * out_shape[k];
            index[k] = 0;
        }
    }
}

#endif
