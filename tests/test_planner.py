"""The memory planner: no two live buffers overlap; chains reach the lower bound."""

from types import MappingProxyType

import pytest
from hypothesis import given, settings, strategies as st

import edgecnn
from edgecnn.ir import QGraph, QNode, Tensor
from edgecnn.planner import plan_memory
from oracles import all_models, read


def graph(sizes, edges, outputs):
    """A QGraph of int8 tensors of the given sizes; node k writes tensor k+1 from `edges[k]`."""
    tensors = {i: Tensor(i, f"t{i}", (int(s),), "int8") for i, s in enumerate(sizes)}
    nodes = tuple(QNode(k, "ADD", tuple(ins), (k + 1,), None) for k, ins in enumerate(edges))
    return QGraph(MappingProxyType(tensors), nodes, (0,), tuple(outputs), None)


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 14))
    sizes = draw(st.lists(st.integers(1, 300), min_size=n + 1, max_size=n + 1))
    edges = [sorted(set(draw(st.lists(st.integers(0, k), min_size=1, max_size=3))))
             for k in range(n)]
    return graph(sizes, edges, [n])


def live_overlaps(plan):
    found = []
    for i, a in enumerate(plan.buffers):
        for b in plan.buffers[i + 1:]:
            if a.size and b.size and a.overlaps_in_time(b) and a.overlaps_in_space(b):
                found.append((a.name, b.name))
    return found


@settings(max_examples=300, deadline=None)
@given(random_dags(), st.dictionaries(st.integers(0, 13), st.integers(0, 200), max_size=4))
def test_no_two_live_buffers_overlap(q, scratch):
    scratch = {k: v for k, v in scratch.items() if k < len(q.nodes)}
    plan = plan_memory(q, scratch)
    assert live_overlaps(plan) == []
    assert plan.arena_size >= plan.lower_bound


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=20))
def test_chains_reach_the_lower_bound(sizes):
    q = graph(sizes, [[k] for k in range(len(sizes) - 1)], [len(sizes) - 1])
    plan = plan_memory(q)
    assert plan.arena_size == plan.lower_bound
    assert plan.lower_bound == max(a + b for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("path", [p for p in all_models() if "/nets/" in p or "digits" in p])
def test_committed_models_plan_at_the_lower_bound(path):
    plan = plan_memory(edgecnn.load(read(path)).qgraph)
    assert live_overlaps(plan) == []
    assert plan.arena_size == plan.lower_bound


def test_describe_draws_every_step():
    q = graph([10, 20, 30], [[0], [1]], [2])
    picture = plan_memory(q).describe()
    assert "lower bound 50" in picture
    assert picture.count("step ") == 2  # one row per step (node)
