"""``GRIDFLOW_SWEEP_SPEC=spec.toml python -m bytewax.run dataflows.sweep:flow`` or
``"dataflows.sweep:build('spec.toml')"``."""

from gridflow.dataflows.sweep import build, build_flow

__all__ = ["build", "build_flow"]  # and `flow`, built lazily by __getattr__


def __getattr__(name: str):
    if name == "flow":
        from gridflow.dataflows import sweep

        return sweep.flow
    raise AttributeError(name)
