"""One server per store for a module's tests: the same user stories run on DuckDB and on ClickHouse.

``chdb`` is ClickHouse's engine in the server process (or a real server when
``APIARY_CLICKHOUSE_URL`` is set, see ``tests/clickhouse/conftest.py``). A
chdb server takes tens of seconds to start on a busy machine, so a module
shares one server per store, and each test gets an environment of its own
(keys never see another environment's data, so tests cannot see each
other's groups or items). chdb lets one process at a time open its
directory: every key is created before the server starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess

STORES = ["duckdb", "chdb"]


@dataclasses.dataclass
class Tenant:
    """A running server seen through one environment: ``key`` reads and writes, ``ingest_key`` only writes."""

    server: ApiaryProcess
    key: str
    ingest_key: str
    store: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir


class StoreServer:
    """An ``apiary serve`` on one store with ``tenants`` environments created up front; `take` hands one out."""

    def __init__(self, store: str, server: ApiaryProcess, keys: list[tuple[str, str]]) -> None:
        self.store, self.server, self._keys = store, server, list(keys)

    def take(self) -> Tenant:
        if not self._keys:
            raise RuntimeError("no environment left: raise `tenants` for this module's server")
        key, ingest_key = self._keys.pop(0)
        return Tenant(self.server, key, ingest_key, self.store)


def _create_keys(data_dir: Path, url: str | None, tenants: int) -> list[tuple[str, str]]:
    if url is None:
        from apiary.store.meta import MetaStore

        data_dir.mkdir(parents=True, exist_ok=True)
        meta = MetaStore(data_dir / "meta.sqlite")
        return [(meta.create_key(f"t{i}"), meta.create_key(f"t{i}", can_read=False)) for i in range(tenants)]
    from apiary.store.clickhouse import ClickHouseMeta, connect

    client = connect(url)
    try:
        ch = ClickHouseMeta(client)
        return [(ch.create_key(f"t{i}"), ch.create_key(f"t{i}", can_read=False)) for i in range(tenants)]
    finally:
        client.close()  # the server opens the directory next


@contextlib.contextmanager
def running(store: str, tmp_path: Path, tenants: int = 8, extra_args: list[str] | None = None,
            env: dict[str, str] | None = None) -> Iterator[StoreServer]:
    data_dir = tmp_path / "data"
    url = clickhouse_url(tmp_path) if store == "chdb" else None
    keys = _create_keys(data_dir, url, tenants)
    args = (["--store", url] if url else []) + list(extra_args or [])
    proc = ApiaryProcess(data_dir, key=keys[0][0], extra_args=args, env=dict(env or {}))
    proc.start(timeout=120)
    try:
        yield StoreServer(store, proc, keys)
    finally:
        proc.stop()
        if url:
            drop_database(url)


def embedded_per_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The body of a module-scoped ``apiary_server`` fixture with ``params=STORES``: the ``apiary.testing``
    plugin's in-process server, once per store, in place of the one the session would share."""
    from apiary.testing.server import EmbeddedApiary

    server = EmbeddedApiary(tmp_path_factory.mktemp(f"apiary-{request.param}"), store=request.param).start()
    try:
        yield server
    finally:
        server.stop()
