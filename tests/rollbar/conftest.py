from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers need no UDP port 2000, which another server on this machine may hold."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")
