"""Debian's headless Chromium for the browser tests, driven by Playwright (never a
downloaded browser): where it is, how it is started, what to do when it is missing, and a
dashboard tab with its console, screenshots and log-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import missing_system_package

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
# Chromium's own console line for an HTTP error answer; the tests that provoke one expect it.
HTTP_ERROR_LINE = re.compile(r"^Failed to load resource: the server responded with a status of")
# A fresh profile comes with every launch (Playwright makes a new temporary user data dir);
# without the background-networking flags Chromium keeps trying Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        missing_system_package("Debian's chromium is not installed (/usr/bin/chromium)")


@contextmanager
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A page in its own browser context, with what its console and scripts reported."""

    page: Page
    console: list[tuple[str, str]] = field(default_factory=list)
    checked: int = 0

    def problems(self, allow_http_errors: bool = False) -> list[str]:
        """Console errors and uncaught exceptions since the last call."""
        new, self.checked = self.console[self.checked :], len(self.console)
        return [
            text
            for kind, text in new
            if kind in {"error", "pageerror"}
            and not (allow_http_errors and HTTP_ERROR_LINE.match(text))
        ]

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def go(self, dashboard: str, route: str) -> None:
        self.page.goto(f"{dashboard}/#/{route}")


def open_tab(browser: Browser, url: str, width: int = 1280) -> Tab:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Tab(page)
    page.on("console", lambda message: tab.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: tab.console.append(("pageerror", str(error))))
    page.goto(url)
    return tab


def log_in(tab: Tab, email: str, password: str) -> None:
    form = tab.page.get_by_role("form", name="Log in")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()


def nav_links(page: Page) -> list[str]:
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link").first).to_be_visible()
    return [text.strip() for text in nav.get_by_role("link").all_inner_texts()]
