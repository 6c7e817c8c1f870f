"""Dev-only: whole networks in the shape of the MLPerf Tiny benchmarks.

Random (seeded) weights, calibrated on random data in each input's range,
with int8, uint8 and float32 I/O. Writes tests/models/nets/*.tflite and
manifest.json. CI never runs this; the models are committed.

    python tests/generators/make_net_models.py
"""

import hashlib
import json
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_op_models import _convert, describe_io, ops_of, oracles_agree  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "models", "nets")
SEED = 7
L = tf.keras.layers


def mobilenet_v1(alpha=0.25, size=96, classes=2):
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, 96x96x3."""
    def filters(n):
        return max(8, int(n * alpha))
    x = inp = tf.keras.Input((size, size, 3), batch_size=1)
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(filters(32), 3, 2, "same", use_bias=False)(x)))
    for n, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                      (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]:
        x = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, stride, "same", use_bias=False)(x)))
        x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(filters(n), 1, use_bias=False)(x)))
    x = L.AveragePooling2D(x.shape[1])(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x))), (size, size, 3)


def ds_cnn(classes=12):
    """MLPerf Tiny keyword spotting: DS-CNN small, 49x10 MFCC."""
    x = inp = tf.keras.Input((49, 10, 1), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, (10, 4), 2, "same")(x)))
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, 1, "same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 1)(x)))
    x = L.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x))), (49, 10, 1)


def resnet8(classes=10):
    """MLPerf Tiny image classification: ResNet-8 on CIFAR-10, 32x32x3."""
    x = inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, 1, "same")(x)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, stride, "same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, 1, "same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, stride, "same")(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(x.shape[1])(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x))), (32, 32, 3)


def fc_autoencoder():
    """MLPerf Tiny anomaly detection: the FC autoencoder, 640 -> 8 -> 640."""
    x = inp = tf.keras.Input((640,), batch_size=1)
    for n in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(n)(x)))
    return tf.keras.Model(inp, L.Dense(640)(x)), (640,)


def mobilenet_v2(alpha=0.35, size=96, classes=2):
    """MobileNetV2 alpha 0.35 at 96x96: inverted residuals with ADD, ReLU6, MEAN."""
    def c(n):
        return max(8, int(n * alpha + 4) // 8 * 8)
    x = inp = tf.keras.Input((size, size, 3), batch_size=1)
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(c(32), 3, 2, "same", use_bias=False)(x)))
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    for t, n, repeats, stride in settings:
        for i in range(repeats):
            s = stride if i == 0 else 1
            y = x
            if t != 1:
                y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(x.shape[-1] * t, 1, use_bias=False)(y)))
            y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, s, "same", use_bias=False)(y)))
            y = L.BatchNormalization()(L.Conv2D(c(n), 1, use_bias=False)(y))
            x = L.Add()([x, y]) if s == 1 and x.shape[-1] == c(n) else y
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(1280, 1, use_bias=False)(x)))
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x))), (size, size, 3)


NETS = {"mobilenet_v1_025_96": mobilenet_v1, "ds_cnn": ds_cnn, "resnet8": resnet8,
        "fc_autoencoder": fc_autoencoder, "mobilenet_v2_035_96": mobilenet_v2}


def randomize_batchnorm(model, rng):
    """Give BatchNormalization layers non-trivial statistics (they start as identity)."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0, 0.2, beta.shape).astype(np.float32),
                               rng.normal(0, 0.2, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 2.0, var.shape).astype(np.float32)])


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": "tests/generators/make_net_models.py", "tensorflow": tf.__version__,
                "seed": SEED, "models": {}}
    for k, (name, build) in enumerate(NETS.items()):
        tf.keras.utils.set_random_seed(SEED + k)
        model, shape = build()
        randomize_batchnorm(model, np.random.default_rng(SEED + k))
        rng = np.random.default_rng(SEED + k)

        def representative():
            for _ in range(16):
                yield [rng.uniform(-1.0, 1.0, size=(1,) + shape).astype(np.float32)]
        for io, suffix in ((tf.int8, ""), (tf.uint8, "_io_uint8"), (tf.float32, "_io_float")):
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            data = _convert(converter, representative, io, per_tensor=False)
            file = f"{name}{suffix}.tflite"
            with open(os.path.join(OUT, file), "wb") as f:
                f.write(data)
            entry = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                     "ops": sorted(set(ops_of(data))), **describe_io(data),
                     "tflm_equals_litert_ref_on_one_input": oracles_agree(data)}
            manifest["models"][file] = entry
            print(file, len(data), entry["ops"], entry["tflm_equals_litert_ref_on_one_input"])
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
