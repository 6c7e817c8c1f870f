"""`edgecnn verify MODEL`: is every edgecnn profile byte-equal to the runtime it reproduces?

For each profile, on the same inputs: the core against the TFLite runtime the profile
names (its oracle), the numpy reference against the core (on the first inputs: it is
slow), and for `tflm` the exported C built for this machine. The verdict per profile is
PASS (all equal, oracle included), FAIL (any byte differs) or NO ORACLE (edgecnn's own
implementations agree, the oracle is not installed or refused the model). The exit
status is 1 if any profile FAILs, else 0.

The inputs are a few structured ones (every value at the type's minimum, maximum, zero
point, alternating extremes, a ramp through every value; for float inputs, values on
the input quantization's rounding ties), then random ones near the zero point (small
sums, where requantization ties are frequent) and over the whole range.

Oracles (pip install "edgecnn[test]" brings the first two): tflite-micro, LiteRT
(ai-edge-litert; BUILTIN_REF and the default XNNPACK path) and tflite-runtime 2.14.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np

from ..errors import EdgecnnError
from ..profiles import litert_default_profile

# profile -> (oracle key, what the oracle is). LiteRT's default resolver is judged against
# the profile of this machine (xnnpack-aarch64 on 64-bit ARM: its SOFTMAX differs there);
# the other one has no oracle here.
PROFILE_ORACLES = {
    "tflm": ("tflite-micro", "tflite-micro"),
    "litert-ref": ("litert-ref", "LiteRT BUILTIN_REF"),
    litert_default_profile(): ("litert-xnnpack", "LiteRT default resolver (XNNPACK)"),
    "tflite-runtime-ref": ("tflite-runtime-ref", "tflite-runtime 2.14 BUILTIN_REF"),
}
DEFAULT_INPUTS = 200
REFERENCE_INPUTS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite model")
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, metavar="N",
                        help=f"inputs to compare on ({DEFAULT_INPUTS}: structured, then random)")
    parser.add_argument("--reference-inputs", type=int, default=REFERENCE_INPUTS, metavar="R",
                        help=f"of which the numpy reference runs the first R ({REFERENCE_INPUTS})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


# -- inputs ---------------------------------------------------------------------------

def input_quantization(model, info) -> tuple[float, int]:
    """(scale, zero point) the input is quantized with: its own, or for a float input
    that of the QUANTIZE reading it (1/128, 0 if none)."""
    if info.scale:
        return info.scale, info.zero_point
    for node in model.qgraph.nodes:
        if node.op == "QUANTIZE" and node.inputs[0] == info.index:
            out = model.qgraph.tensors[node.outputs[0]]
            return out.scale, out.zero_point
    return 1.0 / 128, 0


def verification_inputs(model, info, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` inputs for one model input: structured ones first, then random ones."""
    size = int(np.prod(info.shape))
    scale, zero_point = input_quantization(model, info)
    if np.dtype(info.dtype).kind in "iu":
        lo, hi = int(np.iinfo(info.dtype).min), int(np.iinfo(info.dtype).max)
    else:
        lo, hi = -128, 127
    flat = np.arange(size)
    structured = [np.full(size, lo), np.full(size, hi), np.full(size, zero_point),
                  np.where(flat % 2, lo, hi), np.where(flat % 2, hi, lo),
                  lo + flat % (hi - lo + 1), hi - flat % (hi - lo + 1)]
    found = []
    for k in range(count):
        if k < len(structured):
            q = structured[k]
        elif k % 2:  # near the zero point: small accumulators, many exact ties
            q = np.clip(zero_point + rng.integers(-3, 4, size), lo, hi)
        else:
            q = rng.integers(lo, hi + 1, size)
            q[0], q[-1] = lo, hi
        if np.dtype(info.dtype).kind == "f":
            # the real values these integers stand for; odd inputs sit on rounding ties
            half = 0.5 if k % 2 and k >= len(structured) else 0.0
            x = ((q - zero_point + half) * scale).astype(info.dtype)
        else:
            x = q.astype(info.dtype)
        found.append(x.reshape(info.shape))
    return found


# -- the runners ------------------------------------------------------------------------

class Unavailable(Exception):
    """This oracle is not installed or refused the model."""


def oracle(name: str, data: bytes, keep: bool = False):
    """run(inputs) -> list of outputs for one oracle, made once per model; with keep=True
    run(inputs) -> tensor(index) for layer-by-layer comparison. Raises Unavailable."""
    try:
        if name == "tflite-micro":
            return _tflite_micro(data, keep)
        if name == "tflite-runtime-ref":
            return _tflite_runtime_214(data, keep)
        return _litert(data, name, keep)
    except Unavailable:
        raise
    except Exception as exc:  # an oracle refusing a model must not stop the others
        raise Unavailable(f"refused the model ({exc.__class__.__name__}: "
                          f"{' '.join(str(exc).split())[:200]})") from None


def _tflite_micro(data: bytes, keep: bool):
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise Unavailable('not installed (pip install tflite-micro, or "edgecnn[test]")') from None
    config = (runtime.InterpreterConfig.kPreserveAllTensors if keep
              else runtime.InterpreterConfig.kAllocationRecording)
    interp = runtime.Interpreter.from_bytes(data, intrepreter_config=config)
    n_outputs = _count_outputs(data)

    def run(inputs):
        for i, x in enumerate(inputs):
            interp.set_input(x, i)
        interp.invoke()
        if keep:
            return lambda t: np.array(interp.GetTensor(t, 0)["tensor_data"])
        return [np.array(interp.get_output(i)) for i in range(n_outputs)]
    return run


def _count_outputs(data: bytes) -> int:
    import tflite
    return tflite.Model.GetRootAsModel(data, 0).Subgraphs(0).OutputsLength()


def _litert(data: bytes, name: str, keep: bool):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise Unavailable('not installed (pip install ai-edge-litert, or "edgecnn[test]")') from None
    kind = OpResolverType.BUILTIN_REF if name == "litert-ref" else OpResolverType.AUTO
    return _tflite_style(Interpreter, kind, data, keep)


def _tflite_runtime_214(data: bytes, keep: bool):
    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise Unavailable("not installed (tflite-runtime 2.14 needs Python <= 3.11 and "
                          "numpy < 2)") from None
    if not tflite_runtime.__version__.startswith("2.14"):
        raise Unavailable(f"tflite-runtime {tflite_runtime.__version__} is installed, not 2.14")
    return _tflite_style(Interpreter, OpResolverType.BUILTIN_REF, data, keep)


def _tflite_style(Interpreter, kind, data: bytes, keep: bool):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LiteRT's notice about preserve_all_tensors
        interp = Interpreter(model_content=data, experimental_op_resolver_type=kind,
                             experimental_preserve_all_tensors=keep, num_threads=1)
    interp.allocate_tensors()

    def run(inputs):
        for detail, x in zip(interp.get_input_details(), inputs):
            interp.set_tensor(detail["index"], x)
        interp.invoke()
        if keep:
            return lambda t: np.array(interp.get_tensor(t))
        return [np.array(interp.get_tensor(d["index"])) for d in interp.get_output_details()]
    return run


def exported_c(data: bytes):
    """run(inputs) -> [output] on the model exported to C and built for this machine
    (tflm profile), or None without a C compiler."""
    import tempfile
    from .bench import build_exported_c
    try:
        built = build_exported_c(data, tempfile.mkdtemp(prefix="edgecnn-verify-"))
    except (EdgecnnError, OSError, subprocess.CalledProcessError) as exc:
        raise Unavailable(f"cannot export or build: {exc}") from None
    return None if built is None else (lambda inputs: [built(inputs[0])])


def _as_list(result) -> list[np.ndarray]:
    return [np.asarray(r) for r in (result if isinstance(result, list) else [result])]


def _differing(got: list, want: list) -> list[int]:
    """Indices of the inputs on which any output differs (shape, dtype or a byte)."""
    return [k for k, (a, b) in enumerate(zip(got, want))
            if len(a) != len(b) or not all(x.shape == y.shape and x.dtype == y.dtype
                                           and np.array_equal(x, y) for x, y in zip(a, b))]


# -- one profile ------------------------------------------------------------------------

def verify_profile(data: bytes, profile: str, batches: list, n_reference: int) -> dict:
    import edgecnn
    model = edgecnn.load(data, profile=profile)
    core = [_as_list(model.run(b)) for b in batches]
    checks = {}      # what was compared -> (indices of the differing inputs, inputs compared)
    reference = [_as_list(model.run(b, backend="reference")) for b in batches[:n_reference]]
    checks["reference = core"] = (_differing(reference, core), len(reference))
    oracle_key, oracle_name = PROFILE_ORACLES.get(profile, (None, None))
    report = {"profile": profile, "oracle": oracle_name, "inputs": len(batches),
              "reference_inputs": min(n_reference, len(batches)), "unavailable": {}}
    if profile == "tflm" and len(model.inputs) == 1:
        try:
            run_c = exported_c(data)
        except Unavailable as exc:
            report["unavailable"]["exported C"] = str(exc)
        else:
            if run_c is None:
                report["unavailable"]["exported C"] = "no C compiler (cc) found"
            else:
                checks["exported C = core"] = (_differing([run_c(b) for b in batches], core),
                                               len(batches))
    if oracle_key is not None:
        try:
            run = oracle(oracle_key, data)
            checks[f"core = {oracle_name}"] = (_differing([run(b) for b in batches], core),
                                               len(batches))
        except Unavailable as exc:
            report["unavailable"][oracle_name] = str(exc)
    report["checks"] = {name: {"differ": len(bad), "compared": n}
                        for name, (bad, n) in checks.items()}
    failed = {name: bad for name, (bad, _) in checks.items() if bad}
    if failed:
        report["verdict"] = "FAIL"
        name, bad = next(iter(failed.items()))
        if name.startswith("core = "):
            report["first_difference"] = first_difference(model, oracle_key, data, batches[bad[0]])
    elif oracle_name in report["unavailable"]:
        report["verdict"] = "NO ORACLE"
    else:
        report["verdict"] = "PASS"
    return report


def first_difference(model, oracle_key: str, data: bytes, inputs) -> str:
    """The first lowered layer whose output differs from the oracle's tensor, or ""."""
    try:
        theirs = oracle(oracle_key, data, keep=True)(inputs)
    except Unavailable:
        return ""
    ours = model.run_layers(inputs)
    for node in model.qgraph.nodes:
        t = node.outputs[0]
        try:
            want = theirs(t)
        except Exception:  # the oracle does not keep this tensor
            continue
        if want.shape != ours[t].shape or not np.array_equal(want, ours[t]):
            return (f"first differing layer: {node.describe()} -> tensor {t} "
                    f"'{model.qgraph.tensors[t].name}'")
    return ""


def main(args: argparse.Namespace) -> int:
    import edgecnn
    from ..model import _read_model_bytes
    if args.inputs < 1 or args.reference_inputs < 0:
        raise EdgecnnError("--inputs must be >= 1 and --reference-inputs >= 0", "verify")
    data = _read_model_bytes(args.model)
    model = edgecnn.load(data)
    rng = np.random.default_rng(args.seed)
    per_input = [verification_inputs(model, info, args.inputs, rng) for info in model.inputs]
    batches = [list(b) for b in zip(*per_input)]
    reports = [verify_profile(data, profile, batches, args.reference_inputs)
               for profile in edgecnn.PROFILES]
    failed = any(r["verdict"] == "FAIL" for r in reports)
    if args.json:
        print(json.dumps({"model": args.model, "inputs": args.inputs, "profiles": reports,
                          "result": "FAIL" if failed else "PASS"}, indent=1))
        return 1 if failed else 0
    print(f"{args.model}: {args.inputs} inputs (7 structured: extremes, zero point, ramps; "
          f"then random, half near the zero point); the numpy reference on the first "
          f"{min(args.reference_inputs, args.inputs)}")
    width = max(len(p) for p in edgecnn.PROFILES)
    for r in reports:
        compared = ", ".join(name + (f" DIFFERS on {c['differ']}/{c['compared']} inputs"
                                     if c["differ"] else "") for name, c in r["checks"].items())
        print(f"  {r['profile']:<{width}}  {r['verdict']:<9}  {compared}")
        if r.get("first_difference"):
            print(f"  {'':<{width}}             {r['first_difference']}")
    unavailable = {k: v for r in reports for k, v in r["unavailable"].items()}
    for name, why in unavailable.items():
        print(f"  unavailable: {name}: {why}")
    print("FAIL: some outputs differ" if failed else "PASS: no byte differs "
          "(profiles marked NO ORACLE were checked only against edgecnn's own implementations)"
          if unavailable else "PASS: every profile equals its oracle byte for byte")
    return 1 if failed else 0
