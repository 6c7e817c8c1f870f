"""Test-only: `import tflite_runtime.interpreter` gives edgecnn's drop-in."""
from edgecnn.interpreter import *  # noqa: F401,F403
from edgecnn.interpreter import __all__  # noqa: F401
