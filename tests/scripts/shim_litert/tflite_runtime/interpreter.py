"""Test-only: `import tflite_runtime.interpreter` gives LiteRT's (the oracle)."""
from ai_edge_litert.interpreter import (Delegate, Interpreter,  # noqa: F401
                                        InterpreterWithCustomOps, OpResolverType,
                                        SignatureRunner, load_delegate)
