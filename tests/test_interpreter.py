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
