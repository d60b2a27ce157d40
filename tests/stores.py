"""One server fixture for every store: the same user story runs on DuckDB and on ClickHouse.

``chdb`` is ClickHouse's engine in the server process (or a real server when
``APIARY_CLICKHOUSE_URL`` is set, see ``tests/clickhouse/conftest.py``).
chdb lets one process at a time open its directory, so every key a test
needs is created before the server starts.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key

STORES = ["duckdb", "chdb"]


def _key(data_dir: Path, store_url: str | None, env: str, ingest_only: bool) -> str:
    if store_url is None:
        return create_key(data_dir, env, ingest_only=ingest_only)
    cmd = [sys.executable, "-m", "apiary", "keys", "create", env, "--store", store_url, "--data", str(data_dir)]
    if ingest_only:
        cmd.append("--ingest-only")
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def running(store: str, tmp_path: Path, extra_args: list[str] | None = None,
            env: dict[str, str] | None = None) -> Iterator[ApiaryProcess]:
    """A server on ``store`` with a ``dev`` environment: ``key`` reads and writes, ``ingest_key`` only writes."""
    data_dir = tmp_path / "data"
    url = clickhouse_url(tmp_path) if store == "chdb" else None
    key = _key(data_dir, url, "dev", False)
    ingest_key = _key(data_dir, url, "dev", True)
    args = (["--store", url] if url else []) + list(extra_args or [])
    proc = ApiaryProcess(data_dir, key=key, extra_args=args, env=dict(env or {}))
    proc.ingest_key = ingest_key  # type: ignore[attr-defined]
    proc.store = store  # type: ignore[attr-defined]
    proc.start(timeout=90)
    try:
        yield proc
    finally:
        proc.stop()
        if url:
            drop_database(url)
