"""The TFLite oracles and the bit-exact comparison helpers used by the tests.

Oracles (test-only dependencies, never imported by the library):
  tflm        tflite-micro's Python interpreter (reference kernels, double rounding)
  litert-ref  ai-edge-litert with OpResolverType.BUILTIN_REF (reference kernels)
  xnnpack     ai-edge-litert with its default resolver (XNNPACK delegate)
"""

from __future__ import annotations

import contextlib
import glob
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIRS = [os.path.join(ROOT, "tests", "models"), os.path.join(ROOT, "examples")]


# Float models, the quantizer's inputs (tests/test_quantize.py): not int8 models to run.
FLOAT_MODEL_DIR = os.path.join(ROOT, "tests", "models", "float")


def all_models() -> list[str]:
    """Every committed int8 .tflite model, relative to the repository root, sorted."""
    found = []
    for top in MODEL_DIRS:
        found += glob.glob(os.path.join(top, "**", "*.tflite"), recursive=True)
    return sorted(os.path.relpath(p, ROOT) for p in found
                  if not p.startswith(FLOAT_MODEL_DIR + os.sep))


def read(path: str) -> bytes:
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def random_input(info, rng: np.random.Generator) -> np.ndarray:
    """A random input covering the dtype's whole range, both ends included."""
    dtype = np.dtype(info.dtype)
    if dtype.kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        x = rng.integers(lo, hi + 1, size=info.shape, dtype=np.int64)  # high is exclusive: +1
        flat = x.reshape(-1)
        if flat.size >= 2:  # make sure both extremes are always present
            flat[0], flat[-1] = lo, hi
        return x.astype(dtype)
    # float input: the real range the quantized input can represent, plus a margin
    # that exercises saturation in QUANTIZE.
    scale = info.scale or 1.0 / 128
    lo = scale * (-128 - info.zero_point) * 1.1
    hi = scale * (127 - info.zero_point) * 1.1
    return rng.uniform(lo, hi, size=info.shape).astype(dtype)


# -- oracles ------------------------------------------------------------------------

TFLM_MISSING = ("tflite-micro is not installed: it publishes x86-64 wheels only (the `test` "
                "extra skips it elsewhere), so the tflm oracle is unavailable on this machine")


def have_tflm() -> bool:
    import importlib.util
    return importlib.util.find_spec("tflite_micro") is not None


def run_tflm(model_bytes: bytes, inputs: list[np.ndarray], all_tensors=False):
    if not have_tflm():
        import pytest
        pytest.skip(TFLM_MISSING)
    from tflite_micro.python.tflite_micro import runtime
    config = (runtime.InterpreterConfig.kPreserveAllTensors if all_tensors
              else runtime.InterpreterConfig.kAllocationRecording)
    # The wheel's default arena is small; batched sweep models need room for every tensor.
    arena = max(sum(x.nbytes for x in inputs), 1 << 20) * 32
    interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena,
                                            intrepreter_config=config)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    if all_tensors:
        # GetTensor returns {'dtype', 'shape', 'tensor_data'}
        return lambda index: np.array(interp.GetTensor(index, 0)["tensor_data"], copy=True)
    return [np.array(interp.get_output(i), copy=True) for i in range(_count_outputs(model_bytes))]


def _count_outputs(model_bytes: bytes) -> int:
    """Number of subgraph outputs, read with the flatbuffer schema package (not edgecnn)."""
    import tflite
    return tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0).OutputsLength()


LITERT_MISSING = ("ai-edge-litert is not installed: it publishes x86-64 and aarch64 wheels only "
                  "(none for 32-bit ARM), so the LiteRT oracles are unavailable on this machine")


def require_litert() -> None:
    """Skip the calling test, saying why, where LiteRT cannot be installed."""
    import importlib.util
    if importlib.util.find_spec("ai_edge_litert") is None:
        import pytest
        pytest.skip(LITERT_MISSING)


def _litert(model_bytes: bytes, resolver: str, all_tensors: bool, num_threads=1):
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = {"litert-ref": OpResolverType.BUILTIN_REF,
            "xnnpack": OpResolverType.AUTO}[resolver]
    interp = Interpreter(model_content=model_bytes, experimental_op_resolver_type=kind,
                         experimental_preserve_all_tensors=all_tensors, num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def run_litert(model_bytes: bytes, inputs: list[np.ndarray], resolver="litert-ref",
               all_tensors=False):
    interp = _litert(model_bytes, resolver, all_tensors)
    for detail, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], x)
    interp.invoke()
    if all_tensors:
        return lambda index: np.array(interp.get_tensor(index), copy=True)
    return [np.array(interp.get_tensor(d["index"]), copy=True)
            for d in interp.get_output_details()]


def run_oracle(oracle: str, model_bytes: bytes, inputs, all_tensors=False):
    if oracle == "tflm":
        return run_tflm(model_bytes, inputs, all_tensors)
    return run_litert(model_bytes, inputs, oracle, all_tensors)


# -- comparison -----------------------------------------------------------------------

def mismatch_report(got: np.ndarray, want: np.ndarray) -> str:
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}"
    diff = got != want
    if want.dtype.kind == "f":
        diff = ~((got == want) | (np.isnan(got) & np.isnan(want)))
    count = int(diff.sum())
    first = tuple(int(i) for i in np.argwhere(diff)[0])
    return (f"{count} of {want.size} values differ; first at index {first}: "
            f"got {got[first]}, want {want[first]}")


def assert_bitexact(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Equal shape, dtype and every value (float: same values, NaN where NaN)."""
    __tracebackhide__ = True
    got = np.asarray(got)
    want = np.asarray(want)
    same = got.shape == want.shape and got.dtype == want.dtype and (
        np.array_equal(got, want, equal_nan=want.dtype.kind == "f"))
    if not same:
        raise AssertionError(f"{what}: {mismatch_report(got, want)}")


def first_differing_layer(model, model_bytes: bytes, inputs, oracle: str) -> str:
    """Name the first lowered layer whose output differs from the oracle's tensor."""
    ours = model.run_layers(inputs)
    theirs = run_oracle(oracle, model_bytes, inputs, all_tensors=True)
    for node in model.qgraph.nodes:
        index = node.outputs[0]
        try:
            want = theirs(index)
        except Exception:  # the oracle may not keep this tensor
            continue
        got = ours[index]
        if got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want):
            continue
        name = model.qgraph.tensors[index].name
        return (f"first differing layer: {node.describe()} writing tensor {index} '{name}': "
                f"{mismatch_report(got, want)}")
    return "no single layer differs (outputs differ only at the end?)"


# -- the core's instruction sets --------------------------------------------------------

def runnable_isas() -> list[str]:
    """The core's instruction-set levels this CPU runs (every comparison runs under each)."""
    try:
        from edgecnn import _core
    except ImportError:
        return ["baseline"]
    return _core.supported_isas()


@contextlib.contextmanager
def instruction_set(name: str):
    """Compile (and run) models with the kernels of this instruction set."""
    from edgecnn import _core
    before = _core.isa()
    _core.set_isa(name)
    try:
        yield
    finally:
        _core.set_isa(before)
