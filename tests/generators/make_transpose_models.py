"""Write tests/models/pytorch/*.tflite: small CNNs laid out as PyTorch's converters
emit them (no TensorFlow needed: tests/modelbuilder.py writes the flatbuffer).

A model converted from PyTorch takes an NCHW input and starts with a TRANSPOSE to
TFLite's NHWC; before a flatten it transposes back to NCHW, so the FULLY_CONNECTED
sees PyTorch's feature order. nchw_conv_fc:
    input [1,3,8,8] NCHW -> TRANSPOSE(0,2,3,1) -> CONV_2D 3x3 SAME 3->8 RELU
    -> MAX_POOL_2D 2x2 -> TRANSPOSE(0,3,1,2) -> RESHAPE [1,128] -> FULLY_CONNECTED 10
nchw_conv_fc_io_float: the same between a float32 input (TRANSPOSE on floats, then
QUANTIZE) and a DEQUANTIZE to a float32 output.

Weights from numpy's default_rng(SEED); scales chosen by hand so that activations
spread over the int8 range. Run from the repository root:
    python tests/generators/make_transpose_models.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from modelbuilder import ModelBuilder, write_models  # noqa: E402

SEED = 2026
OUT = os.path.join(ROOT, "tests", "models", "pytorch")


def nchw_conv_fc(float_io: bool) -> bytes:
    rng = np.random.default_rng(SEED)
    mb = ModelBuilder()
    x_q = dict(scale=0.02, zero_point=-3)
    h_q = dict(scale=0.03, zero_point=-128)      # after RELU: only the non-negative half
    y_q = dict(scale=0.1, zero_point=5)

    def perm(p):
        return mb.tensor((len(p),), "int32", data=np.array(p, np.int32))

    if float_io:
        xf = mb.tensor((1, 3, 8, 8), "float32", name="input_nchw")
        xt = mb.tensor((1, 8, 8, 3), "float32", name="input_nhwc")
        mb.op("TRANSPOSE", [xf, perm((0, 2, 3, 1))], [xt])
        x = mb.tensor((1, 8, 8, 3), name="input_q", **x_q)
        mb.op("QUANTIZE", [xt], [x])
        first = xf
    else:
        first = mb.tensor((1, 3, 8, 8), name="input_nchw", **x_q)
        x = mb.tensor((1, 8, 8, 3), name="input_nhwc", **x_q)
        mb.op("TRANSPOSE", [first, perm((0, 2, 3, 1))], [x])
    w_scales = tuple(float(s) for s in rng.uniform(0.004, 0.006, 8))
    w = mb.tensor((8, 3, 3, 3), data=rng.integers(-127, 128, (8, 3, 3, 3)), scales=w_scales,
                  zero_points=(0,) * 8)
    b = mb.tensor((8,), "int32", data=rng.integers(-2000, 2000, 8),
                  scales=tuple(0.02 * s for s in w_scales), zero_points=(0,) * 8)
    c = mb.tensor((1, 8, 8, 8), name="conv", **h_q)
    mb.op("CONV_2D", [x, w, b], [c], padding="SAME", activation="RELU")
    p = mb.tensor((1, 4, 4, 8), name="pool", **h_q)
    mb.op("MAX_POOL_2D", [c], [p], filter=(2, 2), stride=(2, 2))
    t = mb.tensor((1, 8, 4, 4), name="pool_nchw", **h_q)
    mb.op("TRANSPOSE", [p, perm((0, 3, 1, 2))], [t])
    f = mb.tensor((1, 128), name="flatten", **h_q)
    mb.op("RESHAPE", [t, mb.tensor((2,), "int32", data=np.array([1, 128], np.int32))], [f])
    fw = mb.tensor((10, 128), data=rng.integers(-127, 128, (10, 128)), scale=0.004)
    fb = mb.tensor((10,), "int32", data=rng.integers(-500, 500, 10), scale=0.03 * 0.004)
    y = mb.tensor((1, 10), name="logits", **y_q)
    mb.op("FULLY_CONNECTED", [f, fw, fb], [y])
    last = y
    if float_io:
        last = mb.tensor((1, 10), "float32", name="logits_float")
        mb.op("DEQUANTIZE", [y], [last])
    mb.inputs, mb.outputs = [first], [last]
    return mb.build()


def main() -> None:
    write_models(OUT, "tests/generators/make_transpose_models.py", SEED,
                 {name: nchw_conv_fc(float_io) for name, float_io in
                  (("nchw_conv_fc", False), ("nchw_conv_fc_io_float", True))})


if __name__ == "__main__":
    main()
