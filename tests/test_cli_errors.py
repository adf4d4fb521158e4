"""Bad input on the command line: one line naming what to fix, exit 2, no traceback,
no hang, and reading commands never create a database."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from gridflow import __version__
from gridflow.cli import main

HEADER = "timestamp,open,high,low,close,volume\n"


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"gridflow {argv[0]}: error: "), err
    return err[-1]


def _files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "ok_BTC_USDT_1h.csv"
    good.write_text(HEADER + "".join(f"{1_699_999_200_000 + i * 3_600_000},10,11,9,10,1\n"
                                     for i in range(30)))
    files = {
        "wrong header": ("time,o,h,l,c,v\n1,2,3,4,5,6\n", "header must be"),
        "empty file": ("", "header must be"),
        "header only": (HEADER, "no candle to replay"),
    }
    out = {}
    for name, (text, _) in files.items():
        p = tmp_path / f"{name.replace(' ', '')}_BTC_USDT_1h.csv"
        p.write_text(text)
        out[name] = p
    rnd = tmp_path / "randombytes_BTC_USDT_1h.csv.gz"
    rnd.write_bytes(bytes(range(256)) * 3)
    out["random bytes"] = rnd
    trunc = tmp_path / "truncated_BTC_USDT_1h.csv.gz"
    trunc.write_bytes(gzip.compress(good.read_bytes())[:-20])
    out["truncated gzip"] = trunc
    out["good"] = good
    return out


@pytest.mark.parametrize("case,expect", [
    ("wrong header", "header must be"), ("empty file", "header must be"),
    ("header only", "no candle to replay"), ("random bytes", "not text"),
    ("truncated gzip", "BTC_USDT_1h.csv.gz"),
])
def test_a_bad_candle_file_is_one_line_before_the_flow_starts(tmp_path, capsys, case, expect):
    f = _files(tmp_path)[case]
    msg = _one_line_error(capsys, ["replay", "--db", f"sqlite:///{tmp_path / 'j.db'}",
                                   "--no-progress", "--data", str(f)])
    assert expect in msg


def test_a_window_after_the_data_is_refused_with_iso_dates_instead_of_hanging(tmp_path, capsys):
    good = _files(tmp_path)["good"]
    msg = _one_line_error(capsys, ["replay", "--db", f"sqlite:///{tmp_path / 'j.db'}",
                                   "--no-progress", "--data", str(good),
                                   "--start", "2030-01-01"])
    assert "no candle to replay" in msg and "2030-01-01T00:00:00Z" in msg


def test_reading_commands_never_create_a_database_and_name_the_fix(tmp_path, capsys):
    missing = tmp_path / "nope" / "j.db"
    for cmd in ("report", "journal"):
        msg = _one_line_error(capsys, [cmd, "--db", f"sqlite:///{missing}"])
        assert "no journal at" in msg
        msg = _one_line_error(capsys, [cmd, "--db", str(tmp_path / "j.db")])
        assert "not a database URL" in msg and "sqlite:///" in msg
    assert not missing.parent.exists() and not (tmp_path / "j.db").exists()


def test_an_unknown_run_is_refused_naming_the_runs_there_are(tmp_path, capsys):
    good = _files(tmp_path)["good"]
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert main(["replay", "--db", db, "--no-progress", "--data", str(good),
                 "--run-id", "run-a"]) == 0
    capsys.readouterr()
    msg = _one_line_error(capsys, ["report", "--db", db, "--run", "run-nope"])
    assert "UNKNOWN_RUN" in msg and "run-a" in msg


def test_version_and_a_closed_pipe_are_quiet(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gridflow.cli", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"gridflow {__version__}"
    db = f"sqlite:///{tmp_path / 'j.db'}"  # a month of the bundled demo: some orders
    assert main(["replay", "--db", db, "--no-progress", "--end", "2022-02-01"]) == 0
    # `gridflow journal | head -c 10`: the reader leaves after ten bytes
    res = subprocess.run(f"{sys.executable} -m gridflow.cli journal --db {db} | head -c 10",
                         shell=True, capture_output=True, text=True, timeout=120)
    assert len(res.stdout) == 10 and res.stderr == "", res.stderr


def _table(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, a regex the one-line message must match) for bad inputs of every kind."""
    f = _files(tmp)
    db = f"sqlite:///{tmp / 'j.db'}"  # holds one run, "run-a" (made by the test)
    (tmp / "text.db").write_text("not a database\n")
    (tmp / "syntax.toml").write_text("capital = [\n")
    (tmp / "unknown.toml").write_text("bogus_field = 3\n")
    (tmp / "value.toml").write_text('[[accounts]]\nname = "a"\nleverage = -1\n')
    badname = tmp / "candles.csv"
    badname.write_text(f["good"].read_text())
    rp = ["replay", "--db", f"sqlite:///{tmp / 'r.db'}", "--no-progress"]
    return [
        (rp + ["--start", "2030-01-01"], r"no candle to replay.*2030-01-01T00:00:00Z"),
        (rp + ["--end", "2000-01-01"], r"end_ms \(2000-01-01T00:00:00Z\) must be after"),
        (rp + ["--start", "garbage"], r"start_ms: .*ISO date"),
        (rp + ["--start", "2024-01-01", "--end", "2023-01-01"], r"must be after start_ms"),
        (rp + ["--config", str(tmp / "nope.toml")], r"No such file.*nope\.toml"),
        (rp + ["--config", str(tmp / "syntax.toml")], r"syntax\.toml: not valid TOML"),
        (rp + ["--config", str(tmp / "unknown.toml")], r"bogus_field: Extra inputs"),
        (rp + ["--config", str(tmp / "value.toml")], r"accounts\.0\.leverage: .*greater"),
        (rp + ["--preset", "nope"], r"--preset: no bundled preset .nope. \(envelope_dca"),
        (rp + ["--data", str(tmp / "nope.csv")], r"candle file not found"),
        (rp + ["--data", str(tmp)], r"candle file not found"),
        (rp + ["--data", "a@b@c@d"], r"FILE\[@SYMBOL"),
        (rp + ["--data", str(badname)], r"does not match"),
        (rp + ["--data", str(f["wrong header"])], r"header must be"),
        (rp + ["--data", str(f["empty file"])], r"header must be"),
        (rp + ["--data", str(f["random bytes"])], r"not text"),
        (rp + ["--data", str(f["truncated gzip"])], r"truncated_BTC_USDT_1h"),
        (rp + ["--data", str(f["header only"])], r"no candle to replay"),
        (rp + ["--workers", "0"], r"--workers: must be >= 1"),
        (rp + ["--workers", "x"], r"--workers: must be a whole number"),
        (["replay", "--db", "mysql://u@127.0.0.1/db", "--no-progress", "--data",
          str(f["good"])], r"driver 'MySQLdb' is not installed|cannot use the journal"),
        (["report", "--db", "postgresql+psycopg://u:p@127.0.0.1:1/db"],
         r"driver 'psycopg' is not installed|cannot use the journal"),
        (["report", "--db", f"sqlite:///{tmp / 'text.db'}"], r"cannot use the journal"),
        (["report", "--db", f"sqlite:///{tmp / 'missing' / 'j.db'}"], r"no journal at"),
        (["journal", "--db", f"sqlite:///{tmp / 'missing' / 'j.db'}"], r"no journal at"),
        (["report", "--db", str(tmp / "j.db")], r"not a database URL.*sqlite:///"),
        (["journal", "--db", "j.db"], r"not a database URL"),
        (["report", "--db", db, "--run", "run-nope"], r"UNKNOWN_RUN.*run-a"),
        (["journal", "--db", db, "--run", "run-nope"], r"UNKNOWN_RUN.*run-a"),
        (["report", "--db", "sqlite://"], r"NO_RUNS"),
        (["report"], r"required: --db"),
        (["bogus"], r"invalid choice: 'bogus'"),
        ([], r"required: cmd"),
        (["app", "--port", "notaport"], r"--port: invalid int"),
        (["sweep"], r"give --strategy"),
        (["wfo"], r"give --strategy"),
        (["sweep", "--strategy", "grid_atr"], r"give at least one --param"),
        (["runs", "delete", "--db", db, "--run", "run-nope", "--yes"], r"UNKNOWN_RUN.*run-a"),
        (["runs", "delete", "--db", db, "--run", "alpha"], r"run-a .*without --yes"),
        (["runs", "delete", "--db", db], r"required: --run"),
        (["runs", "show", "--db", db, "--run", "run-nope"], r"UNKNOWN_RUN.*run-a \(alpha\)"),
        (["runs", "list", "--db", f"sqlite:///{tmp / 'missing' / 'j.db'}"], r"no journal at"),
        (["runs", "list", "--db", "j.db"], r"not a database URL"),
        (["runs", "--db", db], r"required: runs_cmd|invalid choice"),
        (["runs", "purge", "--db", db], r"invalid choice: 'purge'"),
        (rp + ["--name", ""], r"--name: BAD_NAME.*empty"),
        (rp + ["--name", "tab\there"], r"--name: BAD_NAME.*control character"),
        (rp + ["--name", "x" * 101], r"--name: BAD_NAME.*at most 100"),
        (["replay", "--db", db, "--no-progress", "--data", str(f["good"]), "--run-id", "run-b",
          "--name", "alpha"], r"NAME_TAKEN.*'alpha'.*run-a"),
        (["replay", "--db", db, "--no-progress", "--data", str(f["good"]), "--run-id", "run-b",
          "--name", "run-a"], r"NAME_TAKEN.*id of another run"),
        (["sweep", "--strategy", "grid_atr", "--name", " "], r"--name: BAD_NAME"),
        (["wfo", "--strategy", "grid_atr", "--name", "a\nb"], r"--name: BAD_NAME"),
        (["replay", "--db", db, "--data", "~nosuchuser-gf/x.csv"], r"--data: .*nosuchuser-gf"),
    ]


def test_a_table_of_bad_inputs_each_exits_2_with_one_line_naming_the_fix(tmp_path, capsys):
    """Each bad input: exit 2, no traceback, the last stderr line says what is wrong."""
    import re
    import time

    good = _files(tmp_path)["good"]
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert main(["replay", "--db", db, "--no-progress", "--data", str(good),
                 "--run-id", "run-a", "--name", "alpha"]) == 0
    capsys.readouterr()
    table = _table(tmp_path)
    assert len(table) >= 52
    bad = []
    for argv, pattern in table:
        t0 = time.monotonic()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage + one error line, exit 2
            code = exc.code
        err = capsys.readouterr().err.strip().splitlines()
        last = err[-1] if err else ""
        if (code != 2 or "Traceback" in "\n".join(err) or not re.search(pattern, last)
                or time.monotonic() - t0 > 10 or not last.startswith("gridflow")):
            bad.append((argv, code, last))
    assert bad == []
    from gridflow.journal.store import list_runs  # the refused replays registered nothing

    assert [r["run_id"] for r in list_runs(db)] == ["run-a"]


def test_a_file_whose_every_candle_is_refused_ends_with_a_no_candles_event(tmp_path, capsys):
    """Every row refused (timestamps off the hour): the replay ends (it used to wait
    forever for the account to complete) and journals why."""
    from gridflow.journal.store import read_events, read_summaries

    bad = tmp_path / "off_BTC_USDT_1h.csv"
    bad.write_text(HEADER + "".join(f"{1_700_000_000_000 + i * 3_600_000},10,11,9,10,1\n"
                                    for i in range(30)))
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert main(["replay", "--db", db, "--no-progress", "--data", str(bad),
                 "--run-id", "run-off"]) == 0
    kinds = [(e["kind"], e["reason"]) for e in read_events(db, "run-off")]
    assert kinds.count(("candle_rejected", "MISALIGNED_TS")) == 30
    assert kinds.count(("no_candles", "NO_VALID_CANDLES")) == 1
    assert all(s["complete"] for s in read_summaries(db, "run-off"))


def test_report_json_is_strict_json_undefined_figures_are_null(tmp_path, capsys):
    """A run of one day has no Sharpe (fewer than two daily returns: NaN by the metrics
    module's rule); ``--json`` prints it as null, never as the non-JSON token NaN."""
    import json

    good = _files(tmp_path)["good"]
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert main(["replay", "--db", db, "--no-progress", "--data", str(good)]) == 0
    capsys.readouterr()
    assert main(["report", "--db", db, "--json"]) == 0

    def refuse(token: str):
        raise AssertionError(f"non-JSON token {token} in the report")

    rep = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert rep["sharpe"] is None and rep["candles"] == 30
