"""The `edgecnn` console script: help for every command, one-line errors, exit codes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from oracles import ROOT

DIGITS = os.path.join(ROOT, "examples", "digits")
MODEL = os.path.join(DIGITS, "digits_int8.tflite")
LABELS = os.path.join(DIGITS, "labels.txt")


def edgecnn(*args, check=False):
    result = subprocess.run([sys.executable, "-m", "edgecnn.tools.cli", *args],
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result, *fragments):
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgecnn: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command", ["run", "inspect", "verify"])
def test_every_command_has_help(command):
    result = edgecnn(command, "--help", check=True)
    assert "usage: edgecnn " + command in result.stdout


def test_missing_model_file(tmp_path):
    assert_one_line_error(edgecnn("run", str(tmp_path / "nope.tflite"), str(tmp_path)),
                          "cannot read model file")


def test_missing_image(tmp_path):
    assert_one_line_error(edgecnn("run", MODEL, str(tmp_path / "nope.png")), "no such file")


def test_non_image_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    assert_one_line_error(edgecnn("run", MODEL, str(bad)), "not an image")


def test_unsupported_image_mode(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.zeros((8, 8), np.float32), mode="F").save(path)
    assert_one_line_error(edgecnn("run", MODEL, str(path)), "mode 'F' is not supported")


def test_model_it_cannot_run(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    assert_one_line_error(edgecnn("run", str(bad), str(tmp_path)), "TFL3")


def test_labels_length_mismatch(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    assert_one_line_error(edgecnn("run", MODEL, str(image), "--labels", str(labels)),
                          "2 labels but the model has 10 outputs")


def test_inspect_json_totals():
    result = edgecnn("inspect", MODEL, "--json", check=True)
    report = json.loads(result.stdout)
    assert report["totals"]["macs"] == sum(layer["macs"] for layer in report["layers"])
    assert report["totals"]["arena_bytes"] >= report["totals"]["arena_lower_bound"] > 0


@pytest.mark.parametrize("command", ["export", "bench"])
def test_export_and_bench_have_help(command):
    result = edgecnn(command, "--help", check=True)
    assert "usage: edgecnn " + command in result.stdout


@pytest.mark.parametrize("variant", ["int8", "uint8", "float"])
def test_run_matches_litert_top1_and_accuracy_on_the_digits_testset(variant):
    """`edgecnn run` on the bundled test folder: same top-1 per image as LiteRT (default
    XNNPACK path and BUILTIN_REF) on the same preprocessed input, so the same accuracy."""
    from oracles import require_litert
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from edgecnn.tools.images import fit_to_input, load_image, to_input_tensor
    model_path = os.path.join(DIGITS, f"digits_{variant}.tflite")
    result = edgecnn("run", model_path, os.path.join(DIGITS, "testset"), "--labels", LABELS,
                     "--json", "--top", "1", check=True)
    report = json.loads(result.stdout)
    info = edgecnn_model_input(model_path)
    for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_REF):
        interp = Interpreter(model_path=model_path, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
        detail = interp.get_input_details()[0]
        correct = 0
        for item in report["results"]:
            pixels = fit_to_input(load_image(item["image"]), 8, 8, 1)
            interp.set_tensor(detail["index"], to_input_tensor(pixels, info, 0.0, 255.0))
            interp.invoke()
            top1 = int(np.argmax(interp.get_tensor(interp.get_output_details()[0]["index"])))
            assert item["top"][0]["index"] == top1, item["image"]
            correct += str(top1) == item["truth"]
        assert report["summary"]["accuracy"] == correct / len(report["results"])
    assert report["summary"]["images"] == 200 and report["summary"]["accuracy"] > 0.9


def edgecnn_model_input(path):
    import edgecnn as package
    return package.load(path).inputs[0]


def test_verify_matrix_includes_every_backend_and_oracle():
    from oracles import TFLM_MISSING, have_tflm
    if not have_tflm():
        pytest.skip(TFLM_MISSING)
    result = edgecnn("verify", os.path.join(ROOT, "tests/models/ops/conv_3x3_s2_same.tflite"),
                     "--inputs", "2", "--json", check=True)
    matrix = json.loads(result.stdout)["matrix"]
    names = set(matrix)
    assert {"reference/tflm", "core/tflm", "core/litert-ref", "core/xnnpack", "tflite-micro",
            "litert-ref", "litert-xnnpack", "exported-C/tflm"} <= names
    # each profile equals its own oracle, and the exported C equals the core
    assert matrix["core/tflm"]["tflite-micro"] == "equal"
    assert matrix["core/litert-ref"]["litert-ref"] == "equal"
    assert matrix["core/xnnpack"]["litert-xnnpack"] == "equal"
    assert matrix["exported-C/tflm"]["core/tflm"] == "equal"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "L", "1"])
def test_run_converts_common_image_modes_to_the_models_channels(tmp_path, mode):
    """Grey, palette, RGBA, CMYK and 1-bit images feed a 3-channel model (and grey ones)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8), "RGB")
    path = tmp_path / f"picture.{'jpg' if mode in ('RGB', 'L', 'CMYK') else 'png'}"
    rgb.convert(mode).save(path)
    for model in ("tests/models/nets/mobilenet_v1_025_96_io_uint8.tflite",
                  "examples/digits/digits_float.tflite"):
        result = edgecnn("run", os.path.join(ROOT, model), str(path), "--json", "--top", "2",
                         "--center-crop", "0.8", check=True)
        top = json.loads(result.stdout)["results"][0]["top"]
        assert len(top) == 2 and top[0]["score"] >= top[1]["score"]


@pytest.mark.parametrize("command", ["inspect", "verify", "export", "bench"])
def test_every_command_gives_one_line_errors(tmp_path, command):
    extra = ["-o", str(tmp_path / "out")] if command == "export" else []
    assert_one_line_error(edgecnn(command, str(tmp_path / "missing.tflite"), *extra),
                          "cannot read model file")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)
    assert_one_line_error(edgecnn(command, str(bad), *extra))
