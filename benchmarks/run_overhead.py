"""Python overhead of one `Model.run` on a Raspberry Pi, as guest instructions under QEMU.

    bash .ci/arm-python.sh setup                   # once: the emulated arm64 Python
    python3 benchmarks/run_overhead.py [MODEL...]  # from the repository root

For each model (default: the SOFTMAX op model, the digits model and DS-CNN), the emulated
arm64 Python (EMU_CPU=cortex-a72, a Raspberry Pi 4) runs, under the instruction-counting
plugin, a loop of `model.run(x)` and a loop of the compiled program's own `run()` (the
kernels alone, called from Python), each for W warm-up calls + N calls and for the W alone:
(count(W + N) - count(W)) / N is the figure per call (README, "Counting instructions").
The overhead is the difference: checking the input, copying it into the arena, copying the
output out. Target: at most 5,000 instructions per call.

Set H to the arm-python directory (default ${TMPDIR:-/tmp}/edgecnn-arm-python).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = ["tests/models/ops/softmax.tflite", "examples/digits/digits_int8.tflite",
                  "tests/models/nets/ds_cnn.tflite"]
WARMUP, CALLS = 20, 1000
TARGET = 5000

CHILD = r"""
import sys
import numpy as np
import edgecnn
from edgecnn import core_backend
path, what, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = edgecnn.load(path)
info = model.inputs[0]
x = np.zeros(info.shape, info.dtype)
model.run(x)                                   # compiles the model once
compiled = model.qgraph.__dict__[core_backend._CACHE_ATTRIBUTE][1]
if what == "run":
    run = model.run
    for _ in range(calls):
        run(x)
else:
    run = compiled.program.run
    for _ in range(calls):
        run()
"""


def count_insns(tool: str, script: str, args: list[str]) -> int:
    # The same environment, byte for byte, for every run: its size shifts the startup cost
    # (the count file's name is the script's, fixed for the whole benchmark).
    out = script + ".insns"
    env = dict(os.environ, EMU_CPU="cortex-a72", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0", INSNS_FILE=out)
    subprocess.run([tool, script, *args], check=True, env=env, cwd=ROOT)
    line = open(out).read()
    os.unlink(out)
    match = re.search(r"insns total=(\d+)", line)
    if not match:
        raise SystemExit(f"no instruction count in {line!r}")
    return int(match.group(1))


def per_call(tool: str, script: str, path: str, what: str) -> float:
    both = count_insns(tool, script, [path, what, f"{WARMUP + CALLS:06d}"])
    warm = count_insns(tool, script, [path, what, f"{WARMUP:06d}"])   # same argv length
    return (both - warm) / CALLS


def main(argv: list[str]) -> int:
    home = os.environ.get("H") or os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                               "edgecnn-arm-python")
    tool = os.path.join(home, "bin", "count-insns")
    if not os.access(tool, os.X_OK):
        print(f"{tool} not found: run `bash .ci/arm-python.sh setup` first (or set H)")
        return 2
    models = argv or DEFAULT_MODELS
    worst = 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CHILD)
        script = f.name
    try:
        print(f"guest instructions per call, emulated Cortex-A72, {CALLS} calls after {WARMUP}")
        print(f"{'model':40s} {'Model.run':>12s} {'kernels':>12s} {'overhead':>10s} "
              f"{'vs target':>9s}")
        for path in models:
            run = per_call(tool, script, path, "run")
            kernels = per_call(tool, script, path, "kernels")
            overhead = run - kernels
            worst = max(worst, overhead)
            print(f"{os.path.basename(path):40s} {run:12.0f} {kernels:12.0f} {overhead:10.0f} "
                  f"{overhead / TARGET:8.2f}x")
    finally:
        os.unlink(script)
    print(f"worst overhead {worst:.0f} instructions per Model.run (target <= {TARGET}): "
          f"{'met' if worst <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
