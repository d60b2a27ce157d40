"""A headless Debian Chromium driven by Playwright (never `playwright install`: the system browser is used), and the
servers the UI stories run against: one per store and module, an environment per test (`tests.stores`)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Iterator

import httpx
import pytest

from tests.stores import STORES, StoreServer, running

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


@dataclass
class UITenant:
    """One test's environment on its module's server: ``key`` reads and writes, ``env`` names the environment."""

    url: str
    key: str
    env: str
    store: str

    def link(self, path: str, **params: str) -> str:
        """The page at ``path`` of this environment (the front end keeps ``env`` on every link from there)."""
        query = urllib.parse.urlencode({**params, "env": self.env})
        return f"{self.url}{path}{'&' if '?' in path else '?'}{query}"


def _tenant(server: StoreServer) -> UITenant:
    t = server.take()
    env = httpx.get(f"{t.url}/1/auth", headers={"x-honeycomb-team": t.key}, timeout=30).json()["environment"]["name"]
    return UITenant(t.url, t.key, env, t.store)


@pytest.fixture(scope="module", params=STORES)
def ui_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """The module's server on each store (loopback exposure: the UI asks for no key). A chdb server takes tens of
    seconds to start, so the module's stories share it, each in an environment of its own."""
    with running(request.param, tmp_path_factory.mktemp(f"ui-{request.param}"), tenants=8) as server:
        yield server


@pytest.fixture
def tenant(ui_server: StoreServer) -> UITenant:
    return _tenant(ui_server)


@pytest.fixture(scope="module", params=STORES)
def network_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """A server on each store with network exposure (still bound to 127.0.0.1): every UI call needs a key."""
    with running(request.param, tmp_path_factory.mktemp(f"ui-net-{request.param}"), tenants=2,
                 extra_args=["--exposure", "network"]) as server:
        yield server


@pytest.fixture
def two_keys(network_server: StoreServer) -> tuple[UITenant, UITenant]:
    """Two environments of the network-exposed server: each key must see its own only."""
    return _tenant(network_server), _tenant(network_server)
