"""The Cython core equals the numpy reference byte for byte.

On every committed model (every profile), and on hypothesis-generated single
ops: random shapes, strides, dilations, paddings, depth multipliers, zero
points, scales, every rounding, the full int8 range. Each comparison runs once
per instruction set this CPU has (the core picks its kernels at run time: the
portable loops, AVX2 rows, AVX-512 VNNI), so every kernel variant is checked
where it can run.
"""

import dataclasses
import os
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import edgecnn
from edgecnn import core_backend
from modelbuilder import ModelBuilder
from oracles import (ROOT, all_models, assert_bitexact, instruction_set, random_input, read,
                     runnable_isas)

pytestmark = pytest.mark.skipif(not core_backend.available(), reason="Cython core not built")

ALL_ISAS = ["baseline", "avx2", "avx-vnni", "avx512-vnni", "neon", "dotprod"]   # x86-64, AArch64
ISAS = runnable_isas()


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_every_instruction_set_is_tested_where_the_cpu_has_it(isa):
    if isa not in ISAS:
        pytest.skip(f"this CPU does not run {isa}: its kernels are not tested here")
    with instruction_set(isa):
        from edgecnn import _core
        assert _core.isa() == isa


def test_an_instruction_set_the_cpu_lacks_is_refused():
    from edgecnn import _core
    with pytest.raises(ValueError, match="unknown instruction set"):
        _core.set_isa("sse9")
    for isa in ALL_ISAS:
        if isa not in _core.supported_isas():
            with pytest.raises(ValueError, match="does not support"):
                _core.set_isa(isa)


def test_the_environment_picks_the_instruction_set():
    import subprocess
    import sys
    code = "from edgecnn import _core, core_backend; print(_core.isa())"
    env = dict(__import__("os").environ, EDGECNN_ISA="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "baseline", out.stderr
    # a bad value: a one-line error from the command line, when the core is used
    env["EDGECNN_ISA"] = "sse9"
    out = subprocess.run([sys.executable, "-m", "edgecnn.tools.cli", "run",
                          os.path.join(ROOT, "examples", "digits", "digits_int8.tflite"),
                          os.path.join(ROOT, "examples", "digits", "images")],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "EDGECNN_ISA" in out.stderr and "sse9" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("profile", sorted(edgecnn.PROFILES))
@pytest.mark.parametrize("path", all_models())
def test_core_equals_reference_on_every_model(path, profile, isa):
    with instruction_set(isa):
        model = edgecnn.load(read(path), profile=profile)
        _compare_on_random_inputs(model, f"{path} {profile} {isa}")


def _compare_on_random_inputs(model, label: str) -> None:
    rng = np.random.default_rng(1)
    for k in range(3):
        inputs = [random_input(info, rng) for info in model.inputs]
        got = model.run(inputs, backend="core")
        want = model.run(inputs, backend="reference")
        for g, w in zip(got if isinstance(got, list) else [got],
                        want if isinstance(want, list) else [want]):
            assert_bitexact(g, w, f"{label} input #{k} core vs reference")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("path", [p for p in all_models() if "/nets/" in p or "digits" in p
                                  or "conv" in p or "dw_" in p])
def test_core_with_threads_equals_reference(path, threads, isa):
    with instruction_set(isa):
        model = edgecnn.load(read(path))
        x = [random_input(info, np.random.default_rng(4)) for info in model.inputs]
        assert_bitexact(model.run(x, backend="core", num_threads=threads),
                        model.run(x, backend="reference"), f"{path} with {threads} threads")


def test_core_is_the_default_backend():
    assert edgecnn.model.DEFAULT_BACKEND == "core"


# -- hypothesis: single ops with random geometry and quantization ------------------------

def _quantized(draw, lo=0.002, hi=0.2):
    return draw(st.floats(lo, hi)), draw(st.integers(-128, 127))


@st.composite
def conv_cases(draw):
    depthwise = draw(st.booleans())
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    wide = draw(st.booleans())   # channel counts across the vector kernels' 16/32-lane tiles
    cin = draw(st.integers(1, 40 if wide else 6))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if padding == "VALID" and ((kh - 1) * dilation[0] + 1 > h or (kw - 1) * dilation[1] + 1 > w):
        padding = "SAME"
    multiplier = draw(st.integers(1, 3)) if depthwise else 1
    cout = cin * multiplier if depthwise else draw(st.integers(1, 70 if wide else 7))
    activation = draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    per_channel = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    batch = draw(st.sampled_from([1, 1, 2]))
    return dict(depthwise=depthwise, shape=(batch, h, w, cin), kernel=(kh, kw), cout=cout,
                stride=stride, dilation=dilation, padding=padding, multiplier=multiplier,
                activation=activation, per_channel=per_channel, seed=seed,
                x_q=_quantized(draw), y_q=_quantized(draw, 0.01, 0.5))


def build_conv(case) -> bytes:
    from edgecnn.reference.quant import output_size_and_padding
    rng = np.random.default_rng(case["seed"])
    (h, w), (kh, kw) = case["shape"][1:3], case["kernel"]
    oh, _ = output_size_and_padding(case["padding"], h, kh, case["stride"][0], case["dilation"][0])
    ow, _ = output_size_and_padding(case["padding"], w, kw, case["stride"][1], case["dilation"][1])
    cout = case["cout"]
    shape = (1, kh, kw, cout) if case["depthwise"] else (cout, kh, kw, case["shape"][3])
    weights = rng.integers(-127, 128, shape).astype(np.int8)
    n_scales = cout if case["per_channel"] else 1
    w_scales = tuple(float(s) for s in rng.uniform(0.001, 0.05, n_scales))
    (x_scale, x_zp), (y_scale, y_zp) = case["x_q"], case["y_q"]
    mb = ModelBuilder()
    x = mb.tensor(case["shape"], scale=x_scale, zero_point=x_zp)
    wt = mb.tensor(shape, data=weights, scales=w_scales, zero_points=(0,) * n_scales,
                   quantized_dimension=3 if case["depthwise"] else 0)
    b = mb.tensor((cout,), "int32", data=rng.integers(-3000, 3000, cout),
                  scales=tuple(x_scale * s for s in w_scales), zero_points=(0,) * n_scales)
    y = mb.tensor((case["shape"][0], oh, ow, cout), scale=y_scale, zero_point=y_zp)
    options = dict(padding=case["padding"], stride=case["stride"], dilation=case["dilation"],
                   activation=case["activation"])
    if case["depthwise"]:
        options["depth_multiplier"] = case["multiplier"]
    mb.op("DEPTHWISE_CONV_2D" if case["depthwise"] else "CONV_2D", [x, wt, b], [y], **options)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.sampled_from(["tflm", "litert-ref", "xnnpack"]), st.sampled_from([1, 2]),
       st.sampled_from(ISAS))
def test_core_equals_reference_on_random_convolutions(case, profile, threads, isa):
    with instruction_set(isa):
        model = edgecnn.load(build_conv(case), profile=profile)
        x = random_input(model.inputs[0], np.random.default_rng(case["seed"]))
        # Small layers normally run on one thread: force the threaded path here.
        with patch.object(core_backend, "MIN_MACS_PER_THREAD", 1):
            got = model.run(x, backend="core", num_threads=threads)
    assert_bitexact(got, model.run(x, backend="reference"), f"{case} {isa}")


@st.composite
def depthwise_3x3_cases(draw):
    """The shapes the column-reusing 3x3 depthwise kernel takes (width stride 1 or 2,
    width dilation 1, 16 channels or more), with everything else random."""
    case = draw(conv_cases())
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 12))
    cin = draw(st.integers(16, 48))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    dilation = (draw(st.integers(1, 2)), 1)
    if padding == "VALID" and (2 * dilation[0] + 1 > h or 3 > w):
        padding = "SAME"
    case.update(depthwise=True, shape=(case["shape"][0], h, w, cin), kernel=(3, 3), cout=cin,
                multiplier=1, stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                dilation=dilation,
                padding=padding)
    return case


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depthwise_3x3_cases(), st.sampled_from(["tflm", "litert-ref", "xnnpack"]),
       st.sampled_from(ISAS))
def test_core_equals_reference_on_random_3x3_depthwise(case, profile, isa):
    with instruction_set(isa):
        model = edgecnn.load(build_conv(case), profile=profile)
        x = random_input(model.inputs[0], np.random.default_rng(case["seed"]))
        got = model.run(x, backend="core")
    assert_bitexact(got, model.run(x, backend="reference"), f"{case} {isa}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.integers(2, 5), st.sampled_from(["tflm", "litert-ref", "xnnpack"]),
       st.sampled_from(ISAS))
def test_core_equals_reference_on_random_depthwise_multiplier(case, multiplier, profile, isa):
    """Depthwise convolutions with depth multiplier 2 to 5 (on AArch64 a NEON kernel that
    spreads each input channel over its outputs), any geometry and quantization."""
    case.update(depthwise=True, multiplier=multiplier, cout=case["shape"][3] * multiplier)
    with instruction_set(isa):
        model = edgecnn.load(build_conv(case), profile=profile)
        x = random_input(model.inputs[0], np.random.default_rng(case["seed"]))
        got = model.run(x, backend="core")
    assert_bitexact(got, model.run(x, backend="reference"), f"{case} {isa}")


@st.composite
def pool_cases(draw):
    h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 5))
    fh, fw = draw(st.integers(1, min(h, 4))), draw(st.integers(1, min(w, 4)))
    return dict(shape=(1, h, w, c), filter=(fh, fw), stride=(draw(st.integers(1, 3)),
                draw(st.integers(1, 3))), padding=draw(st.sampled_from(["SAME", "VALID"])),
                op=draw(st.sampled_from(["MAX_POOL_2D", "AVERAGE_POOL_2D"])),
                activation=draw(st.sampled_from(["NONE", "RELU", "RELU6"])),
                q=_quantized(draw), seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=40, deadline=None)
@given(pool_cases(), st.sampled_from(ISAS))
def test_core_equals_reference_on_random_pooling(case, isa):
    from edgecnn.reference.quant import output_size_and_padding
    (h, w), (fh, fw) = case["shape"][1:3], case["filter"]
    oh, _ = output_size_and_padding(case["padding"], h, fh, case["stride"][0])
    ow, _ = output_size_and_padding(case["padding"], w, fw, case["stride"][1])
    mb = ModelBuilder()
    scale, zp = case["q"]
    x = mb.tensor(case["shape"], scale=scale, zero_point=zp)
    y = mb.tensor((1, oh, ow, case["shape"][3]), scale=scale, zero_point=zp)
    mb.op(case["op"], [x], [y], padding=case["padding"], stride=case["stride"],
          filter=case["filter"], activation=case["activation"])
    mb.inputs, mb.outputs = [x], [y]
    model = edgecnn.load(mb.build())
    x = random_input(model.inputs[0], np.random.default_rng(case["seed"]))
    with instruction_set(isa):
        got = model.run(x, backend="core")
    assert_bitexact(got, model.run(x, backend="reference"), f"{case} {isa}")


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 150), st.integers(1, 90), st.integers(1, 12), st.booleans(),
       st.sampled_from(["tflm", "litert-ref", "xnnpack"]), st.integers(0, 2**32 - 1),
       st.sampled_from(ISAS))
def test_core_equals_reference_on_random_fully_connected(in_f, out_f, batch, per_channel,
                                                         profile, seed, isa):
    from modelbuilder import fully_connected_model
    rng = np.random.default_rng(seed)
    n_scales = out_f if per_channel else 1
    data = fully_connected_model(rng.integers(-127, 128, (out_f, in_f)).astype(np.int8),
                                 rng.integers(-5000, 5000, out_f).astype(np.int32),
                                 input_scale=float(rng.uniform(0.005, 0.1)),
                                 input_zp=int(rng.integers(-128, 128)),
                                 weight_scales=list(rng.uniform(0.001, 0.05, n_scales)),
                                 output_scale=float(rng.uniform(0.01, 1.0)),
                                 output_zp=int(rng.integers(-128, 128)), batch=batch)
    with instruction_set(isa):
        model = edgecnn.load(data, profile=profile)
        x = random_input(model.inputs[0], rng)
        assert_bitexact(model.run(x, backend="core"), model.run(x, backend="reference"))


def test_core_arithmetic_twin_on_edge_values():
    from edgecnn import _core
    from edgecnn.reference import quant
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.integers(-2**31, 2**31, 2000), [-2**31, 2**31 - 1, 0, 1, -1]])
    for rounding in ("double", "single"):
        for m, s in ((2**30, -1), (2**31 - 1, -31), (1518500250, 0), (2**30 + 7, -13)):
            want = quant.multiply_by_quantized_multiplier(xs, m, s, rounding)
            got = [_core.requantize_scalar(int(x), m, s, rounding) for x in xs]
            assert np.array_equal(np.array(got), want), (rounding, m, s)


def test_missing_extension_is_reported_not_replaced(monkeypatch):
    monkeypatch.setattr(core_backend, "_core", None)
    monkeypatch.setattr(core_backend, "_IMPORT_ERROR", "No module named 'edgecnn._core'")
    model = edgecnn.load(read("examples/digits/digits_int8.tflite"))
    with pytest.raises(edgecnn.BackendUnavailableError, match="not built"):
        core_backend.CompiledModel(model.qgraph)


@pytest.mark.parametrize("isa", ISAS)
def test_core_requantization_row_equals_the_reference_on_extreme_values(isa):
    """The core's double-rounding row (branch-free scalar loop, AVX2, or on AArch64 the
    GEMM's NEON output stage ec_a64_mbqm) against reference/quant.py, on the whole int32
    range, every shift the lowering can produce and ties of both signs."""
    with instruction_set(isa):
        _requantization_row_on_extreme_values()


def _requantization_row_on_extreme_values():
    from edgecnn import _core
    from edgecnn.reference import quant
    rng = np.random.default_rng(9)
    n = 200_000
    acc = rng.integers(-2**31, 2**31, n).astype(np.int32)
    acc[:8] = [-2**31, 2**31 - 1, 0, 1, -1, 2**30, -2**30, 12345]
    multiplier = rng.integers(2**30, 2**31, n).astype(np.int32)
    multiplier[8:1000] = 2**30                      # exact halves: ties
    shift = rng.integers(-31, 3, n).astype(np.int32)  # right shifts and small left shifts
    small = np.abs(shift) > 0
    acc[small & (shift > 0)] //= 8                  # left shifts on values that fit
    # results inside the int8 range (random ones mostly clamp): the high half h of
    # SRDHM(2h, 2^30) = h exact, then a right shift r with half of them exact ties of either
    # sign, which only RoundingDivideByPOT's negative fixup rounds away from zero
    near = slice(1000, 41_000)
    right = rng.integers(1, 21, 40_000)
    high = rng.integers(-300, 300, 40_000) * (1 << right) \
        + rng.integers(0, 2, 40_000) * (1 << (right - 1))
    acc[near], multiplier[near], shift[near] = 2 * high, 2**30, -right
    for zero_point in (5, -128, 127):
        want = np.clip(quant.multiply_by_quantized_multiplier(acc, multiplier, shift)
                       + zero_point, -128, 127).astype(np.int8)
        # a long row (the AVX2 path where the CPU has it) and 7-wide rows (the scalar path)
        got = _core.requantize_row_for_test(acc, multiplier, shift, zero_point)
        assert_bitexact(got, want, f"requantize_row_double, zero point {zero_point}")
        for start in range(0, 7000, 7):
            piece = slice(start, start + 7)
            got = _core.requantize_row_for_test(acc[piece], multiplier[piece], shift[piece],
                                                zero_point)
            assert_bitexact(got, want[piece], f"scalar rows from {start}")


@pytest.mark.parametrize("isa", ISAS)
def test_core_float32_requantization_row_equals_the_reference_on_extreme_values(isa):
    """The float32 (XNNPACK) output stage (on AArch64 the GEMM's and depthwise's NEON
    stage: SCVTF, FMUL, FCVTNS) against reference/quant.py: the whole int32 range, products
    beyond int32 (saturation), exact ties of both signs (ties to even), every zero point
    and clamp."""
    from edgecnn import _core
    from edgecnn.reference import quant
    rng = np.random.default_rng(11)
    n = 100_000
    acc = rng.integers(-2**31, 2**31, n).astype(np.int32)
    acc[:6] = [-2**31, 2**31 - 1, 0, 1, -1, 3]
    scale = (10.0 ** rng.uniform(-10, 1, n)).astype(np.float32)
    ties = slice(6, 20_000)        # acc * 2^-k inside the int8 range, many exactly halfway
    acc[ties] = rng.integers(-300, 300, 20_000 - 6)
    scale[ties] = np.float32(2.0) ** -rng.integers(1, 3, 20_000 - 6).astype(np.float32)
    scale[20_000:21_000] = np.float32(1e9)        # products far beyond int32: saturation
    want_float = quant.requantize_float32(acc, scale)
    with instruction_set(isa):
        for zero_point, lo, hi in ((0, -128, 127), (-128, -128, 127), (127, -128, 127),
                                   (-5, -128, 0), (3, -20, 90)):
            want = quant.clamp_to_output(want_float, zero_point, lo, hi)
            got = _core.requantize_row_float32_for_test(acc, scale, zero_point, lo, hi)
            assert_bitexact(got, want, f"float32 row, zero point {zero_point} [{lo}, {hi}]")
            for start in range(0, 3000, 13):   # partial vectors
                piece = slice(start, start + 13)
                got = _core.requantize_row_float32_for_test(acc[piece], scale[piece],
                                                            zero_point, lo, hi)
                assert_bitexact(got, want[piece], f"float32 rows from {start}")


def _every_pair_model(op: str, scales, zero_points, b_shape=(1, 256, 256, 1)):
    """An ADD of two [1, 256, 256, 1] int8 tensors (b possibly broadcast)."""
    mb = ModelBuilder()
    a = mb.tensor((1, 256, 256, 1), scale=scales[0], zero_point=zero_points[0])
    b = mb.tensor(b_shape, scale=scales[1], zero_point=zero_points[1])
    y = mb.tensor((1, 256, 256, 1), scale=scales[2], zero_point=zero_points[2])
    mb.op(op, [a, b], [y], activation="NONE")
    mb.inputs, mb.outputs = [a, b], [y]
    return mb.build()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("profile", ["tflm", "xnnpack"])
def test_core_add_on_every_pair_of_inputs_with_exact_ties(isa, profile):
    """ADD of every (a, b) int8 pair, with scales whose ratios are powers of two, so half
    the sums are exact ties of both signs (TFLite: double rounding; XNNPACK: the sum's
    shift rounds ties up), same shapes and broadcast (a row of b reused)."""
    everything = np.arange(-128, 128, dtype=np.int8)
    a = np.repeat(everything, 256).reshape(1, 256, 256, 1)
    b = np.tile(everything, 256).reshape(1, 256, 256, 1)
    for scales, zero_points in (((0.0625, 0.0625, 0.125), (0, 0, 0)),
                                ((0.0625, 0.03125, 0.125), (-7, 100, 3)),
                                ((0.5, 0.25, 0.25), (127, -128, -1))):
        for b_shape, b_value in (((1, 256, 256, 1), b), ((1, 1, 256, 1), b[:, :1])):
            with instruction_set(isa):
                model = edgecnn.load(_every_pair_model("ADD", scales, zero_points, b_shape),
                                     profile=profile)
                got = model.run([a, b_value], backend="core")
            assert_bitexact(got, model.run([a, b_value], backend="reference"),
                            f"{profile} {isa} {scales} {zero_points} b {b_shape}")


@pytest.mark.parametrize("isa", ISAS)
def test_core_average_pool_and_mean_on_extreme_sums_and_exact_ties(isa):
    """AVERAGE_POOL_2D over windows of 2 to 400 taps (the NEON kernel's int16 sums are
    flushed every 256 taps) on all -128, all 127 and values that make every rounding an
    exact tie of either sign; MEAN of pairs (half of them ties) on every profile."""
    rng = np.random.default_rng(5)
    for shape, filt, stride in (((1, 20, 20, 37), (20, 20), (1, 1)),
                                ((1, 6, 7, 19), (2, 1), (1, 1)),
                                ((1, 9, 9, 64), (3, 3), (2, 2))):
        mb = ModelBuilder()
        x = mb.tensor(shape, scale=0.05, zero_point=-3)
        out_h = (shape[1] - filt[0]) // stride[0] + 1
        out_w = (shape[2] - filt[1]) // stride[1] + 1
        y = mb.tensor((1, out_h, out_w, shape[3]), scale=0.05, zero_point=-3)
        mb.op("AVERAGE_POOL_2D", [x], [y], padding="VALID", stride=stride, filter=filt,
              activation="NONE")
        mb.inputs, mb.outputs = [x], [y]
        data = mb.build()
        values = rng.integers(-128, 128, shape)
        values[..., 0], values[..., 1] = -128, 127                # extreme sums
        values[..., 2:6] = rng.choice([-128, 127, 1, -1], (1,) + shape[1:3] + (4,))
        for inputs in (values.astype(np.int8), np.full(shape, -128, np.int8)):
            with instruction_set(isa):
                model = edgecnn.load(data)
                got = model.run(inputs, backend="core")
            assert_bitexact(got, model.run(inputs, backend="reference"), f"pool {shape} {isa}")
    pairs = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    pairs = pairs.reshape(1, 2, 256 * 256, 1).astype(np.int8)
    for profile in ("tflm", "litert-ref", "xnnpack"):
        for x_zp, y_zp in ((0, 0), (-5, 17)):
            mb = ModelBuilder()
            x = mb.tensor((1, 2, 256 * 256, 1), scale=0.1, zero_point=x_zp)
            axis = mb.tensor((1,), "int32", data=np.array([1], np.int32))
            y = mb.tensor((1, 1, 256 * 256, 1), scale=0.1, zero_point=y_zp)
            mb.op("MEAN", [x, axis], [y], keep_dims=True)
            mb.inputs, mb.outputs = [x], [y]
            with instruction_set(isa):
                model = edgecnn.load(mb.build(), profile=profile)
                got = model.run(pairs, backend="core")
            assert_bitexact(got, model.run(pairs, backend="reference"),
                            f"mean of pairs {profile} {isa} zero points {x_zp} {y_zp}")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.booleans(),
       st.sampled_from(["NONE", "RELU", "RELU6"]), st.sampled_from(["tflm", "single", "xnnpack"]),
       st.integers(0, 2**32 - 1), st.sampled_from(ISAS))
def test_core_equals_reference_on_random_add(shape, broadcast, activation, profile, seed, isa):
    from hypothesis import assume
    from edgecnn import profiles
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    b_shape = tuple(1 if (broadcast and k % 2) else d for k, d in enumerate(shape))
    mb = ModelBuilder()
    a = mb.tensor(shape, scale=float(rng.uniform(0.01, 0.2)), zero_point=int(rng.integers(-128, 128)))
    b = mb.tensor(b_shape, scale=float(rng.uniform(0.01, 0.2)), zero_point=int(rng.integers(-128, 128)))
    y = mb.tensor(shape, scale=float(rng.uniform(0.02, 0.5)), zero_point=int(rng.integers(-128, 128)))
    mb.op("ADD", [a, b], [y], activation=activation)
    mb.inputs, mb.outputs = [a, b], [y]
    from edgecnn.importer.tflite import load_graph
    from edgecnn.lowering import lower
    chosen = (dataclasses.replace(profiles.PROFILES["tflm"], name="single", rounding="single")
              if profile == "single" else profiles.PROFILES[profile])  # single: test-only
    try:
        model = edgecnn.Model(lower(load_graph(mb.build()), chosen))
    except edgecnn.UnsupportedOpError:
        assume(False)
    xs = [random_input(info, rng) for info in model.inputs]
    with instruction_set(isa):
        got = model.run(xs, backend="core")
    assert_bitexact(got, model.run(xs, backend="reference"))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=4), st.data(), st.booleans(),
       st.booleans(), st.sampled_from(["tflm", "litert-ref", "xnnpack"]),
       st.integers(0, 2**32 - 1), st.sampled_from(ISAS))
def test_core_equals_reference_on_random_mean(shape, data, keep_dims, same_quantization,
                                              profile, seed, isa):
    """MEAN over any set of axes: a contiguous block of axes takes the row-sum path, any
    other set the index map; requantized or not (same input and output quantization)."""
    rng = np.random.default_rng(seed)
    rank = len(shape)
    axes = sorted(data.draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank)))
    out_shape = tuple(1 if k in axes else d for k, d in enumerate(shape)) if keep_dims else \
        tuple(d for k, d in enumerate(shape) if k not in axes)
    x_q = (float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128)))
    y_q = x_q if same_quantization else (float(rng.uniform(0.01, 0.2)),
                                         int(rng.integers(-128, 128)))
    mb = ModelBuilder()
    x = mb.tensor(tuple(shape), scale=x_q[0], zero_point=x_q[1])
    a = mb.tensor((len(axes),), "int32", data=np.array(axes, np.int32))
    y = mb.tensor(out_shape, scale=y_q[0], zero_point=y_q[1])
    mb.op("MEAN", [x, a], [y], keep_dims=keep_dims)
    mb.inputs, mb.outputs = [x], [y]
    with instruction_set(isa):
        model = edgecnn.load(mb.build(), profile=profile)
        xs = random_input(model.inputs[0], rng)
        got = model.run(xs, backend="core")
    assert_bitexact(got, model.run(xs, backend="reference"), f"axes {axes} of {shape}")


def test_lean_run_path_gives_the_checked_paths_results_and_errors():
    """Model.run's lean path (core_backend.lean_run) serves the common call after the first,
    and anything else still takes the checked path, with its errors."""
    model = edgecnn.load(read("examples/digits/digits_int8.tflite"))
    info = model.inputs[0]
    x = random_input(info, np.random.default_rng(3))
    first = model.run(x)                        # checked path; makes the lean one
    assert type(model._lean).__name__ == "LeanRun"
    lean = model._lean(x)
    assert lean is not None and lean is not model._lean(x)   # a new array each call
    assert_bitexact(lean, first, "lean path")
    assert_bitexact(model.run([x]), first, "a list of one array")
    assert_bitexact(model.run(np.asfortranarray(x)), first, "a Fortran-ordered array")
    assert model._lean(np.asfortranarray(x)) is None or x.ndim < 2
    assert model._lean(x.astype(np.int16)) is None
    with pytest.raises(edgecnn.errors.DTypeError, match="expected dtype int8"):
        model.run(x.astype(np.int16))
    with pytest.raises(edgecnn.errors.ShapeError, match="expected shape"):
        model.run(x.reshape(-1))
    with pytest.raises(edgecnn.errors.DTypeError, match="numpy array"):
        model.run(x.tolist())
    with pytest.raises(edgecnn.EdgecnnError, match="num_threads"):
        model.run(x, num_threads=0)
    assert_bitexact(model.run(x, backend="reference"), first, "reference")
