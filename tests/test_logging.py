"""The process's logging (gridflow.logs): gzip rotation, JSON lines, levels per logger,
set-up twice, the one redactor on every handler; and a short CLI replay whose log files
(rotated archives included) and console hold none of its secrets."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from gridflow.config import load_config
from gridflow.config.logging_config import LoggingConfig
from gridflow.config.models import GridflowConfig
from gridflow.logs import config_secrets, reset_logging, setup_logging
from gridflow.redaction import REDACTED, forget_secrets

ROOT = Path(__file__).resolve().parents[1]
LOG = "gridflow.test.logs"


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    reset_logging()


def log_texts(folder: Path) -> dict[str, str]:
    """Every log file under ``folder`` (``*.log*``), gzip archives decompressed."""
    out = {}
    for p in sorted(folder.rglob("*.log*")):
        data = p.read_bytes()
        out[p.name] = (gzip.decompress(data) if p.suffix == ".gz" else data).decode()
    return out


def _ours(handler: logging.Handler) -> bool:
    return handler in logging.getLogger().handlers


def test_rotation_at_max_bytes_leaves_gzip_archives_of_the_logged_lines(tmp_path):
    path = tmp_path / "logs" / "gridflow.log"  # the folder is created
    (handler,) = setup_logging(LoggingConfig(file=path, max_bytes=2_000, backups=3,
                                             console=False, level="INFO"))
    log = logging.getLogger(LOG)
    lines = [f"line {i:04d} " + "x" * 40 for i in range(200)]
    for text in lines:
        log.info(text)
    handler.flush()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["gridflow.log", "gridflow.log.1.gz", "gridflow.log.2.gz",
                     "gridflow.log.3.gz"]  # backups = 3: older archives deleted
    texts = log_texts(path.parent)
    kept = [ln for name in ["gridflow.log.3.gz", "gridflow.log.2.gz", "gridflow.log.1.gz",
                            "gridflow.log"] for ln in texts[name].splitlines()]
    assert all(re.fullmatch(r"\S+Z INFO gridflow\.test\.logs: line \d{4} x{40}", ln)
               for ln in kept)
    messages = [ln.split(": ", 1)[1] for ln in kept]
    assert messages == lines[-len(messages):]  # oldest archive first, nothing lost between
    for name in ("gridflow.log.1.gz", "gridflow.log.2.gz", "gridflow.log.3.gz"):
        assert 1_500 < len(texts[name].encode()) <= 2_000  # each rotated before 2,000 bytes
        assert (path.parent / name).stat().st_size < 1_000  # and compressed


def test_json_lines_parse_with_extra_fields_and_traceback(tmp_path):
    path = tmp_path / "g.jsonl"
    setup_logging(LoggingConfig(file=path, console=False, level="DEBUG", json=True))
    log = logging.getLogger(LOG)
    log.debug("order %s placed", "c-1", extra={"order": {"id": 7, "px": 101.5},
                                               "ratio": float("nan"), "tags": ("a", "b")})
    try:
        raise ValueError("bad price")
    except ValueError:
        log.exception("rejected")
    log.warning("ünïcode ok")
    rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]
    assert [r["level"] for r in rows] == ["DEBUG", "ERROR", "WARNING"]
    assert all(set(r) == {"ts", "level", "logger", "message", "extra"} for r in rows)
    assert all(r["logger"] == LOG and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", r["ts"])
               for r in rows)
    assert rows[0]["message"] == "order c-1 placed"
    assert rows[0]["extra"] == {"order": {"id": 7, "px": 101.5}, "ratio": "nan",
                                "tags": ["a", "b"]}
    assert rows[1]["message"].startswith("rejected\nTraceback (most recent call last)")
    assert rows[1]["message"].rstrip().endswith("ValueError: bad price")
    assert rows[2]["message"] == "ünïcode ok" and rows[2]["extra"] == {}


def test_levels_per_logger_apply_and_a_second_setup_replaces_the_first(tmp_path):
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    cfg = LoggingConfig(file=first, console=False, level="warning",
                        levels={"gridflow.chatty": "debug", "gridflow.quiet": "ERROR"})
    (h1,) = setup_logging(cfg)
    assert setup_logging(cfg) == [h1]  # same settings: nothing doubles
    chatty, quiet, other = (logging.getLogger(n) for n in
                            ("gridflow.chatty.sub", "gridflow.quiet", "gridflow.other"))
    chatty.debug("c-debug")
    quiet.warning("q-warning")
    quiet.error("q-error")
    other.info("o-info")
    other.warning("o-warning")
    h1.flush()
    got = [ln.split(": ", 1)[1] for ln in first.read_text().splitlines()]
    assert got == ["c-debug", "q-error", "o-warning"]

    (h2,) = setup_logging(LoggingConfig(file=second, console=False, level="INFO"))
    assert not _ours(h1) and _ours(h2)  # replaced, not added
    assert logging.getLogger("gridflow.quiet").level == logging.NOTSET  # restored
    quiet.warning("q-warning-2")
    other.info("o-info-2")
    chatty.debug("c-debug-2")
    h2.flush()
    assert [ln.split(": ", 1)[1] for ln in second.read_text().splitlines()] == \
        ["q-warning-2", "o-info-2"]
    assert len(first.read_text().splitlines()) == 3  # the old file got nothing more


def test_numba_compiler_logs_stay_at_warning_unless_named(tmp_path):
    """numba logs every compiler pass at DEBUG (123 MB for a cold-cache replay, whose
    rotated log file then took minutes of renames: a CI timeout)."""
    log_file = tmp_path / "g.log"
    (h,) = setup_logging(LoggingConfig(file=log_file, console=False, level="DEBUG"))
    logging.getLogger("numba.core.ssa").debug("a compiler pass")
    logging.getLogger("gridflow.x").debug("ours")
    logging.getLogger("numba.core.ssa").warning("a numba warning")
    h.flush()
    assert [ln.split(": ", 1)[1] for ln in log_file.read_text().splitlines()] == [
        "ours", "a numba warning"]
    setup_logging(LoggingConfig(console=False, level="DEBUG", levels={"numba": "DEBUG"}))
    assert logging.getLogger("numba.core.ssa").getEffectiveLevel() == logging.DEBUG
    reset_logging()
    assert logging.getLogger("numba").level == logging.NOTSET  # restored


def test_console_is_stderr_text_as_before_and_carries_the_redactor():
    code = ("import logging; from gridflow.logs import setup_logging; "
            "setup_logging(); setup_logging(); log = logging.getLogger('gridflow.x'); "
            "log.warning('hi %s', 'there password=hunter22'); log.info('not shown'); "
            "print(len(logging.getLogger().handlers))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert res.stderr == "WARNING gridflow.x: hi there password=***\n"
    assert res.stdout == "1\n"


def test_bad_settings_are_refused_naming_the_field():
    for bad, field in (({"level": "LOUD"}, "level"), ({"levels": {" ": "INFO"}}, "levels"),
                       ({"max_bytes": -1}, "max_bytes"), ({"backups": 0}, "backups"),
                       ({"colour": True}, "colour")):
        with pytest.raises(ValidationError, match=field):
            LoggingConfig(**bad)


def test_the_logging_section_loads_from_toml_and_env_and_is_not_the_runs_identity(
        tmp_path, monkeypatch):
    from gridflow.config import config_hash
    from gridflow.config.loader import default_run_id

    preset = tmp_path / "p.toml"
    preset.write_text('[logging]\nlevel = "info"\njson = true\nfile = "logs/g.log"\n'
                      'max_bytes = 1000000\nbackups = 3\n[logging.levels]\nccxt = "DEBUG"\n')
    monkeypatch.setenv("GRIDFLOW_LOGGING__BACKUPS", "7")
    cfg = load_config(preset)
    assert cfg.logging == LoggingConfig(level="INFO", json=True, file=Path("logs/g.log"),
                                        max_bytes=1_000_000, backups=7,
                                        levels={"ccxt": "DEBUG"})
    (tmp_path / "q.toml").write_text("")
    monkeypatch.delenv("GRIDFLOW_LOGGING__BACKUPS")
    plain = load_config(tmp_path / "q.toml")
    assert plain.logging == LoggingConfig()
    assert config_hash(cfg) == config_hash(plain)
    assert default_run_id(cfg) == default_run_id(plain)


def test_readme_logging_example_is_a_valid_section():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```toml\n(\[logging\].*?)```", text, re.DOTALL)
    assert block, "README has a [logging] TOML example"
    import tomllib

    LoggingConfig(**tomllib.loads(block.group(1))["logging"])


def test_config_secrets_are_the_keys_the_url_credentials_and_the_db_password():
    cfg = GridflowConfig(
        db_url="postgresql+psycopg://gridflow:Pg-Pass-123456@db.example.com:5432/gf",
        apprise_urls=SecretStr("tgram://123456789:AAH-bot-token-xyz/42 "
                               "json://alice:Wonder-pw-99@hooks.example.com/path/TOK-55555"),
        live={"exchange": {"api_key": "AKIA-0123456789", "secret": "S3CR3T-0123456789"}})
    found = set(config_secrets(cfg))
    assert {"AKIA-0123456789", "S3CR3T-0123456789", "Pg-Pass-123456", "AAH-bot-token-xyz",
            "Wonder-pw-99", "TOK-55555"} <= found
    assert not {"hooks.example.com", "db.example.com"} & found  # host names stay readable


# ------------------------------------------------------------------ property

_KEYLIKE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=._~-"
_LETTER = re.compile("[A-Za-z]")  # all digits could match a record's time or thread id
SECRET = st.text(alphabet=_KEYLIKE, min_size=8, max_size=48).filter(_LETTER.search)
URL_PW = st.text(alphabet=_KEYLIKE.replace("/", ""), min_size=8, max_size=32
                 ).filter(_LETTER.search)
#: What the output holds besides the secrets: a secret equal to a piece of it would be
#: "found" without leaking.
STATIC = Path(__file__).read_text() + str(Path(__file__).resolve()) + logging.__file__


class _Holder:
    """An object whose text holds a secret (an ``extra`` field that is no string)."""

    def __init__(self, s: str) -> None:
        self.s = s

    def __str__(self) -> str:
        return f"Holder({self.s})"


def _emit(registered: str, keyed: str, url_pw: str) -> None:
    log = logging.getLogger(LOG + ".secrets")
    log.warning("connect %s with apiKey=%s to postgresql://u:%s@db/gf",
                registered, keyed, url_pw)
    log.error("request failed", extra={"detail": f"echo {registered}", "password": keyed,
                                       "body": {"headers": {"X-MBX-APIKEY": keyed},
                                                "list": [registered, 1]},
                                       "holder": _Holder(registered)})
    try:
        raise RuntimeError(f"bad signature={keyed} for {registered}")
    except RuntimeError:
        log.exception("exchange error", stack_info=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(registered=SECRET, keyed=SECRET, url_pw=URL_PW, as_json=st.booleans())
def test_no_handler_output_holds_a_secret(tmp_path, registered, keyed, url_pw, as_json):
    """A registered secret anywhere (message, argument, exception, stack, extra field,
    nested or not), and any value after a credential key or in a URL's password, never
    reaches a handler's output (the file and pytest's own capture alike)."""
    assume(not any(s in STATIC for s in (registered, keyed, url_pw)))
    path = tmp_path / f"s-{as_json}.log"
    path.unlink(missing_ok=True)
    capture = []

    class _Capture(logging.Handler):  # a handler of someone else's, set up before
        def emit(self, record: logging.LogRecord) -> None:
            capture.append(self.format(record) + repr(record.__dict__))

    foreign = _Capture()
    logging.getLogger().addHandler(foreign)
    try:
        setup_logging(LoggingConfig(file=path, console=False, level="DEBUG", json=as_json),
                      secrets=[registered])
        _emit(registered, keyed, url_pw)
        reset_logging()
    finally:
        logging.getLogger().removeHandler(foreign)
        forget_secrets([registered])
    text = path.read_text(encoding="utf-8")
    outputs = [text, *capture]
    if as_json:
        outputs += [json.dumps(json.loads(ln), ensure_ascii=False) for ln in text.splitlines()]
    for out in outputs:
        for secret in (registered, keyed, url_pw):
            assert secret not in out
    assert text.count(REDACTED) >= 3 and "Traceback" in text and "RuntimeError" in text


# ------------------------------------------------------------------ end to end

def test_cli_replay_logs_to_rotated_files_and_no_file_or_console_holds_a_secret(tmp_path):
    """``gridflow replay`` with an Apprise URL full of credentials (its target refuses
    the connection: Apprise logs the URL it fails on), DEBUG everywhere, a 20 kB file;
    then a replay against a PostgreSQL URL with a password that cannot connect."""
    pw, token, db_pw = "Wonderland-pw-4242", "TOKEN-abc-123456", "Pg-Secret-Pw-9999"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_LOGGING__FILE=str(tmp_path / "logs" / "g.log"),
               GRIDFLOW_LOGGING__LEVEL="DEBUG", GRIDFLOW_LOGGING__MAX_BYTES="20000",
               GRIDFLOW_LOGGING__BACKUPS="1000",
               GRIDFLOW_APPRISE_URLS=f"json://alice:{pw}@127.0.0.1:9/hook/{token}")
    cli = [sys.executable, "-m", "gridflow.cli", "replay", "--no-progress",
           "--start", "2023-01-01", "--end", "2023-03-01"]
    ok = subprocess.run([*cli, "--db", f"sqlite:///{tmp_path / 'j.db'}"], env=env,
                        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run([*cli, "--db", f"postgresql+psycopg://gf:{db_pw}@127.0.0.1:1/gf"],
                         env=env, check=False, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "cannot use the journal database" in bad.stderr
    texts = log_texts(tmp_path / "logs")
    assert any(name.endswith(".gz") for name in texts)  # it rotated
    blob = "\n".join([*texts.values(), ok.stdout, ok.stderr, bad.stdout, bad.stderr])
    assert "JSON POST URL: http://***/***" in blob  # Apprise logged the URL, masked
    assert "not delivered" in blob  # and the sink its failures
    for secret in (pw, token, db_pw, "alice:", "/hook/"):
        assert secret not in blob, secret
