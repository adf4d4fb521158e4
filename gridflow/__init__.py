"""gridflow: a reactive stream-processing engine for grid / DCA crypto trading.

Layout: :mod:`gridflow.dataflows` (Bytewax flows, sources, sinks),
:mod:`gridflow.operators` (pure logic: validation, indicators, strategies, risk,
the account engine), :mod:`gridflow.control` (journal store, reports, control plane),
:mod:`gridflow.config` (pydantic settings and TOML presets).
"""

__version__ = "0.1.0"

from gridflow._numba_cache import configure_numba_cache as _configure_numba_cache

_configure_numba_cache()
