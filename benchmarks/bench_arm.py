"""Instructions per inference on an emulated Raspberry Pi: the core, LiteRT's XNNPACK and the
exported C, counted under qemu-aarch64 with the project's TCG plugin.

    python benchmarks/bench_arm.py [--arm-python DIR] [--runs N] [MODEL...]
    python benchmarks/bench_arm.py --per-op MODEL...     # per layer, core neon and dotprod

DIR is an arm64 Python made by ../shared/embedded/arm-python/setup.sh (default
$EDGECNN_ARM_PYTHON, else ${TMPDIR:-/tmp}/edgecnn-arm-python) with this checkout built into
it. For each model (default: the five MLPerf-Tiny-shaped networks of benchmarks/bench.py):

- core, Pi 4 kernels (`neon`) and LiteRT 1 thread (XNNPACK) on an emulated Cortex-A72;
- core, Pi 5 kernels (`dotprod`, SDOT) and LiteRT on an emulated Cortex-A76;
  the core runs the `xnnpack` profile (LiteRT's default path) and is timed as its C call
  (Program.run), LiteRT as Interpreter.invoke;
- the exported C (`make aarch64`, the `tflm` profile, the only one it exports) between its
  ec_bench_begin/ec_bench_end markers, built for a Cortex-A72 (NEON) next to the core's
  `neon` kernels on the same profile, and for a Cortex-A76 (A64_CPU=cortex-a76: SDOT) next to
  the core's `dotprod` kernels.

A Python figure is the difference of two runs of the same process (W warm-up inferences,
then W + N), divided by N; the counts are guest instructions, not cycles (one SDOT is 16
MACs; caches are not modelled). Every core output is compared with the reference (computed
on the host) before the figures are printed; LiteRT's is reported (its int8 SOFTMAX on ARM
may differ by one, see README).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = ["mobilenet_v1_025_96", "ds_cnn", "resnet8", "fc_autoencoder", "mobilenet_v2_035_96"]
WARMUP = 20


def guest(argv: list[str]) -> int:
    """In the emulated Python: run one model `count` times (after loading it), then compare
    the last output with the expected one. Exit 3 on a core mismatch."""
    if argv[0] == "per-op":
        return guest_per_op(argv[1:])
    what, path, profile, isa, count, input_path, expected_path = argv
    x = np.load(input_path)
    expected = np.load(expected_path)
    count = int(count)
    if what == "core":
        import edgecnn
        from edgecnn import _core, core_backend
        _core.set_isa(isa)
        compiled = core_backend.CompiledModel(edgecnn.load(path, profile=profile).qgraph, 1)
        compiled.run([x])
        for _ in range(count):
            compiled.program.run()
        got = compiled.run([x])[0]
        if not np.array_equal(got, expected):
            print(f"core ({isa}, {profile}) differs from the reference on {path}: "
                  f"{int((got != expected).sum())} of {got.size} outputs", file=sys.stderr)
            return 3
        return 0
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    for _ in range(count + 1):
        interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    print("same" if np.array_equal(got, expected) else "differs")
    return 0


def guest_per_op(argv: list[str]) -> int:
    """In the emulated Python: run node `node`'s ops `count` times (count 0: none)."""
    path, profile, isa, node, count, input_path = argv
    import edgecnn
    from edgecnn import _core, core_backend
    _core.set_isa(isa)
    compiled = core_backend.CompiledModel(edgecnn.load(path, profile=profile).qgraph, 1)
    compiled.run([np.load(input_path)])
    first, stop = compiled.op_ranges[int(node)]
    for _ in range(int(count)):
        compiled.program.run_range(first, stop)
    return 0


def per_op(h: str, path: str, profile: str, runs: int) -> None:
    """Instructions per node of one model, core neon (A72) and dotprod (A76)."""
    import edgecnn
    from edgecnn.tools.inspect import macs
    model = edgecnn.load(path, profile=profile)
    q = model.qgraph
    with tempfile.TemporaryDirectory() as workdir:
        x = np.random.default_rng(0).integers(-128, 128, model.inputs[0].shape)
        x_path = os.path.join(workdir, "x.npy")
        np.save(x_path, x.astype(model.inputs[0].dtype))
        columns = {}
        for cpu, isa in (("cortex-a72", "neon"), ("cortex-a76", "dotprod")):
            base, _ = count_insns(h, cpu, ["per-op", path, profile, isa, "0", "0", x_path])
            columns[isa] = [
                (count_insns(h, cpu, ["per-op", path, profile, isa, str(k), str(runs),
                                      x_path])[0] - base) / runs for k in range(len(q.nodes))]
    print(f"{'#':>3} {'op':<20}{'MACs':>11}{'neon':>11}{'/MAC':>6}{'dotprod':>11}{'/MAC':>6}")
    for k, node in enumerate(q.nodes):
        m = macs(node, q.tensors[node.outputs[0]].shape)
        n, d = columns["neon"][k], columns["dotprod"][k]
        print(f"{k:>3} {node.op:<20}{m:>11,}{n:>11,.0f}{n / m if m else 0:>6.2f}"
              f"{d:>11,.0f}{d / m if m else 0:>6.2f}")
    print(f"    {'total':<20}{sum(macs(n, q.tensors[n.outputs[0]].shape) for n in q.nodes):>11,}"
          f"{sum(columns['neon']):>11,.0f}{'':>6}{sum(columns['dotprod']):>11,.0f}")


def count_insns(h: str, cpu: str, args: list[str]) -> tuple[int, str]:
    """Guest instructions of one emulated Python process (whole process), and its stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as counts:
        env = dict(os.environ, EMU_CPU=cpu, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONHASHSEED="0", INSNS_FILE=counts.name)
        env.pop("EDGECNN_ISA", None)
        result = subprocess.run([os.path.join(h, "bin", "count-insns"), __file__, "--guest",
                                 *args], env=env, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"bench_arm: the emulated run failed ({' '.join(args[:4])}):\n"
                             f"{result.stderr[-2000:]}")
        fields = dict(f.split("=") for f in counts.read().split() if "=" in f)
    return int(fields["total"]), result.stdout.strip()


def per_inference(h: str, cpu: str, what: str, path: str, profile: str, isa: str, runs: int,
                  files: tuple[str, str]) -> tuple[float, str]:
    """The two-runs difference: (W + N inferences) - (W inferences), over N."""
    base, _ = count_insns(h, cpu, [what, path, profile, isa, str(WARMUP), *files])
    more, out = count_insns(h, cpu, [what, path, profile, isa, str(WARMUP + runs), *files])
    return (more - base) / runs, out


def exported_c(h: str, path: str, x: np.ndarray, expected: np.ndarray, workdir: str,
               cpu: str) -> float:
    """Instructions between the markers of one inference of `make aarch64`'s binary, built
    for and run on `cpu`."""
    from edgecnn.firmware_export import export
    out_dir = os.path.join(workdir, f"export-{cpu}")
    export(path, out_dir, prefix="net")
    subprocess.run(["make", "-s", "-C", out_dir, "aarch64", f"A64_CPU={cpu}"], check=True,
                   capture_output=True)
    binary = os.path.join(out_dir, "demo-aarch64")
    symbols = subprocess.run(["aarch64-linux-gnu-nm", binary], check=True, capture_output=True,
                             text=True).stdout
    marks = {name: "0x" + addr for addr, _, name in
             (line.split() for line in symbols.splitlines() if len(line.split()) == 3)
             if name in ("ec_bench_begin", "ec_bench_end")}
    in_bin, out_bin = os.path.join(workdir, "in.bin"), os.path.join(workdir, "out.bin")
    counts = os.path.join(workdir, "insns.txt")
    x.tofile(in_bin)
    plugin = (f"{os.path.join(h, 'insncount', 'libinsncount.so')},"
              f"begin={marks['ec_bench_begin']},end={marks['ec_bench_end']}")
    subprocess.run(["qemu-aarch64", "-cpu", cpu, "-plugin", plugin, "-d", "plugin",
                    "-D", counts, binary, in_bin, out_bin], check=True)
    got = np.fromfile(out_bin, dtype=expected.dtype).reshape(expected.shape)
    if not np.array_equal(got, expected):
        raise SystemExit(f"bench_arm: the exported C differs from the reference on {path}")
    fields = dict(f.split("=") for f in open(counts).read().split() if "=" in f)
    return float(fields["between"])


def bench_model(h: str, path: str, runs: int, with_export: bool) -> dict:
    import edgecnn
    row = {}
    with tempfile.TemporaryDirectory() as workdir:
        files = {}
        x = None
        for profile in ("xnnpack", "tflm"):
            model = edgecnn.load(path, profile=profile)
            info = model.inputs[0]
            if x is None:
                x = np.random.default_rng(0).integers(-128, 128, info.shape).astype(info.dtype)
            expected = model.run(x, backend="reference")
            files[profile] = (os.path.join(workdir, "x.npy"),
                              os.path.join(workdir, f"expected-{profile}.npy"))
            np.save(files[profile][0], x)
            np.save(files[profile][1], expected)
        for cpu, isa in (("cortex-a72", "neon"), ("cortex-a76", "dotprod")):
            row[f"core {isa}"], _ = per_inference(h, cpu, "core", path, "xnnpack", isa, runs,
                                                  files["xnnpack"])
            row[f"litert {cpu}"], same = per_inference(h, cpu, "litert", path, "xnnpack", "-",
                                                       runs, files["xnnpack"])
            row[f"litert {cpu} output"] = same
        if with_export:
            for cpu, isa in (("cortex-a72", "neon"), ("cortex-a76", "dotprod")):
                row[f"core {isa} tflm"], _ = per_inference(h, cpu, "core", path, "tflm", isa,
                                                           runs, files["tflm"])
                row[f"export {isa}"] = exported_c(h, path, x, np.load(files["tflm"][1]),
                                                  workdir, cpu)
    return row


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_report(rows: dict, with_export: bool) -> None:
    head = (f"{'model':<22}{'core neon':>12}{'XNNPACK A72':>13}{'ratio':>7}"
            f"{'core dotprod':>14}{'XNNPACK A76':>13}{'ratio':>7}")
    if with_export:
        head += (f"{'core neon':>12}{'export A72':>12}{'ratio':>7}"
                 f"{'core dotprod':>14}{'export A76':>12}{'ratio':>7}")
    print("guest instructions per inference (qemu-aarch64); ratio = edgecnn / anchor "
          "(XNNPACK: the core on the xnnpack profile; export C: the core on tflm)")
    print(head)
    ratios = {"a72": [], "a76": [], "export neon": [], "export dotprod": []}
    for name, r in rows.items():
        a72 = r["core neon"] / r["litert cortex-a72"]
        a76 = r["core dotprod"] / r["litert cortex-a76"]
        ratios["a72"].append(a72)
        ratios["a76"].append(a76)
        line = (f"{name:<22}{r['core neon']:>12,.0f}{r['litert cortex-a72']:>13,.0f}{a72:>7.2f}"
                f"{r['core dotprod']:>14,.0f}{r['litert cortex-a76']:>13,.0f}{a76:>7.2f}")
        if with_export:
            for isa, width in (("neon", 12), ("dotprod", 14)):
                e = r[f"export {isa}"] / r[f"core {isa} tflm"]
                ratios[f"export {isa}"].append(e)
                core, exported = r[f"core {isa} tflm"], r[f"export {isa}"]
                line += f"{core:>{width},.0f}{exported:>12,.0f}{e:>7.2f}"
        print(line)
    line = f"{'geometric mean':<22}{'':>12}{'':>13}{geomean(ratios['a72']):>7.2f}"
    line += f"{'':>14}{'':>13}{geomean(ratios['a76']):>7.2f}"
    if with_export:
        line += f"{'':>12}{'':>12}{geomean(ratios['export neon']):>7.2f}"
        line += f"{'':>14}{'':>12}{geomean(ratios['export dotprod']):>7.2f}"
    print(line)
    for name, r in rows.items():
        if "differs" in (r["litert cortex-a72 output"], r["litert cortex-a76 output"]):
            print(f"note: LiteRT's output on {name} differs from the xnnpack profile's "
                  "(its ARM int8 SOFTMAX; the core's equals the reference)")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--guest"]:
        return guest(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--arm-python", default=os.environ.get(
        "EDGECNN_ARM_PYTHON", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                           "edgecnn-arm-python")))
    parser.add_argument("--runs", type=int, default=10, help="inferences counted (N)")
    parser.add_argument("--no-export", action="store_true", help="skip the exported C")
    parser.add_argument("--per-op", action="store_true",
                        help="instructions per layer of the core instead (xnnpack profile)")
    args = parser.parse_args(argv)
    if args.per_op:
        for path in args.models:
            per_op(args.arm_python, os.path.abspath(path), "xnnpack", args.runs)
        return 0
    models = args.models or [os.path.join(ROOT, "tests", "models", "nets", f"{n}.tflite")
                             for n in NETS]
    rows = {}
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        rows[name] = bench_model(args.arm_python, os.path.abspath(path), args.runs,
                                 not args.no_export)
        print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in rows[name].items()), file=sys.stderr)
    print_report(rows, not args.no_export)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
