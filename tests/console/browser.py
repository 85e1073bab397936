"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the console
and docs tests; and the API app served in a thread without its lifespan (pages and docs only:
no database, chain or seeds)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.utils.ports import free_port

__all__ = ["REPO", "artefacts_dir", "browser_errors", "chromium", "serve_app", "wait_for"]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
T = TypeVar("T")


def artefacts_dir(name: str) -> Path:
    """Where screenshots go: $GRIDLEASE_TEST_ARTEFACTS/NAME, or .gridlease/test-artefacts/NAME in
    the clone (ignored by git; kept after the run, replaced by the next one)."""
    base = os.environ.get("GRIDLEASE_TEST_ARTEFACTS") or str(REPO / ".gridlease" / "test-artefacts")
    path = Path(base) / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def chromium(width: int = 1280, height: int = 1100) -> Iterator[WebDriver]:
    """A headless Chromium. Both binaries come from Debian (scripts/test.sh installs them):
    naming them keeps Selenium Manager from looking for a browser to download."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    assert not missing, (
        f"{missing} not installed: bash scripts/system-deps.sh chromium chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 30.0) -> T:
    """Polls `check` until it returns something truthy; the timeout only bounds a broken test."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - an element not there yet, a stale one
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """`app` over HTTP on a free loopback port, lifespan off; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the test server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def browser_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """The page's console messages of level SEVERE (script errors, refused loads)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
