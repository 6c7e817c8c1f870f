/* TRANSPOSE (reference/layout.py transpose), on the collapsed form the exporter
 * writes (reference/layout.py transpose_walk: size-1 dimensions dropped, input
 * dimensions that stay together merged). The output is written in order, one plane
 * (the last two output dimensions) at a time, gathering from the input; rows whose
 * input is contiguous (the last input dimension stayed last) are memcpy'd. No tiles:
 * a microcontroller has no data cache to keep warm. Also used for a graph input's
 * transpose, done while copying the input into the arena. */
#include "ec_runtime.h"

/* out[r][c] = in[r * row_stride + c * col_stride] for one plane of elements of type T */
#define EC_TRANSPOSE_PLANE(T, in, out, rows, cols, row_stride, col_stride)        \
    do {                                                                          \
        const T *src_ = (const T *)(const void *)(in);                            \
        T *dst_ = (T *)(void *)(out);                                             \
        int32_t r_, c_;                                                           \
        for (r_ = 0; r_ < (rows); ++r_) {                                         \
            const T *row_ = src_ + r_ * (row_stride);                             \
            for (c_ = 0; c_ < (cols); ++c_) {                                     \
                *dst_++ = row_[c_ * (col_stride)];                                \
            }                                                                     \
        }                                                                         \
    } while (0)

static void ec_transpose_plane(const uint8_t *in, uint8_t *out, int32_t element_size,
                               int32_t rows, int32_t cols, int32_t row_stride,
                               int32_t col_stride)
{
    int32_t r;
    if (col_stride == 1) {
        const size_t row_bytes = (size_t)cols * (size_t)element_size;
        for (r = 0; r < rows; ++r) {
            memcpy(out + (size_t)r * row_bytes,
                   in + (size_t)r * (size_t)row_stride * (size_t)element_size, row_bytes);
        }
        return;
    }
    switch (element_size) {
    case 1:
        EC_TRANSPOSE_PLANE(uint8_t, in, out, rows, cols, row_stride, col_stride);
        break;
    case 2:
        EC_TRANSPOSE_PLANE(uint16_t, in, out, rows, cols, row_stride, col_stride);
        break;
    case 4:
        EC_TRANSPOSE_PLANE(uint32_t, in, out, rows, cols, row_stride, col_stride);
        break;
    default:
        EC_TRANSPOSE_PLANE(uint64_t, in, out, rows, cols, row_stride, col_stride);
        break;
    }
}

void ec_transpose(const ec_transpose_params *p, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const int32_t outer = p->rank - 2;
    const int32_t cols = p->out_shape[p->rank - 1], col_stride = p->in_stride[p->rank - 1];
    const int32_t rows = p->rank > 1 ? p->out_shape[p->rank - 2] : 1;
    const int32_t row_stride = p->rank > 1 ? p->in_stride[p->rank - 2] : 0;
    const size_t plane_bytes = (size_t)rows * (size_t)cols * (size_t)p->element_size;
    int32_t index[6] = {0, 0, 0, 0, 0, 0};
    int32_t offset = 0, planes = 1, k;
    for (k = 0; k < outer; ++k) {
        planes *= p->out_shape[k];
    }
    if (plane_bytes == 0) {
        return;
    }
    for (; planes > 0; --planes) {
        ec_transpose_plane(in + (size_t)offset * (size_t)p->element_size, out,
                           p->element_size, rows, cols, row_stride, col_stride);
        out += plane_bytes;
        for (k = outer - 1; k >= 0; --k) { /* next plane: an odometer over the outer dims */
            offset += p->in_stride[k];
            if (++index[k] < p->out_shape[k]) {
                break;
            }
            offset -= p->in_stride[k] * p->out_shape[k];
            index[k] = 0;
        }
    }
}
