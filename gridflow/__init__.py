"""gridflow: a reactive stream-processing engine for grid / DCA crypto trading.

Layers, top to bottom (imports only go down; ``tests/test_layers.py`` lists and checks
them): :mod:`gridflow.control` (the Panel app, the control client, reports) and the
command line; :mod:`gridflow.dataflows` (Bytewax flows, sources, sinks: all I/O);
:mod:`gridflow.sweep` and :mod:`gridflow.wfo` (research engines); :mod:`gridflow.exchange`
(ccxt adapters); :mod:`gridflow.operators` (pure logic: validation, indicators,
strategies, risk, kernels, account engines); :mod:`gridflow.journal` (SQLModel schema
and store); :mod:`gridflow.data` (candle and funding files); :mod:`gridflow.config` and
the records, ids and names at the bottom.
"""

__version__ = "0.1.0"

from gridflow._numba_cache import configure_numba_cache as _configure_numba_cache

_configure_numba_cache()
