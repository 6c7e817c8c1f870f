"""Dev-only: train the bundled example, a small CNN on scikit-learn's digits.

Needs TensorFlow (not installed by CI). Writes examples/digits/: the int8
model with int8, uint8 and float32 I/O, labels.txt, a few test images and a
labelled test folder, and manifest.json (provenance and accuracies).

Input convention: 8x8 grey, ink bright. A PNG pixel p (0..255) maps to the
model input p / 255 (edgecnn run's default --mean 0 --std 255). scikit-learn's
digits are 0..16, so images are stored as round(v * 255 / 16), upscaled x4
with nearest neighbour (bilinear downscaling by 4 gives the 8x8 values back).

    python tests/generators/make_digits_example.py
"""

import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "examples", "digits")
SEED = 1234


def to_pixels(digit_values):
    return np.round(digit_values * 255.0 / 16.0).astype(np.uint8)


def build_model():
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(8, 8, 1), batch_size=1)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(24, 1, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(32, 3, padding="same", activation=tf.nn.relu6)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(10)(x)
    out = L.Softmax()(x)
    return tf.keras.Model(inp, out)


def convert(model, calibration, io_type):
    def representative():
        for x in calibration[:300]:
            yield [x[None].astype(np.float32)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return converter.convert()


def litert_accuracy(model_bytes, images_float, labels):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=model_bytes,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d_in = it.get_input_details()[0]
    d_out = it.get_output_details()[0]
    correct = 0
    for x, y in zip(images_float, labels):
        if d_in["dtype"] == np.float32:
            q = x[None].astype(np.float32)
        elif d_in["dtype"] == np.uint8:
            q = np.round(x * 255).astype(np.uint8)[None]  # the pixels themselves
        else:
            scale, zp = d_in["quantization"]
            q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)[None]
        it.set_tensor(d_in["index"], q)
        it.invoke()
        correct += int(np.argmax(it.get_tensor(d_out["index"])) == y)
    return correct / len(labels)


def main():
    tf.keras.utils.set_random_seed(SEED)
    digits = load_digits()
    pixels = to_pixels(digits.images)                       # what the PNGs hold
    x = (pixels.astype(np.float32) / 255.0)[..., None]      # what the model sees
    x_train, x_test, y_train, y_test, p_train, p_test = train_test_split(
        x, digits.target, pixels, test_size=0.25, random_state=SEED, stratify=digits.target)
    model = build_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0,
              validation_data=(x_test, y_test))
    float_acc = float(model.evaluate(x_test, y_test, verbose=0)[1])

    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": "tests/generators/make_digits_example.py",
                "tensorflow": tf.__version__, "seed": SEED, "float_test_accuracy": float_acc,
                "test_images": int(len(y_test)), "models": {}}
    for suffix, io_type in (("int8", tf.int8), ("uint8", tf.uint8), ("float", tf.float32)):
        data = convert(model, x_train, io_type)
        name = f"digits_{suffix}.tflite"
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        manifest["models"][name] = {
            "sha256": hashlib.sha256(data).hexdigest(), "io": suffix,
            "litert_builtin_ref_test_accuracy": litert_accuracy(data, x_test[..., 0, None], y_test)}
    with open(os.path.join(OUT, "labels.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in range(10)))

    for folder in ("images", "testset"):
        shutil.rmtree(os.path.join(OUT, folder), ignore_errors=True)
    os.makedirs(os.path.join(OUT, "images"))
    for i in range(10):  # one image of each digit
        k = int(np.flatnonzero(y_test == i)[0])
        save(p_test[k], os.path.join(OUT, "images", f"{i}_test{k}.png"))
    n_testset = 200
    for k in range(n_testset):
        folder = os.path.join(OUT, "testset", str(y_test[k]))
        os.makedirs(folder, exist_ok=True)
        save(p_test[k], os.path.join(folder, f"test{k}.png"))
    manifest["testset"] = {"images": n_testset, "from": "the first test-split images"}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(json.dumps(manifest, indent=1))


def save(pixels8x8, path):
    Image.fromarray(pixels8x8, mode="L").resize((32, 32), Image.NEAREST).save(path, optimize=True)


if __name__ == "__main__":
    main()
