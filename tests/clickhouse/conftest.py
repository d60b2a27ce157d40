"""Where the ClickHouse tests run: a server when ``APIARY_CLICKHOUSE_URL`` is set, else the engine in-process (chdb).

With a server each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

SERVER_URL = os.environ.get("APIARY_CLICKHOUSE_URL", "")


def clickhouse_url(tmp_path: Path) -> str:
    if SERVER_URL:
        base = SERVER_URL.rstrip("/").rsplit("/", 1)[0] if SERVER_URL.count("/") > 2 else SERVER_URL.rstrip("/")
        return f"{base}/apiary_test_{uuid.uuid4().hex[:12]}"
    return f"chdb://{tmp_path / 'clickhouse'}"


def drop_database(url: str) -> None:
    if not url.startswith("clickhouse"):
        return
    from apiary.store.clickhouse.client import connect, quote

    client = connect(url)
    client.command(f"DROP DATABASE IF EXISTS {quote(client.database)}")
    client.close()


@pytest.fixture
def ch_url(tmp_path: Path) -> Iterator[str]:
    url = clickhouse_url(tmp_path)
    yield url
    drop_database(url)
