"""Every committed model, both profiles, against the TFLite oracle each profile names.

  profile "tflm"       == tflite-micro's Python interpreter, byte for byte
  profile "litert-ref" == ai-edge-litert with OpResolverType.BUILTIN_REF, byte for byte
  profile "xnnpack"    == ai-edge-litert's default resolver (XNNPACK delegate), byte for byte
                          (checked on x86-64: XNNPACK picks its kernels per CPU)

Inputs are random over the whole input dtype range, both ends included. A
failure names the first lowered layer whose output differs from the oracle's
tensor (the oracles keep every tensor when asked).
"""

import zlib

import numpy as np
import pytest

import edgecnn
from edgecnn.profiles import litert_default_profile
from oracles import (all_models, assert_bitexact, first_differing_layer, random_input, read,
                     run_oracle)

INPUTS_PER_MODEL = 4
# LiteRT's default resolver is matched by the profile of the machine the tests run on
# (xnnpack-aarch64 on 64-bit ARM: its SOFTMAX differs, see edgecnn/profiles.py).
PROFILE_ORACLE = {"tflm": "tflm", "litert-ref": "litert-ref", litert_default_profile(): "xnnpack"}
MODELS = all_models()


def ops_in(model_bytes: bytes) -> set[str]:
    from edgecnn.importer.tflite import load_graph
    return {n.op for n in load_graph(model_bytes).nodes}


def tflm_is_broken_on(model_bytes: bytes) -> bool:
    # tflite-micro (seen with 0.dev20261023) gives wrong, run-to-run different
    # outputs on the SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND form of a
    # dilated convolution; see test_tflm_space_to_batch_bug below.
    return "SPACE_TO_BATCH_ND" in ops_in(model_bytes)


@pytest.mark.parametrize("profile", sorted(PROFILE_ORACLE))
@pytest.mark.parametrize("path", MODELS)
def test_reference_is_bitexact_with_oracle(path, profile):
    oracle = PROFILE_ORACLE[profile]
    data = read(path)
    if oracle == "tflm" and tflm_is_broken_on(data):
        pytest.skip("tflite-micro is wrong on SPACE_TO_BATCH_ND dilated convs "
                    "(recorded by test_tflm_space_to_batch_bug; checked against LiteRT instead)")
    model = edgecnn.load(data, profile=profile)
    rng = np.random.default_rng(zlib.crc32(f"{path}:{profile}".encode()))
    for k in range(INPUTS_PER_MODEL):
        inputs = [random_input(info, rng) for info in model.inputs]
        got = model.run(inputs, backend="reference")
        got = got if isinstance(got, list) else [got]
        want = run_oracle(oracle, data, inputs)
        for j, (g, w) in enumerate(zip(got, want)):
            if not (g.shape == w.shape and g.dtype == w.dtype
                    and np.array_equal(g, w, equal_nan=w.dtype.kind == "f")):
                where = first_differing_layer(model, data, inputs, oracle)
                assert_bitexact(g, w, f"{path} output {j}, input #{k}, profile {profile} vs "
                                f"{oracle}; {where}")


@pytest.mark.parametrize("path", MODELS)
def test_core_on_arm_is_bitexact_with_litert_aarch64(path):
    """On 64-bit ARM (a Pi, or the ARM CI step under emulation): the core under every kernel
    level against LiteRT's aarch64 wheel, default resolver and BUILTIN_REF, on every committed
    model. test_core shows core == reference there; the reference itself is too slow under
    emulation to run the test above."""
    if litert_default_profile() != "xnnpack-aarch64":
        pytest.skip("64-bit ARM only (elsewhere the test above checks the reference)")
    from oracles import instruction_set, require_litert, runnable_isas
    require_litert()
    data = read(path)
    for profile, oracle in ((litert_default_profile(), "xnnpack"), ("litert-ref", "litert-ref")):
        model = edgecnn.load(data, profile=profile)
        rng = np.random.default_rng(zlib.crc32(f"{path}:{profile}".encode()))
        inputs = [[random_input(info, rng) for info in model.inputs] for _ in range(2)]
        wants = [run_oracle(oracle, data, x) for x in inputs]
        for isa in runnable_isas():
            with instruction_set(isa):
                model = edgecnn.load(data, profile=profile)
                for k, (x, want) in enumerate(zip(inputs, wants)):
                    got = model.run(x)
                    for j, (g, w) in enumerate(zip(got if isinstance(got, list) else [got], want)):
                        assert_bitexact(np.asarray(g), w, f"{path} output {j}, input #{k}, "
                                        f"profile {profile} vs {oracle}, core ({isa})")


S2B_MODELS = [p for p in MODELS if "SPACE_TO_BATCH_ND" in ops_in(read(p))]


@pytest.mark.parametrize("path", S2B_MODELS)
def test_space_to_batch_models_match_litert_under_tflm_profile(path):
    """Where tflite-micro is broken, the tflm profile is checked against LiteRT's reference
    kernels instead: no FULLY_CONNECTED in these models, so the profiles agree."""
    data = read(path)
    if "FULLY_CONNECTED" in ops_in(data):
        pytest.skip("has FULLY_CONNECTED, where the profiles legitimately differ")
    model = edgecnn.load(data, profile="tflm")
    rng = np.random.default_rng(7)
    for _ in range(INPUTS_PER_MODEL):
        inputs = [random_input(info, rng) for info in model.inputs]
        got = model.run(inputs)
        want = run_oracle("litert-ref", data, inputs)[0]
        assert_bitexact(got, want, f"{path} tflm profile vs LiteRT BUILTIN_REF")


@pytest.mark.parametrize("path", S2B_MODELS)
def test_tflm_space_to_batch_bug(path):
    """Records the oracle bug: tflite-micro disagrees with LiteRT (and edgecnn) on the
    SPACE_TO_BATCH_ND form. If this starts failing, tflite-micro was fixed: drop the skip
    in test_reference_is_bitexact_with_oracle."""
    data = read(path)
    model = edgecnn.load(data, profile="litert-ref")
    rng = np.random.default_rng(11)
    differs = 0
    for _ in range(INPUTS_PER_MODEL):
        inputs = [random_input(info, rng) for info in model.inputs]
        tflm = run_oracle("tflm", data, inputs)[0]
        litert = run_oracle("litert-ref", data, inputs)[0]
        differs += not np.array_equal(tflm, litert)
    assert differs > 0, "tflite-micro now agrees with LiteRT on SPACE_TO_BATCH_ND"
