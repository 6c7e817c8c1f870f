"""The `edgecnn` console script: help for every command, one-line errors, exit codes."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import oracles
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


def test_verify_gives_a_verdict_per_profile_and_counts_the_inputs():
    from edgecnn.profiles import litert_default_profile
    from oracles import TFLM_MISSING, have_tflm
    if not have_tflm():
        pytest.skip(TFLM_MISSING)
    result = edgecnn("verify", os.path.join(ROOT, "tests/models/ops/conv_3x3_s2_same.tflite"),
                     "--inputs", "30", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    verdicts = {r["profile"]: r for r in report["profiles"]}
    assert report["result"] == "PASS" and report["inputs"] == 30
    for profile in ("tflm", "litert-ref", litert_default_profile()):
        assert verdicts[profile]["verdict"] == "PASS"
        oracle_check = f"core = {verdicts[profile]['oracle']}"
        assert verdicts[profile]["checks"][oracle_check] == {"differ": 0, "compared": 30}
    assert verdicts["tflm"]["checks"]["exported C = core"] == {"differ": 0, "compared": 30}
    # tflite-runtime 2.14 cannot be installed beside numpy 2: said, not hidden
    assert verdicts["tflite-runtime-ref"]["verdict"] == "NO ORACLE"
    assert "not installed" in verdicts["tflite-runtime-ref"]["unavailable"][
        "tflite-runtime 2.14 BUILTIN_REF"]


def run_cli(capsys, *args):
    """The command in this process (so a test can stand in for an oracle)."""
    from edgecnn.tools.cli import main
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_says_which_oracles_are_missing(monkeypatch, capsys):
    # As if not installed. Every tflite_micro module must go: an import of a submodule that an
    # earlier test already loaded is served from sys.modules without looking at its parent.
    for name in [n for n in sys.modules if n.split(".")[0] == "tflite_micro"] + ["tflite_micro"]:
        monkeypatch.setitem(sys.modules, name, None)
    code, out, _ = run_cli(capsys, "verify", MODEL, "--inputs", "20")
    assert code == 0
    assert "unavailable: tflite-micro: not installed" in out
    assert re.search(r"^  tflm +NO ORACLE +reference = core, exported C = core$", out, re.M), out
    assert re.search(r"^  litert-ref +PASS ", out, re.M), out


def test_verify_default_inputs_catch_a_tie_rounding_defect(monkeypatch, capsys):
    """A runtime that rounds exact halves towards zero when it quantizes a float input (the
    kind of difference XNNPACK's QUANTIZE has) differs only on inputs that land on a tie.
    The default inputs include such ties and fail with exit 1; the old default (5 random
    inputs) passes."""
    from edgecnn.tools import verify
    real_oracle = verify.oracle
    model = os.path.join(DIGITS, "digits_float.tflite")
    scale, zero_point = verify.input_quantization(package_load(model), package_load(model).inputs[0])

    def ties_towards_zero(name, data, keep=False):
        run = real_oracle(name, data, keep)
        if name != "litert-ref":
            return run

        def defective(inputs):
            q = inputs[0].astype(np.float64) / scale
            on_tie = np.abs(q - np.trunc(q)) == 0.5
            return run([np.where(on_tie, np.trunc(q) * scale, inputs[0]).astype(np.float32)])
        return defective
    monkeypatch.setattr(verify, "oracle", ties_towards_zero)
    code, out, _ = run_cli(capsys, "verify", model)
    assert code == 1, out
    assert re.search(r"^  litert-ref +FAIL +reference = core, core = LiteRT BUILTIN_REF DIFFERS "
                     r"on \d+/200 inputs$", out, re.M), out
    assert out.rstrip().endswith("FAIL: some outputs differ")
    rng = np.random.default_rng(0)
    info = package_load(model).inputs[0]
    old_default = [[oracles.random_input(info, rng)] for _ in range(5)]
    assert verify.verify_profile(read_model(model), "litert-ref", old_default, 0)["verdict"] == "PASS"


def package_load(path):
    import edgecnn as package
    return package.load(path)


def read_model(path):
    with open(path, "rb") as f:
        return f.read()


def test_bench_reports_an_oracle_that_refuses_the_model(monkeypatch, capsys):
    """LiteRT refusing a model edgecnn runs (it does on person_detect) is reported, the rest
    of the benchmark goes on."""
    import ai_edge_litert.interpreter as litert

    class Refusing:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Didn't find op for builtin opcode 'CONV_2D' version '9'")
    monkeypatch.setattr(litert, "Interpreter", Refusing)
    code, out, err = run_cli(capsys, "bench", MODEL, "--rounds", "3")
    assert code == 0 and "Traceback" not in err
    assert "LiteRT XNNPACK 1T: not checked or timed: RuntimeError: Didn't find op" in out
    assert "LiteRT BUILTIN_REF: not checked or timed: RuntimeError: Didn't find op" in out
    assert ("LiteRT default resolver (XNNPACK): not checked or timed: refused the model "
            "(RuntimeError") in out
    assert re.search(r"^  tflite-micro +[0-9.]+ ", out, re.M), out
    assert "core/tflm == tflite-micro OK" in out


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


# -- `run` in a terminal, latency, and the one-line errors of a first hour ------------------

def screen(raw: str) -> list[str]:
    """What a terminal shows after printing `raw`: carriage returns go back to the start
    of the line, ESC[K erases to its end."""
    lines, line, col, i = [], [], 0, 0
    text = raw.replace("\r\n", "\n")
    while i < len(text):
        if text.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        char = text[i]
        if char == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif char == "\r":
            col = 0
        else:
            line[col:col + 1] = [char]
            col += 1
        i += 1
    return lines + (["".join(line)] if line else [])


def run_in_terminal(*args) -> str:
    """The command with stdout and stderr on one pseudo-terminal, as in a shell."""
    import pty
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "edgecnn.tools.cli", *args],
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0
    return b"".join(chunks).decode()


def test_run_in_a_terminal_keeps_every_prediction_on_screen():
    """The progress line is drawn on the terminal (so the test sees it) and erased before
    each prediction is printed: every image keeps its line, and the summary follows."""
    images = os.path.join(DIGITS, "images")
    raw = run_in_terminal("run", MODEL, images, "--labels", LABELS)
    assert "] 10/10" in raw  # the progress was shown
    shown = screen(raw)
    names = sorted(os.listdir(images))
    predictions = [line for line in shown if line.startswith(os.path.join(images, ""))]
    assert [line.split(":")[0] for line in predictions] == [os.path.join(images, n) for n in names]
    for name, line in zip(names, predictions):
        assert line.split(": ")[1].startswith(name[0] + " "), line  # digit files are top-1 right
    assert shown[-1].startswith("10 image(s): latency median"), shown
    assert not any("[#" in line for line in shown)  # the progress line is gone at the end


def test_run_through_a_pipe_prints_no_progress_and_separates_the_first_run():
    result = edgecnn("run", MODEL, os.path.join(DIGITS, "images"), check=True)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 11
    summary = re.fullmatch(r"10 image\(s\): latency median ([0-9.]+) ms \(first run ([0-9.]+) ms, "
                           r"which includes compiling the model\)", lines[-1])
    assert summary, lines[-1]
    report = json.loads(edgecnn("run", MODEL, os.path.join(DIGITS, "images"), "--json",
                                check=True).stdout)["summary"]
    assert report["first_run_ms"] > 0 and report["median_latency_ms"] > 0
    # every image's own latency is measured after compiling: none is the first run's
    assert set(report) >= {"first_run_ms", "median_latency_ms", "images"}


def test_run_refuses_sub_folders_that_are_not_labels(tmp_path):
    """Today's `accuracy 0/26` for photos sorted by date: now an error that says why."""
    for folder in ("2024-05", "2024-06"):
        (tmp_path / folder).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / folder / "a.png")
    assert_one_line_error(edgecnn("run", MODEL, str(tmp_path), "--labels", LABELS),
                          "'2024-05', '2024-06' are not labels of the model")


def write_png_header(path, width, height):
    """A PNG that only declares its size: enough for Pillow to refuse it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                       8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(20000, 20000), (10000, 10000)])
def test_run_refuses_a_decompression_bomb_in_one_line(tmp_path, size):
    """400 megapixels (Pillow's DecompressionBombError) and 100 (its warning)."""
    path = tmp_path / "huge.png"
    write_png_header(path, *size)
    assert_one_line_error(edgecnn("run", MODEL, str(path)), "image too large to decode safely",
                          f"{size[0] * size[1]} pixels")


@pytest.mark.parametrize("option, fragment", [
    (["--std", "0"], "--std must be a finite non-zero number"),
    (["--std", "nan"], "--std must be a finite non-zero number"),
    (["--center-crop", "0"], "--center-crop must be in (0, 1]"),
    (["--center-crop", "1.5"], "--center-crop must be in (0, 1]"),
    (["--top", "0"], "--top must be at least 1")])
def test_run_refuses_bad_options_in_one_line(option, fragment):
    assert_one_line_error(edgecnn("run", MODEL, os.path.join(DIGITS, "images"), *option), fragment)


def test_export_to_a_file_or_an_unwritable_place_is_one_line(tmp_path):
    a_file = tmp_path / "digits.c"
    a_file.write_text("")
    assert_one_line_error(edgecnn("export", MODEL, "-o", str(a_file)), "exists and is not a folder")
    assert_one_line_error(edgecnn("export", MODEL, "-o", str(a_file / "out")),
                          "cannot write the exported files")
    # /proc takes no new folders, even for root (tests may run as root, chmod would not do)
    assert_one_line_error(edgecnn("export", MODEL, "-o", "/proc/edgecnn-export"),
                          "cannot write the exported files")


def test_inspect_draws_the_memory_plan(tmp_path):
    """Every buffer is a filled box where the plan puts it: over its bytes, while live."""
    from edgecnn.planner import plan_memory
    from edgecnn.tools.plan_image import BACKGROUND, HEIGHT, WIDTH, buffer_boxes
    path = tmp_path / "plan.png"
    edgecnn("inspect", MODEL, "--plan-image", str(path), check=True)
    image = Image.open(path).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    boxes = buffer_boxes(plan_memory(package_load(MODEL).qgraph))
    assert len(boxes) >= 5
    for buf, (x0, y0, x1, y1) in boxes:
        assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) != BACKGROUND, buf.name
    # above the top of the boxes live at the last step, the plot is empty
    last = [box for buf, box in boxes if buf.last == max(b.last for b, _ in boxes)]
    x = (last[0][0] + last[0][2]) // 2
    top = min(box[1] for box in last)
    assert all(image.getpixel((x, y)) == BACKGROUND for y in range(40, top - 2)
               if not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for _, b in boxes))
    assert_one_line_error(edgecnn("inspect", MODEL, "--plan-image", "/proc/plan.png"),
                          "cannot write the plan image")
