"""Hand-built one-op models with exact scales, where rounding rules show.

A multiplier of exactly 0.5 (or 0.25, 0.375) turns many accumulators into
rounding ties, the cases that separate the rounding rules:
  - tflite-micro and LiteRT BUILTIN_REF: double rounding (SRDHM ties up, then
    RoundingDivideByPOT ties away from zero) == edgecnn profile "tflm";
  - LiteRT's default XNNPACK path on x86: float32 scale, ties to even.
The modelbuilder writes the files; the oracles judge them.
"""

import platform

import numpy as np
import pytest

import edgecnn
from modelbuilder import conv2d_model
from oracles import assert_bitexact, instruction_set, run_oracle, runnable_isas

RAMP = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)


def tie_model(weight_scale, input_zp, output_zp=0, activation="NONE", weight=1):
    w = np.full((1, 1, 1, 1), weight, np.int8)
    return conv2d_model((1, 16, 16, 1), w, np.zeros(1, np.int32), input_scale=1.0,
                        input_zp=input_zp, weight_scales=[weight_scale], output_scale=1.0,
                        output_zp=output_zp, output_hw=(16, 16), padding="VALID",
                        activation=activation)


CASES = [(0.5, 0, 0), (0.25, 3, -7), (0.375, -5, 10), (0.5, -128, 127), (0.5, 127, -128),
         (2.0, 0, 0), (3.0, 10, 0)]  # the last two: multipliers > 1, a left shift


@pytest.mark.parametrize("oracle", ["tflm", "litert-ref"])
@pytest.mark.parametrize("weight_scale,input_zp,output_zp", CASES)
def test_ties_follow_double_rounding(weight_scale, input_zp, output_zp, oracle):
    data = tie_model(weight_scale, input_zp, output_zp)
    got = edgecnn.load(data, profile="tflm").run(RAMP)
    want = run_oracle(oracle, data, [RAMP])[0]
    assert_bitexact(got, want, f"scale {weight_scale} zp {input_zp}/{output_zp} vs {oracle}")


@pytest.mark.parametrize("activation", ["RELU", "RELU6", "RELU_N1_TO_1"])
def test_fused_activation_clamps(activation):
    data = tie_model(0.05, 0, -20, activation=activation, weight=7)
    got = edgecnn.load(data).run(RAMP)
    assert_bitexact(got, run_oracle("tflm", data, [RAMP])[0], activation)
    assert len(np.unique(got)) < 256  # the clamp is active somewhere


def test_double_rounding_differs_from_single_on_ties():
    """First principles: 0.25 = 2^30 * 2^(-1-31), and acc = -130 gives exactly -32.5.
    Double rounding: SRDHM(-130, 2^30) = -130 * 2^30 / 2^31 = -65 exactly, then
    RoundingDivideByPOT(-65, 1) = -32.5 -> -33 (ties away from zero).
    Single rounding: floor(-32.5 + 0.5) = -32 (ties up)."""
    from edgecnn.reference import quant
    assert int(quant.multiply_by_quantized_multiplier(-130, 2**30, -1, "double")) == -33
    assert int(quant.multiply_by_quantized_multiplier(-130, 2**30, -1, "single")) == -32


def test_xnnpack_rounds_ties_to_even_and_the_xnnpack_profile_follows():
    """The third behaviour: XNNPACK's float32 requantization rounds -63.5 to -64 and 62.5
    to 62 (ties to even), where TFLite's fixed point rounds 62.5 up."""
    for weight_scale, input_zp in ((0.5, 0), (0.25, 3), (0.375, -5)):
        data = tie_model(weight_scale, input_zp)
        xnn = run_oracle("xnnpack", data, [RAMP])[0]
        acc = RAMP.astype(np.int64).reshape(-1) - input_zp
        assert np.array_equal(xnn.astype(np.int64).reshape(-1),
                              np.clip(np.rint(acc * weight_scale), -128, 127))
        model = edgecnn.load(data, profile="xnnpack")
        for backend in ("reference", "core"):
            assert_bitexact(model.run(RAMP, backend=backend), xnn, f"xnnpack profile, {backend}")
        assert not np.array_equal(edgecnn.load(data).run(RAMP), xnn)  # tflm differs here


def fc_tie_model():
    """FC with requantization multiplier exactly 0.5: negative odd accumulators are ties."""
    from modelbuilder import fully_connected_model
    w = np.ones((4, 1), np.int8) * np.array([[1], [-1], [3], [-3]], np.int8)
    return fully_connected_model(w, np.zeros(4, np.int32), input_scale=1.0, input_zp=0,
                                 weight_scales=[0.5], output_scale=1.0, output_zp=0, batch=256)


FC_INPUT = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)


def test_fully_connected_profiles_follow_their_oracles_on_ties():
    """tflite-micro requantizes FC in fixed point (ties up: -1.5 -> -1), LiteRT's reference
    kernel in floating point (ties away from zero: -1.5 -> -2)."""
    data = fc_tie_model()
    tflm = run_oracle("tflm", data, [FC_INPUT])[0]
    litert = run_oracle("litert-ref", data, [FC_INPUT])[0]
    assert np.count_nonzero(tflm != litert) > 100  # the oracles really disagree here
    assert_bitexact(edgecnn.load(data, profile="tflm").run(FC_INPUT), tflm, "tflm profile")
    assert_bitexact(edgecnn.load(data, profile="litert-ref").run(FC_INPUT), litert,
                    "litert-ref profile")
    acc = FC_INPUT.astype(np.int64) * np.array([1, -1, 3, -3])
    assert np.array_equal(litert, np.clip(np.sign(acc) * np.floor(np.abs(acc) / 2 + 0.5), -128, 127))
    assert np.array_equal(tflm, np.clip(np.floor(acc / 2 + 0.5), -128, 127))


def test_quantize_rounds_like_std_round_even_just_below_one_half():
    """0.49999997f + 0.5f rounds up to 1.0f in float32: a floor(|q| + 0.5) shortcut would
    quantize it to 1; std::round (TfLiteRound) gives 0. Checked against both oracles."""
    from modelbuilder import ModelBuilder
    mb = ModelBuilder()
    x = mb.tensor((1, 10), "float32")
    y = mb.tensor((1, 10), "int8", scale=1.0, zero_point=0)
    mb.op("QUANTIZE", [x], [y])
    mb.inputs, mb.outputs = [x], [y]
    data = mb.build()
    # (Beyond |x / scale| >= 2^31 TFLite's float -> int32 cast is undefined behaviour and
    # x86 yields INT32_MIN; edgecnn saturates instead, so those values are not compared.)
    values = np.array([[0.49999997, -0.49999997, 0.5, -0.5, 1.5, 2.5, -2.5, 126.5, 127.5,
                        -128.5]], np.float32)
    model = edgecnn.load(data)
    for oracle in ("tflm", "litert-ref"):
        want = run_oracle(oracle, data, [values])[0]
        for backend in ("reference", "core"):
            assert_bitexact(model.run(values, backend=backend), want, f"{backend} vs {oracle}")
    assert model.run(values)[0, 0] == 0


# -- requantized values beyond int32 -------------------------------------------------------
# Accumulators near 2^30 times a scale of 200 leave the int32 range before the output zero
# point and the clamp. XNNPACK clamps in float (saturation), tflite-micro's fixed point wraps
# the left shift exactly as the reference models it; LiteRT's BUILTIN_REF FC casts an out of
# range double to int32, undefined behaviour that x86 answers with INT32_MIN, where edgecnn
# saturates (as for QUANTIZE).

def _huge_fc_model():
    from modelbuilder import fully_connected_model
    weights = np.ones((4, 8), np.int8) * np.array([[1], [-1], [1], [-1]], np.int8)
    bias = np.array([2**30, -2**30, 2**24, -2**24], np.int32)
    return fully_connected_model(weights, bias, input_scale=1.0, input_zp=0,
                                 weight_scales=[1.0] * 4, output_scale=1 / 200, output_zp=5)


HUGE_X = np.full((1, 8), 3, np.int8)


@pytest.mark.parametrize("profile,oracle", [("xnnpack", "xnnpack"), ("tflm", "tflm")])
def test_requantized_values_beyond_int32_match_the_oracle(profile, oracle):
    data = _huge_fc_model()
    want = run_oracle(oracle, data, [HUGE_X])[0]
    assert_bitexact(edgecnn.load(data, profile=profile).run(HUGE_X, backend="reference"),
                    want, f"reference ({profile}) vs {oracle}")
    for isa in runnable_isas():
        with instruction_set(isa):
            got = edgecnn.load(data, profile=profile).run(HUGE_X)
        assert_bitexact(got, want, f"core ({profile}, {isa}) vs {oracle}")


def test_litert_ref_fc_saturates_where_the_oracle_casts_out_of_range():
    """Records the oracle's undefined behaviour: every output of this FC is out of int32
    range after the float scaling; saturation gives 127 / -128 by the sign, LiteRT on x86
    gives INT32_MIN + zero point -> -128 for all of them."""
    data = _huge_fc_model()
    saturated = np.array([[127, -128, 127, -128]], np.int8)
    assert_bitexact(edgecnn.load(data, profile="litert-ref").run(HUGE_X, backend="reference"),
                    saturated, "reference")
    for isa in runnable_isas():
        with instruction_set(isa):
            got = edgecnn.load(data, profile="litert-ref").run(HUGE_X)
        assert_bitexact(got, saturated, f"core ({isa})")
    oracle = run_oracle("litert-ref", data, [HUGE_X])[0]
    if platform.machine() in ("x86_64", "AMD64"):
        assert np.all(oracle == -128)   # INT32_MIN + 5, clamped: not saturation
    else:                               # ARM's conversion saturates
        assert np.array_equal(oracle, saturated) or np.all(oracle == -128)
