"""Swagger UI at /docs and ReDoc at /redoc with every file served by the API itself (no CDN: the
docs work offline and behind a firewall).

The files come from the npm registry, pinned in web-assets.lock, and are put into the cache by
scripts/web-assets.sh (./gridlease test runs it). Without them the API still starts: /docs and
/redoc then answer 503 with a page that says how to install them, and the OpenAPI document
itself stays at /v1/openapi.json."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from services.common import get_logger

__all__ = ["ASSETS_PATH", "LOCK_FILE", "WebAssets", "docs_router", "web_assets_dir"]

LOCK_FILE = Path(__file__).with_name("web-assets.lock")
ASSETS_PATH = "/docs/assets"  # under /docs, so a proxy routing /docs routes them too
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# Nothing on the docs pages comes from elsewhere, even what a bundle would fetch by itself (ReDoc's
# badge links an image on its vendor's CDN): the browser is told so. Inline script and styles
# are the pages' own (FastAPI's templates; Swagger UI's and ReDoc's styling); ReDoc's search runs
# in a worker it makes from a blob.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
log = get_logger(__name__)


def web_assets_dir() -> Path:
    """Where scripts/web-assets.sh puts them: $GRIDLEASE_CACHE/web-assets."""
    cache = os.environ.get("GRIDLEASE_CACHE") or str(Path.home() / ".cache" / "gridlease")
    return Path(cache) / "web-assets"


@dataclass(frozen=True)
class Package:
    """One line of web-assets.lock: an npm package and the files of it the API serves."""

    name: str
    version: str
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


def _read_lock(path: Path = LOCK_FILE) -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        name, version, _integrity, *files = words
        packages[name] = Package(name, version, tuple(files))
    return packages


class WebAssets:
    """The pinned packages and the folder they were installed into."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else web_assets_dir()
        self.packages = _read_lock()

    def installed(self, name: str) -> bool:
        return (self.root / self.packages[name].folder / ".complete").is_file()

    def url(self, name: str, file: str) -> str:
        package = self.packages[name]
        assert file in package.files, file
        return f"{ASSETS_PATH}/{package.folder}/{file}"

    def file(self, folder: str, file: str) -> Path | None:
        """The installed file for a request, only if the lock names it (nothing else of the
        cache is reachable: no traversal, no listing)."""
        for package in self.packages.values():
            if package.folder == folder and file in package.files:
                path = self.root / folder / file
                return path if path.is_file() else None
        return None


def _missing_page(what: str, openapi_url: str) -> HTMLResponse:
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(what)} is not installed</title>
</head><body><main>
<h1>{html.escape(what)} is not installed on this server</h1>
<p>The API serves the files of its web docs itself (no CDN), and they are not in its cache yet.
On the server, run <code>bash scripts/web-assets.sh</code> (it fetches them once from the
npm registry into <code>~/.cache/gridlease/web-assets</code>; <code>./gridlease test</code>
runs it too), then reload this page.</p>
<p>The OpenAPI document is available meanwhile: <a href="{html.escape(openapi_url)}">
{html.escape(openapi_url)}</a>.</p>
</main></body></html>"""
    return HTMLResponse(body, status_code=503)


def docs_router(title: str, openapi_url: str, assets: WebAssets | None = None) -> APIRouter:
    assets = assets or WebAssets()
    router = APIRouter(include_in_schema=False)
    for name in assets.packages:
        if not assets.installed(name):
            fix = "bash scripts/web-assets.sh"
            log.warning("web_assets.missing", extra={"package": name, "fix": fix})

    @router.get("/docs", response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        if not assets.installed("swagger-ui-dist"):
            return _missing_page("Swagger UI", openapi_url)
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=assets.url("swagger-ui-dist", "swagger-ui-bundle.js"),
            swagger_css_url=assets.url("swagger-ui-dist", "swagger-ui.css"),
            swagger_favicon_url=assets.url("swagger-ui-dist", "favicon-32x32.png"),
            # No badge that asks an outside validator about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        if not assets.installed("redoc"):
            return _missing_page("ReDoc", openapi_url)
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=assets.url("redoc", "bundles/redoc.standalone.js"),
            redoc_favicon_url=assets.url("swagger-ui-dist", "favicon-32x32.png"),
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page

    @router.get(ASSETS_PATH + "/{folder}/{file:path}")
    def asset(folder: str, file: str) -> Response:
        path = assets.file(folder, file)
        if path is None:
            return Response(status_code=404)
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES.get(path.suffix, "text/plain; charset=utf-8"),
            # The folder names the version: a file at one URL never changes.
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    return router
