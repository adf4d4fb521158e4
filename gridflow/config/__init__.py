"""Configuration: pydantic settings models and TOML presets."""

from gridflow.config.loader import DEFAULT_CONFIG, config_hash, load_config
from gridflow.config.models import (
    AccountConfig,
    DataFile,
    FeesConfig,
    GridAtrParams,
    GridflowConfig,
    MarketSpec,
    RiskConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "AccountConfig",
    "DataFile",
    "FeesConfig",
    "GridAtrParams",
    "GridflowConfig",
    "MarketSpec",
    "RiskConfig",
    "config_hash",
    "load_config",
]
