"""The query answer tests (tests/query/test_query_api.py), run again with the server on ClickHouse.

Same spans, same specs, same expected answers computed in Python: the two stores agree because each
agrees with Python (percentiles included -- both use linear interpolation, see the dialect's docstring).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.query.conftest import Loaded, load_known_spans
from tests.query.test_query_api import *  # noqa: F403 - every story, collected again here with this module's `loaded`
from tests.server import ApiaryProcess


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    root: Path = tmp_path_factory.mktemp("clickhouse-query")
    url = clickhouse_url(root)
    key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                         check=True, capture_output=True, text=True).stdout.strip()
    server = ApiaryProcess(root / "data", key=key, extra_args=["--store", url]).start(timeout=60)
    try:
        yield load_known_spans(server)
    finally:
        server.stop()
        drop_database(url)
