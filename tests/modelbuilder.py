"""Write small .tflite files by hand (with edgecnn.tflite_writer).

TensorFlow's converter chooses scales and zero points from calibration; a
test that needs exact ones (a multiplier of exactly 0.5 so that every odd
accumulator is a rounding tie, a zero point of -128 or 127, a multiplier above
one) builds its model here instead. The oracles run these files like any
other model, so they stay the judges.
"""

from __future__ import annotations

import hashlib
import json
import os

from edgecnn.tflite_writer import ModelBuilder as _Writer


class ModelBuilder(_Writer):
    """edgecnn's .tflite writer, with the tests' description in the file."""

    def __init__(self):
        super().__init__("edgecnn tests/modelbuilder.py")


def conv2d_model(input_shape, weights, bias, *, input_scale, input_zp, weight_scales,
                 output_scale, output_zp, output_hw, **options) -> bytes:
    """A one-CONV_2D int8 model with exactly these scales and zero points."""
    mb = ModelBuilder()
    out_c = weights.shape[0]
    x = mb.tensor(input_shape, scale=input_scale, zero_point=input_zp)
    w = mb.tensor(weights.shape, data=weights, scales=tuple(weight_scales),
                  zero_points=(0,) * len(weight_scales))
    bias_scales = tuple(input_scale * s for s in weight_scales)
    bb = mb.tensor((out_c,), "int32", data=bias, scales=bias_scales,
                   zero_points=(0,) * len(bias_scales))
    y = mb.tensor((input_shape[0],) + tuple(output_hw) + (out_c,), scale=output_scale,
                  zero_point=output_zp)
    mb.op("CONV_2D", [x, w, bb], [y], **options)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


def fully_connected_model(weights, bias, *, input_scale, input_zp, weight_scales, output_scale,
                          output_zp, batch=1, **options) -> bytes:
    """A one-FULLY_CONNECTED int8 model with exactly these scales and zero points."""
    mb = ModelBuilder()
    out_f, in_f = weights.shape
    x = mb.tensor((batch, in_f), scale=input_scale, zero_point=input_zp)
    w = mb.tensor(weights.shape, data=weights, scales=tuple(weight_scales),
                  zero_points=(0,) * len(weight_scales))
    bias_scales = tuple(input_scale * s for s in weight_scales)
    bb = mb.tensor((out_f,), "int32", data=bias, scales=bias_scales,
                   zero_points=(0,) * len(bias_scales))
    y = mb.tensor((batch, out_f), scale=output_scale, zero_point=output_zp)
    mb.op("FULLY_CONNECTED", [x, w, bb], [y], **options)
    mb.inputs, mb.outputs = [x], [y]
    return mb.build()


def write_models(out_dir: str, generator: str, seed: int, models: dict[str, bytes]) -> None:
    """Write name.tflite for each model and a manifest.json with their provenance."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"generator": generator, "seed": seed, "models": {}}
    for name, data in models.items():
        with open(os.path.join(out_dir, name + ".tflite"), "wb") as f:
            f.write(data)
        manifest["models"][name + ".tflite"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                "bytes": len(data)}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
