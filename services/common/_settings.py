"""Settings from the environment and files, through pydantic-settings.

Each service declares one Settings class that extends GridleaseSettings and sets its own env
prefix (GRIDLEASE_SEED_, GRIDLEASE_NODE_, ...). Sources, strongest first: keyword arguments
(command-line flags), environment variables, a .env file, then a TOML file named by
GRIDLEASE_CONFIG_FILE (one file can configure several services, one [table] each, e.g. [seed]).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common._errors import ConfigError

__all__ = ["CONFIG_FILE_ENV", "GridleaseSettings"]

CONFIG_FILE_ENV = "GRIDLEASE_CONFIG_FILE"


class GridleaseSettings(BaseSettings):
    """Fields every service has. Subclasses set model_config's env_prefix and toml_table."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDLEASE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )
    # The [table] of the TOML config file this class reads; None reads the top level.
    toml_table: ClassVar[str | None] = None

    log_level: str = Field(default="INFO", description="Python logging level name.")
    metrics_port: int | None = Field(
        default=None, description="Port for Prometheus /metrics; unset disables it, 0 picks one."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address /metrics binds to.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(_toml_source(settings_cls, Path(config_file), cls.toml_table))
        sources.append(file_secret_settings)
        return tuple(sources)


def _toml_source(
    settings_cls: type[BaseSettings], path: Path, table: str | None
) -> PydanticBaseSettingsSource:
    """The given [table] of a TOML file (or its top level) as a settings source."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if table is not None:
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{table}] in {path} is not a table")
        data = section
    return InitSettingsSource(settings_cls, init_kwargs=data)
