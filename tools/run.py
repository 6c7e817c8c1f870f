"""`edgecnn run MODEL IMAGE|DIR...`: classify images on the device."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..errors import EdgecnnError
from .images import (IMAGE_SUFFIXES, ImageInputError, dequantize_output, fit_to_input,
                     load_image, to_input_tensor)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite model (int8, with int8, uint8 or float32 I/O)")
    parser.add_argument("images", nargs="+", help="image files, or folders of images "
                        "(a folder with one sub-folder per label also reports accuracy)")
    parser.add_argument("--labels", help="text file, one label per line, in output order")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="show the K best (3)")
    add_preprocessing_arguments(parser)
    parser.add_argument("--backend", default=None, help="reference or core (default: best built)")
    parser.add_argument("--profile", default="tflm", help="rounding profile (tflm, litert-ref)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="threads (core backend)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_preprocessing_arguments(parser: argparse.ArgumentParser) -> None:
    """How an image becomes an input (shared with `edgecnn quantize`'s calibration)."""
    parser.add_argument("--mean", type=float, default=0.0, metavar="M",
                        help="input = (pixel - M) / S before quantizing (default 0)")
    parser.add_argument("--std", type=float, default=255.0, metavar="S",
                        help="see --mean (default 255: pixels scaled to [0, 1])")
    parser.add_argument("--center-crop", type=float, default=None, metavar="F",
                        help="crop the central F (0..1] of the shorter side before resizing")


def read_labels(path: str | None, n_outputs: int) -> list[str]:
    if path is None:
        return [str(i) for i in range(n_outputs)]
    try:
        with open(path, encoding="utf-8") as f:
            labels = [line.strip() for line in f if line.strip()]
    except OSError as exc:
        raise EdgecnnError(f"cannot read labels: {exc.strerror}", path) from None
    if len(labels) != n_outputs:
        raise EdgecnnError(f"{len(labels)} labels but the model has {n_outputs} outputs", path)
    return labels


def collect_images(paths: list[str]) -> list[tuple[str, str | None]]:
    """(image path, true label or None). A folder's sub-folder names are the true labels."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                label = os.path.basename(root) if os.path.abspath(root) != os.path.abspath(path) else None
                for name in sorted(files):
                    if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                        found.append((os.path.join(root, name), label))
            if not found:
                raise ImageInputError("no images in this folder", path)
        elif os.path.exists(path):
            found.append((path, None))
        else:
            raise ImageInputError("no such file", path)
    return found


def main(args: argparse.Namespace) -> int:
    import edgecnn
    model = edgecnn.load(args.model, profile=args.profile)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise EdgecnnError("`run` needs a model with one image input [1, H, W, C]", args.model)
    info = model.inputs[0]
    out_info = model.outputs[0]
    n_classes = int(np.prod(out_info.shape))
    labels = read_labels(args.labels, n_classes)
    images = collect_images(args.images)
    _, height, width, channels = info.shape
    results, correct, labelled = [], 0, 0
    show_progress = len(images) > 1 and not args.json and sys.stderr.isatty()
    for k, (path, truth) in enumerate(images):
        pixels = fit_to_input(load_image(path), height, width, channels, args.center_crop)
        x = to_input_tensor(pixels, info, args.mean, args.std)
        start = time.perf_counter()
        y = model.run(x, backend=args.backend)
        latency_ms = (time.perf_counter() - start) * 1e3
        if isinstance(y, list):
            y = y[0]
        scores = dequantize_output(y, out_info)
        order = np.argsort(-scores, kind="stable")[:max(1, args.top)]
        top = [{"label": labels[i], "index": int(i), "score": float(scores[i])} for i in order]
        result = {"image": path, "top": top, "latency_ms": latency_ms}
        if truth is not None:
            labelled += 1
            result["truth"] = truth
            correct += top[0]["label"] == truth
        results.append(result)
        if show_progress:
            done = int(30 * (k + 1) / len(images))
            print(f"\r[{'#' * done}{'.' * (30 - done)}] {k + 1}/{len(images)}", end="",
                  file=sys.stderr)
        elif not args.json:
            print_result(result)
    if show_progress:
        print(file=sys.stderr)
    summary = summarize(results, correct, labelled)
    if args.json:
        print(json.dumps({"model": args.model, "results": results, "summary": summary}, indent=1))
    elif len(images) > 1:
        print(f"{summary['images']} images, median latency {summary['median_latency_ms']:.3f} ms"
              + (f", accuracy {summary['accuracy']:.4f} ({correct}/{labelled})"
                 if labelled else ""))
    return 0


def print_result(result: dict) -> None:
    best = ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])
    print(f"{result['image']}: {best}  ({result['latency_ms']:.3f} ms)")


def summarize(results: list[dict], correct: int, labelled: int) -> dict:
    summary = {"images": len(results),
               "median_latency_ms": float(np.median([r["latency_ms"] for r in results]))}
    if labelled:
        summary["accuracy"] = correct / labelled
        summary["labelled"] = labelled
    return summary
