"""The customer API's browser side: the web console at /console/ (sign up, search offers, lease,
watch a lease start, SSH command, extend, terminate, spending) and the API reference at /docs
(Swagger UI) and /redoc, all served by the API itself, offline."""

from __future__ import annotations

from fastapi import FastAPI

from services.customer_api.console.docs import WebAssets, docs_router
from services.customer_api.console.pages import CONSOLE_PATH, console_router

__all__ = ["CONSOLE_PATH", "WebAssets", "mount_console"]


def mount_console(app: FastAPI, api_prefix: str, assets: WebAssets | None = None) -> None:
    """Adds the console and the docs to an app created with docs_url=None, redoc_url=None."""
    assert app.openapi_url is not None
    app.include_router(console_router(api_prefix))
    app.include_router(docs_router(app.title, app.openapi_url, assets))
