"""Building a flow freezes the heap the imports made, once per process
(:mod:`gridflow.dataflows.heap`): a full garbage collection then skips those objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import write_config

SCRIPT = """
import gc, sys
from gridflow.dataflows.heap import freeze_startup_heap
from gridflow.dataflows.replay import build
assert gc.get_freeze_count() == 0
build(sys.argv[1])
frozen = gc.get_freeze_count()
again = freeze_startup_heap()
kept = [[i] for i in range(20_000)]  # made after the first flow: never frozen
build(sys.argv[1])
print(frozen, again, gc.get_freeze_count())
"""


def test_building_a_replay_flow_freezes_the_startup_heap_once(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    cfg = write_config(tmp_path / "c.toml", three_symbol_files[:1],
                       extra=f'db_url = "sqlite:///{tmp_path / "j.db"}"\n')
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(cfg)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    frozen, again, after = map(int, res.stdout.split())
    assert frozen > 50_000  # numba, SQLAlchemy, pydantic, Bytewax: hundreds of thousands
    assert again == 0
    # once per process: the 20,000 lists made after the first flow stay collectable (the
    # count moves by a few as frozen containers are untracked or tracked again)
    assert abs(after - frozen) < 5_000


def test_a_replay_process_leaves_its_whole_journal_in_the_journal_file(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    """The heap is unfrozen at exit, so the interpreter's last collections close the
    connections left to them and SQLite checkpoints its write-ahead log: a copy of the
    journal file alone (a backup, the app's tests) holds the run. Frozen to the end, the
    last rows stayed in ``journal.db-wal``."""
    import shutil

    from helpers import report

    cfg = write_config(tmp_path / "c.toml", three_symbol_files[:1])
    db = tmp_path / "journal.db"
    res = subprocess.run([sys.executable, "-m", "gridflow.cli", "replay", "--config", str(cfg),
                          "--db", f"sqlite:///{db}", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    wal = tmp_path / "journal.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    shutil.copy(db, tmp_path / "copy.db")
    assert report(tmp_path / "copy.db")["candles"] == 3000
