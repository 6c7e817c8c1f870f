"""The imported graph: what a .tflite file says, checked, before any lowering.

Float scales are still attached here; `edgecnn.lowering` turns them into the
integer-only params records of `edgecnn.params`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np


@dataclass(frozen=True, eq=False)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                      # numpy dtype name: "int8", "uint8", "int32", "float32", ...
    scales: tuple[float, ...] = ()  # float32 values, one per channel or one per tensor; () = not quantized
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant contents (read-only view of the model), None for activations
    shape_signature: tuple[int, ...] = ()  # the converter's shape with -1 for dynamic dims

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def is_quantized(self) -> bool:
        return len(self.scales) > 0

    @property
    def scale(self) -> float:
        """The per-tensor scale (the first one of a per-channel tensor)."""
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0

    def describe(self) -> str:
        return f"tensor {self.index} '{self.name}'"


@dataclass(frozen=True, eq=False)
class Node:
    index: int                       # operator index in the .tflite subgraph
    op: str                          # builtin operator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]          # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def describe(self) -> str:
        return f"operator {self.index} ({self.op})"


@dataclass(frozen=True, eq=False)
class Graph:
    tensors: tuple[Tensor, ...]
    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""


@dataclass(frozen=True, eq=False)
class QNode:
    """A lowered operator: one kernel, one integer-only params record."""
    index: int                       # the .tflite operator index it came from
    op: str                          # kernel name, e.g. "CONV_2D"
    inputs: tuple[int, ...]          # activation tensor indices only (constants live in params)
    outputs: tuple[int, ...]
    params: object

    def describe(self) -> str:
        return f"operator {self.index} ({self.op})"


@dataclass(frozen=True, eq=False)
class QGraph:
    """The graph every backend runs: activation tensors + lowered nodes in execution order."""
    tensors: Mapping[int, Tensor]
    nodes: tuple[QNode, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    profile: object
