"""Several fixed-partitioned sources as one Bytewax input, so their epochs move together.

Why: Bytewax's input operator advances each partition's epoch ``epoch_interval`` after
that partition's previous advance, and a partition that has advanced emits nothing more
until every output of the flow has finished the epoch before (its backpressure). Each
``op.input`` keeps its own clock; two inputs whose clocks are ``g`` seconds apart (their
builds took turns at the start, then each advance lands on whatever activation comes
first) hold the leading input's new items for ``g`` at every epoch boundary, and ``g``
random-walks between 0 and the interval. Measured in the live flow (candles, account
stream, broker outcomes, commands, shutdown: five inputs, 10 s epochs): a closed candle
held 250 to 600 ms every epoch, the p99 of candle close -> entry 537 ms against 87 ms
with the boundaries pushed out of the run. Partitions of one input are all looked at in
each of its activations with one ``now``: built together, they advance together.

:class:`MergedSource` lists every inner source's partitions under ``name:part``, builds
each with the inner source's own ``build_part`` (step id ``name``: what the inner source
was called as an input of its own) and tags each item ``(name, item)``; :func:`unmerge`
splits the stream back. Resume states stay per partition, under the merged keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

__all__ = ["MergedSource", "unmerge"]


class _Tagged(StatefulSourcePartition):
    """An inner partition whose items come out as ``(name, item)``."""

    def __init__(self, name: str, inner: StatefulSourcePartition) -> None:
        self.name = name
        self.inner = inner

    def next_batch(self) -> list:
        return [(self.name, x) for x in self.inner.next_batch()]

    def next_awake(self):
        return self.inner.next_awake()

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class MergedSource(FixedPartitionedSource):
    """``sources`` (name -> :class:`FixedPartitionedSource`) as one input.

    Items: ``(name, item)`` for each item of source ``name``. Partitions:
    ``"name:part"`` for each partition ``part`` of source ``name``, with that
    partition's resume state.

    Raises
    ------
    ValueError
        No source, or a name that is empty or holds ``":"``.
    """

    def __init__(self, sources: Mapping[str, FixedPartitionedSource]) -> None:
        if not sources:
            raise ValueError("MergedSource needs at least one source")
        bad = [n for n in sources if not n or ":" in n]
        if bad:
            raise ValueError(f"source names must be non-empty and free of ':', got {bad}")
        self.sources = dict(sources)

    def list_parts(self) -> list[str]:
        return [f"{name}:{part}" for name, src in self.sources.items()
                for part in src.list_parts()]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _Tagged:
        name, _, part = for_part.partition(":")
        return _Tagged(name, self.sources[name].build_part(name, part, resume_state))


def unmerge(step_id: str, stream, names) -> dict[str, Any]:
    """The streams of a :class:`MergedSource` input: name -> the items of that source
    (untagged), one ``filter_map`` step ``{step_id}_{name}`` each."""
    import bytewax.operators as op

    def pick(name: str):
        return lambda t: t[1] if t[0] == name else None

    return {n: op.filter_map(f"{step_id}_{n}", stream, pick(n)) for n in names}
