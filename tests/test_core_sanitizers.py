"""The Cython core built with AddressSanitizer and UndefinedBehaviorSanitizer.

The core's SIMD kernels read whole vectors past the data they need (into padding,
slack and zero weights) and rely on wrap-around int32 arithmetic; this builds the
extension with -fsanitize=address,undefined into a private directory and runs every
committed model through it under every profile and instruction set, with one and
two threads, comparing with the reference. Any out-of-bounds access to the arena,
a weight or parameter array, or any undefined behaviour aborts the run.
"""

import os
import shutil
import subprocess
import sys

import pytest

from oracles import ROOT

FUZZ_SECONDS = 30
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

CHECK = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])          # tests/: oracles.py
import edgecnn
from edgecnn import _core
from oracles import all_models, random_input, read
assert edgecnn.__file__.startswith(sys.argv[2]), edgecnn.__file__   # the sanitized build
isas = _core.supported_isas()
runs = 0
for isa in isas:
    _core.set_isa(isa)
    for path in all_models():
        for profile in ("tflm", "litert-ref", "xnnpack"):
            model = edgecnn.load(read(path), profile=profile)
            rng = np.random.default_rng(runs)
            x = [random_input(info, rng) for info in model.inputs]
            want = model.run(x, backend="reference")
            for threads in (1, 2):
                got = model.run(x, backend="core", num_threads=threads)
                for g, w in zip(got if isinstance(got, list) else [got],
                                want if isinstance(want, list) else [want]):
                    assert np.array_equal(g, w), (path, profile, isa, threads)
                runs += 1
print("sanitized runs", runs)
"""


def _runtime_library(name: str) -> str | None:
    out = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
    path = out.stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_core_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    asan, ubsan = _runtime_library("libasan.so"), _runtime_library("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc has no sanitizer runtimes here")
    # A clean copy of the sources: an in-tree build would reuse unsanitized objects.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "*.egg-info", "_core.c", "__pycache__", ".hypothesis"))
    site = tmp_path / "site"
    env = dict(os.environ, CFLAGS=SANITIZE, LDFLAGS="-fsanitize=address,undefined")
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-build-isolation", "--target", str(site), str(source)],
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    [extension] = (site / "edgecnn").glob("_core*.so")
    assert b"__asan_" in extension.read_bytes() and b"__ubsan_" in extension.read_bytes()
    env = dict(os.environ, LD_PRELOAD=f"{asan} {ubsan}", ASAN_OPTIONS="detect_leaks=0",
               PYTHONPATH=str(site))
    env.pop("EDGECNN_ISA", None)
    run = subprocess.run([sys.executable, "-c", CHECK, os.path.join(ROOT, "tests"), str(site)],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-6000:])
    assert "sanitized runs" in run.stdout
    # Hostile models on the sanitized core too: a short run of the fuzzer (tools/fuzz.py).
    fuzz = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "fuzz.py"),
                           "--seconds", str(FUZZ_SECONDS), "--seed", "7", "--report-every",
                           "1000"], env=dict(env, EDGECNN_FUZZ_SANITIZED="1"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert fuzz.returncode == 0 and "findings 0" in fuzz.stdout, \
        (fuzz.stdout[-3000:], fuzz.stderr[-6000:])
