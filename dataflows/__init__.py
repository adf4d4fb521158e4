"""Entry points for ``python -m bytewax.run dataflows.<name>:flow``.

The flows live in :mod:`gridflow.dataflows`; this top-level package only names them
the way the product brief does, so ``python -m bytewax.run dataflows.replay:flow``
works from any directory once gridflow is installed.
"""
