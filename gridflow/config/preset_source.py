"""The TOML preset being loaded, as the weakest pydantic-settings source.

:func:`gridflow.config.loader.load_config` sets :data:`preset` while it validates a
config; :class:`gridflow.config.models.GridflowConfig` lists :class:`TomlPresetSource`
after init arguments and the environment, so explicit overrides and ``GRIDFLOW_*``
variables win over the file.
"""

from __future__ import annotations

import contextvars
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

#: The preset (parsed TOML, paths made absolute) of the config being validated.
preset: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("preset", default={})


class TomlPresetSource(PydanticBaseSettingsSource):
    """Settings source that yields the TOML preset being loaded (weakest source)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return preset.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(preset.get())
