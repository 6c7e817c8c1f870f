"""LiteRT's aarch64 int8 SOFTMAX (profile xnnpack-aarch64), on every machine.

LiteRT built for aarch64 computes int8 SOFTMAX from a 16-bit exp() table with a float32
normalizer (reference/quant.py, "LiteRT's aarch64 SOFTMAX"). Its outputs were recorded under
emulation (tests/data/softmax_litert_aarch64.npz, provenance inside; regenerate with
tests/generators/record_softmax_aarch64.py): here the reference, the core under every kernel
level and the exported C must give those bytes. On an aarch64 machine with LiteRT (the ARM CI
step) the same cases also run against the live LiteRT, with new inputs.
"""

import json
import os
import platform

import numpy as np
import pytest

import edgecnn
from edgecnn.profiles import litert_default_profile
from oracles import ROOT, all_models, assert_bitexact, instruction_set, random_input, read, \
    run_oracle, runnable_isas
from softmax_cases import cases, inputs, model_bytes

GOLDEN = os.path.join(ROOT, "tests", "data", "softmax_litert_aarch64.npz")
CASES = cases()


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as data:
        return {name: data[name] for name in data.files}


def test_golden_data_say_where_they_come_from(golden):
    provenance = json.loads(str(golden["provenance"]))
    assert provenance["machine"] == "aarch64" and provenance["ai-edge-litert"]
    assert len([n for n in golden if n.endswith("_input")]) == len(CASES)


@pytest.mark.parametrize("k", range(len(CASES)))
def test_reference_and_core_give_litert_aarch64_bytes(golden, k):
    data = model_bytes(CASES[k])
    xs, want = golden[f"case{k}_input"], golden[f"case{k}_AUTO"]
    # the recorded inputs are the ones the case module makes (same models, same inputs)
    assert np.array_equal(xs, np.stack(inputs(CASES[k], k)))
    # without XNNPACK the builtin kernel is the same: one arithmetic for both resolvers
    assert np.array_equal(want, golden[f"case{k}_BUILTIN_WITHOUT_DEFAULT_DELEGATES"])
    model = edgecnn.load(data, profile="xnnpack-aarch64")
    for x, w in zip(xs, want):
        assert_bitexact(model.run(x, backend="reference"), w, f"case {k} reference")
    for isa in runnable_isas():
        with instruction_set(isa):
            model = edgecnn.load(data, profile="xnnpack-aarch64")
            for x, w in zip(xs, want):
                assert_bitexact(model.run(x), w, f"case {k} core ({isa})")


def test_builtin_ref_on_aarch64_is_the_fixed_point_kernel(golden):
    """BUILTIN_REF runs reference_ops::Softmax on aarch64 too: the litert-ref profile."""
    for k, case in enumerate(CASES):
        if f"case{k}_BUILTIN_REF" not in golden:
            continue   # not recorded: LiteRT aborts there (see the generator)
        model = edgecnn.load(model_bytes(case), profile="litert-ref")
        for x, w in zip(golden[f"case{k}_input"], golden[f"case{k}_BUILTIN_REF"]):
            assert_bitexact(model.run(x, backend="reference"), w, f"case {k} BUILTIN_REF")


def test_the_fixed_point_kernel_misses_litert_aarch64(golden):
    """The reason for the variant: the x86-64 arithmetic is one step off on some outputs."""
    differing = total = 0
    for k, case in enumerate(CASES):
        model = edgecnn.load(model_bytes(case), profile="xnnpack")
        for x, w in zip(golden[f"case{k}_input"], golden[f"case{k}_AUTO"]):
            got = model.run(x, backend="reference").astype(int)
            differing += int(np.count_nonzero(got != w))
            assert np.abs(got - w).max() <= 1
            total += w.size
    assert differing > 0, "the golden data no longer show the aarch64 difference"
    print(f"fixed-point kernel vs LiteRT aarch64: {differing} of {total} outputs differ")


def test_exported_c_gives_litert_aarch64_bytes(golden, tmp_path):
    import shutil
    import subprocess
    from edgecnn.firmware_export import export
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    for k in (0, 2, 5):
        out = tmp_path / f"case{k}"
        export(edgecnn.load(model_bytes(CASES[k]), profile="xnnpack-aarch64"), str(out),
               prefix="net")
        (out / "in.bin").write_bytes(golden[f"case{k}_input"].tobytes())
        build = subprocess.run(["make", "-s", "-C", str(out), "demo"], capture_output=True,
                               text=True, timeout=600)
        assert build.returncode == 0, build.stdout + build.stderr
        subprocess.run([str(out / "demo"), "in.bin", "out.bin"], cwd=str(out), check=True,
                       timeout=60)
        got = np.frombuffer((out / "out.bin").read_bytes(), np.int8)
        assert_bitexact(got, golden[f"case{k}_AUTO"].reshape(-1), f"case {k} exported C")


def test_interpreter_picks_the_profile_of_the_machine():
    assert litert_default_profile("aarch64") == "xnnpack-aarch64"
    assert litert_default_profile("arm64") == "xnnpack-aarch64"       # macOS
    assert litert_default_profile("x86_64") == "xnnpack"
    assert litert_default_profile("armv7l") == "xnnpack"   # 32-bit: no aarch64 kernel
    interp = edgecnn.Interpreter(model_content=model_bytes(CASES[0]))
    assert interp._model.profile == litert_default_profile()


# -- live, where LiteRT's aarch64 wheel runs (a Pi, or the ARM CI step) -----------------

LIVE = platform.machine() == "aarch64"
live = pytest.mark.skipif(not LIVE, reason="needs LiteRT on aarch64 (the ARM CI step)")


@live
@pytest.mark.parametrize("k", range(len(CASES)))
def test_live_litert_aarch64_on_new_inputs(k):
    data = model_bytes(CASES[k])
    model = edgecnn.load(data, profile="xnnpack-aarch64")
    for x in inputs(CASES[k], 1000 + k, count=3):
        want = run_oracle("xnnpack", data, [x])[0]
        assert_bitexact(model.run(x), want, f"case {k} core vs live LiteRT")
        assert_bitexact(model.run(x, backend="reference"), want, f"case {k} reference")


@live
@pytest.mark.parametrize("path", [p for p in all_models()
                                  if "softmax" in p or "/nets/" in p or "digits" in p])
def test_live_litert_aarch64_on_committed_models(path):
    """Every committed model with a SOFTMAX: the machine's default profile is LiteRT's."""
    data = read(path)
    model = edgecnn.load(data, profile=litert_default_profile())
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = [random_input(info, rng) for info in model.inputs]
        got = model.run(x)
        assert_bitexact(got if not isinstance(got, list) else got[0],
                        run_oracle("xnnpack", data, x)[0], f"{path} vs live LiteRT")
