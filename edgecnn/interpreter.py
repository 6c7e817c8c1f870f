"""A drop-in for `tflite_runtime.interpreter` (and `ai_edge_litert.interpreter`).

A script written for tflite-runtime runs on edgecnn by changing its import:

    import edgecnn.interpreter as tflite   # was: import tflite_runtime.interpreter as tflite

The module serves the names such a script imports (Interpreter, OpResolverType,
load_delegate, Delegate, SignatureRunner, InterpreterWithCustomOps); the detail
dictionaries have the same keys and value types as LiteRT's.

Which numbers it reproduces (see README, "Drop-in for tflite-runtime"):
  the default resolver (AUTO / BUILTIN: LiteRT with XNNPACK)   -> profile "xnnpack"
  BUILTIN_REF (LiteRT's reference kernels)                      -> profile "litert-ref"
  BUILTIN_WITHOUT_DEFAULT_DELEGATES (optimized kernels, no
  XNNPACK: no profile reproduces them byte for byte)            -> "litert-ref", with a warning
`profile=` picks any profile explicitly.

edgecnn runs only on its own CPU kernels: `load_delegate` raises ValueError (what
tflite-runtime raises when a delegate cannot be loaded, so a script's CPU fallback
runs; also an OSError, as for a missing library) and delegates passed to the Interpreter are ignored with a warning.
"""

from __future__ import annotations

import enum
import warnings

import numpy as np

from .errors import EdgecnnError, ModelFormatError, ShapeError
from .ir import Tensor
from .profiles import litert_default_profile
from .model import DEFAULT_BACKEND, TensorInfo, _read_model_bytes, check_input, load

__all__ = ["Interpreter", "InterpreterWithCustomOps", "OpResolverType", "SignatureRunner",
           "Delegate", "load_delegate", "InterpreterError", "DelegateUnavailableError"]


class InterpreterError(EdgecnnError, ValueError):
    """A call the Interpreter cannot serve (a ValueError, as in tflite-runtime)."""


@enum.unique
class OpResolverType(enum.Enum):
    """The op resolvers of tflite-runtime / LiteRT, same names and values."""
    AUTO = 0
    BUILTIN = 1
    BUILTIN_REF = 2
    BUILTIN_WITHOUT_DEFAULT_DELEGATES = 3


# resolver name -> (profile, warning or None). LiteRT's own OpResolverType members are
# accepted too (matched by name), so a script may mix both imports.
# The default resolver's profile is the machine's: xnnpack-aarch64 on 64-bit ARM, where
# LiteRT's SOFTMAX differs (profiles.py).
_RESOLVER_PROFILES = {
    "AUTO": (litert_default_profile(), None),
    "BUILTIN": (litert_default_profile(), None),   # LiteRT gives AUTO and BUILTIN one id
    "BUILTIN_REF": ("litert-ref", None),
    "BUILTIN_WITHOUT_DEFAULT_DELEGATES": (
        "litert-ref",
        "BUILTIN_WITHOUT_DEFAULT_DELEGATES runs LiteRT's optimized kernels without XNNPACK; "
        "no edgecnn profile reproduces them byte for byte (their CONV_2D differs by one on "
        "a few outputs of some models), so edgecnn computes the 'litert-ref' profile "
        "(BUILTIN_REF's numbers); pass profile=... to choose another"),
}


def resolver_profile(resolver_type) -> tuple[str, str | None]:
    """(profile, warning or None) reproducing what LiteRT gives under this resolver."""
    if resolver_type is None:
        return _RESOLVER_PROFILES["AUTO"]
    name = getattr(resolver_type, "name", None)
    if name not in _RESOLVER_PROFILES:
        raise InterpreterError(f"Unrecognized passed in op resolver type: {resolver_type!r}",
                               "Interpreter")
    return _RESOLVER_PROFILES[name]


class DelegateUnavailableError(InterpreterError, OSError):
    """edgecnn loads no delegates. Both a ValueError (what tflite-runtime raises when a
    delegate fails to load) and an OSError (what it raises when the library is missing),
    so whichever a script catches, its CPU fallback runs."""


class Delegate:
    """tflite-runtime's delegate wrapper: edgecnn has no delegates, constructing one raises
    DelegateUnavailableError."""

    def __init__(self, library, options=None):
        raise DelegateUnavailableError("edgecnn runs every model on its own CPU kernels and "
                                       "loads no delegates", f"delegate {library}")


def load_delegate(library, options=None):
    """Always raises DelegateUnavailableError (a ValueError and an OSError): a script's
    fallback to the CPU then runs, as with tflite-runtime on a machine without the
    accelerator."""
    return Delegate(library, options)


def _signature_defs(data: bytes) -> dict[str, dict]:
    """The model's SignatureDefs: key -> {"inputs": {name: tensor}, "outputs": {...},
    "subgraph": index}, names sorted as LiteRT lists them (a std::map)."""
    import tflite
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        found = {}
        for i in range(model.SignatureDefsLength()):
            sig = model.SignatureDefs(i)
            key = (sig.SignatureKey() or b"").decode("utf-8", "replace")
            inputs = {sig.Inputs(j).Name().decode("utf-8", "replace"): sig.Inputs(j).TensorIndex()
                      for j in range(sig.InputsLength())}
            outputs = {sig.Outputs(j).Name().decode("utf-8", "replace"):
                       sig.Outputs(j).TensorIndex() for j in range(sig.OutputsLength())}
            found[key] = {"inputs": dict(sorted(inputs.items())),
                          "outputs": dict(sorted(outputs.items())),
                          "subgraph": sig.SubgraphIndex()}
        return found
    except (IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"unreadable signature definitions ({exc})", "model file") from None


def _subgraph_count(data: bytes) -> int:
    import tflite
    return tflite.Model.GetRootAsModel(data, 0).SubgraphsLength()


class Interpreter:
    """tflite_runtime's Interpreter on edgecnn's kernels (same arguments and methods)."""

    def __init__(self, model_path=None, model_content=None, experimental_delegates=None,
                 num_threads=None, experimental_op_resolver_type=OpResolverType.AUTO,
                 experimental_preserve_all_tensors=False,
                 experimental_disable_delegate_clustering=False,
                 experimental_default_delegate_latest_features=False,
                 experimental_compress_quantization_zero_points=False,
                 experimental_disable_delegate_node_fusion=False,
                 experimental_force_delegate_node_profiling=False,
                 *, profile: str | None = None, backend: str | None = None):
        # LiteRT's delegate, memory and profiling switches (the experimental_ arguments
        # after the preserve one) change nothing in what edgecnn computes.
        self._compress_zero_points = bool(experimental_compress_quantization_zero_points)
        if (model_path is None) == (model_content is None):
            raise InterpreterError("give exactly one of model_path and model_content",
                                   "Interpreter")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise InterpreterError(f"num_threads must be an integer >= 1, got {num_threads!r}",
                                   "Interpreter")
        chosen, warning = resolver_profile(experimental_op_resolver_type)
        if profile is None:  # what the same script gets from LiteRT
            profile = chosen
            if warning:
                warnings.warn(warning, stacklevel=2)
        if experimental_delegates:
            warnings.warn(f"edgecnn ignores experimental_delegates ({len(experimental_delegates)} "
                          f"given): every op runs on edgecnn's CPU kernels (profile {profile!r})",
                          stacklevel=2)
        self._data = _read_model_bytes(model_path if model_path is not None else model_content)
        self._model = load(self._data, profile=profile)
        self._backend = backend or DEFAULT_BACKEND
        self._num_threads = num_threads or 1
        self._preserve_all = bool(experimental_preserve_all_tensors)
        self._signatures = _signature_defs(self._data)
        self._subgraphs = _subgraph_count(self._data)
        self._allocated = False
        # The interpreter's tensors: one persistent buffer per input and output, so that
        # tensor(i)() is a live view (written in place, read back after invoke()).
        self._buffers = {info.index: np.zeros(info.shape, info.dtype)
                         for info in self._model.inputs + self._model.outputs}
        self._written: set[int] = set()       # inputs given a value (set_tensor or tensor())
        self._computed: dict[int, np.ndarray] = {}  # intermediates kept after invoke()
        self._invoked = False

    @property
    def experimental_compress_quantization_zero_points(self) -> bool:
        return self._compress_zero_points

    @property
    def profile(self) -> str:
        """The edgecnn profile whose numbers this interpreter computes."""
        return self._model.profile

    # -- set-up --------------------------------------------------------------

    def allocate_tensors(self) -> None:
        self._allocated = True

    def resize_tensor_input(self, input_index, tensor_size, strict=False) -> None:
        info = self._input_info(input_index)
        if tuple(int(d) for d in tensor_size) != info.shape:
            raise ShapeError(f"edgecnn models have static shapes; cannot resize "
                             f"{list(info.shape)} to {list(tensor_size)}", f"input {input_index}")

    def reset_all_variables(self) -> None:
        """No supported operator keeps state between invocations: nothing to reset."""
        return None

    def num_subgraphs(self) -> int:
        return self._subgraphs

    # -- details ------------------------------------------------------------------

    def get_input_details(self) -> list[dict]:
        return [self._details(self._tensor(i)) for i in self._model.qgraph.inputs]

    def get_output_details(self) -> list[dict]:
        return [self._details(self._tensor(i)) for i in self._model.qgraph.outputs]

    def get_tensor_details(self, subgraph_index: int = 0) -> list[dict]:
        self._check_subgraph(subgraph_index)
        return [self._details(t) for t in self._model.qgraph.tensors.values()]

    def get_signature_list(self) -> dict:
        return {key: {"inputs": list(sig["inputs"]), "outputs": list(sig["outputs"])}
                for key, sig in self._signatures.items()}

    def _get_full_signature_list(self) -> dict:
        return {key: {"inputs": dict(sig["inputs"]), "outputs": dict(sig["outputs"])}
                for key, sig in self._signatures.items()}

    def get_signature_runner(self, signature_key=None) -> "SignatureRunner":
        if signature_key is None:
            if len(self._signatures) != 1:
                raise InterpreterError(f"signature_key is None and the model has "
                                       f"{len(self._signatures)} signatures; None is only "
                                       "allowed when it has exactly one", "get_signature_runner")
            signature_key = next(iter(self._signatures))
        return SignatureRunner(self, signature_key)

    def _tensor(self, index: int) -> Tensor:
        return self._model.qgraph.tensors[index]

    def _check_subgraph(self, subgraph_index) -> None:
        if subgraph_index != 0:
            if not 0 <= int(subgraph_index) < self._subgraphs:
                raise InterpreterError(f"subgraph_index is out of range: {subgraph_index} for "
                                       f"the model, which has {self._subgraphs} subgraphs",
                                       "Interpreter")
            raise InterpreterError("edgecnn runs subgraph 0 only (control flow subgraphs are "
                                   "not supported)", f"subgraph {subgraph_index}")

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
                                        "quantized_dimension": t.quantized_dimension,
                                        "block_size": 0},
            "sparsity_parameters": {},
        }

    # -- running ------------------------------------------------------------------

    def _input_info(self, index) -> TensorInfo:
        for info in self._model.inputs:
            if info.index == index:
                return info
        raise InterpreterError(f"tensor {index} is not an input of the model (inputs: "
                               f"{[i.index for i in self._model.inputs]})", "Interpreter.set_tensor")

    def set_tensor(self, tensor_index: int, value) -> None:
        info = self._input_info(tensor_index)
        np.copyto(self._buffers[info.index], check_input(np.asarray(value), info))
        self._written.add(info.index)

    def invoke(self) -> None:
        if not self._allocated:
            raise InterpreterError("call allocate_tensors() before invoke()", "Interpreter.invoke")
        missing = [i.name for i in self._model.inputs if i.index not in self._written]
        if missing:
            raise InterpreterError(f"input(s) {missing} not set; call set_tensor (or write "
                                   "through tensor()) first", "Interpreter.invoke")
        arrays = [self._buffers[i.index] for i in self._model.inputs]
        outputs = self._model.run(arrays, backend=self._backend, num_threads=self._num_threads)
        if len(self._model.outputs) == 1:
            outputs = [outputs]
        for info, out in zip(self._model.outputs, outputs):
            np.copyto(self._buffers[info.index], out)
        if self._preserve_all:  # the specification's value of every tensor, for debugging
            self._computed = self._model.run_layers(arrays)
        self._invoked = True

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of an input, an output (after invoke) or, with
        experimental_preserve_all_tensors=True, of any tensor the model computes."""
        self._check_subgraph(subgraph_index)
        return self._readable(tensor_index).copy()

    def tensor(self, tensor_index: int):
        """A function returning a live numpy view of an input or output buffer: write an
        input through it before invoke(), read an output after."""
        if tensor_index not in self._buffers:
            self._readable(tensor_index)  # raises the reason
        buffer = self._buffers[tensor_index]
        is_input = any(i.index == tensor_index for i in self._model.inputs)

        def view() -> np.ndarray:
            if is_input:
                self._written.add(tensor_index)  # the caller may write through this view
            return buffer
        return view

    def _readable(self, tensor_index) -> np.ndarray:
        is_input = any(i.index == tensor_index for i in self._model.inputs)
        if is_input:
            return self._buffers[tensor_index]
        if tensor_index in self._buffers:
            if not self._invoked:
                raise InterpreterError("no output yet: call invoke() first", f"tensor {tensor_index}")
            return self._buffers[tensor_index]
        if tensor_index in self._computed:
            return self._computed[tensor_index]
        if tensor_index in self._model.qgraph.tensors:
            hint = ("call invoke() first" if self._preserve_all else
                    "create the Interpreter with experimental_preserve_all_tensors=True to read "
                    "intermediate tensors")
            raise InterpreterError(f"an intermediate tensor: {hint}", f"tensor {tensor_index}")
        raise InterpreterError("no such tensor among the ones edgecnn computes (constants and "
                               "tensors folded away at load are not kept)", f"tensor {tensor_index}")


class InterpreterWithCustomOps(Interpreter):
    """tflite-runtime's Interpreter with custom op registerers: edgecnn has no custom ops,
    so any registerer is refused (ValueError); without one it is the plain Interpreter."""

    def __init__(self, custom_op_registerers=None, **kwargs):
        if custom_op_registerers:
            raise InterpreterError("edgecnn cannot register custom ops",
                                   "InterpreterWithCustomOps")
        super().__init__(**kwargs)


class SignatureRunner:
    """Runs one SignatureDef by its input and output names (get_signature_runner)."""

    def __init__(self, interpreter: Interpreter = None, signature_key: str = None):
        if interpreter is None:
            raise InterpreterError("None interpreter provided", "SignatureRunner")
        if signature_key not in interpreter._signatures:
            raise InterpreterError(f'Invalid signature_key provided: "{signature_key}" (the '
                                   f"model has {sorted(interpreter._signatures)})",
                                   "SignatureRunner")
        signature = interpreter._signatures[signature_key]
        if signature["subgraph"] != 0:
            interpreter._check_subgraph(signature["subgraph"])
        self._interpreter = interpreter
        self._inputs = signature["inputs"]
        self._outputs = signature["outputs"]

    def __call__(self, **kwargs) -> dict[str, np.ndarray]:
        if len(kwargs) != len(self._inputs):
            raise InterpreterError(f"expected {len(self._inputs)} inputs "
                                   f"({', '.join(self._inputs)}), got {len(kwargs)}",
                                   "SignatureRunner")
        for name in kwargs:
            if name not in self._inputs:
                raise InterpreterError(f"Invalid Input name ({name}) for SignatureDef "
                                       f"(inputs: {', '.join(self._inputs)})", "SignatureRunner")
        it = self._interpreter
        it.allocate_tensors()
        for name, value in kwargs.items():
            it.set_tensor(self._inputs[name], value)
        it.invoke()
        return {name: it.get_tensor(index) for name, index in self._outputs.items()}

    def get_input_details(self) -> dict[str, dict]:
        return {name: self._interpreter._details(self._interpreter._tensor(i))
                for name, i in self._inputs.items()}

    def get_output_details(self) -> dict[str, dict]:
        return {name: self._interpreter._details(self._interpreter._tensor(i))
                for name, i in self._outputs.items()}
