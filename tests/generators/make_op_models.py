"""Dev-only: one small .tflite model per operator and option, made with TensorFlow.

Writes tests/models/ops/*.tflite and manifest.json (provenance, the ops the
converter actually emitted, I/O quantization, and whether the two oracles
agree byte for byte on one random input). CI never runs this; the models are
committed.

    python tests/generators/make_op_models.py
"""

import hashlib
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "models", "ops")
SEED = 20261124
L = tf.keras.layers


def keras(shape, body, seed, batch_size=1):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(shape=shape, batch_size=batch_size)
    return tf.keras.Model(inputs, body(inputs))


def convert(model, shape, io=tf.int8, per_tensor=False, seed=0, via="keras"):
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, size=(1,) + shape).astype(np.float32)]
    if via == "keras":
        return _convert(tf.lite.TFLiteConverter.from_keras_model(model), representative, io,
                        per_tensor)
    # Through a SavedModel the converter rewrites dilated convolutions into the
    # SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND (+ ADD for the bias) form.
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return _convert(converter, representative, io, per_tensor)


def _convert(converter, representative, io, per_tensor):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io
    converter.inference_output_type = io
    if per_tensor:
        converter._experimental_disable_per_channel = True
    return converter.convert()


def bias_init():
    return tf.keras.initializers.RandomNormal(stddev=0.3)


def conv(filters, kernel, strides=1, padding="same", dilation=1, activation=None):
    return lambda x: L.Conv2D(filters, kernel, strides=strides, padding=padding,
                              dilation_rate=dilation, activation=activation,
                              bias_initializer=bias_init())(x)


def dwconv(kernel, strides=1, padding="same", multiplier=1, dilation=1, activation=None):
    return lambda x: L.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                       depth_multiplier=multiplier, dilation_rate=dilation,
                                       activation=activation, bias_initializer=bias_init())(x)


def relu_n1_to_1(layer):
    return lambda x: L.Lambda(lambda t: tf.clip_by_value(t, -1.0, 1.0))(layer(x))


def two_branch_add(x, relu=False):
    a = L.Conv2D(4, 1, bias_initializer=bias_init())(x)
    b = L.Conv2D(4, 3, padding="same", bias_initializer=bias_init())(x) * 3.0
    y = L.Add()([a, b])
    return L.ReLU()(y) if relu else y


def hard_swish(x):
    y = L.Conv2D(6, 3, padding="same", bias_initializer=bias_init())(x)
    return y * L.ReLU(6.0)(y + 3.0) / 6.0


def dynamic_flatten(x):
    y = L.Conv2D(4, 3, strides=2, padding="same")(x)
    flat = L.Lambda(lambda t: tf.reshape(t, [tf.shape(t)[0], -1]), output_shape=(100,))(y)
    return L.Dense(5)(flat)


def concat_different_scales(x):
    a = L.Conv2D(3, 1)(x)
    b = L.Conv2D(5, 1)(x) * 4.0
    return L.Concatenate(axis=-1)([a, b])


S = (9, 9, 3)      # a small odd-sized image: SAME padding is asymmetric at stride 2
CASES = {
    "conv_1x1": (S, conv(8, 1)),
    "conv_3x3_same": (S, conv(8, 3)),
    "conv_3x3_valid": (S, conv(8, 3, padding="valid")),
    "conv_3x3_s2_same": (S, conv(8, 3, strides=2)),
    "conv_5x3_s2_valid": ((12, 11, 3), conv(6, (5, 3), strides=2, padding="valid")),
    "conv_3x3_dilation2": ((12, 12, 3), conv(4, 3, dilation=2)),
    "conv_3x3_dilation2_valid": ((12, 12, 3), conv(4, 3, dilation=2, padding="valid")),
    "conv_relu": (S, conv(8, 3, activation="relu")),
    "conv_relu6": (S, conv(8, 3, activation=tf.nn.relu6)),
    "conv_relu_n1_to_1": (S, relu_n1_to_1(conv(8, 3))),
    "conv_per_tensor": (S, conv(8, 3, activation="relu")),
    "dw_3x3_same": (S, dwconv(3)),
    "dw_3x3_s2_same": (S, dwconv(3, strides=2)),
    "dw_3x3_valid": (S, dwconv(3, padding="valid")),
    "dw_multiplier2": (S, dwconv(3, multiplier=2)),
    "dw_dilation2": ((12, 12, 3), dwconv(3, dilation=2)),
    "dw_relu6": (S, dwconv(3, activation=tf.nn.relu6)),
    "dw_relu": (S, dwconv(3, strides=2, activation="relu")),
    "dw_relu_n1_to_1": (S, relu_n1_to_1(dwconv(3))),
    "dw_per_tensor": (S, dwconv(3, multiplier=2)),
    "maxpool_2x2_s2": (S, lambda x: L.MaxPooling2D(2)(x)),
    "maxpool_3x3_s1_same": (S, lambda x: L.MaxPooling2D(3, 1, padding="same")(x)),
    "maxpool_3x3_s2_valid": (S, lambda x: L.MaxPooling2D(3, 2)(x)),
    "avgpool_2x2_s2_same": (S, lambda x: L.AveragePooling2D(2, padding="same")(x)),
    "avgpool_3x3_s1_same": (S, lambda x: L.AveragePooling2D(3, 1, padding="same")(x)),
    "avgpool_3x3_s2_valid": (S, lambda x: L.AveragePooling2D(3, 2)(x)),
    "fc_2d": ((40,), lambda x: L.Dense(12, bias_initializer=bias_init())(x)),
    "fc_relu": ((40,), lambda x: L.Dense(12, activation="relu")(x)),
    "fc_flatten": (S, lambda x: L.Dense(7)(L.Flatten()(x))),
    "fc_dynamic_flatten": (S, dynamic_flatten),
    "fc_per_tensor": ((40,), lambda x: L.Dense(12, bias_initializer=bias_init())(x)),
    "fc_softmax": ((40,), lambda x: L.Softmax()(L.Dense(10)(x))),
    "softmax": ((30,), lambda x: L.Softmax()(x)),
    "add": (S, two_branch_add),
    "add_relu": (S, lambda x: two_branch_add(x, relu=True)),
    "pad": (S, lambda x: L.Conv2D(4, 3)(L.ZeroPadding2D(((1, 2), (2, 1)))(x))),
    "reshape": (S, lambda x: L.Reshape((27, 27))(L.Conv2D(9, 1)(x))),
    "mean_keepdims": (S, lambda x: L.GlobalAveragePooling2D(keepdims=True)(L.Conv2D(6, 1)(x))),
    "mean": (S, lambda x: L.GlobalAveragePooling2D()(L.Conv2D(6, 1)(x))),
    "concat": (S, lambda x: L.Concatenate()([L.Conv2D(3, 1)(x), L.Conv2D(5, 3, padding="same")(x)])),
    "concat_scaled": (S, concat_different_scales),
    # Activations right after the model input cannot be fused into a previous op.
    "relu_standalone": (S, lambda x: L.ReLU()(x)),
    "relu6_standalone": (S, lambda x: L.ReLU(6.0)(x)),
    "logistic": (S, lambda x: L.Activation("sigmoid")(L.Conv2D(4, 3, padding="same")(x))),
    "hard_swish": (S, hard_swish),
}
# Through a SavedModel (see convert): the converter's other form of dilated convolutions.
VIA_SAVED_MODEL = {"conv_3x3_dilation2_s2b", "dw_dilation2_s2b", "conv_dilation2_valid_s2b"}
CASES["conv_3x3_dilation2_s2b"] = CASES["conv_3x3_dilation2"]
CASES["conv_dilation2_valid_s2b"] = CASES["conv_3x3_dilation2_valid"]
CASES["dw_dilation2_s2b"] = CASES["dw_dilation2"]
# A dynamic batch dimension makes Keras' Flatten a SHAPE/STRIDED_SLICE/PACK/RESHAPE chain.
DYNAMIC_BATCH = {"fc_flatten_dynamic_batch"}
CASES["fc_flatten_dynamic_batch"] = (S, lambda x: L.Dense(7)(L.Flatten()(L.Conv2D(4, 3)(x))))
PER_TENSOR = {"conv_per_tensor", "dw_per_tensor", "fc_per_tensor"}
IO_VARIANTS = {"conv_3x3_s2_same": (tf.uint8, tf.float32), "fc_softmax": (tf.uint8, tf.float32),
               "dw_multiplier2": (tf.float32,), "mean": (tf.uint8,)}


def ops_of(data):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=data)
    return [op["op_name"] for op in it._get_ops_details()]


def oracles_agree(data):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro.python.tflite_micro import runtime
    it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    rng = np.random.default_rng(0)
    if d["dtype"] == np.float32:
        x = rng.uniform(-3, 3, d["shape"]).astype(np.float32)
    else:
        info = np.iinfo(d["dtype"])
        x = rng.integers(info.min, info.max + 1, d["shape"]).astype(d["dtype"])
    it.set_tensor(d["index"], x)
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"])
    micro = runtime.Interpreter.from_bytes(data)
    micro.set_input(x, 0)
    micro.invoke()
    return bool(np.array_equal(micro.get_output(0), want))


def describe_io(data):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=data)
    return {kind: [{"shape": d["shape"].tolist(), "dtype": np.dtype(d["dtype"]).name,
                    "scale": d["quantization"][0], "zero_point": d["quantization"][1]}
                   for d in details]
            for kind, details in (("inputs", it.get_input_details()),
                                  ("outputs", it.get_output_details()))}


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": "tests/generators/make_op_models.py", "tensorflow": tf.__version__,
                "seed": SEED, "models": {}}
    for k, (name, (shape, body)) in enumerate(sorted(CASES.items())):
        model = keras(shape, body, SEED + k, None if name in DYNAMIC_BATCH else 1)
        for io in (tf.int8,) + IO_VARIANTS.get(name, ()):
            suffix = {tf.int8: "", tf.uint8: "_io_uint8", tf.float32: "_io_float"}[io]
            data = convert(model, shape, io, per_tensor=name in PER_TENSOR, seed=SEED + k,
                           via="saved_model" if name in VIA_SAVED_MODEL else "keras")
            file = f"{name}{suffix}.tflite"
            with open(os.path.join(OUT, file), "wb") as f:
                f.write(data)
            manifest["models"][file] = {"sha256": hashlib.sha256(data).hexdigest(),
                                        "ops": ops_of(data), **describe_io(data),
                                        "tflm_equals_litert_ref_on_one_input": oracles_agree(data)}
            print(file, manifest["models"][file]["ops"],
                  manifest["models"][file]["tflm_equals_litert_ref_on_one_input"])
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
