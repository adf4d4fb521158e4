"""Fuzzed CONFIGS through the config models: a config either loads or is refused with a
pydantic ``ValidationError`` / ``ValueError`` naming what is wrong, never another
exception.

Inputs: 2,000 tables (each model a config holds: account, risk, sizing, fees, markets,
alerts, data and funding files, candle rules, live/exchange/retry, the four strategies)
drawn field by field from the field's own type, a near miss or junk; 700 whole documents
shaped like :class:`~gridflow.config.GridflowConfig` given to
:func:`~gridflow.config.loader.config_from_dict`; 500 TOML texts (such documents, cut
ones, broken TOML, any text) through :func:`~gridflow.config.load_config`, the CLI's
path; and a table of hand cases, some of which once crashed.
"""

from __future__ import annotations

import json
import math
import random
import types
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr, ValidationError

from gridflow.config import AccountConfig, GridflowConfig, load_config
from gridflow.config.loader import config_from_dict
from gridflow.config.strategies import StrategyParams

FUZZ = settings(deadline=None, database=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])

GOOD_STRINGS = ["1h", "4h", "1d", "BTC/USDT", "ETH/USDT", "rsi_14", "supertrend_10_3@4h",
                "sma_0", "bbands_20_2", "2023-01-01", "2023-13-45", "grid_atr", "envelope_dca",
                "long", "short", "both", "equal", "risk", "paper", "live", "~nosuchuser/x.csv",
                "", " ", "demo", "a" * 70, "\x00", "sqlite:///x.db", "json://127.0.0.1/",
                "1e3", "nan", "true", "9" * 30, "2023-01-01T00:00:00+25:00"]
SPECIAL_INTS = [0, 1, -1, 2, 5, 100, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
SPECIAL_FLOATS = [0.0, -0.0, 1e-300, 1e300, 0.5, 1.0, 1.5, 10.0, math.inf, -math.inf,
                  math.nan, 5e-324]
EXTRA_KEYS = ["bogus", "sl_pct", "strategy", "max_drawdown_pct", "rolling_drawdown_pct",
              "max_jump", "strategies"]


def _junk(rng: random.Random, depth: int = 0):
    """Any JSON-like value."""
    k = rng.randrange(9 if depth < 2 else 7)
    if k == 0:
        return None
    if k == 1:
        return rng.random() < 0.5
    if k == 2:
        return rng.choice(SPECIAL_INTS + [rng.randint(-(2**70), 2**70)])
    if k == 3:
        return rng.choice(SPECIAL_FLOATS + [rng.uniform(-10, 10)])
    if k in (4, 5):
        return rng.choice(GOOD_STRINGS)
    if k == 6:
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(8)))
    if k == 7:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(GOOD_STRINGS + EXTRA_KEYS): _junk(rng, depth + 1)
            for _ in range(rng.randrange(3))}


def _value(rng: random.Random, tp, depth: int):
    """A value for an annotation: mostly of its type (in and out of range), some junk."""
    if rng.random() < 0.05:
        return _junk(rng, depth)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _value(rng, args[0], depth)
    if origin in (typing.Union, types.UnionType):
        return _value(rng, rng.choice(args), depth)
    if origin is typing.Literal:
        return rng.choice(args) if rng.random() < 0.8 else rng.choice(GOOD_STRINGS)
    if tp is type(None):
        return None
    if origin in (tuple, list):
        return [_value(rng, args[0], depth + 1) for _ in range(rng.randrange(3 if depth < 2
                                                                             else 2))]
    if origin is dict:
        return {rng.choice(GOOD_STRINGS): _value(rng, args[1], depth + 1)
                for _ in range(rng.randrange(3))}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return document(rng, tp, depth + 1) if depth < 4 else {}
    if tp is bool:
        return rng.random() < 0.5
    if tp is int:
        return rng.choice([rng.randint(-3, 300), rng.choice(SPECIAL_INTS)])
    if tp is float:
        return rng.choice([rng.uniform(-2, 5), rng.uniform(0, 1), rng.choice(SPECIAL_FLOATS),
                           rng.randint(-3, 300)])
    if tp in (str, SecretStr, Path):
        return rng.choice(GOOD_STRINGS)
    return _junk(rng, depth)


def document(rng: random.Random, model: type[BaseModel], depth: int = 0) -> dict:
    """Some of ``model``'s fields (each present with probability 0.3), rarely an unknown
    or renamed one. The strategies of an account are drawn among the four models."""
    doc = {}
    for name, f in model.model_fields.items():
        if rng.random() < 0.7:
            continue
        if model is GridflowConfig and name == "data":  # paths that name no real file
            doc[name] = [{"path": rng.choice(GOOD_STRINGS), "symbol": rng.choice(GOOD_STRINGS)}
                         for _ in range(rng.randrange(3))]
        elif model is AccountConfig and name == "strategies":
            doc[name] = [document(rng, rng.choice(STRATEGIES), depth + 1)
                         for _ in range(rng.randrange(3))]
        else:
            doc[name] = _value(rng, f.annotation, depth)
    if rng.random() < 0.1:
        doc[rng.choice(EXTRA_KEYS)] = _junk(rng, depth)
    return doc


def _models(tp, seen: dict) -> dict:
    """Every pydantic model reachable from annotation ``tp`` (fields, unions, tuples)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
        seen[tp] = None
        for f in tp.model_fields.values():
            _models(f.annotation, seen)
    for arg in typing.get_args(tp):
        _models(arg, seen)
    return seen


STRATEGIES = tuple(m for m in _models(StrategyParams, {}) if "name" in m.model_fields)
"""The strategy models (their ``name`` picks one; a table nested in them, such as
``validated``, is not a strategy)."""
SEEDS = st.integers(0, 2**32)
CONFIG_DOCS = SEEDS.map(lambda seed: document(random.Random(seed), GridflowConfig))


def _refused_cleanly(call) -> GridflowConfig | None:
    try:
        return call()
    except (ValidationError, ValueError) as exc:
        assert str(exc)  # a message
        return None


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("GRIDFLOW_"):
            monkeypatch.delenv(k)


MODELS = tuple(m for m in _models(GridflowConfig, {}) if m is not GridflowConfig)


def test_every_table_of_a_config_is_fuzzed() -> None:
    names = {m.__name__ for m in MODELS}
    assert {"AccountConfig", "RiskConfig", "CandleRules", "LiveConfig", "RetryConfig",
            "GridAtrParams", "GridTrendParams", "GridFundingParams", "DataFile", "MarketSpec",
            "Validation", "EntryFilter", "RegimeFilter"} <= names
    assert len(STRATEGIES) == 5


@settings(FUZZ, max_examples=2000)
@given(st.sampled_from(MODELS), SEEDS)
def test_each_config_table_validates_or_is_refused_cleanly(model, seed: int) -> None:
    doc = document(random.Random(seed), model)
    try:
        m = model.model_validate(doc)
    except (ValidationError, ValueError) as exc:
        assert str(exc)
        return
    assert model.model_validate(m.model_dump()) == m  # what loads round-trips


@settings(FUZZ, max_examples=700, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture])
@given(CONFIG_DOCS)
def test_config_documents_load_or_are_refused_cleanly(doc: dict) -> None:
    cfg = _refused_cleanly(lambda: config_from_dict(doc))
    if cfg is not None:  # what loads is valid and round-trips
        assert cfg.candles.max_jump_factor > 1 and math.isfinite(cfg.candles.max_price_quote)
        assert config_from_dict(cfg.model_dump()) == cfg


def _inline(x) -> str:
    """A value as an inline TOML value (None, which TOML lacks, as the string "none")."""
    if x is None:
        return '"none"'
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x) if -(2**63) <= x < 2**63 else repr(float(x))
    if isinstance(x, float):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf") if math.isinf(x) \
            else repr(x)
    if isinstance(x, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_inline(v)}" for k, v in x.items()) + "}"
    if isinstance(x, list | tuple):
        return "[" + ", ".join(_inline(v) for v in x) + "]"
    return json.dumps(str(x))  # JSON escapes are TOML basic-string escapes


def _toml(doc: dict) -> str:
    """A preset: one ``key = value`` line per top-level field, tables inline."""
    return "".join(f"{json.dumps(k)} = {_inline(v)}\n" for k, v in doc.items())


BROKEN_TOML = st.sampled_from(["capital = [\n", "[[accounts]\n", "a = 1\na = 2\n",
                               "x = \"\\q\"\n", "[candles]\nmax_jump_factor = \n", "\x00",
                               "start_ms = 1979-05-27T07:32:00Z\n", "data = 5\n",
                               "data = [1, 'a']\n", "[[data]]\npath = 3\n"])


@pytest.fixture(scope="module")
def cdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_configs")


@settings(FUZZ, max_examples=500, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture])
@given(st.one_of(CONFIG_DOCS.map(_toml), BROKEN_TOML,
                 st.text(max_size=60), CONFIG_DOCS.map(_toml).map(lambda t: t[: len(t) // 2])))
def test_toml_presets_load_or_are_refused_cleanly(cdir: Path, text: str) -> None:
    p = cdir / "preset.toml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _refused_cleanly(lambda: load_config(p))


@pytest.mark.parametrize("doc", [
    {"start_ms": 10**30, "end_ms": 10**29},  # an error message formatting the dates
    {"start_ms": 10**20},
    {"end_ms": -(2**70)},
    {"start_ms": "9999-12-31", "end_ms": "0001-01-01"},
    {"candles": {"max_jump_factor": 1.0}},
    {"candles": {"max_price_quote": float("inf")}},
    {"candles": []},
    {"accounts": []},
    {"accounts": [{"strategy": {"name": "grid_atr", "overrides": {"X/Y": 5}}}]},
    {"accounts": [{"strategy": {"name": "nope"}}]},
    {"markets": {"BTC/USDT": {"price_tick": -1}}},
    {"start_ms": -1},
])
def test_hand_made_configs_are_refused_cleanly(doc) -> None:
    assert _refused_cleanly(lambda: config_from_dict(doc)) is None


def test_a_home_folder_that_does_not_exist_in_a_preset_is_a_value_error(tmp_path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[[data]]\npath = "~nosuchuser/binance_BTC_USDT_1h.csv"\n')
    with pytest.raises(ValueError, match="nosuchuser"):
        load_config(p)


def test_the_toml_writer_round_trips() -> None:
    import tomllib

    doc = {"a": 1, "b": [1.5, "x\n\"", {"c": None}], "d": {"e f": float("inf"), "g": True}}
    back = tomllib.loads(_toml(doc))
    assert back == {"a": 1, "b": [1.5, "x\n\"", {"c": "none"}], "d": {"e f": math.inf,
                                                                      "g": True}}
