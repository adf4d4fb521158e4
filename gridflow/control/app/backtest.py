"""The Backtest page's store (``param.Parameterized``, no Panel import).

The page edits a preset's account: its symbols and each strategy's parameters
(:mod:`gridflow.control.app.params_form`). A replay of the preset with that account
is launched with :meth:`GridflowClient.launch_replay` and polled through its
:class:`~gridflow.control.client.ReplayJob`; when it ends, the run's report, equity
curve, last events and strategy chart (:mod:`~gridflow.control.app.chart_data`: the
run's own candle file, its config, the journal's fills and order tags) are loaded.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import param

from gridflow.config import DEFAULT_CONFIG
from gridflow.config.models import AccountConfig, DataFile
from gridflow.control.app.chart_data import ChartData, build_chart
from gridflow.control.app.params_form import (
    FieldSpec,
    InvalidParams,
    build_account,
    bundled_symbols,
    data_for,
    field_specs,
    load_preset,
    strategy_label,
    validation_label,
)
from gridflow.control.client import GridflowClient, ReplayJob
PRESETS_DIR = DEFAULT_CONFIG.parent / "presets"
EVENTS_SHOWN = 100
"""Journal events of a finished run listed on the page (the last ones)."""


def presets() -> dict[str, Path]:
    """Preset name -> TOML path: ``default`` then the bundled presets by name."""
    out = {"default": DEFAULT_CONFIG}
    out.update({p.stem: p for p in sorted(PRESETS_DIR.glob("*.toml"))})
    return out


def date_to_ms(d: date) -> int:
    """00:00 UTC of ``d`` in ms."""
    return int(datetime.combine(d, time(), tzinfo=UTC).timestamp() * 1000)


def run_config(run: dict[str, Any]) -> dict[str, Any]:
    """The effective config a run was registered with (``{}`` if unreadable)."""
    try:
        return json.loads(run.get("config_json") or "{}")
    except ValueError:
        return {}


def data_files(cfg: dict[str, Any]) -> dict[str, str]:
    """Symbol -> candle file path of a run config (symbol from the name when unset)."""
    return {sym: path for sym, (path, _tf) in candle_sources(cfg).items()}


def candle_sources(cfg: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Symbol -> (candle file path, timeframe) of a run config; symbol and timeframe
    from the file name when unset (None if the name does not say)."""
    from gridflow.data.candle_files import parse_candle_file_name

    from gridflow.data.store import CandleStore
    from gridflow.series_spec import is_spec, parse_spec

    out = {}
    for f in cfg.get("data", []):
        if is_spec(f.get("path")):  # a series of the market-data store: its directory
            try:
                key = parse_spec(f["path"])
            except ValueError:
                continue
            out[f.get("symbol") or key.symbol] = (str(CandleStore().series_dir(key)),
                                                  f.get("timeframe") or key.timeframe)
            continue
        try:
            parsed = parse_candle_file_name(f["path"])
        except (KeyError, ValueError):
            parsed = None
        sym = f.get("symbol") or (parsed[1] if parsed else None)
        if sym and "path" in f:
            out[sym] = (f["path"], f.get("timeframe") or (parsed[2] if parsed else None))
    return out


def account_of(cfg: dict[str, Any], symbol: str) -> AccountConfig | None:
    """The first account of a run config whose strategies trade ``symbol`` (None if
    none does or the config does not validate)."""
    for raw in cfg.get("accounts", []):
        try:
            acct = AccountConfig.model_validate(raw)
        except ValueError:
            continue
        if acct.assignment([symbol]):
            return acct
    return None


BUNDLED = "bundled files"


def store_series() -> dict[str, dict[str, list[str]]]:
    """Exchange -> symbol -> timeframes of the market-data store's candle series
    (``$GRIDFLOW_STORE``); empty when there is none."""
    from gridflow.data.store import CandleStore
    from gridflow.series_spec import FUNDING

    out: dict[str, dict[str, list[str]]] = {}
    try:
        keys = CandleStore().keys()
    except (OSError, ValueError):  # no store, or a manifest that does not read
        return out
    for k in keys:
        if k.timeframe != FUNDING:
            out.setdefault(k.exchange, {}).setdefault(k.symbol, []).append(k.timeframe)
    return out


class BacktestState(param.Parameterized):
    """Preset, data source, symbols, strategy parameters, window, the running replay
    and the finished run's results."""

    preset = param.Selector(default="default", objects=list(presets()))
    source = param.Selector(default=BUNDLED, objects=[BUNDLED],
                            doc="Where the candles come from: the bundled files, or an "
                            "exchange of the market-data store (gridflow data download).")
    symbols = param.ListSelector(default=[], objects=bundled_symbols(),
                                 doc="Symbols to trade; the preset's by default.")
    strategy_forms = param.List(default=[], doc="Per strategy of the preset's account: "
                                "(label, [FieldSpec]) pre-filled with the preset's values.")
    params_error = param.String(default="", doc="Why the symbols or parameters are invalid.")
    start_date = param.CalendarDate(default=date(2024, 1, 1))
    end_date = param.CalendarDate(default=date(2024, 3, 1))
    status = param.Selector(default="idle", objects=["idle", "running", "done", "failed"])
    run_id = param.String(default="")
    progress = param.Number(default=0.0, bounds=(0.0, 1.0), doc="Fraction of candles done.")
    error = param.String(default="", doc="Why launching or the replay failed.")
    report = param.Dict(default={}, doc="compute_report of the finished run.")
    equity = param.Dict(default={}, doc="client.equity of the finished run.")
    events = param.List(default=[], doc=f"The run's last {EVENTS_SHOWN} journal events.")
    chart_symbol = param.Selector(default=None, objects=[], allow_None=True)
    chart = param.ClassSelector(class_=ChartData, default=None, allow_None=True,
                                doc="The chart symbol's strategy chart (None: nothing "
                                "to draw yet).")
    chart_error = param.String(default="", doc="Why the chart could not be drawn.")

    def __init__(self, client: GridflowClient, **params: Any) -> None:
        super().__init__(**params)
        self.client = client
        self.job: ReplayJob | None = None
        self._config: dict[str, Any] = {}
        self._account: AccountConfig | None = None
        self._data: tuple[DataFile, ...] = ()
        self.values: list[dict[str, Any]] = []
        self._charted: tuple[str, str | None] = ("", None)
        self._series = store_series()
        self.param.source.objects = [BUNDLED, *sorted(self._series)]
        self._load_preset()

    @param.depends("source", watch=True)
    def _source_symbols(self) -> None:
        """The symbols the chosen source has; the chosen ones it lacks are dropped."""
        known = (bundled_symbols() if self.source == BUNDLED
                 else sorted(self._series.get(self.source, {})))
        self.param.symbols.objects = known
        self.symbols = [s for s in self.symbols if s in known]

    def data(self, symbols: list[str] | tuple[str, ...]) -> tuple[DataFile, ...]:
        """The candle sources of ``symbols``: the preset's files, or the store's series
        of the chosen exchange (at the preset's timeframe of the symbol when the store
        has it, else the first it has)."""
        if self.source == BUNDLED:
            return data_for(self._data, symbols)
        from gridflow.data.candle_files import parse_candle_file_name
        from gridflow.series_spec import SeriesKey

        preset_tf = {}
        for f in self._data:
            try:
                preset_tf[f.symbol or parse_candle_file_name(f.path)[1]] = (
                    f.timeframe or parse_candle_file_name(f.path)[2])
            except ValueError:
                continue
        have = self._series.get(self.source, {})
        out = []
        for sym in symbols:
            tfs = have.get(sym, [])
            if not tfs:
                raise InvalidParams(f"{sym}: not in the store for {self.source}")
            tf = preset_tf.get(sym) if preset_tf.get(sym) in tfs else tfs[0]
            out.append(DataFile(path=SeriesKey(self.source, sym, tf).spec))
        return tuple(out)

    @param.depends("preset", watch=True)
    def _load_preset(self) -> None:
        """Symbols and strategy forms of the chosen preset's account."""
        try:
            account, self._data = load_preset(presets()[self.preset])
        except Exception as exc:  # noqa: BLE001 - a bad preset: say why, launch nothing
            self._account, self._data, self.values = None, (), []
            self.param.update(strategy_forms=[], params_error=f"preset {self.preset}: {exc}")
            return
        known = self.param.symbols.objects
        syms = [s for s in account.symbols or known if s in known]
        self._account = account
        self.values = [{} for _ in account.strategies]
        self.param.update(symbols=syms, params_error="", strategy_forms=[
            (f"{strategy_label(st)} · {validation_label(st)}", field_specs(st))
            for st in account.strategies])

    def set_value(self, strategy: int, field: str, value: Any) -> None:
        """Edit one parameter of strategy ``strategy`` (checked at :meth:`account`)."""
        specs: list[FieldSpec] = self.strategy_forms[strategy][1]
        if field not in {f.name for f in specs}:
            raise KeyError(f"strategy {strategy} has no editable parameter {field!r}")
        self.values[strategy][field] = value
        self.params_error = ""

    def account(self) -> AccountConfig:
        """The preset's account with the edited parameters and the chosen symbols.

        Raises
        ------
        InvalidParams
            A bad value or symbol choice (the message, naming the field, is also in
            ``params_error``).
        """
        try:
            if self._account is None:
                raise InvalidParams(self.params_error or f"preset {self.preset}: no account")
            return build_account(self._account, self.values, self.symbols)
        except InvalidParams as exc:
            self.params_error = str(exc)
            raise

    def launch(self) -> ReplayJob:
        """Replay the preset with :meth:`account` (and only its symbols' candle files)
        over ``[start_date, end_date)`` in a child process.

        The caller checks authorization (:meth:`ControlState.launch_backtest`).

        Raises
        ------
        RuntimeError
            The previous replay launched here still runs.
        InvalidParams
            Invalid symbols or parameters (nothing launched; see ``params_error``).
        Exception
            Whatever the client raised for a bad window or preset (also in ``error``).
        """
        if self.job is not None and not self.job.done:
            raise RuntimeError(f"backtest {self.job.run_id} is still running")
        account = self.account()
        try:
            job = self.client.launch_replay(presets()[self.preset], accounts=(account,),
                                            data=self.data(account.symbols),
                                            start_ms=date_to_ms(self.start_date),
                                            end_ms=date_to_ms(self.end_date))
        except Exception as exc:
            self.error, self.status = f"not started: {exc}", "failed"
            raise
        self.job = job
        self.param.update(error="", report={}, equity={}, events=[], chart=None,
                          chart_error="", run_id=job.run_id, progress=0.0, status="running")
        return job

    def poll(self) -> None:
        """Update the progress; load the results once the replay ended
        (``self.apply(self.fetch())``)."""
        self.apply(self.fetch())

    def fetch(self) -> dict[str, Any]:
        """The running replay's progress and, once it ended, its results: journal and
        file reads only, no parameter set (the app calls it on a worker thread)."""
        job = self.job
        if job is None or self.status != "running":
            return {}
        out: dict[str, Any] = {"job": job, "progress": job.progress}
        if not job.done:
            return out
        try:
            report = job.result(timeout_s=5)
        except (RuntimeError, TimeoutError) as exc:
            out.update(error=str(exc)[-1500:], status="failed")
            return out
        out.update(self.load_run(report["run_id"], report), progress=1.0, status="done")
        return out

    def apply(self, update: dict[str, Any]) -> None:
        """Show a :meth:`fetch` result (ignored if another replay was launched since)."""
        update = dict(update)
        if not update or update.pop("job") is not self.job or self.status != "running":
            return
        if "run_id" in update:
            self._show(update)
        else:
            self.param.update(**update)

    def show_run(self, run_id: str, report: dict[str, Any] | None = None) -> None:
        """Load a finished run's metrics, equity curve and chart."""
        self._show(self.load_run(run_id, report))

    def load_run(self, run_id: str, report: dict[str, Any] | None = None) -> dict[str, Any]:
        """A finished run's metrics, equity, config and chart (reads only)."""
        run = next((r for r in self.client.runs() if r["run_id"] == run_id), {})
        cfg = run_config(run)
        syms = sorted(data_files(cfg))
        pick = "BTC/USDT" if "BTC/USDT" in syms else (syms[0] if syms else None)
        return {"run_id": run_id, "report": report or self.client.report(run_id),
                "equity": self.client.equity(run_id), "config": cfg, "symbols": syms,
                "events": self.client.events(run_id, limit=EVENTS_SHOWN),
                "chart_symbol": pick, **self._chart(run_id, cfg, pick)}

    def _show(self, loaded: dict[str, Any]) -> None:
        loaded = dict(loaded)
        self._config = loaded.pop("config")
        self.param.chart_symbol.objects = loaded.pop("symbols")
        self._charted = (loaded["run_id"], loaded["chart_symbol"])
        self.param.update(**loaded)  # one redraw

    @param.depends("chart_symbol", watch=True)
    def _load_chart(self) -> None:
        if (self.run_id, self.chart_symbol) == self._charted:
            return
        self._charted = (self.run_id, self.chart_symbol)
        self.param.update(**self._chart(self.run_id, self._config, self.chart_symbol))

    def _chart(self, run_id: str, cfg: dict[str, Any], sym: str | None) -> dict[str, Any]:
        """``chart`` (:func:`~gridflow.control.app.chart_data.build_chart`) of ``sym``
        in run ``run_id`` over the run's whole window, and ``chart_error`` (reads
        only; a chart that cannot be built says why instead of failing the page)."""
        from gridflow.data.candle_files import read_candle_file
        from gridflow.journal.store import read_fills, read_orders

        path, tf = candle_sources(cfg).get(sym or "", (None, None))
        if not run_id or path is None:
            return {"chart": None, "chart_error": ""}
        try:
            url = self.client.db_url
            tags = {o["client_order_id"]: o["tag"] for o in read_orders(url, run_id)}
            market = (cfg.get("markets") or {}).get(sym) or {}
            chart = build_chart(account_of(cfg, sym), sym, read_candle_file(path),
                                cfg.get("start_ms"), cfg.get("end_ms"),
                                read_fills(url, run_id), tags, timeframe=tf,
                                warmup=int(cfg.get("warmup_candles") or 0),
                                price_tick=float(market.get("price_tick") or 0.0))
        except Exception as exc:  # noqa: BLE001 - a bad file or config: say why
            return {"chart": None, "chart_error": f"{sym}: {type(exc).__name__}: {exc}"}
        error = "" if chart is not None else f"{sym}: no candle in the run's window"
        return {"chart": chart, "chart_error": error}
