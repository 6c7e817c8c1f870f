"""Hostile models and careless callers (issue 10): the minimized reproducers of every
bug the fuzzer (tools/fuzz.py) found at e57e100, each now refused at load with an
EdgecnnError naming the field and the operator, or computed right.

Each model is the smallest one showing the bug, written with tests/modelbuilder.py.
Expected values come from first principles (the quantization spec's arithmetic done
by hand), never from the code under test.
"""

import multiprocessing
import os
import subprocess
import shutil
import sys
import time

import numpy as np
import pytest

import edgecnn
from edgecnn import (AccumulatorRangeError, EdgecnnError, ModelFormatError,
                     ResourceLimitError)
from modelbuilder import ModelBuilder
from oracles import read

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _single_op(op, in_shapes, out_shape, *, in_scale=0.5, in_zp=0, out_scale=0.5, out_zp=0,
               constants=(), **options) -> bytes:
    """One operator over int8 activations (plus constant inputs given as arrays)."""
    mb = ModelBuilder()
    xs = [mb.tensor(s, scale=in_scale, zero_point=in_zp) for s in in_shapes]
    cs = [mb.tensor(c.shape, str(c.dtype), data=c) for c in constants]
    y = mb.tensor(out_shape, scale=out_scale, zero_point=out_zp)
    mb.op(op, xs + cs, [y], **options)
    mb.inputs, mb.outputs = xs, [y]
    return mb.build()


def _loads_or_raises(data, error=EdgecnnError, match=None):
    with pytest.raises(error, match=match):
        edgecnn.load(data)


# -- memory safety --------------------------------------------------------------------

def test_concatenation_inputs_must_agree_outside_the_axis():
    """At e57e100 this loaded and the core's scatter read past the arena."""
    data = _single_op("CONCATENATION", [(1, 2, 2, 3), (1, 4, 2, 3)], (1, 2, 2, 6), axis=3)
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(CONCATENATION\).*outside axis 3")


def test_concatenation_without_inputs():
    mb = ModelBuilder()
    x, y, z = (mb.tensor((1, 2), scale=0.5) for _ in range(3))
    mb.op("RELU", [x], [y])
    mb.op("CONCATENATION", [], [z], axis=1)
    mb.inputs, mb.outputs = [x], [y, z]
    _loads_or_raises(mb.build(), ModelFormatError,
                     r"operator 1 \(CONCATENATION\): has 0 input")


# -- wrong answers on models that loaded ----------------------------------------------

def test_zero_point_outside_its_type():
    data = _single_op("RELU", [(1, 4)], (1, 4), in_zp=300)
    _loads_or_raises(data, ModelFormatError, r"tensor 0 .*zero point 300 is outside .*int8")


def test_real_multiplier_of_2_to_the_31_or_more():
    """Input scale / output scale >= 2^31: shift 32 is an undefined 32-bit shift."""
    data = _single_op("RELU", [(1, 4)], (1, 4), in_scale=1.0, out_scale=2.0**-31)
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(RELU\): shift 32 is outside")


def test_conv_multiplier_of_2_to_the_31_or_more():
    from modelbuilder import conv2d_model
    weights = np.ones((1, 1, 1, 1), np.int8)
    data = conv2d_model((1, 2, 2, 1), weights, np.zeros(1, np.int32), input_scale=1.0,
                        input_zp=0, weight_scales=[1.0], output_scale=2.0**-40, output_zp=0,
                        output_hw=(2, 2))
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(CONV_2D\): requantization shift")


def test_operator_writing_a_graph_input():
    mb = ModelBuilder()
    x = mb.tensor((1, 4), scale=0.5)
    y = mb.tensor((1, 4), scale=0.5)
    mb.op("RELU", [x], [y])
    mb.op("RELU", [y], [x])
    mb.inputs, mb.outputs = [x], [y]
    _loads_or_raises(mb.build(), ModelFormatError, r"operator 1 \(RELU\): writes graph input")


def test_operator_writing_its_own_input():
    mb = ModelBuilder()
    x = mb.tensor((1, 4), scale=0.5)
    y = mb.tensor((1, 4), scale=0.5)
    mb.op("RELU", [x], [y])
    mb.op("RELU", [y], [y])
    mb.inputs, mb.outputs = [x], [y]
    _loads_or_raises(mb.build(), ModelFormatError, r"operator 1 \(RELU\): writes .* also reads")


def test_mean_whose_int32_sum_can_overflow():
    """255 * 2^24 > 2^31 - 1: the sum of (x - zero point) over 2^24 values can overflow."""
    data = _single_op("MEAN", [(1, 4096, 4096, 1)], (1, 1, 1, 1), out_scale=0.25,
                      constants=[np.array([1, 2], np.int32)], keep_dims=True)
    _loads_or_raises(data, AccumulatorRangeError, r"operator 0 \(MEAN\)")


def test_xnnpack_mean_whose_float32_scale_is_not_finite():
    """Found by the fuzzer (seed 2026, mutant 123049: mean_io_uint8.tflite with the MEAN's
    input scale set to 3.4e38): under the xnnpack profile in/out does not fit a float32,
    the scale XNNPACK multiplies the sum by is inf, and the core (127) and the reference
    (-128) disagreed. Refused at load, as the integer profiles refuse its multiplier."""
    data = _single_op("MEAN", [(1, 9, 9, 6)], (1, 6), in_scale=3.4e38, out_scale=0.0017,
                      in_zp=9, constants=[np.array([1, 2], np.int32)], keep_dims=False)
    with pytest.raises(ModelFormatError, match=r"operator 0 \(MEAN\): .*float32"):
        edgecnn.load(data, profile="xnnpack")


@pytest.mark.parametrize("value, want", [(127, 127), (-128, -128)])
def test_xnnpack_mean_whose_float32_product_overflows_saturates(value, want):
    """A finite float32 scale whose product with the sum overflows to +-inf: XNNPACK clamps
    in float before converting, so the mean saturates (first principles: the real mean is
    +-1e32, far outside what the output scale 1e-8 can represent; LiteRT with XNNPACK gives
    the same). The reference converted inf to an integer first (-2^63: -128 for both signs)."""
    data = _single_op("MEAN", [(1, 9, 9, 6)], (1, 6), in_scale=1e30, out_scale=1e-8,
                      constants=[np.array([1, 2], np.int32)], keep_dims=False)
    model = edgecnn.load(data, profile="xnnpack")
    x = np.full((1, 9, 9, 6), value, np.int8)
    for backend in ("reference", "core"):
        assert np.array_equal(model.run(x, backend=backend), np.full((1, 6), want)), backend


def test_average_pool_whose_int32_sum_can_overflow():
    """128 * 4096 * 4096 = 2^31 > 2^31 - 1."""
    data = _single_op("AVERAGE_POOL_2D", [(1, 4096, 4096, 1)], (1, 1, 1, 1),
                      filter=(4096, 4096), padding="VALID")
    _loads_or_raises(data, AccumulatorRangeError, r"operator 0 \(AVERAGE_POOL_2D\)")


def test_quantize_float_to_uint8_saturates_large_inputs():
    """zero point 200: round(3e9 / 1) + 200 overflowed int32 in the core (and the C)."""
    mb = ModelBuilder()
    x = mb.tensor((1, 5), "float32")
    y = mb.tensor((1, 5), "uint8", scale=1.0, zero_point=200)
    mb.op("QUANTIZE", [x], [y])
    mb.inputs, mb.outputs = [x], [y]
    model = edgecnn.load(mb.build())
    inputs = np.array([[3e9, -3e9, 3e38, 5.0, -199.5]], np.float32)
    want = np.array([[255, 0, 255, 205, 0]], np.uint8)   # clamp(round(x) + 200, 0, 255)
    for backend in ("reference", "core"):
        assert np.array_equal(model.run(inputs, backend=backend), want), backend


# -- errors that were not EdgecnnError ------------------------------------------------

@pytest.mark.parametrize("beta", [float("nan"), -1.0, float("inf")])
def test_softmax_beta_not_finite_or_negative(beta):
    data = _single_op("SOFTMAX", [(1, 4)], (1, 4), out_scale=1 / 256, out_zp=-128, beta=beta)
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(SOFTMAX\): beta")


def test_softmax_of_a_scalar():
    """Found by the fuzzer (seed 7, mutant 6712: softmax.tflite with both shapes emptied):
    a rank-0 SOFTMAX loaded, the reference answered and the core raised IndexError.
    LiteRT refuses it (activations.cc: NumDimensions(input) >= 1)."""
    data = _single_op("SOFTMAX", [()], (), out_scale=1 / 256, out_zp=-128)
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(SOFTMAX\): input .* rank 0")


def test_relu6_with_a_tiny_input_scale():
    data = _single_op("RELU6", [(1, 4)], (1, 4), in_scale=1e-45, out_scale=1e-45)
    model = edgecnn.load(data)   # the clamp to 6.0 is beyond int8: a plain max(x, zero point)
    x = np.array([[-128, -1, 0, 127]], np.int8)
    for backend in ("reference", "core"):
        assert np.array_equal(model.run(x, backend=backend), [[0, 0, 0, 127]])


def test_logistic_with_a_tiny_input_scale():
    data = _single_op("LOGISTIC", [(1, 4)], (1, 4), in_scale=1e-30, out_scale=1 / 256,
                      out_zp=-128)
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(LOGISTIC\): input scale")


def test_add_with_three_inputs():
    data = _single_op("ADD", [(1, 4), (1, 4), (1, 4)], (1, 4))
    _loads_or_raises(data, ModelFormatError, r"operator 0 \(ADD\): has 3 input")


def test_huge_paddings():
    paddings = np.array([[0, 0], [0, 2**30]], np.int32)
    data = _single_op("PAD", [(1, 4)], (1, 4 + 2**30), constants=[paddings])
    _loads_or_raises(data, ResourceLimitError, r"model: needs about")


@pytest.mark.parametrize("bad", [None, 42, "model\0.tflite"])
def test_load_of_something_that_is_not_a_model(bad):
    with pytest.raises(EdgecnnError):
        edgecnn.load(bad)


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2"])
def test_num_threads_not_a_positive_integer(bad):
    model = edgecnn.load(read("examples/digits/digits_int8.tflite"))
    x = np.zeros(model.inputs[0].shape, np.int8)
    with pytest.raises(EdgecnnError, match="num_threads"):
        model.run(x, num_threads=bad)


# -- resources --------------------------------------------------------------------------

def test_huge_num_threads_is_capped_and_the_compiled_cache_bounded():
    from edgecnn import core_backend
    model = edgecnn.load(read("examples/digits/digits_int8.tflite"))
    x = np.zeros(model.inputs[0].shape, np.int8)
    want = model.run(x, backend="reference")
    for threads in (10**6, 1, 2, 3, 5, 7, 11, 13):
        assert np.array_equal(model.run(x, num_threads=threads), want)
    cache = model.qgraph.__dict__[core_backend._CACHE_ATTRIBUTE]
    assert len(cache) <= core_backend.MAX_COMPILED_PER_MODEL
    assert max(cache) <= edgecnn.model.MAX_THREADS


def test_dilation_2_to_the_24_is_refused_quickly():
    """At e57e100 a 2.6 KB model like this allocated 1.1 GB and ran for 24 s."""
    from modelbuilder import conv2d_model
    weights = np.ones((1, 3, 3, 1), np.int8)
    data = conv2d_model((1, 8, 8, 1), weights, np.zeros(1, np.int32), input_scale=0.5,
                        input_zp=0, weight_scales=[0.5], output_scale=0.5, output_zp=0,
                        output_hw=(8, 8), padding="SAME", dilation=(2**24, 2**24))
    start = time.perf_counter()
    _loads_or_raises(data, ResourceLimitError, r"MiB .*operator 0 \(CONV_2D\)")
    assert time.perf_counter() - start < 5


def test_limits_are_configurable():
    data = read("tests/models/nets/resnet8.tflite")
    edgecnn.load(data)
    with pytest.raises(ResourceLimitError, match="limit of 100000 bytes"):
        edgecnn.load(data, limits=edgecnn.Limits(max_memory=100_000))
    with pytest.raises(ResourceLimitError, match="multiply-accumulates"):
        edgecnn.load(data, limits=edgecnn.Limits(max_work=1000))


# -- fork safety --------------------------------------------------------------------------

def _run_in_child(model, x, queue):
    queue.put(model.run(x, num_threads=2))


def test_forked_child_runs_a_model_the_parent_ran_with_threads():
    """libgomp's pool does not survive fork(): at e57e100 the child hung forever."""
    model = edgecnn.load(read("tests/models/nets/resnet8.tflite"))
    x = np.random.default_rng(0).integers(-128, 128, model.inputs[0].shape).astype(np.int8)
    want = model.run(x, num_threads=2)      # the parent's OpenMP pool now exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_run_in_child, args=(model, x, queue))
    child.start()
    try:
        got = queue.get(timeout=60)
    except Exception:
        child.kill()
        pytest.fail("the forked child did not finish within 60 s (OpenMP after fork?)")
    child.join(30)
    assert child.exitcode == 0
    assert np.array_equal(got, want)


FORK_PROBE = """
import os, sys
import numpy as np
import edgecnn
from edgecnn import _core

def child_runs_threads():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"1" if _core.runs_threads() else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    return os.read(r, 1).decode()

before = child_runs_threads()
model = edgecnn.load(sys.argv[1])
model.run(np.zeros(model.inputs[0].shape, np.int8), num_threads=2)
print(before, child_runs_threads())
"""


def test_only_children_of_a_process_that_ran_threads_give_them_up():
    """A child forked before any threaded inference (the fuzzer's workers) keeps its
    threads; one forked after runs its ops on one thread."""
    model = os.path.join(ROOT, "tests", "models", "nets", "resnet8.tflite")
    run = subprocess.run([sys.executable, "-c", FORK_PROBE, model], capture_output=True,
                         text=True, timeout=120)
    assert run.stdout.split() == ["1", "0"], run.stdout + run.stderr


# -- the exported C ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def float_demo(tmp_path_factory):
    """The bundled float example exported and built with the sanitizers."""
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("needs a C compiler and make")
    from edgecnn.firmware_export import export
    out = tmp_path_factory.mktemp("digits_float")
    export(read("examples/digits/digits_float.tflite"), str(out), prefix="net")
    build = subprocess.run(["make", "-s", "-C", str(out), "demo-san"], capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    model = edgecnn.load(read("examples/digits/digits_float.tflite"))
    return out, model


def _demo(out, data: bytes):
    (out / "in.bin").write_bytes(data)
    return subprocess.run([str(out / "demo-san"), "in.bin", "out.bin"], capture_output=True,
                          text=True, timeout=120, cwd=str(out))


def test_exported_c_rejects_nan_input_with_a_status(float_demo):
    out, model = float_demo
    x = np.zeros(model.inputs[0].shape, np.float32)
    x.flat[5] = np.nan
    run = _demo(out, x.tobytes())
    assert run.returncode == 3, (run.returncode, run.stderr[-2000:])   # EC_ERROR_NAN_INPUT
    assert "runtime error" not in run.stderr and "Sanitizer" not in run.stderr


def test_exported_c_huge_float_inputs_saturate(float_demo):
    out, model = float_demo
    x = np.full(model.inputs[0].shape, 3e38, np.float32)
    x.flat[::2] = -3e38
    run = _demo(out, x.tobytes())
    assert run.returncode == 0, run.stderr[-2000:]
    want = model.run(x, backend="reference")
    assert (out / "out.bin").read_bytes() == want.tobytes()


@pytest.mark.parametrize("extra", [1, 2, 3, -1])
def test_demo_refuses_a_file_that_is_not_whole_input_tensors(float_demo, extra):
    out, model = float_demo
    x = np.zeros(model.inputs[0].shape, np.float32).tobytes()
    run = _demo(out, x + b"\0" * extra if extra > 0 else x[:extra])
    assert run.returncode == 1 and "not a whole number" in run.stderr


@pytest.mark.parametrize("size", [0, 1, 3])
def test_demo_refuses_a_file_shorter_than_one_element(float_demo, size):
    out, _ = float_demo
    run = _demo(out, b"\0" * size)
    assert run.returncode == 1 and "not a whole number" in run.stderr


# -- SOFTMAX over long, flat rows ---------------------------------------------------------------
# A row whose exp() values sum to 512 or more makes the fixed-point kernel divide by 2^32 to
# 2^35. At 5db0779 the core shifted an int32 by 32 or more (undefined; it answered 127 where
# LiteRT answers -128) and so did the exported C. gemmlowp asserts the exponent <= 31, so
# tflite-micro and LiteRT's BUILTIN_REF abort on these rows; LiteRT's optimized kernel (AUTO,
# and the builtin kernels without delegates) divides exactly, as the reference does.

FLAT_ROWS = dict(scale=0.0056, zero_point=-66)   # the input quantization of these models


def _flat_softmax(depth=1000, rows=3) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor((rows, depth), **FLAT_ROWS)
    y = mb.tensor((rows, depth), scale=1 / 256, zero_point=-128)
    mb.op("SOFTMAX", [x], [y], beta=1.0)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


def _flat_rows(seed=0) -> np.ndarray:
    """Three rows of 1000: narrow (sum of exp() ~ 950, exponent 33), wide (sum ~ 530,
    exponent 32) and one spike over a narrow row (the spike's output is not zero)."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(-20, 21, 1000), rng.integers(-128, 128, 1000),
                  rng.integers(-20, 21, 1000)]).astype(np.int8)
    x[2, 7] = 127
    return x


def _real_softmax(x: np.ndarray) -> np.ndarray:
    real = (x.astype(np.float64) - FLAT_ROWS["zero_point"]) * FLAT_ROWS["scale"]
    e = np.exp(real - real.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_of_long_flat_rows_is_exact_in_the_core_and_equals_litert():
    from oracles import instruction_set, run_litert, runnable_isas
    from edgecnn.profiles import litert_default_profile
    data, x = _flat_softmax(), _flat_rows()
    profile = litert_default_profile()
    want = edgecnn.load(data, profile=profile).run(x, backend="reference")
    # first principles: within one step of 256 * softmax (the quotients below 1/2 are 0)
    assert np.abs(want.astype(np.float64) + 128 - 256 * _real_softmax(x)).max() < 1
    assert (want[:2] == -128).all() and want[2, 7] > -128
    for isa in runnable_isas():
        with instruction_set(isa):
            for name in ("tflm", "litert-ref", profile):
                model = edgecnn.load(data, profile=name)
                assert np.array_equal(model.run(x), model.run(x, backend="reference")), (isa, name)
    pytest.importorskip("ai_edge_litert")
    assert np.array_equal(run_litert(data, [x], "xnnpack")[0], want)


def test_exported_softmax_of_long_flat_rows_has_no_undefined_shift(tmp_path):
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("needs a C compiler and make")
    from edgecnn.firmware_export import export
    data, x = _flat_softmax(), _flat_rows()
    export(data, str(tmp_path), prefix="net")
    build = subprocess.run(["make", "-s", "-C", str(tmp_path), "demo-san"], capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    run = _demo(tmp_path, x.tobytes())
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr[-2000:]
    want = edgecnn.load(data).run(x, backend="reference")
    assert (tmp_path / "out.bin").read_bytes() == want.tobytes()


ORACLE_ON_FLAT_ROWS = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from oracles import run_oracle
from test_hostile import _flat_rows, _flat_softmax
run_oracle({oracle!r}, _flat_softmax(), [_flat_rows()])
print("ran")
"""


@pytest.mark.parametrize("oracle", ["tflm", "litert-ref"])
def test_oracle_bug_fixed_point_softmax_aborts_on_long_flat_rows(oracle):
    """Records an oracle bug (tflite-micro and LiteRT 2.3 BUILTIN_REF): gemmlowp's
    RoundingDivideByPOT asserts exponent <= 31 and the process aborts. If this starts
    failing, the oracle was fixed: compare its bytes with the reference's and keep them."""
    from oracles import have_tflm
    if oracle == "tflm" and not have_tflm():
        pytest.skip("tflite-micro is not installed")
    pytest.importorskip("ai_edge_litert")
    code = ORACLE_ON_FLAT_ROWS.format(tests=os.path.dirname(__file__), oracle=oracle)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == -6 and "ran" not in run.stdout, (run.returncode, run.stderr[-500:])


def test_fixed_point_softmax_rows_of_4096_are_refused():
    """4096 exp() values of 1.0 in Q12.19 sum to 2^31: int32 overflows (undefined in TFLite)."""
    with pytest.raises(AccumulatorRangeError, match=r"SOFTMAX.*4096 values"):
        edgecnn.load(_flat_softmax(depth=4096, rows=1), profile="tflm")
    edgecnn.load(_flat_softmax(depth=4095, rows=1), profile="tflm")
    # LiteRT's aarch64 table kernel sums in float: no bound
    edgecnn.load(_flat_softmax(depth=4096, rows=1), profile="xnnpack-aarch64")
