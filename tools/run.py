"""`edgecnn run MODEL IMAGE|DIR...`: classify images on the device."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..errors import EdgecnnError
from .images import (IMAGE_SUFFIXES, ImageInputError, channels_first, check_preprocessing,
                     dequantize_output, fit_to_input, load_image, to_input_tensor)


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
            in_folder = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                label = os.path.basename(root) if os.path.abspath(root) != os.path.abspath(path) else None
                for name in sorted(files):
                    if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                        in_folder.append((os.path.join(root, name), label))
            if not in_folder:
                raise ImageInputError("no images in this folder", path)
            found += in_folder
        elif os.path.exists(path):
            found.append((path, None))
        else:
            raise ImageInputError("no such file", path)
    return found


def check_sub_folders_are_labels(images, labels: list[str], where: str) -> None:
    """A folder's sub-folders name the true labels: one that is not a label would be
    counted as always wrong, so it is refused instead."""
    strangers = sorted({truth for _, truth in images if truth is not None and truth not in labels})
    if strangers:
        shown = ", ".join(repr(s) for s in strangers[:5]) + (" ..." if len(strangers) > 5 else "")
        raise EdgecnnError(f"sub-folder(s) {shown} are not labels of the model (labels: "
                           f"{', '.join(labels[:5])}{' ...' if len(labels) > 5 else ''}): name "
                           "each sub-folder after a label to measure accuracy, or pass the image "
                           "files themselves", where)


def check_options(args) -> None:
    check_preprocessing(args.mean, args.std, args.center_crop)
    if args.top < 1:
        raise EdgecnnError(f"--top must be at least 1, got {args.top}", "run")
    if args.threads < 1:
        raise EdgecnnError(f"--threads must be at least 1, got {args.threads}", "run")


class Progress:
    """A progress line on a terminal's stderr, cleared before each result is printed and
    redrawn after it, so results stay on screen. Nothing when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.shown = total, enabled and total > 1, False

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False

    def show(self, done: int) -> None:
        if self.enabled:
            bar = int(30 * done / self.total)
            sys.stderr.write(f"\r[{'#' * bar}{'.' * (30 - bar)}] {done}/{self.total}")
            sys.stderr.flush()
            self.shown = True


def timed_run(model, x, backend, threads):
    start = time.perf_counter()
    y = model.run(x, backend=backend, num_threads=threads)
    return y, (time.perf_counter() - start) * 1e3


def main(args: argparse.Namespace) -> int:
    import edgecnn
    check_options(args)
    model = edgecnn.load(args.model, profile=args.profile)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise EdgecnnError("`run` needs a model with one image input [1, H, W, C] (or a "
                           "PyTorch-style [1, C, H, W] read by a TRANSPOSE)", args.model)
    nchw = channels_first(model)
    info = model.inputs[0]
    out_info = model.outputs[0]
    n_classes = int(np.prod(out_info.shape))
    labels = read_labels(args.labels, n_classes)
    images = collect_images(args.images)
    check_sub_folders_are_labels(images, labels, args.images[0])
    _, height, width, channels = info.shape
    if nchw:
        _, channels, height, width = info.shape
    results, correct, labelled = [], 0, 0
    first_ms = None
    progress = Progress(len(images), not args.json and sys.stderr.isatty())
    for k, (path, truth) in enumerate(images):
        pixels = fit_to_input(load_image(path), height, width, channels, args.center_crop)
        if nchw:
            pixels = pixels.transpose(2, 0, 1)    # [H, W, C] -> [C, H, W]
        x = to_input_tensor(pixels, info, args.mean, args.std)
        if first_ms is None:  # the first run compiles the model: time it on its own
            _, first_ms = timed_run(model, x, args.backend, args.threads)
        y, latency_ms = timed_run(model, x, args.backend, args.threads)
        if isinstance(y, list):
            y = y[0]
        scores = dequantize_output(y, out_info)
        order = np.argsort(-scores, kind="stable")[:args.top]
        top = [{"label": labels[i], "index": int(i), "score": float(scores[i])} for i in order]
        result = {"image": path, "top": top, "latency_ms": latency_ms}
        if truth is not None:
            labelled += 1
            result["truth"] = truth
            correct += top[0]["label"] == truth
        results.append(result)
        if not args.json:
            progress.clear()
            print_result(result)
            sys.stdout.flush()
            progress.show(k + 1)
    progress.clear()
    summary = summarize(results, correct, labelled, first_ms)
    if args.json:
        print(json.dumps({"model": args.model, "results": results, "summary": summary}, indent=1))
    else:
        print(f"{summary['images']} image(s): latency median {summary['median_latency_ms']:.3f} ms "
              f"(first run {first_ms:.1f} ms, which includes compiling the model)"
              + (f"; accuracy {summary['accuracy']:.4f} ({correct}/{labelled})"
                 if labelled else ""))
    return 0


def print_result(result: dict) -> None:
    best = ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])
    print(f"{result['image']}: {best}  ({result['latency_ms']:.3f} ms)")


def summarize(results: list[dict], correct: int, labelled: int, first_ms: float) -> dict:
    """Latencies: every image is timed after the model is compiled; the first run, which
    compiles it, is reported on its own."""
    summary = {"images": len(results), "first_run_ms": first_ms,
               "median_latency_ms": float(np.median([r["latency_ms"] for r in results]))}
    if labelled:
        summary["accuracy"] = correct / labelled
        summary["labelled"] = labelled
    return summary
