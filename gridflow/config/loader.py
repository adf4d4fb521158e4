"""TOML preset -> validate -> freeze, in one function."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from gridflow.config.candles import CandleRules
from gridflow.config.live import StreamsConfig
from gridflow.config.ops import NOT_IDENTITY as OPS_NOT_IDENTITY, OpsConfig
from gridflow.config.preflight import PreflightConfig
from gridflow.config.models import GridflowConfig
from gridflow.config.preset_source import preset
from gridflow.config.renamed import with_old_names
from gridflow.series_spec import is_spec, source_identity

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")

def load_config(path: str | Path | None = None, **overrides: Any) -> GridflowConfig:
    """Load a TOML preset, apply environment and explicit overrides, validate, freeze.

    Parameters
    ----------
    path : str or Path, optional
        TOML preset; default ``gridflow/config/default.toml``. Relative data file
        paths inside it are resolved against the preset's folder.
    **overrides
        Field values that beat both the environment and the preset (CLI flags). As in
        pydantic-settings, a dict override is merged key by key into the preset's
        table (``markets={}`` keeps the preset's markets); use :func:`config_from_dict`
        for a complete config that must not be merged.

    Returns
    -------
    GridflowConfig
        Frozen, validated configuration.

    Raises
    ------
    FileNotFoundError
        If the preset does not exist.
    pydantic.ValidationError
        Naming the offending field.
    ValueError
        If the file is not valid TOML (naming the file, line and column), or a data path
        starts with ``~user`` of an unknown user.
    """
    p = Path(path) if path is not None else DEFAULT_CONFIG
    with p.open("rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{p}: not valid TOML: {exc}") from None
    for key in ("data", "funding"):
        _absolute_paths(raw.get(key), p.parent)
    token = preset.set(raw)
    try:
        return GridflowConfig(**overrides)
    finally:
        preset.reset(token)


def _absolute_paths(items: Any, base: Path) -> None:
    """Make the relative ``path`` of each table of ``items`` relative to ``base`` (a
    market-data spec, :mod:`gridflow.series_spec`, is no path)."""
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and "path" in item and not is_spec(item["path"]):
                try:
                    q = Path(str(item["path"])).expanduser()
                except RuntimeError as exc:  # "~someone/..." of nobody known
                    raise ValueError(f"{base}: path {item['path']!r}: {exc}") from None
                if not q.is_absolute():
                    item["path"] = str((base / q).resolve())


#: Settings of how a live run runs, not of what it does (dotted paths): never hashed, so
#: switching them between two starts of a run keeps its identity.
HOW_NOT_WHAT: tuple[str, ...] = ("live.streams.hub", "live.broker_wait_max_s",
                                 "live.exchange.rate_limit_burst", "live.broker_processes")

#: Settings added after runs were journaled (dotted path) -> their default (as JSON).
_ADDED_LATER: dict[str, object] = {
    "candles": CandleRules().model_dump(mode="json"),
    "live.streams": StreamsConfig().model_dump(mode="json", exclude={"hub"}),
    "live.exchange.ws_urls": {},
    "live.exchange.password": None,
    "live.allow_beta_venue": False,
    "live.broker_lanes": 8,
    "live.ops": OpsConfig().model_dump(mode="json", exclude=set(OPS_NOT_IDENTITY)),
    "live.preflight": PreflightConfig().model_dump(mode="json"),
}


#: Fields of every account's ``risk`` table and of every strategy entry added after runs
#: were journaled -> their default (as JSON); hashed only when set to something else.
_RISK_ADDED_LATER: dict[str, object] = {"max_symbol_exposure": 0.0}
_STRATEGY_ADDED_LATER: dict[str, object] = {
    "time_stop_candles": 0, "entry_filter": None, "regime_filter": None, "sl_atr": 0.0,
    "sl_atr_period": 14}


def _pop_account_defaults(doc: dict) -> None:
    """:func:`_pop_default` of :data:`_RISK_ADDED_LATER` and
    :data:`_STRATEGY_ADDED_LATER` in each account of ``doc`` (lists of tables, which a
    dotted path cannot name)."""
    for acct in doc.get("accounts") or ():
        if not isinstance(acct, dict):
            continue
        for field, default in _RISK_ADDED_LATER.items():
            _pop_default(acct, f"risk.{field}", default)
        for strat in acct.get("strategies") or ():
            for field, default in _STRATEGY_ADDED_LATER.items():
                if isinstance(strat, dict):
                    _pop_default(strat, field, default)


def _pop_path(doc: dict, dotted: str) -> None:
    """Remove the setting at ``dotted`` from ``doc`` (if there)."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        doc = doc.get(key)
        if not isinstance(doc, dict):
            return
    doc.pop(leaf, None)


def _pop_default(doc: dict, dotted: str, default: object) -> None:
    """Remove the setting at ``dotted`` from ``doc`` when it equals ``default``."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        doc = doc.get(key)
        if not isinstance(doc, dict):
            return
    if doc.get(leaf) == default:
        doc.pop(leaf)


def config_hash(cfg: GridflowConfig, mode: str = "replay") -> str:
    """SHA-256 (hex, 16 chars) of the effective config: the identity of a run in
    ``mode`` (``"replay"``, ``"paper"`` or ``"live"``).

    Data paths are reduced to file names and sizes, so the hash does not depend on
    where the repo lives; a replay's store series to its spec and what the store holds
    of it (:func:`~gridflow.series_spec.source_identity`). A paper or live run reads no
    data: its store series count by spec alone, so a download into the store does not
    make a restarted live run another run. Left out: ``db_url``, ``pace_s``, ``restore_from_journal``,
    ``logging`` (how a run logs is not what it does), the metrics endpoint
    (``live.ops.metrics_port`` / ``metrics_host``), where the streams are parsed, how
    long the broker waits and how its requests burst (:data:`HOW_NOT_WHAT`), ``run_id``
    and the replay window
    (``start_ms``, ``end_ms``) — where the journal is,
    how fast it is paced and which slice of the candles one process covers do not change
    the strategy, so a process continuing a run over later candles has the same hash.
    The default run id (:func:`default_run_id`) does include the window. Renamed fields
    are hashed under their old names (:func:`~gridflow.config.renamed.with_old_names`):
    a rename changes no run's identity. Settings added later (:data:`_ADDED_LATER`) count
    only when they differ from their default: an upgrade changes no run's identity.
    """
    doc = with_old_names(cfg.model_dump(mode="json"))
    ops = doc.get("live", {}).get("ops")
    for watch_only in OPS_NOT_IDENTITY if isinstance(ops, dict) else ():
        ops.pop(watch_only, None)  # the metrics endpoint is not what a run does
    for how in HOW_NOT_WHAT:
        _pop_path(doc, how)
    for added, default in _ADDED_LATER.items():  # hashed only when not the default
        _pop_default(doc, added, default)
    _pop_account_defaults(doc)
    for volatile in ("db_url", "pace_s", "restore_from_journal", "start_ms", "end_ms",
                     "run_id", "command_poll_s", "logging"):
        doc.pop(volatile, None)
    content = mode == "replay"  # paper and live take their candles from the exchange
    doc["data"] = [{**source_identity(f.path, content=content), "symbol": f.symbol,
                    "timeframe": f.timeframe} for f in cfg.data]
    doc["funding"] = [_funding_identity(f.path, content) | {"symbol": f.symbol}
                      for f in cfg.funding]
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _funding_identity(path: str, content: bool) -> dict[str, Any]:
    """A funding source in the config hash: a file by its name only (as it always was:
    the hash of every run booked from a funding file stays), a store series as
    :func:`~gridflow.series_spec.source_identity`."""
    if is_spec(path):
        return source_identity(path, content=content)
    return {"name": Path(path).name}


def default_run_id(cfg: GridflowConfig, mode: str = "replay", *,
                   digest: str | None = None) -> str:
    """``run-`` + 16 hex chars over the config hash of a run in ``mode`` (``digest``
    when the caller has it) and the replay window: the same config over the same window
    is the same run, another window another run."""
    key = f"{digest or config_hash(cfg, mode)}|{cfg.start_ms}|{cfg.end_ms}"
    return "run-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def config_from_dict(doc: dict[str, Any]) -> GridflowConfig:
    """Validate a complete config dump (``GridflowConfig.model_dump``) without reading a
    preset: no TOML is merged in, so empty tables stay empty. The environment still
    supplies what the dump leaves out (``GRIDFLOW_APPRISE_URLS``).

    Raises
    ------
    pydantic.ValidationError
        Naming the offending field.
    """
    token = preset.set({})
    try:
        return GridflowConfig(**doc)
    finally:
        preset.reset(token)
