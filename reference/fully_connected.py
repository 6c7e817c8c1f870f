"""FULLY_CONNECTED, int8 (reference/integer_ops/fully_connected.h).

acc[b, o] = bias[o] + sum_i w[o, i] * (x[b, i] - input_zero_point), then the
same requantize / zero point / clamp as conv2d. Which requantization LiteRT's
reference kernel uses (float) and which tflite-micro uses (fixed point) is the
`Requant.rounding` of the params record.
"""

from __future__ import annotations

import numpy as np

from .quant import clamp_to_output, requantize


def fully_connected(x: np.ndarray, p, output_shape) -> np.ndarray:
    in_features = p.weights.shape[1]
    rows = x.reshape(-1, in_features).astype(np.float64) - p.input_zero_point
    # Exact in float64: see conv2d.padded_centered_input.
    acc = (rows @ p.weights.astype(np.float64).T).astype(np.int64) + p.bias.astype(np.int64)
    out = requantize(acc, p.requant)
    out = clamp_to_output(out, p.output_zero_point, p.activation_min, p.activation_max)
    return out.reshape(output_shape)
