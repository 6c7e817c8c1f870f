"""What edgecnn reproduces of tflite-runtime 2.14, its last release (golden vectors made by
tests/generators/make_tflite_runtime_214_vectors.py in a venv with tflite-runtime 2.14.0,
which needs numpy < 2 and so is not installed here).

- BUILTIN_REF: the `tflite-runtime-ref` profile, byte for byte. Neither litert-ref (its FC
  requantizes in floating point, a later LiteRT change) nor tflm (no RELU6 rescale) is.
- The default resolver: 2.14's XNNPACK did not take int8 models, so they ran the optimized
  builtin kernels, which are what LiteRT still runs under BUILTIN_WITHOUT_DEFAULT_DELEGATES;
  no edgecnn profile reproduces those (README, "Drop-in for tflite-runtime").
"""

import numpy as np
import pytest

import edgecnn
from oracles import ROOT, assert_bitexact

VECTORS = np.load(f"{ROOT}/tests/vectors/tflite_runtime_2_14.npz")
MODELS = sorted({key.split("|")[0] for key in VECTORS.files})


def outputs(path, profile, backend="core"):
    model = edgecnn.load(f"{ROOT}/{path}", profile=profile)
    return np.stack([model.run(x, backend=backend) for x in VECTORS[f"{path}|input"]])


@pytest.mark.parametrize("path", MODELS)
def test_tflite_runtime_ref_profile_equals_tflite_runtime_214_builtin_ref(path):
    for backend in ("core", "reference"):
        assert_bitexact(outputs(path, "tflite-runtime-ref", backend), VECTORS[f"{path}|BUILTIN_REF"],
                        f"{path} {backend}")


def test_why_a_profile_of_its_own():
    want = {path: VECTORS[f"{path}|BUILTIN_REF"] for path in MODELS}
    fc, relu6 = "tests/models/nets/fc_autoencoder.tflite", "tests/models/ops/relu6_standalone.tflite"
    assert not np.array_equal(outputs(fc, "litert-ref"), want[fc])
    assert not np.array_equal(outputs(relu6, "tflm"), want[relu6])


def test_tflite_runtime_214_default_is_litert_without_default_delegates():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    for path in MODELS:
        interp = Interpreter(model_path=f"{ROOT}/{path}", experimental_op_resolver_type=
                             OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp.allocate_tensors()
        got = []
        for x in VECTORS[f"{path}|input"]:
            interp.set_tensor(interp.get_input_details()[0]["index"], x)
            interp.invoke()
            got.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
        assert_bitexact(np.stack(got), VECTORS[f"{path}|AUTO"], path)
