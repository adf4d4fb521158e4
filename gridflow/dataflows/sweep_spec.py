"""The spec of a distributed parameter sweep or walk-forward run.

A :class:`SweepSpec` names everything a run needs: the strategy and its parameter grid,
the symbols and their candle (and funding) files, the account, fees and market rules, the
traded window, how the grid is split into partitions, and where results are stored. It
is validated once, at construction (a bad parameter name, an empty value list, a grid
whose every combination the strategy refuses or a symbol without data is an error), and
it is frozen: every process of a distributed run loads the same spec and derives the
same partitions (:meth:`SweepSpec.partitions`).

>>> spec = load_sweep_spec({"strategy": "grid_atr",
...                         "space": {"atr_start": [1, 2], "sl_frac": [0.05, 0.1]},
...                         "base": {"levels": 3}, "start_ms": "2024-01-01"})
>>> spec.n_combos, spec.partitions()
(4, [('BTC/USDT', 0)])

A spec file is TOML or JSON with the same fields (``[space]``, ``[base]``, ``[wfo]``,
``[[data]]`` tables...); relative data and funding paths in it are relative to the file.
Times are ms UTC (or ISO dates read as UTC), money in quote currency, rates fractions.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from gridflow.config.models import (
    AccountConfig,
    DataFile,
    FeesConfig,
    FundingFile,
    GridflowConfig,
    MarketSpec,
    StrategyParams,
)
from gridflow.series_spec import source_identity
from gridflow.wfo.config import WfoConfig

__all__ = ["SweepSpec", "load_sweep_spec", "read_spec_file"]

#: Fields that do not change a run's results: left out of its identity
#: (:meth:`SweepSpec.identity`), so they may differ between processes and reruns.
VOLATILE = ("sweep_id", "db_url", "chunk_size")


@lru_cache(maxsize=1)
def _preset() -> GridflowConfig:
    """The default preset (``gridflow/config/default.toml``), loaded once."""
    from gridflow.config import load_config

    return load_config()


def _preset_fees() -> FeesConfig:
    return _preset().fees


def _preset_markets() -> dict[str, MarketSpec]:
    return dict(_preset().markets)


class SweepSpec(BaseModel):
    """A parameter sweep (``kind="sweep"``) or walk-forward run (``kind="wfo"``).

    Attributes
    ----------
    sweep_id : str
        Store id (letters, digits, ``_``, ``-``; at most 64); default ``"sweep-"`` + 12
        hex chars of :meth:`identity` (the same spec is the same sweep).
    kind : {"sweep", "wfo"}
    strategy : str
        ``grid_atr``, ``envelope_dca``, ``grid_multi_tf`` or ``grid_trend``.
    space : dict[str, list]
        Swept parameter -> values tried (the cartesian product is the grid). A
        deprecated name (``sl_pct``) is accepted with a warning and keeps its name in
        the results.
    base : dict
        Fixed values of other strategy parameters.
    symbols : tuple of str
        Symbols run, each on its own (default ``("BTC/USDT",)``, or the symbols of
        ``data`` when only ``data`` is given).
    data : tuple of DataFile
        Candle files; default the bundled files of ``symbols``. Files of other symbols
        are dropped.
    funding : tuple of FundingFile or None
        None: for a symbol read from the market-data store, the store's funding series
        of the same exchange and symbol when there is one; else the bundled funding
        file of each symbol that has one (traded as a perpetual); ``()``: none (spot).
        Paths are funding files or store specs (``binanceusdm:BTC/USDT:USDT@funding``).
    account : AccountConfig
        Capital (quote), leverage, risk limits and sizing of each combination's fresh
        account (its strategies are ignored).
    fees : FeesConfig
        Default: the default preset's fees.
    markets : dict[str, MarketSpec]
        Exchange rounding and minimums per symbol (amount step in base, price tick and
        minimum notional in quote); default the default preset's markets. A given table
        replaces the preset's (a symbol without an entry has no rounding); only the
        entries of ``symbols`` are kept.
    start_ms, end_ms : int or None
        Traded window, candle open times ms UTC (or ISO dates, UTC); default all candles.
        For ``kind="wfo"`` the span of the walk-forward windows.
    warmup_ms : int or None
        Indicator warm-up before ``start_ms``, ms; None warms up from the first candle of
        the file (walk-forward runs always do).
    chunk_size : int
        Combinations per partition of a plain sweep.
    wfo : WfoConfig or None
        Walk-forward settings, required for (and only allowed with) ``kind="wfo"``.
    db_url : str
        Store URL (SQLAlchemy), e.g. ``sqlite:///sweeps.db``.

    Raises
    ------
    pydantic.ValidationError
        A bad field, an unknown strategy or parameter, an empty value list, a grid with
        no valid combination, a symbol without candle data.
    FileNotFoundError
        A missing candle or funding file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sweep_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")
    kind: Literal["sweep", "wfo"] = "sweep"
    strategy: str
    space: dict[str, list]
    base: dict[str, Any] = Field(default_factory=dict)
    symbols: tuple[str, ...] = ("BTC/USDT",)
    data: tuple[DataFile, ...] = ()
    funding: tuple[FundingFile, ...] | None = None
    account: AccountConfig = AccountConfig()
    fees: FeesConfig = Field(default_factory=_preset_fees)
    markets: dict[str, MarketSpec] = Field(default_factory=_preset_markets)
    start_ms: int | None = None
    end_ms: int | None = None
    warmup_ms: int | None = Field(None, ge=0)
    chunk_size: int = Field(256, ge=1, le=1_000_000)
    wfo: WfoConfig | None = None
    db_url: str = "sqlite:///gridflow.db"

    _grid: tuple[list, list, int] = PrivateAttr(default=None)
    _files: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)
    _hash: str = PrivateAttr(default="")

    @field_validator("start_ms", "end_ms", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        """ms UTC or an ISO date (``"2024-01-01"``, UTC), as the main config."""
        return GridflowConfig._date(v)

    @field_validator("symbols")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("symbols: at least one symbol")
        if len(set(v)) != len(v):
            raise ValueError(f"symbols must be unique, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _resolve(self) -> "SweepSpec":
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms ({self.end_ms}) must be after start_ms ({self.start_ms})")
        self._check_grid()
        self._resolve_files()
        self._resolve_wfo()
        set_ = object.__setattr__
        set_(self, "markets", {s: m for s, m in self.markets.items() if s in self.symbols})
        if not self.sweep_id:
            set_(self, "sweep_id", "sweep-" + self.identity_hash()[:12])
        return self

    def _check_grid(self) -> None:
        from gridflow.sweep import expand_grid  # deprecated parameter names accepted

        if "name" in self.space or "name" in self.base:
            raise ValueError("space/base: 'name' is the strategy, set it with strategy=")
        combos, params, invalid = expand_grid(self.strategy, self.space, self.base)
        if not combos:
            raise ValueError(f"{self.strategy}: all {invalid} combinations of "
                             f"{sorted(self.space)} are invalid ({self._first_error()})")
        self._grid = (combos, params, invalid)

    def _first_error(self) -> str:
        """Why the strategy refuses the first combination of the grid."""
        first = {k: v[0] for k, v in self.space.items()}
        try:
            TypeAdapter(StrategyParams).validate_python(
                {**self.base, **first, "name": self.strategy})
        except ValidationError as exc:
            return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        return "no valid combination"

    def _resolve_files(self) -> None:
        from gridflow.data import bundled_candle_files
        from gridflow.data.candle_files import resolve_data_files
        from gridflow.data.funding import (
            bundled_funding_files,
            funding_file_symbol,
            funding_source_exists,
            store_funding_of,
        )

        set_ = object.__setattr__
        explicit = bool(self.data)
        data = self.data or tuple(DataFile(path=str(p)) for p in bundled_candle_files())
        resolved = resolve_data_files(data)
        if explicit and "symbols" not in self.model_fields_set:
            set_(self, "symbols", tuple(s for _, s, _ in resolved))
        have = {s: (str(p), tf) for p, s, tf in resolved}
        missing = [s for s in self.symbols if s not in have]
        if missing:
            where = "the data files" if explicit else "the bundled candle files"
            raise ValueError(f"no candle data for {missing} in {where} (symbols there: "
                             f"{sorted(have)}); give data files for them")
        self._files = {s: have[s] for s in self.symbols}
        set_(self, "data", tuple(f for f, (_, s, _) in zip(data, resolved) if s in self.symbols))
        if self.funding is None:  # the store's funding of store series, else bundled
            found = {s: str(p) for s, p in bundled_funding_files().items()}
            found.update(store_funding_of([f.path for f in self.data]))
            funding = tuple(FundingFile(path=found[s]) for s in self.symbols if s in found)
        else:
            funding, seen = [], set()
            for f in self.funding:
                sym = f.symbol or funding_file_symbol(f.path)
                if sym in seen:
                    raise ValueError(f"funding: two files for {sym}")
                seen.add(sym)
                if not funding_source_exists(f.path):
                    raise FileNotFoundError(f"funding file not found: {f.path}")
                if sym in self.symbols:
                    funding.append(f)
            funding = tuple(funding)
        set_(self, "funding", funding)

    def _resolve_wfo(self) -> None:
        if self.kind == "sweep":
            if self.wfo is not None:
                raise ValueError("wfo settings are only for kind = 'wfo'")
            return
        if self.wfo is None:
            raise ValueError("kind = 'wfo' needs wfo settings (is_days, oos_days...)")
        update = {}
        for name in ("start_ms", "end_ms"):
            mine, theirs = getattr(self, name), getattr(self.wfo, name)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(f"{name} ({mine}) and wfo.{name} ({theirs}) differ")
            if theirs is None and mine is not None:
                update[name] = mine
        if update:
            object.__setattr__(self, "wfo", WfoConfig.model_validate(
                {**self.wfo.model_dump(), **update}))

    # --- derived --------------------------------------------------------------------
    @property
    def n_combos(self) -> int:
        """Valid combinations of the grid (per symbol, and per window of a wfo run)."""
        return len(self._grid[0])

    @property
    def invalid_combos(self) -> int:
        """Combinations of the grid the strategy refuses (skipped)."""
        return self._grid[2]

    def grid(self) -> tuple[list[StrategyParams], list[dict[str, Any]]]:
        """The valid strategy models and their swept values (``combo_id`` = index)."""
        return self._grid[0], self._grid[1]

    def candle_file(self, symbol: str) -> tuple[str, str]:
        """``(path, timeframe)`` of ``symbol``'s candle file."""
        return self._files[symbol]

    def funding_file(self, symbol: str) -> str | None:
        """Path of ``symbol``'s funding file, None when traded as spot."""
        from gridflow.data.funding import funding_file_symbol

        for f in self.funding or ():
            if (f.symbol or funding_file_symbol(f.path)) == symbol:
                return f.path
        return None

    def market(self, symbol: str) -> MarketSpec:
        """Rounding and minimums of ``symbol`` (none when it has no market entry)."""
        return self.markets.get(symbol, MarketSpec())

    def n_chunks(self) -> int:
        """Partitions per symbol of a plain sweep (``ceil(n_combos / chunk_size)``)."""
        return math.ceil(self.n_combos / self.chunk_size)

    def chunk(self, index: int) -> range:
        """Global combination ids of chunk ``index``."""
        lo = index * self.chunk_size
        return range(lo, min(lo + self.chunk_size, self.n_combos))

    def partitions(self, windows: dict[str, int] | None = None) -> list[tuple[str, int]]:
        """The work items, in a fixed order: ``(symbol, chunk index)`` of a plain sweep,
        ``(symbol, window index)`` of every window of every symbol of a walk-forward run.

        Parameters
        ----------
        windows : dict[str, int], optional
            Walk-forward windows per symbol (required for ``kind="wfo"``); they depend
            on the candles, see :func:`gridflow.dataflows.sweep.partitions`.

        Raises
        ------
        ValueError
            A walk-forward run without the window count of one of its symbols.
        """
        if self.kind == "wfo":
            missing = [s for s in self.symbols if s not in (windows or {})]
            if missing:
                raise ValueError(f"walk-forward partitions need the window count of {missing}")
            return [(s, k) for s in self.symbols for k in range(windows[s])]
        return [(s, k) for s in self.symbols for k in range(self.n_chunks())]

    def expected_results(self, windows: dict[str, int] | None = None) -> int:
        """Result rows of a complete run: ``symbols x combos`` for a sweep; for a wfo
        run ``sum(2 x windows[symbol] x combos)`` (IS and OOS rows per window)."""
        if self.kind == "sweep":
            return len(self.symbols) * self.n_combos
        return sum(2 * (windows or {}).get(s, 0) * self.n_combos for s in self.symbols)

    def identity(self) -> dict[str, Any]:
        """What determines the results: the spec without :data:`VOLATILE` fields; data,
        funding and a walk-forward's transfer sources as
        :func:`~gridflow.series_spec.source_identity` (files by name and size, store
        series by what the store holds of them; JSON-serialisable)."""
        doc = self.model_dump(mode="json", exclude=set(VOLATILE))
        doc["data"] = [{**source_identity(f.path), "symbol": f.symbol, "timeframe": f.timeframe}
                       for f in self.data]
        doc["funding"] = [{**source_identity(f.path), "symbol": f.symbol} for f in self.funding or ()]
        if isinstance(doc.get("wfo"), dict) and doc["wfo"].get("transfer"):
            doc["wfo"]["transfer"] = {s: source_identity(src)
                                      for s, src in doc["wfo"]["transfer"].items()}
        return doc

    def identity_hash(self) -> str:
        """SHA-256 (hex) of :meth:`identity` (computed once)."""
        if not self._hash:
            blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
            self._hash = hashlib.sha256(blob.encode()).hexdigest()
        return self._hash

    def store_spec(self) -> dict[str, Any]:
        """The spec registered with the sweep (:func:`create_sweep`): the JSON dump
        without :data:`VOLATILE` fields (equal in every process of a run)."""
        return self.model_dump(mode="json", exclude=set(VOLATILE))


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The fields of a TOML or JSON spec file (``.json`` is JSON, anything else TOML),
    with relative ``data``/``funding`` paths made absolute against its folder.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not valid TOML/JSON or not a table.
    """
    from gridflow.config.loader import _absolute_paths

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"sweep spec not found: {p}")
    text = p.read_text()
    try:
        doc = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{p}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: a spec is a table of fields")
    for key in ("data", "funding"):
        _absolute_paths(doc.get(key), p.parent.resolve())
    return doc


def load_sweep_spec(src: str | Path | dict[str, Any] | SweepSpec,
                    **overrides: Any) -> SweepSpec:
    """A validated :class:`SweepSpec` from a TOML/JSON file path, a dict of fields or a
    spec; ``overrides`` replace fields (the merged dict is validated once).

    Raises
    ------
    pydantic.ValidationError, FileNotFoundError, ValueError
        As :class:`SweepSpec` and :func:`read_spec_file`.
    """
    if isinstance(src, SweepSpec):
        if not overrides:
            return src
        doc = src.model_dump(mode="json")
        if src.sweep_id == "sweep-" + src.identity_hash()[:12]:
            doc.pop("sweep_id")  # a derived id: derive it again from the new fields
    elif isinstance(src, dict):
        doc = dict(src)
    else:
        doc = read_spec_file(src)
    return SweepSpec.model_validate({**doc, **overrides})
