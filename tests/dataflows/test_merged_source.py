"""MergedSource: several fixed-partitioned sources as one Bytewax input."""

from __future__ import annotations

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, run_main

from gridflow.dataflows.merged_source import MergedSource, unmerge


class _Part(StatefulSourcePartition):
    def __init__(self, items: list, start: int, built: list, key: tuple) -> None:
        self.items, self.i = items, start
        built.append(key)

    def next_batch(self) -> list:
        if self.i >= len(self.items):
            raise StopIteration
        self.i += 1
        return [self.items[self.i - 1]]

    def next_awake(self):
        return None

    def snapshot(self) -> int:
        return self.i


class _Counting(FixedPartitionedSource):
    """Partitions ``p0``, ``p1``... each emitting its list, resumable at an index."""

    def __init__(self, parts: dict[str, list]) -> None:
        self.parts = parts
        self.built: list = []

    def list_parts(self) -> list[str]:
        return list(self.parts)

    def build_part(self, step_id, for_part, resume_state):
        return _Part(self.parts[for_part], resume_state or 0, self.built,
                     (step_id, for_part, resume_state))


def test_every_source_comes_back_whole_and_apart():
    a = _Counting({"p0": [1, 2, 3], "p1": [10, 20]})
    b = _Counting({"x:y": ["u", "v"]})  # a part key holding ':' stays whole
    flow = Dataflow("merged")
    streams = unmerge("in", op.input("in", flow, MergedSource({"a": a, "b": b})), ["a", "b"])
    out_a, out_b = [], []
    op.output("oa", streams["a"], TestingSink(out_a))
    op.output("ob", streams["b"], TestingSink(out_b))
    run_main(flow)
    assert sorted(out_a) == [1, 2, 3, 10, 20]
    assert out_b == ["u", "v"]
    # built under the inner source's own name, with the inner part key
    assert sorted(a.built) == [("a", "p0", None), ("a", "p1", None)]
    assert b.built == [("b", "x:y", None)]


def test_parts_are_listed_per_source_and_resume_their_own_state():
    a = _Counting({"p0": [1, 2, 3]})
    b = _Counting({"q": [7, 8]})
    src = MergedSource({"a": a, "b": b})
    assert src.list_parts() == ["a:p0", "b:q"]
    part = src.build_part("in", "a:p0", 2)  # resumed after two items
    assert part.next_batch() == [("a", 3)]
    assert part.snapshot() == 3
    with pytest.raises(StopIteration):
        part.next_batch()
    assert src.build_part("in", "b:q", None).next_batch() == [("b", 7)]


@pytest.mark.parametrize("names", [{}, {"": 1}, {"a:b": 1}])
def test_bad_source_names_are_refused(names):
    with pytest.raises(ValueError):
        MergedSource({k: _Counting({"p": []}) for k in names})
