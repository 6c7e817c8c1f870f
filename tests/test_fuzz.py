"""A short run of the fuzzer (tools/fuzz.py) in CI: hostile mutants of every committed
model through load, the reference and the core on every ISA level of this CPU, with
zero crashes, hangs, non-EdgecnnError exceptions, unchecked errors or mismatches.
The long mode (a million executions) is described in the README."""

import os
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
