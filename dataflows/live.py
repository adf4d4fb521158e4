"""``python -m bytewax.run dataflows.live:flow`` (paper unless ``live.mode = "live"``
is armed) or ``dataflows.live:build('preset.toml')``."""

from gridflow.dataflows.live import build, build_flow

__all__ = ["build", "build_flow"]  # and `flow`, built lazily by __getattr__


def __getattr__(name: str):
    if name == "flow":
        return build()
    raise AttributeError(name)
