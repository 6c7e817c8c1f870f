"""The quantizer's choices: which real range each tensor gets, and its scale and zero point.

The one home of the quantizer's float -> int8 decisions (the runtime's fixed-point math is
reference/quant.py). Per the TFLite int8 specification:
  activations  int8 [-128, 127], asymmetric: real = scale * (q - zero_point), the range
               always containing 0 so that zero (padding, ReLU) is exact;
  weights      int8 [-127, 127], symmetric (zero point 0), per output channel or per tensor;
  biases       int32, scale = input_scale * weight_scale, zero point 0.
"""

from __future__ import annotations

import numpy as np

from ..reference.quant import INT32_MAX

METHODS = ("minmax", "percentile", "mse")
QMIN, QMAX = -128, 127
PERCENTILE = 99.99          # the "percentile" method keeps this share of each tail's values
MSE_CANDIDATES = 64         # clipping ratios the "mse" method tries, from 1 down to 1/4
SAMPLE_LIMIT = 1 << 18      # values kept per tensor for percentile / mse


class RangeObserver:
    """Running min/max of a tensor over the calibration batches, plus an evenly spread
    sample of its values (enough for a percentile or an error curve)."""

    def __init__(self):
        self.low = np.inf
        self.high = -np.inf
        self.kept: list[np.ndarray] = []
        self.count = 0

    def observe(self, values: np.ndarray) -> None:
        flat = values.reshape(-1)
        if flat.size == 0:
            return
        self.low = min(self.low, float(flat.min()))
        self.high = max(self.high, float(flat.max()))
        step = max(1, flat.size // (SAMPLE_LIMIT // 8))
        self.kept.append(flat[::step].astype(np.float32))
        self.count += 1
        if sum(k.size for k in self.kept) > 2 * SAMPLE_LIMIT:   # thin out, keep it bounded
            self.kept = [np.concatenate(self.kept)[::2]]

    def values(self) -> np.ndarray:
        return np.concatenate(self.kept) if self.kept else np.zeros(1, np.float32)


def choose_range(observer: RangeObserver, method: str) -> tuple[float, float]:
    """The real [low, high] to represent, always containing 0."""
    low, high = observer.low, observer.high
    if not np.isfinite(low) or not np.isfinite(high):
        low, high = 0.0, 0.0
    if method == "percentile":
        values = observer.values()
        low = max(low, float(np.percentile(values, 100 - PERCENTILE)))
        high = min(high, float(np.percentile(values, PERCENTILE)))
    elif method == "mse":
        low, high = _least_squares_range(observer.values(), min(low, 0.0), max(high, 0.0))
    elif method != "minmax":
        raise ValueError(f"unknown calibration method {method!r}; choose one of {METHODS}")
    return min(low, 0.0), max(high, 0.0)


def _least_squares_range(values, low, high):
    """The clipped range [r*low, r*high] whose int8 round trip has the least squared error."""
    best, best_error = (low, high), np.inf
    for ratio in np.linspace(1.0, 0.25, MSE_CANDIDATES):
        scale, zero_point = activation_qparams(low * ratio, high * ratio)
        error = float(np.mean((fake_quantize(values, scale, zero_point) - values) ** 2))
        if error < best_error:
            best, best_error = (low * ratio, high * ratio), error
    return best


def activation_qparams(low: float, high: float) -> tuple[float, int]:
    """(scale, zero_point) of an int8 activation covering [low, high] (low <= 0 <= high):
    the scale as float32 (how the file stores it), the zero point rounded into [-128, 127]."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0.0:
        return float(np.float32(1.0 / 255)), QMIN  # a constant-zero tensor: any scale is exact
    scale = float(np.float32((high - low) / (QMAX - QMIN)))
    zero_point = int(np.clip(np.round(QMIN - low / scale), QMIN, QMAX))
    return scale, zero_point


def fake_quantize(values, scale: float, zero_point: int) -> np.ndarray:
    q = np.clip(np.round(values / scale) + zero_point, QMIN, QMAX)
    return ((q - zero_point) * scale).astype(np.float32)


def quantize_weights(weights: np.ndarray, axis: int | None, bias=None, input_scale=None):
    """Symmetric int8 weights in [-127, 127]: one scale per slice along `axis` (None: one
    for the whole tensor). A channel's scale is raised where its float bias would not fit
    the int32 bias at input_scale x weight_scale. Returns (int8 weights, float32 scales)."""
    w = np.asarray(weights, np.float64)
    if axis is None:
        peak = np.array([np.abs(w).max(initial=0.0)])
    else:
        peak = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1, initial=0.0)
    scales = peak / 127.0
    if bias is not None:
        need = np.abs(np.asarray(bias, np.float64)) / (float(input_scale) * (INT32_MAX // 2))
        scales = np.maximum(scales, need.max() if axis is None else need)
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)   # all-zero channel
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), scales


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: np.ndarray):
    """int32 bias at scale input_scale x weight_scale (the product in float32, as the
    converter stores it). Returns (int32 bias, float32 bias scales)."""
    scales = (np.float32(input_scale) * np.asarray(weight_scales, np.float32)).astype(np.float32)
    q = np.round(np.asarray(bias, np.float64) / scales.astype(np.float64))
    return np.clip(q, -INT32_MAX, INT32_MAX).astype(np.int32), scales


def sqnr_from_sums(signal: float, noise: float) -> float:
    """Signal-to-quantization-noise ratio in dB from the summed squares of the float values
    and of their errors (inf when exact)."""
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))
