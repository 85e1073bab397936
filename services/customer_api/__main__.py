"""`gridlease-api [serve|migrate]`: run the customer API (uvicorn) or only its migrations.
Configuration comes from GRIDLEASE_API_* variables (see core/config.py) or flags."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from services.common import configure_logging
from services.customer_api.core.config import Settings
from services.customer_api.core.db import make_engine
from services.customer_api.core.migrate import upgrade
from services.customer_api.main import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridlease-api")
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        # Field and message only: the inputs may hold the server secret.
        lines = (
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        sys.stderr.write("gridlease-api: bad configuration:\n" + "\n".join(lines) + "\n")
        return 2
    configure_logging("customer_api", settings.log_level)
    if args.command == "migrate":
        upgrade(make_engine(settings.database_url))
        return 0
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
