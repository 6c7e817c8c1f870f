"""The `edgecnn` console script: run, inspect, verify, export, bench, quantize.

Every command exits 0 on success and, on a problem it understands (a missing
file, a model it cannot run, a bad image...), prints one line
`edgecnn: error: ...` to stderr and exits 1, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import EdgecnnError

# command -> (module in edgecnn.tools, one-line help)
COMMANDS = {
    "run": ("run", "classify images with a model"),
    "inspect": ("inspect", "show a model's layers, sizes and memory plan"),
    "verify": ("verify", "compare every backend and TFLite oracle on the same inputs"),
    "export": ("export", "write the model as C99 for a microcontroller"),
    "bench": ("bench", "time edgecnn against LiteRT and tflite-micro"),
    "quantize": ("quantize", "turn a float ONNX or .tflite model into an int8 .tflite"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgecnn", description="int8 CNN inference, "
                                     "bit-exact with TensorFlow Lite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        module = _tool(module_name)
        if module is None:
            continue
        if hasattr(module, "add_arguments"):
            p = sub.add_parser(name, help=help_text, description=(module.__doc__ or "").strip())
            module.add_arguments(p)
            p.set_defaults(handler=module.main)
        else:  # a tool with its own argument parser: main(argv)
            p = sub.add_parser(name, help=help_text, add_help=False)
            p.add_argument("argv", nargs=argparse.REMAINDER)
            p.set_defaults(handler=lambda args, m=module: m.main(args.argv))
    return parser


def _tool(module_name: str):
    try:
        return importlib.import_module(f"edgecnn.tools.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"edgecnn.tools.{module_name}":
            return None  # that command is not part of this build
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except EdgecnnError as exc:
        print(f"edgecnn: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgecnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
