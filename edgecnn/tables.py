"""Lookup tables computed from the reference kernels, shared by the Cython core
and the firmware exporter (exact by construction: the reference computes them).
"""

from __future__ import annotations

import numpy as np

from .ir import QNode
from .reference import activations, quant
from .reference import fixedpoint as fp


def elementwise_table(node: QNode, input_dtype: str) -> tuple[np.ndarray, int]:
    """(256 output bytes, index flip) of an elementwise int8/uint8 op.

    Row r of the table is the op's output for the input byte r ^ flip: flip is
    0x80 for int8 inputs (so -128..127 map to rows 0..255), 0 for uint8.
    """
    from .executor import REFERENCE_KERNELS
    if input_dtype == "int8":
        domain, flip = np.arange(-128, 128).astype(np.int8), 0x80
    else:
        domain, flip = np.arange(256).astype(np.uint8), 0
    values = REFERENCE_KERNELS[node.op]([domain], node.params, domain.shape)
    return np.ascontiguousarray(values).view(np.uint8), flip


def softmax_exp_tables(params) -> tuple[np.ndarray, np.ndarray]:
    """exp(-d * beta * scale) for d = 0..255 below the row max: (Q0.31, Q12.19) int32."""
    diffs = -np.arange(256, dtype=np.int64)
    scaled = quant.multiply_by_quantized_multiplier(diffs, params.input_multiplier,
                                                    params.input_left_shift)
    exp_q0 = fp.exp_on_negative_values(scaled, activations.SOFTMAX_DIFF_INTEGER_BITS)
    exp_acc = fp.rescale(exp_q0, 0, activations.SOFTMAX_ACCUMULATION_INTEGER_BITS)
    return exp_q0.astype(np.int32), exp_acc.astype(np.int32)
