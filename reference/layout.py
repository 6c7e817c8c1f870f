"""Ops that only move values: PAD, RESHAPE, CONCATENATION (equal scales),
SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND and TRANSPOSE. Input and output share scale
and zero point, so no arithmetic happens; padding writes the zero point (real 0.0).
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


def transpose(x: np.ndarray, p, output_shape) -> np.ndarray:
    """reference_ops::Transpose: output dimension k is input dimension perm[k]
    (any dtype: only whole elements move)."""
    return np.transpose(x, p.perm)


def collapse_transpose(shape, perm) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The smallest transpose that moves the same bytes as transposing `shape` by `perm`.

    Dimensions of size 1 carry no data and are dropped; input dimensions that stay
    next to each other, in the same order, move as one (their sizes multiplied).
    Returns (collapsed input shape, collapsed perm); a perm of (0, 1, ...) (or
    rank 0) means the transpose is a pure reshape. (The kernels of the core and of
    the C runtime walk this form; the reference above does not use it.)
    """
    kept = [d for d in perm if shape[d] != 1]                 # output order, size-1 gone
    groups: list[list[int]] = []                               # runs of input dims, output order
    for d in kept:
        if groups and _follows(groups[-1][-1], d, shape):
            groups[-1].append(d)
        else:
            groups.append([d])
    by_input = sorted(range(len(groups)), key=lambda g: groups[g][0])
    new_index = {g: k for k, g in enumerate(by_input)}
    collapsed_shape = tuple(int(np.prod([shape[d] for d in groups[g]])) for g in by_input)
    return collapsed_shape, tuple(new_index[g] for g in range(len(groups)))


def _follows(previous: int, d: int, shape) -> bool:
    """Input dim d comes right after `previous` once the size-1 dims between them are gone."""
    return d > previous and all(shape[k] == 1 for k in range(previous + 1, d))


def transpose_walk(shape, perm) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """What a kernel walking the output in order needs: (output shape, and for each
    output dimension the input's stride along it, in elements), both collapsed."""
    collapsed, order = collapse_transpose(shape, perm)
    strides = [int(np.prod(collapsed[k + 1:], dtype=np.int64)) for k in range(len(collapsed))]
    if not order:                  # one element (or none): a one-element copy
        return (int(np.prod(shape, dtype=np.int64)),), (1,)
    return tuple(collapsed[d] for d in order), tuple(strides[d] for d in order)
