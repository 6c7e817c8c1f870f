"""Run a QGraph on a backend.

The reference backend calls the numpy kernels of `edgecnn.reference`, one
fresh array per tensor; it ignores the memory plan on purpose, so that a
planner bug shows up as the core disagreeing with the reference.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import BackendUnavailableError, EdgecnnError
from .ir import QGraph, QNode
from .reference import (activations, conv2d, depthwise_conv2d, elementwise, fully_connected,
                        layout, pooling, quantize, reduce)


def _one(kernel: Callable) -> Callable:
    """Adapt a single-input kernel(x, params, output_shape) to the executor's list of inputs."""
    return lambda inputs, params, shape: kernel(inputs[0], params, shape)


def _many(kernel: Callable) -> Callable:
    return lambda inputs, params, shape: kernel(list(inputs), params, shape)


REFERENCE_KERNELS: dict[str, Callable] = {
    "CONV_2D": _one(conv2d.conv2d),
    "DEPTHWISE_CONV_2D": _one(depthwise_conv2d.depthwise_conv2d),
    "MAX_POOL_2D": _one(pooling.max_pool2d),
    "AVERAGE_POOL_2D": _one(pooling.average_pool2d),
    "FULLY_CONNECTED": _one(fully_connected.fully_connected),
    "RESHAPE": _one(layout.reshape),
    "SQUEEZE": _one(layout.reshape),
    "EXPAND_DIMS": _one(layout.reshape),
    "TRANSPOSE": _one(layout.transpose),
    "PAD": _one(layout.pad),
    "PADV2": _one(layout.pad),
    "CONCATENATION": _many(layout.concatenation),
    "SPACE_TO_BATCH_ND": _one(layout.space_to_batch_nd),
    "BATCH_TO_SPACE_ND": _one(layout.batch_to_space_nd),
    "SOFTMAX": _one(activations.softmax),
    "LOGISTIC": _one(activations.logistic),
    "HARD_SWISH": _one(activations.hard_swish),
    "RELU": _one(activations.relu),
    "RELU6": _one(activations.relu),
    "RELU_N1_TO_1": _one(activations.relu),
    "MEAN": _one(reduce.mean),
    "ADD": _many(elementwise.add),
    "QUANTIZE": _one(quantize.quantize),
    "DEQUANTIZE": _one(quantize.dequantize),
}


def run_reference(qgraph: QGraph, inputs: list[np.ndarray], *,
                  keep_intermediates: bool = False, stop_after: int | None = None,
                  num_threads: int = 1):
    """Run every node with the numpy kernels.

    Returns the list of output arrays, or, with keep_intermediates, a dict
    tensor index -> array of every tensor computed (for layer-by-layer
    comparison). stop_after=N stops after the node of .tflite operator index N.
    num_threads is accepted for a uniform backend signature; numpy decides.
    """
    values: dict[int, np.ndarray] = dict(zip(qgraph.inputs, inputs))
    for node in qgraph.nodes:
        out = _run_node(qgraph, node, [values[t] for t in node.inputs])
        values[node.outputs[0]] = out
        if stop_after is not None and node.index == stop_after:
            break
    if keep_intermediates:
        return values
    return [values[t] for t in qgraph.outputs]


def _run_node(qgraph: QGraph, node: QNode, inputs: list[np.ndarray]) -> np.ndarray:
    kernel = REFERENCE_KERNELS.get(node.op)
    if kernel is None:
        raise EdgecnnError(f"no reference kernel for {node.op}", node.describe())
    shape = qgraph.tensors[node.outputs[0]].shape
    out = kernel(inputs, node.params, shape)
    expected_dtype = np.dtype(qgraph.tensors[node.outputs[0]].dtype)
    if out.shape != tuple(shape) or out.dtype != expected_dtype:
        raise EdgecnnError(f"kernel produced {out.dtype}{list(out.shape)}, the model declares "
                           f"{expected_dtype}{list(shape)}", node.describe())
    return out


# Backend name -> run(qgraph, inputs) -> list of outputs. Compiled backends
# register themselves here when their module imports.
BACKENDS: dict[str, Callable] = {"reference": run_reference}


def get_backend(name: str) -> Callable:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailableError(f"unknown backend {name!r}; available: "
                                      f"{', '.join(sorted(BACKENDS))}", "Model.run") from None
