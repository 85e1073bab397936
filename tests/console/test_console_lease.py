"""A whole lease through the web console in a real browser (headless Chromium from Debian, driven
by Selenium) on the dev stack: dev chain, two seeds, a GPU node with simulated H100s on Podman
and the customer API, as `gridlease dev up` starts them.

Sign up, add test tokens, search offers (and a search that matches nothing, with the reasons),
create a lease, watch its steps until the SSH command shows, log in with that command, extend,
terminate, and read the spending per lease. Screenshots of every step go to
.gridlease/test-artefacts/console/ (or $GRIDLEASE_TEST_ARTEFACTS/console); the time from
"Create lease" to the SSH command on screen is written to ssh-ready-seconds.txt there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from services.customer_cli.cli import ChainInfo, hours_to_blocks, money, per_gpu_hour
from services.devstack.demo import demo_ssh_key
from services.devstack.stack import Ports, Stack
from tests.console.browser import artefacts_dir, browser_errors, chromium, wait_for
from tests.utils.ports import free_ports
from tests.utils.ssh import ssh_when_ready


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    p = free_ports(8)
    ports = Ports(chain=p[0], seeds=(p[1], p[2]), seed_metrics=(p[3], p[4]), node=p[5],
                  node_metrics=p[6], api=p[7])  # fmt: skip
    s = Stack(root=tmp_path_factory.mktemp("console-stack"), ports=ports, say=lambda _m: None)
    s.up()
    yield s
    s.down()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium(height=1400) as driver:
        yield driver


class Page:
    """The console as a person uses it: fields by their id, buttons, what is shown."""

    def __init__(self, driver: WebDriver, shots: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.count = 0

    def el(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.el(element_id).text

    def fill(self, element_id: str, value: str) -> None:
        field = self.el(element_id)
        field.clear()
        field.send_keys(value)

    def submit(self, form_id: str) -> None:
        self.el(form_id).find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def visible(self, element_id: str) -> bool:
        return self.el(element_id).is_displayed()

    def rows(self, table_id: str) -> list[list[str]]:
        body = self.el(table_id).find_element(By.TAG_NAME, "tbody")
        return [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in body.find_elements(By.TAG_NAME, "tr")
        ]

    def error(self) -> str:
        return self.text("error") if self.visible("error") else ""

    def wait(self, check: object, what: str, timeout_s: float = 60.0) -> object:
        def probe() -> object:
            shown = self.error()
            assert not shown, f"the console shows an error while waiting for {what}: {shown}"
            return check() if callable(check) else None

        return wait_for(probe, what, timeout_s)

    def shot(self, name: str, section_id: str) -> None:
        self.count += 1
        self.driver.execute_script("arguments[0].scrollIntoView()", self.el(section_id))
        self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}.png"))


def test_a_whole_lease_in_the_browser(stack: Stack, browser: WebDriver) -> None:
    shots = artefacts_dir("console")
    page = Page(browser, shots)
    info = ChainInfo.from_api(httpx.get(f"{stack.api_url}/v1/chain/info", timeout=30).json())
    key_path, public_key = demo_ssh_key(stack.root)

    browser.get(f"{stack.api_url}/")  # the API's root leads to the console
    page.wait(lambda: browser.current_url.endswith("/console/") and page.visible("auth"),
              "the console")  # fmt: skip
    page.wait(lambda: page.text("block-time") == f"{info.block_time_ms} ms per block",
              "the chain's block time")  # fmt: skip
    assert not page.visible("account") and page.text("who") == "Not signed in."

    # -- sign up: the API key is shown once, and the tab is signed in with it
    page.fill("signup-name", "browser customer")
    page.submit("signup-form")
    api_key = str(page.wait(lambda: page.el("new-key-value").get_attribute("value"), "API key"))
    assert api_key.startswith("glk_")
    assert "browser customer" in page.text("who") and page.visible("account")
    page.shot("signed-up", "new-key")
    page.el("new-key-done").click()
    assert not page.visible("new-key")

    # -- test tokens from the dev faucet, shown in tokens with the token's name
    page.fill("faucet-amount", "1000")
    page.submit("faucet-form")
    page.wait(lambda: page.text("account-free") == money(1000 * 10**info.decimals, info),
              "the balance after the faucet")  # fmt: skip
    assert page.text("notice").startswith(f"Added {money(1000 * 10**info.decimals, info)}")

    # -- search: offers with prices per GPU-hour (the CLI's rule), then one that matches nothing
    def offers_listed() -> list[list[str]]:
        page.submit("offers-form")
        page.wait(lambda: page.text("offers-summary"), "an answer to the search")
        return page.rows("offers-table") if page.visible("offers-table") else []

    page.fill("f-min-gpus", "2")
    offers = page.wait(offers_listed, "the GPU node's offer", timeout_s=120)
    assert isinstance(offers, list)
    machine, gpu, free, _memory, per_hour, per_block, region, fails, _action = offers[0]
    offer = httpx.get(f"{stack.api_url}/v1/offers", params={"min_gpus": 2}, timeout=30).json()
    first = offer["data"][0]
    assert gpu == first["gpu_model"] and free == f"{first['free_gpus']}/{first['gpu_count']}"
    assert per_hour == per_gpu_hour(first["price_per_gpu_block"], info)
    assert region == "local" and fails == ""
    assert machine == first["machine_id"][:12] + "…"
    page.shot("offers", "offers")

    page.fill("f-gpu-model", "A100")
    page.submit("offers-form")
    page.wait(lambda: page.text("offers-summary") == "No offer matches.", "no match")
    page.wait(lambda: page.visible("no-match"), "the reasons")
    reasons = page.text("no-match-reasons")
    assert "gpu_model excluded" in reasons, reasons
    nearest = page.rows("offers-table")
    assert nearest and "gpu_model" in nearest[0][7]  # the filter the nearest offer fails
    page.shot("no-match", "offers")
    page.fill("f-gpu-model", "")
    page.wait(lambda: offers_listed(), "the offers again")

    # -- lease 2 GPUs for 0.1 h with a published port, from the offer's own button
    page.el("offers-table").find_element(By.CSS_SELECTOR, "tbody button").click()
    assert page.el("l-machine").get_attribute("value") == first["machine_id"]
    page.fill("l-gpus", "2")
    page.fill("l-hours", "0.1")
    page.fill("l-ssh-key", public_key)
    page.fill("l-ports", "8080")
    blocks = hours_to_blocks(Decimal("0.1"), info)
    escrow = money(int(first["price_per_gpu_block"]) * 2 * blocks, info)
    assert f"{blocks} blocks" in page.text("lease-cost") and escrow in page.text("lease-cost")
    page.shot("lease-form", "create")
    page.submit("lease-form")

    # -- watch it start: the steps the API reports, then the SSH command
    page.wait(lambda: page.visible("watch"), "the lease view")
    lease_id = page.text("w-id")
    assert lease_id.isdigit()
    command = str(page.wait(lambda: page.el("w-ssh-command").get_attribute("value"),
                            "the SSH command", timeout_s=300))  # fmt: skip
    steps = page.el("w-steps").find_elements(By.TAG_NAME, "li")
    assert [s.get_attribute("data-status") for s in steps] == ["done"] * 5
    assert [s.text.removesuffix(" (done)") for s in steps] == [
        "on chain", "delivered", "starting", "running", "SSH ready"]  # fmt: skip
    seconds = page.el("w-ssh-ready").get_attribute("data-seconds")
    assert seconds is not None and float(seconds) > 0
    (shots / "ssh-ready-seconds.txt").write_text(f"{seconds}\n")
    match = re.fullmatch(r"ssh -p (\d+) root@(\S+)", command)
    assert match, command
    assert page.text("w-state") == "running" and page.text("w-gpus") == "2"
    assert page.text("w-duration").startswith(f"{blocks} blocks")
    assert re.fullmatch(r"8080 → \S+:\d+", page.text("w-ports")), page.text("w-ports")
    page.shot("running", "watch")
    page.wait(lambda: [lease_id, "running"] in [r[:2] for r in page.rows("leases-table")],
              "the lease list to show it running")  # fmt: skip

    # The command the console shows logs in, with the key the lease was made with.
    login = ssh_when_ready(key_path, f"{match[2]}:{match[1]}", "echo console-login-ok")
    assert login.returncode == 0 and "console-login-ok" in login.stdout, login.stderr

    # -- extend by 0.1 h: the lease's blocks grow by as many
    page.fill("w-extend-hours", "0.1")
    page.submit("extend-form")
    page.wait(lambda: page.text("w-duration").startswith(f"{2 * blocks} blocks"), "the extension")
    assert f"extended by {blocks} blocks" in page.text("notice")
    page.shot("extended", "watch")

    # -- terminate (confirmed in the browser's dialog): ended, the rest refunded
    page.el("w-terminate").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()
    page.wait(lambda: page.text("w-state").startswith("ended"), "the lease's end", 120)
    assert not page.visible("w-terminate") and not page.visible("extend-form")
    page.wait(lambda: page.text("w-refunded") != money(0, info), "the refund")

    # -- spending per lease, and the lease list
    def spending_row() -> list[str] | None:
        page.el("account-refresh").click()
        rows = [r for r in page.rows("spending") if r[0] == lease_id]
        return rows[0] if rows and rows[0][1] == "ended" and rows[0][3] != money(0, info) else None

    row = page.wait(spending_row, "the lease's spending", 60)
    assert isinstance(row, list)
    _id, _state, escrow_shown, spent, refunded, _compensation = row
    assert escrow_shown.endswith(info.symbol) and refunded != money(0, info)
    assert page.text("account-spent") != money(0, info)
    leases = page.rows("leases-table")
    assert any(r[0] == lease_id and r[1].startswith("ended") for r in leases), leases
    page.shot("spending", "account")
    page.shot("leases", "leases")

    # -- the key lives in this tab: a reload stays signed in, signing out forgets it
    browser.refresh()
    page.wait(lambda: "browser customer" in page.text("who"), "signed in after a reload")
    page.el("sign-out").click()
    assert page.visible("auth") and not page.visible("account")
    assert browser.execute_script("return sessionStorage.length") == 0
    page.fill("signin-key", api_key)
    page.submit("signin-form")
    page.wait(lambda: "browser customer" in page.text("who"), "signed in with the key")
    assert spent  # what the lease cost, shown above
    assert browser_errors(browser) == []
