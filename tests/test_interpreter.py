"""edgecnn.Interpreter runs a script written for tflite_runtime / LiteRT unchanged.

The same function (written only against the tflite-runtime Interpreter API)
is called once with LiteRT's Interpreter and once with edgecnn's.
"""

import numpy as np
import pytest

import edgecnn
from oracles import ROOT, all_models, random_input, require_litert

MODELS = [p for p in all_models() if p.startswith("examples/digits/")]


def script_written_for_tflite_runtime(Interpreter, model_path, images, **kwargs):
    """A typical Raspberry Pi script: load, allocate, set_tensor, invoke, get_tensor."""
    interpreter = Interpreter(model_path=model_path, num_threads=1, **kwargs)
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    results = []
    for image in images:
        interpreter.set_tensor(input_details[0]["index"], image)
        interpreter.invoke()
        scores = interpreter.get_tensor(output_details[0]["index"])
        scale, zero_point = output_details[0]["quantization"]
        if scale:
            scores = (scores.astype(np.float32) - zero_point) * scale
        results.append((int(np.argmax(scores)), scores.copy()))
    return input_details, output_details, results


@pytest.mark.parametrize("resolver", ["default", "BUILTIN_REF"])
@pytest.mark.parametrize("path", MODELS + ["tests/models/nets/mobilenet_v2_035_96_io_uint8.tflite"])
def test_same_script_same_numbers(path, resolver):
    """The default resolver (XNNPACK) is matched by the xnnpack profile, BUILTIN_REF by
    litert-ref; the script does not change."""
    require_litert()
    from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter, OpResolverType
    model_path = f"{ROOT}/{path}"
    info = edgecnn.load(model_path).inputs[0]
    rng = np.random.default_rng(5)
    images = [random_input(info, rng) for _ in range(5)]
    kwargs = {} if resolver == "default" else {
        "experimental_op_resolver_type": OpResolverType.BUILTIN_REF}
    want = script_written_for_tflite_runtime(LiteRTInterpreter, model_path, images, **kwargs)
    got = script_written_for_tflite_runtime(edgecnn.Interpreter, model_path, images, **kwargs)
    for mine, theirs in zip(got[0] + got[1], want[0] + want[1]):
        for key in ("name", "index", "dtype", "quantization"):
            assert mine[key] == theirs[key], key
        np.testing.assert_array_equal(mine["shape"], theirs["shape"], strict=True)
        q_mine, q_theirs = mine["quantization_parameters"], theirs["quantization_parameters"]
        np.testing.assert_array_equal(q_mine["scales"], q_theirs["scales"], strict=True)
        np.testing.assert_array_equal(q_mine["zero_points"], q_theirs["zero_points"], strict=True)
    for (top_mine, scores_mine), (top_theirs, scores_theirs) in zip(got[2], want[2]):
        assert top_mine == top_theirs
        np.testing.assert_array_equal(scores_mine, scores_theirs, strict=True)


def test_interpreter_errors():
    path = f"{ROOT}/examples/digits/digits_int8.tflite"
    with pytest.raises(edgecnn.EdgecnnError, match="exactly one"):
        edgecnn.Interpreter()
    interp = edgecnn.Interpreter(model_path=path)
    detail = interp.get_input_details()[0]
    with pytest.raises(edgecnn.EdgecnnError, match="allocate_tensors"):
        interp.invoke()
    interp.allocate_tensors()
    with pytest.raises(edgecnn.EdgecnnError, match="not set"):
        interp.invoke()
    with pytest.raises(edgecnn.DTypeError):
        interp.set_tensor(detail["index"], np.zeros(detail["shape"], np.float64))
    with pytest.raises(edgecnn.EdgecnnError, match="not an input"):
        interp.set_tensor(12345, np.zeros(detail["shape"], detail["dtype"]))


# -- the rest of the tflite_runtime / LiteRT module ----------------------------------------

DIGITS = f"{ROOT}/examples/digits/digits_int8.tflite"


def test_the_module_serves_every_public_name_of_litert_interpreter():
    """`import edgecnn.interpreter as tflite` gives what a script takes from
    tflite_runtime.interpreter / ai_edge_litert.interpreter (modules they import aside)."""
    import types
    import ai_edge_litert.interpreter as litert
    import edgecnn.interpreter as ours
    public = {name for name in dir(litert) if not name.startswith("_")
              and not isinstance(getattr(litert, name), types.ModuleType)}
    assert public == {"Delegate", "Interpreter", "InterpreterWithCustomOps", "OpResolverType",
                      "SignatureRunner", "load_delegate"}
    assert public <= set(ours.__all__) and all(hasattr(ours, name) for name in public)
    assert {m.name: m.value for m in ours.OpResolverType} == \
        {m.name: m.value for m in litert.OpResolverType}
    public_methods = {n for n in dir(litert.Interpreter) if not n.startswith("_")}
    assert public_methods <= set(dir(ours.Interpreter))


@pytest.mark.parametrize("resolver, profile", [
    ("AUTO", "xnnpack"), ("BUILTIN", "xnnpack"), ("BUILTIN_REF", "litert-ref"),
    ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", "litert-ref")])
def test_each_resolver_picks_the_profile_that_reproduces_it(resolver, profile):
    """Both edgecnn's and LiteRT's OpResolverType members are accepted. LiteRT's optimized
    kernels without XNNPACK (BUILTIN_WITHOUT_DEFAULT_DELEGATES) are reproduced by no profile:
    litert-ref is used, with a warning that says so."""
    import warnings
    from ai_edge_litert.interpreter import OpResolverType as LiteRTResolver
    from edgecnn.interpreter import OpResolverType
    for kind in (OpResolverType[resolver], LiteRTResolver[resolver]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            interp = edgecnn.Interpreter(model_path=DIGITS, experimental_op_resolver_type=kind)
        assert interp.profile == profile
        messages = [str(w.message) for w in caught]
        if resolver == "BUILTIN_WITHOUT_DEFAULT_DELEGATES":
            assert any("no edgecnn profile reproduces" in m for m in messages), messages
        else:
            assert not messages
    with pytest.raises(ValueError, match="Unrecognized"):
        edgecnn.Interpreter(model_path=DIGITS, experimental_op_resolver_type="FAST")


def test_litert_optimized_kernels_match_no_profile_on_a_conv():
    """Records LiteRT's behaviour behind the warning above: under
    BUILTIN_WITHOUT_DEFAULT_DELEGATES, conv_1x1 differs from every profile (by one on a few
    outputs), while BUILTIN_REF equals litert-ref on the same inputs."""
    from ai_edge_litert.interpreter import OpResolverType
    from oracles import read, run_litert
    data = read("tests/models/ops/conv_1x1.tflite")
    models = {p: edgecnn.load(data, profile=p) for p in edgecnn.PROFILES}
    rng = np.random.default_rng(1)
    inputs = [random_input(models["tflm"].inputs[0], rng) for _ in range(10)]

    def litert(kind):
        interp = LiteRT(model_content=data, experimental_op_resolver_type=kind)
        interp.allocate_tensors()
        out = []
        for x in inputs:
            interp.set_tensor(interp.get_input_details()[0]["index"], x)
            interp.invoke()
            out.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
        return np.stack(out)
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    optimized = litert(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ours = {p: np.stack([m.run(x) for x in inputs]) for p, m in models.items()}
    assert np.array_equal(ours["litert-ref"], litert(OpResolverType.BUILTIN_REF))
    for profile, got in ours.items():
        differ = got.astype(int) - optimized.astype(int)
        assert 0 < np.count_nonzero(differ) and np.abs(differ).max() == 1, profile


def test_tensor_is_a_live_view_of_the_input_and_output_buffers():
    """The idiom `tensor(idx)()[0][:, :] = img` then invoke() uses img, as in LiteRT; the
    output view returned before invoke() shows the new result after it."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    rng = np.random.default_rng(2)
    images = [rng.integers(-128, 128, (8, 8, 1)).astype(np.int8) for _ in range(4)]
    printed = {}
    for name, cls in (("edgecnn", edgecnn.Interpreter), ("litert", LiteRT)):
        interp = cls(model_path=DIGITS)
        interp.allocate_tensors()
        index = interp.get_input_details()[0]["index"]
        output = interp.tensor(interp.get_output_details()[0]["index"])
        results = []
        for image in images:
            interp.tensor(index)()[0][:, :] = image
            interp.invoke()
            results.append(output().copy())
            assert np.array_equal(interp.get_tensor(index)[0], image)
        printed[name] = np.stack(results)
    assert np.array_equal(printed["edgecnn"], printed["litert"])
    assert len({r.tobytes() for r in printed["edgecnn"]}) == len(images)  # not stale


def test_signatures_are_the_models_own():
    """get_signature_list / the runner read the model's SignatureDefs, as LiteRT does."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    for path in MODELS + ["tests/models/nets/ds_cnn_io_float.tflite"]:
        ours = edgecnn.Interpreter(model_path=f"{ROOT}/{path}")
        theirs = LiteRT(model_path=f"{ROOT}/{path}")
        assert ours.get_signature_list() == theirs.get_signature_list() != {}
        assert ours._get_full_signature_list() == theirs._get_full_signature_list()
        key = next(iter(theirs.get_signature_list()))
        runners = [it.get_signature_runner(key) for it in (ours, theirs)]
        name, detail = next(iter(runners[1].get_input_details().items()))
        assert list(runners[0].get_input_details()) == [name]
        assert list(runners[0].get_output_details()) == list(runners[1].get_output_details())
        x = random_input(edgecnn.load(f"{ROOT}/{path}").inputs[0], np.random.default_rng(3))
        got, want = runners[0](**{name: x}), runners[1](**{name: x})
        assert list(got) == list(want)
        for out in want:
            np.testing.assert_array_equal(got[out], want[out], strict=True)
        for it in (ours, theirs):
            with pytest.raises(ValueError):
                it.get_signature_runner("no_such_signature")
            with pytest.raises(ValueError):
                it.get_signature_runner(key)(not_an_input=x)


def test_subgraph_index_reset_and_num_subgraphs_as_litert():
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    x = random_input(edgecnn.load(DIGITS).inputs[0], np.random.default_rng(4))
    for cls in (edgecnn.Interpreter, LiteRT):
        interp = cls(model_path=DIGITS)
        interp.allocate_tensors()
        index = interp.get_input_details()[0]["index"]
        interp.set_tensor(index, x)
        interp.invoke()
        assert interp.num_subgraphs() == 1
        assert interp.reset_all_variables() is None
        assert np.array_equal(interp.get_tensor(index, subgraph_index=0), x)
        assert len(interp.get_tensor_details(subgraph_index=0)) > 2
        with pytest.raises(ValueError):
            interp.get_tensor(index, 1)
        with pytest.raises(ValueError):
            interp.get_tensor_details(1)


@pytest.mark.parametrize("path", ["examples/digits/digits_uint8.tflite",
                                  "tests/models/nets/mobilenet_v2_035_96.tflite"])
def test_intermediate_tensors_with_preserve_all_tensors(path):
    """With experimental_preserve_all_tensors=True every tensor edgecnn computes can be read
    and equals LiteRT BUILTIN_REF's; without it, reading one is a clear ValueError."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT, OpResolverType
    model_path = f"{ROOT}/{path}"
    x = random_input(edgecnn.load(model_path).inputs[0], np.random.default_rng(6))
    interps = [cls(model_path=model_path, experimental_preserve_all_tensors=True,
                   experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
               for cls in (edgecnn.Interpreter, LiteRT)]
    for interp in interps:
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
    ours, theirs = interps
    nodes = ours._model.qgraph.nodes
    for node in nodes:
        index = node.outputs[0]
        np.testing.assert_array_equal(ours.get_tensor(index), theirs.get_tensor(index),
                                      strict=True, err_msg=node.describe())
    plain = edgecnn.Interpreter(model_path=model_path)
    plain.allocate_tensors()
    plain.set_tensor(plain.get_input_details()[0]["index"], x)
    plain.invoke()
    with pytest.raises(ValueError, match="experimental_preserve_all_tensors"):
        plain.get_tensor(nodes[0].outputs[0])


def test_delegates_are_refused_or_flagged_never_silently_ignored():
    import warnings
    import edgecnn.interpreter as tflite
    with pytest.raises(ValueError, match="no delegates"):
        tflite.load_delegate("libedgetpu.so.1", {"device": "usb"})
    with pytest.raises(OSError):  # what LiteRT raises for a library it cannot find
        tflite.load_delegate("libedgetpu.so.1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tflite.Interpreter(model_path=DIGITS, experimental_delegates=[object()])
    assert any("ignores experimental_delegates" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="custom ops"):
        tflite.InterpreterWithCustomOps(custom_op_registerers=["Register"], model_path=DIGITS)


def test_wrong_dtype_shape_or_path_is_a_value_error_as_in_litert(tmp_path):
    """Scripts catch ValueError there: edgecnn's errors are ValueErrors too (and
    EdgecnnErrors)."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)
    for cls in (edgecnn.Interpreter, LiteRT):
        interp = cls(model_path=DIGITS)
        interp.allocate_tensors()
        detail = interp.get_input_details()[0]
        calls = [lambda: interp.set_tensor(detail["index"], np.zeros(detail["shape"], np.float64)),
                 lambda: interp.set_tensor(detail["index"], np.zeros((1, 8, 8, 2), np.int8)),
                 lambda: cls(model_path=str(tmp_path / "missing.tflite")),
                 lambda: cls(model_path=str(garbage)),
                 lambda: cls(model_path=DIGITS, num_threads=0),
                 lambda: cls()]
        for call in calls:
            with pytest.raises(ValueError) as caught:
                call()
            if cls is edgecnn.Interpreter:
                assert isinstance(caught.value, edgecnn.EdgecnnError)
