"""Seed settings: GRIDLEASE_SEED_* environment variables, or [seed] in the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common import GridleaseSettings

__all__ = ["SeedSettings"]


class SeedSettings(GridleaseSettings):
    """Everything a seed process needs; command-line flags override these."""

    model_config = SettingsConfigDict(env_prefix="GRIDLEASE_SEED_")
    toml_table = "seed"

    listen: str = Field(default="127.0.0.1:7600", description="host:port the gRPC server binds.")
    peers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Other seeds (host:port), comma-separated in the env."
    )
    data_dir: Path = Field(default=Path(".gridlease/seed"), description="Holds offers.db.")
    offer_ttl_s: float = Field(default=300.0, gt=0, description="Drop offers older than this.")
    max_clock_skew_s: float = Field(
        default=30.0, ge=0, description="How far in the future an offer timestamp may be."
    )
    sync_interval_s: float = Field(default=2.0, gt=0, description="Anti-entropy round period.")
    prune_interval_s: float = Field(default=5.0, gt=0, description="How often to expire offers.")
    max_offer_bytes: int = Field(default=4096, gt=0, description="Cap on one signed offer body.")
    max_message_bytes: int = Field(
        default=1024 * 1024, gt=0, description="gRPC max_receive_message_length."
    )
    grace_s: float = Field(default=5.0, ge=0, description="Graceful stop: time for RPCs to end.")
    # What one source may push (token buckets, see services.seed.ratelimit); a rate of 0 turns
    # that limit off. Per source address: bounds junk from fresh keys (each key is new, the
    # address is not), e.g. 20/s for 300 s of TTL holds at most 6,000 offers per address. Per
    # machine: a node re-announces every minute or so, and on changes.
    announce_rate_per_source: float = Field(
        default=20.0, ge=0, description="Announcements per second from one peer address."
    )
    announce_burst_per_source: int = Field(
        default=200, ge=1, description="Announcements one peer address may send at once."
    )
    announce_rate_per_machine: float = Field(
        default=2.0, ge=0, description="Announcements per second for one machine (signing key)."
    )
    announce_burst_per_machine: int = Field(
        default=20, ge=1, description="Announcements one machine may send at once."
    )

    @field_validator("peers", mode="before")
    @classmethod
    def _split_peers(cls, value: Any) -> Any:
        # "a:1, b:2" from the environment; lists pass through (flags, TOML).
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def db_path(self) -> Path:
        return self.data_dir / "offers.db"
