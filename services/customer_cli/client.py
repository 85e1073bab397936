"""A small HTTP client for the customer API: base URL and API key from the environment
(GRIDLEASE_API_URL, GRIDLEASE_API_KEY) or the config file written by `gridlease signup`
(~/.config/gridlease/client.json, or GRIDLEASE_CLIENT_CONFIG). Every API error becomes an
`ApiError` carrying the status and the API's fixed `detail`; an API that cannot be reached at
all is an `ApiUnreachable` (status 0)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ApiClient", "ApiError", "ApiUnreachable", "ClientConfig", "ConfigError"]

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    env = os.environ.get("GRIDLEASE_CLIENT_CONFIG")
    return Path(env) if env else Path.home() / ".config" / "gridlease" / "client.json"


class ConfigError(Exception):
    """The client config file exists but cannot be read as the config."""


@dataclass
class ClientConfig:
    url: str = DEFAULT_URL
    api_key: str | None = None

    @classmethod
    def load(cls) -> ClientConfig:
        path = config_path()
        stored: dict[str, Any] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot read the client config {path}: fix or delete it, then run "
                    "gridlease signup again"
                ) from exc
            stored = loaded if isinstance(loaded, dict) else {}
        return cls(
            url=os.environ.get("GRIDLEASE_API_URL") or stored.get("url") or DEFAULT_URL,
            api_key=os.environ.get("GRIDLEASE_API_KEY") or stored.get("api_key"),
        )

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": self.url, "api_key": self.api_key}, indent=2))
        path.chmod(0o600)  # it holds the API key
        return path


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ApiUnreachable(ApiError):
    """No HTTP answer at all (refused, DNS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the API at {url}: {reason}")
        self.url = url
        self.reason = reason


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # 422: one line per field
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
        )
    if isinstance(detail, dict):
        return json.dumps(detail)
    return str(detail)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return type(exc).__name__


class ApiClient:
    def __init__(self, config: ClientConfig, timeout: float = 60.0) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            base_url=config.url.rstrip("/") + "/v1", headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ApiUnreachable(self.config.url, _reason(e)) from e
        if response.status_code >= 400:
            detail = _detail(response)
            retry_after = response.headers.get("Retry-After")
            if retry_after:  # 429 (rate limited) and 503 say when trying again makes sense
                detail += f" (retry after {retry_after} s)"
            raise ApiError(response.status_code, detail)
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)
