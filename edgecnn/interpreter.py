"""A drop-in for `tflite_runtime.interpreter.Interpreter` (and LiteRT's).

A script written for tflite-runtime runs on edgecnn by changing its import:

    from edgecnn import Interpreter      # was: from tflite_runtime.interpreter import Interpreter

Only what int8 CNN inference needs is implemented; the detail dictionaries
have the same keys and value types as tflite-runtime's.
"""

from __future__ import annotations

import numpy as np

from .errors import EdgecnnError, ShapeError
from .model import DEFAULT_BACKEND, _read_model_bytes, check_input, load
from .ir import Tensor
from .profiles import litert_default_profile


def _resolver_profile(resolver_type) -> str:
    """The profile whose numbers the LiteRT/tflite-runtime resolver would give on this
    machine: BUILTIN_REF -> litert-ref; the default (XNNPACK delegate) -> xnnpack, or
    xnnpack-aarch64 on 64-bit ARM, where LiteRT's SOFTMAX differs (profiles.py)."""
    name = getattr(resolver_type, "name", None) or str(resolver_type or "")
    return "litert-ref" if name.rsplit(".", 1)[-1] == "BUILTIN_REF" else litert_default_profile()


class Interpreter:
    def __init__(self, model_path=None, model_content=None, experimental_delegates=None,
                 num_threads=None, experimental_op_resolver_type=None,
                 experimental_preserve_all_tensors=False, *, profile: str | None = None,
                 backend: str | None = None):
        if (model_path is None) == (model_content is None):
            raise EdgecnnError("give exactly one of model_path and model_content", "Interpreter")
        data = _read_model_bytes(model_path if model_path is not None else model_content)
        if profile is None:  # match what the same script gets from LiteRT
            profile = _resolver_profile(experimental_op_resolver_type)
        self._model = load(data, profile=profile)
        self._backend = backend or DEFAULT_BACKEND
        self._num_threads = num_threads
        self._inputs: dict[int, np.ndarray] = {}
        self._outputs: dict[int, np.ndarray] = {}
        self._allocated = False

    # -- set-up --------------------------------------------------------------

    def allocate_tensors(self) -> None:
        self._allocated = True

    def resize_tensor_input(self, input_index, tensor_size, strict=False) -> None:
        info = self._input_info(input_index)
        if tuple(int(d) for d in tensor_size) != info.shape:
            raise ShapeError(f"edgecnn models have static shapes; cannot resize "
                             f"{list(info.shape)} to {list(tensor_size)}", f"input {input_index}")

    # -- details ------------------------------------------------------------------

    def get_input_details(self) -> list[dict]:
        return [self._details(self._tensor(i)) for i in self._model.qgraph.inputs]

    def get_output_details(self) -> list[dict]:
        return [self._details(self._tensor(i)) for i in self._model.qgraph.outputs]

    def get_tensor_details(self) -> list[dict]:
        return [self._details(t) for t in self._model.qgraph.tensors.values()]

    def get_signature_list(self) -> dict:
        return {}

    def _tensor(self, index: int) -> Tensor:
        return self._model.qgraph.tensors[index]

    @staticmethod
    def _details(t: Tensor) -> dict:
        scales = np.asarray(t.scales, dtype=np.float32)
        zero_points = np.asarray(t.zero_points, dtype=np.int32)
        return {
            "name": t.name,
            "index": t.index,
            "shape": np.asarray(t.shape, dtype=np.int32),
            "shape_signature": np.asarray(t.shape_signature or t.shape, dtype=np.int32),
            "dtype": np.dtype(t.dtype).type,
            "quantization": (float(scales[0]) if len(scales) else 0.0,
                             int(zero_points[0]) if len(zero_points) else 0),
            "quantization_parameters": {"scales": scales, "zero_points": zero_points,
                                        "quantized_dimension": t.quantized_dimension},
            "sparsity_parameters": {},
        }

    # -- running ------------------------------------------------------------------

    def _input_info(self, index: int):
        for info in self._model.inputs:
            if info.index == index:
                return info
        raise EdgecnnError(f"tensor {index} is not an input of the model (inputs: "
                           f"{[i.index for i in self._model.inputs]})", "Interpreter.set_tensor")

    def set_tensor(self, tensor_index: int, value) -> None:
        info = self._input_info(tensor_index)
        self._inputs[tensor_index] = check_input(np.asarray(value), info).copy()

    def invoke(self) -> None:
        if not self._allocated:
            raise EdgecnnError("call allocate_tensors() before invoke()", "Interpreter.invoke")
        missing = [i.name for i in self._model.inputs if i.index not in self._inputs]
        if missing:
            raise EdgecnnError(f"input(s) {missing} not set; call set_tensor first",
                               "Interpreter.invoke")
        arrays = [self._inputs[i.index] for i in self._model.inputs]
        outputs = self._model.run(arrays, backend=self._backend,
                                  num_threads=self._num_threads or 1)
        if len(self._model.outputs) == 1:
            outputs = [outputs]
        self._outputs = {info.index: out for info, out in zip(self._model.outputs, outputs)}

    def get_tensor(self, tensor_index: int) -> np.ndarray:
        if tensor_index in self._outputs:
            return self._outputs[tensor_index].copy()
        if tensor_index in self._inputs:
            return self._inputs[tensor_index].copy()
        if tensor_index in self._model.qgraph.tensors:
            raise EdgecnnError("only input and output tensors can be read (run invoke() first "
                               "for outputs)", f"tensor {tensor_index}")
        raise EdgecnnError("no such tensor", f"tensor {tensor_index}")

    def tensor(self, tensor_index: int):
        return lambda: self.get_tensor(tensor_index)
