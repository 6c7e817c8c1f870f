"""`edgecnn verify MODEL`: run every edgecnn backend and every TFLite oracle that is
installed on the same random inputs and print which agree byte for byte.

Oracles are optional here (pip install "edgecnn[test]" brings them):
tflite-micro, LiteRT BUILTIN_REF and LiteRT's default XNNPACK path.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np

from ..errors import EdgecnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite model")
    parser.add_argument("--inputs", type=int, default=5, metavar="N",
                        help="random inputs to compare on (5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def random_input(info, rng):
    dtype = np.dtype(info.dtype)
    if dtype.kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        return rng.integers(lo, hi + 1, size=info.shape).astype(dtype)
    scale = info.scale or 1.0 / 128
    return rng.uniform(scale * (-128 - info.zero_point), scale * (127 - info.zero_point),
                       size=info.shape).astype(dtype)


def _oracle_runners(data: bytes) -> dict:
    runners = {}
    try:
        from tflite_micro.python.tflite_micro import runtime

        def tflm(inputs, keep=False):
            config = (runtime.InterpreterConfig.kPreserveAllTensors if keep
                      else runtime.InterpreterConfig.kAllocationRecording)
            it = runtime.Interpreter.from_bytes(data, intrepreter_config=config)
            for i, x in enumerate(inputs):
                it.set_input(x, i)
            it.invoke()
            if keep:
                return lambda t: np.array(it.GetTensor(t, 0)["tensor_data"])
            return np.array(it.get_output(0))
        runners["tflite-micro"] = tflm
    except ImportError:
        pass
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        def litert(kind):
            def run(inputs, keep=False):
                it = Interpreter(model_content=data, experimental_op_resolver_type=kind,
                                 experimental_preserve_all_tensors=keep, num_threads=1)
                it.allocate_tensors()
                for d, x in zip(it.get_input_details(), inputs):
                    it.set_tensor(d["index"], x)
                it.invoke()
                if keep:
                    return lambda t: np.array(it.get_tensor(t))
                return np.array(it.get_tensor(it.get_output_details()[0]["index"]))
            return run
        runners["litert-ref"] = litert(OpResolverType.BUILTIN_REF)
        runners["litert-xnnpack"] = litert(OpResolverType.AUTO)
    except ImportError:
        pass
    return runners


def _edgecnn_runners(data: bytes) -> dict:
    import tempfile
    import edgecnn
    from .. import executor
    from .bench import build_exported_c
    runners = {}
    for profile in sorted(edgecnn.PROFILES):
        model = edgecnn.load(data, profile=profile)
        for backend in sorted(executor.BACKENDS):
            runners[f"{backend}/{profile}"] = (lambda inputs, m=model, b=backend:
                                               m.run(inputs, backend=b))
    try:  # the exported C on this machine, when it has a C compiler (tflm profile only)
        exported = build_exported_c(data, tempfile.mkdtemp(prefix="edgecnn-verify-"))
    except (EdgecnnError, OSError, subprocess.CalledProcessError) as exc:
        runners["exported-C/tflm"] = _failing(f"cannot export or build: {exc}")
    else:
        if exported is not None:
            runners["exported-C/tflm"] = lambda inputs: exported(inputs[0])
    return runners


def _failing(message: str):
    def run(inputs):
        raise EdgecnnError(message, "exported C")
    return run


def first_difference(model, oracle, inputs) -> str:
    ours = model.run_layers(inputs)
    try:
        theirs = oracle(inputs, keep=True)
    except Exception:  # oracle cannot keep tensors
        return ""
    for node in model.qgraph.nodes:
        t = node.outputs[0]
        try:
            want = theirs(t)
        except Exception:
            continue
        if want.shape != ours[t].shape or not np.array_equal(want, ours[t]):
            return f"first differing layer: {node.describe()} -> tensor {t} " \
                   f"'{model.qgraph.tensors[t].name}'"
    return ""


def main(args: argparse.Namespace) -> int:
    import edgecnn
    try:
        with open(args.model, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise EdgecnnError(f"cannot read model file: {exc.strerror}", args.model) from None
    model = edgecnn.load(data)
    rng = np.random.default_rng(args.seed)
    batches = [[random_input(i, rng) for i in model.inputs] for _ in range(args.inputs)]
    runners = {**_edgecnn_runners(data), **_oracle_runners(data)}
    outputs = {}
    for name, run in runners.items():
        try:
            results = [run(b) for b in batches]
            outputs[name] = [np.asarray(r[0] if isinstance(r, list) else r) for r in results]
        except Exception as exc:  # one runner failing must not hide the others
            outputs[name] = f"failed: {exc.__class__.__name__}: {exc}"
    names = list(outputs)
    matrix = {a: {b: _agree(outputs[a], outputs[b]) for b in names} for a in names}
    notes = []
    oracles = _oracle_runners(data)
    from edgecnn.profiles import litert_default_profile   # xnnpack-aarch64 on 64-bit ARM
    for profile, oracle in (("tflm", "tflite-micro"), ("litert-ref", "litert-ref"),
                            (litert_default_profile(), "litert-xnnpack")):
        key = f"reference/{profile}"
        if oracle in oracles and matrix.get(key, {}).get(oracle) == "differ":
            prof_model = edgecnn.load(data, profile=profile)
            for b in batches:
                where = first_difference(prof_model, oracles[oracle], b)
                if where:
                    notes.append(f"{key} vs {oracle}: {where}")
                    break
    if args.json:
        print(json.dumps({"model": args.model, "inputs": args.inputs, "matrix": matrix,
                          "notes": notes}, indent=1))
        return 0
    width = max(len(n) for n in names)
    print(f"{args.model}: {args.inputs} random inputs; '=' all bytes equal, 'x' differ")
    print(" " * (width + 1) + " ".join(f"{i:>2}" for i in range(len(names))))
    for i, a in enumerate(names):
        marks = " ".join(f"{_mark(matrix[a][b]):>2}" for b in names)
        print(f"{a:<{width}} {marks}   [{i}]")
    for n in names:
        if isinstance(outputs[n], str):
            print(f"{n}: {outputs[n]}")
    for note in notes:
        print(note)
    return 0


def _agree(a, b) -> str:
    if isinstance(a, str) or isinstance(b, str):
        return "n/a"
    same = all(x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
               for x, y in zip(a, b))
    return "equal" if same else "differ"


def _mark(value: str) -> str:
    return {"equal": "=", "differ": "x"}.get(value, "?")
