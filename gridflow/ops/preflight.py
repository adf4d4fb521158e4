"""Checks a live (or paper) flow's venue before the flow starts: ``gridflow live``.

Each check talks to the configured venue through ccxt (:func:`make_exchange`: rate
limiter on, the same options as the flow) and ends ``ok``, ``fail`` (with the fix in its
message), ``warn`` (reported, not blocking) or ``skip``:

* **keys**: live mode needs an API key and secret (the config refuses live mode
  without them) and the venue must accept them (a signed ``fetch_balance``);
* **venue**: ``fetch_time`` answers; **clock**: its time differs from this machine's by at
  most ``live.preflight.max_clock_skew_ms`` (at the request's midpoint);
* **symbols**: every traded symbol is listed (``load_markets``), active and of
  ``live.exchange.market_type``;
* **balance** (live): the venue holds the quote currency (fail when none; a warning
  when less than the accounts' capital, which a bot after losses may well have);
* **margin mode**, **leverage** (live, perpetuals): each symbol's venue settings
  (``fetch_leverages``) equal ``live.preflight.margin_mode`` and the account's leverage
  (rounded up to a whole number); set with ``set_margin_mode`` / ``set_leverage`` when
  ``live.preflight.apply_settings``, else refused;
* **capital**: one grid level of every symbol clears the venue's minimum order at the
  current price, sized by the engine's rule (:mod:`gridflow.ops.sizing`);
* **positions**, **open orders** (with keys): listed as warnings.

Secrets never appear in a message (:func:`gridflow.exchange.retry.error_text`).
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import ccxt

from gridflow.config.models import GridflowConfig
from gridflow.exchange.client import ccxt_symbol, config_symbol, make_exchange
from gridflow.exchange.retry import error_text
from gridflow.ops.sizing import check_level
from gridflow.ops.venue_settings import check_venue_settings, exchange_secrets

__all__ = ["Check", "PreflightReport", "preflight"]

Status = Literal["ok", "fail", "warn", "skip"]
_ENV_KEYS = "GRIDFLOW_LIVE__EXCHANGE__API_KEY / GRIDFLOW_LIVE__EXCHANGE__SECRET"


@dataclass(frozen=True)
class Check:
    """One preflight finding: ``name`` (``"venue"``, ``"clock"``, ``"symbols"`` ...),
    ``status`` and ``message`` (for a ``fail``: what is wrong and what to change)."""

    name: str
    status: Status
    message: str


@dataclass
class PreflightReport:
    """What :func:`preflight` found.

    Attributes
    ----------
    mode : "paper" or "live"
    venue : str
        ccxt exchange id.
    checks : list[Check]
        In the order they ran.
    positions : list[dict]
        Open positions on the venue: ``symbol`` (config form), ``side``, ``amount``
        (base), ``entry_price`` and ``unrealized`` (quote).
    open_orders : list[dict]
        Open orders on the venue: ``symbol``, ``side``, ``type``, ``amount`` (base),
        ``price`` (quote, None for market), ``client_order_id``, ``gridflow`` (its
        client id is one of gridflow's).
    """

    mode: str
    venue: str
    checks: list[Check] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    open_orders: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, status: Status, message: str) -> None:
        """Record one finding (see :class:`Check`)."""
        self.checks.append(Check(name, status, message))

    @property
    def failures(self) -> list[Check]:
        """The failed checks, in order."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not block)."""
        return not self.failures

    def render(self) -> str:
        """The report as text: one line per check, then positions and open orders."""
        out = [f"preflight: {self.venue} ({self.mode})"]
        out += [f"  {c.status.upper() if c.status == 'fail' else c.status:<5} "
                f"{c.name:<12} {c.message}" for c in self.checks]
        out.append(f"positions on the venue: {len(self.positions) or 'none'}")
        out += [f"  {p['symbol']} {p['side']} {p['amount']:g} @ {p['entry_price']:g} "
                f"(unrealized {p['unrealized']:+.2f})" for p in self.positions]
        out.append(f"open orders on the venue: {len(self.open_orders) or 'none'}")
        out += [f"  {o['symbol']} {o['side']} {o['type']} {o['amount']:g}"
                + (f" @ {o['price']:g}" if o["price"] is not None else "")
                + f" {o['client_order_id'] or '-'}"
                + (" (gridflow's)" if o["gridflow"] else " (not gridflow's)")
                for o in self.open_orders]
        n = len(self.failures)
        out.append("preflight: passed" if not n else
                   f"preflight: {n} check{'s' if n > 1 else ''} failed; fix "
                   f"{'them' if n > 1 else 'it'} and start again")
        return "\n".join(out)


def _has_keys(cfg: GridflowConfig) -> bool:
    ex = cfg.live.exchange
    return all(s is not None and s.get_secret_value() for s in (ex.api_key, ex.secret))


def _clock(report: PreflightReport, cfg: GridflowConfig, ex: ccxt.Exchange) -> bool:
    """Reachability and clock skew; False when the venue did not answer."""
    t0 = time.time() * 1000.0
    try:
        server_ms = ex.fetch_time()
    except (ccxt.BaseError, OSError) as exc:
        report.add("venue", "fail", f"{cfg.live.exchange.id} did not answer fetch_time: "
                   f"{error_text(exc, exchange_secrets(cfg))}; check live.exchange.urls, the "
                   "network (proxy, firewall) and the venue's status page")
        return False
    t1 = time.time() * 1000.0
    report.add("venue", "ok", f"reachable, round trip {t1 - t0:.0f} ms")
    bound = cfg.live.preflight.max_clock_skew_ms
    if bound == 0:
        report.add("clock", "skip", "not checked (live.preflight.max_clock_skew_ms = 0)")
        return True
    skew = float(server_ms) - (t0 + t1) / 2.0
    if abs(skew) > bound:
        report.add("clock", "fail", f"the venue's clock is {abs(skew):,.0f} ms "
                   f"{'ahead of' if skew > 0 else 'behind'} this machine's (bound "
                   f"live.preflight.max_clock_skew_ms = {bound}): synchronise this "
                   "machine's clock (timedatectl set-ntp true, or chrony); "
                   "live.preflight.max_clock_skew_ms = 0 for a simulated venue")
    else:
        report.add("clock", "ok", f"skew {skew:+.0f} ms (bound {bound} ms)")
    return True


def _symbols(report: PreflightReport, cfg: GridflowConfig, ex: ccxt.Exchange,
             traded: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """Config symbol -> ccxt market of the symbols listed, active and of the type."""
    mt = cfg.live.exchange.market_type
    try:
        markets = ex.load_markets()
    except (ccxt.BaseError, OSError) as exc:
        report.add("symbols", "fail", f"load_markets failed: {error_text(exc, exchange_secrets(cfg))}"
                   "; check live.exchange.urls and the venue's status")
        return {}
    out, bad = {}, []
    for sym in sorted({s for syms in traded.values() for s in syms}):
        where = ", ".join(f"accounts[name={a}]" for a, syms in sorted(traded.items())
                          if sym in syms)
        m = markets.get(ccxt_symbol(sym, mt))
        if m is None:
            near = difflib.get_close_matches(ccxt_symbol(sym, mt), list(markets), n=3)
            bad.append(f"{sym} is not listed on {cfg.live.exchange.id} (as "
                       f"{ccxt_symbol(sym, mt)}"
                       + (f"; close: {', '.join(config_symbol(n) for n in near)}" if near
                          else "") + f"): fix or remove it in {where}")
        elif m.get("active") is False:
            bad.append(f"{sym} is listed but not trading ({(m.get('info') or {}).get('status', 'inactive')}"
                       f"): remove it from {where}")
        elif m.get("type") != mt:
            bad.append(f"{sym} trades as {m.get('type')}, not {mt}: set "
                       f"live.exchange.market_type or remove it from {where}")
        else:
            out[sym] = m
    for msg in bad:
        report.add("symbols", "fail", msg)
    if out:
        report.add("symbols", "ok", f"{', '.join(out)} listed and trading ({mt})")
    return out


def _balance(report: PreflightReport, cfg: GridflowConfig, ex: ccxt.Exchange,
             markets: Mapping[str, dict], traded: Mapping[str, Sequence[str]]) -> bool:
    """Keys accepted (a signed call) and, live, capital covered; False on refused keys."""
    try:
        bal = ex.fetch_balance()
    except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
        report.add("keys", "fail", f"the venue refused the API key: "
                   f"{error_text(exc, exchange_secrets(cfg))}; check {_ENV_KEYS}, the key's "
                   "futures-trading permission and its IP allow-list")
        return False
    except (ccxt.BaseError, OSError) as exc:
        report.add("balance", "fail", f"fetch_balance failed: {error_text(exc, exchange_secrets(cfg))}")
        return False
    report.add("keys", "ok", "accepted by the venue")
    need: dict[str, float] = {}
    for acct in cfg.accounts:
        quotes = {markets[s]["quote"] for s in traded.get(acct.name, ()) if s in markets}
        if len(quotes) == 1:
            q = quotes.pop()
            need[q] = need.get(q, 0.0) + acct.capital_quote
    for q, capital in sorted(need.items()):
        have = float((bal.get("total") or {}).get(q) or 0.0)
        if cfg.live.mode == "live" and have <= 0:
            report.add("balance", "fail", f"the venue holds no {q} for the accounts' "
                       f"capital_quote of {capital:,.2f}: transfer {q} to the trading "
                       "(futures) wallet of this API key's account")
        elif cfg.live.mode == "live" and have < capital:  # after losses too: a warning
            report.add("balance", "warn", f"the venue holds {have:,.2f} {q}, less than the "
                       f"accounts' capital_quote of {capital:,.2f} that orders are sized "
                       "for: fund the account or lower accounts.capital_quote")
        else:
            report.add("balance", "ok", f"{have:,.2f} {q} on the venue, capital "
                       f"{capital:,.2f}")
    return True


def _capital(report: PreflightReport, cfg: GridflowConfig, ex: ccxt.Exchange,
             markets: Mapping[str, dict], traded: Mapping[str, Sequence[str]]) -> None:
    """One grid level of each symbol against the venue's minimum order."""
    try:
        tickers = ex.fetch_tickers([m["symbol"] for m in markets.values()])
    except (ccxt.BaseError, OSError) as exc:
        report.add("capital", "fail", f"no prices to size a level with (fetch_tickers: "
                   f"{error_text(exc, exchange_secrets(cfg))})")
        return
    decimals = getattr(ex, "precisionMode", None) == ccxt.DECIMAL_PLACES
    for acct in cfg.accounts:
        syms = list(traded.get(acct.name, ()))
        params = acct.assignment(syms)
        for sym in syms:
            m = markets.get(sym)
            if m is None or sym not in params:
                continue
            t = tickers.get(m["symbol"]) or {}
            px = float(t.get("last") or t.get("close") or math.nan)
            if not (math.isfinite(px) and px > 0):
                report.add("capital", "warn", f"{acct.name} {sym}: no price on the venue; "
                           "not checked")
                continue
            step = (m.get("precision") or {}).get("amount") or 0.0
            step = 10.0 ** -step if decimals and step else float(step)
            limits = m.get("limits") or {}
            lv = check_level(acct, cfg.fees, params[sym], len(syms), px, step,
                             float((limits.get("amount") or {}).get("min") or 0.0),
                             float((limits.get("cost") or {}).get("min") or 0.0))
            q = m.get("quote", "")
            if lv.ok:
                report.add("capital", "ok", f"{acct.name} {sym}: a level is {lv.notional:,.2f}"
                           f" {q}, the venue's smallest order {lv.min_order:,.2f} {q}")
            else:
                report.add("capital", "fail", f"{acct.name} {sym}: a level is "
                           f"{lv.notional:,.2f} {q} ({lv.how}), below the venue's smallest "
                           f"order of {lv.min_order:,.2f} {q} at {px:g}: {lv.fix}")


def _holdings(report: PreflightReport, cfg: GridflowConfig, ex: ccxt.Exchange,
              markets: Mapping[str, dict]) -> None:
    """Open positions and orders of the traded symbols, as warnings."""
    ids = [m["symbol"] for m in markets.values()]
    try:
        if cfg.live.exchange.market_type == "swap":
            for p in ex.fetch_positions(ids):
                size = float(p.get("contracts") or 0.0) * float(p.get("contractSize") or 1.0)
                if size and p.get("symbol") in ids:
                    report.positions.append({
                        "symbol": config_symbol(p["symbol"]), "side": p.get("side") or "?",
                        "amount": size, "entry_price": float(p.get("entryPrice") or 0.0),
                        "unrealized": float(p.get("unrealizedPnl") or 0.0)})
        for m in markets.values():  # contracts: regular, then conditional (algo) orders
            sym = m["symbol"]
            for params in ({}, {"trigger": True}) if m.get("contract") else ({},):
                for o in ex.fetch_open_orders(sym, params=params):
                    cid = o.get("clientOrderId") or ""
                    report.open_orders.append({
                        "symbol": config_symbol(sym), "side": o.get("side"),
                        "type": o.get("type"), "amount": float(o.get("amount") or 0.0),
                        "price": o.get("price") or o.get("triggerPrice"),
                        "client_order_id": cid, "gridflow": cid.startswith("gf")})
    except (ccxt.BaseError, OSError) as exc:
        report.add("holdings", "fail", f"could not list positions and open orders: "
                   f"{error_text(exc, exchange_secrets(cfg))}")
        return
    for name, rows in (("positions", report.positions), ("open orders", report.open_orders)):
        report.add(name, "warn" if rows else "ok",
                   f"{len(rows)} on the venue (listed below)" if rows else "none")


def preflight(cfg: GridflowConfig, account_symbols: Mapping[str, Sequence[str]]
              ) -> PreflightReport:
    """Run every check against ``cfg``'s venue.

    Parameters
    ----------
    cfg : GridflowConfig
        A validated config (``cfg.live``: mode, exchange, ``preflight`` settings).
    account_symbols : mapping of str to sequence of str
        Account name -> the config symbols it trades (``plan_run(cfg, mode)``'s
        ``account_symbols``: the one rule of which symbols an account trades).

    Returns
    -------
    PreflightReport
        Its ``ok`` is False when any check failed; nothing raises for a venue that is
        down, a refused key or an unknown symbol: each is a failed check.

    Raises
    ------
    ValueError
        ``live.exchange.id`` is not a ccxt exchange.
    """
    live = cfg.live
    report = PreflightReport(mode=live.mode, venue=live.exchange.id)
    keys = _has_keys(cfg)
    if live.mode == "live" and not keys:  # the config refuses this; kept as a guard
        report.add("keys", "fail", f"live mode needs an API key and secret: set {_ENV_KEYS}")
        return report
    ex = make_exchange(live.exchange)
    if not _clock(report, cfg, ex):
        return report
    markets = _symbols(report, cfg, ex, account_symbols)
    if not markets:
        return report
    if keys and _balance(report, cfg, ex, markets, account_symbols):
        if live.mode == "live":
            check_venue_settings(report.add, cfg, ex, markets, account_symbols)
        _holdings(report, cfg, ex, markets)
    elif not keys:
        report.add("account", "skip", "paper mode without API keys: balance, positions and "
                   "open orders not read")
    _capital(report, cfg, ex, markets, account_symbols)
    return report
