"""Firmware export: a model as C99 for microcontrollers and the Raspberry Pi.

    from edgecnn.firmware_export import export
    report = export("model.tflite", "out/", prefix="kws")   # then: make -C out

See emit.py for what is written; runtime/ holds the portable C kernels.
"""

from .emit import ExportReport, export

__all__ = ["export", "ExportReport"]
