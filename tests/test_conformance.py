"""Per-op conformance sweeps against the live oracles (tests/conformance.py batches them).

Each profile is compared with its runtime: `tflm` with tflite-micro, `litert-ref` with
LiteRT's BUILTIN_REF resolver, `xnnpack` with LiteRT's default resolver (XNNPACK
delegate) on x86-64. Elementwise ops see their whole input space (all 256 values, all
65,536 pairs for ADD) for many drawn quantization parameter sets.
"""

import platform

import numpy as np
import pytest

import edgecnn
from conformance import (PAIRS_A, PAIRS_B, PROFILES, Case, build, draw_scale, draw_zero_point,
                         in_chunks, loadable, related_scale, run_batch, sweep_size)
from oracles import run_oracle

X86 = platform.machine() in ("x86_64", "AMD64")


def needs_x86(profile):
    if profile == "xnnpack" and not X86:
        pytest.skip("the xnnpack profile reproduces XNNPACK's x86-64 kernels")


# -- ADD: all 65,536 pairs ---------------------------------------------------------------------

def add_case(label, sa, za, sb, zb, so, zo, activation="NONE") -> Case:
    def add(mb):
        a = mb.tensor(PAIRS_A.shape, scale=sa, zero_point=za)
        b = mb.tensor(PAIRS_B.shape, scale=sb, zero_point=zb)
        y = mb.tensor(PAIRS_A.shape, scale=so, zero_point=zo)
        mb.op("ADD", [a, b], [y], activation=activation)
        return [a, b], y
    return Case(label, add, [PAIRS_A, PAIRS_B])


def draw_add_cases(seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        sa = draw_scale(rng)
        sb = related_scale(rng, sa, -6, 6)
        so = related_scale(rng, max(sa, sb), -2, 9)   # out/in ratios across XNNPACK's range
        if k % 6 == 5:   # b/out below 1/1024: the delegate declines, LiteRT's own ADD runs
            sb = float(np.float32(sa * 2.0 ** rng.uniform(-14, -11)))
            so = float(np.float32(sa * 2.0 ** rng.uniform(-1, 2)))
        za, zb, zo = (draw_zero_point(rng) for _ in range(3))
        act = str(rng.choice(["NONE", "NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        cases.append(add_case(f"ADD #{k} a=({sa!r},{za}) b=({sb!r},{zb}) out=({so!r},{zo}) {act}",
                              sa, za, sb, zb, so, zo, act))
    return cases


@pytest.mark.parametrize("profile", PROFILES)
def test_add_sweep_all_pairs(profile):
    needs_x86(profile)
    cases = loadable(draw_add_cases(9, sweep_size(36, 400)), profile)
    assert len(cases) >= 0.8 * sweep_size(36, 400)
    for chunk in in_chunks(cases, 12):
        run_batch(chunk, profile)


def test_xnnpack_add_is_not_tflites_formula():
    """Issue 9, defect 3: XNNPACK's ADD (one multiplier per input, one shift) is not TFLite's
    three-step formula. On these scales the two differ on some of the 65,536 pairs; the
    xnnpack profile follows XNNPACK on every one (and the litert-ref profile LiteRT's)."""
    case = add_case("add", 0.0470588244, -2, 0.0520620718, -9, 0.0655450895, -6)
    data = build([case])
    xnn = run_oracle("xnnpack", data, [PAIRS_A, PAIRS_B])[0]
    ref = run_oracle("litert-ref", data, [PAIRS_A, PAIRS_B])[0]
    assert np.count_nonzero(xnn != ref) > 0
    run_batch([case], "xnnpack")
    run_batch([case], "litert-ref")


# -- MEAN -------------------------------------------------------------------------------------

MEAN_SHAPES = [((1, 7, 7, 16), (1, 2), True), ((1, 5, 3, 8), (1, 2), False),
               ((1, 4, 6, 8), (2,), True), ((1, 10, 12), (1,), False), ((1, 3, 4, 8), (3,), True),
               ((2, 4, 2, 8), (1, 2), True), ((1, 2, 4, 4), (1, 2, 3), True),
               ((1, 16, 16, 4), (1, 2), True), ((1, 6, 9), (2,), True)]


def mean_case(label, shape, axes, keep, si, zi, so, zo, x) -> Case:
    def add(mb):
        t = mb.tensor(shape, scale=si, zero_point=zi)
        ax = mb.tensor((len(axes),), "int32", data=np.array(axes, np.int32))
        out = (tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep
               else tuple(d for i, d in enumerate(shape) if i not in axes))
        y = mb.tensor(out, scale=so, zero_point=zo)
        mb.op("MEAN", [t, ax], [y], keep_dims=keep)
        return [t], y
    return Case(label, add, [x])


def draw_mean_cases(seed: int, count: int, equal: bool) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        shape, axes, keep = MEAN_SHAPES[k % len(MEAN_SHAPES)]
        si, zi = draw_scale(rng), draw_zero_point(rng)
        so, zo = (si, zi) if equal else (related_scale(rng, si, -3, 3), draw_zero_point(rng))
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        x.reshape(-1)[:2] = (-128, 127)
        cases.append(mean_case(f"MEAN #{k} {shape} axes {axes} keep {keep} in=({si!r},{zi}) "
                               f"out=({so!r},{zo})", shape, axes, keep, si, zi, so, zo, x))
    return cases


@pytest.mark.parametrize("equal", [True, False], ids=["same-quantization", "requantizing"])
@pytest.mark.parametrize("profile", PROFILES)
def test_mean_sweep(profile, equal):
    """Issue 9, defect 1 (equal quantization): tflite-micro and LiteRT requantize by a
    multiplier with 1/n folded in, never divide the raw sum by n."""
    needs_x86(profile)
    for chunk in in_chunks(draw_mean_cases(11 + equal, sweep_size(36, 600), equal), 36):
        run_batch(chunk, profile)


# -- QUANTIZE and DEQUANTIZE -------------------------------------------------------------------

def unary_case(label, op, x, in_q, out_shape_dtype, out_q, **options) -> Case:
    """One elementwise op; in_q / out_q are (dtype, scale, zero point), scale None for float."""
    def add(mb):
        dtype, scale, zp = in_q
        t = mb.tensor(x.shape, dtype, **({} if scale is None else dict(scale=scale, zero_point=zp)))
        dtype, scale, zp = out_q
        y = mb.tensor(x.shape, dtype, **({} if scale is None else dict(scale=scale, zero_point=zp)))
        mb.op(op, [t], [y], **options)
        return [t], y
    return Case(label, add, [x])


def tie_floats(rng: np.random.Generator, scale: float, zp: int, dtype: str) -> np.ndarray:
    """Floats on every half step of the quantized grid (exact ties when the scale is a power
    of two), their float32 neighbours, the range ends and uniform values beyond them."""
    info = np.iinfo(dtype)
    steps = np.arange(2 * (info.min - zp) - 6, 2 * (info.max - zp) + 7) / 2.0
    on_grid = (steps * np.float32(scale)).astype(np.float32)
    near = np.concatenate([np.nextafter(on_grid, np.float32(np.inf)),
                           np.nextafter(on_grid, np.float32(-np.inf))])
    wide = rng.uniform(-300, 300, 256).astype(np.float32) * np.float32(scale)
    return np.concatenate([on_grid, near, wide]).astype(np.float32).reshape(1, -1)


def draw_quantize_cases(seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        dtype = ("int8", "uint8")[k % 2]
        scale = (float(np.float32(2.0 ** int(rng.integers(-12, 3)))) if rng.random() < 0.5
                 else draw_scale(rng))
        zp = draw_zero_point(rng, dtype)
        x = tie_floats(rng, scale, zp, dtype)
        cases.append(unary_case(f"QUANTIZE #{k} float -> {dtype} ({scale!r}, {zp})", "QUANTIZE",
                                x, ("float32", None, 0), None, (dtype, scale, zp)))
    return cases


@pytest.mark.parametrize("profile", PROFILES)
def test_quantize_float_sweep(profile):
    """Issue 9, defect 4: XNNPACK quantizes with the float32 reciprocal and rounds ties to
    even; TFLite divides and rounds ties away from zero."""
    needs_x86(profile)
    cases = draw_quantize_cases(21, sweep_size(40, 800))
    for dtype in ("int8", "uint8"):
        oracle = None
        if profile == "tflm" and dtype == "uint8":
            oracle = "litert-ref"   # tflite-micro has no float -> uint8 QUANTIZE
        for chunk in in_chunks([c for c in cases if f"-> {dtype} " in c.label], 40):
            run_batch(chunk, profile, oracle)


def test_tflm_oracle_has_no_float_to_uint8_quantize():
    """Recorded: tflite-micro refuses QUANTIZE float32 -> uint8 ("Input FLOAT32, output
    UINT8 not supported"), so the tflm profile's float -> uint8 is checked against LiteRT's
    BUILTIN_REF (the same AffineQuantize) instead."""
    case = draw_quantize_cases(21, 2)[1]
    with pytest.raises(RuntimeError):
        run_oracle("tflm", build([case]), case.inputs)


def draw_requantize_cases(seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    pairs = [("int8", "int8"), ("int8", "uint8"), ("uint8", "int8")]
    cases = []
    for k in range(count):
        din, dout = pairs[k % 3]
        si, zi = draw_scale(rng), draw_zero_point(rng, din)
        so, zo = related_scale(rng, si, -9, 8), draw_zero_point(rng, dout)
        x = (np.arange(-128, 128) if din == "int8" else np.arange(256)).astype(din).reshape(1, 256)
        if k % 2:   # 253 values: LiteRT's optimized requantize has a scalar tail (13 values)
            x = np.roll(x, 7 * k)[:, :253]
        cases.append(unary_case(f"QUANTIZE #{k} {din} ({si!r},{zi}) -> {dout} ({so!r},{zo})",
                                "QUANTIZE", x, (din, si, zi), None, (dout, so, zo)))
    return cases


@pytest.mark.parametrize("profile", PROFILES)
def test_requantize_sweep_all_values(profile):
    needs_x86(profile)
    cases = loadable(draw_requantize_cases(23, sweep_size(60, 1500)), profile)
    for chunk in in_chunks(cases, 60):
        run_batch(chunk, profile)


def draw_dequantize_cases(seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        dtype = ("int8", "uint8")[k % 2]
        scale, zp = draw_scale(rng, -20, 8), draw_zero_point(rng, dtype)
        x = (np.arange(-128, 128) if dtype == "int8" else np.arange(256)).astype(dtype)
        cases.append(unary_case(f"DEQUANTIZE #{k} {dtype} ({scale!r},{zp})", "DEQUANTIZE",
                                x.reshape(1, 256), (dtype, scale, zp), None,
                                ("float32", None, 0)))
    return cases


@pytest.mark.parametrize("profile", PROFILES)
def test_dequantize_sweep_all_values(profile):
    needs_x86(profile)
    for chunk in in_chunks(draw_dequantize_cases(25, sweep_size(60, 1500)), 60):
        run_batch(chunk, profile)


# -- FULLY_CONNECTED's per-tensor multiplier under tflm ------------------------------------------

def test_tflm_fully_connected_multiplier_uses_the_double_product_of_the_scales():
    """Issue 9, defect 2, the evidence: tflite-micro's source has two overloads of
    GetQuantizedConvolutionMultipler (kernel_util.cc); the one FULLY_CONNECTED calls takes
    input_scale * filter_scale in double, the other in float32. These scales give different
    Q31 multipliers (1423919871 from the double product, 1423919938 from the float32 one),
    which change 2 of the 65,536 outputs; the installed wheel gives the double product's."""
    from edgecnn.reference import quant
    from modelbuilder import fully_connected_model
    si, sw, so = 0.0038181254640221596, 0.004793786909431219, 0.003533321898430586
    x = np.stack([np.repeat(np.arange(-128, 128), 256), np.tile(np.arange(-128, 128), 256)],
                 axis=1).astype(np.int8)
    weights = np.array([[127, 93]], np.int8)
    data = fully_connected_model(weights, np.zeros(1, np.int32), input_scale=si, input_zp=0,
                                 weight_scales=[sw], output_scale=so, output_zp=0,
                                 batch=x.shape[0])
    want = run_oracle("tflm", data, [x])[0]
    acc = x.astype(np.int64) @ weights.astype(np.int64).T
    double = quant.quantize_multiplier(si * sw / so)
    single = quant.quantize_multiplier(float(np.float32(si) * np.float32(sw)) / so)
    by_double = np.clip(quant.multiply_by_quantized_multiplier(acc, *double), -128, 127)
    by_single = np.clip(quant.multiply_by_quantized_multiplier(acc, *single), -128, 127)
    assert np.count_nonzero(by_double != by_single) == 2
    assert np.array_equal(want, by_double.astype(np.int8))
    run_batch([Case("FC", lambda mb: _fc_into(mb, data), [x])], "tflm")


def _fc_into(mb, data, **options):
    """Re-add the one-FC model's op to a batch builder (same tensors, same order)."""
    import tflite
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    first = len(mb.tensors)
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        q = t.Quantization()
        buf = model.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {9: "int8", 2: "int32"}[t.Type()]
        mb.tensor(tuple(t.ShapeAsNumpy()), dtype, scales=tuple(q.ScaleAsNumpy()),
                  zero_points=tuple(int(z) for z in q.ZeroPointAsNumpy()),
                  data=None if isinstance(buf, int) else buf.view(dtype).reshape(t.ShapeAsNumpy()))
    mb.op("FULLY_CONNECTED", [first, first + 1, first + 2], [first + 3], **options)
    return [first], first + 3


# -- LOGISTIC, HARD_SWISH, RELU, RELU6, RELU_N1_TO_1, SOFTMAX: all 256 values ----------------

RAMP_1x256 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
UNARY_OPS = ("LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1")


def draw_unary_cases(op: str, seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        if op == "LOGISTIC":
            si, zi = draw_scale(rng, -9, 0), draw_zero_point(rng)
            so, zo = 1 / 256, -128
        else:
            si, zi = draw_scale(rng, -10, 0), draw_zero_point(rng)
            so, zo = related_scale(rng, si, -3, 4), draw_zero_point(rng)
        x = RAMP_1x256 if k % 2 == 0 else np.tile(RAMP_1x256, 2)[:, 3:3 + 253]
        cases.append(unary_case(f"{op} #{k} ({si!r},{zi}) -> ({so!r},{zo}) size {x.size}", op,
                                x, ("int8", si, zi), None, ("int8", so, zo)))
    return cases


@pytest.mark.parametrize("op", UNARY_OPS)
@pytest.mark.parametrize("profile", PROFILES)
def test_unary_sweep_all_values(profile, op):
    needs_x86(profile)
    cases = loadable(draw_unary_cases(op, 31 + UNARY_OPS.index(op), sweep_size(40, 800)), profile)
    assert cases
    oracle = None
    if profile == "tflm" and op == "RELU_N1_TO_1":
        oracle = "litert-ref"   # tflite-micro has no standalone RELU_N1_TO_1 kernel
    for chunk in in_chunks(cases, 40):
        run_batch(chunk, profile, oracle)


def test_tflm_oracle_has_no_standalone_relu_n1_to_1():
    """Recorded: tflite-micro's op resolver has no RELU_N1_TO_1 ("Didn't find op for builtin
    opcode"); the tflm profile's (LiteRT's formula) is checked against litert-ref."""
    case = draw_unary_cases("RELU_N1_TO_1", 1, 1)[0]
    with pytest.raises(RuntimeError):
        run_oracle("tflm", build([case]), case.inputs)


def draw_softmax_cases(seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        si, zi = draw_scale(rng, -8, 0), draw_zero_point(rng)
        beta = float(rng.choice([1.0, 1.0, 0.5, 2.0, rng.uniform(0.1, 4)]))
        depth = int(rng.choice([256, 10, 16, 100, 1000]))
        x = rng.integers(-128, 128, size=(max(1, 2048 // depth), depth)).astype(np.int8)
        if depth == 256:
            x[0] = RAMP_1x256[0]
        cases.append(unary_case(f"SOFTMAX #{k} ({si!r},{zi}) beta {beta} depth {depth}",
                                "SOFTMAX", x, ("int8", si, zi), None, ("int8", 1 / 256, -128),
                                beta=beta))
    return cases


@pytest.mark.parametrize("profile", PROFILES)
def test_softmax_sweep(profile):
    needs_x86(profile)
    cases = loadable(draw_softmax_cases(41, sweep_size(30, 600)), profile)
    for chunk in in_chunks(cases, 30):
        run_batch(chunk, profile)


# -- AVERAGE_POOL_2D, MAX_POOL_2D ----------------------------------------------------------------

POOLS = [((1, 8, 8, 16), (2, 2), (2, 2), "VALID"), ((1, 7, 7, 8), (3, 3), (1, 1), "SAME"),
         ((1, 9, 6, 3), (3, 2), (2, 1), "SAME"), ((1, 5, 5, 32), (5, 5), (1, 1), "VALID"),
         ((2, 6, 6, 4), (2, 3), (2, 2), "SAME"), ((1, 10, 10, 24), (7, 7), (3, 3), "VALID")]


def pool_case(label, op, shape, filt, stride, padding, s, z, activation, x) -> Case:
    from edgecnn.reference.quant import output_size_and_padding
    oh = output_size_and_padding(padding, shape[1], filt[0], stride[0])[0]
    ow = output_size_and_padding(padding, shape[2], filt[1], stride[1])[0]

    def add(mb):
        t = mb.tensor(shape, scale=s, zero_point=z)
        y = mb.tensor((shape[0], oh, ow, shape[3]), scale=s, zero_point=z)
        mb.op(op, [t], [y], filter=filt, stride=stride, padding=padding, activation=activation)
        return [t], y
    return Case(label, add, [x])


def draw_pool_cases(op: str, seed: int, count: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        shape, filt, stride, padding = POOLS[k % len(POOLS)]
        s, z = draw_scale(rng), draw_zero_point(rng)
        act = str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        cases.append(pool_case(f"{op} #{k} {shape} {filt} {stride} {padding} ({s!r},{z}) {act}",
                               op, shape, filt, stride, padding, s, z, act, x))
    return cases


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("profile", PROFILES)
def test_pool_sweep(profile, op):
    needs_x86(profile)
    for chunk in in_chunks(draw_pool_cases(op, 51, sweep_size(36, 600)), 36):
        run_batch(chunk, profile)


# -- CONCATENATION -----------------------------------------------------------------------------

def concat_case(label, qs, out_q, axis=3) -> Case:
    x = RAMP_1x256.reshape(1, 4, 8, 8)

    def add(mb):
        ts = [mb.tensor(x.shape, scale=s, zero_point=z) for s, z in qs]
        shape = list(x.shape)
        shape[axis] *= len(qs)
        y = mb.tensor(tuple(shape), scale=out_q[0], zero_point=out_q[1])
        mb.op("CONCATENATION", ts, [y], axis=axis)
        return ts, y
    return Case(label, add, [x] * len(qs))


@pytest.mark.parametrize("profile", PROFILES)
def test_concatenation_sweep_same_quantization(profile):
    needs_x86(profile)
    rng = np.random.default_rng(61)
    cases = []
    for k in range(sweep_size(20, 200)):
        q = (draw_scale(rng), draw_zero_point(rng))
        cases.append(concat_case(f"CONCATENATION #{k} {q}", [q] * (2 + k % 3), q, axis=1 + k % 3))
    for chunk in in_chunks(cases, 20):
        run_batch(chunk, profile)


def test_concatenation_of_differently_quantized_inputs_is_refused_by_every_runtime():
    """Recorded: tflite-micro and LiteRT's reference kernel reject an int8 CONCATENATION whose
    inputs are quantized unlike the output (concatenation.cc: scale == output scale), and
    LiteRT's default path fails to prepare it (the XNNPACK delegate takes the node and then
    fails). No runtime defines it, so edgecnn refuses it at load (UnsupportedOpError)."""
    case = concat_case("requantizing", [(0.1, 3), (0.2, -5)], (0.15, 1))
    data = build([case])
    for oracle in ("tflm", "litert-ref", "xnnpack"):
        with pytest.raises(RuntimeError):
            run_oracle(oracle, data, case.inputs)
    for profile in PROFILES:
        with pytest.raises(edgecnn.UnsupportedOpError):
            edgecnn.load(data, profile=profile)


# -- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: hypothesis-drawn shapes and scales -------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@st.composite
def weighted_scales(draw, channels: int, per_channel: bool):
    """(input scale, weight scales, output scale): in 'tie' mode powers of two (every
    multiplier dyadic, many requantization ties), else log-uniform."""
    ties = draw(st.booleans())
    if ties:
        def scale(lo, hi):
            return 2.0 ** draw(st.integers(lo, hi))
        s_in = scale(-9, -3)
        w = [scale(-9, -4) for _ in range(channels if per_channel else 1)]
        s_out = scale(-8, 0) * draw(st.sampled_from([1.0, 1.0, 3.0, 1.5]))
    else:
        def scale(lo, hi):
            return float(np.float32(2.0 ** draw(st.floats(lo, hi))))
        s_in = scale(-9, -3)
        w = [scale(-9, -4) for _ in range(channels if per_channel else 1)]
        s_out = scale(-8, 0)
    return s_in, w, s_out


def weighted_case(kind, label, x, weights, bias, s_in, z_in, w_scales, s_out, z_out,
                  out_shape, q_dim, float_input, **options) -> Case:
    def add(mb):
        if float_input:   # a float model input quantized first: exact ties in QUANTIZE too
            t_float = mb.tensor(x.shape, "float32")
            t = mb.tensor(x.shape, scale=s_in, zero_point=z_in)
            mb.op("QUANTIZE", [t_float], [t])
        else:
            t = t_float = mb.tensor(x.shape, scale=s_in, zero_point=z_in)
        w = mb.tensor(weights.shape, data=weights, scales=tuple(w_scales),
                      zero_points=(0,) * len(w_scales), quantized_dimension=q_dim)
        b = mb.tensor(bias.shape, "int32", data=bias, scales=tuple(s_in * s for s in w_scales),
                      zero_points=(0,) * len(w_scales))
        y = mb.tensor(out_shape, scale=s_out, zero_point=z_out)
        mb.op(kind, [t, w, b], [y], **options)
        return [t_float], y
    if float_input:   # values on the half steps of the input grid
        steps = (x.astype(np.float64) - z_in + np.where(x % 2 == 0, 0.5, 0.0))
        x = (steps * np.float32(s_in)).astype(np.float32)
    return Case(label, add, [x])


@st.composite
def conv_cases(draw, kind: str, per_channel: bool):
    from edgecnn.reference.quant import output_size_and_padding
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    cin = draw(st.integers(1, 8))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    activation = draw(st.sampled_from(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    if padding == "VALID":
        h, w = max(h, (kh - 1) * dilation[0] + 1), max(w, (kw - 1) * dilation[1] + 1)
    oh = output_size_and_padding(padding, h, kh, stride[0], dilation[0])[0]
    ow = output_size_and_padding(padding, w, kw, stride[1], dilation[1])[0]
    options = dict(padding=padding, stride=stride, dilation=dilation, activation=activation)
    if kind == "CONV_2D":
        cout = draw(st.integers(1, 8))
        weights = rng.integers(-127, 128, size=(cout, kh, kw, cin)).astype(np.int8)
        q_dim = 0
    else:
        mult = draw(st.integers(1, 3))
        cout = cin * mult
        weights = rng.integers(-127, 128, size=(1, kh, kw, cout)).astype(np.int8)
        q_dim, options["depth_multiplier"] = 3, mult
    s_in, w_scales, s_out = draw(weighted_scales(cout, per_channel))
    z_in, z_out = draw_zero_point(rng), draw_zero_point(rng)
    bias = rng.integers(-2000, 2001, size=cout).astype(np.int32)
    x = rng.integers(-128, 128, size=(n, h, w, cin)).astype(np.int8)
    float_input = draw(st.booleans())
    label = (f"{kind} x{x.shape} w{weights.shape} {options} in=({s_in!r},{z_in}) "
             f"w={w_scales} out=({s_out!r},{z_out}) float_input={float_input} seed={seed}")
    return weighted_case(kind, label, x, weights, bias, s_in, z_in, w_scales, s_out, z_out,
                         (n, oh, ow, cout), q_dim, float_input, **options)


@st.composite
def fc_cases(draw, per_channel: bool):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    batch, in_f, out_f = draw(st.integers(1, 4)), draw(st.integers(1, 40)), draw(st.integers(1, 16))
    weights = rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8)
    s_in, w_scales, s_out = draw(weighted_scales(out_f, per_channel))
    z_in, z_out = draw_zero_point(rng), draw_zero_point(rng)
    bias = rng.integers(-2000, 2001, size=out_f).astype(np.int32)
    x = rng.integers(-128, 128, size=(batch, in_f)).astype(np.int8)
    activation = draw(st.sampled_from(["NONE", "NONE", "RELU", "RELU6"]))
    float_input = draw(st.booleans())
    label = (f"FULLY_CONNECTED x{x.shape} w{weights.shape} in=({s_in!r},{z_in}) w={w_scales} "
             f"out=({s_out!r},{z_out}) {activation} float_input={float_input} seed={seed}")
    return weighted_case("FULLY_CONNECTED", label, x, weights, bias, s_in, z_in, w_scales, s_out,
                         z_out, (batch, out_f), 0, float_input, activation=activation)


WEIGHTED_EXAMPLES = sweep_size(10, 60)   # hypothesis examples per test, 16 layers each


def _check_weighted(cases, profile):
    cases = loadable(cases, profile)
    if cases:
        run_batch(cases, profile)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("profile", PROFILES)
def test_convolution_sweep(profile, kind, per_channel):
    needs_x86(profile)

    @settings(max_examples=WEIGHTED_EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(conv_cases(kind, per_channel), min_size=16, max_size=16))
    def check(cases):
        _check_weighted(cases, profile)
    check()


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("profile", PROFILES)
def test_fully_connected_sweep(profile, per_channel):
    needs_x86(profile)

    @settings(max_examples=WEIGHTED_EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(fc_cases(per_channel), min_size=16, max_size=16))
    def check(cases):
        _check_weighted(cases, profile)
    check()


# -- fused activation bounds under XNNPACK ------------------------------------------------------

@pytest.mark.parametrize("activation,scale,zero_point", [("RELU6", 12.0, 0), ("RELU6", 4.0, 5),
                                                          ("RELU_N1_TO_1", 2.0, 0),
                                                          ("RELU_N1_TO_1", 2.0, 3)])
def test_xnnpack_rounds_fused_activation_bounds_to_even(activation, scale, zero_point):
    """XNNPACK quantizes a fused activation's bounds with xnn_qs8_quantize, lrintf(bound /
    scale + zero point): 6 / 12 = 0.5 gives a maximum of 0 where TFLite's round() gives 1.
    FULLY_CONNECTED, ADD and MAX_POOL_2D with bounds on exact ties, every input value."""
    from modelbuilder import fully_connected_model
    x = RAMP_1x256.reshape(256, 1)
    fc = fully_connected_model(np.ones((1, 1), np.int8), np.zeros(1, np.int32), input_scale=1.0,
                               input_zp=0, weight_scales=[1.0], output_scale=scale,
                               output_zp=zero_point, batch=256, activation=activation)
    cases = [Case("FC", lambda mb: _fc_into(mb, fc, activation=activation), [x]),
             add_case("ADD", 1.0, 0, 1.0, 0, scale, zero_point, activation),
             pool_case("MAX_POOL_2D", "MAX_POOL_2D", (1, 16, 16, 1), (1, 1), (1, 1), "VALID",
                       scale, zero_point, activation, RAMP_1x256.reshape(1, 16, 16, 1))]
    run_batch(cases, "xnnpack")
    for profile in ("tflm", "litert-ref"):
        run_batch(cases, profile)


# -- PAD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_pad_sweep(profile):
    needs_x86(profile)
    rng = np.random.default_rng(71)
    x = RAMP_1x256.reshape(1, 4, 8, 8)
    cases = []
    for k in range(sweep_size(12, 120)):
        s, z = draw_scale(rng), draw_zero_point(rng)
        pads = rng.integers(0, 3, size=(4, 2))
        pads[0] = 0

        def add(mb, s=s, z=z, pads=pads):
            t = mb.tensor(x.shape, scale=s, zero_point=z)
            p = mb.tensor((4, 2), "int32", data=pads.astype(np.int32))
            y = mb.tensor(tuple(d + a + b for d, (a, b) in zip(x.shape, pads)), scale=s,
                          zero_point=z)
            mb.op("PAD", [t, p], [y])
            return [t], y
        cases.append(Case(f"PAD #{k} ({s!r},{z}) {pads.tolist()}", add, [x]))
    run_batch(cases, profile)
