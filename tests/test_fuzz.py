"""A short run of the fuzzer (tools/fuzz.py) in CI: hostile mutants of every committed
model through load, the reference and the core on every ISA level of this CPU, with
zero crashes, hangs, non-EdgecnnError exceptions, unchecked errors or mismatches.
The long mode (a million executions) is described in the README."""

import importlib.util
import os
import struct
import subprocess
import sys

from oracles import ROOT

SECONDS = 60


def test_short_fuzz_run_finds_nothing(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "fuzz.py"),
                          "--seconds", str(SECONDS), "--seed", "20261130", "--out",
                          str(tmp_path), "--report-every", "1000"],
                         capture_output=True, text=True, timeout=SECONDS + 240)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "findings 0" in summary, summary
    executions = int(summary.split("done: ")[1].split()[0])
    compared = int(summary.split(" compared core")[0].split()[-1])
    assert executions >= 200 and compared >= 50, summary


def test_a_float_field_scaled_beyond_float32_is_written_as_infinity():
    """A mutation that scales a float32 field past 3.4e38 writes inf (it used to raise
    OverflowError in the worker and, regenerating the mutant to record it, in the
    supervisor: the campaign stopped)."""
    spec = importlib.util.spec_from_file_location("fuzz_tool", os.path.join(ROOT, "tools", "fuzz.py"))
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz   # (dataclasses look their module up)
    spec.loader.exec_module(fuzz)
    data = bytearray(8)
    for k, value in enumerate((3e38 * 2.0**40, -1e300)):
        fuzz._write(data, fuzz.Field(4 * k, "f32", "scale"), value)
    assert struct.unpack("<2f", data) == (float("inf"), float("-inf"))
