"""Scripts written for tflite_runtime run unmodified on edgecnn and print what LiteRT prints.

Two scripts of our own in tests/scripts/ use every API that TensorFlow's
label_image.py and pycoral's classify_image.py use (set_tensor/get_tensor, and
tensor() views). Each runs in a subprocess whose sys.path starts with a test-only
`tflite_runtime` package: tests/scripts/shim_edgecnn re-exports edgecnn.interpreter,
tests/scripts/shim_litert re-exports LiteRT's (the oracle). Their printed output,
timings aside, must be identical, under the default resolver and under BUILTIN_REF.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from oracles import ROOT

SCRIPTS = os.path.join(ROOT, "tests", "scripts")
MODELS = ["tests/models/nets/mobilenet_v1_025_96_io_uint8.tflite",
          "tests/models/nets/mobilenet_v2_035_96_io_float.tflite",
          "tests/models/nets/mobilenet_v2_035_96_io_uint8.tflite"]
TIMING = re.compile(r"^(time: .*|[0-9.]+ms)$")


@pytest.fixture(scope="module")
def images_and_labels(tmp_path_factory):
    """Four RGB pictures of different sizes (gradients, noise, a disc) and two labels."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(13)
    paths = []
    for k, (h, w) in enumerate([(120, 160), (96, 96), (200, 90), (64, 64)]):
        yy, xx = np.mgrid[0:h, 0:w]
        picture = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], -1)
        picture = picture + rng.integers(0, 60 * k + 1, picture.shape)
        picture[(yy - h // 2) ** 2 + (xx - w // 3) ** 2 < (h // 4) ** 2] = [200, 30 * k, 90]
        path = folder / f"picture{k}.png"
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB").save(path)
        paths.append(str(path))
    labels = folder / "labels.txt"
    labels.write_text("background\nobject\n")
    return paths, str(labels)


def run_script(runtime: str, script: str, *args) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(SCRIPTS, f"shim_{runtime}")] + sys.path))
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not TIMING.match(line)]
    assert lines, result.stdout
    return lines


def same_printout(script, *args):
    ours = run_script("edgecnn", script, *args)
    theirs = run_script("litert", script, *args)
    assert ours == theirs
    return ours


@pytest.mark.parametrize("resolver, model", [("AUTO", MODELS[0]), ("BUILTIN_REF", MODELS[1])])
def test_label_image_prints_what_litert_prints(resolver, model, images_and_labels):
    """A uint8-input model under the default resolver, a float-input one under BUILTIN_REF."""
    images, labels = images_and_labels
    printed = same_printout("label_image.py", "-m", os.path.join(ROOT, model), "-l", labels,
                            "-i", *images, "--resolver", resolver, "--num_threads", "1",
                            # a delegate that cannot load: both fall back to the CPU
                            "-e", "libedgetpu.so.1", "-o", "device: usb")
    assert "delegate unavailable, running on the CPU" in printed
    assert sum(line.endswith((": background", ": object")) for line in printed) == 8


@pytest.mark.parametrize("resolver", ["AUTO", "BUILTIN_REF"])
def test_pycoral_style_script_through_tensor_views_prints_what_litert_prints(
        resolver, images_and_labels):
    images, labels = images_and_labels
    printed = same_printout("classify_pycoral_style.py", "-m", os.path.join(ROOT, MODELS[2]),
                            "-l", labels, "-i", *images, "--resolver", resolver)
    assert sum(line.startswith(("background:", "object:")) for line in printed) == 8
