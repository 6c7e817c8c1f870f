"""TRANSPOSE: every permutation of ranks 1-4 (and some of ranks 5-6), every dtype, in
every layer: importer checks, lowering (a TRANSPOSE of size-1 dimensions is a RESHAPE),
the planner's folding of a graph input's TRANSPOSE into the input copy, reference ==
the oracles, core == reference under every instruction set, exported C == core.

Oracles: LiteRT BUILTIN_REF and its default (XNNPACK) resolver for every dtype;
tflite-micro for the dtypes its TRANSPOSE takes (float32, int8, int16: it refuses
uint8, int32 and int64, which test_tflite_micro_refuses_other_dtypes records).
"""

import itertools
import json
import os
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import edgecnn
from edgecnn import EdgecnnError, ModelFormatError, UnsupportedOpError, core_backend
from edgecnn.firmware_export import export
from edgecnn.planner import plan_memory
from edgecnn.reference.layout import collapse_transpose
from modelbuilder import ModelBuilder
from oracles import ROOT, assert_bitexact, instruction_set, random_input, run_oracle, runnable_isas

DTYPES = ["int8", "uint8", "int16", "int32", "int64", "float32"]
TFLM_DTYPES = {"int8", "int16", "float32"}
SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5), (1, 3, 1, 4),
          (33, 70), (3, 40, 35)]        # planes of several 32 x 32 tiles in the core
ISAS = runnable_isas()
QUANTIZED = {"int8": (0.05, 3), "uint8": (0.05, 131), "int16": (0.001, 0)}


def _quantization(dtype):
    scale, zero_point = QUANTIZED.get(dtype, (None, 0))
    return dict(scale=scale, zero_point=zero_point) if scale else {}


def transposes_model(shape, perms, dtype="int8", *, chain=False) -> bytes:
    """One input, one TRANSPOSE per perm: all reading the input (one output each), or
    (chain) each reading the previous one's output (one output)."""
    mb = ModelBuilder()
    q = _quantization(dtype)
    x = mb.tensor(shape, dtype, **q)
    outputs, current, current_shape = [], x, tuple(shape)
    for perm in perms:
        source_shape = current_shape if chain else tuple(shape)
        out_shape = tuple(source_shape[d] for d in perm)
        p = mb.tensor((len(perm),), "int32", data=np.array(perm, np.int32))
        y = mb.tensor(out_shape, dtype, **q)
        mb.op("TRANSPOSE", [current if chain else x, p], [y])
        outputs.append(y)
        if chain:
            current, current_shape = y, out_shape
    mb.inputs, mb.outputs = [x], outputs[-1:] if chain else outputs
    return mb.build()


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _input(model, seed):
    return random_input(model.inputs[0], np.random.default_rng(seed))


def _check_against_oracles(data, x, oracles, label):
    model = edgecnn.load(data)
    want_ref = _as_list(model.run(x, backend="reference"))
    for oracle in oracles:
        for k, (got, want) in enumerate(zip(want_ref, run_oracle(oracle, data, [x]))):
            assert_bitexact(got, want, f"{label} output {k} reference vs {oracle}")
    for isa in ISAS:
        with instruction_set(isa):
            core = _as_list(edgecnn.load(data).run(x, backend="core"))
        for k, (got, want) in enumerate(zip(core, want_ref)):
            assert_bitexact(got, want, f"{label} output {k} core ({isa}) vs reference")
    return model


# -- every permutation, every dtype ------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_permutation_equals_the_oracles(dtype, shape):
    perms = list(itertools.permutations(range(len(shape))))
    data = transposes_model(shape, perms, dtype)
    model = edgecnn.load(data)
    x = _input(model, len(shape))
    oracles = ["litert-ref", "xnnpack"] + (["tflm"] if dtype in TFLM_DTYPES else [])
    _check_against_oracles(data, x, oracles, f"{dtype}{list(shape)}")
    # several readers of the input: nothing is folded into the input copy
    assert plan_memory(model.qgraph).folded_inputs == {}


@pytest.mark.parametrize("shape", [(2, 1, 3, 2, 2), (2, 3, 1, 2, 2, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_ranks_five_and_six_equal_litert(shape):
    rng = np.random.default_rng(len(shape))
    perms = [tuple(int(d) for d in rng.permutation(len(shape))) for _ in range(12)]
    data = transposes_model(shape, perms, "int8")
    _check_against_oracles(data, _input(edgecnn.load(data), 5), ["litert-ref", "xnnpack"],
                           f"rank {len(shape)}")


def test_tflite_micro_refuses_other_dtypes():
    """Why the tflm oracle is left out for uint8, int32 (and int64): its TRANSPOSE
    refuses them. If this fails, tflite-micro gained them: add them to TFLM_DTYPES."""
    for dtype in sorted(set(DTYPES) - TFLM_DTYPES):
        data = transposes_model((2, 3), [(1, 0)], dtype)
        with pytest.raises(Exception):
            run_oracle("tflm", data, [_input(edgecnn.load(data), 0)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=6), st.data())
def test_collapsed_form_moves_the_same_bytes(shape, data):
    """The kernels' collapsed transpose (size-1 dims dropped, dims that stay together
    merged) equals numpy's transpose, and leaves nothing to merge."""
    perm = data.draw(st.permutations(range(len(shape))))
    x = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    collapsed_shape, collapsed_perm = collapse_transpose(tuple(shape), tuple(perm))
    assert all(d > 1 for d in collapsed_shape)
    assert all(b != a + 1 for a, b in zip(collapsed_perm, collapsed_perm[1:]))
    assert np.array_equal(np.transpose(x.reshape(collapsed_shape), collapsed_perm).reshape(-1),
                          np.transpose(x, perm).reshape(-1))


# -- folding --------------------------------------------------------------------------

NCHW_MODELS = ["tests/models/pytorch/nchw_conv_fc.tflite",
               "tests/models/pytorch/nchw_conv_fc_io_float.tflite"]


@pytest.mark.parametrize("path", NCHW_MODELS)
def test_the_input_transpose_is_folded_into_the_input_copy(path, capsys):
    """A PyTorch model's NCHW -> NHWC TRANSPOSE costs no buffer and no op: the core
    writes the caller's input transposed into the arena, and only the middle TRANSPOSE
    (before the flatten) runs as an op."""
    with open(os.path.join(ROOT, path), "rb") as f:
        model = edgecnn.load(f.read())
    q = model.qgraph
    plan = plan_memory(q)
    first = q.nodes[0]
    assert first.op == "TRANSPOSE" and plan.folded_inputs == {0: q.inputs[0]}
    assert q.inputs[0] not in plan.tensor_offsets       # the NCHW input has no buffer
    assert plan.arena_size == plan.lower_bound
    compiled = core_backend.CompiledModel(q)
    aliased = sum(n.op == "RESHAPE" for n in q.nodes)     # the flatten moves nothing
    assert len(compiled.program) == len(q.nodes) - 1 - aliased
    from edgecnn.tools import cli
    assert cli.main(["inspect", os.path.join(ROOT, path)]) == 0
    shown = capsys.readouterr().out
    assert "(TRANSPOSE of input t0 folded into the input copy)" in shown.splitlines()[-len(
        q.nodes) - 1]                                    # on the row of step 0
    assert cli.main(["inspect", os.path.join(ROOT, path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["folded_input_transposes"] == [{"operator": first.index, "input": q.inputs[0]}]


@pytest.mark.parametrize("path", NCHW_MODELS)
def test_edgecnn_run_feeds_images_to_an_nchw_input(path, capsys):
    """`edgecnn run` on a PyTorch-style model: each image goes in as [1, C, H, W] (its
    pixels transposed from the decoder's [H, W, C]), scores as Model.run gives them."""
    from edgecnn.tools import cli
    from edgecnn.tools.images import fit_to_input, load_image, to_input_tensor
    image = os.path.join(ROOT, "examples", "digits", "images", "3_test18.png")
    assert cli.main(["run", os.path.join(ROOT, path), image, "--json", "--top", "10"]) == 0
    shown = json.loads(capsys.readouterr().out)
    model = edgecnn.load(os.path.join(ROOT, path))
    pixels = fit_to_input(load_image(image), 8, 8, 3).transpose(2, 0, 1)
    x = to_input_tensor(pixels, model.inputs[0], 0.0, 255.0)
    scores = np.asarray(model.run(x), np.float64).reshape(-1)
    if model.outputs[0].scale:
        scores = (scores - model.outputs[0].zero_point) * model.outputs[0].scale
    want = [int(i) for i in np.argsort(-scores, kind="stable")]
    assert [t["index"] for t in shown["results"][0]["top"]] == want


def test_a_transpose_of_size_one_dimensions_is_a_reshape_that_moves_nothing():
    """[1,4,6] -(0,2,1)-> [1,6,4] -(1,0,2)-> [6,1,4]: the first is folded into the input
    copy, the second only moves a size-1 dimension, so it is a RESHAPE sharing its
    input's bytes. The whole model is the input copy: the core runs no op at all."""
    data = transposes_model((1, 4, 6), [(0, 2, 1), (1, 0, 2)], chain=True)
    model = _check_against_oracles(data, _input(edgecnn.load(data), 1),
                                   ["litert-ref", "xnnpack", "tflm"], "size-1 chain")
    q = model.qgraph
    assert [n.op for n in q.nodes] == ["TRANSPOSE", "RESHAPE"]
    plan = plan_memory(q)
    middle, out = q.nodes[1].inputs[0], q.nodes[1].outputs[0]
    assert plan.offset(middle) == plan.offset(out)
    assert len(core_backend.CompiledModel(q).program) == 0


# -- exported C -----------------------------------------------------------------------

CHAINS = [("int8", (2, 3, 4, 5)), ("uint8", (3, 4, 5)), ("float32", (2, 3, 4, 5)),
          ("int8", (2, 3, 1, 2, 2, 3))]


@pytest.mark.parametrize("dtype,shape", CHAINS, ids=lambda v: str(v))
def test_exported_c_equals_the_core(tmp_path, dtype, shape):
    """A chain through every permutation of the rank (12 random ones at rank 6), the first
    folded into the input copy; built on the host with -fsanitize=address,undefined."""
    if len(shape) <= 4:   # the identity (a RESHAPE) last but one, not first: first is folded
        perms = list(itertools.permutations(range(len(shape))))
        perms = perms[1:-1] + perms[:1] + perms[-1:]
    else:
        rng = np.random.default_rng(6)
        perms = [tuple(int(d) for d in rng.permutation(len(shape))) for _ in range(12)]
    data = transposes_model(shape, perms, dtype, chain=True)
    model = edgecnn.load(data)
    xs = [_input(model, seed) for seed in range(3)]
    want = b"".join(np.asarray(model.run(x, backend="core")).tobytes() for x in xs)
    for x in xs:
        assert_bitexact(model.run(x, backend="reference"), run_oracle("litert-ref", data, [x])[0],
                        "reference vs litert-ref")
    export(data, str(tmp_path), prefix="net")
    (tmp_path / "in.bin").write_bytes(b"".join(x.tobytes() for x in xs))
    build = subprocess.run(["make", "-s", "-C", str(tmp_path), "demo-san"], capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(tmp_path / "demo-san"), "in.bin", "out.bin"], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.bin").read_bytes() == want
    assert "ec_transpose(&net_op0_params, input, arena" in (tmp_path / "net_model.c").read_text()


# -- validation at load ------------------------------------------------------------------

def _one_transpose(perm, *, perm_dtype="int32", out_q=None, out_dtype="int8",
                   perm_is_input=False, shape=(2, 3, 4)) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor(shape, scale=0.05, zero_point=3)
    if perm_is_input:
        p = mb.tensor((len(perm),), "int32")
    else:
        p = mb.tensor((len(perm),), perm_dtype, data=np.array(perm, perm_dtype))
    out_shape = tuple(shape[d] if 0 <= d < len(shape) else 1 for d in perm)
    scale, zero_point = out_q or (0.05, 3)
    y = mb.tensor(out_shape, out_dtype, scale=scale, zero_point=zero_point)
    mb.op("TRANSPOSE", [x, p], [y])
    mb.inputs, mb.outputs = ([x, p] if perm_is_input else [x]), [y]
    return mb.build()


@pytest.mark.parametrize("case,error,fragment", [
    (dict(perm=(0, 0, 2)), ModelFormatError, "not a permutation"),
    (dict(perm=(0, 1, 3)), ModelFormatError, "not a permutation"),
    (dict(perm=(1, 0)), ModelFormatError, "not a permutation"),
    (dict(perm=(0, -1, 2)), ModelFormatError, "not a permutation"),
    (dict(perm=(2, 1, 0), perm_dtype="int64"), ModelFormatError, "1-D int32"),
    (dict(perm=(2, 1, 0), out_q=(0.06, 3)), ModelFormatError, "quantized like the input"),
    (dict(perm=(2, 1, 0), out_q=(0.05, 4)), ModelFormatError, "quantized like the input"),
    (dict(perm=(2, 1, 0), out_dtype="uint8"), ModelFormatError, "quantized like the input"),
    (dict(perm=(2, 1, 0), perm_is_input=True), UnsupportedOpError, "must be a constant"),
    (dict(perm=(6, 5, 4, 3, 2, 1, 0), shape=(1,) * 7), ModelFormatError, "up to 6"),
], ids=["duplicate", "out-of-range", "short", "negative", "int64", "scale", "zero-point",
        "dtype", "dynamic", "rank-7"])
def test_a_bad_transpose_is_refused_at_load_naming_the_operator(case, error, fragment):
    with pytest.raises(error, match=fragment) as caught:
        edgecnn.load(_one_transpose(**case))
    assert isinstance(caught.value, EdgecnnError)
    assert "operator 0" in str(caught.value) and "TRANSPOSE" in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=7), st.data())
def test_random_transposes_load_and_agree_or_are_refused(shape, data):
    """Hostile TRANSPOSEs (perms with repeats, out of range, of the wrong length; declared
    output shapes that disagree; mixed dtypes and quantization): edgecnn.load either
    refuses them with an EdgecnnError or the core equals the reference."""
    rank = len(shape)
    perm = data.draw(st.one_of(st.permutations(range(rank)),
                               st.lists(st.integers(-1, rank), min_size=0, max_size=rank + 1)))
    dtype = data.draw(st.sampled_from(["int8", "uint8", "float32", "int16"]))
    out_dtype = data.draw(st.sampled_from([dtype, dtype, "int8"]))
    out_shape = tuple(shape[d] if 0 <= d < rank else 1 for d in perm)
    if data.draw(st.booleans()):
        out_shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=len(perm),
                                             max_size=len(perm))))
    q = _quantization(dtype)
    mb = ModelBuilder()
    x = mb.tensor(tuple(shape), dtype, **q)
    p = mb.tensor((len(perm),), "int32", data=np.array(perm, np.int32))
    y = mb.tensor(out_shape, out_dtype, **(_quantization(out_dtype)))
    mb.op("TRANSPOSE", [x, p], [y])
    mb.inputs, mb.outputs = [x], [y]
    try:
        model = edgecnn.load(mb.build())
    except EdgecnnError:
        return
    x = _input(model, 0)
    assert_bitexact(model.run(x, backend="core"), model.run(x, backend="reference"))
    assert_bitexact(model.run(x, backend="reference"), np.transpose(x, perm))
