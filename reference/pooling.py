"""MAX_POOL_2D and AVERAGE_POOL_2D, int8 (reference/integer_ops/pooling.h).

Input and output share scale and zero point, so there is no rescale: the max
is taken, or the raw int8 values are summed and divided, over the taps that
fall inside the image only (padding is not counted in the average).
"""

from __future__ import annotations

import numpy as np

from .quant import rounded_average


def _windows(x: np.ndarray, p, output_shape, fill):
    """Yield (values, inside) for each filter tap: [N, OH, OW, C] views and in-image masks."""
    n, h, w, c = x.shape
    out_h, out_w = output_shape[1:3]
    fh, fw = p.filter_size
    sh, sw = p.stride
    top, left = p.padding
    need_h = (out_h - 1) * sh + fh
    need_w = (out_w - 1) * sw + fw
    pads = ((0, 0), (top, max(need_h - h - top, 0)), (left, max(need_w - w - left, 0)), (0, 0))
    padded = np.pad(x.astype(np.int64), pads, constant_values=fill)
    inside = np.pad(np.ones((1, h, w, 1), dtype=bool), pads, constant_values=False)
    for ky in range(fh):
        for kx in range(fw):
            rows = slice(ky, ky + (out_h - 1) * sh + 1, sh)
            cols = slice(kx, kx + (out_w - 1) * sw + 1, sw)
            yield padded[:, rows, cols, :], inside[:, rows, cols, :]


def max_pool2d(x: np.ndarray, p, output_shape) -> np.ndarray:
    result = None
    for values, _ in _windows(x, p, output_shape, fill=np.iinfo(np.int64).min):
        result = values if result is None else np.maximum(result, values)
    return np.clip(result, p.activation_min, p.activation_max).astype(x.dtype)


def average_pool2d(x: np.ndarray, p, output_shape) -> np.ndarray:
    total = 0
    count = 0
    for values, inside in _windows(x, p, output_shape, fill=0):
        total = total + values
        count = count + inside.astype(np.int64)
    average = rounded_average(total, count)
    return np.clip(average, p.activation_min, p.activation_max).astype(x.dtype)
