"""`edgecnn inspect MODEL`: one row per layer (op, shapes, params, MACs, activation
bytes, requantization range), totals, and the memory plan."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..ir import QNode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite model")
    parser.add_argument("--profile", default="tflm", help="rounding profile (tflm, litert-ref)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--no-plan", action="store_true", help="leave out the plan picture")
    parser.add_argument("--plan-image", metavar="PNG", help="also draw the memory plan into "
                        "this image file (PNG, or any format Pillow writes)")


def macs(node: QNode, out_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one inference of this node."""
    p = node.params
    outputs = int(np.prod(out_shape))
    if node.op == "CONV_2D":
        _, kh, kw, in_c = p.weights.shape
        return outputs * kh * kw * in_c
    if node.op == "DEPTHWISE_CONV_2D":
        kh, kw, _ = p.weights.shape
        return outputs * kh * kw
    if node.op == "FULLY_CONNECTED":
        return outputs * p.weights.shape[1]
    return 0


def constant_bytes(params) -> int:
    """Bytes of weights, biases and per-channel requantization the node carries."""
    total = 0
    for value in vars(params).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "multiplier") and hasattr(value, "shift"):
            total += np.asarray(value.multiplier).nbytes + np.asarray(value.shift).nbytes
    return total


def requant_range(params) -> str:
    requant = getattr(params, "requant", None)
    if requant is None:
        return ""
    real = np.asarray(requant.multiplier, np.float64) * 2.0 ** (np.asarray(requant.shift) - 31)
    return f"{real.min():.3g}..{real.max():.3g} ({requant.rounding})"


def describe_params(params) -> str:
    parts = []
    for key in ("stride", "dilation", "padding", "filter_size", "depth_multiplier", "axis"):
        if hasattr(params, key):
            parts.append(f"{key}={getattr(params, key)}")
    if hasattr(params, "activation_min"):
        parts.append(f"clamp=[{params.activation_min},{params.activation_max}]")
    return " ".join(parts)


def layer_rows(model) -> list[dict]:
    q = model.qgraph
    rows = []
    for node in q.nodes:
        out = q.tensors[node.outputs[0]]
        in_shapes = [list(q.tensors[t].shape) for t in node.inputs]
        act_bytes = sum(int(np.prod(q.tensors[t].shape)) * np.dtype(q.tensors[t].dtype).itemsize
                        for t in node.inputs + node.outputs)
        rows.append({"index": node.index, "op": node.op, "inputs": in_shapes,
                     "output": list(out.shape), "output_dtype": out.dtype,
                     "params": describe_params(node.params), "macs": macs(node, out.shape),
                     "weight_bytes": constant_bytes(node.params),
                     "activation_bytes": act_bytes, "requant": requant_range(node.params)})
    return rows


def main(args: argparse.Namespace) -> int:
    import edgecnn
    from ..planner import plan_memory
    model = edgecnn.load(args.model, profile=args.profile)
    rows = layer_rows(model)
    plan = plan_memory(model.qgraph)
    totals = {"layers": len(rows), "macs": sum(r["macs"] for r in rows),
              "weight_bytes": sum(r["weight_bytes"] for r in rows),
              "arena_bytes": plan.arena_size, "arena_lower_bound": plan.lower_bound}
    if args.plan_image:
        write_plan_image(plan, model, args.plan_image, args.model)
    if args.json:
        print(json.dumps({"model": args.model, "profile": model.profile, "layers": rows,
                          "totals": totals,
                          # TRANSPOSEs done while copying an input into the arena (no op)
                          "folded_input_transposes": [
                              {"operator": model.qgraph.nodes[step].index, "input": tensor}
                              for step, tensor in sorted(plan.folded_inputs.items())],
                          "inputs": [_io(i) for i in model.inputs],
                          "outputs": [_io(o) for o in model.outputs]}, indent=1))
        return 0
    print(f"{args.model}  (profile {model.profile})")
    for i in model.inputs:
        print(f"  input  {_io_text(i)}")
    for o in model.outputs:
        print(f"  output {_io_text(o)}")
    header = f"{'#':>3} {'op':<18} {'input':<16} {'output':<16} {'MACs':>10} {'weights':>8} " \
             f"{'act B':>8}  params / requant"
    print(header)
    print("-" * len(header))
    for r in rows:
        first_in = "x".join(map(str, r["inputs"][0])) if r["inputs"] else "-"
        print(f"{r['index']:>3} {r['op']:<18} {first_in:<16} {'x'.join(map(str, r['output'])):<16} "
              f"{r['macs']:>10,} {r['weight_bytes']:>8,} {r['activation_bytes']:>8,}  "
              f"{r['params']} {r['requant']}".rstrip())
    print("-" * len(header))
    print(f"total: {totals['layers']} layers, {totals['macs']:,} MACs, "
          f"{totals['weight_bytes']:,} weight bytes, arena {totals['arena_bytes']:,} bytes "
          f"(lower bound {totals['arena_lower_bound']:,})")
    if not args.no_plan:
        print()
        print(plan.describe())
    return 0


def write_plan_image(plan, model, path: str, model_path: str) -> None:
    import os
    from ..errors import EdgecnnError
    from .plan_image import draw_plan
    try:
        draw_plan(plan, model.qgraph, path, os.path.basename(model_path))
    except (OSError, ValueError) as exc:  # unwritable, or a suffix Pillow has no format for
        raise EdgecnnError(f"cannot write the plan image: {exc}", path) from None


def _io(info) -> dict:
    return {"name": info.name, "shape": list(info.shape), "dtype": str(info.dtype),
            "scale": info.scale, "zero_point": info.zero_point}


def _io_text(info) -> str:
    q = f" scale {info.scale:.6g} zero point {info.zero_point}" if info.scale else ""
    return f"'{info.name}' {info.dtype}{list(info.shape)}{q}"
