"""A classify script in the style of pycoral's examples/classify_image.py, written only
against the tflite_runtime API (our own script; pycoral is Apache-2.0).

pycoral's helpers work through tensor() views, not set_tensor/get_tensor:
common.input_size (shape[1:3] as width, height), common.input_tensor
(tensor(index)()[0]), common.set_input (input_tensor(...)[:, :] = image),
common.output_tensor (tensor(index)()), classify.get_scores (dequantize with the
output's quantization) and classify.get_classes (top-k above a threshold). The
input is normalized like pycoral's example when the model's quantization does not
already map mean/std. It invokes --count times on each image.
"""

import argparse
import time

import numpy as np
from PIL import Image

import tflite_runtime.interpreter as tflite


# -- pycoral.adapters.common, re-written ----------------------------------------------
def input_details(interpreter, key):
    return interpreter.get_input_details()[0][key]


def input_size(interpreter):
    _, height, width, _ = input_details(interpreter, "shape")
    return width, height


def input_tensor(interpreter):
    return interpreter.tensor(input_details(interpreter, "index"))()[0]


def set_input(interpreter, data):
    input_tensor(interpreter)[:, :] = data


def output_tensor(interpreter, i):
    return interpreter.tensor(interpreter.get_output_details()[i]["index"])()


# -- pycoral.adapters.classify, re-written ----------------------------------------------
def get_scores(interpreter):
    details = interpreter.get_output_details()[0]
    scores = np.squeeze(output_tensor(interpreter, 0))
    if np.issubdtype(details["dtype"], np.integer):
        scale, zero_point = details["quantization"]
        scores = scale * (scores.astype(np.int64) - zero_point)
    return scores


def get_classes(interpreter, top_k, score_threshold):
    scores = get_scores(interpreter)
    classes = np.argpartition(scores, -top_k)[-top_k:]
    found = [(int(c), float(scores[c])) for c in classes if scores[c] >= score_threshold]
    return sorted(found, key=lambda item: -item[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("-i", "--input", nargs="+", required=True)
    parser.add_argument("-l", "--labels", required=True)
    parser.add_argument("-k", "--top_k", type=int, default=2)
    parser.add_argument("-t", "--threshold", type=float, default=0.0)
    parser.add_argument("-c", "--count", type=int, default=2)
    parser.add_argument("-a", "--input_mean", type=float, default=128.0)
    parser.add_argument("-s", "--input_std", type=float, default=128.0)
    parser.add_argument("--resolver", default="AUTO")
    args = parser.parse_args()

    labels = dict(enumerate(open(args.labels).read().split("\n")))
    interpreter = tflite.Interpreter(
        args.model, experimental_op_resolver_type=tflite.OpResolverType[args.resolver])
    interpreter.allocate_tensors()
    if input_details(interpreter, "dtype") != np.uint8:
        raise ValueError("Only support uint8 input type.")
    size = input_size(interpreter)
    scale, zero_point = input_details(interpreter, "quantization")

    for path in args.input:
        image = Image.open(path).convert("RGB").resize(size, Image.LANCZOS)
        if abs(scale * args.input_std - 1) < 1e-5 and abs(args.input_mean - zero_point) < 1e-5:
            set_input(interpreter, image)
        else:
            normalized = (np.asarray(image) - args.input_mean) / (args.input_std * scale)
            normalized += zero_point
            np.clip(normalized, 0, 255, out=normalized)
            set_input(interpreter, normalized.astype(np.uint8))
        print(path)
        print("----INFERENCE TIME----")
        for _ in range(args.count):
            start = time.perf_counter()
            interpreter.invoke()
            print("%.1fms" % ((time.perf_counter() - start) * 1000))
        print("-------RESULTS--------")
        for class_id, score in get_classes(interpreter, args.top_k, args.threshold):
            print("%s: %.5f" % (labels.get(class_id, class_id), score))


if __name__ == "__main__":
    main()
