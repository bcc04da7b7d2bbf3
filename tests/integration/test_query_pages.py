"""The read side's web pages (issue 17) in a real headless browser: Debian's Chromium driven
through its chromedriver, against the API served by uvicorn over the DynamoDB Local read model.

Set `CAF_SCREENSHOT_DIR` to keep the screenshots (`make screenshots` writes the README's)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from devstack.fleet import free_port
from services.caf_query.app import ApiServer
from services.caf_query.pages import COOKIE
from tests.integration.conftest import MINE, THEIRS, TIN, ReadSide, token

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

# Every element with text of its own: its colour against the first opaque background behind it
# (WCAG 2 relative luminance), the lowest ratio found and where.
LOWEST_CONTRAST = """
const channel = (c) => {
  c /= 255;
  return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
};
const rgba = (text) => text.match(/[\\d.]+/g).map(Number);
const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (element) => {
  for (let e = element; e; e = e.parentElement) {
    const color = rgba(getComputedStyle(e).backgroundColor);
    if (color.length < 4 || color[3] > 0) return color;
  }
  return [255, 255, 255];
};
let lowest = { ratio: 21, where: "" };
for (const element of document.body.querySelectorAll("*")) {
  const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || element.offsetParent === null) continue;
  const fg = luminance(rgba(getComputedStyle(element).color));
  const bg = luminance(background(element));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  if (ratio < lowest.ratio) lowest = { ratio, where: element.outerHTML.slice(0, 120) };
}
return lowest;
"""

# Controls without a label, tables without a caption, header cells without a scope.
UNLABELLED = """
const problems = [];
for (const c of document.querySelectorAll("input:not([type=hidden]), select, textarea"))
  if (!c.labels || c.labels.length === 0) problems.push("unlabelled " + c.outerHTML.slice(0, 80));
for (const t of document.querySelectorAll("table"))
  if (!t.caption) problems.push("table without caption " + t.id);
for (const th of document.querySelectorAll("th"))
  if (!th.getAttribute("scope")) problems.push("th without scope " + th.textContent);
if (document.documentElement.lang !== "en") problems.push("no lang");
return problems;
"""


@dataclass
class Browser:
    driver: WebDriver
    base: str
    shots: Path

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def press(self, control: WebElement, key: str | None = None) -> None:
        """Click `control` (or press `key` on it) and wait for the page it loads."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        if key is None:
            control.click()
        else:
            control.send_keys(key)
        WebDriverWait(self.driver, 10).until(expected_conditions.staleness_of(page))

    def text(self, selector: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, selector).text)

    def rows(self, table: str) -> dict[str, str]:
        """The grant rows of a table: grant id -> the row's text."""
        return {
            str(row.get_attribute("data-grant")): str(row.text)
            for row in self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-grant]")
        }

    def sign_in_by_keyboard(self, access_token: str) -> None:
        """From the sign-in page with the keyboard only: skip link, token field, button."""
        self.open("/ui")
        body = self.driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        assert self.driver.switch_to.active_element.text == "Skip to main content"
        self.driver.switch_to.active_element.send_keys(Keys.TAB)
        field = self.driver.switch_to.active_element
        assert field.get_attribute("id") == "token"
        field.send_keys(access_token)
        field.send_keys(Keys.TAB)
        button = self.driver.switch_to.active_element
        assert button.text == "Sign in"
        self.press(button, Keys.ENTER)

    def sign_out(self) -> None:
        self.press(self.driver.find_element(By.CSS_SELECTOR, "header .account button"))

    def audit(self) -> None:
        """The page's accessibility checks: labels, captions, scopes, lang, contrast ≥ 4.5."""
        assert self.driver.execute_script(UNLABELLED) == []
        lowest: dict[str, Any] = self.driver.execute_script(LOWEST_CONTRAST)
        assert lowest["ratio"] >= 4.5, lowest

    def screenshot(self, name: str) -> None:
        self.driver.set_window_size(1280, int(self.driver.execute_script(_HEIGHT)))
        assert self.driver.save_screenshot(str(self.shots / f"{name}.png"))


_HEIGHT = "return Math.min(1600, document.documentElement.scrollHeight + 120);"


def _chromium(profile: Path) -> WebDriver:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    assert not missing, f"{missing}: Debian's chromium and chromium-driver (`make tools`)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    wanted = os.environ.get("CAF_SCREENSHOT_DIR")
    return Path(wanted) if wanted else tmp_path


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    driver = _chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.fixture
async def served(read_side: ReadSide) -> AsyncIterator[str]:
    port = free_port()
    async with ApiServer(read_side.api, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


async def test_a_practitioner_signs_in_by_keyboard_and_sees_pending_requests_and_only_their_grants(
    served: str, chromium: WebDriver, shots: Path
) -> None:
    browser = Browser(chromium, served, shots)

    def practitioner() -> None:
        browser.sign_in_by_keyboard(token("practitioner", caf_number=MINE))
        assert browser.driver.current_url == f"{served}/ui/practitioner"
        assert browser.text("h1") == "My authorizations"
        assert browser.driver.execute_script("return document.cookie") == ""  # HttpOnly
        assert list(browser.rows("pending")) == ["tpa-1"]
        assert "Awaiting the taxpayer" in browser.rows("pending")["tpa-1"]
        grants = browser.rows("grants")
        assert set(grants) == {"m-1:0", "tpa-1"}  # not m-2:0, under another CAF number
        assert "Partly revoked" in grants["m-1:0"]
        assert "Income (1040): 2024, 2025" in grants["m-1:0"]
        assert "TIN ending 6789" in grants["m-1:0"]
        assert TIN not in browser.driver.page_source
        browser.audit()
        browser.screenshot("ui-practitioner")
        Select(browser.driver.find_element(By.ID, "status")).select_by_visible_text("Active")
        browser.press(browser.driver.find_element(By.CSS_SELECTOR, ".filter button"))
        assert browser.rows("grants") == {}
        assert browser.text("#grants tbody") == "No grants."
        Select(browser.driver.find_element(By.ID, "status")).select_by_value("partly_revoked")
        browser.press(browser.driver.find_element(By.CSS_SELECTOR, ".filter button"))
        assert list(browser.rows("grants")) == ["m-1:0"]
        browser.sign_out()
        assert browser.driver.current_url == f"{served}/ui"
        browser.open("/ui/practitioner")
        assert browser.driver.current_url == f"{served}/ui"  # signed out: back to sign-in

    await asyncio.to_thread(practitioner)


async def test_a_taxpayer_sees_their_history_and_what_they_can_still_approve(
    served: str, chromium: WebDriver, shots: Path
) -> None:
    browser = Browser(chromium, served, shots)

    def taxpayer() -> None:
        browser.sign_in_by_keyboard(token("taxpayer", tin="123-45-6789"))
        assert browser.driver.current_url == f"{served}/ui/taxpayer"
        assert browser.text("h1") == "My authorization history"
        assert list(browser.rows("awaiting")) == ["tpa-1"]
        history = browser.rows("history")
        assert set(history) == {"m-1:0", "tpa-1"}  # not the other taxpayer's m-2:0
        assert "Avery Smith" in history["m-1:0"]
        assert f"CAF {MINE}" in history["m-1:0"]
        assert "Revoked" in history["m-1:0"]  # the story: recorded, then revoked (2023)
        assert TIN not in browser.driver.page_source
        browser.audit()
        browser.screenshot("ui-taxpayer")

    await asyncio.to_thread(taxpayer)


async def test_a_bad_token_or_another_role_gets_nothing_from_the_pages(
    served: str, chromium: WebDriver, shots: Path
) -> None:
    browser = Browser(chromium, served, shots)

    def refused() -> None:
        browser.sign_in_by_keyboard("not-a-token")
        assert browser.text("[role=alert]") == (
            "That token was not accepted. Get a new one and try again."
        )
        browser.audit()
        browser.sign_in_by_keyboard(token("employee"))
        assert "This page is for taxpayers and practitioners" in browser.text("main")
        browser.sign_in_by_keyboard(token("practitioner", caf_number=THEIRS))
        browser.open("/ui/taxpayer")
        assert "This page is for taxpayers." in browser.text("main")
        assert "m-2:0" not in browser.driver.page_source

    await asyncio.to_thread(refused)


async def test_the_pages_are_not_cached_framed_or_given_a_readable_cookie(
    read_side: ReadSide,
) -> None:
    signed_in = await read_side.client.post(
        "/ui/session",
        content=f"token={token('practitioner', caf_number=MINE)}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/ui/practitioner"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Path=/ui", "SameSite=strict", "Secure"):
        assert attribute in cookie
    page = await read_side.client.get("/ui/practitioner", headers={"cookie": cookie.split(";")[0]})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_a_sign_in_posted_from_another_site_is_refused(read_side: ReadSide) -> None:
    """Login CSRF: a form on another site cannot sign the browser in as someone else."""

    async def sign_in(**headers: str) -> httpx.Response:
        return await read_side.client.post(
            "/ui/session",
            content=f"token={token('practitioner', caf_number=MINE)}",
            headers={"content-type": "application/x-www-form-urlencoded", **headers},
        )

    for forged in (
        await sign_in(origin="https://evil.example"),
        await sign_in(**{"sec-fetch-site": "cross-site", "origin": "https://evil.example"}),
    ):
        assert forged.status_code == 403
        assert "set-cookie" not in forged.headers
    assert (await sign_in(origin="http://api")).status_code == 303
    assert (await sign_in(**{"sec-fetch-site": "same-origin"})).status_code == 303
