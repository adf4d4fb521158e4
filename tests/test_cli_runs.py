"""``gridflow runs list|show|delete`` and ``--name`` (replay, sweep, wfo), in process, on
real replays of the bundled candles into one SQLite journal."""

from __future__ import annotations

import json

import pytest
from helpers import write_config
from sqlalchemy import func, select

from gridflow.cli import main
from gridflow.control.report import journal_lines
from gridflow.journal.names import names
from gridflow.journal.runs import journal_tables
from gridflow.journal.schema import NameRow, open_store
from gridflow.journal.sweep_store import list_sweeps


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def journal(tmp_path, three_symbol_files, capsys) -> str:
    """Two runs of one BTC file: ``run-a`` named "alpha" (January), ``run-b`` (February)."""
    db = f"sqlite:///{tmp_path / 'j.db'}"
    cfg = write_config(tmp_path / "c.toml", three_symbol_files[:1])
    for rid, end, name in (("run-a", "2021-02-01", ["--name", "alpha"]),
                           ("run-b", "2021-03-01", [])):
        assert main(["replay", "--config", str(cfg), "--db", db, "--no-progress", "--end", end,
                     "--run-id", rid, *name]) == 0
    capsys.readouterr()
    return db


def _rows_of(db: str, rid: str) -> dict[str, int]:
    engine = open_store(db)
    try:
        with engine.connect() as conn:
            out = {t.name: conn.execute(select(func.count()).select_from(t)
                                        .where(t.c.run_id == rid)).scalar_one()
                   for t in journal_tables()}
            n = NameRow.__table__
            out["names"] = conn.execute(select(func.count()).select_from(n).where(
                n.c.kind == "run", n.c.target_id == rid)).scalar_one()
    finally:
        engine.dispose()
    return out


def test_list_shows_every_run_newest_last_with_its_name_and_totals(journal, capsys):
    code, out, _ = _run(capsys, ["runs", "list", "--db", journal])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["run_id", "name", "mode", "created", "start", "end",
                                "accounts", "candles", "trades", "net_pnl"]
    assert lines[2].split()[:2] == ["run-a", "alpha"] and lines[3].split()[:2] == ["run-b", "-"]
    assert "2021-01-01T00:00:00Z" in lines[2] and "2021-02-01T00:00:00Z" in lines[2]
    code, out, _ = _run(capsys, ["runs", "list", "--db", journal, "--json"])
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == ["run-a", "run-b"]
    assert runs[0]["name"] == "alpha" and runs[1]["name"] is None
    assert (runs[0]["start"], runs[0]["end"]) == ("2021-01-01T00:00:00Z", "2021-02-01T00:00:00Z")
    assert runs[0]["candles"] == 31 * 24 and runs[0]["trades"] > 0
    for r in runs:  # the run list and the report agree
        code, rep, _ = _run(capsys, ["report", "--db", journal, "--run", r["run_id"], "--json"])
        rep = json.loads(rep)
        assert (rep["net_pnl"], rep["trades"], rep["candles"], rep["name"]) == pytest.approx(
            (r["net_pnl"], r["trades"], r["candles"], r["name"]))
        assert rep["window"]["start"] == r["start"] and rep["window"]["end"] == r["end"]


def test_show_is_the_header_and_overview_and_takes_a_name(journal, capsys):
    code, out, _ = _run(capsys, ["runs", "show", "--db", journal, "--run", "alpha"])
    assert code == 0
    assert out.startswith("run run-a  name: alpha  (replay")
    assert "== overview (per account)" in out and "net_pnl" in out
    assert "== per symbol" not in out  # the tables are the report's
    code, js, _ = _run(capsys, ["runs", "show", "--db", journal, "--json"])
    assert json.loads(js)["run_id"] == "run-b"  # the latest by default


def test_a_name_round_trips_and_a_taken_name_is_refused(journal, capsys, tmp_path,
                                                         three_symbol_files):
    code, out, _ = _run(capsys, ["report", "--db", journal, "--run", "alpha", "--json"])
    assert code == 0 and json.loads(out)["run_id"] == "run-a"
    assert names(journal, "run") == {"run-a": "alpha"}
    cfg = write_config(tmp_path / "c2.toml", three_symbol_files[:1])
    code, _, err = _run(capsys, ["replay", "--config", str(cfg), "--db", journal,
                                 "--no-progress", "--end", "2021-01-10", "--run-id", "run-c",
                                 "--name", " alpha "])
    assert code == 2 and "NAME_TAKEN" in err and "run-a" in err
    assert _rows_of(journal, "run-c")["runs"] == 0  # refused before it ran
    # the same run again with its own name: fine (a rerun of a run is idempotent)
    code, _, _ = _run(capsys, ["replay", "--config", str(cfg), "--db", journal, "--no-progress",
                               "--end", "2021-02-01", "--run-id", "run-a", "--name", "alpha"])
    assert code == 0
    # a run renamed: the old name is free again
    code, _, _ = _run(capsys, ["replay", "--config", str(cfg), "--db", journal, "--no-progress",
                               "--end", "2021-03-01", "--run-id", "run-b", "--name", "beta"])
    assert code == 0 and names(journal, "run") == {"run-a": "alpha", "run-b": "beta"}
    code, _, err = _run(capsys, ["replay", "--config", str(cfg), "--db", journal,
                                 "--no-progress", "--run-id", "run-c", "--name", "run-b"])
    assert code == 2 and "is the id of another run" in err


def test_delete_needs_yes_then_empties_every_table_of_that_run_only(journal, capsys):
    before_b = _rows_of(journal, "run-b")
    lines_b = journal_lines(journal, "run-b", include=("order", "fill", "trade", "event",
                                                       "equity"))
    before_a = _rows_of(journal, "run-a")
    assert before_a["orders"] > 0 and before_a["names"] == 1
    code, _, err = _run(capsys, ["runs", "delete", "--db", journal, "--run", "alpha"])
    assert code == 2 and err.strip().endswith("without --yes")
    assert "run-a" in err and len(err.strip().splitlines()) == 1
    assert _rows_of(journal, "run-a") == before_a  # nothing deleted
    code, out, _ = _run(capsys, ["runs", "delete", "--db", journal, "--run", "alpha", "--yes"])
    assert code == 0 and out.startswith("deleted run run-a: ")
    assert f"{sum(before_a.values()):,} rows" in out
    assert set(_rows_of(journal, "run-a").values()) == {0}
    assert _rows_of(journal, "run-b") == before_b
    assert journal_lines(journal, "run-b", include=("order", "fill", "trade", "event",
                                                    "equity")) == lines_b
    code, out, _ = _run(capsys, ["runs", "list", "--db", journal, "--json"])
    assert [r["run_id"] for r in json.loads(out)] == ["run-b"]
    code, _, err = _run(capsys, ["runs", "delete", "--db", journal, "--run", "run-a", "--yes"])
    assert code == 2 and "UNKNOWN_RUN" in err and "run-b" in err
    assert names(journal, "run") == {}  # its name went with it: free again


def test_reading_runs_commands_never_create_a_journal(tmp_path, capsys):
    missing = tmp_path / "nope" / "j.db"
    for argv in (["runs", "list"], ["runs", "show"], ["runs", "delete", "--run", "x", "--yes"]):
        code, _, err = _run(capsys, [*argv[:2], "--db", f"sqlite:///{missing}", *argv[2:]])
        assert code == 2 and "no journal at" in err
    assert not missing.parent.exists()


def test_sweep_names_are_stored_and_listed(tmp_path, capsys):
    """A named sweep, then a different sweep asking for the same name: refused before it
    runs; the store lists the name."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = ["--strategy", "grid_atr", "--set", "levels=3", "--start", "2024-01-01", "--end",
            "2024-01-15", "--db", db, "--no-progress", "--json"]
    code, out, err = _run(capsys, ["sweep", *base, "--param", "atr_start=1,2",
                                   "--name", "first try"])
    assert code == 0, err
    first = json.loads(out)
    assert first["name"] == "first try"
    code, _, err = _run(capsys, ["sweep", *base, "--param", "atr_start=3,4",
                                 "--name", "first try"])
    assert code == 2 and "NAME_TAKEN" in err
    (row,) = list_sweeps(db)  # the second never ran
    assert row["sweep_id"] == first["sweep_id"] and row["name"] == "first try"
    assert names(db, "sweep") == {first["sweep_id"]: "first try"}


def test_wfo_name_and_its_one_curve_figures_are_printed(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    argv = ["wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2", "--set", "levels=3",
            "--start", "2024-01-01", "--end", "2024-04-01", "--is-days", "30",
            "--oos-days", "15", "--db", db, "--no-progress", "--name", "wf one"]
    code, out, err = _run(capsys, argv)
    assert code == 0, err
    assert out.startswith("wfo ") and "(wf one)" in out.splitlines()[0]
    assert "oos_net_pnl_windows" in out and "from the capital" in out
    head = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == ["window"])
    assert {"is_sharpe", "is_net_pnl", "oos_sharpe", "oos_net_pnl"} <= set(head)
    code, js, _ = _run(capsys, [*argv, "--json"])  # the same spec again: same id and name
    rep = json.loads(js)
    assert rep["name"] == "wf one"
    (sym,) = rep["reports"].values()
    assert {"oos_net_pnl", "oos_net_pnl_windows"} <= set(sym)
    for w in rep["windows"]["BTC/USDT"]:
        s, pnl = w["oos_sharpe"], w["oos_net_pnl"]
        assert not (pnl > 0 and s is not None and s <= 0)
