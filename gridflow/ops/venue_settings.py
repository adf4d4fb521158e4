"""Margin mode and leverage of each traded perpetual on the venue, against the config:
read with ccxt's ``fetch_leverages`` (Binance USDⓈ-M: ``GET /fapi/v1/symbolConfig``,
margin mode and leverage per symbol; ``fetch_margin_modes`` when the leverage rows carry
no margin mode), set with ``set_margin_mode`` / ``set_leverage`` when
``live.preflight.apply_settings`` is on, else refused with the setting to change.

The wanted leverage of a symbol is the largest ``leverage`` of the accounts trading it,
rounded up to a whole number (venues take whole numbers; the engine's margin rule
counts the account's own leverage, so a venue leverage at least as high never refuses
an order the engine allowed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import ccxt

from gridflow.config.models import GridflowConfig
from gridflow.exchange.retry import error_text

__all__ = ["check_venue_settings", "exchange_secrets", "wanted_leverage"]

Add = Callable[[str, str, str], None]


def wanted_leverage(cfg: GridflowConfig, account_symbols: Mapping[str, Sequence[str]]
                    ) -> dict[str, int]:
    """Config symbol -> the whole-number leverage it must have on the venue."""
    out: dict[str, int] = {}
    for acct in cfg.accounts:
        for sym in account_symbols.get(acct.name, ()):
            out[sym] = max(out.get(sym, 1), math.ceil(acct.leverage - 1e-9))
    return out


def _read(ex: ccxt.Exchange, ids: list[str]) -> dict[str, tuple[str | None, int | None]]:
    """ccxt symbol -> (margin mode ``"cross"`` / ``"isolated"`` or None, leverage or None)."""
    rows = ex.fetch_leverages(ids)
    out = {}
    for sym in ids:
        r = rows.get(sym) or {}
        lev = r.get("longLeverage") or r.get("shortLeverage")
        out[sym] = (r.get("marginMode"), int(lev) if lev else None)
    if any(mode is None for mode, _ in out.values()) and ex.has.get("fetchMarginModes"):
        modes = ex.fetch_margin_modes(ids)
        out = {s: ((modes.get(s) or {}).get("marginMode") or m, lev)
               for s, (m, lev) in out.items()}
    return out


def exchange_secrets(cfg: GridflowConfig) -> list[str]:
    """The credentials of ``cfg.live.exchange`` (those set), for redaction."""
    return cfg.live.exchange.credentials()


def check_venue_settings(add: Add, cfg: GridflowConfig, ex: ccxt.Exchange,
                         markets: Mapping[str, dict],
                         account_symbols: Mapping[str, Sequence[str]]) -> None:
    """Check (and with ``apply_settings`` set) margin mode and leverage of every listed
    perpetual; each finding goes to ``add(name, status, message)``.

    Parameters
    ----------
    add : callable
        ``(check name, "ok" | "fail" | "warn" | "skip", message) -> None``.
    cfg : GridflowConfig
    ex : ccxt.Exchange
        Authenticated client of the venue, markets loaded.
    markets : mapping
        Config symbol -> ccxt market (listed, active, of the configured type).
    account_symbols : mapping
        Account name -> config symbols it trades.
    """
    pre = cfg.live.preflight
    swaps = {s: m for s, m in markets.items() if m.get("contract")}
    if not swaps:
        add("margin", "skip", "no perpetual traded: margin mode and leverage not checked")
        return
    if not ex.has.get("fetchLeverages"):
        add("margin", "warn", f"{cfg.live.exchange.id}: ccxt cannot read leverage and "
                              "margin mode here; check them on the venue yourself")
        return
    try:
        seen = _read(ex, [m["symbol"] for m in swaps.values()])
    except (ccxt.BaseError, OSError) as exc:
        add("margin", "fail", f"could not read leverage and margin mode: "
                              f"{error_text(exc, exchange_secrets(cfg))}")
        return
    levs = wanted_leverage(cfg, account_symbols)
    fix = "or set live.preflight.apply_settings = true to let gridflow set it"
    for sym, m in swaps.items():
        mode, lev = seen[m["symbol"]]
        if mode != pre.margin_mode:
            if pre.apply_settings:
                _apply(add, "margin mode", sym,
                       partial(ex.set_margin_mode, pre.margin_mode, m["symbol"]),
                       f"{mode} -> {pre.margin_mode}", cfg,
                       f"close {sym}'s position and open orders first, or set "
                       f"live.preflight.margin_mode = \"{mode}\"")
            else:
                add("margin mode", "fail", f"{sym} is in {mode} margin on the venue, the "
                    f"config wants {pre.margin_mode} (live.preflight.margin_mode): switch "
                    f"it on the venue, {fix}, or set live.preflight.margin_mode = \"{mode}\"")
        else:
            add("margin mode", "ok", f"{sym} {mode}")
        want = levs.get(sym, 1)
        if lev != want:
            if pre.apply_settings:
                _apply(add, "leverage", sym, partial(ex.set_leverage, want, m["symbol"]),
                       f"{lev}x -> {want}x", cfg, f"set it to {want}x on the venue")
            else:
                accts = [a.name for a in cfg.accounts if sym in account_symbols.get(a.name, ())]
                add("leverage", "fail", f"{sym} has leverage {lev}x on the venue, the "
                    f"config trades it at {want}x (accounts {', '.join(accts)}): set "
                    f"{want}x on the venue, {fix}, or change the accounts' leverage")
        else:
            add("leverage", "ok", f"{sym} {lev}x")


def _apply(add: Add, name: str, sym: str, call: Callable[[], object], change: str,
           cfg: GridflowConfig, fix: str) -> None:
    try:
        call()
    except ccxt.MarginModeAlreadySet:
        add(name, "ok", f"{sym} already set")
    except (ccxt.BaseError, OSError) as exc:
        add(name, "fail", f"the venue refused to change {sym}'s {name} ({change}): "
                          f"{error_text(exc, exchange_secrets(cfg))}; {fix}")
    else:
        add(name, "ok", f"{sym} set ({change})")
