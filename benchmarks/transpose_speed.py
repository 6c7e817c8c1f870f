"""TRANSPOSE speed: the core's kernel against numpy's transposed copy and LiteRT, in the
same run (medians of short runs; ratios are what to read, not the times).

    python benchmarks/transpose_speed.py

For each case: a one-TRANSPOSE model whose input comes from another op (so the core
runs it as an op: `Program.time_ops`), numpy's `np.copyto(out, x.transpose(perm))`,
LiteRT's invoke() (default resolver and BUILTIN_REF). Then the folding: a model whose
first op is the NCHW -> NHWC TRANSPOSE of its input, Model.run with the transpose
folded into the input copy against the same model fed NHWC without it. Outputs are
compared before anything is timed.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import edgecnn  # noqa: E402
from edgecnn import core_backend  # noqa: E402
from modelbuilder import ModelBuilder  # noqa: E402

CASES = [((1, 3, 224, 224), (0, 2, 3, 1), "int8"),    # PyTorch input, NCHW -> NHWC
         ((1, 3, 224, 224), (0, 2, 3, 1), "float32"),
         ((1, 56, 56, 64), (0, 3, 1, 2), "int8"),      # NHWC -> NCHW before a flatten
         ((1, 64, 56, 56), (0, 2, 3, 1), "int8"),
         ((8, 16, 32, 32), (3, 1, 0, 2), "int8")]
Q = dict(scale=0.05, zero_point=3)


def median_us(fn, repeats=60):
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2] * 1e6


def one_transpose(shape, perm, dtype, behind_an_op: bool) -> bytes:
    mb = ModelBuilder()
    q = Q if dtype == "int8" else {}
    x = mb.tensor(shape, dtype, **q)
    source = x
    if behind_an_op:   # a RESHAPE of the input (a copy): the TRANSPOSE is not folded
        source = mb.tensor(shape, dtype, **q)
        mb.op("RESHAPE", [x, mb.tensor((len(shape),), "int32", data=np.array(shape, np.int32))],
              [source])
    p = mb.tensor((len(perm),), "int32", data=np.array(perm, np.int32))
    y = mb.tensor(tuple(shape[d] for d in perm), dtype, **q)
    mb.op("TRANSPOSE", [source, p], [y])
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


def litert_us(data, x, resolver):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = {"default": OpResolverType.AUTO, "ref": OpResolverType.BUILTIN_REF}[resolver]
    interp = Interpreter(model_content=data, experimental_op_resolver_type=kind, num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    return median_us(interp.invoke), interp.get_tensor(interp.get_output_details()[0]["index"])


def main() -> None:
    print(f"{'case':<34} {'core op':>9} {'numpy':>9} {'LiteRT':>9} {'LiteRT ref':>10}   "
          "numpy/core LiteRT/core ref/core")
    for shape, perm, dtype in CASES:
        data = one_transpose(shape, perm, dtype, behind_an_op=True)
        model = edgecnn.load(data)
        rng = np.random.default_rng(0)
        x = rng.integers(-128, 128, shape).astype(dtype)
        want = np.ascontiguousarray(x.transpose(perm))
        assert np.array_equal(model.run(x), want)
        compiled = core_backend.CompiledModel(model.qgraph)
        compiled.run([x])
        core = compiled.program.time_ops(60)[-1] * 1e6   # the TRANSPOSE op alone
        out = np.empty_like(want)
        numpy = median_us(lambda: np.copyto(out, x.transpose(perm)))
        lite, got = litert_us(data, x, "default")
        ref, got_ref = litert_us(data, x, "ref")
        assert np.array_equal(got, want) and np.array_equal(got_ref, want)
        name = f"{dtype}{list(shape)} perm {perm}"
        print(f"{name:<34} {core:>8.1f}u {numpy:>8.1f}u {lite:>8.1f}u {ref:>9.1f}u   "
              f"{numpy / core:>10.2f} {lite / core:>11.2f} {ref / core:>8.2f}")
    print()
    shape, perm = (1, 3, 224, 224), (0, 2, 3, 1)
    folded = edgecnn.load(one_transpose(shape, perm, "int8", behind_an_op=False))
    x = np.random.default_rng(1).integers(-128, 128, shape).astype(np.int8)
    nhwc = np.ascontiguousarray(x.transpose(perm))
    plain = edgecnn.load(one_transpose(nhwc.shape, (0, 1, 2, 3), "int8", behind_an_op=False))
    assert np.array_equal(folded.run(x), plain.run(nhwc))
    t_folded = median_us(lambda: folded.run(x))
    t_plain = median_us(lambda: plain.run(nhwc))
    print(f"Model.run, int8 {list(shape)} NCHW input, TRANSPOSE folded into the input copy: "
          f"{t_folded:.1f} us; the same data already NHWC (a plain copy): {t_plain:.1f} us "
          f"(ratio {t_folded / t_plain:.2f})")


if __name__ == "__main__":
    main()
