"""The replay flow's shape: every stream built is consumed (no dangling branch)."""

from __future__ import annotations

from gridflow.dataflows.replay import build


def _stream_ids(port) -> set[str]:
    if hasattr(port, "stream_id"):
        return {port.stream_id}
    return set(getattr(port, "stream_ids", {}).values())


def test_every_stream_of_the_replay_flow_is_consumed() -> None:
    flow = build()
    produced: dict[str, str] = {}
    consumed: set[str] = set()
    for step in flow.substeps:
        for name in step.dwn_names:
            for sid in _stream_ids(getattr(step, name)):
                produced[sid] = step.step_id
        for name in step.ups_names:
            consumed |= _stream_ids(getattr(step, name))
    dangling = {sid: step for sid, step in produced.items() if sid not in consumed}
    assert not dangling, f"streams built but never used: {dangling}"
    assert any(s.step_id.endswith("journal_out") for s in flow.substeps)
