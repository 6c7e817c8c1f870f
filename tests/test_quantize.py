"""`edgecnn quantize`: trained float models (tests/models/float/: ONNX from PyTorch made by
tests/generators/make_quantize_models.py, a float .tflite from TensorFlow's converter made by
tests/generators/make_quantize_keras.py) to int8 .tflite files.

Judges: PyTorch's own accuracy on the held-out split (manifest.json), LiteRT running the
float graph (the importer and float kernels), and LiteRT and tflite-micro running the
written int8 file byte for byte against edgecnn under the matching profiles.
"""

import json
import os

import numpy as np
import pytest

import edgecnn
from edgecnn.quantizer import float_ops, load_float_graph, ranges
from edgecnn.tflite_writer import write_graph
from oracles import ROOT, assert_bitexact, run_oracle
from test_cli import assert_one_line_error, edgecnn as edgecnn_cli

pytest.importorskip("onnx")

FLOAT = os.path.join(ROOT, "tests", "models", "float")
MODELS = ["digits_dscnn", "digits_mixed", "digits_keras"]
CALIBRATION = 100


def manifest():
    with open(os.path.join(FLOAT, "manifest.json")) as f:
        return json.load(f)


def split():
    with np.load(os.path.join(FLOAT, "digits_split.npz")) as data:
        return data["x"], data["y"], data["x_calibration"]


def onnx_path(name):
    if name == "digits_keras":
        return os.path.join(FLOAT, "digits_keras_float.tflite")
    return os.path.join(FLOAT, name + ".onnx")


def float_accuracy(name):
    """The float model's own accuracy on the held-out split (PyTorch's, or LiteRT's run
    of TensorFlow's float file), from the generators."""
    if name == "digits_keras":
        return manifest()["keras"]["float_test_accuracy"]
    return manifest()["models"][name + ".onnx"]["float_test_accuracy"]


_CACHE = {}


def quantized(name, **options):
    key = (name, tuple(sorted(options.items())))
    if key not in _CACHE:
        _, _, calibration = split()
        _CACHE[key] = edgecnn.quantize(onnx_path(name), calibration[:CALIBRATION],
                                       report_samples=8, **options)
    return _CACHE[key]


def as_input(model, x):
    """Held-out samples (NCHW floats) as the int8 model's inputs (NHWC, its dtype)."""
    info = model.inputs[0]
    nhwc = x.transpose(0, 2, 3, 1)
    if info.dtype == np.float32:
        return [s.reshape(info.shape).astype(np.float32) for s in nhwc]
    low, high = (0, 255) if info.dtype == np.uint8 else (-128, 127)
    q = np.clip(np.floor(np.abs(nhwc / np.float32(info.scale)) + 0.5) * np.sign(nhwc)
                + info.zero_point, low, high)
    return [s.reshape(info.shape).astype(info.dtype) for s in q]


@pytest.mark.parametrize("name", MODELS)
def test_int8_accuracy_within_half_a_point_of_pytorch(name):
    x, y, _ = split()
    model = edgecnn.load(quantized(name).tflite)
    predictions = [int(np.argmax(model.run(s))) for s in as_input(model, x)]
    accuracy = float(np.mean(np.array(predictions) == y))
    want = float_accuracy(name)
    assert accuracy >= want - 0.005, (name, accuracy, want)


@pytest.mark.parametrize("name", MODELS)
def test_float_graph_matches_litert_float(name):
    """The importers and the float kernels: LiteRT running the float model gives what
    edgecnn's float graph computes."""
    x, _, _ = split()
    original = open(onnx_path(name), "rb").read()
    graph = load_float_graph(original)
    samples = x[:20].transpose(0, 2, 3, 1)
    ours = float_ops.run(graph, [samples], keep=False)[graph.outputs[0]]
    # TensorFlow's float file as it is; an ONNX graph as edgecnn writes it in float
    float_file = original if name == "digits_keras" else write_graph(graph)
    for k in range(len(samples)):
        (theirs,) = run_oracle("litert-ref", float_file, [samples[k:k + 1]])
        np.testing.assert_allclose(ours[k:k + 1], theirs, rtol=1e-4, atol=1e-5)


CASES = [(m, "int8") for m in MODELS] + [("digits_dscnn", "uint8"), ("digits_dscnn", "float"),
                                          ("digits_mixed", "float"), ("digits_keras", "uint8")]


@pytest.mark.parametrize("profile", ["tflm", "litert-ref", "xnnpack"])
@pytest.mark.parametrize("name,io", CASES)
def test_written_file_matches_the_oracles_byte_for_byte(name, io, profile):
    x, _, _ = split()
    data = quantized(name, io=io).tflite
    model = edgecnn.load(data, profile=profile)
    for sample in as_input(model, x[:40]):
        (want,) = run_oracle(profile, data, [sample])
        got = model.run(sample)
        assert_bitexact(got, want, f"{name} io={io} {profile} core")
        assert_bitexact(model.run(sample, backend="reference"), want,
                        f"{name} io={io} {profile} reference")


def test_spec_constraints_in_the_written_file():
    graph = edgecnn.load(quantized("digits_mixed").tflite).qgraph
    tensors = graph.tensors
    for node in graph.nodes:
        x, y = tensors[node.inputs[0]], tensors[node.outputs[0]]
        if node.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "CONCATENATION"):
            for t in node.inputs:
                assert (tensors[t].scales, tensors[t].zero_points) == (y.scales, y.zero_points)
        if node.op == "LOGISTIC":
            assert (y.scale, y.zero_point) == (float(np.float32(1 / 256)), -128)
        if node.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            p = node.params
            assert np.abs(p.weights.astype(int)).max() <= 127       # symmetric, never -128
    softmax = edgecnn.load(quantized("digits_dscnn").tflite).qgraph
    out = softmax.tensors[softmax.outputs[0]]
    assert (out.scale, out.zero_point) == (float(np.float32(1 / 256)), -128)


def test_weights_and_biases_follow_the_spec():
    from edgecnn.importer.tflite import load_graph
    graph = load_graph(quantized("digits_dscnn").tflite)
    per_tensor = load_graph(quantized("digits_dscnn", per_tensor=True).tflite)
    for g, per_channel in ((graph, True), (per_tensor, False)):
        for node in g.nodes:
            if node.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                continue
            x, w, b = (g.tensors[i] for i in node.inputs)
            axis = 3 if node.op == "DEPTHWISE_CONV_2D" else 0
            assert len(w.scales) == (w.shape[axis] if per_channel else 1)
            assert set(w.zero_points) == {0} and w.data.min() >= -127
            if per_channel:   # each channel uses its full range
                peaks = np.abs(np.moveaxis(w.data, axis, 0).reshape(w.shape[axis], -1)).max(1)
                assert np.all((peaks == 127) | (peaks == 0))
            want = np.float32(x.scale) * np.asarray(w.scales, np.float32)
            assert np.array_equal(np.asarray(b.scales, np.float32), want)
            assert b.dtype == "int32" and set(b.zero_points) == {0}


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_other_range_methods_keep_accuracy(method):
    x, y, _ = split()
    model = edgecnn.load(quantized("digits_dscnn", method=method).tflite)
    accuracy = np.mean([int(np.argmax(model.run(s))) for s in as_input(model, x)] == y)
    want = manifest()["models"]["digits_dscnn.onnx"]["float_test_accuracy"]
    assert accuracy >= want - 0.01, (method, accuracy, want)


def test_report_names_every_tensor_with_its_sqnr():
    result = quantized("digits_dscnn")
    names = [r.name for r in result.report]
    assert "image" in names and "scores" in names
    for r in result.report:
        assert r.low <= 0.0 <= r.high and r.scale > 0
        assert r.sqnr_db > 15, r     # every layer well above noise on this small model
    text = result.format_report()
    assert "SQNR" in text and "scores" in text


def test_activation_qparams_make_zero_exact_and_cover_the_range():
    for low, high in ((-1.0, 1.0), (0.0, 6.0), (-0.3, 5.1), (0.2, 0.9), (-4.0, -1.0)):
        scale, zp = ranges.activation_qparams(low, high)
        assert -128 <= zp <= 127
        assert scale * (-128 - zp) <= min(low, 0.0) + scale / 2
        assert scale * (127 - zp) >= max(high, 0.0) - scale / 2
    assert ranges.activation_qparams(0.0, 6.0)[1] == -128       # ReLU: all codes >= 0


def test_percentile_clips_outliers_and_mse_picks_a_smaller_range():
    observer = ranges.RangeObserver()
    values = np.random.default_rng(0).normal(size=100_000).astype(np.float32)
    values[0] = 100.0
    observer.observe(values)
    assert ranges.choose_range(observer, "minmax")[1] == 100.0
    assert ranges.choose_range(observer, "percentile")[1] < 10.0
    assert ranges.choose_range(observer, "mse")[1] < 100.0


def test_cli_quantize_then_run_inspect_export(tmp_path):
    out = tmp_path / "dscnn_int8.tflite"
    npz = tmp_path / "calibration.npz"
    _, _, calibration = split()
    np.savez(npz, x=calibration[:20])
    result = edgecnn_cli("quantize", onnx_path("digits_dscnn"), "-o", str(out),
                         "--calibration", str(npz), "--io", "uint8", check=True)
    assert "SQNR" in result.stdout and out.exists()
    images = os.path.join(ROOT, "examples", "digits", "testset")
    ran = edgecnn_cli("run", str(out), images, "--labels",
                      os.path.join(ROOT, "examples", "digits", "labels.txt"), check=True)
    assert "accuracy" in ran.stdout
    edgecnn_cli("inspect", str(out), check=True)
    edgecnn_cli("export", str(out), "-o", str(tmp_path / "c"), check=True)
    # calibration from the image folder, preprocessed as `run` does
    edgecnn_cli("quantize", onnx_path("digits_dscnn"), "-o", str(tmp_path / "img.tflite"),
                "--calibration", images, "--samples", "30", check=True)


def test_unsupported_onnx_op_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    node = helper.make_node("Tanh", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "tanh.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    npz = tmp_path / "c.npz"
    np.savez(npz, x=np.zeros((2, 4), np.float32))
    assert_one_line_error(edgecnn_cli("quantize", str(path), "-o", str(tmp_path / "o.tflite"),
                                      "--calibration", str(npz)),
                          "unsupported", "Tanh is not supported")
    with pytest.raises(edgecnn.UnsupportedOpError):
        edgecnn.quantize(str(path), np.zeros((2, 4), np.float32))


def test_already_quantized_model_is_refused():
    with pytest.raises(edgecnn.UnsupportedOpError, match="already quantized"):
        edgecnn.quantize(os.path.join(ROOT, "examples", "digits", "digits_int8.tflite"),
                         np.zeros((1, 8, 8, 1), np.float32))


def test_float_tflite_input_quantizes_like_the_onnx_it_came_from():
    """The float .tflite path: the ONNX graph written as a float .tflite and quantized
    gives the same int8 tensors as quantizing the ONNX file."""
    from edgecnn.importer.tflite import load_graph
    _, _, calibration = split()
    graph = load_float_graph(open(onnx_path("digits_mixed"), "rb").read())
    from_tflite = edgecnn.quantize(write_graph(graph), calibration[:CALIBRATION].transpose(0, 2, 3, 1),
                                   report_samples=0).tflite
    a, b = load_graph(quantized("digits_mixed").tflite), load_graph(from_tflite)
    assert len(a.tensors) == len(b.tensors) and [n.op for n in a.nodes] == [n.op for n in b.nodes]
    for ta, tb in zip(a.tensors, b.tensors):
        assert (ta.shape, ta.dtype, ta.scales, ta.zero_points) == (tb.shape, tb.dtype, tb.scales,
                                                                   tb.zero_points), ta.name
        assert (ta.data is None) == (tb.data is None)
        if ta.data is not None:
            assert np.array_equal(ta.data, tb.data), ta.name


def test_resnet_stem_against_pytorch_and_the_oracles():
    """Padding PyTorch writes explicitly (7x7/2 conv with padding 3, maxpool(3, 2, 1)),
    BatchNorm, Hardsigmoid, AdaptiveAvgPool and x.view(n, -1): the float graph equals
    PyTorch's outputs, the int8 model stays close to them, and the oracles agree."""
    path = os.path.join(FLOAT, "resnet_stem.onnx")
    with np.load(os.path.join(FLOAT, "resnet_stem.npz")) as data:
        x, want = data["x"], data["y"]
    graph = load_float_graph(open(path, "rb").read())
    ours = float_ops.run(graph, [x.transpose(0, 2, 3, 1)], keep=False)[graph.outputs[0]]
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-5)
    data = edgecnn.quantize(path, x, report_samples=0).tflite
    for profile in ("tflm", "litert-ref"):
        model = edgecnn.load(data, profile=profile)
        out = model.outputs[0]
        got = []
        for sample in as_input(model, x):
            (oracle,) = run_oracle(profile, data, [sample])
            y = model.run(sample)
            assert_bitexact(y, oracle, f"resnet_stem {profile}")
            got.append((y.astype(np.float64) - out.zero_point) * out.scale)
        got = np.concatenate(got)
        sqnr = 10 * np.log10(np.sum(want.astype(np.float64) ** 2) / np.sum((got - want) ** 2))
        assert sqnr > 30, sqnr


def _onnx_model(nodes, inputs, outputs, initializers, opset):
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                            else np.int64), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _small_graphs():
    from onnx import helper
    rng = np.random.default_rng(3)
    yield "hardswish as x * HardSigmoid(x) (opset 11)", _onnx_model(
        [helper.make_node("HardSigmoid", ["x"], ["g"], alpha=1 / 6, beta=0.5),
         helper.make_node("Mul", ["x", "g"], ["y"])], [("x", [1, 3, 4, 4])], ["y"], {}, 11), \
        "HARD_SWISH"
    yield "transpose to NHWC, reshape, gemm", _onnx_model(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
         helper.make_node("Reshape", ["t", "shape"], ["r"]),
         helper.make_node("Gemm", ["r", "w", "b"], ["y"], transB=1)],
        [("x", [1, 2, 3, 4])], ["y"],
        {"shape": np.array([1, 24]), "w": rng.normal(size=(5, 24)), "b": rng.normal(size=5)}, 13), \
        "FULLY_CONNECTED"
    yield "asymmetric conv padding, average pool counting the padding", _onnx_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[2, 0, 1, 1], strides=[2, 1]),
         helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          count_include_pad=1)],
        [("x", [1, 2, 7, 6])], ["y"], {"w": rng.normal(size=(3, 2, 3, 3))}, 13), "PAD"


def _normalization_graph():
    """(x - mean) / std at the input (an ADD, a 1x1 depthwise), a conv whose output is
    scaled and shifted per channel (both folded into it), then Relu."""
    from onnx import helper
    rng = np.random.default_rng(4)
    return _onnx_model(
        [helper.make_node("Sub", ["x", "mean"], ["s"]),
         helper.make_node("Div", ["s", "std"], ["d"]),
         helper.make_node("Conv", ["d", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Mul", ["c", "gain"], ["m"]),
         helper.make_node("Add", ["m", "offset"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])],
        [("x", [1, 3, 5, 5])], ["y"],
        {"mean": np.array([0.4, 0.5, 0.6]).reshape(3, 1, 1), "std": np.array([0.2, 0.25, 0.3]).reshape(1, 3, 1, 1),
         "w": rng.normal(size=(4, 3, 3, 3)), "gain": rng.uniform(0.5, 2, (1, 4, 1, 1)),
         "offset": rng.normal(size=(4, 1, 1))}, 13)


@pytest.mark.parametrize("case", range(4))
def test_small_onnx_graphs_against_onnx_reference_evaluator(case, tmp_path):
    """ONNX's own reference evaluator judges the import (layouts, padding, patterns)."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    what, model, op = (list(_small_graphs()) + [("normalization", _normalization_graph(),
                                                  "DEPTHWISE_CONV_2D")])[case]
    data = model.SerializeToString()
    x = np.random.default_rng(case).normal(size=[d.dim_value for d in
                                                 model.graph.input[0].type.tensor_type.shape.dim])
    x = x.astype(np.float32)
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    graph = load_float_graph(data)
    assert op in [n.op for n in graph.nodes], what
    ours = float_ops.run(graph, [x.transpose(0, 2, 3, 1) if x.ndim == 4 else x])[graph.outputs[0]]
    if ours.ndim == 4:
        ours = ours.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5, err_msg=what)
    edgecnn.load(edgecnn.quantize(data, x, report_samples=0).tflite)   # loads as int8


def test_onnx_without_the_onnx_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)   # as if not installed
    with pytest.raises(edgecnn.EdgecnnError, match=r"pip install edgecnn\[onnx\]"):
        edgecnn.quantize(onnx_path("digits_dscnn"), np.zeros((1, 1, 8, 8), np.float32))


def test_cli_calibration_that_does_not_fit_is_one_line(tmp_path):
    npz = tmp_path / "wrong.npz"
    np.savez(npz, x=np.zeros((4, 5, 5, 1), np.float32))
    assert_one_line_error(edgecnn_cli("quantize", onnx_path("digits_dscnn"), "-o",
                                      str(tmp_path / "o.tflite"), "--calibration", str(npz)),
                          "do not fit the model input")


def test_cli_json_report(tmp_path):
    npz = tmp_path / "c.npz"
    np.savez(npz, x=split()[2][:8])
    result = edgecnn_cli("quantize", onnx_path("digits_mixed"), "-o", str(tmp_path / "o.tflite"),
                         "--calibration", str(npz), "--method", "mse", "--json", check=True)
    report = json.loads(result.stdout)
    assert report["samples"] == 8 and {t["op"] for t in report["tensors"]} >= {"LOGISTIC", "CONCATENATION"}
