"""A headless Debian Chromium driven by Playwright (never `playwright install`: the system browser is used)."""

from __future__ import annotations

from typing import Iterator

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"  # Debian's package
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    """One browser per module, stopped at its end: a sync Playwright left running keeps an event loop in the
    main thread, so any later ``asyncio.run`` (the store tests) or second ``sync_playwright()`` would fail."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: "sync_api.Browser") -> Iterator["sync_api.Page"]:
    """A fresh page that fails the test on any JavaScript error or dialog (alert, confirm, prompt).

    The page's Content-Security-Policy is bypassed: Playwright's waits evaluate strings, and the
    "shown as text, never run" checks must hold without the CSP's help.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.type} {d.message}"), d.dismiss()))
    pg.set_default_timeout(10_000)
    yield pg
    context.close()
    assert not problems, problems


@pytest.fixture(autouse=True)
def _no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI tests need no X-Ray daemon; its fixed UDP port would clash with servers running beside them."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")
