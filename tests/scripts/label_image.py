"""A label_image-style script, written only against the tflite_runtime API.

It does what TensorFlow's tensorflow/lite/examples/python/label_image.py does
(Apache-2.0; this is our own script, not a copy), with every call it makes:
optional external delegate via load_delegate, Interpreter(model_path,
experimental_delegates, num_threads), allocate_tensors, get_input_details /
get_output_details, the float-model check on the dtype, PIL resize to the input
size, (x - mean) / std for float models, set_tensor, timed invoke, get_tensor,
np.squeeze, top-5 by argsort, and the same print format. Two additions for the
tests: several images per run, and --resolver (OpResolverType by name).
"""

import argparse
import time

import numpy as np
from PIL import Image

import tflite_runtime.interpreter as tflite


def load_labels(filename):
    with open(filename, "r") as f:
        return [line.strip() for line in f.readlines()]


def parse_delegate_options(text):
    options = {}
    for item in (text or "").split(";") if text else []:
        key_value = item.split(":")
        if len(key_value) != 2:
            raise RuntimeError("Error parsing delegate option: " + item)
        options[key_value[0].strip()] = key_value[1].strip()
    return options


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-i", "--image", nargs="+", required=True)
    parser.add_argument("-m", "--model_file", required=True)
    parser.add_argument("-l", "--label_file", required=True)
    parser.add_argument("--input_mean", default=127.5, type=float)
    parser.add_argument("--input_std", default=127.5, type=float)
    parser.add_argument("--num_threads", default=None, type=int)
    parser.add_argument("-e", "--ext_delegate", help="external delegate library path")
    parser.add_argument("-o", "--ext_delegate_options", help='"option1: value1; option2: value2"')
    parser.add_argument("--resolver", default="AUTO", help="OpResolverType member name")
    args = parser.parse_args()

    ext_delegate = None
    if args.ext_delegate is not None:
        options = parse_delegate_options(args.ext_delegate_options)
        print("Loading external delegate from {} with args: {}".format(args.ext_delegate, options))
        try:
            ext_delegate = [tflite.load_delegate(args.ext_delegate, options)]
        except (ValueError, OSError):  # no such delegate here
            print("delegate unavailable, running on the CPU")

    interpreter = tflite.Interpreter(
        model_path=args.model_file, experimental_delegates=ext_delegate,
        num_threads=args.num_threads,
        experimental_op_resolver_type=tflite.OpResolverType[args.resolver])
    interpreter.allocate_tensors()

    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    floating_model = input_details[0]["dtype"] == np.float32
    height = input_details[0]["shape"][1]
    width = input_details[0]["shape"][2]
    labels = load_labels(args.label_file)

    for path in args.image:
        img = Image.open(path).resize((width, height))
        input_data = np.expand_dims(img, axis=0)
        if floating_model:
            input_data = (np.float32(input_data) - args.input_mean) / args.input_std
        interpreter.set_tensor(input_details[0]["index"], input_data)

        start_time = time.time()
        interpreter.invoke()
        stop_time = time.time()

        output_data = interpreter.get_tensor(output_details[0]["index"])
        results = np.squeeze(output_data)
        top_k = results.argsort()[-5:][::-1]
        print(path)
        for i in top_k:
            if floating_model:
                print("{:08.6f}: {}".format(float(results[i]), labels[i]))
            else:
                print("{:08.6f}: {}".format(float(results[i] / 255.0), labels[i]))
        print("time: {:.3f}ms".format((stop_time - start_time) * 1000))


if __name__ == "__main__":
    main()
