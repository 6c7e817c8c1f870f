"""The exceptions of edgecnn: every one names what is wrong and where.

Catch `EdgecnnError` to handle anything edgecnn refuses; the subclasses say
what kind of problem it is. `where` is a short locator such as
"operator 12 (CONV_2D)", "tensor 'conv1/BiasAdd'" or "byte offset 1234".
"""


class EdgecnnError(Exception):
    """Base class of every error edgecnn raises on purpose."""

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


# The errors a tflite_runtime script can meet on the same call also subclass ValueError,
# which is what tflite_runtime raises there (a bad path or model, a wrong dtype or shape),
# so `except ValueError:` in such a script keeps working.

class ModelFileError(EdgecnnError, ValueError):
    """The model file cannot be read (missing, unreadable, a folder...)."""


class ModelFormatError(EdgecnnError, ValueError):
    """The model file is not a valid .tflite flatbuffer (truncated, corrupted, inconsistent)."""


class UnsupportedOpError(EdgecnnError):
    """The model uses operators or options edgecnn does not implement.

    `unsupported` lists (operator index, description) for every one of them,
    so a user sees the whole list at once, not one per attempt.
    """

    def __init__(self, unsupported: list[tuple[int, str]]):
        self.unsupported = list(unsupported)
        lines = "\n".join(f"  operator {i}: {what}" for i, what in self.unsupported)
        super().__init__(f"{len(self.unsupported)} unsupported operator(s):\n{lines}")


class ShapeError(EdgecnnError, ValueError):
    """An input or tensor has the wrong shape."""


class DTypeError(EdgecnnError, ValueError):
    """An input has the wrong dtype or values outside its type's range."""


class ArenaTooSmallError(EdgecnnError):
    """A memory arena cannot hold what the plan needs."""


class AccumulatorRangeError(EdgecnnError):
    """A layer's int32 accumulator could overflow for some int8 input."""


class ResourceLimitError(EdgecnnError):
    """A model needs more memory or work than the limits given to `edgecnn.load` allow,
    or a caller asks for more threads than the core runs."""


class BackendUnavailableError(EdgecnnError):
    """The requested backend is not available (e.g. the Cython core was not built)."""
