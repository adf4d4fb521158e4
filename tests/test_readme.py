"""README's examples run as written.

Blocks marked ``<!-- readme-test: NAME -->`` in README.md are extracted and executed
verbatim (bash blocks with ``bash -c`` line by line, Python blocks with ``exec``) in a
fresh folder holding what a clone has at its root (``dataflows/``), and what they
promise is checked.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridflow.control.report import journal_lines
from gridflow.journal.store import list_runs, read_summaries

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- readme-test: (?P<name>[\w-]+) -->\s*```(?P<lang>\w+)\n(?P<body>.*?)```",
                    re.S)
KINDS = ("order", "fill", "trade", "event", "equity")


def readme_blocks() -> dict[str, tuple[str, str]]:
    """name -> (language, body) of every marked block."""
    return {m["name"]: (m["lang"], m["body"]) for m in _BLOCK.finditer(README.read_text())}


def _clone_root(tmp: Path) -> Path:
    """A folder with what a user's clone has at its root for the examples."""
    shutil.copytree(ROOT / "dataflows", tmp / "dataflows",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def _lines(db: Path) -> list[str]:
    return list(journal_lines(f"sqlite:///{db}", None, include=KINDS))


def _summaries(db: Path) -> list[dict]:
    """The account summaries of the journal's (only) run; [] before it exists."""
    url = f"sqlite:///{db}"
    try:
        runs = list_runs(url) if db.exists() else []
    except Exception:  # noqa: BLE001 - tables not created yet
        return []
    return read_summaries(url, runs[-1]["run_id"]) if runs else []


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(extra)
    return env


def test_every_marked_block_is_known():
    assert set(readme_blocks()) >= {"recovery", "paced-replay"}


def test_recovery_block_kill_and_run_again_journals_the_uninterrupted_run(tmp_path):
    lang, body = readme_blocks()["recovery"]
    assert lang == "bash"
    init, run = [ln.split("#")[0].strip() for ln in body.strip().splitlines()]
    bin_dir = str(Path(sys.executable).parent)
    path = bin_dir + os.pathsep + os.environ.get("PATH", "")

    ref = _clone_root(tmp_path / "ref")  # the same flow, uninterrupted, no recovery
    subprocess.run(["bash", "-c", "python -m bytewax.run dataflows.replay:flow"], cwd=ref,
                   env=_env(PATH=path), check=True, timeout=300, capture_output=True)

    work = _clone_root(tmp_path / "work")
    subprocess.run(["bash", "-c", init], cwd=work, env=_env(PATH=path), check=True,
                   timeout=60, capture_output=True)
    # paced (the environment only) so that the kill lands while candles still flow
    slow = _env(PATH=path, GRIDFLOW_PACE_S="0.4")  # pace_s is not part of the run id
    db = work / "gridflow.db"
    first = subprocess.Popen(["bash", "-c", "exec " + run], cwd=work, env=slow,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:  # some candles journaled, and at least two snapshots taken
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the replay journaled nothing"
            rows = _summaries(db)
            if rows and rows[0]["candles"] > 0:
                break
            time.sleep(0.2)
        time.sleep(2.5)
        rows = _summaries(db)
        assert not any(r.get("complete") for r in rows), "finished before the kill"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    again = subprocess.run(["bash", "-c", run], cwd=work, env=_env(PATH=path),
                           timeout=300, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = _summaries(db)
    assert rows and all(r["complete"] for r in rows)
    assert _lines(db) == _lines(ref / "gridflow.db")


@pytest.mark.parametrize("name", sorted(readme_blocks()))
def test_marked_blocks_name_only_files_a_clone_has(name):
    """Paths the examples rely on exist at the repository root."""
    _, body = readme_blocks()[name]
    for ref in re.findall(r"\bdataflows\.(\w+):", body):
        assert (ROOT / "dataflows" / f"{ref}.py").exists(), ref


def test_paced_replay_block_runs_as_written_and_is_paced(tmp_path, monkeypatch):
    lang, body = readme_blocks()["paced-replay"]
    assert lang == "python"
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith("GRIDFLOW_")]:
        monkeypatch.delenv(k)
    ns: dict = {}
    t0 = time.monotonic()
    exec(compile(body, "README.md:paced-replay", "exec"), ns)  # noqa: S102 - the example
    elapsed = time.monotonic() - t0
    try:
        assert ns["paused"]["status"] == "applied" and ns["resumed"]["status"] == "applied"
        assert ns["job"].progress == 1.0 and ns["report"]["candles"] > 0
        # paced: one candle per symbol every pace_s, so the week's 168 hourly candles took
        # at least 168 * pace_s (pacing happened; a lower bound, not a speed figure)
        assert elapsed >= 0.05 * 24 * 7
    finally:
        ns["job"].stop()
