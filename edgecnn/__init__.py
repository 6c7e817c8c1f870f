"""edgecnn: int8 CNN inference bit-exact with TensorFlow Lite.

    import edgecnn
    model = edgecnn.load("model.tflite")          # profile "tflm" (default), "litert-ref", "xnnpack"
    y = model.run(x)                              # x in the model's input dtype

`edgecnn.Interpreter` is a drop-in for tflite_runtime.interpreter.Interpreter.
"""

from .errors import (AccumulatorRangeError, ArenaTooSmallError, BackendUnavailableError,
                     DTypeError, EdgecnnError, ModelFileError, ModelFormatError,
                     ResourceLimitError, ShapeError, UnsupportedOpError)
from .model import Model, TensorInfo, load
from .interpreter import Interpreter
from .profiles import PROFILES
from .quantizer import quantize
from .validation import Limits

__version__ = "0.1.0"

__all__ = ["load", "quantize", "Model", "TensorInfo", "Interpreter", "PROFILES", "Limits",
           "EdgecnnError",
           "ModelFileError", "ModelFormatError", "UnsupportedOpError", "ShapeError", "DTypeError",
           "ArenaTooSmallError", "AccumulatorRangeError", "BackendUnavailableError",
           "ResourceLimitError"]
