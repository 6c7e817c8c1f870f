"""The public Model: load a .tflite file once, run it many times."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import executor
from .errors import DTypeError, EdgecnnError, ModelFileError, ShapeError
from .importer.tflite import load_graph
from .ir import QGraph, Tensor
from .lowering import lower
from .profiles import DEFAULT_PROFILE, get_profile
from .validation import Limits

from . import core_backend  # registers the "core" backend (or its clear unavailability)

# The compiled core when it is built; a missing extension is an error on use, never a
# silent fallback (pass backend="reference" explicitly for the numpy specification).
DEFAULT_BACKEND = "core"


@dataclass(frozen=True)
class TensorInfo:
    """What a model input or output looks like: feed (or expect) arrays like this."""
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float          # 0.0 for float tensors
    zero_point: int

    @classmethod
    def of(cls, t: Tensor) -> "TensorInfo":
        return cls(t.name, t.index, tuple(t.shape), np.dtype(t.dtype), t.scale, t.zero_point)


def _read_model_bytes(path_or_bytes) -> bytes:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise ModelFileError(f"expected a path or the model's bytes, got "
                             f"{type(path_or_bytes).__name__}", "edgecnn.load")
    try:
        path = os.fspath(path_or_bytes)
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file: {exc.strerror}", str(path)) from None
    except (TypeError, ValueError) as exc:   # e.g. a NUL byte in the path
        raise ModelFileError(f"not a usable path ({exc})", repr(path_or_bytes)[:200]) from None


def load(path_or_bytes, profile: str = DEFAULT_PROFILE, *,
         limits: Limits | None = None) -> "Model":
    """Load a .tflite model (a path or its bytes) for the given rounding profile.

    Everything the kernels rely on is checked here, once; `limits` (edgecnn.Limits)
    bounds the memory and work a model may need (default: DEFAULT_LIMITS)."""
    data = _read_model_bytes(path_or_bytes)
    graph = load_graph(data)
    qgraph = lower(graph, get_profile(profile), limits)
    return Model(qgraph)


# The core runs at most this many threads: more would only multiply its scratch memory.
MAX_THREADS = 64


def check_num_threads(num_threads) -> int:
    """A positive int (bools and floats refused), capped at MAX_THREADS."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise EdgecnnError(f"num_threads must be a positive integer, got {num_threads!r}",
                           "Model.run")
    return min(num_threads, MAX_THREADS)


class Model:
    """A loaded, lowered model. `run` takes arrays in the model's own input dtypes."""

    def __init__(self, qgraph: QGraph):
        self.qgraph = qgraph
        self.profile = qgraph.profile.name
        self.inputs = [TensorInfo.of(qgraph.tensors[i]) for i in qgraph.inputs]
        self.outputs = [TensorInfo.of(qgraph.tensors[i]) for i in qgraph.outputs]
        # The core's lean path for the common call (core_backend.lean_run), made after the
        # first checked one-thread core run; False where it does not apply.
        self._lean = None

    def __repr__(self) -> str:
        def fmt(infos):
            return ", ".join(f"{i.dtype}{list(i.shape)}" for i in infos)
        return (f"<edgecnn.Model {len(self.qgraph.nodes)} ops, inputs [{fmt(self.inputs)}], "
                f"outputs [{fmt(self.outputs)}], profile {self.profile!r}>")

    def run(self, inputs, backend: str | None = None, num_threads: int = 1):
        """Run one inference. `inputs`: one array, or a list with one array per input.

        backend: "core" (default) or "reference"; num_threads: threads of the core.
        Returns one array for a single-output model, else a list.
        """
        lean = self._lean
        if lean and backend is None and num_threads == 1:
            output = lean(inputs)   # None unless the input is exactly as the model takes it
            if output is not None:
                return output
        arrays = self._check_inputs(inputs)
        num_threads = check_num_threads(num_threads)
        outputs = executor.get_backend(backend or DEFAULT_BACKEND)(self.qgraph, arrays,
                                                                   num_threads=num_threads)
        if lean is None and backend is None and num_threads == 1 and DEFAULT_BACKEND == "core":
            self._lean = core_backend.lean_run(self.qgraph) or False
        return outputs[0] if len(outputs) == 1 else outputs

    def run_layers(self, inputs) -> dict[int, np.ndarray]:
        """Every tensor the reference computes, by tensor index (for layer-by-layer checks)."""
        return executor.run_reference(self.qgraph, self._check_inputs(inputs),
                                      keep_intermediates=True)

    def _check_inputs(self, inputs) -> list[np.ndarray]:
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(self.inputs):
            raise ShapeError(f"the model takes {len(self.inputs)} input(s), got {len(inputs)}",
                             "Model.run")
        return [check_input(array, info) for array, info in zip(inputs, self.inputs)]


def check_input(array, info: TensorInfo) -> np.ndarray:
    """The array as the model needs it, or a clear error: no silent casts. (Checked on
    every inference: the common case costs a few attribute reads.)"""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"expected a numpy array of {info.dtype}, got {type(array).__name__}",
                         f"input '{info.name}'")
    if array.dtype is not info.dtype and array.dtype != info.dtype:
        raise DTypeError(f"expected dtype {info.dtype}, got {array.dtype} (convert it, e.g. "
                         f"quantize with scale {info.scale} and zero point {info.zero_point})",
                         f"input '{info.name}'")
    if array.shape != info.shape:
        raise ShapeError(f"expected shape {list(info.shape)}, got {list(array.shape)}",
                         f"input '{info.name}'")
    if info.dtype.kind == "f" and not np.isfinite(array).all():
        raise DTypeError("contains NaN or infinity", f"input '{info.name}'")
    return array
