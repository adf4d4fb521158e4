"""The live dataflow: exchange candles -> validation -> indicators -> account engines
-> journal, and in ``live`` mode also exchange fills / orders / positions into the
engines and their order intents out to the broker sink.

    python -m bytewax.run dataflows.live:flow            # paper (default)
    GRIDFLOW_LIVE__MODE=live GRIDFLOW_LIVE__ALLOW_LIVE=true \\
    GRIDFLOW_LIVE__EXCHANGE__API_KEY=... GRIDFLOW_LIVE__EXCHANGE__SECRET=... \\
        python -m bytewax.run dataflows.live:flow -r state -s 5 -b 0

Paper mode trades the candles with the replay's paper matcher (no order reaches the
exchange, no keys needed). Live mode needs ``live.allow_live = true`` and keys from the
environment. Run live with Bytewax recovery (``-r DIR -s N -b 0``): after a crash the
engines resume from their snapshot, re-emitted intents carry the same client order ids
and the broker sink's write-ahead table recognises them, so nothing is sent twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from gridflow.config import GridflowConfig, load_config
from gridflow.dataflows.heap import freeze_startup_heap
from gridflow.dataflows.merged_source import MergedSource, unmerge
from gridflow.dataflows.plan import RunPlan, plan_run
from gridflow.dataflows.replay import command_source, engine_records, journal_and_alerts
from gridflow.logs import setup_for

OUTCOME_SAFETY_POLL_S = 1.0
"""Seconds between the outcome source's reads when the broker sink (which wakes it after
each commit) wrote nothing: the safety net."""


def build_flow(plan: RunPlan) -> Dataflow:
    """The live (or paper) dataflow of a plan built with ``plan_run(cfg, mode)``."""
    from gridflow.dataflows.account_source import ExchangeStateSource
    from gridflow.dataflows.broker_sink import BrokerSink
    from gridflow.dataflows.candle_source import LiveCandleSource
    from gridflow.dataflows.outcome_source import OutcomeSource
    from gridflow.dataflows.shutdown import ShutdownSource, shutdown_streams, stoppable

    cfg = plan.cfg
    live = cfg.live
    stop = stoppable(plan)  # live: every input ends on SIGTERM / SIGINT (dataflows.shutdown)
    flow = Dataflow(f"gridflow_{plan.mode}")
    symbols = sorted(plan.timeframes)
    sources = {"candles": stop(LiveCandleSource(
        live.exchange, symbols, live.timeframe, live.warmup_candles, live.candle_poll_s,
        end_ms=live.end_ms, streams=live.streams, funding_symbols=plan.funding_feed))}
    if plan.mode == "live":
        for acct, syms in sorted(plan.account_symbols.items()):
            sources[f"exchange_{acct}"] = stop(ExchangeStateSource(
                acct, live.exchange, list(syms), live.exchange_poll_s, end_ms=live.end_ms,
                streams=live.streams, timeframe=live.timeframe))
        sources["broker_outcomes"] = stop(OutcomeSource(
            cfg.db_url, plan.run_id, max(live.exchange_poll_s / 2, OUTCOME_SAFETY_POLL_S),
            until_run_complete=True, accounts=plan.account_symbols, background=True))
        # read off the worker thread, at once after each of the broker's commits
        sources["shutdown"] = ShutdownSource(
            cfg.db_url, plan.run_id, plan.account_symbols, live.ops.on_shutdown,
            until_run_complete=live.end_ms is not None)
    sources["commands"] = stop(command_source(plan))
    inputs = unmerge("inputs", op.input("inputs", flow, MergedSource(sources)), sources)
    # one input, so that the epochs of all move together (dataflows.merged_source)
    chunks = inputs["candles"]
    # CandleChunk per symbol: the warm-up history (never traded), then each closed candle
    extra, outcomes, started = [], None, None
    if plan.mode == "live":
        for acct in sorted(plan.account_symbols):
            # ExchangeUpdate: new fills, open orders, positions, balance, watermark
            extra.append(op.map(f"key_exchange_{acct}", inputs[f"exchange_{acct}"],
                                lambda u: (u.account, (u.account, u))))
        outcomes = inputs["broker_outcomes"]
        # OrderOutcome (terminal): the broker's answers fed back to the engines, then
        # OutcomesReplayed per account once the journal's were all read
        extra.append(op.map("key_outcomes", outcomes, lambda o: (o.account, (o.account, o))))
        to_engines, started = shutdown_streams(inputs["shutdown"])
        # ShutdownRequest per account after a signal; the start's shutdown events
        extra.append(to_engines)
    records, side = engine_records(flow, plan, chunks, *extra, commands=inputs["commands"])
    side += [started] if started is not None else []
    # (account, JournalBatch)
    journal_and_alerts(plan, records, side, background=True)
    if live.ops.metrics_port is not None:  # Prometheus /metrics and /health
        from gridflow.dataflows.metrics_sink import MetricsSink

        fed = [*side, op.key_rm("metrics_records", records)]
        fed += [outcomes] if outcomes is not None else []
        op.output("metrics", op.key_on("key_metrics", op.merge("metrics_in", *fed),
                                       lambda _x: "metrics"),
                  MetricsSink(live.ops.metrics_host, live.ops.metrics_port))
        # JournalBatch | OrderOutcome | OutcomesReplayed -> one registry, one port
    if plan.mode == "live":
        intents = op.flat_map("intents", records, lambda kv: [(kv[0], i) for i in kv[1].intents])
        # (account, OrderIntent), in decision order per account
        op.output("broker", intents, BrokerSink(cfg, run_id=plan.run_id,
                                                background=not live.broker_wait))
    freeze_startup_heap()  # no full collection pauses a fill for the imports (dataflows.heap)
    return flow


def build(config: str | Path | GridflowConfig | None = None, **overrides: Any) -> Dataflow:
    """Build the live flow from a TOML preset (default preset when None) or a loaded
    config; the mode is ``live.mode`` (``paper`` unless armed)."""
    cfg = config if isinstance(config, GridflowConfig) else load_config(config, **overrides)
    setup_for(cfg)  # the process's logging: [logging], its secrets masked
    return build_flow(plan_run(cfg, mode=cfg.live.mode))


def __getattr__(name: str) -> Dataflow:
    if name == "flow":
        return build()
    raise AttributeError(name)
