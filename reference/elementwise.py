"""ADD int8 (reference_integer_ops::Add / add_common.cc), with numpy broadcasting.

TFLite: both inputs are shifted left by 20 bits (headroom for precision), scaled
to a shared scale of twice the larger input scale, added, and the sum scaled to
the output: three requantizations, each with the same rounding as elsewhere.
XNNPACK (rounding "xnnpack", qs8-vadd): one integer multiplier per input and a
single rounding shift of the sum, ties up.
"""

from __future__ import annotations

import numpy as np

from .quant import multiply_by_quantized_multiplier, shift_right_round_half_up


def add(inputs: list[np.ndarray], p, output_shape) -> np.ndarray:
    a, b = inputs if p.input2_constant is None else (inputs[0], p.input2_constant)
    if p.rounding == "xnnpack":
        total = ((a.astype(np.int64) - p.input1_zero_point) * p.input1_multiplier
                 + (b.astype(np.int64) - p.input2_zero_point) * p.input2_multiplier)
        out = shift_right_round_half_up(total, -p.output_shift) + p.output_zero_point
        return np.clip(out, p.activation_min, p.activation_max).astype(np.int8)
    shift = 1 << p.left_shift
    a_scaled = multiply_by_quantized_multiplier((a.astype(np.int64) - p.input1_zero_point) * shift,
                                                p.input1_multiplier, p.input1_shift, p.rounding)
    b_scaled = multiply_by_quantized_multiplier((b.astype(np.int64) - p.input2_zero_point) * shift,
                                                p.input2_multiplier, p.input2_shift, p.rounding)
    out = multiply_by_quantized_multiplier(a_scaled + b_scaled, p.output_multiplier,
                                           p.output_shift, p.rounding) + p.output_zero_point
    return np.clip(out, p.activation_min, p.activation_max).astype(np.int8)
