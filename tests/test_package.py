"""The source distribution carries the licence, the example and everything its tests need,
and those tests run from the unpacked sdist."""

import os
import subprocess
import sys
import tarfile

import pytest

from oracles import ROOT


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_sdist(sys.argv[1])", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    (archive,) = out.glob("edgecnn-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
        tar.extractall(out, filter="data")
    return out / archive.name[:-len(".tar.gz")], set(names)


def tracked_files(folder):
    result = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return set(result.stdout.split())


def test_sdist_has_the_licence_example_and_test_helpers(sdist):
    _, names = sdist
    assert {"LICENSE", "README.md", "pyproject.toml", "setup.py", "edgecnn/_core.pyx",
            "examples/digits/digits_int8.tflite", "examples/digits/labels.txt",
            "tests/conftest.py", "tests/oracles.py", "tests/vectors/tflite_runtime_2_14.npz",
            "tests/scripts/shim_edgecnn/tflite_runtime/interpreter.py"} <= names
    with open(os.path.join(ROOT, "LICENSE")) as f:
        assert "Apache License" in f.read(600)
    missing = (tracked_files("examples") | tracked_files("tests")) - names
    assert not missing, sorted(missing)[:10]
    assert not [n for n in names if n.endswith((".so", ".pyc")) or n == "edgecnn/_core.c"]


def test_the_sdists_own_tests_run(sdist):
    """Tests find their models and vectors inside the unpacked sdist (edgecnn itself is the
    installed one)."""
    root, _ = sdist
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_tflite_runtime_214.py"],
                            cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
