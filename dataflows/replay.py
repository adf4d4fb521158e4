"""``python -m bytewax.run dataflows.replay:flow`` (default preset) or
``dataflows.replay:build('preset.toml')``."""

from gridflow.dataflows.replay import build, build_flow

__all__ = ["build", "build_flow"]  # and `flow`, built lazily by __getattr__


def __getattr__(name: str):
    if name == "flow":
        return build()
    raise AttributeError(name)
