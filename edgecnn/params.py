"""One frozen, integer-only parameter record per op: the contract between
lowering and every implementation (reference, Cython core, exported C).

Conventions: zero points are zero points (added as they are, never negated
into "offsets"); a shift keeps TFLite's sign (positive = left shift);
weights are int8 numpy arrays in TFLite's layout, biases int32.

The exceptions to "integer-only" are `Requant.rounding == "float"`, which
exists only to reproduce LiteRT's BUILTIN_REF FULLY_CONNECTED, whose
reference kernel requantizes in floating point (QUANT-NOTES C4), and
"float32", which reproduces XNNPACK's float32 requantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Requant:
    """int32 accumulator -> output domain: acc * multiplier * 2^(shift-31), rounded.

    multiplier/shift are int32 arrays with one entry per output channel (or
    one entry for a per-tensor layer). rounding: "double" | "single" | "float" | "float32";
    for "float" and "float32", `real_scale` (float64 / float32 per channel) is used instead.
    """
    multiplier: np.ndarray
    shift: np.ndarray
    rounding: str = "double"
    real_scale: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Conv2DParams:
    input_zero_point: int
    output_zero_point: int
    stride: tuple[int, int]          # (h, w)
    dilation: tuple[int, int]        # (h, w)
    padding: tuple[int, int]         # (top, left); bottom/right follow from the output shape
    weights: np.ndarray              # int8 [out_channels, kh, kw, in_channels]  (OHWI)
    bias: np.ndarray                 # int32 [out_channels]
    requant: Requant
    activation_min: int
    activation_max: int


@dataclass(frozen=True, eq=False)
class DepthwiseConv2DParams:
    input_zero_point: int
    output_zero_point: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]
    depth_multiplier: int            # output channel = input channel * depth_multiplier + m
    weights: np.ndarray              # int8 [kh, kw, in_channels * depth_multiplier]
    bias: np.ndarray                 # int32 [out_channels]
    requant: Requant
    activation_min: int
    activation_max: int


@dataclass(frozen=True, eq=False)
class Pool2DParams:
    filter_size: tuple[int, int]     # (h, w)
    stride: tuple[int, int]
    padding: tuple[int, int]         # (top, left)
    activation_min: int
    activation_max: int


@dataclass(frozen=True, eq=False)
class FullyConnectedParams:
    input_zero_point: int
    output_zero_point: int
    weights: np.ndarray              # int8 [out_features, in_features]
    bias: np.ndarray                 # int32 [out_features]
    requant: Requant
    activation_min: int
    activation_max: int


@dataclass(frozen=True, eq=False)
class AddParams:
    """ADD int8.

    rounding "double"/"single" (add_common.cc): both inputs brought to a shared scale
    2^-left_shift * twice_max by three multiplier/shift requantizations.
    rounding "xnnpack" (XNNPACK qs8-vadd): out = ((x1 - zp1) * input1_multiplier +
    (x2 - zp2) * input2_multiplier + 2^(s-1)) >> s, with s = -output_shift; the other
    multipliers and shifts are 0.
    """
    input1_zero_point: int
    input2_zero_point: int
    output_zero_point: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    activation_min: int
    activation_max: int
    rounding: str = "double"
    input2_constant: np.ndarray | None = None   # int8 data when the second operand is a constant


@dataclass(frozen=True, eq=False)
class PadParams:
    paddings: tuple[tuple[int, int], ...]   # (before, after) per dimension
    pad_value: int


@dataclass(frozen=True, eq=False)
class ReshapeParams:
    output_shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class TransposeParams:
    """TRANSPOSE (reference_ops::Transpose): output dimension k is input dimension
    perm[k]. Whole elements move (any dtype); input and output quantized alike."""
    perm: tuple[int, ...]            # a permutation of 0..rank-1, rank <= 6


@dataclass(frozen=True, eq=False)
class ConcatenationParams:
    axis: int                        # non-negative


@dataclass(frozen=True, eq=False)
class SpaceToBatchParams:
    block_shape: tuple[int, int]
    paddings: tuple[tuple[int, int], tuple[int, int]]
    pad_value: int


@dataclass(frozen=True, eq=False)
class BatchToSpaceParams:
    block_shape: tuple[int, int]
    crops: tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True, eq=False)
class SoftmaxParams:
    """SOFTMAX int8 (reference_ops::Softmax): exp in gemmlowp fixed point.

    (x - max) * beta * input_scale is brought to Q5.26 by input_multiplier /
    input_left_shift; differences below diff_min give exp() == 0.
    """
    input_multiplier: int
    input_left_shift: int
    diff_min: int
    output_zero_point: int           # -128 for int8 (the output scale is 1/256)
    # Profiles with softmax="lut16" (LiteRT on aarch64): exp() of d = 0..255 below the row
    # max in units of 1/65535 (quant.softmax_exp_lut16), and the output scale the float32
    # normalizer divides by; None for the fixed-point kernel.
    exp_lut16: np.ndarray | None = None
    output_scale: float = 1.0 / 256


@dataclass(frozen=True, eq=False)
class LogisticParams:
    """LOGISTIC int8 (reference_integer_ops::Logistic): input in Q4.27, gemmlowp logistic;
    or a table computed in floating point from the input scale: table "litert" (LiteRT's own
    kernels, LUTPopulate) or "xnnpack" (XNNPACK's sigmoid), see reference/activations.py."""
    input_zero_point: int
    input_range_radius: int          # |x - zp| >= radius saturates to -128 / 127
    input_multiplier: int
    input_left_shift: int
    table: str = ""                  # "" (fixed point) | "litert" | "xnnpack"
    input_scale: float = 0.0         # for the tables


@dataclass(frozen=True, eq=False)
class HardSwishParams:
    """HARD_SWISH int8 (reference_ops::HardSwish): x * relu6(x + 3) / 6 in int16 fixed point."""
    input_zero_point: int
    output_zero_point: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int


@dataclass(frozen=True, eq=False)
class ReluParams:
    """Standalone RELU / RELU6 / RELU_N1_TO_1 int8.

    rescale=True: out = clamp(zp_out + MBQM(x - zp_in, multiplier, shift)) (TFLM's RELU,
    LiteRT's RELU and RELU6); rescale=False: out = clamp(x) (TFLM's RELU6, which
    assumes equal input and output quantization).
    """
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    activation_min: int
    activation_max: int
    rescale: bool = True


@dataclass(frozen=True, eq=False)
class MeanParams:
    """MEAN int8 over some axes (reference_ops::QuantizedMeanOrSum; XNNPACK reduce-nd.c).

    rounding "double" (TFLite, tflite-micro; also for equal input and output
    quantization): out = clamp(MBQM(sum - zp_in * n, multiplier, shift) + zp_out), the
    1/n folded into multiplier/shift.
    rounding "xnnpack": out = clamp(rint(float32(sum) * float_scale + float_zero_point)),
    float32 arithmetic, ties to even (reference.quant.xnnpack_mean_scale_and_zero_point).
    """
    axes: tuple[int, ...]
    keep_dims: bool
    count: int                       # n, elements averaged per output
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    rounding: str = "double"         # "double" | "xnnpack"
    float_scale: float = 0.0         # "xnnpack": float32 (in / out) * (1 / n)
    float_zero_point: float = 0.0    # "xnnpack": float32 zp_out - n * zp_in * float_scale


@dataclass(frozen=True, eq=False)
class QuantizeParams:
    """QUANTIZE: float32 -> int8/uint8 (AffineQuantize), or int8 <-> uint8 (Requantize).

    rounding "tflite": round(x / scale) ties away from zero; integer input by MBQM.
    rounding "xnnpack" (XNNPACK's converts): float input rint(x * float32(1 / scale)),
    ties to even; integer input ((x - zp_in) * multiplier + 128) >> 8 (shift unused).
    rounding "litert-optimized" (integer input; LiteRT's optimized Requantize, what its
    default resolver runs where XNNPACK declines): the elements of whole blocks of 16 by
    MultiplyByQuantizedMultiplier4Rows (ties up), the last size % 16 by MBQM.
    """
    output_zero_point: int
    output_dtype: str
    scale: float = 0.0               # float input: the output scale (float32 value)
    input_zero_point: int = 0        # integer input: requantization
    multiplier: int = 0
    shift: int = 0
    rounding: str = "tflite"


@dataclass(frozen=True, eq=False)
class DequantizeParams:
    """DEQUANTIZE int8/uint8 -> float32: float32(double(scale) * (q - zero_point))."""
    scale: float
    zero_point: int
