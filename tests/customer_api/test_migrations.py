"""Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.customer_api.core.db import make_engine
from services.customer_api.core.migrate import upgrade
from services.customer_api.models import API_METADATA


def test_migrations_match_models_and_rerun_is_noop(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), API_METADATA)
        assert diff == []
        tables = set(inspect(engine).get_table_names())
        assert {"customer", "apikey", "custodialkey", "leaserecord", "indexercursor"} <= tables
        if database_url.startswith("sqlite"):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
