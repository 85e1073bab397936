"""The API's one Settings class, from GRIDLEASE_API_* variables (DATABASE_URL is read too)."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common import TOKEN_UNIT, GridleaseSettings

__all__ = ["PLACEHOLDER_SECRETS", "RateLimit", "Settings"]

UNIT = TOKEN_UNIT
# Secrets that ship in examples and docs; refused unless dev_mode is on.
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "changeme", "secret", "dev", "dev-secret"})
_MIN_SECRET_LEN = 32


class RateLimit(BaseModel):
    """At most `requests` per `per_s` seconds for one key (a source address or an account), as
    a token bucket: a burst of `requests`, refilled evenly over `per_s`. Written "10/3600" in the
    environment or a TOML file (JSON {"requests": 10, "per_s": 3600} or a TOML table work too)."""

    model_config = ConfigDict(frozen=True)

    requests: int = Field(ge=1, le=1_000_000)
    per_s: float = Field(gt=0, le=7 * 86_400)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return json.loads(value)
        if isinstance(value, str):
            requests, sep, per_s = value.partition("/")
            if not sep:
                raise ValueError("a rate limit is written REQUESTS/SECONDS, e.g. 10/3600")
            return {"requests": requests.strip(), "per_s": per_s.strip()}
        return value

    def __str__(self) -> str:
        return f"{self.requests}/{self.per_s:g}"


RateLimitSetting = Annotated[RateLimit, NoDecode]


class Settings(GridleaseSettings):
    """Configuration of `gridlease-api`. Required outside dev mode: a real server_secret."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDLEASE_API_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )
    toml_table: ClassVar[str | None] = "api"

    api_v1_str: str = "/v1"
    dev_mode: bool = Field(default=False, description="Enables the faucet; allows dev secrets.")
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port.")
    database_url: str = Field(
        default="sqlite:///./gridlease-api.db",
        validation_alias=AliasChoices("GRIDLEASE_API_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL: sqlite:///path (WAL) or postgresql://user@host/db.",
    )
    migrate_on_startup: bool = Field(default=True, description="Run Alembic upgrade at start.")
    server_secret: SecretStr = Field(
        default=SecretStr("changethis"),
        description="Encrypts custodial keys and keys API-key hashes. At least 32 characters.",
    )
    chain_url: str = Field(default="ws://127.0.0.1:9944", description="Chain RPC websocket.")
    chain_writers: int = Field(default=4, ge=1, le=64, description="Chain connections for calls.")
    chain_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Deadline of one chain RPC answer."
    )
    chain_submit_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Deadline of a call from sending to its block; then 503 (the outcome is "
        "settled later: a retry with the same Idempotency-Key finds it).",
    )
    seed_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1:7600"],
        description="Seed gRPC endpoints, comma-separated in the environment.",
    )
    seed_timeout_s: float = Field(default=3.0, gt=0)
    offers_stale_after_s: float = Field(
        default=30.0, gt=0, description="Refuse searches (503) after seeds are lost this long."
    )
    offers_retry_s: float = Field(default=1.0, gt=0, description="Pause before re-watching.")
    chain_state_ttl_s: float = Field(
        default=5.0, ge=0, description="How long a machine's chain price/free GPUs are reused."
    )
    indexer_enabled: bool = True
    indexer_interval_s: float = Field(default=1.0, gt=0)
    indexer_start_block: int | None = Field(
        default=None, ge=0, description="First block to index on an empty database (None: head)."
    )
    delivery_enabled: bool = True
    delivery_retry_s: float = Field(default=2.0, gt=0, description="Pause between redeliveries.")
    node_timeout_s: float = Field(default=3.0, gt=0, description="Deadline of calls to nodes.")
    faucet_secret: SecretStr = Field(default=SecretStr("//Alice"), description="Faucet account.")
    faucet_max_amount: int = Field(default=10_000 * UNIT, gt=0)
    # Rate limits (429 with Retry-After). They are kept in this process's memory, bounded by
    # rate_limit_keys: with N replicas behind a balancer a source may get up to N times these
    # unless the balancer keeps each source on one replica; enforce a global bound there.
    rate_limits_enabled: bool = Field(default=True, description="Apply the limits below.")
    rate_limit_keys: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="Sources or accounts remembered per limit; the longest idle are forgotten.",
    )
    signup_limit_per_source: RateLimitSetting = Field(
        default=RateLimit(requests=10, per_s=3600), description="Sign-ups per client address."
    )
    faucet_limit_per_account: RateLimitSetting = Field(
        default=RateLimit(requests=5, per_s=3600), description="Faucet calls per customer."
    )
    faucet_limit_per_source: RateLimitSetting = Field(
        default=RateLimit(requests=20, per_s=3600), description="Faucet calls per address."
    )
    write_limit_per_account: RateLimitSetting = Field(
        default=RateLimit(requests=60, per_s=60),
        description="Other writes (leases, API keys) per customer.",
    )
    write_limit_per_source: RateLimitSetting = Field(
        default=RateLimit(requests=300, per_s=60), description="Other writes per address."
    )
    public_read_limit_per_source: RateLimitSetting = Field(
        default=RateLimit(requests=600, per_s=60),
        description="Reads without an API key (offer search, chain info) per address.",
    )

    @field_validator("seed_endpoints", mode="before")
    @classmethod
    def _split_endpoints(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if not self.seed_endpoints:
            raise ValueError("seed_endpoints: at least one seed is needed")
        secret = self.server_secret.get_secret_value()
        if not self.dev_mode and (
            secret.lower() in PLACEHOLDER_SECRETS or len(secret) < _MIN_SECRET_LEN
        ):
            raise ValueError(
                "server_secret is a placeholder or shorter than 32 characters; set "
                "GRIDLEASE_API_SERVER_SECRET (or GRIDLEASE_API_DEV_MODE=true for development)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
