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
