"""Dev-only: record what tflite-runtime 2.14.0 (its last release) computes, as golden vectors.

tflite-runtime 2.14 needs numpy < 2, so it runs in its own venv (not CI's):

    python3 -m venv /tmp/tfl214 && /tmp/tfl214/bin/pip install tflite-runtime==2.14.0 "numpy<2"
    /tmp/tfl214/bin/python tests/generators/make_tflite_runtime_214_vectors.py

Writes tests/vectors/tflite_runtime_2_14.npz: for each model below, random inputs
spanning the whole int8/uint8 range (both ends present, seed 214) and the outputs
tflite-runtime 2.14.0 gives on x86-64 under its default resolver ("AUTO") and under
BUILTIN_REF. tests/test_tflite_runtime_214.py checks edgecnn against them.
"""

import os

import numpy as np
import tflite_runtime
import tflite_runtime.interpreter as tflite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "vectors", "tflite_runtime_2_14.npz")
# model -> number of inputs (the MobileNet's are 27 KB each: keep the file small)
MODELS = {
    "examples/digits/digits_int8.tflite": 16,
    "tests/models/nets/fc_autoencoder.tflite": 16,      # FULLY_CONNECTED requantization
    "tests/models/ops/relu6_standalone.tflite": 16,     # RELU6 rescaling
    "tests/models/ops/conv_1x1.tflite": 16,             # the optimized conv's rounding
    "tests/models/nets/mobilenet_v2_035_96.tflite": 2,  # a whole network, MEAN, ADD
}


def random_input(detail, rng):
    info = np.iinfo(detail["dtype"])
    x = rng.integers(info.min, info.max + 1, size=detail["shape"], dtype=np.int64)
    x.reshape(-1)[0], x.reshape(-1)[-1] = info.min, info.max
    return x.astype(detail["dtype"])


def main():
    assert tflite_runtime.__version__ == "2.14.0", tflite_runtime.__version__
    arrays = {}
    for path, count in MODELS.items():
        rng = np.random.default_rng(214)
        for resolver in ("AUTO", "BUILTIN_REF"):
            interp = tflite.Interpreter(model_path=os.path.join(ROOT, path), num_threads=1,
                                        experimental_op_resolver_type=tflite.OpResolverType[resolver])
            interp.allocate_tensors()
            detail = interp.get_input_details()[0]
            if resolver == "AUTO":
                inputs = np.stack([random_input(detail, rng) for _ in range(count)])
                arrays[f"{path}|input"] = inputs
            outputs = []
            for x in inputs:
                interp.set_tensor(detail["index"], x)
                interp.invoke()
                outputs.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
            arrays[f"{path}|{resolver}"] = np.stack(outputs)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
