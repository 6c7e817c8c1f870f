"""`edgecnn quantize MODEL -o OUT.tflite --calibration DIR|FILE.npz`: a trained float model
(ONNX, or a float .tflite) to a TFLite-spec int8 model, without TensorFlow.

Calibration images are preprocessed exactly as `edgecnn run` does (same --mean, --std,
--center-crop); an .npz holds an array "x" (else its first array) of samples [N, H, W, C]
(or NCHW for an ONNX model). Prints, per tensor, the chosen range, scale, zero point and
the SQNR of the int8 model against the float one on the calibration samples."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .run import add_preprocessing_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="float model: .onnx (needs `pip install edgecnn[onnx]`) "
                        "or .tflite")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.tflite",
                        help="where to write the int8 model")
    parser.add_argument("--calibration", required=True, nargs="+", metavar="DIR|FILE.npz",
                        help="calibration images (folders or files) or one .npz file")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="use the first N calibration samples (default: all)")
    parser.add_argument("--io", choices=("int8", "uint8", "float"), default="int8",
                        help="the model's input and output type (int8)")
    parser.add_argument("--per-tensor", action="store_true",
                        help="one weight scale per tensor (default: per output channel)")
    parser.add_argument("--method", choices=("minmax", "percentile", "mse"), default="minmax",
                        help="how activation ranges are chosen from calibration (minmax)")
    parser.add_argument("--report-samples", type=int, default=32, metavar="N",
                        help="samples the per-tensor SQNR is measured on (32)")
    add_preprocessing_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    import edgecnn
    calibration = args.calibration
    if len(calibration) == 1 and calibration[0].endswith(".npz"):
        calibration = calibration[0]
    start = time.perf_counter()
    result = edgecnn.quantize(args.model, calibration, args.output, samples=args.samples,
                              io=args.io, per_tensor=args.per_tensor, method=args.method,
                              mean=args.mean, std=args.std, center_crop=args.center_crop,
                              report_samples=args.report_samples,
                              progress=None if args.json else show_progress)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"model": args.model, "output": args.output, "samples": result.samples,
                          "report_samples": result.report_samples, "seconds": seconds,
                          "tensors": [r.__dict__ for r in result.report]}, indent=1))
        return 0
    print(result.format_report())
    worst = min(result.report, key=lambda r: r.sqnr_db)
    print(f"wrote {args.output} ({len(result.tflite)} bytes) in {seconds:.1f} s: "
          f"{result.samples} calibration samples, SQNR on {result.report_samples}; "
          f"lowest SQNR {worst.sqnr_db:.1f} dB at '{worst.name}' ({worst.op})")
    return 0


def show_progress(stage: str, done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    filled = int(30 * done / max(total, 1))
    print(f"\r{stage:12} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end="",
          file=sys.stderr)
    if done == total:
        print(file=sys.stderr)
