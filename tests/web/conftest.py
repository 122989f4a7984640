"""Browser tests: Debian's Chromium, headless, driven by Playwright (no browser download), against real servers.

`browser` is one Chromium for the module; `watched_page` opens a page that records every console error, uncaught
exception, failed request and dialog (an XSS probe that runs opens one), for the test to assert there were none.
Screenshots go to test-results/screenshots/ (not committed).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Flags for a sandbox without a network: no background fetches, no component updates, no QUIC probes.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
TIMEZONE = "Europe/Paris"  # the browser's zone, unlike this machine's (UTC): pages must show times in it


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        """Save the whole page as test-results/screenshots/NAME.png."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (scripts/system-deps.sh installs it)."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: scripts/system-deps.sh test installs Debian's chromium"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def watched_page(browser: Browser) -> Iterator[Callable[[str], Watched]]:
    """Open pages at a viewport ("desktop" or "phone") that record console errors, page errors, failed requests
    and dialogs; closed at teardown."""
    opened = []

    def open_page(viewport: str = "desktop") -> Watched:
        width, height = VIEWPORTS[viewport]
        context = browser.new_context(viewport={"width": width, "height": height}, timezone_id=TIMEZONE, locale="en-US")
        opened.append(context)
        page = context.new_page()
        watched = Watched(page)
        page.on("console", lambda m: m.type == "error" and watched.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: watched.errors.append(f"request failed: {r.url} {r.failure}"))
        page.on("dialog", lambda d: (watched.dialogs.append(d.message), d.dismiss()))
        return watched

    yield open_page
    for context in opened:
        context.close()
