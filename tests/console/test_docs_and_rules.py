"""The API's browser side without a stack: /docs and /redoc load every file from the API itself
and render in a real browser (headless Chromium); the console's pages are served with a policy
that forbids loading anything from elsewhere; and the console's money and lease-step rules
(static/money.js) give the CLI's answers (services/customer_cli/cli.py) on the same inputs."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from services.customer_api.console import WebAssets
from services.customer_api.console.docs import web_assets_dir
from services.customer_api.core.config import Settings
from services.customer_api.main import create_app
from services.customer_cli.cli import (
    ChainInfo,
    hours_to_blocks,
    lease_steps,
    max_block_price,
    parse_tokens,
    per_gpu_hour,
    shown,
    tokens,
)
from tests.console.browser import (
    artefacts_dir,
    browser_errors,
    chromium,
    serve_app,
    wait_for,
)
from tests.utils.api_process import TEST_SECRET

TITLE = "Gridlease customer API"


def _app(tmp_path: Path) -> FastAPI:
    settings = Settings(
        dev_mode=True,
        server_secret=TEST_SECRET,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def installed() -> WebAssets:
    assets = WebAssets()
    missing = [name for name in assets.packages if not assets.installed(name)]
    assert not missing, f"{missing} not in {web_assets_dir()}: run bash scripts/web-assets.sh"
    return assets


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, installed: WebAssets) -> TestClient:
    # No `with`: the lifespan (database, chain, seeds) does not run; pages and docs need none.
    return TestClient(_app(tmp_path_factory.mktemp("docs")))


_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize(
    ("page", "package"), [("/docs", "swagger-ui-dist"), ("/redoc", "redoc")]
)
def test_docs_pages_load_every_file_from_the_api_itself(
    client: TestClient, installed: WebAssets, page: str, package: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    # What a bundle would fetch by itself from elsewhere, the browser is told to refuse.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    urls = _URL.findall(html)
    assert any(package in url for url in urls), urls
    for url in urls:
        assert url.startswith("/docs/assets/"), url
        served = client.get(url)
        assert served.status_code == 200, url
        folder, file = url.removeprefix("/docs/assets/").split("/", 1)
        assert served.content == (installed.root / folder / file).read_bytes()
        assert "immutable" in served.headers["cache-control"]


def test_only_the_pinned_files_are_served(client: TestClient, installed: WebAssets) -> None:
    folder = installed.packages["swagger-ui-dist"].folder
    assert client.get(f"/docs/assets/{folder}/swagger-ui.css").status_code == 200
    assert client.get(f"/docs/assets/{folder}/.complete").status_code == 404
    assert client.get(f"/docs/assets/{folder}/index.html").status_code == 404  # in the tarball
    assert client.get(f"/docs/assets/{folder}/%2e%2e/{folder}/LICENSE").status_code == 404
    assert client.get("/docs/assets/swagger-ui-dist-1.0.0/swagger-ui.css").status_code == 404


def test_without_the_assets_the_api_starts_and_docs_say_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLEASE_CACHE", str(tmp_path / "empty-cache"))
    assert not WebAssets().installed("swagger-ui-dist")
    client = TestClient(_app(tmp_path))
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 503
        assert "bash scripts/web-assets.sh" in response.text and "/v1/openapi.json" in response.text
    assert client.get("/v1/openapi.json").status_code == 200
    assert client.get("/console/").status_code == 200


def test_console_pages_forbid_loading_anything_from_elsewhere(client: TestClient) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert '<meta name="gridlease-api" content="/v1">' in page.text
    assert "{{" not in page.text and "http://" not in page.text and "https://" not in page.text
    for name in ("console.js", "money.js", "console.css"):
        served = client.get(f"/console/{name}")
        assert served.status_code == 200 and "content-security-policy" in served.headers
        assert "http://" not in served.text and "https://" not in served.text
    assert client.get("/console/index.html").status_code == 404
    assert client.get("/console/../main.py").status_code == 404
    # None of it is part of the API's own document.
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/console")) or p == "/"]


# -- in a real browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, installed: WebAssets) -> Iterator[str]:
    with serve_app(_app(tmp_path_factory.mktemp("docs-server"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots() -> Path:
    return artefacts_dir("docs")


def _resources(driver: WebDriver) -> list[str]:
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return names


def test_swagger_ui_renders_the_api_offline(browser: WebDriver, server: str, shots: Path) -> None:
    browser.get(f"{server}/docs")
    title = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text,
        "Swagger UI's title",
    )
    assert TITLE in title
    # Swagger UI 5 renders OpenAPI 3.1 (FastAPI's): every operation of the API is listed.
    spec_paths = httpx.get(f"{server}/v1/openapi.json").json()["paths"]
    operations = sum(len(ops) for ops in spec_paths.values())
    rendered = wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations
        and browser.find_elements(By.CSS_SELECTOR, ".opblock"),
        "every operation",
    )
    assert len(rendered) == operations
    assert not browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .errors-wrapper")
    assert browser.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.startswith("/")
    loaded = _resources(browser)
    assert loaded and all(urlsplit(u).netloc == urlsplit(server).netloc for u in loaded), loaded
    assert browser_errors(browser) == []
    browser.save_screenshot(str(shots / "swagger-ui.png"))


def test_redoc_renders_the_api_offline(browser: WebDriver, server: str, shots: Path) -> None:
    browser.get(f"{server}/redoc")
    heading = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, ".api-content h1").text, "ReDoc's title"
    )
    assert TITLE in heading
    assert browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    # ReDoc's sidebar badge asks for its vendor's logo from a CDN: the page's policy makes the
    # browser refuse it (ReDoc then drops the image), so nothing leaves the machine.
    refused = " ".join(
        e["message"] for e in browser_errors(browser) if "Content Security Policy" in e["message"]
    )
    elsewhere = [u for u in _resources(browser) if urlsplit(u).netloc != urlsplit(server).netloc]
    assert all(f"'{u}'" in refused and "blocked" in refused for u in elsewhere), elsewhere
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src^='http']")
    browser.save_screenshot(str(shots / "redoc.png"))


_UNLABELLED = """
const controls = [...document.querySelectorAll("input, select, textarea")];
const buttons = [...document.querySelectorAll("button")];
return {
  unlabelled: controls.filter((c) => c.labels.length === 0).map((c) => c.id || c.outerHTML),
  nameless: buttons.filter((b) => !(b.textContent.trim() || b.getAttribute("aria-label")))
                   .map((b) => b.outerHTML),
  h1: document.querySelectorAll("h1").length,
  lang: document.documentElement.lang,
  sections: [...document.querySelectorAll("section")]
    .filter((s) => !document.getElementById(s.getAttribute("aria-labelledby")))
    .map((s) => s.id),
};
"""


def test_console_is_usable_with_a_keyboard_and_a_screen_reader(
    browser: WebDriver, server: str, shots: Path
) -> None:
    browser.get(f"{server}/console/")
    wait_for(lambda: browser.find_element(By.ID, "signup-name").is_displayed(), "the console")
    found = browser.execute_script(_UNLABELLED)
    assert found == {"unlabelled": [], "nameless": [], "h1": 1, "lang": "en", "sections": []}
    # From the top of the page, Tab reaches the sign-up form and Enter sends it: with no API
    # behind this server the answer is an error, shown in the alert region.
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(10):
        body.send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("id") == "signup-name":
            break
    assert browser.switch_to.active_element.get_attribute("id") == "signup-name"
    browser.switch_to.active_element.send_keys("keyboard user", Keys.ENTER)
    alert = wait_for(lambda: browser.find_element(By.ID, "error").text, "the error message")
    assert alert.startswith("Error: ") and browser.find_element(By.ID, "error").get_attribute(
        "role") == "alert"  # fmt: skip
    browser.save_screenshot(str(shots / "console-signed-out.png"))


# -- the console's rules are the CLI's ------------------------------------------------------------
def _python_decimal(text: str) -> Decimal | None:
    """What the CLI's argument parsing accepts as a positive number (cli._decimal)."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0:
        return None
    return value


def _cases(seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    # (decimals, block ms); the last two make exact ties, which are rounded to even.
    infos = [(12, 1000), (12, 6000), (12, 7000), (10, 1500), (18, 333), (0, 2000), (12, 1),
             (0, 2_400_000), (12, 18)]  # fmt: skip
    prices = [0, 1, 999, 1_000_000, 277_777_777, 10**12, 2**128 - 1, 2**64 + 12345]
    prices += [rng.randrange(0, 2 ** rng.choice([8, 20, 40, 64, 128])) for _ in range(60)]
    numbers = ["1", "0.5", "0.0001", "1.25", "3", "24", "720", "0.1", "1_000", "2e1", ".5", "5.",
               "0", "-1", "abc", "", "1e-13", "0.0000000000001", "0.0036", "0.000514285715",
               "  2.5 ", "+1.5", "1.2.3", "1e400", "12345678901234567890.123456789"]  # fmt: skip
    numbers += [f"{rng.randrange(1, 10**6)}.{rng.randrange(0, 10**6):06d}" for _ in range(30)]
    cases: list[dict[str, Any]] = []
    for decimals, block_ms in infos:
        for price in prices:
            cases.append({"kind": "price", "decimals": decimals, "block_ms": block_ms,
                          "value": str(price)})  # fmt: skip
        for text in numbers:
            cases.append({"kind": "number", "decimals": decimals, "block_ms": block_ms,
                          "value": text})  # fmt: skip
        for blocks in (1, 59, 3600, 360, 1000, 3000, 2_592_000, rng.randrange(1, 10**7)):
            cases.append({"kind": "blocks", "decimals": decimals, "block_ms": block_ms,
                          "value": str(blocks)})  # fmt: skip
    return cases


def _python_answer(case: dict[str, Any]) -> list[str]:
    info = ChainInfo(symbol="GLT", decimals=case["decimals"], block_time_ms=case["block_ms"])
    value = case["value"]
    if case["kind"] == "price":
        return [per_gpu_hour(value, info), tokens(value, info.decimals)]
    if case["kind"] == "blocks":
        return [shown(Fraction(int(value)) / info.blocks_per_hour, 2)]
    try:
        units = str(parse_tokens(value, info.decimals))
    except ValueError:
        units = "error"
    number = _python_decimal(value)
    if number is None:
        return [units, "error", "error"]
    return [units, str(max_block_price(number, info)), str(hours_to_blocks(number, info))]


_JS_ANSWERS = """
const M = window.GridleaseMoney;
const attempt = (f) => { try { return f().toString(); } catch (e) { return "error"; } };
return arguments[0].map((c) => {
  const info = M.chainInfo({token_symbol: "GLT", token_decimals: c.decimals,
                            block_time_ms: c.block_ms});
  if (c.kind === "price") return [M.perGpuHour(c.value, info), M.tokens(c.value, info.decimals)];
  if (c.kind === "blocks") return [M.hours(c.value, info)];
  return [attempt(() => M.parseTokens(c.value, info.decimals)),
          attempt(() => M.maxBlockPrice(c.value, info)),
          attempt(() => M.hoursToBlocks(c.value, info))];
});
"""


def test_console_prices_amounts_and_durations_are_the_clis(
    browser: WebDriver, server: str
) -> None:
    browser.get(f"{server}/console/")
    wait_for(lambda: browser.execute_script("return !!window.GridleaseMoney"), "money.js")
    cases = _cases()
    got = browser.execute_script(_JS_ANSWERS, cases)
    wrong = [
        (case, answer, expected)
        for case, answer, expected in zip(cases, got, map(_python_answer, cases), strict=True)
        if answer != expected
    ]
    assert wrong == [], wrong[:5]
    # The figures a person sees (tests/customer_cli's table), spelled the same.
    assert got[cases.index({"kind": "price", "decimals": 12, "block_ms": 1000,
                            "value": "1000000"})][0] == "0.0036"  # fmt: skip


def _lease(state: str, delivery: str, attempts: int = 1, error: str | None = None,
           conn: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"lease_id": 1, "state": state, "connection": conn,
            "delivery": {"state": delivery, "attempts": attempts, "error": error}}  # fmt: skip


def test_console_lease_steps_are_the_clis(browser: WebDriver, server: str) -> None:
    browser.get(f"{server}/console/")
    wait_for(lambda: browser.execute_script("return !!window.GridleaseMoney"), "money.js")
    leases = [
        _lease("pending", "pending", attempts=0),
        _lease("pending", "pending", attempts=2, error="node unreachable"),
        _lease("pending", "delivered"),
        _lease("starting", "delivered", conn={"status": "pulling", "message": "pulling image"}),
        _lease("starting", "pending", attempts=3),
        _lease("running", "delivered", conn={"status": "starting", "message": ""}),
        _lease("running", "delivered", conn={"status": "running", "host": "h", "ssh_port": 22}),
        _lease("ended", "abandoned", attempts=0),
        _lease("ended", "delivered"),
    ]
    got = browser.execute_script(
        "return arguments[0].map((l) => window.GridleaseMoney.leaseSteps(l))", leases
    )
    assert got == [list(lease_steps(lease)) for lease in leases]
