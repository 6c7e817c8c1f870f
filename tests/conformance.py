"""Batched one-op conformance sweeps: many independent copies of one operator, each with
its own quantization, in ONE model, so that one oracle call checks hundreds of
parameter sets over the operator's whole input space.

A case is a `Case`: how to add its op to a ModelBuilder (its own input and output
tensors) and the inputs to feed. `run_batch` builds the model, asks the profile's
oracle once, and compares every output with edgecnn's reference and with the core
under every instruction-set level this CPU runs.

EDGECNN_SWEEP_LONG=1 multiplies the number of drawn parameter sets (see `sweep_size`);
EDGECNN_SWEEP_REPORT=FILE appends one line per batch (profile, op, cases, values compared),
the source of the README's conformance table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

import edgecnn
from edgecnn.errors import UnsupportedOpError
from modelbuilder import ModelBuilder
from oracles import assert_bitexact, instruction_set, run_oracle, runnable_isas

ORACLE_OF_PROFILE = {"tflm": "tflm", "litert-ref": "litert-ref", "xnnpack": "xnnpack"}
PROFILES = tuple(ORACLE_OF_PROFILE)

INT8_RAMP = np.arange(-128, 128, dtype=np.int8)
UINT8_RAMP = np.arange(256, dtype=np.uint8)
# every (a, b) pair of int8 values: a varies along rows, b along columns
PAIRS_A = np.repeat(INT8_RAMP, 256).reshape(1, 256, 256)
PAIRS_B = np.tile(INT8_RAMP, 256).reshape(1, 256, 256)


def sweep_size(ci: int, long: int) -> int:
    """Parameter sets per sweep: `ci` in CI, `long` with EDGECNN_SWEEP_LONG=1."""
    return long if os.environ.get("EDGECNN_SWEEP_LONG") == "1" else ci


@dataclass
class Case:
    """One op instance: `add(mb)` adds it and returns (input tensor indices, output index)."""
    label: str
    add: Callable[[ModelBuilder], tuple[list[int], int]]
    inputs: list[np.ndarray]


def build(cases: list[Case], case_of_op: list[int] | None = None) -> bytes:
    """One model holding every case; `case_of_op` (if given) receives each op's case index."""
    mb = ModelBuilder()
    for k, case in enumerate(cases):
        ins, out = case.add(mb)
        mb.inputs += ins
        mb.outputs.append(out)
        if case_of_op is not None:
            case_of_op += [k] * (len(mb.ops) - len(case_of_op))
    return mb.build()


def loadable(cases: list[Case], profile: str) -> list[Case]:
    """The cases edgecnn lowers under `profile` (one with an unsupported op is dropped)."""
    case_of_op: list[int] = []
    try:
        edgecnn.load(build(cases, case_of_op), profile=profile)
        return cases
    except UnsupportedOpError as exc:
        bad = {case_of_op[index] for index, _ in exc.unsupported}
        return [c for k, c in enumerate(cases) if k not in bad]


def run_batch(cases: list[Case], profile: str, oracle: str | None = None,
              core: bool = True) -> int:
    """Compare every case's output with the oracle; returns the number of values compared."""
    oracle = oracle or ORACLE_OF_PROFILE[profile]
    data = build(cases)
    inputs = [x for case in cases for x in case.inputs]
    want = run_oracle(oracle, data, inputs)
    model = edgecnn.load(data, profile=profile)
    got = model.run(inputs, backend="reference")
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want) == len(cases)
    for case, g, w in zip(cases, got, want):
        assert_bitexact(g, w, f"{case.label}: reference ({profile}) vs {oracle}")
    if core:
        for isa in runnable_isas():
            with instruction_set(isa):
                model = edgecnn.load(data, profile=profile)
                got = model.run(inputs)
            got = got if isinstance(got, list) else [got]
            for case, g, w in zip(cases, got, want):
                assert_bitexact(g, w, f"{case.label}: core {isa} ({profile}) vs {oracle}")
    values = sum(w.size for w in want)
    report = os.environ.get("EDGECNN_SWEEP_REPORT")
    if report:
        with open(report, "a") as f:
            for case, w in zip(cases, want):
                op = case.label.split()[0] + (" float->int" if "float ->" in case.label else "")
                f.write(f"{profile}\t{oracle}\t{op}\t1\t{w.size}\n")
    return values


def in_chunks(cases: list[Case], size: int):
    for start in range(0, len(cases), size):
        yield cases[start:start + size]


# -- drawing quantization parameters ------------------------------------------------------

def draw_scale(rng: np.random.Generator, low_exp: float = -12, high_exp: float = 2) -> float:
    """A float32 scale, log-uniform in [2^low_exp, 2^high_exp)."""
    return float(np.float32(2.0 ** rng.uniform(low_exp, high_exp)))


def draw_zero_point(rng: np.random.Generator, dtype: str = "int8") -> int:
    """Extreme zero points (both ends, 0) a third of the time, else uniform."""
    info = np.iinfo(dtype)
    if rng.random() < 1 / 3:
        return int(rng.choice([info.min, info.max, 0, info.min + 1, info.max - 1]))
    return int(rng.integers(info.min, info.max + 1))


def related_scale(rng: np.random.Generator, scale: float, low_exp: float, high_exp: float) -> float:
    """Another scale: equal, an exact power-of-two or small rational ratio (rounding ties),
    or a log-uniform ratio in [2^low_exp, 2^high_exp)."""
    kind = rng.integers(4)
    if kind == 0:
        return scale
    if kind == 1:
        return float(np.float32(scale * 2.0 ** int(rng.integers(int(low_exp), int(high_exp)))))
    if kind == 2:
        ratio = float(rng.choice([0.5, 0.75, 1.5, 3.0, 0.375, 1.25, 2.5, 0.625]))
        return float(np.float32(scale * ratio))
    return float(np.float32(scale * 2.0 ** rng.uniform(low_exp, high_exp)))
