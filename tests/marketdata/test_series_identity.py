"""A run's identity knows what the store holds of its series: a replay or sweep of
``exchange:symbol@timeframe`` after a download added candles is another run (it used to
keep the old run id, and the new rows were written into the old run beside its own)."""

from __future__ import annotations

import json
import time

from gridflow.cli import main
from gridflow.config.loader import config_hash, default_run_id, load_config
from gridflow.config.models import DataFile, FundingFile
from gridflow.data import bundled_candle_files
from gridflow.data.candle_files import read_candle_file
from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.data.store import CandleStore, Provenance, SeriesKey
from gridflow.dataflows.sweep_spec import SweepSpec
from gridflow.journal.store import list_runs
from gridflow.series_spec import source_identity

SPEC = "binance:BTC/USDT@1h"
FUNDING_SPEC = "binance:BTC/USDT@funding"
BTC_1H = next(p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h"))


def _prov(n: int, ts) -> Provenance:
    return Provenance(source="file:test", at_ms=int(time.time() * 1000),
                      first_ts=int(ts[0]), last_ts=int(ts[-1]), rows=n)


def _write_candles(store: CandleStore, lo: int, hi: int) -> None:
    """Rows ``lo:hi`` of the bundled BTC/USDT 1h file into ``binance:BTC/USDT@1h``."""
    cols = {k: v[lo:hi] for k, v in read_candle_file(BTC_1H).items()}
    store.write(SeriesKey("binance", "BTC/USDT", "1h"), cols, _prov(hi - lo, cols["ts"]))


def _write_funding(store: CandleStore, hi: int) -> None:
    ts, rate = read_funding(bundled_funding_files()["BTC/USDT"])
    store.write_funding(SeriesKey("binance", "BTC/USDT", "funding"), ts[:hi], rate[:hi],
                        _prov(hi, ts[:hi]))


def _cfg():
    return load_config(None, data=(DataFile(path=SPEC, symbol="BTC/USDT", timeframe="1h"),),
                       funding=(FundingFile(path=FUNDING_SPEC, symbol="BTC/USDT"),))


def _sweep_id() -> str:
    return SweepSpec(kind="sweep", strategy="grid_atr", space={"atr_start": [1, 2]},
                     data=(DataFile(path=SPEC, symbol="BTC/USDT", timeframe="1h"),),
                     funding=(FundingFile(path=FUNDING_SPEC, symbol="BTC/USDT"),)
                     ).identity_hash()


def test_config_hash_and_sweep_id_follow_the_stored_series(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    store = CandleStore(tmp_path)
    assert source_identity(SPEC) == {"name": SPEC, "rows": -1}  # not stored yet
    _write_candles(store, 0, 5000)
    _write_funding(store, 300)
    first = (config_hash(_cfg()), default_run_id(_cfg()), _sweep_id())
    ident = source_identity(SPEC)
    assert ident["rows"] == 5000 and ident["size"] > 0
    ts = read_candle_file(BTC_1H)["ts"]
    assert (ident["first_ts"], ident["last_ts"]) == (ts[0], ts[4999])
    # nothing changed: the same run, the same sweep
    assert (config_hash(_cfg()), default_run_id(_cfg()),
            _sweep_id()) == first

    _write_candles(store, 5000, 5100)  # a download added 100 candles
    after_candles = (config_hash(_cfg()), default_run_id(_cfg()),
                     _sweep_id())
    assert all(a != b for a, b in zip(after_candles, first))
    _write_candles(store, 5000, 5100)  # the same candles again: stored, nothing new
    assert config_hash(_cfg()) == after_candles[0]

    _write_funding(store, 310)  # new funding settlements
    assert config_hash(_cfg()) != after_candles[0]
    assert _sweep_id() != after_candles[2]


def test_a_file_is_still_its_name_and_size(tmp_path):
    assert source_identity(str(BTC_1H)) == {"name": BTC_1H.name,
                                             "size": BTC_1H.stat().st_size}
    assert source_identity(str(tmp_path / "gone.csv")) == {"name": "gone.csv", "size": -1}


def test_a_replay_after_a_download_is_a_run_of_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path / "store"))
    store = CandleStore(tmp_path / "store")
    _write_candles(store, 0, 6000)
    db = f"sqlite:///{tmp_path / 'j.db'}"
    args = ["replay", "--db", db, "--data", SPEC, "--funding", "none",
            "--start", "2018-03-01", "--end", "2018-04-01", "--no-progress"]
    assert main(args) == 0
    _write_candles(store, 6000, 6100)  # a download after the first replay
    assert main(args) == 0
    capsys.readouterr()
    runs = list_runs(db)
    assert len(runs) == 2 and runs[0]["run_id"] != runs[1]["run_id"]
    assert runs[0]["config_hash"] != runs[1]["config_hash"]
    # the run names its data by the spec (it said "1h", the series directory's name)
    assert [json.loads(r["data_json"]) for r in runs] == [
        [{"file": SPEC, "symbol": "BTC/USDT", "timeframe": "1h"}]] * 2


def test_a_series_named_by_its_directory_is_the_series(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    store = CandleStore(tmp_path)
    _write_candles(store, 0, 5000)
    folder = str(store.series_dir(SeriesKey("binance", "BTC/USDT", "1h")))
    assert source_identity(folder) == source_identity(SPEC)  # one series, two names

    def by_folder():
        return config_hash(load_config(None, data=(
            DataFile(path=folder, symbol="BTC/USDT", timeframe="1h"),)))

    before = by_folder()
    _write_candles(store, 5000, 5100)
    assert by_folder() != before


def test_a_download_changes_no_paper_or_live_run(tmp_path, monkeypatch):
    # paper and live read no candles from the store: a download between two starts of
    # the same live preset keeps its run id (else a restart is a new run, or refused)
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    store = CandleStore(tmp_path)
    _write_candles(store, 0, 5000)
    _write_funding(store, 300)
    before = {m: (config_hash(_cfg(), m), default_run_id(_cfg(), m)) for m in
              ("paper", "live", "replay")}
    _write_candles(store, 5000, 5100)
    _write_funding(store, 310)
    after = {m: (config_hash(_cfg(), m), default_run_id(_cfg(), m)) for m in before}
    assert after["paper"] == before["paper"] and after["live"] == before["live"]
    assert after["replay"][0] != before["replay"][0]


def test_a_walk_forwards_transfer_source_is_in_its_id(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    store = CandleStore(tmp_path)
    _write_candles(store, 0, 5000)

    def wfo(source: str) -> SweepSpec:
        return SweepSpec(kind="wfo", strategy="grid_atr", space={"atr_start": [1, 2]},
                         wfo={"is_days": 60, "oos_days": 30,
                              "transfer": {"BTC/USDT": source}})

    before = wfo(SPEC).identity_hash()
    assert wfo(SPEC).identity()["wfo"]["transfer"] == {"BTC/USDT": source_identity(SPEC)}
    _write_candles(store, 5000, 5100)
    assert wfo(SPEC).identity_hash() != before
    # a file by its name and size, not by where the repository lives
    assert wfo(str(BTC_1H)).identity()["wfo"]["transfer"] == {
        "BTC/USDT": {"name": BTC_1H.name, "size": BTC_1H.stat().st_size}}


def test_the_apps_replay_journals_under_the_id_it_announced(tmp_path, monkeypatch):
    # the Backtest tab decides the run id, then its child process runs the replay: a
    # download landing in between must not move the journal to another run id
    from gridflow.control.client import GridflowClient

    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path / "store"))
    store = CandleStore(tmp_path / "store")
    _write_candles(store, 0, 6000)
    client = GridflowClient(f"sqlite:///{tmp_path / 'app.db'}")
    job = client.launch_replay(None, data=({"path": SPEC},), funding=(),
                               start_ms="2018-03-01", end_ms="2018-04-01")
    _write_candles(store, 6000, 6100)  # the download, while the child starts
    job.result(300)
    assert [r["run_id"] for r in list_runs(client.db_url)] == [job.run_id]
