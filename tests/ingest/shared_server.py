"""One ``apiary serve`` for a module's tests, and a new environment for each test.

These tests read only what their own key's environment holds (its datasets, columns and traces), so a new
environment is as clean for them as a new server, and costs a key where a server cost seconds of CPU to start
(while the suite's other servers start beside it). A module takes both fixtures, the environment under the
name its tests ask for:

    from tests.ingest.shared_server import environment as apiary, module_server  # noqa: F401 - fixtures

Tests that stop, kill or reconfigure their server keep the fresh one of tests/conftest.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

import pytest

from tests.server import ApiaryProcess, create_key, serving

_names = itertools.count()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiaryProcess]:
    with serving(tmp_path_factory.mktemp("shared") / "data") as proc:
        yield proc


@pytest.fixture
def environment(module_server: ApiaryProcess) -> ApiaryProcess:
    """The module's server seen through the key of an environment no other test has used."""
    return dataclasses.replace(module_server, key=create_key(module_server.data_dir, f"test-{next(_names)}"))
