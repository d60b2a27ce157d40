from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.server import ApiaryProcess
from tests.stores import STORES, running


@pytest.fixture(autouse=True)
def no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers need no UDP port 2000, which another server on this machine may hold."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")


@pytest.fixture(params=STORES)
def apiary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiaryProcess]:
    """The same stories on each store."""
    with running(request.param, tmp_path) as proc:
        yield proc
