"""Units in names: a config name ending ``_pct`` would be a percent, so the fractions once
named ``sl_pct``, ``rolling_drawdown_pct`` and ``max_drawdown_pct`` are ``..._frac`` now;
the old names are still read everywhere a config comes in (TOML, commands, overrides,
sweep spaces), with a logged deprecation warning, and change no run's identity."""

from __future__ import annotations

import logging
import typing

import pytest
from pydantic import BaseModel, ValidationError
from test_engine import engine

from gridflow.config import load_config
from gridflow.config.loader import config_hash
from gridflow.config.models import AccountConfig, GridflowConfig, RiskConfig
from gridflow.config.renamed import RENAMED, with_old_names
from gridflow.config.strategies import (
    EnvelopeDcaParams,
    GridAtrParams,
    GridMultiTfParams,
    GridTrendParams,
)
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import Command
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine import account_params
from gridflow.sweep import expand_grid


def _field_names(model: type[BaseModel], seen: set) -> set[str]:
    """Every field name of ``model`` and of the models its fields hold."""
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                names |= _field_names(t, seen)
            stack.extend(typing.get_args(t))
    return names


def test_no_config_field_is_named_pct():
    """The config holds fractions only, so no name of it ends ``_pct``."""
    seen: set = set()
    names = set().union(*(_field_names(m, seen) for m in (
        GridflowConfig, GridAtrParams, EnvelopeDcaParams, GridMultiTfParams, GridTrendParams)))
    assert {"sl_frac", "rolling_drawdown_frac", "max_drawdown_frac"} <= names
    assert not [n for n in names if n.endswith("_pct")]


def test_the_bundled_presets_use_the_new_names():
    from gridflow.config.loader import DEFAULT_CONFIG

    for path in [DEFAULT_CONFIG, *DEFAULT_CONFIG.parent.glob("presets/*.toml")]:
        text = path.read_text()
        assert not [old for old in RENAMED if f"\n{old} =" in text], path.name


def test_old_names_are_read_with_a_deprecation_warning(tmp_path, caplog, monkeypatch):
    from gridflow.config import renamed

    monkeypatch.setattr(renamed, "_warned", set())
    path = tmp_path / "old.toml"
    path.write_text("[[accounts]]\nname = \"a\"\nsymbols = [\"BTC/USDT\"]\n"
                    "[[accounts.strategies]]\nsl_pct = 0.15\n"
                    "[accounts.risk]\nmax_drawdown_pct = 0.35\n")
    with caplog.at_level(logging.WARNING, logger="gridflow.config"):
        cfg = load_config(path)
    assert cfg.accounts[0].strategies[0].sl_frac == 0.15
    assert cfg.accounts[0].risk.max_drawdown_frac == 0.35
    assert "'sl_pct' is deprecated" in caplog.text
    with caplog.at_level(logging.WARNING, logger="gridflow.config"):
        p = GridAtrParams(sl_pct=0.3, overrides={"SOL/USDT": {"sl_pct": 0.4}})
        r = RiskConfig(rolling_drawdown_pct=0.3, max_drawdown_pct=0.5)
    assert (p.sl_frac, p.for_symbol("SOL/USDT").sl_frac, p.sl_pct) == (0.3, 0.4, 0.3)
    assert (r.rolling_drawdown_frac, r.max_drawdown_frac, r.max_drawdown_pct) == (0.3, 0.5, 0.5)
    said = " ".join(m.getMessage() for m in caplog.records)
    assert all(f"{o!r} is deprecated" in said and repr(n) in said for o, n in RENAMED.items())


def test_an_old_and_a_new_name_together_are_refused():
    with pytest.raises(ValidationError, match="give 'sl_frac' only"):
        GridAtrParams(sl_pct=0.3, sl_frac=0.2)
    with pytest.raises(ValidationError, match="give 'max_drawdown_frac' only"):
        RiskConfig(max_drawdown_pct=0.3, max_drawdown_frac=0.2)


def test_the_kernel_reads_the_renamed_risk_fields():
    acct = AccountConfig(risk=RiskConfig(rolling_drawdown_frac=0.3, max_drawdown_pct=0.6))
    pf = account_params(acct, load_config(None).fees)
    assert (pf[kl.P_ROLLING_DD], pf[kl.P_MAX_DD]) == (0.3, 0.6)


def test_a_rename_changes_no_run_identity(monkeypatch):
    """The config hash (and so the default run id) is taken over the old names: runs
    journaled before the rename keep their identity (a live run continues)."""
    from gridflow.config import loader

    cfg = load_config(None)
    doc = cfg.model_dump(mode="json")
    assert with_old_names(doc)["accounts"][0]["risk"]["max_drawdown_pct"] == 0.40
    hashed = []
    real = loader.hashlib.sha256
    monkeypatch.setattr(loader.hashlib, "sha256", lambda b: hashed.append(b) or real(b))
    config_hash(cfg)
    (blob,) = hashed
    assert all(f'"{old}"' in blob.decode() for old in RENAMED)
    assert not [new for new in RENAMED.values() if f'"{new}"' in blob.decode()]


@pytest.mark.parametrize("name", ["sl_pct", "sl_frac"])
def test_set_params_takes_either_name(name):
    eng = engine()
    out = eng.apply_command(Command(command_id=1, account="t", kind="set_params",
                                    payload={"params": {name: 0.25}}, issued_at_ms=0,
                                    issued_by="u"), 0)
    (ack,) = out.events
    assert (ack.kind, ack.reason) == (EventKind.COMMAND_APPLIED, "set_params")
    assert ack.detail["changes"]["BTC/USDT"] == {"sl_frac": [0.5, 0.25]}
    assert eng.mp[0, kl.M_SL] == 0.25 and eng.params["BTC/USDT"].sl_frac == 0.25


def test_set_params_with_both_names_is_rejected():
    eng = engine()
    out = eng.apply_command(Command(command_id=1, account="t", kind="set_params",
                                    payload={"params": {"sl_pct": 0.2, "sl_frac": 0.3}},
                                    issued_at_ms=0, issued_by="u"), 0)
    (ack,) = out.events
    assert (ack.kind, ack.reason) == (EventKind.COMMAND_REJECTED, Reason.BAD_PAYLOAD)
    assert eng.mp[0, kl.M_SL] == 0.5


def test_a_sweep_space_takes_either_name_and_keeps_the_one_given():
    for name in ("sl_pct", "sl_frac"):
        combos, params, invalid = expand_grid("grid_atr", {"atr_start": [1, 2], name: [0.1, 0.2]},
                                              {"levels": 3})
        assert invalid == 0 and sorted(c.sl_frac for c in combos) == [0.1, 0.1, 0.2, 0.2]
        assert all(set(p) == {"atr_start", name} for p in params)
    combos, _, _ = expand_grid("grid_atr", {"atr_start": [1]}, {"sl_pct": 0.3})
    assert combos[0].sl_frac == 0.3
    with pytest.raises(ValueError, match="give 'sl_frac' only"):
        expand_grid("grid_atr", {"sl_pct": [0.1], "sl_frac": [0.2]})


def test_walk_forward_neighbours_perturb_a_parameter_given_by_its_old_name():
    from gridflow.wfo.config import neighbours

    combo = GridAtrParams(sl_frac=0.1)
    old = [n.sl_frac for n in neighbours(combo, ["sl_pct"], [-0.2, 0.2])]
    assert old == [n.sl_frac for n in neighbours(combo, ["sl_frac"], [-0.2, 0.2])]
    assert old == pytest.approx([0.08, 0.12])


def test_a_setting_added_later_changes_no_run_identity_unless_set():
    """``[candles]`` came after runs were journaled: at its default it is not hashed (the
    run id of a config written before it is unchanged); set to something else, it is."""
    from gridflow.config.loader import default_run_id

    cfg = load_config(None)
    doc = cfg.model_dump(mode="json")
    assert "candles" in doc
    without = config_hash(cfg)
    same = load_config(None, candles={"max_jump_factor": cfg.candles.max_jump_factor})
    assert config_hash(same) == without and default_run_id(same) == default_run_id(cfg)
    other = load_config(None, candles={"max_jump_factor": 20.0})
    assert config_hash(other) != without


def test_strategy_and_risk_fields_added_by_issue_18_change_no_run_identity_unless_set():
    """``time_stop_candles``, ``sl_atr``, ``sl_atr_period``, ``entry_filter``,
    ``regime_filter`` and ``risk.max_symbol_exposure`` came after runs were journaled: at
    their defaults the default config keeps the identity the last release journaled
    (the hash computed on 1f6ffda, where ``validated = null`` was already hashed); set,
    each changes it."""
    from gridflow.config.loader import default_run_id

    cfg = load_config(None)
    assert config_hash(cfg) == "72dc585189f3b4cb"
    acct = cfg.accounts[0]
    strat = acct.strategies[0]
    for update in ({"time_stop_candles": 48}, {"regime_filter": {"bear": "block"}},
                   {"sl_atr": 2.0}, {"sl_atr_period": 20},
                   {"entry_filter": {"rsi_band": (30.0, 70.0)}}):
        doc = cfg.model_dump(mode="json")
        doc["accounts"][0]["strategies"][0] = {**strat.model_dump(mode="json"), **update}
        other = type(cfg).model_validate(doc)
        assert config_hash(other) != config_hash(cfg), update
        assert default_run_id(other) != default_run_id(cfg)
    doc = cfg.model_dump(mode="json")
    doc["accounts"][0]["risk"]["max_symbol_exposure"] = 0.5
    assert config_hash(type(cfg).model_validate(doc)) != config_hash(cfg)


def test_where_streams_are_parsed_and_the_brokers_wait_are_no_part_of_a_runs_identity():
    """``live.streams.hub``, ``live.broker_wait_max_s`` and
    ``live.exchange.rate_limit_burst`` say how a live run runs, not what it does: set or
    not, the run keeps its identity (a restart may switch them); the streams' mode and
    the venue still count."""
    cfg = load_config(None)
    doc = cfg.model_dump(mode="json")
    doc["live"]["streams"]["hub"] = "thread"
    doc["live"]["broker_wait_max_s"] = 0.01
    doc["live"]["exchange"]["rate_limit_burst"] = 20.0
    assert config_hash(type(cfg).model_validate(doc)) == config_hash(cfg)
    doc["live"]["streams"]["account"] = "poll"
    assert config_hash(type(cfg).model_validate(doc)) != config_hash(cfg)
