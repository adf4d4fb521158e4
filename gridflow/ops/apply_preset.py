"""Write a walk-forward's validated parameters as a preset file
(``gridflow wfo ... --apply PRESET.toml``; the document: :mod:`gridflow.wfo.apply`)."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from gridflow.config.loader import load_config
from gridflow.config.models import GridflowConfig


def write_preset(path: str | Path, doc: dict) -> GridflowConfig:
    """Write ``doc`` as the TOML preset ``path`` and load it back (what a replay of it
    runs).

    Raises
    ------
    FileExistsError
        ``path`` exists: an applied preset never overwrites a file.
    pydantic.ValidationError
        The preset does not load (a bug: it is built from a validated spec).
    """
    p = Path(path)
    if p.exists():
        raise FileExistsError(f"{p} exists: --apply writes a new preset, pick another name")
    p.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Written by `gridflow wfo --apply`: the walk-forward's chosen parameters, "
            "each strategy's\n# [validated] table says how they were graded.\n"
            + tomli_w.dumps(doc))
    p.write_text(text, encoding="utf-8")
    return load_config(p)


__all__ = ["write_preset"]
