"""The replay dataflow: candle files -> validation -> indicators -> account engines
-> journal. Run it with ``python -m bytewax.run dataflows.replay:flow`` (default
preset) or ``dataflows.replay:build('my.toml')``; ``gridflow replay`` wraps it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from gridflow.config import GridflowConfig, load_config
from gridflow.dataflows.alert_sink import AlertSink
from gridflow.dataflows.command_source import CommandSource
from gridflow.dataflows.heap import freeze_startup_heap
from gridflow.dataflows.merged_source import MergedSource, unmerge
from gridflow.dataflows.plan import RunPlan, plan_run
from gridflow.dataflows.sinks import JournalSink
from gridflow.dataflows.sources import CandleFileSource
from gridflow.dataflows.steps import (
    ProgressTap,
    make_account_builder,
    make_alert_throttle,
    make_fanout,
    make_indicator_step,
    validate_step,
)
from gridflow.logs import setup_for


JOURNAL_GATHER_S = 0.2
"""A replay gathers its journal rows for at most 0.2 s into one transaction: a 1m replay
makes an engine batch every few milliseconds and SQLite's commit costs about one. On an
SQLite file the replay's writer process commits them, and a transaction closes after
``PROCESS_FLUSH_RECORDS`` records already (see :class:`~gridflow.dataflows.sinks.JournalSink`);
elsewhere after 50,000."""


def build_flow(plan: RunPlan, progress: Callable[[int], object] | None = None) -> Dataflow:
    """The replay dataflow of a resolved :class:`RunPlan`.

    ``progress``, if given, is called with the number of candles each account engine
    call processed (for a progress bar).
    """
    cfg = plan.cfg
    flow = Dataflow("gridflow_replay")
    sources = {
        "candles": CandleFileSource(
            plan.files, cfg.chunk_size, cfg.pace_s, start_ms=cfg.start_ms, end_ms=cfg.end_ms,
            warmup=cfg.warmup_candles),
        "commands": command_source(plan),
    }
    inputs = unmerge("inputs", op.input("inputs", flow, MergedSource(sources)), sources)
    # one input, so that the epochs of both move together (dataflows.merged_source)
    # candles: CandleChunk (one symbol, up to chunk_size candles); commands: see below
    records, side_journal = engine_records(flow, plan, inputs["candles"],
                                           commands=inputs["commands"])
    if progress is not None:
        op.inspect("progress", records, ProgressTap(progress))
    journal_and_alerts(plan, records, side_journal, gather_s=JOURNAL_GATHER_S,
                       process=True)
    freeze_startup_heap()  # what exists now lives as long as the run (dataflows.heap)
    return flow


def command_source(plan: RunPlan) -> CommandSource:
    """The control-plane commands of the run of ``plan``, read from its journal."""
    cfg = plan.cfg
    return CommandSource(cfg.db_url, plan.account_symbols, cfg.command_poll_s,
                         until_run_complete=plan.run_id, background=True)


def engine_records(flow: Dataflow, plan: RunPlan, chunks, *extra_inputs, commands):
    """Candle chunks -> validation -> indicators -> the account engines (with the
    ``commands`` stream, the items of :func:`command_source`, and any ``extra_inputs``
    of ``(account, (account, item))``).

    Returns the engines' ``(account, JournalBatch)`` stream and the list of side
    journal streams (refused candles, refused commands). Shared by replay and live.
    """
    cfg = plan.cfg
    by_symbol = op.key_on("key_symbol", chunks, lambda c: c.symbol)
    # (symbol, CandleChunk)
    checked = op.stateful_map("validate", by_symbol, partial(validate_step, rules=cfg.candles))
    # (symbol, (accepted CandleChunk, JournalBatch of refused candles))
    valid = op.map_value("accepted", checked, lambda t: t[0])
    # (symbol, CandleChunk)
    refused = op.filter_map("refused", checked, lambda kv: kv[1][1] or None)
    # JournalBatch(events=[candle_rejected ...])
    with_ind = op.stateful_map("indicators", valid, make_indicator_step(plan))
    # (symbol, IndicatorChunk)
    routed = op.flat_map("to_accounts", with_ind, make_fanout(plan))
    # (account, (account, IndicatorChunk))
    # commands: ("command", Command) | ("rejected", JournalBatch)
    cmd_ok = op.filter_map("valid_commands", commands,
                           lambda t: (t[1].account, (t[1].account, t[1])) if t[0] == "command"
                           else None)
    # (account, (account, Command))
    cmd_bad = op.filter_map("bad_commands", commands,
                            lambda t: t[1] if t[0] == "rejected" else None)
    # JournalBatch(events=[command_rejected])
    records = op.stateful_batch("account_engine",
                                op.merge("engine_in", routed, cmd_ok, *extra_inputs),
                                make_account_builder(plan))
    # (account, JournalBatch)
    return records, [refused, cmd_bad]


def journal_and_alerts(plan: RunPlan, records, side_journal, background: bool = False,
                       gather_s: float = 0.0, process: bool = False) -> None:
    """Write every batch to the journal (one writer; committed on a thread of its own
    with ``background``, by a writer process with ``process``, batches gathered for
    ``gather_s`` seconds into a transaction, see
    :class:`~gridflow.dataflows.sinks.JournalSink`) and send its alerts (Apprise,
    per-kind cooldown in event time) when URLs are configured."""
    cfg = plan.cfg
    journal = op.merge("journal", *side_journal, op.key_rm("records", records))
    # JournalBatch
    op.output(
        "journal_out",
        op.key_on("key_journal", journal, lambda _b: "journal"),
        JournalSink(cfg.db_url, plan.run_id, run_row=plan.run_row(), background=background,
                    gather_s=gather_s, process=process),
    )
    # ("journal", JournalBatch) -> one writer
    urls = cfg.apprise_url_list()
    if urls:
        alerts = op.stateful_map(
            "alert_throttle",
            op.key_on("key_alerts", journal, lambda _b: "alerts"),
            make_alert_throttle(plan),
        )
        # ("alerts", [Alert ...]) admitted by the per-kind cooldown
        op.output(
            "notify",
            op.flat_map("unkey_alerts", alerts, lambda kv: kv[1]),
            AlertSink(urls, cfg.alerts.timeout_s, cfg.alerts.queue_size,
                      journal=(cfg.db_url, plan.run_id)),
        )
        # Alert -> Apprise, on a background thread (never blocks the flow); a daily
        # heartbeat also sends the daily report (a child process, alert_sink's doc)


def load_replay_config(config: str | Path | None = None, **overrides: Any) -> GridflowConfig:
    """:func:`~gridflow.config.load_config`, and without a ``funding`` override the
    store's funding of the run's store series added for the symbols without funding
    (:func:`~gridflow.data.funding.with_store_funding`): what ``gridflow replay`` and the
    app's Backtest tab run, so a perpetual backtest from the store pays its funding."""
    from gridflow.data.funding import with_store_funding

    cfg = load_config(config, **overrides)
    if "funding" in overrides:
        return cfg
    funding = with_store_funding(cfg.funding, cfg.data)
    return cfg if funding is None else load_config(config, **overrides, funding=funding)


def build(config: str | Path | GridflowConfig | None = None, **overrides: Any) -> Dataflow:
    """Build the replay flow from a TOML preset path (default preset when None), or an
    already loaded config. ``overrides`` beat the environment and the preset."""
    cfg = config if isinstance(config, GridflowConfig) else load_config(config, **overrides)
    setup_for(cfg)  # the process's logging: [logging], its secrets masked
    return build_flow(plan_run(cfg))


def from_json(path: str) -> Dataflow:
    """Build the replay flow from a JSON dump of a :class:`GridflowConfig` (what
    :meth:`gridflow.control.client.GridflowClient.launch_replay` hands its child)."""
    import json

    from gridflow.config.loader import config_from_dict

    with open(path) as fh:
        doc = json.load(fh)
    cfg = config_from_dict(doc)
    setup_for(cfg)
    return build_flow(plan_run(cfg))


def __getattr__(name: str) -> Dataflow:
    # ``python -m bytewax.run gridflow.dataflows.replay:flow`` builds the default flow
    # lazily, so importing this module has no side effects.
    if name == "flow":
        return build()
    raise AttributeError(name)
