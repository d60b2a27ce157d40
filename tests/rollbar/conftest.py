from __future__ import annotations

from typing import Iterator

import pytest

from tests.stores import STORES, StoreServer, Tenant, running


@pytest.fixture(autouse=True)
def no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers need no UDP port 2000, which another server on this machine may hold."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for this module's tests."""
    with running(request.param, tmp_path_factory.mktemp(request.param)) as server:
        yield server


@pytest.fixture
def apiary(store_server: StoreServer) -> Tenant:
    """The same stories on each store; each test in an environment of its own."""
    return store_server.take()
