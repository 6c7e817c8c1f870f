"""Instructions per inference of the exported C on an emulated Cortex-M4, per network
and per layer type, optionally side by side with Arm's CMSIS-NN on the same layers.

    python benchmarks/bench_mcu.py                       # the five committed networks
    python benchmarks/bench_mcu.py --cmsis-nn PATH       # + CMSIS-NN, outputs compared
    python benchmarks/bench_mcu.py --nets ds_cnn resnet8 --layers

Each network is exported (firmware_export), built for qemu-system-arm -M mps2-an386
with arm-none-eabi-gcc -O2 and run once on a random input under a TCG plugin that
counts executed instructions (firmware_export/templates/tools/insncount.c) with a
marker after every layer. The output must equal the Python core's byte for byte.

With --cmsis-nn PATH (a checkout of the public ARM-software/CMSIS-NN repository,
never copied into this project), the same layers, with the same weights, inputs and
requantization parameters, run through CMSIS-NN's s8 kernels in a second image
built in a temporary directory (benchmarks/cmsis_nn_harness.py); every layer's
output is compared byte for byte with edgecnn's, and the ratios
edgecnn / CMSIS-NN are printed per network and per layer type.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import edgecnn  # noqa: E402
from edgecnn.firmware_export import export  # noqa: E402
from edgecnn.tools.inspect import macs  # noqa: E402

NETS = ["mobilenet_v1_025_96", "ds_cnn", "resnet8", "fc_autoencoder", "mobilenet_v2_035_96"]
# Layer types the five networks lack (tests/generators/make_mcu_models.py): counted in the
# per-layer-type table, not in the networks' geometric mean.
LAYER_MODELS = ["mcu/dw_multiplier8_48x48", "mcu/dw_channels_48x48"]
MACHINE = {"cortex-m4": "mps2-an386", "cortex-m3": "mps2-an385", "cortex-m7": "mps2-an500"}


def layer_type(q, node) -> str:
    """The layer classes of issue 12's table."""
    p = node.params
    if node.op == "CONV_2D":
        _, kh, kw, cin = p.weights.shape
        if (kh, kw) == (1, 1):
            kind = "1x1 conv" if tuple(p.stride) == (1, 1) else "strided 1x1 conv"
            return kind + (" (<=8 in)" if cin <= 8 else "")
        return "KxK conv"
    if node.op == "DEPTHWISE_CONV_2D":
        kh, kw, _ = p.weights.shape
        if p.depth_multiplier != 1:
            return "depthwise mult>1"
        if p.weights.shape[2] % 4:
            return f"depthwise {kh}x{kw} (C%4!=0)"
        return f"depthwise {kh}x{kw}"
    return {"FULLY_CONNECTED": "FC", "AVERAGE_POOL_2D": "average pool", "ADD": "ADD",
            "SOFTMAX": "softmax", "MEAN": "MEAN", "MAX_POOL_2D": "max pool"}.get(node.op, "other")


def random_input(model, seed=1) -> np.ndarray:
    spec = model.inputs[0]
    rng = np.random.default_rng(seed)
    if spec.dtype == np.float32 or str(spec.dtype) == "float32":
        return rng.standard_normal(spec.shape).astype(np.float32)
    info = np.iinfo(spec.dtype)
    return rng.integers(info.min, info.max + 1, size=spec.shape, dtype=spec.dtype)


def build_plugin(work: str) -> str:
    plugin = os.path.join(work, "libinsncount.so")
    if not os.path.exists(plugin):
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", plugin, os.path.join(
            ROOT, "firmware_export", "templates", "tools", "insncount.c")], check=True)
    return plugin


def symbol(elf: str, name: str) -> str:
    nm = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True,
                        check=True).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return "0x" + parts[0]
    raise RuntimeError(f"{name} not in {elf}")


def count(elf: str, workdir: str, plugin: str, args: list[str], target="cortex-m4",
          begin="ec_bench_begin", end="ec_bench_end", mark="ec_bench_layer"):
    """Run `elf` under qemu with the counting plugin: (total between markers, per-mark list)."""
    log = os.path.join(workdir, "insns.txt")
    semi = ",".join(["enable=on", "target=native"] + [f"arg={a}" for a in ["demo", *args]])
    plugin_arg = (f"{plugin},begin={symbol(elf, begin)},end={symbol(elf, end)},"
                  f"mark={symbol(elf, mark)}")
    run = subprocess.run(["qemu-system-arm", "-M", MACHINE[target], "-display", "none",
                          "-monitor", "none", "-serial", "none", "-semihosting-config", semi,
                          "-kernel", elf, "-plugin", plugin_arg, "-d", "plugin", "-D", log],
                         cwd=workdir, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"{elf}: exit {run.returncode}\n{run.stdout}{run.stderr}")
    text = open(log).read()
    between = int(re.search(r"between=(\d+)", text).group(1))
    found = re.search(r"marks=([\d,]+)", text)
    marks = [int(v) for v in found.group(1).split(",")] if found else []
    return between, marks


def per_layer(marks: list[int]) -> list[int]:
    return [b - a for a, b in zip([0] + marks[:-1], marks)]


def flash_bytes(out: str) -> dict[str, int]:
    """text+data of the model object and of the runtime objects (Cortex-M4, -O2)."""
    objs = sorted(f for f in os.listdir(out) if f.endswith(".cm4.o"))
    sizes = {}
    for obj in objs:
        line = subprocess.run(["arm-none-eabi-size", os.path.join(out, obj)],
                              capture_output=True, text=True, check=True).stdout.splitlines()[1]
        text, data = (int(v) for v in line.split()[:2])
        sizes[obj] = text + data
    return sizes


def run_edgecnn(net: str, work: str, plugin: str, target="cortex-m4"):
    # a network's name, or a path under tests/models (LAYER_MODELS)
    path = os.path.join(ROOT, "tests", "models", *([] if "/" in net else ["nets"]),
                        f"{net}.tflite")
    out = os.path.join(work, net.replace("/", "_"))
    report = export(path, out, prefix="net")
    model = edgecnn.load(path)
    x = random_input(model)
    with open(os.path.join(out, "in.bin"), "wb") as f:
        f.write(x.tobytes())
    make = ["make", "-s", "-C", out, {"cortex-m4": "demo-cm4", "cortex-m3": "demo-cm3",
                                      "cortex-m7": "demo-cm7"}[target],
            "OPT=-O2 -DEC_BENCH_LAYERS"]
    subprocess.run(make, check=True, capture_output=True, text=True)
    subprocess.run(["make", "-s", "-C", out, "size"], check=True, capture_output=True)
    elf = os.path.join(out, {"cortex-m4": "demo-cm4", "cortex-m3": "demo-cm3",
                             "cortex-m7": "demo-cm7"}[target])
    total, marks = count(elf, out, plugin, ["in.bin", "out.bin"], target)
    want = np.asarray(model.run(x, backend="core")).tobytes()
    got = open(os.path.join(out, "out.bin"), "rb").read()
    if got != want:
        raise SystemExit(f"{net}: exported C on {target} differs from the core")
    q = model.qgraph
    layers = per_layer(marks)
    assert len(layers) == len(q.nodes), (len(layers), len(q.nodes))
    rows = []
    for node, insns in zip(q.nodes, layers):
        rows.append((node, layer_type(q, node), macs(node, q.tensors[node.outputs[0]].shape),
                     insns))
    return {"model": model, "input": x, "total": total, "layers": rows,
            "flash": flash_bytes(out), "arena": report.arena_size, "dir": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", nargs="*", default=NETS + LAYER_MODELS)
    ap.add_argument("--cmsis-nn", metavar="PATH", help="a CMSIS-NN source tree (not vendored)")
    ap.add_argument("--layers", action="store_true", help="print every layer")
    ap.add_argument("--target", default="cortex-m4", choices=sorted(MACHINE))
    ap.add_argument("--keep", metavar="DIR", help="build here instead of a temporary directory")
    args = ap.parse_args(argv)
    work = args.keep or tempfile.mkdtemp(prefix="bench_mcu_")
    os.makedirs(work, exist_ok=True)
    plugin = build_plugin(work)
    by_type = defaultdict(lambda: [0, 0, 0])   # type -> [macs, edgecnn insns, cmsis insns]
    net_rows = []
    ratios = []
    for net in args.nets:
        ours = run_edgecnn(net, work, plugin, args.target)
        theirs = None
        if args.cmsis_nn:
            from cmsis_nn_harness import run_cmsis_nn
            theirs = run_cmsis_nn(ours, args.cmsis_nn, os.path.join(work, net.replace("/", "_") + "_cmsis"),
                                  plugin, count, per_layer)
        total_macs = sum(r[2] for r in ours["layers"])
        if args.layers:
            print(f"\n{net}: layer, type, MACs, edgecnn insns" +
                  (", CMSIS-NN insns, ratio" if theirs else ""))
        for k, (node, kind, m, insns) in enumerate(ours["layers"]):
            entry = by_type[kind]
            entry[0] += m
            entry[1] += insns
            other = theirs["layers"][k] if theirs else None
            if other is not None:
                entry[2] += other
            if args.layers:
                line = f"  {node.index:3d} {kind:22s} {m:9d} {insns:10d}"
                if theirs:
                    line += (f" {other:10d} {insns / other:6.2f}x" if other else "          -")
                print(line)
        code = sum(v for k, v in ours["flash"].items() if not k.startswith("net_model"))
        row = [net, total_macs, ours["total"], sum(ours["flash"].values()), ours["arena"], code]
        if theirs:
            row += [theirs["total"], ours["total"] / theirs["total"], theirs["flash"],
                    theirs["kernel_code"]]
            if net in NETS:
                ratios.append(ours["total"] / theirs["total"])
        net_rows.append(row)

    print(f"\nInstructions per inference, emulated {args.target} (qemu {MACHINE[args.target]}), "
          "arm-none-eabi-gcc -O2; outputs byte-equal to the core")
    print("(flash: weights, parameters and kernel code; code: the kernels alone; CMSIS-NN's "
          "flash counts its weights, biases, multipliers, shifts and linked kernel code)")
    head = (f"{'network':22s} {'MACs':>9s} {'edgecnn':>11s} {'/MAC':>6s} {'flash B':>8s} "
            f"{'code B':>7s} {'arena B':>8s}")
    if args.cmsis_nn:
        head += f" {'CMSIS-NN':>11s} {'/MAC':>6s} {'ratio':>6s} {'flash B':>8s} {'code B':>7s}"
    print(head)
    for row in net_rows:
        line = (f"{row[0]:22s} {row[1]:9d} {row[2]:11d} {row[2] / max(row[1], 1):6.2f} "
                f"{row[3]:8d} {row[5]:7d} {row[4]:8d}")
        if args.cmsis_nn:
            line += (f" {row[6]:11d} {row[6] / max(row[1], 1):6.2f} {row[7]:5.2f}x "
                     f"{row[8]:8d} {row[9]:7d}")
        print(line)
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"geometric mean of the ratios over the five networks: {geo:.3f}x (target <= "
              "0.8x); layers CMSIS-NN has "
              "no kernel for (MEAN, RESHAPE) count edgecnn's instructions on both sides")
    print("\nBy layer type (all networks):")
    print(f"{'type':24s} {'MACs':>10s} {'edgecnn':>11s} {'/MAC':>6s}" +
          (f" {'CMSIS-NN':>11s} {'/MAC':>6s} {'ratio':>6s}" if args.cmsis_nn else ""))
    for kind in sorted(by_type):
        m, ours_i, theirs_i = by_type[kind]
        per = f"{ours_i / m:6.2f}" if m else f"{'-':>6s}"
        line = f"{kind:24s} {m:10d} {ours_i:11d} {per}"
        if args.cmsis_nn and theirs_i:
            per2 = f"{theirs_i / m:6.2f}" if m else f"{'-':>6s}"
            line += f" {theirs_i:11d} {per2} {ours_i / theirs_i:5.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
