"""The README's set-up, recipes and pictures work as written.

- The set-up block starts with the prerequisites and a venv, then commands 1 and 2; CI
  (.ci/run) runs command 2 verbatim.
- The raw input/output recipe, the QEMU command and the Arduino sketch are taken out of the
  README and run against a freshly exported model.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from oracles import ROOT

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    README = f.read()


def code_block_after(heading: str, language: str) -> str:
    """The first ```language block after the line that starts with `heading`."""
    start = README.index("\n" + heading)
    match = re.compile(r"```" + language + r"\n(.*?)```", re.S).search(README, start)
    assert match, heading
    return match.group(1)


def test_setup_starts_with_prerequisites_and_a_venv_and_ci_runs_command_2():
    block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert lines[0].startswith("sudo apt-get install -y build-essential python3-dev python3-venv")
    assert lines[1] == "python3 -m venv .venv && . .venv/bin/activate"
    assert lines[2].startswith("python3 -m pip install . && edgecnn run ")
    assert lines[3] == 'python3 -m pip install -e ".[test]" && python3 -m pytest -q'
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read().splitlines()
    assert lines[3] in ci  # the README's test command, verbatim
    assert any("python3 -m venv .venv" in line for line in ci)


def test_the_sections_a_user_looks_for_are_there():
    headings = re.findall(r"^#+ (.*)$", README, re.M)
    for wanted in ("Getting an int8 model", "Raspberry Pi", "The demo's input and output files",
                   "Running the Cortex-M image on QEMU", "In an Arduino sketch",
                   "In a Zephyr or STM32CubeIDE project", "Drop-in for tflite-runtime"):
        assert wanted in headings, wanted
    for text in ("**From Keras**", "**From PyTorch**", "tests/generators/make_digits_example.py",
                 "**Zephyr**", "**STM32CubeIDE**"):
        assert text in README, text
    picture = re.search(r"!\[[^\]]*\]\(([^)]+)\)", README).group(1)
    assert os.path.getsize(os.path.join(ROOT, picture)) < 60_000


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("no C compiler or make")
    out = tmp_path_factory.mktemp("digits")
    subprocess.run([sys.executable, "-m", "edgecnn.tools.cli", "export",
                    os.path.join(ROOT, "examples/digits/digits_int8.tflite"), "-o", str(out),
                    "--prefix", "digits"], check=True, capture_output=True)
    subprocess.run(["make", "-C", str(out)], check=True, capture_output=True)
    return out


def test_the_raw_input_output_recipe(exported):
    code = code_block_after("### The demo's input and output files", "python")
    code = code.replace("/tmp/digits", str(exported)).replace('"examples/', f'"{ROOT}/examples/')
    exec(compile(code, "README.md", "exec"), {})  # its assert compares with edgecnn


def test_the_qemu_command(exported):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (.ci/install-toolchains.sh installs it)")
    block = code_block_after("### Running the Cortex-M image on QEMU", "sh")
    make, qemu = [line.replace("/tmp/digits", str(exported))
                  for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    subprocess.run(make, shell=True, check=True, capture_output=True)
    import numpy as np
    np.random.default_rng(1).integers(-128, 128, (2, 64), dtype=np.int8).tofile(exported / "in.bin")
    subprocess.run([str(exported / "demo"), "in.bin", "host.bin"], cwd=exported, check=True)
    subprocess.run(qemu, shell=True, check=True, capture_output=True, timeout=120)
    assert (exported / "out.bin").read_bytes() == (exported / "host.bin").read_bytes()


def test_the_arduino_sketch_compiles_as_cpp_and_runs(exported, tmp_path):
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    sketch = tmp_path / "sketch.cpp"
    sketch.write_text("""#include <stdio.h>
struct SerialPort {
    void begin(long) {}
    void println(const char *s) { puts(s); }
    void println(unsigned v) { printf("%u\\n", v); }
} Serial;
static void delay(unsigned long) {}
""" + code_block_after("### In an Arduino sketch", "cpp") + """
int main() { setup(); loop(); return 0; }
""")
    objects = []
    for source in sorted(exported.glob("*.c")):
        if source.name in ("main.c", "ec_bench.c"):
            continue
        objects.append(tmp_path / (source.stem + ".o"))
        subprocess.run(["cc", "-std=c99", "-O2", "-c", str(source), "-o", str(objects[-1])],
                       check=True)
    program = tmp_path / "sketch"
    subprocess.run(["c++", "-Wall", "-Werror", f"-I{exported}", str(sketch), *map(str, objects),
                    "-o", str(program), "-lm"], check=True)
    printed = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"[0-9]\n", printed), printed
