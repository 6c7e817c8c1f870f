"""Dev-only: a Keras CNN on scikit-learn's digits converted to a *float* .tflite by
TensorFlow's converter (the quantizer's other input), and the side-by-side benchmark of
`edgecnn quantize` against TensorFlow's own int8 converter on the same calibration samples.

Needs TensorFlow, scikit-learn and edgecnn in one environment (not CI's). Writes tests/models/float/:
  digits_keras_float.tflite  Conv + BatchNorm + ReLU, depthwise-separable blocks with
                             BatchNorm, a residual Add, MaxPool, GlobalAveragePooling, Dense,
                             Softmax; float32 throughout (no quantization)
  manifest.json              (its "keras" entry) provenance, float accuracy, and the
                             side-by-side figures

The held-out split is the one make_quantize_models.py writes (same seed, same
train_test_split call): digits_split.npz, NCHW there, NHWC here.

    python tests/generators/make_quantize_keras.py
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "models", "float")
SEED = 2026
CALIBRATION = 100


def build_model():
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(8, 8, 1), batch_size=1)
    x = L.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = L.ReLU()(L.BatchNormalization()(y))
    y = L.Conv2D(16, 1, use_bias=False)(y)
    y = L.ReLU()(L.BatchNormalization()(y))
    x = L.Add()([x, y])
    x = L.MaxPooling2D(2)(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = L.ReLU(6.0)(L.BatchNormalization()(x))
    x = L.Conv2D(32, 1, use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(10, activation="softmax")(x)
    return tf.keras.Model(inp, out)


def run_tflite(model_bytes, x):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=model_bytes,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for sample in x:
        if inp["dtype"] == np.int8:
            scale, zp = inp["quantization"]
            sample = np.clip(np.round(sample / scale) + zp, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], sample[None])
        interp.invoke()
        y = interp.get_tensor(out["index"])[0].astype(np.float64)
        if out["dtype"] == np.int8:
            scale, zp = out["quantization"]
            y = (y - zp) * scale
        results.append(y)
    return np.array(results)


def compare(scores, reference, labels):
    sqnr = 10 * np.log10(np.sum(reference ** 2) / max(np.sum((scores - reference) ** 2), 1e-30))
    return {"accuracy": float(np.mean(scores.argmax(1) == labels)),
            "top1_agreement_with_float": float(np.mean(scores.argmax(1) == reference.argmax(1))),
            "output_sqnr_db": float(sqnr)}


def main():
    tf.keras.utils.set_random_seed(SEED)
    digits = load_digits()
    pixels = (np.round(digits.images * 255.0 / 16.0) / 255.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target)
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0)
    float_file = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    path = os.path.join(OUT, "digits_keras_float.tflite")
    with open(path, "wb") as f:
        f.write(float_file)

    calibration = x_train[:CALIBRATION]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    tf_int8 = converter.convert()

    import edgecnn   # installed beside TensorFlow: pip install -e .
    ours = edgecnn.quantize(float_file, calibration, report_samples=0).tflite

    reference = run_tflite(float_file, x_test)
    side_by_side = {"float (LiteRT)": compare(reference, reference, y_test),
                    "TensorFlow converter int8": compare(run_tflite(tf_int8, x_test),
                                                         reference, y_test),
                    "edgecnn quantize int8": compare(run_tflite(ours, x_test),
                                                     reference, y_test)}
    manifest_path = os.path.join(OUT, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["keras"] = {
        "generator": "tests/generators/make_quantize_keras.py", "tensorflow": tf.__version__,
        "seed": SEED, "model": "digits_keras_float.tflite",
        "sha256": hashlib.sha256(float_file).hexdigest(),
        "float_test_accuracy": side_by_side["float (LiteRT)"]["accuracy"],
        "calibration_samples": CALIBRATION,
        "side_by_side_on_the_test_split": side_by_side}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(json.dumps(manifest["keras"], indent=1))


if __name__ == "__main__":
    main()
