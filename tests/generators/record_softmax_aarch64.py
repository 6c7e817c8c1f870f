"""Dev-only: record LiteRT's int8 SOFTMAX outputs on aarch64 as golden data.

Run under an aarch64 Python that has LiteRT's aarch64 wheel (a Raspberry Pi with 64-bit OS,
or the emulated one of .ci/arm-python.sh), from the repository root:

    EMU_CPU=cortex-a72 $H/venv-arm64/bin/python-qemu tests/generators/record_softmax_aarch64.py

Writes tests/data/softmax_litert_aarch64.npz: for each case of tests/softmax_cases.py, its
inputs and LiteRT's outputs under the default resolver (XNNPACK), BUILTIN_WITHOUT_DEFAULT_DELEGATES
and BUILTIN_REF (not for rows longer than 300: LiteRT 2.x's BUILTIN_REF SOFTMAX aborts the
process on some of them, on x86-64 as well), plus a provenance record (LiteRT version, machine, CPU, libc, command). The
recorded bytes come from LiteRT only, never from edgecnn. It refuses to run elsewhere than
aarch64 (LiteRT's x86-64 SOFTMAX is a different kernel) and checks that every resolver's
output is the same on a second run.
"""

import datetime
import json
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from softmax_cases import SEED, cases, inputs, model_bytes  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "softmax_litert_aarch64.npz")
RESOLVERS = ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF")


def run(data: bytes, resolver: str, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=data, num_threads=1,
                         experimental_op_resolver_type=getattr(OpResolverType, resolver))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]), copy=True)


def main() -> None:
    if platform.machine() != "aarch64":
        sys.exit(f"run this on aarch64 (this is {platform.machine()})")
    from importlib.metadata import version
    arrays = {}
    for k, case in enumerate(cases()):
        data = model_bytes(case)
        xs = inputs(case, k)
        arrays[f"case{k}_input"] = np.stack(xs)
        for resolver in RESOLVERS:
            if resolver == "BUILTIN_REF" and case["depth"] > 300:
                continue   # LiteRT aborts (SIGABRT) here, on x86-64 too: not recorded
            outs = [run(data, resolver, x) for x in xs]
            again = [run(data, resolver, x) for x in xs]
            assert all(np.array_equal(a, b) for a, b in zip(outs, again)), (k, resolver)
            arrays[f"case{k}_{resolver}"] = np.stack(outs)
    provenance = {
        "what": "LiteRT's outputs of the SOFTMAX cases of tests/softmax_cases.py (seed "
                f"{SEED}), one array per case and resolver",
        "generator": "tests/generators/record_softmax_aarch64.py",
        "ai-edge-litert": version("ai-edge-litert"), "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()),
        "emulated_cpu": os.environ.get("EMU_CPU", "(not emulated, or qemu's default)"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, provenance=np.array(json.dumps(provenance)), **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", json.dumps(provenance, indent=1))


if __name__ == "__main__":
    main()
