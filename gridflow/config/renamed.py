"""Config names that changed, and the one function that reads a document written with
the old ones.

The unit rule, from config to report: a name ending ``_pct`` is a **percent**
(0-100, as the report's ``return_pct`` and ``max_drawdown_pct``); a fraction (0.10 =
10 %) ends ``_frac`` or carries no unit suffix (``max_margin_ratio``,
``daily_loss_limit``, ``maker_fee``). Three config fields held fractions under ``_pct``
names; they are renamed (:data:`RENAMED`). The old names stay accepted wherever a
config is read (TOML presets, ``set_params`` commands, per-symbol overrides, sweep
spaces, keyword arguments), with a logged deprecation warning (once per old name and
process), and the models keep read-only properties under the old names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["RENAMED", "canonical_name", "renamed_keys", "with_old_names"]

log = logging.getLogger("gridflow.config")

#: Deprecated name -> its name now (each a fraction).
RENAMED: dict[str, str] = {
    "sl_pct": "sl_frac",
    "rolling_drawdown_pct": "rolling_drawdown_frac",
    "max_drawdown_pct": "max_drawdown_frac",
}

_warned: set[str] = set()


def canonical_name(name: str, where: str = "") -> str:
    """``name``, or its new name if it is a deprecated one (logged as deprecated once
    per process, naming ``where`` it was met)."""
    new = RENAMED.get(name)
    if new is None:
        return name
    if name not in _warned:
        _warned.add(name)
        log.warning("%s%r is deprecated (a fraction, not a percent): use %r",
                    f"{where}: " if where else "", name, new)
    return new


def renamed_keys(doc: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """A copy of ``doc`` with every deprecated key under its new name (order kept).

    Raises
    ------
    ValueError
        If ``doc`` gives both a deprecated name and its new one (which one was meant is
        unknown; neither wins silently).
    """
    both = sorted(old for old, new in RENAMED.items() if old in doc and new in doc)
    if both:
        raise ValueError(f"{where + ': ' if where else ''}give {RENAMED[both[0]]!r} only "
                         f"({both[0]!r} is its deprecated name)")
    if not any(k in RENAMED for k in doc):
        return dict(doc)
    return {canonical_name(k, where): v for k, v in doc.items()}


_OLD = {new: old for old, new in RENAMED.items()}


def with_old_names(doc: Any) -> Any:
    """``doc`` (a JSON-like config dump) with every renamed key under its old name, at
    any depth: what :func:`~gridflow.config.loader.config_hash` hashes, so the identity
    of a run (its config hash and default run id) is the same before and after a rename
    and a journaled run continues."""
    if isinstance(doc, dict):
        return {_OLD.get(k, k): with_old_names(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [with_old_names(v) for v in doc]
    return doc
