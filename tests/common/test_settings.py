"""Settings: env prefix, flags over env, TOML tables, list parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import CONFIG_FILE_ENV, ConfigError, GridleaseSettings
from services.seed.settings import SeedSettings


def test_read_settings_uses_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEASE_SEED_LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("GRIDLEASE_SEED_PEERS", "a:1, b:2,")
    monkeypatch.setenv("GRIDLEASE_LOG_LEVEL", "DEBUG")  # base prefix is not the seed's
    settings = SeedSettings()
    assert settings.listen == "127.0.0.1:9999"
    assert settings.peers == ["a:1", "b:2"]
    assert settings.log_level == "INFO"
    assert GridleaseSettings().log_level == "DEBUG"


def test_read_settings_prefers_arguments_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEASE_SEED_LISTEN", "127.0.0.1:9999")
    assert SeedSettings(listen="127.0.0.1:1").listen == "127.0.0.1:1"


def test_read_settings_from_toml_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gridlease.toml"
    config.write_text('log_level = "WARNING"\n[seed]\npeers = ["x:1"]\noffer_ttl_s = 60\n')
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    monkeypatch.setenv("GRIDLEASE_SEED_OFFER_TTL_S", "30")  # env beats the file
    settings = SeedSettings()
    assert settings.peers == ["x:1"]
    assert settings.offer_ttl_s == 30
    assert GridleaseSettings().log_level == "WARNING"


def test_read_settings_refuses_bad_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[seed\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    with pytest.raises(ConfigError):
        SeedSettings()


def test_read_settings_refuses_invalid_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEASE_SEED_OFFER_TTL_S", "-5")
    with pytest.raises(ValueError, match="offer_ttl_s"):
        SeedSettings()
