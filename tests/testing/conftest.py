"""The plugin's own tests use it as a user would: its ``apiary`` fixture (over tests/conftest.py's, which
starts a bare server for the rest of the suite), on each store, one server per module."""

from __future__ import annotations

from typing import Iterator

import pytest

# Imported here, before any inner session: pytester's in-process runs drop the modules a run imported, and
# the server's native extensions (DuckDB, pyarrow, gRPC) cannot be loaded a second time in one process.
import apiary.server.app  # noqa: F401
import apiary.testing.telemetry  # noqa: F401
from apiary.testing.plugin import apiary  # noqa: F401 - the plugin's fixture, as a user's test gets it
from tests.stores import STORES, embedded_per_store


@pytest.fixture(scope="module", params=STORES)
def apiary_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The plugin's session server, here one per module and store (``--apiary-store`` picks one for a user)."""
    yield from embedded_per_store(request, tmp_path_factory)
