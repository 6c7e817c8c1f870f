"""Trained float model in, TFLite-spec int8 model out, without TensorFlow.

    result = edgecnn.quantize("model.onnx", "calibration_images/", io="int8")
    result.save("model_int8.tflite")
    print(result.format_report())      # per tensor: range, scale, zero point, SQNR in dB

Modules: prepare (read ONNX / float .tflite, fuse activations), float_ops (the float graph
in numpy, what calibration runs), ranges (the range and scale choices), convert (the
spec's constraints and the int8 graph), calibration (samples, preprocessed as `run` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import EdgecnnError
from ..ir import Graph
from . import float_ops, ranges
from .calibration import load_samples
from .convert import IO_TYPES, activation_quantization, quantize_graph
from .prepare import load_float_graph

BATCH = 16   # calibration samples run through the float graph at once

__all__ = ["quantize", "QuantizeResult", "TensorReport", "load_float_graph", "IO_TYPES"]


@dataclass(frozen=True)
class TensorReport:
    name: str
    op: str               # the operator that writes it ("input" for a model input)
    low: float            # the real range chosen
    high: float
    scale: float
    zero_point: int
    sqnr_db: float        # int8 (dequantized) against float, over the report samples


@dataclass(frozen=True)
class QuantizeResult:
    tflite: bytes
    report: tuple[TensorReport, ...]
    samples: int          # calibration samples used
    report_samples: int   # of which the SQNR was measured on

    def save(self, path) -> None:
        with open(path, "wb") as f:
            f.write(self.tflite)

    def format_report(self) -> str:
        lines = [f"{'tensor':32} {'op':18} {'range':>24} {'scale':>11} {'zp':>5} {'SQNR dB':>8}"]
        for r in self.report:
            lines.append(f"{r.name[-32:]:32} {r.op:18} {f'[{r.low:.4g}, {r.high:.4g}]':>24} "
                         f"{r.scale:11.4g} {r.zero_point:5d} {r.sqnr_db:8.2f}")
        return "\n".join(lines)


def quantize(model, calibration, output=None, *, samples: int | None = None, io: str = "int8",
             per_tensor: bool = False, method: str = "minmax", mean: float = 0.0,
             std: float = 255.0, center_crop: float | None = None, report_samples: int = 32,
             progress: Callable[[str, int, int], None] | None = None) -> QuantizeResult:
    """Quantize a float ONNX or .tflite model (path or bytes) to an int8 .tflite.

    calibration: a folder or list of images (preprocessed as `edgecnn run` does, with
    mean, std, center_crop), an .npz file (array "x", else the first) or an array
    [N, H, W, C] (NCHW is accepted for ONNX models). samples: use the first N.
    io: "int8", "uint8" or "float" model input and output. per_tensor: one weight scale
    per tensor instead of per output channel. method: "minmax", "percentile" or "mse".
    report_samples: how many samples the per-tensor SQNR is measured on.
    """
    from ..model import _read_model_bytes
    if io not in IO_TYPES:
        raise EdgecnnError(f"io must be one of {', '.join(IO_TYPES)}, not {io!r}", "quantize")
    if method not in ranges.METHODS:
        raise EdgecnnError(f"method must be one of {', '.join(ranges.METHODS)}, not {method!r}",
                           "quantize")
    graph = load_float_graph(_read_model_bytes(model))
    if len(graph.inputs) != 1:
        raise EdgecnnError(f"the model has {len(graph.inputs)} inputs; the quantizer takes "
                           "models with one", "quantize")
    x = load_samples(calibration, graph.tensors[graph.inputs[0]], samples=samples, mean=mean,
                     std=std, center_crop=center_crop)
    observers = calibrate(graph, x, progress)
    quant = activation_quantization(graph, observers, method)
    int8_graph, where = quantize_graph(graph, quant, io=io, per_tensor=per_tensor)
    from ..tflite_writer import write_graph
    tflite = write_graph(int8_graph, int8_graph.description)
    n_report = min(len(x), max(0, report_samples))
    report = measure(graph, tflite, quant, where, x[:n_report], progress)
    result = QuantizeResult(tflite, report, len(x), n_report)
    if output is not None:
        result.save(output)
    return result


def calibrate(graph: Graph, x: np.ndarray, progress=None) -> dict[int, ranges.RangeObserver]:
    """Run the float graph on every sample; observe every activation tensor."""
    observers: dict[int, ranges.RangeObserver] = {}
    for start in range(0, len(x), BATCH):
        values = float_ops.run(graph, [x[start:start + BATCH]])
        for index, array in values.items():
            if not graph.tensors[index].is_constant:
                observers.setdefault(index, ranges.RangeObserver()).observe(array)
        if progress:
            progress("calibrating", min(start + BATCH, len(x)), len(x))
    return observers


def measure(graph: Graph, tflite: bytes, quant, where, x: np.ndarray, progress=None):
    """Per tensor: the int8 model's values (edgecnn's reference backend, dequantized)
    against the float graph's, as an SQNR over the samples. Loading the written file
    also checks it the way `edgecnn.load` checks any model."""
    from ..model import load
    model = load(tflite)
    signal: dict[int, float] = {}
    noise: dict[int, float] = {}
    writers = {node.outputs[0]: node.op for node in graph.nodes}
    floats: dict[int, np.ndarray] = {}
    for start in range(0, len(x), BATCH):   # the float graph batched, as calibration runs it
        for t, values in float_ops.run(graph, [x[start:start + BATCH]]).items():
            if t in quant:
                floats.setdefault(t, []).append(values)
    floats = {t: np.concatenate(chunks) for t, chunks in floats.items()}
    for k in range(len(x)):
        layers = model.run_layers(_model_input(model, x[k:k + 1]))
        for t, q in quant.items():
            if where[t] not in layers or t not in floats:
                continue
            real = floats[t][k].astype(np.float64).reshape(-1)
            approx = (layers[where[t]].astype(np.float64).reshape(-1) - q.zero_point) * q.scale
            signal[t] = signal.get(t, 0.0) + float(np.sum(real * real))
            noise[t] = noise.get(t, 0.0) + float(np.sum((real - approx) ** 2))
        if progress:
            progress("measuring", k + 1, len(x))
    report = []
    for t, q in sorted(quant.items()):
        if t in signal:
            sqnr = ranges.sqnr_from_sums(signal[t], noise[t])
        else:
            sqnr = float("nan")
        report.append(TensorReport(graph.tensors[t].name, writers.get(t, "input"), q.low,
                                   q.high, q.scale, q.zero_point, sqnr))
    return tuple(report)


def _model_input(model, sample: np.ndarray) -> np.ndarray:
    """A float sample as the int8 model's input (its dtype, quantized with its scale)."""
    info = model.inputs[0]
    if info.dtype == np.float32:
        return np.ascontiguousarray(sample.reshape(info.shape), np.float32)
    info_range = (0, 255) if info.dtype == np.uint8 else (-128, 127)
    q = np.round(sample / np.float32(info.scale)) + info.zero_point
    return np.clip(q, *info_range).astype(info.dtype).reshape(info.shape)
