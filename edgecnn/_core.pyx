# The Cython core: the kernels of reference/ written for speed, bit-for-bit equal.
# Each function here has a twin of the same name in reference/quant.py.

from libc.stdint cimport int32_t, int64_t

cdef int32_t INT32_MIN_ = -2147483648
cdef int32_t INT32_MAX_ = 2147483647


cdef inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) noexcept nogil:
    # Twin of reference.quant.saturating_rounding_doubling_high_mul.
    cdef int64_t ab, nudge
    if a == INT32_MIN_ and b == INT32_MIN_:
        return INT32_MAX_
    ab = <int64_t>a * <int64_t>b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    return <int32_t>((ab + nudge) / (<int64_t>1 << 31))   # cdivision: truncates like C


cdef inline int32_t rounding_divide_by_pot(int32_t x, int exponent) noexcept nogil:
    # Twin of reference.quant.rounding_divide_by_pot.
    cdef int32_t mask = <int32_t>((<int64_t>1 << exponent) - 1)
    cdef int32_t remainder = x & mask
    cdef int32_t threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


cdef inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                     int shift) noexcept nogil:
    # Twin of reference.quant.multiply_by_quantized_multiplier, double rounding.
    cdef int left = shift if shift > 0 else 0
    cdef int right = -shift if shift < 0 else 0
    cdef int32_t shifted = <int32_t>(<uint32_t_>x << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


ctypedef unsigned int uint32_t_


def requantize_scalar(int32_t x, int32_t multiplier, int shift):
    """One double-rounding requantization (exposed for tests of the core's arithmetic)."""
    return multiply_by_quantized_multiplier(x, multiplier, shift)
