"""Databases for API tests: a SQLite file, or a fresh database on a throwaway PostgreSQL cluster
started by scripts/postgres.sh."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SH = ROOT / "scripts" / "postgres.sh"
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A running cluster's admin URL; stopped and removed afterwards. The folder sits directly
    in /tmp because the server runs as the postgres user, who cannot enter pytest's folders."""
    folder = Path(tempfile.mkdtemp(prefix="gridlease-pg-"))
    try:
        url = subprocess.run(
            [str(POSTGRES_SH), "start", str(folder)],
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        ).stdout.strip()
        yield url
    finally:
        subprocess.run(
            [str(POSTGRES_SH), "stop", str(folder)], check=False, capture_output=True, timeout=60
        )
        shutil.rmtree(folder, ignore_errors=True)


def new_postgres_database(admin_url: str) -> str:
    """A new empty database on the cluster; its URL."""
    name = "api_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def new_sqlite_database(folder: Path) -> str:
    return f"sqlite:///{folder / ('api-' + uuid.uuid4().hex[:8] + '.db')}"
