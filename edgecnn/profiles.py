"""Rounding profiles: which TFLite runtime's arithmetic edgecnn reproduces.

TFLite's runtimes do not agree with each other byte for byte, so "bit-exact
with TFLite" needs a named oracle. Each profile is the set of per-op choices
that reproduces one of them exactly (see README, "Rounding profiles").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    oracle: str                 # what this profile reproduces byte for byte
    rounding: str               # requantization of conv, depthwise, ADD, MEAN...: "double" | "single"
    fully_connected: str        # "fixed" (multiplier/shift) or "float" (LiteRT reference kernel)
    kernel_variant: str         # variant of the fixed-point special ops (softmax, logistic...)
    weighted_requant: str = "fixed"  # conv/depthwise/FC: "fixed" point or "float32" (XNNPACK)
    softmax: str = "fixed"      # int8 SOFTMAX: "fixed" (gemmlowp, reference_ops) or "lut16"
                                # (LiteRT built for aarch64: 16-bit exp table, float32 sum)
    # True: the ops LiteRT's XNNPACK delegate takes (ADD, MEAN, QUANTIZE...) follow
    # XNNPACK's own arithmetic where the delegate accepts them (see lowering.py)
    xnnpack_delegate: bool = False


PROFILES = {
    "tflm": Profile("tflm", "tflite-micro (its Python interpreter, reference kernels)",
                    rounding="double", fully_connected="fixed", kernel_variant="tflm"),
    "litert-ref": Profile("litert-ref", "ai-edge-litert with OpResolverType.BUILTIN_REF",
                          rounding="double", fully_connected="float", kernel_variant="litert-ref"),
    # LiteRT's default CPU path delegates conv, depthwise and FC to XNNPACK, whose x86
    # kernels requantize in float32 (scale = in * w / out in float32) and round ties to
    # even; ADD, MEAN and QUANTIZE use XNNPACK's formulas; the ops the delegate leaves
    # to LiteRT are as in litert-ref (README, "Rounding profiles" and the conformance table).
    "xnnpack": Profile("xnnpack", "ai-edge-litert's default resolver (XNNPACK), x86-64",
                       rounding="double", fully_connected="fixed", kernel_variant="litert-ref",
                       weighted_requant="float32", xnnpack_delegate=True),
    # tflite-runtime 2.14 (its last release) with BUILTIN_REF: LiteRT's reference kernels
    # before their FULLY_CONNECTED moved to floating-point requantization, i.e. litert-ref's
    # RELU6 and special ops with tflm's fixed-point FC (measured: tests/test_tflite_runtime_214.py).
    "tflite-runtime-ref": Profile("tflite-runtime-ref",
                                  "tflite-runtime 2.14 with OpResolverType.BUILTIN_REF",
                                  rounding="double", fully_connected="fixed",
                                  kernel_variant="litert-ref"),
}
# The same runtime on a 64-bit ARM machine (a Raspberry Pi 4/5 with 64-bit Raspberry Pi OS,
# or any aarch64 Linux or macOS): LiteRT's aarch64 build computes int8 SOFTMAX from a 16-bit
# exp() table with a float32 normalizer (TFLITE_SOFTMAX_USE_UINT16_LUT), a few outputs in
# 10,000 one step higher; every other op is as `xnnpack` (checked under emulated Cortex-A72
# and Cortex-A76: README, "Raspberry Pi").
PROFILES["xnnpack-aarch64"] = dataclasses.replace(
    PROFILES["xnnpack"], name="xnnpack-aarch64",
    oracle="ai-edge-litert's default resolver (XNNPACK), aarch64", softmax="lut16")

DEFAULT_PROFILE = "tflm"

AARCH64_MACHINES = ("aarch64", "arm64")   # platform.machine() on Linux / macOS


def litert_default_profile(machine: str | None = None) -> str:
    """The profile that gives LiteRT's default resolver's bytes on this machine (or on
    `machine`, a platform.machine() value): its SOFTMAX differs on 64-bit ARM. A 32-bit
    Python on a 64-bit kernel (32-bit Raspberry Pi OS on a Pi 4/5) reports "aarch64" too,
    but runs 32-bit code: pointer size decides there."""
    if machine is None:
        import platform
        import struct
        machine = platform.machine() if struct.calcsize("P") == 8 else "32-bit"
    return "xnnpack-aarch64" if machine.lower() in AARCH64_MACHINES else "xnnpack"


def get_profile(name: str) -> Profile:
    from .errors import EdgecnnError
    try:
        return PROFILES[name]
    except KeyError:
        raise EdgecnnError(f"unknown profile {name!r}; choose one of "
                           f"{', '.join(sorted(PROFILES))}", "edgecnn.load") from None
