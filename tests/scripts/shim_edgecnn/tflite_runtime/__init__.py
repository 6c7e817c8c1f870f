"""Test-only stand-in for the tflite_runtime package: its `interpreter` module is edgecnn's."""
