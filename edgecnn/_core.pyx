# cython: language_level=3
"""The Cython core: the kernels of reference/ compiled, bit-for-bit equal.

A model is compiled once (edgecnn/core_backend.py) into a Program: a flat
array of OpDesc records whose tensors are byte offsets into one arena laid
out by the planner. `Program.run()` runs every op in one call (on the arena
given to `Program.bind`),
without the GIL. Each arithmetic helper is the twin of the function of the
same name in reference/quant.py; each kernel the twin of the reference
kernel named in its comment.

Zero-point corrections are folded into the bias at compile time
(bias - input_zero_point * sum(weights)), so the inner loops are plain int8
dot products. Padded taps must then contribute weight * input_zero_point,
which is why convolutions read from a copy of the input padded with the
input zero point (exactly TFLite's "padding behaves as the zero point").
Signed int32 overflow in the dot products wraps (-fwrapv): the final
accumulator is exact because the true value fits in int32 (lowering checks
the bound), and wrap-around arithmetic is exact modulo 2^32.

The inner loops that want intrinsics or `restrict` are C, in _core_simd.h,
picked at run time by instruction set (baseline, AVX2, AVX-VNNI, AVX-512
VNNI; see set_isa). An op whose weight layout depends on it (CONV_VNNI, DWCONV_VNNI)
is chosen when the model is compiled.
"""

from libc.stdint cimport int8_t, uint8_t, int16_t, int32_t, uint32_t, int64_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free
from cython.parallel cimport prange
from libc.math cimport round as c_round, roundf, rintf, frexp
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_ND

cdef enum:
    OP_CONV = 1
    OP_DWCONV = 2
    OP_FC = 3
    OP_MAXPOOL = 4
    OP_AVGPOOL = 5
    OP_ADD = 6
    OP_MEAN = 7
    OP_SOFTMAX = 8
    OP_LUT = 9
    OP_GATHER = 10
    OP_SCATTER = 11
    OP_QUANTIZE_FLOAT = 12
    OP_DEQUANTIZE = 13
    OP_COPY = 14
    OP_CONV_VNNI = 15
    OP_DWCONV_VNNI = 16
    OP_TRANSPOSE = 17

cdef enum:
    ROUND_DOUBLE = 0
    ROUND_SINGLE = 1
    ROUND_FLOAT = 2
    ROUND_FLOAT32 = 3
    ROUND_XNNPACK = 4

DEF NI = 32
DEF NP = 8

cdef struct OpDesc:
    int kind
    int rounding
    Py_ssize_t in0
    Py_ssize_t in1
    Py_ssize_t out
    Py_ssize_t scratch
    Py_ssize_t i[NI]
    const void* p[NP]

OPS = {"CONV": OP_CONV, "DWCONV": OP_DWCONV, "FC": OP_FC, "MAXPOOL": OP_MAXPOOL,
       "AVGPOOL": OP_AVGPOOL, "ADD": OP_ADD, "MEAN": OP_MEAN, "SOFTMAX": OP_SOFTMAX,
       "LUT": OP_LUT, "GATHER": OP_GATHER, "SCATTER": OP_SCATTER,
       "QUANTIZE_FLOAT": OP_QUANTIZE_FLOAT, "DEQUANTIZE": OP_DEQUANTIZE, "COPY": OP_COPY,
       "CONV_VNNI": OP_CONV_VNNI, "DWCONV_VNNI": OP_DWCONV_VNNI, "TRANSPOSE": OP_TRANSPOSE}
ROUNDINGS = {"double": ROUND_DOUBLE, "single": ROUND_SINGLE, "float": ROUND_FLOAT,
             "float32": ROUND_FLOAT32, "xnnpack": ROUND_XNNPACK, "tflite": ROUND_DOUBLE}

cdef extern from "_core_simd.h":
    enum:
        EC_ISA_BASELINE
        EC_ISA_AVX2
        EC_ISA_AVX_VNNI
        EC_ISA_AVX512_VNNI
        EC_ISA_NEON
        EC_ISA_DOTPROD
        EC_OUT_DOUBLE
        EC_OUT_FLOAT32
        EC_OUT_INT32
    ctypedef struct ec_requant:
        int mode
        const int32_t* multiplier
        const int32_t* left
        const int32_t* right
        const float* scale
        int32_t zero_point, lo, hi
    int ec_isa() noexcept nogil
    int ec_isa_supported() noexcept nogil
    int ec_isa_supported_mask() noexcept nogil
    int ec_set_isa(int level) noexcept nogil
    ctypedef struct ec_conv_geometry:
        Py_ssize_t cin, oh, ow, kh, kw, sh, sw, dh, dw, hp, wp
    void ec_pack_windows_vnni(uint8_t* rows, Py_ssize_t row_bytes, const int8_t* x,
                              const ec_conv_geometry* g, Py_ssize_t start,
                              Py_ssize_t pixels) noexcept nogil
    ctypedef struct ec_add_params:
        int32_t zp1, zp2, out_zp, left_shift
        int32_t m1, l1, r1, m2, l2, r2, mo, lo_shift, ro
        int32_t act_min, act_max
        int32_t xnnpack
    void ec_add_rows_simd(const int8_t* a, const int8_t* b, int8_t* out, Py_ssize_t n,
                          const ec_add_params* q) noexcept nogil
    void ec_depthwise3x3_row_vnni(const int8_t* x, Py_ssize_t ow, Py_ssize_t stride,
                                  Py_ssize_t row_step,
                                  Py_ssize_t cin, const int16_t* wcols, const int32_t* bias,
                                  Py_ssize_t cout, Py_ssize_t coutp, const ec_requant* rq,
                                  int8_t* out) noexcept nogil
    void ec_depthwise_row_vnni(const int8_t* x, Py_ssize_t ow, Py_ssize_t pixel_step,
                               Py_ssize_t out_step, Py_ssize_t row_elements,
                               const Py_ssize_t* tap_offset, Py_ssize_t ntaps,
                               const int16_t* wpairs, const int32_t* bias, Py_ssize_t cout,
                               Py_ssize_t coutp, const ec_requant* rq, int8_t* out) noexcept nogil
    ctypedef struct ec_windows:
        const uint8_t* base[8]
        Py_ssize_t pixels
        const Py_ssize_t* tap_offset
        Py_ssize_t ntaps, kq_per_tap
    void ec_gemm_vnni(const ec_windows* win, const int8_t* w, const int32_t* bias,
                      Py_ssize_t cout, const ec_requant* rq, void* out,
                      Py_ssize_t out_stride) noexcept nogil
    void ec_windows_arm(ec_windows* win, uint8_t* rows, Py_ssize_t row_bytes, const int8_t* x,
                        const ec_conv_geometry* g, Py_ssize_t start) noexcept nogil
    void ec_gemm_arm(const ec_windows* win, const int8_t* w, const int32_t* bias,
                     Py_ssize_t cout, const ec_requant* rq, void* out, Py_ssize_t out_stride,
                     int pairs) noexcept nogil
    void ec_depthwise_row_arm(const int8_t* x, Py_ssize_t ow, Py_ssize_t pixel_step,
                              Py_ssize_t out_step, Py_ssize_t row_elements,
                              const Py_ssize_t* tap_offset, Py_ssize_t ntaps, const int8_t* w,
                              const int32_t* bias, Py_ssize_t cout, Py_ssize_t coutp,
                              const ec_requant* rq, int8_t* out, int pairs) noexcept nogil
    int ec_add_rows_simd_available(int xnnpack) noexcept nogil
    int ec_neon_rows() noexcept nogil
    void ec_depthwise_multiplier_row_arm(const int8_t* x, Py_ssize_t ow, Py_ssize_t pixel_step,
                                         const Py_ssize_t* tap_offset, Py_ssize_t ntaps,
                                         Py_ssize_t multiplier, const int8_t* w,
                                         const int32_t* bias, Py_ssize_t cout, Py_ssize_t coutp,
                                         const ec_requant* rq, int8_t* out) noexcept nogil
    enum:
        EC_A64_POOL_MAX_COUNT
    void ec_requantize_row_float32_neon(const int32_t* acc, int8_t* out, Py_ssize_t n,
                                        const float* scale, int32_t zero_point, int32_t lo,
                                        int32_t hi) noexcept nogil
    void ec_average_pool_neon(const int8_t* x, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w,
                              Py_ssize_t c, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t fh,
                              Py_ssize_t fw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t top,
                              Py_ssize_t left, int32_t lo, int32_t hi, int8_t* y) noexcept nogil
    void ec_mean_sums_neon(const int8_t* x, Py_ssize_t outer, Py_ssize_t reduced,
                           Py_ssize_t inner, int32_t start, int32_t* total) noexcept nogil
    void ec_mean_xnnpack_row_neon(const int32_t* total, Py_ssize_t n, float scale,
                                  float zero_point, int8_t* y) noexcept nogil
    void ec_window_corners(ec_windows* win, const uint8_t* x, const ec_conv_geometry* g,
                           Py_ssize_t start) noexcept nogil
    void ec_pad_flip_vnni(const int8_t* src, uint8_t* dst, Py_ssize_t n, Py_ssize_t h,
                          Py_ssize_t w, Py_ssize_t c, Py_ssize_t hp, Py_ssize_t wp,
                          Py_ssize_t top, Py_ssize_t left, int8_t zero_point) noexcept nogil
    void requantize_row_double "edgecnn_requantize_row_double" (
        const int32_t* acc, int8_t* out, Py_ssize_t n, const int32_t* multiplier,
        const int32_t* left, const int32_t* right, int32_t zero_point, int32_t lo,
        int32_t hi) noexcept nogil

    void add_row_double "edgecnn_add_row_double" (
        const int8_t* a, const int8_t* b, int8_t* out, Py_ssize_t n, int32_t zp1, int32_t zp2,
        int32_t out_zp, int32_t left_shift, int32_t m1, int32_t r1, int32_t m2, int32_t r2,
        int32_t mo, int32_t ro, int32_t lo, int32_t hi) noexcept nogil

    void depthwise_pixel "edgecnn_depthwise_pixel" (
        int32_t* acc, const int8_t** taps, Py_ssize_t ntaps, const int16_t* wpairs,
        const int32_t* bias, Py_ssize_t coutp) noexcept nogil

    void fc_row "edgecnn_fc_row" (int32_t* acc, const int8_t* x, const int8_t* w,
                                  const int32_t* bias, Py_ssize_t out_f, Py_ssize_t in_f) noexcept nogil

    void accumulate_pixels "edgecnn_accumulate_pixels" (
        int32_t* acc, const int32_t* xpairs, Py_ssize_t pixels, const int16_t* wpairs,
        Py_ssize_t kpairs, Py_ssize_t coutp) noexcept nogil
    void pack_pairs "edgecnn_pack_pairs" (int32_t* out, const int8_t* x, Py_ssize_t depth) noexcept nogil

    void accumulate_row "edgecnn_accumulate_row" (int32_t* total, const int8_t* x,
                                                  Py_ssize_t n) noexcept nogil


cdef extern from "_core_transpose.h":
    enum:
        EC_TRANSPOSE_MAX_RANK
    void ec_transpose(const uint8_t* x, uint8_t* y, Py_ssize_t element_size, Py_ssize_t rank,
                      const Py_ssize_t* out_shape, const Py_ssize_t* in_stride) noexcept nogil


ISAS = {"baseline": EC_ISA_BASELINE, "avx2": EC_ISA_AVX2, "avx-vnni": EC_ISA_AVX_VNNI,
        "avx512-vnni": EC_ISA_AVX512_VNNI, "neon": EC_ISA_NEON, "dotprod": EC_ISA_DOTPROD}


def isa():
    """The instruction set the kernels use now: "baseline", "avx2", "avx-vnni",
    "avx512-vnni" (x86-64), "neon" or "dotprod" (AArch64)."""
    return {level: name for name, level in ISAS.items()}[ec_isa()]


def supported_isa():
    """The best instruction set this CPU runs."""
    return {level: name for name, level in ISAS.items()}[ec_isa_supported()]


def supported_isas():
    """Every instruction set this CPU runs, from baseline up (not always a prefix of the
    list: a CPU may have AVX-512 VNNI without AVX-VNNI)."""
    mask = ec_isa_supported_mask()
    return [name for name, level in ISAS.items() if mask & (1 << level)]


def set_isa(str name):
    """Use the kernels of this instruction set from now on (models compiled before keep
    their weight layouts, and pick among the kernels those layouts allow). Raises
    ValueError for a level the CPU does not run."""
    if name not in ISAS:
        raise ValueError(f"unknown instruction set {name!r}; choose one of {', '.join(ISAS)}")
    if ec_set_isa(ISAS[name]) != 0:
        raise ValueError(f"this CPU does not support {name} (best: {supported_isa()})")


# ---------------------------------------------------------------------------
# Arithmetic: twins of reference/quant.py and reference/fixedpoint.py
# ---------------------------------------------------------------------------

cdef inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) noexcept nogil:
    cdef int64_t ab
    cdef int64_t nudge
    if a == b and a == <int32_t>(-2147483647 - 1):
        return 2147483647
    ab = <int64_t>a * <int64_t>b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    return <int32_t>((ab + nudge) / (<int64_t>1 << 31))  # cdivision: truncates like C


cdef inline int32_t rounding_divide_by_pot(int32_t x, int exponent) noexcept nogil:
    cdef int32_t mask = <int32_t>((<int64_t>1 << exponent) - 1)
    cdef int32_t remainder = x & mask
    cdef int32_t threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


cdef inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift,
                                                     int rounding) noexcept nogil:
    cdef int left, right, total
    cdef int64_t product
    if rounding == ROUND_SINGLE:
        total = 31 - shift
        product = <int64_t>x * <int64_t>multiplier + (<int64_t>1 << (total - 1))
        return <int32_t>(product >> total)
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(<int32_t>(<uint32_t>x << left), multiplier), right)


cdef inline void quantize_multiplier(double real, int32_t* multiplier, int* shift) noexcept nogil:
    # Twin of reference.quant.quantize_multiplier (QuantizeMultiplier), for real >= 0.
    cdef int exponent = 0
    cdef int64_t q_fixed = 0
    if real != 0.0:
        q_fixed = <int64_t>c_round(frexp(real, &exponent) * 2147483648.0)
        if q_fixed == (<int64_t>1 << 31):
            q_fixed = q_fixed / 2
            exponent += 1
        if exponent < -31:
            q_fixed = 0
            exponent = 0
    multiplier[0] = <int32_t>q_fixed
    shift[0] = exponent


cdef inline int32_t requantize_float(int32_t acc, double real_scale) noexcept nogil:
    # Twin of reference.quant.requantize_float: round half away from zero in double,
    # saturated to int32.
    cdef double scaled = c_round(<double>acc * real_scale)
    if scaled > 2147483647.0:
        return 2147483647
    if scaled < -2147483648.0:
        return -2147483647 - 1
    return <int32_t>scaled


cdef inline int32_t requantize_channel(int32_t acc, const OpDesc* op, Py_ssize_t c) noexcept nogil:
    cdef const int32_t* multiplier = <const int32_t*>op.p[2]
    cdef const int32_t* shift = <const int32_t*>op.p[3]
    cdef const double* real = <const double*>op.p[4]
    cdef float scaled
    if op.rounding == ROUND_FLOAT:
        return requantize_float(acc, real[c])
    if op.rounding == ROUND_FLOAT32:
        # Twin of reference.quant.requantize_float32 (XNNPACK): float32, ties to even.
        scaled = rintf(<float>acc * (<const float*>op.p[4])[c])
        if scaled > <float>2147483520.0:
            return 2147483647
        if scaled < <float>-2147483520.0:
            return -2147483647 - 1
        return <int32_t>scaled
    return multiply_by_quantized_multiplier(acc, multiplier[c], <int>shift[c], op.rounding)


cdef void fully_connected(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/fully_connected.py for few rows: folded bias + int8 dot products,
    # then one requantization row per input row.
    cdef Py_ssize_t rows = op.i[0], in_f = op.i[1], out_f = op.i[2], r
    cdef int32_t out_zp = <int32_t>op.i[3], act_min = <int32_t>op.i[4], act_max = <int32_t>op.i[5]
    cdef int32_t* acc = <int32_t*>(arena + op.scratch)
    cdef const int8_t* x = <const int8_t*>(arena + op.in0)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    for r in range(rows):
        fc_row(acc, x + r * in_f, <const int8_t*>op.p[0], <const int32_t*>op.p[1], out_f, in_f)
        requantize_row(op, acc, y + r * out_f, out_f, out_zp, act_min, act_max)


cdef inline void requantize_row(const OpDesc* op, const int32_t* acc, int8_t* out,
                                Py_ssize_t n, int32_t zero_point, int32_t lo,
                                int32_t hi) noexcept nogil:
    # A row of output channels 0..n-1: the fast double-rounding loop when the op has
    # its shift split (p[5] = left shifts, p[6] = right shifts), else channel by channel.
    cdef Py_ssize_t c
    if op.rounding == ROUND_DOUBLE and op.p[5] != NULL:
        requantize_row_double(acc, out, n, <const int32_t*>op.p[2], <const int32_t*>op.p[5],
                              <const int32_t*>op.p[6], zero_point, lo, hi)
        return
    if op.rounding == ROUND_FLOAT32 and ec_neon_rows():
        ec_requantize_row_float32_neon(acc, out, n, <const float*>op.p[4], zero_point, lo, hi)
        return
    for c in range(n):
        out[c] = <int8_t>offset_and_clamp(requantize_channel(acc[c], op, c), zero_point, lo, hi)


cdef inline int32_t clamp(int32_t v, int32_t lo, int32_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline int32_t offset_and_clamp(int32_t v, int32_t zero_point, int32_t lo,
                                     int32_t hi) noexcept nogil:
    # Twin of reference.quant.clamp_to_output: clamp(v + zero_point, lo, hi) without the
    # int32 overflow of v + zero_point (the reference adds in int64).
    return clamp(v, lo - zero_point, hi - zero_point) + zero_point


cdef inline int32_t fp_add(int32_t a, int32_t b) noexcept nogil:
    return <int32_t>(<uint32_t>a + <uint32_t>b)


cdef inline int32_t fp_sub(int32_t a, int32_t b) noexcept nogil:
    return <int32_t>(<uint32_t>a - <uint32_t>b)


cdef inline int32_t saturating_left_shift(int32_t x, int exponent) noexcept nogil:
    # Twin of fixedpoint.saturating_rounding_multiply_by_pot for exponent > 0.
    cdef int32_t threshold = <int32_t>((<int64_t>1 << (31 - exponent)) - 1)
    if x > threshold:
        return 2147483647
    if x < -threshold:
        return -2147483647 - 1
    return <int32_t>(<uint32_t>x << exponent)


cdef inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) noexcept nogil:
    # Twin of reference.fixedpoint.one_over_one_plus_x_for_x_in_0_1.
    cdef int64_t total = <int64_t>a + 2147483647
    cdef int64_t sign = 1 if total >= 0 else -1
    cdef int32_t half_denominator = <int32_t>((total + sign) / 2)
    cdef int32_t x = fp_add(1515870810, saturating_rounding_doubling_high_mul(half_denominator,
                                                                            -1010580540))
    cdef int i
    cdef int32_t one_minus
    for i in range(3):
        one_minus = fp_sub(1 << 29, saturating_rounding_doubling_high_mul(half_denominator, x))
        x = fp_add(x, saturating_left_shift(saturating_rounding_doubling_high_mul(x, one_minus), 2))
    return saturating_left_shift(x, 1)


cdef inline int count_leading_zeros_u32(uint32_t x) noexcept nogil:
    cdef int n = 0
    if x == 0:
        return 32
    while not (x & 0x80000000u):
        x <<= 1
        n += 1
    return n


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------

cdef inline void copy_bytes(int8_t* dst, const int8_t* src, Py_ssize_t n) noexcept nogil:
    # im2col copies are a few bytes long: a plain loop beats calling memcpy
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] = src[k]


cdef void pad_input(const int8_t* src, int8_t* dst, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w,
                    Py_ssize_t c, Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t top,
                    Py_ssize_t left, int8_t value) noexcept nogil:
    cdef Py_ssize_t b, y
    memset(dst, <uint8_t>value, n * hp * wp * c)
    for b in range(n):
        for y in range(h):
            memcpy(dst + ((b * hp + y + top) * wp + left) * c, src + (b * h + y) * w * c, w * c)


cdef inline const int8_t* padded_input(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # A convolution's input, or (op.scratch >= 0) its copy padded with the input zero point
    # (geometry in the convolution ints: n, h, w, c = i[0..3], top, left = i[13], i[14],
    # padded hp, wp = i[15], i[16], zero point i[20]).
    if op.scratch < 0:
        return <const int8_t*>(arena + op.in0)
    pad_input(<const int8_t*>(arena + op.in0), <int8_t*>(arena + op.scratch), op.i[0],
              op.i[1], op.i[2], op.i[3], op.i[15], op.i[16], op.i[13], op.i[14],
              <int8_t>op.i[20])
    return <const int8_t*>(arena + op.scratch)


DEF PIXEL_BLOCK = 4


cdef void conv2d_rows(const OpDesc* op, const int8_t* x, int8_t* y, uint8_t* work,
                      Py_ssize_t first_row, Py_ssize_t row_step) noexcept nogil:
    # Output rows first_row, first_row + row_step, ... (rows count over batch x height),
    # with this thread's own accumulators, im2col block and input pairs in `work`.
    cdef Py_ssize_t hp = op.i[15], wp = op.i[16], cin = op.i[3]
    cdef Py_ssize_t oh = op.i[4], ow = op.i[5], cout = op.i[6], kh = op.i[7], kw = op.i[8]
    cdef Py_ssize_t sh = op.i[9], sw = op.i[10], dh = op.i[11], dw = op.i[12]
    cdef int32_t out_zp = <int32_t>op.i[17], act_min = <int32_t>op.i[18], act_max = <int32_t>op.i[19]
    cdef Py_ssize_t coutp = op.i[24], kpairs = op.i[25]
    cdef Py_ssize_t depth = kh * kw * cin
    cdef int32_t* acc = <int32_t*>work                                   # [PIXEL_BLOCK][coutp]
    cdef int32_t* xpairs = <int32_t*>(work + 4 * PIXEL_BLOCK * coutp)    # [PIXEL_BLOCK][kpairs]
    cdef int8_t* im2col = <int8_t*>(work + 4 * PIXEL_BLOCK * (coutp + kpairs))  # [depth]
    cdef const int16_t* wpairs = <const int16_t*>op.p[0]
    cdef const int32_t* bias = <const int32_t*>op.p[1]                   # [coutp]
    cdef bint pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and op.scratch < 0
    cdef Py_ssize_t row, b, oy, ox0, p, pixels, ky, kx, oc
    cdef int8_t* col
    cdef const int8_t* src
    cdef const int8_t* window
    cdef int8_t* out_pixel
    cdef Py_ssize_t rows = op.i[0] * oh
    row = first_row
    while row < rows:   # (range() with a run-time step would need the GIL)
        b = row // oh
        oy = row % oh
        row += row_step
        for ox0 in range(0, ow, PIXEL_BLOCK):
            pixels = ow - ox0 if ow - ox0 < PIXEL_BLOCK else PIXEL_BLOCK
            for p in range(pixels):
                if pointwise:
                    window = x + ((b * hp + oy) * wp + ox0 + p) * cin
                else:
                    col = im2col
                    for ky in range(kh):
                        src = x + ((b * hp + oy * sh + ky * dh) * wp + (ox0 + p) * sw) * cin
                        if dw == 1:   # the kw taps of a kernel row are contiguous
                            copy_bytes(col, src, kw * cin)
                            col = col + kw * cin
                        else:
                            for kx in range(kw):
                                copy_bytes(col, src + kx * dw * cin, cin)
                                col = col + cin
                    window = im2col
                pack_pairs(xpairs + p * kpairs, window, depth)
                memcpy(acc + p * coutp, bias, 4 * coutp)
            accumulate_pixels(acc, xpairs, pixels, wpairs, kpairs, coutp)
            for p in range(pixels):
                requantize_row(op, acc + p * coutp, y + ((b * oh + oy) * ow + ox0 + p) * cout,
                               cout, out_zp, act_min, act_max)


# Set in a child process made by fork(): libgomp's thread pool does not survive a fork
# (its worker threads are gone, and the child's first parallel region waits for them
# forever), so a forked child runs every op on its calling thread. Each threaded
# kernel's single-thread branch computes all rows with thread 0's work buffer: the
# same results, one thread.
cdef bint forked_child = False
cdef bint pool_started = False   # this process ran a parallel region (libgomp's pool exists)


cdef inline void note_pool_started() noexcept nogil:
    global pool_started
    pool_started = True


def _after_fork_in_child():
    # A child of a process that never ran a parallel region has no broken pool to meet:
    # it keeps its threads (the fuzzer's workers, forked before any inference, do).
    global forked_child
    forked_child = forked_child or pool_started


def runs_threads():
    """False in a child process made by fork() (its ops run on one thread)."""
    return not forked_child


import os as _os
_os.register_at_fork(after_in_child=_after_fork_in_child)


cdef void conv2d(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/conv2d.py (integer_ops/conv.h), as a blocked GEMM: for a
    # block of output pixels, their input windows (im2col, or the input pixels
    # themselves for a 1x1 stride-1 convolution) times weights laid out [K][cout].
    # With threads, thread t computes output rows t, t + threads, ...
    cdef const int8_t* x = padded_input(op, arena)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef uint8_t* work = arena + op.i[21]
    cdef Py_ssize_t work_stride = op.i[22], threads = op.i[23], t
    if threads > 1 and not forked_child:
        note_pool_started()
        for t in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            conv2d_rows(op, x, y, work + t * work_stride, t, threads)
    else:
        conv2d_rows(op, x, y, work, 0, 1)


DEF VNNI_PIXELS = 8   # _core_simd.h ec_gemm_vnni: pixels per GEMM call


cdef inline void make_requant(const OpDesc* op, ec_requant* rq) noexcept nogil:
    # The output stage of a VNNI op: fixed point and float32 run in the GEMM's registers,
    # any other rounding gets int32 accumulators and requantize_row.
    rq.multiplier = <const int32_t*>op.p[2]
    rq.left = <const int32_t*>op.p[5]
    rq.right = <const int32_t*>op.p[6]
    rq.scale = <const float*>op.p[4]
    rq.zero_point = <int32_t>op.i[17]
    rq.lo = <int32_t>op.i[18]
    rq.hi = <int32_t>op.i[19]
    if op.rounding == ROUND_DOUBLE and op.p[5] != NULL:
        rq.mode = EC_OUT_DOUBLE
    elif op.rounding == ROUND_FLOAT32:
        rq.mode = EC_OUT_FLOAT32
    else:
        rq.mode = EC_OUT_INT32


cdef inline void gemm_packed(const OpDesc* op, const ec_windows* win, const ec_requant* rq,
                             void* out, Py_ssize_t out_stride, int arm) noexcept nogil:
    # The packed-weight GEMM of this CPU family (weights p[0], folded bias p[1]).
    if arm:
        ec_gemm_arm(win, <const int8_t*>op.p[0], <const int32_t*>op.p[1], op.i[6], rq, out,
                    out_stride, arm == 2)
    else:
        ec_gemm_vnni(win, <const int8_t*>op.p[0], <const int32_t*>op.p[1], op.i[6], rq, out,
                     out_stride)


cdef void conv2d_vnni_blocks(const OpDesc* op, const uint8_t* x, int8_t* y, uint8_t* work,
                             Py_ssize_t first_block, Py_ssize_t block_step) noexcept nogil:
    # The same convolution as conv2d_rows on the VNNI GEMM, blocks of 8 output pixels
    # (counted over batch x height x width). With in-place windows (i[25]) x is the
    # flipped, padded input and each pixel's window is read where it lies, tap by tap;
    # otherwise (1x1 stride 1) the pixels are copied flipped into `rows`. On AArch64
    # (i[26] = 1, or 2: pairs of products in int16, no weight is -128) the same packed
    # weights run on the NEON / SDOT GEMM, on signed inputs (nothing flipped).
    cdef Py_ssize_t cout = op.i[6], row_bytes = op.i[24]
    cdef Py_ssize_t kq_count = row_bytes // 4, coutp = (cout + 15) // 16 * 16
    cdef bint in_place = op.i[25] != 0
    cdef int arm = <int>op.i[26]
    cdef Py_ssize_t cin = op.i[3], oh = op.i[4], ow = op.i[5], sh = op.i[9], sw = op.i[10]
    cdef Py_ssize_t hp = op.i[15], wp = op.i[16]
    cdef uint8_t* rows = work                                            # [8][row_bytes]
    cdef int32_t* acc = <int32_t*>(work + VNNI_PIXELS * row_bytes + 64)  # [8][coutp], int32 mode
    cdef Py_ssize_t total = op.i[0] * oh * ow, start, p
    cdef Py_ssize_t no_offset = 0
    cdef ec_conv_geometry g
    cdef ec_windows win
    cdef ec_requant rq
    g.cin, g.oh, g.ow, g.kh, g.kw = cin, oh, ow, op.i[7], op.i[8]
    g.sh, g.sw, g.dh, g.dw, g.hp, g.wp = sh, sw, op.i[11], op.i[12], hp, wp
    if in_place:
        win.tap_offset, win.ntaps = <const Py_ssize_t*>op.p[7], g.kh * g.kw
        win.kq_per_tap = (cin + 3) // 4   # the weights' depth per tap, zero-padded
    else:
        win.tap_offset, win.ntaps, win.kq_per_tap = &no_offset, 1, kq_count
    make_requant(op, &rq)
    start = first_block * VNNI_PIXELS
    while start < total:
        win.pixels = total - start if total - start < VNNI_PIXELS else VNNI_PIXELS
        if in_place:
            ec_window_corners(&win, x, &g, start)
        elif arm:
            ec_windows_arm(&win, rows, row_bytes, <const int8_t*>x, &g, start)
        else:
            ec_pack_windows_vnni(rows, row_bytes, <const int8_t*>x, &g, start, win.pixels)
            for p in range(VNNI_PIXELS):
                win.base[p] = rows + (p if p < win.pixels else 0) * row_bytes
        if rq.mode != EC_OUT_INT32:
            gemm_packed(op, &win, &rq, y + start * cout, cout, arm)
        else:
            gemm_packed(op, &win, &rq, acc, coutp, arm)
            for p in range(win.pixels):
                requantize_row(op, acc + p * coutp, y + (start + p) * cout, cout, rq.zero_point,
                               rq.lo, rq.hi)
        start += block_step * VNNI_PIXELS


cdef void conv2d_vnni(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # conv2d with the AVX-512 VNNI GEMM (compiled only when the CPU has it); thread t
    # takes pixel blocks t, t + threads, ...
    cdef const uint8_t* x
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef uint8_t* work = arena + op.i[21]
    cdef Py_ssize_t work_stride = op.i[22], threads = op.i[23], t
    if op.i[25] != 0 and op.i[26] == 0:   # x86, windows read in place: a flipped copy
        ec_pad_flip_vnni(<const int8_t*>(arena + op.in0), arena + op.scratch, op.i[0], op.i[1],
                         op.i[2], op.i[3], op.i[15], op.i[16], op.i[13], op.i[14],
                         <int8_t>op.i[20])
        x = arena + op.scratch
    else:
        x = <const uint8_t*>padded_input(op, arena)
    if threads > 1 and not forked_child:
        note_pool_started()
        for t in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            conv2d_vnni_blocks(op, x, y, work + t * work_stride, t, threads)
    else:
        conv2d_vnni_blocks(op, x, y, work, 0, 1)


cdef void depthwise_rows(const OpDesc* op, const int8_t* x, int8_t* y, int32_t* acc,
                         Py_ssize_t first_row, Py_ssize_t row_step) noexcept nogil:
    cdef Py_ssize_t cin = op.i[3]
    cdef Py_ssize_t oh = op.i[4], ow = op.i[5], cout = op.i[6], kh = op.i[7], kw = op.i[8]
    cdef Py_ssize_t sh = op.i[9], sw = op.i[10], dh = op.i[11], dw = op.i[12]
    cdef Py_ssize_t hp = op.i[15], wp = op.i[16]
    cdef int32_t out_zp = <int32_t>op.i[17], act_min = <int32_t>op.i[18], act_max = <int32_t>op.i[19]
    cdef Py_ssize_t mult = op.i[21]
    cdef const int8_t* weights = <const int8_t*>op.p[0]     # [kh, kw, cout]
    cdef const int32_t* bias = <const int32_t*>op.p[1]
    cdef Py_ssize_t row, b, oy, ox, c, m, ky, kx
    cdef const int8_t* pixel
    cdef const int8_t* wtap
    cdef int8_t* out_pixel
    cdef const int16_t* wpairs = <const int16_t*>op.p[7]   # tap pairs, multiplier 1 only
    cdef Py_ssize_t coutp = op.i[25]
    cdef const int8_t* taps[64]
    cdef Py_ssize_t rows = op.i[0] * oh
    row = first_row
    while row < rows:
        b = row // oh
        oy = row % oh
        row += row_step
        for ox in range(ow):
            if wpairs != NULL:
                for ky in range(kh):
                    for kx in range(kw):
                        taps[ky * kw + kx] = x + ((b * hp + oy * sh + ky * dh) * wp
                                                  + ox * sw + kx * dw) * cin
                depthwise_pixel(acc, taps, kh * kw, wpairs, bias, coutp)
                requantize_row(op, acc, y + ((b * oh + oy) * ow + ox) * cout, cout, out_zp,
                               act_min, act_max)
                continue
            for c in range(cout):
                acc[c] = bias[c]
            for ky in range(kh):
                for kx in range(kw):
                    pixel = x + ((b * hp + oy * sh + ky * dh) * wp + ox * sw + kx * dw) * cin
                    wtap = weights + (ky * kw + kx) * cout
                    if mult == 1:
                        for c in range(cout):
                            acc[c] = acc[c] + <int32_t>(<int16_t>pixel[c] * <int16_t>wtap[c])
                    else:
                        for c in range(cin):
                            for m in range(mult):
                                acc[c * mult + m] = acc[c * mult + m] + <int32_t>(
                                    <int16_t>pixel[c] * <int16_t>wtap[c * mult + m])
            requantize_row(op, acc, y + ((b * oh + oy) * ow + ox) * cout, cout, out_zp,
                           act_min, act_max)


cdef void depthwise_conv2d(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/depthwise_conv2d.py (integer_ops/depthwise_conv.h); the input is
    # read from a copy padded with the zero point; threads split the output rows.
    cdef const int8_t* x = padded_input(op, arena)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef Py_ssize_t work_stride = op.i[23], threads = op.i[24], t
    if threads > 1 and not forked_child:
        note_pool_started()
        for t in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            depthwise_rows(op, x, y, <int32_t*>(arena + op.i[22] + t * work_stride), t, threads)
    else:
        depthwise_rows(op, x, y, <int32_t*>(arena + op.i[22]), 0, 1)


cdef void depthwise_vnni_rows(const OpDesc* op, const int8_t* x, int8_t* y,
                              Py_ssize_t first_row, Py_ssize_t row_step) noexcept nogil:
    # depthwise_rows for depth multiplier 1 with AVX-512: one call per output row; the
    # taps' offsets from a pixel's window corner are precomputed (p[0]). With fewer than 16
    # channels and stride 1, i[26] > 1 pixels share a vector (16 / channels of them).
    cdef Py_ssize_t cin = op.i[3], oh = op.i[4], ow = op.i[5], cout = op.i[6]
    cdef Py_ssize_t ntaps = op.i[7] * op.i[8], sh = op.i[9], sw = op.i[10]
    cdef Py_ssize_t hp = op.i[15], wp = op.i[16], coutp = op.i[25], per_vector = op.i[26]
    cdef Py_ssize_t rows = op.i[0] * oh, row = first_row, b, oy
    cdef Py_ssize_t vectors = ow, pixel_step = sw * cin, out_step = cout, lanes = cout
    cdef ec_requant rq
    make_requant(op, &rq)
    if per_vector > 1:
        vectors = (ow + per_vector - 1) // per_vector
        pixel_step, out_step, lanes = 16, 16, 16
    while row < rows:
        b = row // oh
        oy = row % oh
        if op.i[28] and op.i[21] > 1:   # AArch64, depth multiplier i[21] > 1
            ec_depthwise_multiplier_row_arm(x + (b * hp + oy * sh) * wp * cin, ow, sw * cin,
                                            <const Py_ssize_t*>op.p[0], ntaps, op.i[21],
                                            <const int8_t*>op.p[7], <const int32_t*>op.p[1],
                                            cout, coutp, &rq, y + row * ow * cout)
            row += row_step
            continue
        if op.i[28]:   # AArch64 (2: pairs of products in int16): p[7] int8 [taps][coutp]
            ec_depthwise_row_arm(x + (b * hp + oy * sh) * wp * cin, vectors, pixel_step,
                                 out_step, ow * cout, <const Py_ssize_t*>op.p[0], ntaps,
                                 <const int8_t*>op.p[7], <const int32_t*>op.p[1], lanes, coutp,
                                 &rq, y + row * ow * cout, op.i[28] == 2)
            row += row_step
            continue
        if op.i[27]:   # 3x3, width stride 1 or 2: columns reused (p[7]: column pairs)
            ec_depthwise3x3_row_vnni(x + (b * hp + oy * sh) * wp * cin, ow, sw,
                                     op.i[11] * wp * cin,
                                     cin, <const int16_t*>op.p[7], <const int32_t*>op.p[1],
                                     cout, coutp, &rq, y + row * ow * cout)
            row += row_step
            continue
        ec_depthwise_row_vnni(x + (b * hp + oy * sh) * wp * cin, vectors, pixel_step, out_step,
                              ow * cout, <const Py_ssize_t*>op.p[0], ntaps,
                              <const int16_t*>op.p[7], <const int32_t*>op.p[1], lanes, coutp,
                              &rq, y + row * ow * cout)
        row += row_step


cdef void depthwise_conv2d_vnni(const OpDesc* op, uint8_t* arena) noexcept nogil:
    cdef const int8_t* x = padded_input(op, arena)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef Py_ssize_t threads = op.i[24], t
    if threads > 1 and not forked_child:
        note_pool_started()
        for t in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            depthwise_vnni_rows(op, x, y, t, threads)
    else:
        depthwise_vnni_rows(op, x, y, 0, 1)


cdef inline Py_ssize_t window_start(Py_ssize_t out, Py_ssize_t stride,
                                    Py_ssize_t pad) noexcept nogil:
    # First input index of a pooling window along one axis, inside the image.
    cdef Py_ssize_t start = out * stride - pad
    return start if start > 0 else 0


cdef inline Py_ssize_t window_end(Py_ssize_t out, Py_ssize_t stride, Py_ssize_t pad,
                                  Py_ssize_t size, Py_ssize_t limit) noexcept nogil:
    # One past the last input index of that window, inside the image.
    cdef Py_ssize_t end = out * stride - pad + size
    return end if end < limit else limit


cdef void pool2d(const OpDesc* op, uint8_t* arena, bint is_max) noexcept nogil:
    # Twin of reference/pooling.py: in-image taps only; average rounds half away.
    cdef Py_ssize_t n = op.i[0], h = op.i[1], w = op.i[2], c = op.i[3]
    cdef Py_ssize_t oh = op.i[4], ow = op.i[5], fh = op.i[6], fw = op.i[7]
    cdef Py_ssize_t sh = op.i[8], sw = op.i[9], top = op.i[10], left = op.i[11]
    cdef int32_t act_min = <int32_t>op.i[12], act_max = <int32_t>op.i[13]
    cdef int32_t* acc = <int32_t*>(arena + op.scratch)
    cdef const int8_t* x = <const int8_t*>(arena + op.in0)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef Py_ssize_t b, oy, ox, ch, iy, ix, y0, y1, x0, x1
    cdef int32_t count, v, half
    cdef const int8_t* pixel
    cdef int8_t* out_pixel
    if not is_max and ec_neon_rows() and fh * fw <= EC_A64_POOL_MAX_COUNT:
        ec_average_pool_neon(x, n, h, w, c, oh, ow, fh, fw, sh, sw, top, left, act_min,
                             act_max, y)
        return
    for b in range(n):
        for oy in range(oh):
            y0 = window_start(oy, sh, top)
            y1 = window_end(oy, sh, top, fh, h)
            for ox in range(ow):
                x0 = window_start(ox, sw, left)
                x1 = window_end(ox, sw, left, fw, w)
                for ch in range(c):
                    acc[ch] = -128 if is_max else 0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        pixel = x + ((b * h + iy) * w + ix) * c
                        if is_max:
                            for ch in range(c):
                                if pixel[ch] > acc[ch]:
                                    acc[ch] = pixel[ch]
                        else:
                            for ch in range(c):
                                acc[ch] = acc[ch] + pixel[ch]
                count = <int32_t>((y1 - y0) * (x1 - x0))
                out_pixel = y + ((b * oh + oy) * ow + ox) * c
                for ch in range(c):
                    v = acc[ch]
                    if not is_max and count > 0:
                        half = count / 2
                        v = (v + half) / count if v > 0 else (v - half) / count
                    out_pixel[ch] = <int8_t>clamp(v, act_min, act_max)


cdef void add(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/elementwise.py (add_common.cc); index maps handle broadcasting.
    cdef Py_ssize_t size = op.i[0], i, ia, ib
    cdef int32_t zp1 = <int32_t>op.i[1], zp2 = <int32_t>op.i[2], out_zp = <int32_t>op.i[3]
    cdef int left_shift = <int>op.i[4]
    cdef int32_t m1 = <int32_t>op.i[5], m2 = <int32_t>op.i[7], mo = <int32_t>op.i[9]
    cdef int s1 = <int>op.i[6], s2 = <int>op.i[8], so = <int>op.i[10]
    cdef int32_t act_min = <int32_t>op.i[11], act_max = <int32_t>op.i[12]
    cdef const int8_t* a = <const int8_t*>(arena + op.in0)
    cdef const int8_t* b
    cdef const int32_t* a_index = <const int32_t*>op.p[0]
    cdef const int32_t* b_index = <const int32_t*>op.p[1]
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef int32_t va, vb, total
    if op.p[2] != NULL:
        b = <const int8_t*>op.p[2]          # a constant second operand
    else:
        b = <const int8_t*>(arena + op.in1)
    cdef ec_add_params q
    cdef bint xnnpack = op.rounding == ROUND_XNNPACK
    if (xnnpack or op.rounding == ROUND_DOUBLE) and ec_add_rows_simd_available(xnnpack):
        q.zp1, q.zp2, q.out_zp, q.left_shift = zp1, zp2, out_zp, left_shift
        q.m1, q.l1, q.r1 = m1, (s1 if s1 > 0 else 0), (-s1 if s1 < 0 else 0)
        q.m2, q.l2, q.r2 = m2, (s2 if s2 > 0 else 0), (-s2 if s2 < 0 else 0)
        q.mo, q.lo_shift, q.ro = mo, (so if so > 0 else 0), (-so if so < 0 else 0)
        q.act_min, q.act_max, q.xnnpack = act_min, act_max, xnnpack
        if a_index == NULL and b_index == NULL:
            ec_add_rows_simd(a, b, y, size, &q)
        else:
            add_broadcast_rows(a, b, a_index, b_index, y, size, &q)
        return
    if xnnpack:
        add_xnnpack(op, a, b, y)
        return
    if (op.rounding == ROUND_DOUBLE and a_index == NULL and b_index == NULL
            and s1 <= 0 and s2 <= 0 and so <= 0):
        # the common case: same shapes, right shifts only -> the branch-free row loop
        add_row_double(a, b, y, size, zp1, zp2, out_zp, left_shift, m1, -s1, m2, -s2, mo, -so,
                       act_min, act_max)
        return
    for i in range(size):
        ia = a_index[i] if a_index != NULL else i
        ib = b_index[i] if b_index != NULL else i
        va = multiply_by_quantized_multiplier((a[ia] - zp1) * (1 << left_shift), m1, s1, op.rounding)
        vb = multiply_by_quantized_multiplier((b[ib] - zp2) * (1 << left_shift), m2, s2, op.rounding)
        total = multiply_by_quantized_multiplier(va + vb, mo, so, op.rounding)
        y[i] = <int8_t>offset_and_clamp(total, out_zp, act_min, act_max)


cdef void add_broadcast_rows(const int8_t* a, const int8_t* b, const int32_t* a_index,
                            const int32_t* b_index, int8_t* y, Py_ssize_t size,
                            const ec_add_params* q) noexcept nogil:
    # Broadcasting ADD on the vector row kernel: both operands gathered through their index
    # maps (NULL: same shape as the output), a block at a time, into rows on the stack.
    cdef int8_t ga[256]
    cdef int8_t gb[256]
    cdef Py_ssize_t start, k, block
    for start in range(0, size, 256):
        block = size - start if size - start < 256 else 256
        for k in range(block):
            ga[k] = a[a_index[start + k]] if a_index != NULL else a[start + k]
            gb[k] = b[b_index[start + k]] if b_index != NULL else b[start + k]
        ec_add_rows_simd(ga, gb, y + start, block, q)


cdef void add_xnnpack(const OpDesc* op, const int8_t* a, const int8_t* b, int8_t* y) noexcept nogil:
    # Twin of reference/elementwise.py, rounding "xnnpack" (XNNPACK qs8-vadd): one integer
    # multiplier per input, one shift of the sum with ties up. |sum| < 2^30: no overflow.
    cdef Py_ssize_t size = op.i[0], i, ia, ib
    cdef int32_t zp1 = <int32_t>op.i[1], zp2 = <int32_t>op.i[2], out_zp = <int32_t>op.i[3]
    cdef int32_t m1 = <int32_t>op.i[5], m2 = <int32_t>op.i[7]
    cdef int shift = <int>(-op.i[10])
    cdef int32_t act_min = <int32_t>op.i[11], act_max = <int32_t>op.i[12]
    cdef int32_t rounding = <int32_t>1 << (shift - 1)
    cdef const int32_t* a_index = <const int32_t*>op.p[0]
    cdef const int32_t* b_index = <const int32_t*>op.p[1]
    cdef int32_t total
    for i in range(size):
        ia = a_index[i] if a_index != NULL else i
        ib = b_index[i] if b_index != NULL else i
        total = (a[ia] - zp1) * m1 + (b[ib] - zp2) * m2 + rounding
        y[i] = <int8_t>offset_and_clamp(total >> shift, out_zp, act_min, act_max)


cdef void mean(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/reduce.py. TFLite's sums start at -in_zp * count (the reference's
    # sum of (x - in_zp)); XNNPACK's are raw sums, its zero points folded into a float one.
    # Axes forming one block of the shape ([outer][reduced][inner], i[8..10]) sum whole
    # rows; otherwise out_index (p[0]) maps each input element to its output.
    cdef Py_ssize_t in_size = op.i[0], out_size = op.i[1], count = op.i[2], i
    cdef int32_t in_zp = <int32_t>op.i[3], out_zp = <int32_t>op.i[4]
    cdef int32_t multiplier = <int32_t>op.i[5]
    cdef int shift = <int>op.i[6]
    cdef bint xnnpack = op.i[7] != 0
    cdef float scale = (<const float*>op.p[1])[0]
    cdef float zero = (<const float*>op.p[1])[1]
    cdef float scaled
    cdef const int32_t* out_index = <const int32_t*>op.p[0]
    cdef int32_t* total = <int32_t*>(arena + op.scratch)
    cdef const int8_t* x = <const int8_t*>(arena + op.in0)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef int32_t v
    cdef int32_t start = 0 if xnnpack else -in_zp * <int32_t>count
    cdef Py_ssize_t outer = op.i[8], reduced = op.i[9], inner = op.i[10], o, r
    for i in range(out_size):
        total[i] = start
    if outer > 0 and ec_neon_rows():
        ec_mean_sums_neon(x, outer, reduced, inner, start, total)
    elif outer > 0:
        for o in range(outer):
            for r in range(reduced):
                accumulate_row(total + o * inner, x + (o * reduced + r) * inner, inner)
    else:
        for i in range(in_size):
            total[out_index[i]] += x[i]
    if not xnnpack and op.p[2] != NULL:
        # one multiplier for every output, as arrays for the vectorized row loop
        requantize_row_double(total, y, out_size, <const int32_t*>op.p[2],
                              <const int32_t*>op.p[3], <const int32_t*>op.p[4], out_zp, -128, 127)
        return
    if xnnpack and ec_neon_rows():
        ec_mean_xnnpack_row_neon(total, out_size, scale, zero, y)
        return
    for i in range(out_size):
        if xnnpack:
            # Twin of reference.quant.xnnpack_mean_convert: a float32 multiply, then an add
            # (never fused: -ffp-contract=off), ties to even, clamped as a float first.
            scaled = <float>total[i] * scale
            scaled = rintf(scaled + zero)
            scaled = <float>-128 if scaled < -128 else scaled
            scaled = <float>127 if scaled > 127 else scaled
            y[i] = <int8_t>(<int32_t>scaled)
        else:
            v = multiply_by_quantized_multiplier(total[i], multiplier, shift, ROUND_DOUBLE)
            y[i] = <int8_t>offset_and_clamp(v, out_zp, -128, 127)


cdef void softmax_lut16(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/activations.py softmax_lut16 (LiteRT built for aarch64): exp() of
    # d = 0..255 below the row max from the reference's 16-bit table, one multiplier per
    # row from the sum in float32.
    cdef Py_ssize_t rows = op.i[0], depth = op.i[1], r, c
    cdef int32_t out_zp = <int32_t>op.i[3]
    cdef const int32_t* table = <const int32_t*>op.p[2]
    cdef float output_scale = (<const float*>op.p[3])[0]
    cdef const int8_t* x = <const int8_t*>(arena + op.in0)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef int32_t row_max, total, multiplier
    cdef int shift
    cdef float inverse
    for r in range(rows):
        row_max = row_maximum(x + r * depth, depth)
        total = 0
        for c in range(depth):
            total = total + table[row_max - x[r * depth + c]]
        inverse = (<float>1.0) / ((<float>total) * output_scale)
        quantize_multiplier(<double>inverse, &multiplier, &shift)
        for c in range(depth):
            y[r * depth + c] = <int8_t>clamp(multiply_by_quantized_multiplier(
                table[row_max - x[r * depth + c]], multiplier, shift, ROUND_DOUBLE) + out_zp,
                -128, 127)


cdef inline int32_t row_maximum(const int8_t* row, Py_ssize_t depth) noexcept nogil:
    # The largest value of one SOFTMAX row (both softmax variants subtract it first).
    cdef int32_t best = -128
    cdef Py_ssize_t c
    for c in range(depth):
        if row[c] > best:
            best = row[c]
    return best


cdef void softmax(const OpDesc* op, uint8_t* arena) noexcept nogil:
    if op.p[2] != NULL:   # the profile's softmax is "lut16"
        softmax_lut16(op, arena)
    else:
        softmax_fixed(op, arena)


cdef inline int32_t softmax_divide_by_pot(int32_t x, int exponent) noexcept nogil:
    # A row whose exp() values sum to 512 or more (long, flat rows) gives exponents 32-35,
    # where a 32-bit shift is undefined (gemmlowp asserts exponent <= 31, so tflite-micro and
    # LiteRT's BUILTIN_REF abort; LiteRT's optimized kernel and the reference divide exactly).
    # The exact rounded quotient of an int32 by 2^32 or more is 0, or -1 for -2^31 / 2^32.
    if exponent <= 31:
        return rounding_divide_by_pot(x, exponent)
    return -1 if (exponent == 32 and x == -2147483647 - 1) else 0


cdef void softmax_fixed(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/activations.py softmax; exp() of every possible difference
    # (0..255 below the row max) is a compile-time table from the reference.
    cdef Py_ssize_t rows = op.i[0], depth = op.i[1], r, c
    cdef int32_t diff_min = <int32_t>op.i[2], out_zp = <int32_t>op.i[3]
    cdef const int32_t* exp_q0 = <const int32_t*>op.p[0]       # indexed by -diff
    cdef const int32_t* exp_acc = <const int32_t*>op.p[1]
    cdef const int8_t* x = <const int8_t*>(arena + op.in0)
    cdef int8_t* y = <int8_t*>(arena + op.out)
    cdef int32_t row_max, diff, total, reciprocal, unsaturated
    cdef int headroom_plus_one, bits_over_unit, exponent
    for r in range(rows):
        row_max = row_maximum(x + r * depth, depth)
        total = 0
        for c in range(depth):
            diff = x[r * depth + c] - row_max
            if diff >= diff_min:
                total = fp_add(total, exp_acc[-diff])
        headroom_plus_one = count_leading_zeros_u32(<uint32_t>total)
        bits_over_unit = 12 - headroom_plus_one
        reciprocal = one_over_one_plus_x_for_x_in_0_1(
            <int32_t>((<uint32_t>total << headroom_plus_one) - (<uint32_t>1 << 31)))
        exponent = bits_over_unit + 31 - 8
        for c in range(depth):
            diff = x[r * depth + c] - row_max
            if diff >= diff_min:
                unsaturated = softmax_divide_by_pot(
                    saturating_rounding_doubling_high_mul(reciprocal, exp_q0[-diff]), exponent)
                y[r * depth + c] = <int8_t>clamp(unsaturated + out_zp, -128, 127)
            else:
                y[r * depth + c] = -128


cdef void lut(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # An elementwise int8 function given by its 256 values (computed by the reference);
    # elements from i[2] on use the second table p[1] if there is one (a kernel whose
    # vector body and scalar tail round differently, reference/quantize.py).
    cdef Py_ssize_t size = op.i[0], body = op.i[2], i
    cdef uint8_t flip = <uint8_t>op.i[1]   # 0x80 maps int8 -128..127 to table rows 0..255
    cdef const uint8_t* table = <const uint8_t*>op.p[0]
    cdef const uint8_t* tail = <const uint8_t*>op.p[1] if op.p[1] != NULL else table
    cdef const uint8_t* x = arena + op.in0
    cdef uint8_t* y = arena + op.out
    for i in range(body):
        y[i] = table[x[i] ^ flip]
    for i in range(body, size):
        y[i] = tail[x[i] ^ flip]


cdef void gather(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Data movement (PAD, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND):
    # out[i] = in[index[i]], or the pad value where index[i] < 0.
    cdef Py_ssize_t size = op.i[0], i
    cdef uint8_t pad_value = <uint8_t>op.i[1]
    cdef const int32_t* index = <const int32_t*>op.p[0]
    cdef const uint8_t* x = arena + op.in0
    cdef uint8_t* y = arena + op.out
    for i in range(size):
        y[i] = x[index[i]] if index[i] >= 0 else pad_value


cdef inline void transpose(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/layout.py transpose, on the collapsed form (_core_transpose.h):
    # i[0] = rank, i[1] = element size, i[2..7] = output shape, i[8..13] = input strides.
    ec_transpose(arena + op.in0, arena + op.out, op.i[1], op.i[0], &op.i[2], &op.i[8])


def transpose_into(x, uint8_t[::1] arena, Py_ssize_t offset, ints):
    """The TRANSPOSE of op ints `ints` (as Program.add takes them) from the numpy array x
    (C-contiguous, the op's input) into arena[offset:]: a graph input's transpose done
    while copying it in (planner: folded inputs). Checked here, once per call."""
    cdef const uint8_t[::1] src = x.reshape(-1).view("uint8")
    cdef Py_ssize_t rank = ints[0], element_size = ints[1], k
    cdef Py_ssize_t shape[EC_TRANSPOSE_MAX_RANK]
    cdef Py_ssize_t stride[EC_TRANSPOSE_MAX_RANK]
    if not 1 <= rank <= EC_TRANSPOSE_MAX_RANK or element_size != x.itemsize:
        raise ValueError(f"transpose of rank {rank}, {element_size}-byte elements")
    for k in range(rank):
        shape[k], stride[k] = ints[2 + k], ints[8 + k]
    if offset < 0 or offset + src.shape[0] > arena.shape[0]:
        raise ValueError(f"{src.shape[0]} bytes at {offset} do not fit the arena")
    if src.shape[0] == 0:
        return
    with nogil:
        ec_transpose(&src[0], &arena[offset], element_size, rank, shape, stride)


cdef void scatter(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # CONCATENATION, one input at a time: out[index[i]] = in[i].
    cdef Py_ssize_t size = op.i[0], i
    cdef const int32_t* index = <const int32_t*>op.p[0]
    cdef const uint8_t* x = arena + op.in0
    cdef uint8_t* y = arena + op.out
    for i in range(size):
        y[index[i]] = x[i]


cdef void quantize_float(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/quantize.py quantize, float32 input: TFLite's AffineQuantize,
    # or (op.rounding "xnnpack") XNNPACK's convert, p[0] then holding 1 / scale.
    cdef Py_ssize_t size = op.i[0], i
    cdef int32_t zp = <int32_t>op.i[1], lo = <int32_t>op.i[2], hi = <int32_t>op.i[3]
    cdef bint to_uint8 = op.i[4] != 0
    cdef bint xnnpack = op.rounding == ROUND_XNNPACK
    cdef float scale = (<const float*>op.p[0])[0]
    cdef const float* x = <const float*>(arena + op.in0)
    cdef float q, r
    cdef int32_t v
    for i in range(size):
        if xnnpack:
            q = x[i] * scale
            r = rintf(q) if q == q else 0   # ties to even; NaN as 0 (the reference's choice)
        else:
            q = x[i] / scale
            r = roundf(q)   # ties away from zero, exactly (std::round in TFLite)
        # Saturate in float to the output range minus the zero point (small integers,
        # exact in float): converting or adding first could overflow int32.
        if r > <float>(hi - zp):
            r = <float>(hi - zp)
        elif r < <float>(lo - zp):
            r = <float>(lo - zp)
        v = <int32_t>r + zp
        if to_uint8:
            (<uint8_t*>(arena + op.out))[i] = <uint8_t>v
        else:
            (<int8_t*>(arena + op.out))[i] = <int8_t>v


cdef void dequantize(const OpDesc* op, uint8_t* arena) noexcept nogil:
    # Twin of reference/quantize.py dequantize: float32(double(scale) * (q - zp)).
    cdef Py_ssize_t size = op.i[0], i
    cdef int32_t zp = <int32_t>op.i[1]
    cdef bint from_uint8 = op.i[2] != 0
    cdef double scale = (<const double*>op.p[0])[0]
    cdef float* y = <float*>(arena + op.out)
    cdef int32_t q
    for i in range(size):
        if from_uint8:
            q = (<const uint8_t*>(arena + op.in0))[i]
        else:
            q = (<const int8_t*>(arena + op.in0))[i]
        y[i] = <float>(scale * <double>(q - zp))


cdef void run_op(const OpDesc* op, uint8_t* arena) noexcept nogil:
    if op.kind == OP_CONV:
        conv2d(op, arena)
    elif op.kind == OP_DWCONV:
        depthwise_conv2d(op, arena)
    elif op.kind == OP_FC:
        fully_connected(op, arena)
    elif op.kind == OP_MAXPOOL:
        pool2d(op, arena, True)
    elif op.kind == OP_AVGPOOL:
        pool2d(op, arena, False)
    elif op.kind == OP_ADD:
        add(op, arena)
    elif op.kind == OP_MEAN:
        mean(op, arena)
    elif op.kind == OP_SOFTMAX:
        softmax(op, arena)
    elif op.kind == OP_LUT:
        lut(op, arena)
    elif op.kind == OP_GATHER:
        gather(op, arena)
    elif op.kind == OP_SCATTER:
        scatter(op, arena)
    elif op.kind == OP_QUANTIZE_FLOAT:
        quantize_float(op, arena)
    elif op.kind == OP_DEQUANTIZE:
        dequantize(op, arena)
    elif op.kind == OP_CONV_VNNI:
        conv2d_vnni(op, arena)
    elif op.kind == OP_DWCONV_VNNI:
        depthwise_conv2d_vnni(op, arena)
    elif op.kind == OP_COPY:
        memcpy(arena + op.out, arena + op.in0, op.i[0])
    elif op.kind == OP_TRANSPOSE:
        transpose(op, arena)


cdef class Program:
    """A compiled model: op records + the arrays they point to (kept alive here)."""
    cdef OpDesc* ops
    cdef Py_ssize_t n_ops
    cdef Py_ssize_t capacity
    cdef list keep_alive
    cdef readonly Py_ssize_t arena_size
    cdef object bound_arena      # the array run() works in (kept alive here)
    cdef uint8_t* bound_base

    def __cinit__(self, Py_ssize_t arena_size):
        self.capacity = 16
        self.ops = <OpDesc*>malloc(self.capacity * sizeof(OpDesc))
        if self.ops == NULL:
            raise MemoryError()
        self.n_ops = 0
        self.keep_alive = []
        self.arena_size = arena_size

    def __dealloc__(self):
        free(self.ops)

    def __len__(self):
        return self.n_ops

    def add(self, str kind, Py_ssize_t in0, Py_ssize_t in1, Py_ssize_t out, Py_ssize_t scratch,
            ints, arrays, str rounding="double"):
        """Append one op. ints: up to 32 integers; arrays: up to 8 C-contiguous numpy
        arrays (or None) whose data the kernel reads (checked here, not in the loop)."""
        cdef OpDesc* grown
        cdef OpDesc* op
        cdef Py_ssize_t k
        cdef const unsigned char[::1] view
        if len(ints) > NI or len(arrays) > NP:
            raise ValueError("too many op parameters")
        for offset in (in0, in1, out, scratch):
            if offset >= self.arena_size:
                raise ValueError(f"offset {offset} outside the {self.arena_size}-byte arena")
        if self.n_ops == self.capacity:
            grown = <OpDesc*>malloc(2 * self.capacity * sizeof(OpDesc))
            if grown == NULL:
                raise MemoryError()
            memcpy(grown, self.ops, self.n_ops * sizeof(OpDesc))
            free(self.ops)
            self.ops = grown
            self.capacity *= 2
        op = &self.ops[self.n_ops]
        memset(op, 0, sizeof(OpDesc))
        op.kind = OPS[kind]
        op.rounding = ROUNDINGS[rounding]
        op.in0, op.in1, op.out, op.scratch = in0, in1, out, scratch
        for k in range(len(ints)):
            op.i[k] = ints[k]
        for k in range(len(arrays)):
            array = arrays[k]
            if array is None:
                op.p[k] = NULL
                continue
            if not array.flags.c_contiguous or array.size == 0:
                raise ValueError("kernel arrays must be C-contiguous and non-empty")
            view = array.reshape(-1).view("uint8")
            self.keep_alive.append(array)
            op.p[k] = <const void*>&view[0]
        self.n_ops += 1

    def bind(self, arena):
        """Work in this arena (a C-contiguous uint8 numpy array of at least arena_size
        bytes) from now on: run() then needs no buffer lookup per call."""
        cdef unsigned char[::1] view = arena
        if view.shape[0] < self.arena_size:
            raise ValueError(f"arena of {view.shape[0]} bytes, the plan needs {self.arena_size}")
        self.bound_arena = arena   # a numpy array never moves its data while referenced
        self.bound_base = <uint8_t*>&view[0]

    def run(self):
        """Run every op on the bound arena (see bind), in one call and without the GIL."""
        if self.bound_base == NULL:
            raise ValueError("no arena bound: call bind() first")
        with nogil:
            self.run_ops()

    cdef void run_ops(self) noexcept nogil:
        cdef Py_ssize_t k
        for k in range(self.n_ops):
            run_op(&self.ops[k], self.bound_base)

    def run_range(self, Py_ssize_t first, Py_ssize_t stop):
        """Run ops first .. stop - 1 only (for per-op instruction counts under QEMU, where
        the count of a process is all there is: benchmarks/bench_arm.py --per-op)."""
        cdef Py_ssize_t k
        cdef uint8_t* base = self.bound_base
        if base == NULL:
            raise ValueError("no arena bound: call bind() first")
        if not 0 <= first <= stop <= self.n_ops:
            raise ValueError(f"ops {first}..{stop} outside the program's {self.n_ops}")
        with nogil:
            for k in range(first, stop):
                run_op(&self.ops[k], base)

    def time_ops(self, int repeats):
        """Seconds per op on the bound arena (median of `repeats`), for profiling
        (`edgecnn bench --per-op`)."""
        import time
        cdef Py_ssize_t k
        cdef int r
        cdef uint8_t* base = self.bound_base
        if base == NULL:
            raise ValueError("no arena bound: call bind() first")
        result = []
        for k in range(self.n_ops):
            samples = []
            for r in range(repeats):
                start = time.perf_counter()
                with nogil:
                    run_op(&self.ops[k], base)
                samples.append(time.perf_counter() - start)
            samples.sort()
            result.append(samples[len(samples) // 2])
        return result


cdef class LeanRun:
    """Model.run for the common case, with every check done once here: one input array
    (or a list of one) of exactly the model's type, dtype and shape, C-contiguous, an integer
    dtype (float inputs need their NaN check), one output, one thread. Calling it returns
    the output (a new array), or None when the input is anything else, and the caller then
    takes the checked path, which keeps every error message. The lock is the compiled
    model's: both paths use the same arena."""
    cdef Program program
    cdef object lock, array_type, dtype, output
    cdef Py_ssize_t offset, nbytes, ndim
    cdef Py_ssize_t shape[8]

    def __init__(self, Program program, lock, array_type, dtype, tuple shape,
                 Py_ssize_t offset, output):
        if program.bound_base == NULL:
            raise ValueError("no arena bound: call bind() first")
        if len(shape) > 8:
            raise ValueError("more than 8 dimensions")
        self.program, self.lock, self.array_type = program, lock, array_type
        self.dtype, self.output = dtype, output
        self.offset = offset
        self.nbytes = dtype.itemsize
        self.ndim = len(shape)
        for k, n in enumerate(shape):
            self.shape[k] = n
            self.nbytes *= n
        if offset < 0 or offset + self.nbytes > program.arena_size:
            raise ValueError("the input lies outside the arena")

    def __call__(self, x):
        cdef Py_buffer view
        cdef Py_ssize_t k
        if type(x) is list:
            if len(<list>x) != 1:
                return None
            x = (<list>x)[0]
        if type(x) is not self.array_type or x.dtype is not self.dtype:
            return None
        try:   # the shape without making x.shape's tuple; fails unless C-contiguous
            PyObject_GetBuffer(x, &view, PyBUF_ND)
        except (BufferError, ValueError):   # numpy raises ValueError for a strided array
            return None
        if view.len != self.nbytes or view.ndim != self.ndim:
            PyBuffer_Release(&view)
            return None
        for k in range(self.ndim):
            if view.shape[k] != self.shape[k]:
                PyBuffer_Release(&view)
                return None
        self.lock.acquire()
        try:
            memcpy(self.program.bound_base + self.offset, view.buf, self.nbytes)
            PyBuffer_Release(&view)
            with nogil:
                self.program.run_ops()
            return self.output.copy()
        finally:
            self.lock.release()


def requantize_row_for_test(const int32_t[::1] acc, const int32_t[::1] multiplier,
                            const int32_t[::1] shift, int32_t zero_point):
    """The double-rounding row loop on given values (for the tests), int8 results."""
    import numpy as np
    n = acc.shape[0]
    if multiplier.shape[0] != n or shift.shape[0] != n:
        raise ValueError("acc, multiplier and shift must have the same length")
    left = np.maximum(np.asarray(shift), 0).astype(np.int32)
    right = np.maximum(-np.asarray(shift), 0).astype(np.int32)
    out = np.zeros(n, np.int8)
    cdef const int32_t[::1] left_view = left
    cdef const int32_t[::1] right_view = right
    cdef int8_t[::1] out_view = out
    if n:
        requantize_row_double(&acc[0], &out_view[0], n, &multiplier[0], &left_view[0],
                              &right_view[0], zero_point, -128, 127)
    return out


def requantize_row_float32_for_test(const int32_t[::1] acc, const float[::1] scale,
                                    int32_t zero_point, int32_t lo=-128, int32_t hi=127):
    """The float32 (XNNPACK) requantization row of the kernels on given values (for the
    tests; NEON on AArch64 at levels neon and dotprod), int8 results."""
    import numpy as np
    n = acc.shape[0]
    if scale.shape[0] != n:
        raise ValueError("acc and scale must have the same length")
    out = np.zeros(n, np.int8)
    cdef int8_t[::1] out_view = out
    cdef OpDesc op
    memset(&op, 0, sizeof(op))
    op.rounding = ROUND_FLOAT32
    if n:
        op.p[4] = &scale[0]
        requantize_row(&op, &acc[0], &out_view[0], n, zero_point, lo, hi)
    return out


def requantize_scalar(int32_t x, int32_t multiplier, int shift, str rounding="double"):
    """One requantization (exposed for tests of the core's arithmetic)."""
    return multiply_by_quantized_multiplier(x, multiplier, shift, ROUNDINGS[rounding])
