"""Write tests/models/mcu/*.tflite: depthwise layers the Cortex-M kernels specialise
(firmware_export/runtime/ec_mcu_s8.c), with depth multipliers > 1 and channel counts
that are not multiples of 4. No TensorFlow needed: tests/modelbuilder.py writes the
flatbuffer; the oracles (tests/test_models_oracles.py) judge the files like any other.

dw_multipliers: input [1,10,11,3] (odd sizes: SAME padding is asymmetric at stride 2)
    DW 3x3 SAME, 3 channels, multiplier 1                    (fewer than 4 channels)
    DW 3x3 SAME stride 2, multiplier 2 (3 -> 6), RELU6
    DW 3x3 SAME, 6 channels, multiplier 1                    (not a multiple of 4)
    DW 5x5 SAME dilation 2, multiplier 3 (6 -> 18)          (odd multiplier, 25 taps)
    DW 3x3 VALID, multiplier 8 (18 -> 144), RELU
dw_multiplier8_48x48: input [1,48,48,8], DW 3x3 SAME, multiplier 8 (8 -> 64), RELU6:
    a MobileNet-style layer at a realistic size, for benchmarks/bench_mcu.py.
dw_channels_48x48: input [1,48,48,3], DW 3x3 SAME (3 channels), DW 3x3 SAME stride 2,
    multiplier 2 (3 -> 6), DW 3x3 SAME (6 channels), RELU: channel counts that are not
    multiples of 4 at a realistic size, for benchmarks/bench_mcu.py.
dw_dilated: input [1,12,13,4], DW 3x3 SAME dilation 2, multiplier 2 (4 -> 8), DW 5x5 SAME
    stride 2, multiplier 3 (8 -> 24): pixels whose (dilated, larger) windows lie inside.
fc_rows3: input [3,68] -> FC 68 -> 6 -> FC 6 -> 8 -> FC 8 -> 3, RELU: three rows (two at a
    time, then one: four outputs at a time, then one), input counts that are not multiples
    of 4, and at most 3 outputs (weights stored sign-extended).

Weights from numpy's default_rng(SEED), per-channel scales; each output scale is chosen
from the expected spread of the accumulators so that outputs cover the int8 range.
Run from the repository root:
    python tests/generators/make_mcu_models.py
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from modelbuilder import ModelBuilder, write_models  # noqa: E402

SEED = 20261130
OUT = os.path.join(ROOT, "tests", "models", "mcu")


def out_hw(size, kernel, stride, dilation, padding):
    span = (kernel - 1) * dilation + 1
    return -(-size // stride) if padding == "SAME" else (size - span) // stride + 1


def depthwise(mb, rng, x, x_shape, x_q, *, kernel, mult, stride=1, dilation=1,
              padding="SAME", activation="NONE"):
    """Append a DEPTHWISE_CONV_2D; returns (output tensor, its shape, its quantization)."""
    _, h, w, c = x_shape
    cout = c * mult
    weights = rng.integers(-127, 128, (1, kernel, kernel, cout))
    w_scales = rng.uniform(0.008, 0.02, cout)
    bias = rng.integers(-3000, 3000, cout)
    # accumulator spread: inputs ~60 apart from the zero point, weights ~73 (uniform int8)
    spread = 60 * 73 * math.sqrt(kernel * kernel) * x_q["scale"] * float(w_scales.mean())
    if activation in ("RELU", "RELU6"):   # (RELU6 then clamps at 6.0 below int8's top)
        y_q = dict(scale=2 * spread / 255, zero_point=-128)
    else:
        y_q = dict(scale=spread / 40, zero_point=int(rng.integers(-20, 21)))
    wt = mb.tensor(weights.shape, data=weights, scales=tuple(float(s) for s in w_scales),
                   zero_points=(0,) * cout, quantized_dimension=3)
    bt = mb.tensor((cout,), "int32", data=bias,
                   scales=tuple(x_q["scale"] * float(s) for s in w_scales),
                   zero_points=(0,) * cout)
    shape = (1, out_hw(h, kernel, stride, dilation, padding),
             out_hw(w, kernel, stride, dilation, padding), cout)
    y = mb.tensor(shape, **y_q)
    mb.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], padding=padding, stride=(stride, stride),
          dilation=(dilation, dilation), depth_multiplier=mult, activation=activation)
    return y, shape, y_q


def fully_connected(mb, rng, x, x_shape, x_q, out_f, activation="NONE"):
    rows, in_f = x_shape
    weights = rng.integers(-127, 128, (out_f, in_f))
    w_scale = float(rng.uniform(0.005, 0.01))
    spread = 60 * 73 * math.sqrt(in_f) * x_q["scale"] * w_scale
    y_q = (dict(scale=2 * spread / 255, zero_point=-128) if activation == "RELU"
           else dict(scale=spread / 40, zero_point=int(rng.integers(-20, 21))))
    wt = mb.tensor((out_f, in_f), data=weights, scale=w_scale)
    bt = mb.tensor((out_f,), "int32", data=rng.integers(-3000, 3000, out_f),
                   scale=x_q["scale"] * w_scale)
    y = mb.tensor((rows, out_f), **y_q)
    mb.op("FULLY_CONNECTED", [x, wt, bt], [y], activation=activation)
    return y, (rows, out_f), y_q


def chain(seed, shape, q, layers) -> bytes:
    """A model whose layers, (depthwise or fully_connected, options), follow each other."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    first = x = mb.tensor(shape, name="input", **q)
    for layer, options in layers:
        x, shape, q = layer(mb, rng, x, shape, q, **options)
    mb.inputs, mb.outputs = [first], [x]
    return mb.build()


DW, FC = depthwise, fully_connected
MODELS = {
    "dw_multipliers": lambda: chain(SEED, (1, 10, 11, 3), dict(scale=0.02, zero_point=-7), [
        (DW, dict(kernel=3, mult=1)), (DW, dict(kernel=3, mult=2, stride=2, activation="RELU6")),
        (DW, dict(kernel=3, mult=1)), (DW, dict(kernel=5, mult=3, dilation=2)),
        (DW, dict(kernel=3, mult=8, padding="VALID", activation="RELU"))]),
    # the input as after a ReLU6
    "dw_multiplier8_48x48": lambda: chain(SEED + 1, (1, 48, 48, 8),
                                          dict(scale=0.03, zero_point=-128),
                                          [(DW, dict(kernel=3, mult=8, activation="RELU6"))]),
    "dw_channels_48x48": lambda: chain(SEED + 2, (1, 48, 48, 3), dict(scale=0.02, zero_point=-7), [
        (DW, dict(kernel=3, mult=1)), (DW, dict(kernel=3, mult=2, stride=2)),
        (DW, dict(kernel=3, mult=1, activation="RELU"))]),
    # windows inside the image with dilation 2 (3x3) and with 25 taps (5x5)
    "dw_dilated": lambda: chain(SEED + 3, (1, 12, 13, 4), dict(scale=0.02, zero_point=5), [
        (DW, dict(kernel=3, mult=2, dilation=2)), (DW, dict(kernel=5, mult=3, stride=2))]),
    "fc_rows3": lambda: chain(SEED + 4, (3, 68), dict(scale=0.02, zero_point=3), [
        (FC, dict(out_f=6)), (FC, dict(out_f=8)), (FC, dict(out_f=3, activation="RELU"))]),
}


def main() -> None:
    write_models(OUT, "tests/generators/make_mcu_models.py", SEED,
                 {name: make() for name, make in MODELS.items()})


if __name__ == "__main__":
    main()
