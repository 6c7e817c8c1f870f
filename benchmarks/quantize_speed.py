"""How long `edgecnn quantize` takes on a ~1 M-parameter model with 100 calibration samples.

The model is a MobileNetV1-0.5 shape at 96x96x3 (depthwise-separable blocks, ReLU6,
global average pooling, a 1000-way FC: about 1.3 M parameters) with random float weights,
written as a float .tflite by edgecnn's own writer, so no TensorFlow or PyTorch is needed.

    python benchmarks/quantize_speed.py [--samples 100] [--report-samples 32]
"""

import argparse
import time
from types import MappingProxyType

import numpy as np

import edgecnn
from edgecnn.ir import Graph, Node, Tensor
from edgecnn.tflite_writer import write_graph

# (output channels, stride) of the depthwise-separable blocks, MobileNetV1 at width 0.5
BLOCKS = [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)] + [(256, 1)] * 5 + \
         [(512, 2), (512, 1)]


class _Graph:
    def __init__(self, rng):
        self.rng = rng
        self.tensors, self.nodes = [], []

    def tensor(self, shape, data=None, dtype="float32"):
        if data is not None:
            data = np.ascontiguousarray(data, dtype)
            data.flags.writeable = False
        self.tensors.append(Tensor(len(self.tensors), f"t{len(self.tensors)}", tuple(shape),
                                   dtype, data=data))
        return len(self.tensors) - 1

    def weights(self, shape, fan_in):
        return self.tensor(shape, self.rng.normal(0, np.sqrt(2.0 / fan_in), shape))

    def op(self, op, inputs, out_shape, **options):
        out = self.tensor(out_shape)
        self.nodes.append(Node(len(self.nodes), op, tuple(inputs), (out,),
                               MappingProxyType(options)))
        return out


def mobilenet(rng) -> tuple[Graph, int]:
    g = _Graph(rng)
    x = g.tensor((1, 96, 96, 3))
    size, channels = 48, 16
    conv = dict(padding="SAME", dilation=(1, 1), activation="RELU6")
    y = g.op("CONV_2D", [x, g.weights((16, 3, 3, 3), 27), g.tensor((16,), np.zeros(16))],
             (1, size, size, 16), stride=(2, 2), **conv)
    for out_c, stride in BLOCKS:
        size = -(-size // stride)
        y = g.op("DEPTHWISE_CONV_2D", [y, g.weights((1, 3, 3, channels), 9),
                                       g.tensor((channels,), np.zeros(channels))],
                 (1, size, size, channels), stride=(stride, stride), depth_multiplier=1, **conv)
        y = g.op("CONV_2D", [y, g.weights((out_c, 1, 1, channels), channels),
                             g.tensor((out_c,), np.zeros(out_c))],
                 (1, size, size, out_c), stride=(1, 1), **conv)
        channels = out_c
    y = g.op("MEAN", [y, g.tensor((2,), np.array([1, 2]), "int32")], (1, channels),
             keep_dims=False)
    y = g.op("FULLY_CONNECTED", [y, g.weights((1000, channels), channels),
                                 g.tensor((1000,), np.zeros(1000))], (1, 1000),
             activation="NONE", keep_num_dims=False)
    y = g.op("SOFTMAX", [y], (1, 1000), beta=1.0)
    params = sum(t.data.size for t in g.tensors if t.data is not None)
    return Graph(tuple(g.tensors), tuple(g.nodes), (x,), (y,), "quantize_speed"), params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--report-samples", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    graph, params = mobilenet(rng)
    model = write_graph(graph)
    x = rng.random((args.samples, 96, 96, 3), dtype=np.float32)
    start = time.perf_counter()
    result = edgecnn.quantize(model, x, report_samples=args.report_samples)
    seconds = time.perf_counter() - start
    edgecnn.load(result.tflite)
    print(f"{params / 1e6:.2f} M parameters, {args.samples} calibration samples, SQNR on "
          f"{args.report_samples}: quantized in {seconds:.1f} s "
          f"({len(result.tflite) / 1e6:.2f} MB written)")


if __name__ == "__main__":
    main()
