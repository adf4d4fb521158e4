"""Shared pieces of the risk-rule tests: engine builders and hand-made candles."""

from __future__ import annotations

from helpers import indicator_chunk

from gridflow.chunks import JournalBatch
from gridflow.config.models import (
    AccountConfig,
    FeesConfig,
    GridAtrParams,
    RiskConfig,
    SizingConfig,
)
from gridflow.events import Command
from gridflow.operators.engine import AccountEngine

H = 3_600_000
BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
NOFEES = FeesConfig(maker_fee=0.0, taker_fee=0.0, slippage=0.0)
# every switch as far away as allowed, no margin cap: each test tightens one rule
LOOSE = {"max_margin_ratio": 1.0, "session_loss_grid": 0.9, "session_loss_single": 0.9,
         "daily_loss_limit": 0.5, "rolling_drawdown_pct": 0.9, "max_drawdown_pct": 0.9}
ST = "supertrend_10_3.0@4h.direction"


candles = indicator_chunk


def flat(price, n):
    return [(price, price, price, price)] * n


def atr_params(**kw):
    base = {"sma_period": 2, "atr_period": 1, "levels": 2, "atr_start": 1.0, "atr_step": 1.0,
            "sl_pct": 0.5}
    return GridAtrParams(**{**base, **kw})


GRID_VALS = {"sma_2": 100.0, "atr_1": 10.0}


def make_engine(*strategies, symbols=(BTC,), capital=3000.0, leverage=1.0, risk=None,
                sizing=None, fees=NOFEES):
    acct = AccountConfig(
        name="t", capital_quote=capital, leverage=leverage, symbols=tuple(symbols),
        strategies=tuple(strategies), risk=RiskConfig(**{**LOOSE, **(risk or {})}),
        sizing=SizingConfig(**(sizing or {})),
    )
    return AccountEngine(acct, list(symbols), {s: "1h" for s in symbols}, fees, {})


def run(eng, *chunks, flush=True):
    out = JournalBatch()
    for c in chunks:
        out.extend(eng.on_chunk(c))
    if flush:
        out.extend(eng.flush())
    return out


def events(batch, kind):
    return [e for e in batch.events if e.kind == kind]


def entries(batch):
    return [(o.symbol, o.tag, o.ts_ms, o.price, o.amount) for o in batch.orders
            if o.tag.startswith("L")]


def switch_on(eng, names):
    """Turn kill switches on the way a restart from the journal does."""
    doc = eng.summary().model_dump()
    doc["kill_switch"] = ",".join(names)
    eng.restore(doc)


def reset_cmd(reason=None, cid=1, by="ops"):
    payload = {} if reason is None else {"reason": reason}
    return Command(command_id=cid, account="t", kind="reset_kill_switch", payload=payload,
                   issued_at_ms=0, issued_by=by)
