"""Ops that only move int8 values: PAD, RESHAPE, CONCATENATION (equal scales),
SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND. Input and output share scale and zero
point, so no arithmetic happens; padding writes the zero point (real 0.0).
"""

from __future__ import annotations

import numpy as np


def pad(x: np.ndarray, p, output_shape) -> np.ndarray:
    return np.pad(x, p.paddings, constant_values=p.pad_value)


def reshape(x: np.ndarray, p, output_shape) -> np.ndarray:
    return x.reshape(p.output_shape)


def concatenation(inputs: list[np.ndarray], p, output_shape) -> np.ndarray:
    return np.concatenate(inputs, axis=p.axis)


def space_to_batch_nd(x: np.ndarray, p, output_shape) -> np.ndarray:
    """[N, H, W, C] -> [N*bh*bw, H'/bh, W'/bw, C], batch index = (dy*bw + dx)*N + n."""
    bh, bw = p.block_shape
    padded = np.pad(x, ((0, 0),) + tuple(p.paddings) + ((0, 0),), constant_values=p.pad_value)
    n, h, w, c = padded.shape
    blocks = padded.reshape(n, h // bh, bh, w // bw, bw, c)
    return blocks.transpose(2, 4, 0, 1, 3, 5).reshape(bh * bw * n, h // bh, w // bw, c)


def batch_to_space_nd(x: np.ndarray, p, output_shape) -> np.ndarray:
    """The inverse of space_to_batch_nd, then crop."""
    bh, bw = p.block_shape
    nb, h, w, c = x.shape
    n = nb // (bh * bw)
    blocks = x.reshape(bh, bw, n, h, w, c).transpose(2, 3, 0, 4, 1, 5).reshape(n, h * bh, w * bw, c)
    (top, bottom), (left, right) = p.crops
    return blocks[:, top:h * bh - bottom, left:w * bw - right, :]
