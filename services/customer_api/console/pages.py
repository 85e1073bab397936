"""The web console's pages at /console/: static HTML, CSS and plain JavaScript (static/) that
call the API's JSON routes like the CLI does. Nothing is built or downloaded for them."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

__all__ = ["CONSOLE_PATH", "STATIC_DIR", "console_router"]

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).with_name("static")
_FILES = {"console.css": "text/css", "console.js": "text/javascript", "money.js": "text/javascript"}
# The pages load nothing from elsewhere, and no other site may frame them (clickjacking).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated each load: a new release is seen at once
}


def console_router(api_prefix: str, docs_url: str = "/docs") -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = (
        (STATIC_DIR / "index.html")
        .read_text()
        .replace("{{API_V1}}", html.escape(api_prefix))
        .replace("{{DOCS}}", html.escape(docs_url))
    )

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)

    @router.get(CONSOLE_PATH)
    def console_bare() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)

    @router.get(CONSOLE_PATH + "/", response_class=HTMLResponse)
    def console_page() -> HTMLResponse:
        return HTMLResponse(page, headers=_HEADERS)

    @router.get(CONSOLE_PATH + "/{name}")
    def console_file(name: str) -> Response:
        media_type = _FILES.get(name)
        if media_type is None:
            return Response(status_code=404)
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_HEADERS)

    return router
