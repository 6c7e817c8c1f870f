"""`edgecnn export MODEL -o DIR`: write the model as C99 (weights in flash, a static
arena planned offline, one invoke function) with a Makefile for the host,
Cortex-M4 (QEMU mps2-an386) and aarch64."""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite model")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--prefix", default="model", help="C name prefix (model)")
    parser.add_argument("--profile", default="tflm", help="rounding profile (tflm)")
    parser.add_argument("--max-arena", type=int, default=None, metavar="BYTES",
                        help="fail if the activation arena needs more")
    parser.add_argument("--max-flash", type=int, default=None, metavar="BYTES",
                        help="fail if the constants need more")


def main(args: argparse.Namespace) -> int:
    import edgecnn
    from ..firmware_export import export
    from ..model import _read_model_bytes
    data = _read_model_bytes(args.model)
    model = edgecnn.load(data, profile=args.profile)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise edgecnn.EdgecnnError("exists and is not a folder: -o takes the folder to write "
                                   "the C files into", args.output)
    try:
        report = export(data if args.profile == "tflm" else model, args.output, args.prefix,
                        max_arena=args.max_arena, max_flash=args.max_flash,
                        command_line="edgecnn " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except OSError as exc:  # unwritable, read-only, full disk...
        raise edgecnn.EdgecnnError(f"cannot write the exported files: {exc.strerror or exc}",
                                   exc.filename or args.output) from None
    print(f"wrote {len(report.files)} files to {report.directory}: arena {report.arena_size} "
          f"bytes (lower bound {report.lower_bound}), constants {report.constant_bytes} bytes")
    print(f"build and run: make -C {report.directory} && {report.directory}/demo IN OUT")
    return 0
