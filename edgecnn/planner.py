"""Offline memory planning: every activation tensor gets an offset in one arena.

A tensor is live from the step that writes it (graph inputs: before step 0)
to the last step that reads it (graph outputs: to the end). Two tensors may
share bytes only if their lifetimes do not overlap. Placement is the greedy
algorithm tflite-micro uses (greedy_memory_planner.cc): largest buffer first,
each put at the lowest offset where it overlaps no already-placed buffer that
is live at the same time. Not optimal in general, optimal on chains.

RESHAPE-like ops move no bytes, so their output aliases their input (one
buffer, the union of both lifetimes). Per-op scratch is a buffer live during
that one step only.

A TRANSPOSE that is the only reader of a graph input (a model converted from
PyTorch starts with NCHW -> NHWC) is folded into the copy of the caller's input
into the arena: the input itself gets no buffer, the TRANSPOSE's output is
written, transposed, before step 0, and no step runs the TRANSPOSE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ArenaTooSmallError
from .ir import QGraph

ALIASING_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


@dataclass
class Buffer:
    name: str
    size: int
    first: int              # first step at which it is live
    last: int               # last step at which it is live
    alignment: int = 1
    tensors: list[int] = field(default_factory=list)
    offset: int = -1

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last

    def overlaps_in_space(self, other: "Buffer") -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


@dataclass
class Plan:
    buffers: list[Buffer]
    tensor_offsets: dict[int, int]
    scratch_offsets: dict[int, int]        # step -> offset of that step's scratch
    arena_size: int
    lower_bound: int
    steps: int
    folded_inputs: dict[int, int] = field(default_factory=dict)  # step -> graph input it transposes

    def is_folded(self, step: int) -> bool:
        """Whether this step's op runs as part of copying the input in (see module doc)."""
        return step in self.folded_inputs

    def offset(self, tensor: int) -> int:
        return self.tensor_offsets[tensor]

    def check(self) -> None:
        """No two buffers live at the same time share a byte (raises otherwise)."""
        for i, a in enumerate(self.buffers):
            if a.offset < 0 or a.offset + a.size > self.arena_size:
                raise ArenaTooSmallError(f"buffer {a.name} [{a.offset}, {a.offset + a.size}) "
                                         f"is outside the {self.arena_size}-byte arena", "planner")
            for b in self.buffers[i + 1:]:
                if a.size and b.size and a.overlaps_in_time(b) and a.overlaps_in_space(b):
                    raise ArenaTooSmallError(f"live buffers {a.name} and {b.name} overlap",
                                             "planner")

    def describe(self, width: int = 64) -> str:
        """An ASCII picture: one row per step, one column per arena slice.

        Each live buffer is drawn with its own letter over the bytes it holds.
        """
        if self.arena_size == 0:
            return "(empty arena)"
        per_column = max(1, -(-self.arena_size // width))
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        lines = [f"arena {self.arena_size} bytes (lower bound {self.lower_bound}); "
                 f"one column = {per_column} bytes"]
        for step in range(self.steps):
            row = ["."] * width
            for k, buf in enumerate(self.buffers):
                if buf.size and buf.first <= step <= buf.last:
                    start = buf.offset // per_column
                    end = max(start + 1, -(-(buf.offset + buf.size) // per_column))
                    for c in range(start, min(end, width)):
                        row[c] = letters[k % len(letters)]
            folded = (f"  (TRANSPOSE of input t{self.folded_inputs[step]} folded into the "
                      "input copy)" if step in self.folded_inputs else "")
            lines.append(f"step {step:3d} |{''.join(row)}|{folded}")
        lines.append("legend: " + ", ".join(f"{letters[k % len(letters)]}={b.name}({b.size})"
                                            for k, b in enumerate(self.buffers) if b.size))
        return "\n".join(lines)


def tensor_bytes(qgraph: QGraph, index: int) -> int:
    t = qgraph.tensors[index]
    return int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize


def plan_memory(qgraph: QGraph, scratch_sizes: dict[int, int] | None = None) -> Plan:
    """Plan one arena for all activations of `qgraph` (+ per-step scratch, in bytes)."""
    scratch_sizes = scratch_sizes or {}
    steps = len(qgraph.nodes)
    folded = folded_input_transposes(qgraph)
    buffers = _buffers(qgraph, steps, folded)
    for step, size in sorted(scratch_sizes.items()):
        if size > 0:
            buffers.append(Buffer(f"scratch@{step}", int(size), step, step, alignment=4))
    bound = lower_bound(buffers, steps)
    _place_best(buffers, bound)
    arena = max((b.offset + b.size for b in buffers), default=0)
    offsets = {t: b.offset for b in buffers for t in b.tensors}
    scratch = {b.first: b.offset for b in buffers if not b.tensors}
    plan = Plan(buffers, offsets, scratch, arena, bound, steps, folded)
    plan.check()
    return plan


def folded_input_transposes(qgraph: QGraph) -> dict[int, int]:
    """step -> graph input, for each TRANSPOSE that is the only reader of a graph input
    (which is not also a graph output): that transpose can be done while copying the
    caller's input into the arena."""
    readers: dict[int, list[int]] = {}
    for step, node in enumerate(qgraph.nodes):
        for t in node.inputs:
            readers.setdefault(t, []).append(step)
    folded = {}
    for t in qgraph.inputs:
        steps = readers.get(t, [])
        if len(steps) == 1 and qgraph.nodes[steps[0]].op == "TRANSPOSE" and \
                t not in qgraph.outputs and list(qgraph.inputs).count(t) == 1:
            folded[steps[0]] = t
    return folded


def _buffers(qgraph: QGraph, steps: int, folded: dict[int, int]) -> list[Buffer]:
    owner: dict[int, Buffer] = {}
    buffers: list[Buffer] = []

    def new_buffer(tensor: int, first: int) -> Buffer:
        t = qgraph.tensors[tensor]
        buf = Buffer(f"t{tensor}", tensor_bytes(qgraph, tensor), first, first,
                     alignment=np.dtype(t.dtype).itemsize, tensors=[tensor])
        buffers.append(buf)
        owner[tensor] = buf
        return buf

    for t in qgraph.inputs:
        if t not in folded.values():
            new_buffer(t, 0)
    for step, node in enumerate(qgraph.nodes):
        if step in folded:        # written, transposed, by the input copy before step 0
            new_buffer(node.outputs[0], 0)
            continue
        for t in node.inputs:
            owner[t].last = max(owner[t].last, step)
        src = node.inputs[0] if node.inputs else None
        if (node.op in ALIASING_OPS and src is not None and src not in qgraph.outputs
                and src not in qgraph.inputs):
            buf = owner[src]          # same bytes, new shape: nothing to copy
            buf.tensors.append(node.outputs[0])
            owner[node.outputs[0]] = buf
        else:
            for t in node.outputs:
                new_buffer(t, step)
    for t in qgraph.outputs:
        owner[t].last = steps
    return buffers


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _place_best(buffers: list[Buffer], bound: int) -> None:
    """Try a few placements and keep the smallest arena.

    1. tflite-micro's greedy (largest first, lowest fitting offset);
    2. the same in order of first use;
    3. alternating ends: in order of first use, each buffer goes at the
       lowest fitting offset or flush against the top of an arena of the
       lower bound, whichever side the previous buffer did not take. On a
       chain (each step reads one tensor and writes the next) this is
       optimal: consecutive tensors sit at opposite ends and never overlap.
    """
    candidates = []
    created = {id(b): k for k, b in enumerate(buffers)}  # inputs, then outputs in step order
    for order, strategy in ((lambda b: (-b.size, b.first, created[id(b)]), _first_fit),
                            (lambda b: (b.first, created[id(b)]), _first_fit),
                            (lambda b: (b.first, created[id(b)]), _alternate_ends)):
        offsets = strategy(sorted(buffers, key=order), bound)
        if offsets is not None:
            arena = max((b.offset + b.size for b in buffers), default=0)
            candidates.append((arena, len(candidates), offsets))
    arena, _, best = min(candidates)
    for buf in buffers:
        buf.offset = best[id(buf)]


def _first_fit(ordered: list[Buffer], bound: int) -> dict[int, int]:
    placed: list[Buffer] = []
    for buf in ordered:
        live = sorted((p for p in placed if p.overlaps_in_time(buf)), key=lambda p: p.offset)
        offset = 0
        for other in live:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size, buf.alignment))
        buf.offset = _align(offset, buf.alignment)
        placed.append(buf)
    return {id(b): b.offset for b in ordered}


def _alternate_ends(ordered: list[Buffer], bound: int) -> dict[int, int] | None:
    placed: list[Buffer] = []
    top = False
    for buf in ordered:
        if top:
            buf.offset = (bound - buf.size) // buf.alignment * buf.alignment
        else:
            buf.offset = 0
        if buf.offset < 0 or any(p.overlaps_in_time(buf) and p.overlaps_in_space(buf)
                                 for p in placed if p.size and buf.size):
            return None
        placed.append(buf)
        top = not top
    return {id(b): b.offset for b in ordered}


def lower_bound(buffers: list[Buffer], steps: int) -> int:
    """The largest total size of buffers live at one step: no plan can be smaller."""
    best = 0
    for step in range(steps + 1):
        best = max(best, sum(b.size for b in buffers if b.first <= step <= b.last))
    return best
