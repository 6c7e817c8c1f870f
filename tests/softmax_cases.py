"""The SOFTMAX models of the aarch64 golden data (tests/data/softmax_litert_aarch64.npz).

Shared by the generator (tests/generators/record_softmax_aarch64.py, run under an emulated
aarch64 Python with LiteRT's aarch64 wheel) and by tests/test_softmax_lut.py, so that both
build the same bytes: one int8 SOFTMAX per case, over input scales from 1/512 to 1/2, betas
other than 1, depths from 1 to 1000 and 1 to 4 rows.
"""

from __future__ import annotations

import numpy as np

from modelbuilder import ModelBuilder

SEED = 20261130


def cases() -> list[dict]:
    """(input_scale, input_zero_point, beta, rows, depth) of each case; fixed by SEED."""
    rng = np.random.default_rng(SEED)
    found = [dict(scale=1 / 16, zero_point=0, beta=1.0, rows=1, depth=10),
             dict(scale=1 / 512, zero_point=-128, beta=1.0, rows=1, depth=1),
             dict(scale=0.5, zero_point=3, beta=1.0, rows=2, depth=1000),
             dict(scale=0.1, zero_point=-5, beta=0.25, rows=3, depth=17)]
    for _ in range(36):
        found.append(dict(scale=float(np.float32(np.exp(rng.uniform(np.log(1 / 512),
                                                                     np.log(0.5))))),
                          zero_point=int(rng.integers(-128, 128)),
                          beta=float(np.float32(rng.choice([1.0, 1.0, 1.0, 0.5, 2.0, 0.7]))),
                          rows=int(rng.integers(1, 5)),
                          depth=int(rng.choice([2, 10, 12, 16, 31, 64, 100, 257, 1000]))))
    return found


def model_bytes(case: dict) -> bytes:
    b = ModelBuilder()
    shape = (case["rows"], case["depth"])
    x = b.tensor(shape, "int8", scale=case["scale"], zero_point=case["zero_point"])
    y = b.tensor(shape, "int8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [x], [y], beta=case["beta"])
    b.inputs, b.outputs = [x], [y]
    return b.build()


def inputs(case: dict, index: int, count: int = 4) -> list[np.ndarray]:
    """`count` inputs of a case: the full int8 range, and rows with a few large values
    (as logits are), where rounding differences show."""
    rng = np.random.default_rng(SEED + index)
    shape = (case["rows"], case["depth"])
    found = [rng.integers(-128, 128, size=shape).astype(np.int8)]
    while len(found) < count:
        logits = rng.normal(-40.0, 30.0, size=shape)
        logits[:, rng.integers(0, case["depth"])] += rng.uniform(0, 120)
        found.append(np.clip(np.round(logits), -128, 127).astype(np.int8))
    return found
