"""`edgecnn bench MODEL...`: check outputs, then time edgecnn against LiteRT and tflite-micro.

For each model the outputs of every runner are compared first (edgecnn's
profiles against the oracle each reproduces). Then all runners are timed in
one interleaved loop (round-robin, so machine noise hits them alike) and the
median latency, GMAC/s and the ratio against each anchor are printed. The
anchors are measured in the same run: LiteRT with XNNPACK (1 and 2 threads),
LiteRT BUILTIN_REF and tflite-micro. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ..errors import EdgecnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help=".tflite models")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per runner (30)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--per-op", action="store_true",
                        help="also print the core's time per op")


def build_exported_c(data: bytes, workdir: str):
    """The model exported to C and built as a host shared library (cc -O2), called through
    ctypes: returns run(x) -> output array, or None without a C compiler. Only the tflm
    profile exports (the others requantize in floating point)."""
    import ctypes
    import glob
    import os
    import shutil
    import subprocess
    import edgecnn
    from ..firmware_export import export
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None
    export(data, workdir, prefix="bench")
    sources = [os.path.join(workdir, "bench_model.c")] + sorted(
        s for s in glob.glob(os.path.join(workdir, "ec_*.c")) if not s.endswith("ec_bench.c"))
    library = os.path.join(workdir, "libbench.so")
    subprocess.run([compiler, "-std=c99", "-O2", "-shared", "-fPIC", *sources, "-o", library,
                    "-lm"], check=True, capture_output=True)
    invoke = ctypes.CDLL(library).bench_invoke
    invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    info = edgecnn.load(data).outputs[0]

    def run(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.zeros(info.shape, info.dtype) if out is None else out
        if invoke(x.ctypes.data, out.ctypes.data) != 0:
            raise EdgecnnError("the exported model's invoke failed", "exported C")
        return out
    return run


def exported_c_runner(data: bytes, x, workdir: str):
    """(run(), output array) timing the exported C on one fixed input, or None."""
    run = build_exported_c(data, workdir)
    if run is None:
        return None
    x = np.ascontiguousarray(x)
    out = run(x)
    return (lambda: run(x, out)), out


def _runners(data: bytes, model, x, workdir: str, refused: dict):
    """name -> callable running one inference on x (already set up). An anchor that is
    not installed or refuses the model is left out and recorded in `refused`."""
    import edgecnn
    runners = {}
    core = edgecnn.load(data)
    runners["edgecnn core"] = lambda: core.run(x, backend="core")
    runners["edgecnn core 2T"] = lambda: core.run(x, backend="core", num_threads=2)
    exported = exported_c_runner(data, x, workdir)
    if exported is not None:
        run_c, c_output = exported
        run_c()
        if not np.array_equal(c_output, np.asarray(core.run(x, backend="core"))):
            raise EdgecnnError("the exported C disagrees with the core", "bench")
        runners["exported C (host)"] = run_c
    runners["edgecnn reference"] = lambda: core.run(x, backend="reference")
    for name, make in _anchors(data, x):
        try:
            runners[name] = make()
            runners[name]()
        except ImportError:
            runners.pop(name, None)
            refused[name] = "not installed"
        except Exception as exc:  # e.g. LiteRT refusing a model edgecnn runs
            runners.pop(name, None)
            refused[name] = f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:160]}"
    return runners


def _anchors(data: bytes, x):
    """(name, make) for each oracle timed as an anchor; make() -> a callable invoking it."""
    def litert(threads=1, reference=False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
        it = Interpreter(model_content=data, num_threads=threads,
                         experimental_op_resolver_type=kind)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        return it.invoke

    def micro():
        from tflite_micro.python.tflite_micro import runtime
        it = runtime.Interpreter.from_bytes(data)
        it.set_input(x, 0)
        return it.invoke
    return [("LiteRT XNNPACK 1T", lambda: litert(1)), ("LiteRT XNNPACK 2T", lambda: litert(2)),
            ("LiteRT BUILTIN_REF", lambda: litert(reference=True)), ("tflite-micro", micro)]


def _check(data: bytes, x, refused: dict) -> dict:
    """Bit-exactness of each edgecnn profile against the oracle it reproduces."""
    import edgecnn
    from .verify import PROFILE_ORACLES, Unavailable, oracle
    result = {}
    for profile, (key, name) in PROFILE_ORACLES.items():
        try:
            theirs = oracle(key, data)([x])[0]
        except Unavailable as exc:
            refused[name] = str(exc)
            continue
        ours = np.asarray(edgecnn.load(data, profile=profile).run([x], backend="core"))
        result[f"core/{profile} == {key}"] = bool(ours.shape == theirs.shape
                                                  and np.array_equal(ours, theirs))
    return result


def bench_model(path: str, rounds: int) -> dict:
    import edgecnn
    from ..model import _read_model_bytes
    from .inspect import layer_rows
    data = _read_model_bytes(path)
    model = edgecnn.load(data)
    if len(model.inputs) != 1:
        raise EdgecnnError("bench supports single-input models", path)
    info = model.inputs[0]
    rng = np.random.default_rng(0)
    if info.dtype.kind in "iu":
        lo, hi = np.iinfo(info.dtype).min, np.iinfo(info.dtype).max
        x = rng.integers(lo, hi + 1, size=info.shape).astype(info.dtype)
    else:
        x = rng.uniform(-1, 1, size=info.shape).astype(info.dtype)
    refused = {}  # oracle -> why it could not be checked or timed
    checks = _check(data, x, refused)
    macs = sum(r["macs"] for r in layer_rows(model))
    import tempfile
    workdir = tempfile.mkdtemp(prefix="edgecnn-bench-")
    runners = _runners(data, model, x, workdir, refused)
    if "exported C (host)" in runners:
        checks["exported C == core"] = True   # _runners raised otherwise
    for run in runners.values():  # warm up (and compile the core)
        run()
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            if name in ("edgecnn reference", "LiteRT BUILTIN_REF", "tflite-micro",
                        "exported C (host)") and len(samples[name]) >= max(5, rounds // 3):
                continue  # slow by design; a few rounds are enough
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    median = {name: float(np.median(s)) for name, s in samples.items()}
    return {"model": path, "macs": macs, "checks": checks, "unavailable": refused, "median_ms":
            {k: v * 1e3 for k, v in median.items()},
            "gmacs": {k: macs / v / 1e9 for k, v in median.items()}}


def print_report(report: dict) -> None:
    print(f"{report['model']}: {report['macs']:,} MACs; checks: " +
          ", ".join(f"{k} {'OK' if v else 'DIFFERS'}" for k, v in report["checks"].items()))
    anchors = [a for a in ("LiteRT XNNPACK 1T", "LiteRT XNNPACK 2T", "tflite-micro")
               if a in report["median_ms"]]
    header = f"  {'runner':<20} {'median ms':>10} {'GMAC/s':>8}" + "".join(
        f" {'/ ' + a:>22}" for a in anchors)
    for name, why in report["unavailable"].items():
        print(f"  {name}: not checked or timed: {why}")
    print(header)
    for name, ms in report["median_ms"].items():
        ratios = "".join(f" {ms / report['median_ms'][a]:>21.2f}x" for a in anchors)
        print(f"  {name:<20} {ms:>10.3f} {report['gmacs'][name]:>8.2f}{ratios}")


def main(args: argparse.Namespace) -> int:
    reports = [bench_model(path, args.rounds) for path in args.models]
    if args.json:
        print(json.dumps(reports, indent=1))
        return 0
    from .. import core_backend
    print(f"edgecnn core kernels: {core_backend.instruction_set()}")
    for report in reports:
        print_report(report)
        if args.per_op:
            _print_per_op(report["model"])
    if len(reports) > 1:
        core = [r["median_ms"]["edgecnn core"] for r in reports]
        for anchor in ("LiteRT XNNPACK 1T", "tflite-micro"):
            if all(anchor in r["median_ms"] for r in reports):
                ratio = np.exp(np.mean([np.log(c / r["median_ms"][anchor])
                                        for c, r in zip(core, reports)]))
                print(f"geometric mean, edgecnn core / {anchor}: {ratio:.2f}x "
                      f"({'slower' if ratio > 1 else 'faster'}: {max(ratio, 1 / ratio):.1f}x)")
    return 0


def _print_per_op(path: str) -> None:
    import edgecnn
    from ..core_backend import CompiledModel
    model = edgecnn.load(path)
    compiled = CompiledModel(model.qgraph)
    x = np.zeros(model.inputs[0].shape, model.inputs[0].dtype)
    compiled.run([x])
    times = compiled.program.time_ops(20)
    print(f"  per op (core, {len(times)} program ops): " +
          ", ".join(f"{t * 1e6:.0f}us" for t in times))
