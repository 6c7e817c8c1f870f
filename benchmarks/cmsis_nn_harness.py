"""The layers of an exported network run through Arm's CMSIS-NN, for bench_mcu.py.

Given a CMSIS-NN source tree (the public ARM-software/CMSIS-NN repository, a checkout
or a bare git clone; nothing of it is copied into this project), this writes one C
file that holds the network's weights, biases and requantization parameters as
edgecnn lowered them, and calls CMSIS-NN's s8 kernel for each layer, the way
tflite-micro's CMSIS-NN kernels do (convolve/depthwise wrappers, fully_connected,
avgpool, elementwise_add, softmax), with a marker after every layer. It is built with
the same compiler and flags as edgecnn's image (Cortex-M4, -O2) in a temporary
directory, run under the same counting plugin, and every layer's output is compared
byte for byte with edgecnn's reference. Every tensor has its own buffer (no arena
sharing: it changes nothing in the counts). Layers CMSIS-NN has no kernel for (MEAN,
RESHAPE) copy the reference output in the CMSIS-NN image and count edgecnn's own
instructions on both sides, so they do not move the ratio.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import numpy as np

CM4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
       "-ffunction-sections", "-fdata-sections", "-O2"]
SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "ADD",
             "SOFTMAX"}


def source_tree(path: str, work: str) -> str:
    """A directory with CMSIS-NN's Include/ and Source/ (extracted from a bare clone if need be)."""
    if os.path.isdir(os.path.join(path, "Include")):
        return path
    tree = os.path.join(work, "cmsis-nn-src")
    if not os.path.isdir(os.path.join(tree, "Include")):
        os.makedirs(tree, exist_ok=True)
        archive = subprocess.run(["git", "--git-dir", path, "archive", "HEAD", "Include",
                                  "Source"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return tree


def build_library(tree: str, work: str) -> str:
    lib = os.path.join(work, "libcmsisnn.a")
    if os.path.exists(lib):
        return lib
    objs = []
    sources = [s for s in glob.glob(os.path.join(tree, "Source", "*", "*.c"))
               if not re.search(r"_f(16|32)\.c$|flt", s)]
    for src in sources:
        obj = os.path.join(work, os.path.basename(src)[:-2] + ".o")
        subprocess.run(["arm-none-eabi-gcc", *CM4, "-I", os.path.join(tree, "Include"),
                        "-c", src, "-o", obj], check=True, capture_output=True)
        objs.append(obj)
    subprocess.run(["arm-none-eabi-ar", "rcs", lib, *objs], check=True)
    return lib


def _array(ctype: str, name: str, values) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)] or ["0"]
    rows = [", ".join(flat[i:i + 24]) for i in range(0, len(flat), 24)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n  " + ",\n  ".join(rows) + "\n};\n"


def _dims(n, h, w, c) -> str:
    return f"{{{n}, {h}, {w}, {c}}}"


def _shape4(shape):
    shape = list(shape)
    return [1] * (4 - len(shape)) + shape


def write_program(q, values, path: str) -> tuple[list[int], int]:
    """The C program; returns the tensors it writes (in order) and the weight bytes."""
    defs, calls = [], []
    tensors = sorted({t for n in q.nodes for t in n.inputs + n.outputs
                      if t in values and q.tensors[t].dtype == "int8"})
    const_bytes = 0
    for t in tensors:
        defs.append(f"static int8_t t{t}[{max(values[t].size, 1)}] __attribute__((aligned(4)));\n")
    scratch = []
    for k, node in enumerate(q.nodes):
        p, op = node.params, node.op
        x = q.tensors[node.inputs[0]]
        y = q.tensors[node.outputs[0]]
        xi, yi = node.inputs[0], node.outputs[0]
        name = f"op{k}"
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = op == "DEPTHWISE_CONV_2D"
            cout = y.shape[3]
            defs.append(_array("int8_t", f"{name}_w", p.weights))
            defs.append(_array("int32_t", f"{name}_b", p.bias))
            defs.append(_array("int32_t", f"{name}_m", np.broadcast_to(p.requant.multiplier, (cout,))))
            defs.append(_array("int32_t", f"{name}_s", np.broadcast_to(p.requant.shift, (cout,))))
            const_bytes += p.weights.nbytes + 4 * p.bias.size + 8 * cout
            n, h, w, c = x.shape
            kh, kw = p.weights.shape[0:2] if depthwise else p.weights.shape[1:3]
            common = (f"{{{p.stride[1]}, {p.stride[0]}}}, {{{p.padding[1]}, {p.padding[0]}}}, "
                      f"{{{p.dilation[1]}, {p.dilation[0]}}}, {{{p.activation_min}, {p.activation_max}}}")
            filt = _dims(1, kh, kw, cout) if depthwise else _dims(cout, kh, kw, c)
            if depthwise:
                params = (f"static const cmsis_nn_dw_conv_params {name}_p = {{{-p.input_zero_point}, "
                          f"{p.output_zero_point}, {p.depth_multiplier}, {common}}};\n")
                fn = "arm_depthwise_conv_wrapper_s8"
            else:
                params = (f"static const cmsis_nn_conv_params {name}_p = {{{-p.input_zero_point}, "
                          f"{p.output_zero_point}, {common}}};\n")
                fn = "arm_convolve_wrapper_s8"
            defs.append(params)
            defs.append(f"static const cmsis_nn_dims {name}_in = {_dims(n, h, w, c)}, "
                        f"{name}_f = {filt}, {name}_bd = {_dims(1, 1, 1, cout)}, "
                        f"{name}_out = {_dims(*y.shape)};\n")
            scratch.append(f"{fn}_get_buffer_size(&{name}_p, &{name}_in, &{name}_f, &{name}_out)")
            calls.append(f"{{ cmsis_nn_per_channel_quant_params qp = {{(int32_t *){name}_m, "
                         f"(int32_t *){name}_s}};\n      check({fn}(&ctx, &{name}_p, &qp, &{name}_in, "
                         f"t{xi}, &{name}_f, {name}_w, &{name}_bd, {name}_b, &{name}_out, t{yi})); }}")
        elif op == "FULLY_CONNECTED":
            out_f, in_f = p.weights.shape
            rows = int(np.prod(x.shape)) // in_f
            defs.append(_array("int8_t", f"{name}_w", p.weights))
            defs.append(_array("int32_t", f"{name}_b", p.bias))
            const_bytes += p.weights.nbytes + 4 * p.bias.size + 8
            m = np.atleast_1d(p.requant.multiplier)
            s = np.atleast_1d(p.requant.shift)
            defs.append(f"static const cmsis_nn_fc_params {name}_p = {{{-p.input_zero_point}, 0, "
                        f"{p.output_zero_point}, {{{p.activation_min}, {p.activation_max}}}}};\n")
            defs.append(f"static const cmsis_nn_dims {name}_in = {_dims(rows, 1, 1, in_f)}, "
                        f"{name}_f = {_dims(in_f, 1, 1, out_f)}, {name}_bd = {_dims(1, 1, 1, out_f)}, "
                        f"{name}_out = {_dims(rows, 1, 1, out_f)};\n")
            if np.unique(m).size == 1 and np.unique(s).size == 1:
                calls.append(f"{{ cmsis_nn_per_tensor_quant_params qp = {{{int(m[0])}, {int(s[0])}}};\n"
                             f"      check(arm_fully_connected_s8(&ctx, &{name}_p, &qp, &{name}_in, "
                             f"t{xi}, &{name}_f, {name}_w, &{name}_bd, {name}_b, &{name}_out, t{yi})); }}")
            else:
                defs.append(_array("int32_t", f"{name}_m", np.broadcast_to(m, (out_f,))))
                defs.append(_array("int32_t", f"{name}_s", np.broadcast_to(s, (out_f,))))
                calls.append(f"{{ cmsis_nn_per_channel_quant_params qp = {{(int32_t *){name}_m, "
                             f"(int32_t *){name}_s}};\n      check(arm_fully_connected_per_channel_s8("
                             f"&ctx, &{name}_p, &qp, &{name}_in, t{xi}, &{name}_f, {name}_w, "
                             f"&{name}_bd, {name}_b, &{name}_out, t{yi})); }}")
        elif op == "AVERAGE_POOL_2D":
            n, h, w, c = x.shape
            defs.append(f"static const cmsis_nn_pool_params {name}_p = {{{{{p.stride[1]}, {p.stride[0]}}}, "
                        f"{{{p.padding[1]}, {p.padding[0]}}}, {{{p.activation_min}, {p.activation_max}}}}};\n")
            defs.append(f"static const cmsis_nn_dims {name}_in = {_dims(n, h, w, c)}, "
                        f"{name}_f = {_dims(1, p.filter_size[0], p.filter_size[1], 1)}, "
                        f"{name}_out = {_dims(*y.shape)};\n")
            scratch.append(f"arm_avgpool_s8_get_buffer_size({y.shape[2]}, {c})")
            calls.append(f"check(arm_avgpool_s8(&ctx, &{name}_p, &{name}_in, t{xi}, &{name}_f, "
                         f"&{name}_out, t{yi}));")
        elif op == "ADD" and p.input2_constant is None and list(x.shape) == list(y.shape) \
                and list(q.tensors[node.inputs[1]].shape) == list(y.shape):
            calls.append(f"check(arm_elementwise_add_s8(t{xi}, t{node.inputs[1]}, "
                         f"{-p.input1_zero_point}, {p.input1_multiplier}, {p.input1_shift}, "
                         f"{-p.input2_zero_point}, {p.input2_multiplier}, {p.input2_shift}, "
                         f"{p.left_shift}, t{yi}, {p.output_zero_point}, {p.output_multiplier}, "
                         f"{p.output_shift}, {p.activation_min}, {p.activation_max}, {y.size if hasattr(y, 'size') else int(np.prod(y.shape))}));")
        elif op == "SOFTMAX":
            depth = x.shape[-1]
            calls.append(f"arm_softmax_s8(t{xi}, {int(np.prod(x.shape)) // depth}, {depth}, "
                         f"{p.input_multiplier}, {p.input_left_shift}, {p.diff_min}, t{yi});")
        else:   # no CMSIS-NN kernel: the reference's bytes (counted as edgecnn's, see above)
            defs.append(_array("int8_t", f"{name}_ref", values[yi]))
            calls.append(f"memcpy(t{yi}, {name}_ref, sizeof {name}_ref);")
        calls[-1] = calls[-1] + "\n    ec_bench_layer();"
    inp = q.inputs[0]
    scratch_expr = " , ".join(scratch) if scratch else "0"
    body = "\n    ".join(calls)
    writes = "\n    ".join(f"fwrite(t{t}, 1, sizeof t{t}, out);" for t in tensors if t != inp)
    program = f"""/* Generated by benchmarks/cmsis_nn_harness.py: the network through CMSIS-NN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_nnfunctions.h"
#include "ec_bench.h"

{''.join(defs)}
static int32_t scratch_size(void)
{{
    int32_t sizes[] = {{{scratch_expr}}};
    int32_t best = 4;
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) best = sizes[i] > best ? sizes[i] : best;
    return best;
}}

static void check(arm_cmsis_nn_status status)
{{
    if (status != ARM_CMSIS_NN_SUCCESS) {{ fprintf(stderr, "CMSIS-NN error %d\\n", (int)status); exit(3); }}
}}

int main(int argc, char **argv)
{{
    cmsis_nn_context ctx;
    FILE *in, *out;
    if (argc != 3) return 1;
    ctx.size = scratch_size();
    ctx.buf = calloc(1, (size_t)ctx.size);
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL || ctx.buf == NULL) return 1;
    if (fread(t{inp}, 1, sizeof t{inp}, in) != sizeof t{inp}) return 1;
    ec_bench_begin();
    {body}
    ec_bench_end();
    {writes}
    fclose(in);
    return fclose(out) != 0;
}}
"""
    with open(path, "w") as f:
        f.write(program)
    return [t for t in tensors if t != inp], const_bytes


def kernel_code_bytes(map_file: str) -> int:
    """Bytes of CMSIS-NN code and tables linked into the image (from the link map)."""
    total = 0
    text = open(map_file).read()
    for m in re.finditer(r"^ \.(?:text|rodata)\S*\s*\n?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+\S*libcmsisnn\.a",
                         text, re.M):
        total += int(m.group(1), 16)
    return total


def run_cmsis_nn(ours: dict, cmsis_path: str, work: str, plugin: str, count, per_layer):
    """Build and run the CMSIS-NN image of the network `ours` (bench_mcu.run_edgecnn's
    result); returns its total, per-layer counts (None where CMSIS-NN has no kernel)
    and flash (weights + kernel code)."""
    os.makedirs(work, exist_ok=True)
    tree = source_tree(cmsis_path, os.path.dirname(work))
    lib = build_library(tree, os.path.dirname(work))
    model, x = ours["model"], ours["input"]
    q = model.qgraph
    values = model.run_layers(x)
    tensors, const_bytes = write_program(q, values, os.path.join(work, "cmsis_net.c"))
    ex = ours["dir"]
    for name in ("ec_bench.c", "ec_bench.h", "cortex-m"):
        src = os.path.join(ex, name)
        dst = os.path.join(work, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    subprocess.run(["arm-none-eabi-gcc", *CM4, "-std=c99", "-c", "cortex-m/startup.c", "-o",
                    "startup.o"], cwd=work, check=True)
    elf = os.path.join(work, "cmsis-cm4")
    subprocess.run(["arm-none-eabi-gcc", *CM4, "-std=c99", "-I", os.path.join(tree, "Include"),
                    "cmsis_net.c", "ec_bench.c", "startup.o", lib, "--specs=rdimon.specs",
                    "-T", "cortex-m/mps2.ld", "-Wl,--gc-sections", "-Wl,-Map=cmsis.map",
                    "-o", elf, "-lm"], cwd=work, check=True)
    with open(os.path.join(work, "in.bin"), "wb") as f:
        f.write(np.asarray(x).tobytes())
    total, marks = count(elf, work, plugin, ["in.bin", "out.bin"])
    got = open(os.path.join(work, "out.bin"), "rb").read()
    offset = 0
    for t in tensors:
        want = np.asarray(values[t]).tobytes()
        if got[offset:offset + len(want)] != want:
            raise SystemExit(f"CMSIS-NN output of tensor {t} ({q.tensors[t].name}) differs "
                             "from edgecnn's reference")
        offset += len(want)
    layers = per_layer(marks)
    ours_layers = [r[3] for r in ours["layers"]]
    counted = []
    for node, insns, mine in zip(q.nodes, layers, ours_layers):
        supported = node.op in SUPPORTED and not (node.op == "ADD" and node.params.input2_constant
                                                  is not None)
        counted.append(insns if supported else None)
    adjusted = sum(c if c is not None else m for c, m in zip(counted, ours_layers))
    flash = const_bytes + kernel_code_bytes(os.path.join(work, "cmsis.map"))
    return {"total": adjusted, "layers": counted, "flash": flash,
            "kernel_code": kernel_code_bytes(os.path.join(work, "cmsis.map"))}
