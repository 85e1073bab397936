"""Settings: placeholder secrets refused outside dev mode, DATABASE_URL, seed lists."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.customer_api.core.config import Settings


def test_settings_refuse_placeholder_secret_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="server_secret"):
        Settings(dev_mode=False, server_secret="changethis")


def test_settings_refuse_short_secret_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="server_secret"):
        Settings(dev_mode=False, server_secret="x" * 31)


def test_settings_accept_placeholder_in_dev_mode() -> None:
    assert Settings(dev_mode=True).server_secret.get_secret_value() == "changethis"


def test_settings_read_database_url_and_seeds_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/api")
    monkeypatch.setenv("GRIDLEASE_API_SEED_ENDPOINTS", "10.0.0.1:7600, 10.0.0.2:7600")
    monkeypatch.setenv("GRIDLEASE_API_SERVER_SECRET", "s" * 40)
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@db:5432/api"
    assert settings.seed_endpoints == ["10.0.0.1:7600", "10.0.0.2:7600"]
    assert not settings.dev_mode


def test_settings_refuse_empty_seed_list() -> None:
    with pytest.raises(ValidationError, match="seed"):
        Settings(dev_mode=True, seed_endpoints="")
