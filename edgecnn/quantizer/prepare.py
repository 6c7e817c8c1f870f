"""Read a float model (ONNX or .tflite) and put its graph in the form the quantizer takes:
float32 activations, static RESHAPEs, standalone ReLUs fused into their producers."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node, Tensor
from .float_ops import KERNELS

# A standalone activation folds into the op that produces its input: the op's output range
# then is the activation's, and int8 saturation does the clamping.
FUSABLE_INTO = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD"}
FUSED_NAMES = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"}


def load_float_graph(data: bytes) -> Graph:
    from ..importer.onnx import is_onnx, load_onnx_graph
    from ..importer.tflite import load_graph
    graph = load_onnx_graph(data) if is_onnx(data) else load_graph(data)
    return fuse_activations(static_reshapes(check_float(graph)))


def check_float(graph: Graph) -> Graph:
    """Every operator has a float kernel and every activation is float32."""
    quantized = [t for t in graph.tensors if not t.is_constant and t.dtype in ("int8", "uint8")]
    if quantized:
        raise UnsupportedOpError([(0, f"{quantized[0].describe()} is {quantized[0].dtype}: "
                                      "the model is already quantized (give a float model)")])
    unsupported = [(node.index, f"{node.op} is not supported by the quantizer")
                   for node in graph.nodes if node.op not in KERNELS and node.op not in _SHAPE_OPS]
    if unsupported:
        raise UnsupportedOpError(unsupported)
    return graph


# Keras' Flatten computes RESHAPE's shape at run time (SHAPE -> STRIDED_SLICE -> PACK);
# shapes are static, so the declared output shape replaces the computation.
_SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "CAST", "GATHER", "SLICE", "REDUCE_PROD", "FILL"}


def static_reshapes(graph: Graph) -> Graph:
    tensors = list(graph.tensors)
    nodes = []
    for node in graph.nodes:
        if node.op in _SHAPE_OPS:
            continue
        if node.op in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
            shape = tensors[node.outputs[0]].shape
            new = Tensor(len(tensors), f"{tensors[node.outputs[0]].name}/shape", (len(shape),),
                         "int32", data=_frozen(np.asarray(shape, np.int32)))
            tensors.append(new)
            node = replace(node, op="RESHAPE", inputs=(node.inputs[0], new.index),
                           options=MappingProxyType({"new_shape": tuple(shape)}))
        nodes.append(node)
    return _renumbered(graph, tensors, nodes)


def fuse_activations(graph: Graph) -> Graph:
    consumers: dict[int, int] = {}
    for node in graph.nodes:
        for t in node.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    producer = {node.outputs[0]: k for k, node in enumerate(graph.nodes)}
    nodes = list(graph.nodes)
    removed = set()
    for k, node in enumerate(nodes):
        if node.op not in FUSED_NAMES:
            continue
        source = node.inputs[0]
        p = producer.get(source)
        if p is None or p in removed or consumers.get(source) != 1 or source in graph.outputs:
            continue
        before = nodes[p]
        if before.op not in FUSABLE_INTO or before.options.get("activation", "NONE") != "NONE":
            continue
        options = dict(before.options, activation=node.op)
        nodes[p] = replace(before, outputs=node.outputs, options=MappingProxyType(options))
        removed.add(k)
    kept = [n for k, n in enumerate(nodes) if k not in removed]
    return _renumbered(graph, list(graph.tensors), kept)


def _renumbered(graph: Graph, tensors: list[Tensor], nodes: list[Node]) -> Graph:
    nodes = tuple(replace(n, index=k) for k, n in enumerate(nodes))
    return Graph(tuple(tensors), nodes, graph.inputs, graph.outputs, graph.description)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
