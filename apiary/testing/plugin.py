"""The pytest plugin (entry point ``pytest11: apiary``): the ``apiary`` fixture and its options.

Loaded by every pytest run where Apiary is installed, so this module imports pytest and the standard
library only; the server and the HTTP client are imported when a test first asks for ``apiary``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from apiary.testing.server import EmbeddedApiary
    from apiary.testing.telemetry import Telemetry

RUN_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("apiary", "Apiary: assert on your app's telemetry over the real wire")
    group.addoption("--apiary-store", default=None,
                    help="store of the test server: duckdb (default), chdb (ClickHouse's engine in-process) or a "
                         "clickhouse:// URL (env APIARY_TEST_STORE)")
    group.addoption("--apiary-run", default=None,
                    help="run name the app's telemetry is tagged with (resource attribute apiary.run; env APIARY_RUN; "
                         "default pytest-<UTC time>)")
    group.addoption("--apiary-update-snapshots", action="store_true", default=False,
                    help="rewrite the trace-shape snapshots the tests compare with")
    group.addoption("--apiary-timeout", type=float, default=None,
                    help="seconds a read waits for telemetry before it fails (default 10)")


def pytest_configure(config: pytest.Config) -> None:
    run = config.getoption("apiary_run", None) or os.environ.get("APIARY_RUN")
    config.stash[RUN_KEY] = run or time.strftime("pytest-%Y%m%dT%H%M%SZ", time.gmtime())


@pytest.fixture(scope="session")
def apiary_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator["EmbeddedApiary"]:
    """One Apiary for the session, on free loopback ports, with its data in a temporary directory."""
    from apiary.testing.server import EmbeddedApiary

    store = request.config.getoption("apiary_store") or os.environ.get("APIARY_TEST_STORE") or "duckdb"
    server = EmbeddedApiary(tmp_path_factory.mktemp("apiary"), store=store).start()
    try:
        yield server
    finally:
        server.stop()


def telemetry_for(server: "EmbeddedApiary", request: pytest.FixtureRequest) -> Iterator["Telemetry"]:
    """A new environment and key on ``server`` for the requesting test, released after it."""
    from apiary.testing.snapshots import SnapshotBook
    from apiary.testing.telemetry import Telemetry

    tenant = server.tenant(request.node.name)
    telemetry = Telemetry(server.url, server.grpc_endpoint, tenant.key, tenant.environment, tenant.xray_port,
                          request.config.stash[RUN_KEY])
    timeout = request.config.getoption("apiary_timeout", None)
    if timeout:
        telemetry.timeout = timeout
    if server.store == "duckdb":  # the data stays in pytest's temporary directory after the session
        telemetry.inspect = (f"this test's telemetry is in environment {tenant.environment!r}; after the session, see it with\n"
                             f"  apiary serve --data {server.data_dir}\n"
                             f"  http://127.0.0.1:4318/traces?env={tenant.environment}")
    test_file = Path(str(request.node.path))
    telemetry.snapshots = SnapshotBook(test_file.parent / "__snapshots__" / test_file.stem, request.node.name,
                                       bool(request.config.getoption("apiary_update_snapshots", False)))
    try:
        yield telemetry
    finally:
        telemetry.close()
        server.release(tenant)


@pytest.fixture
def apiary(apiary_server: "EmbeddedApiary", request: pytest.FixtureRequest) -> Iterator["Telemetry"]:
    """This test's own environment on the session's Apiary: ``apiary.env`` for the app, waiting reads."""
    yield from telemetry_for(apiary_server, request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test that used ``apiary`` says where its telemetry can be looked at once the session is over."""
    report = yield
    inspect = getattr(getattr(item, "funcargs", {}).get("apiary"), "inspect", None)
    if report.when == "call" and report.failed and isinstance(inspect, str):
        report.sections.append(("apiary", inspect))
    return report


def pytest_report_header(config: pytest.Config) -> Any:
    return f"apiary: run {config.stash[RUN_KEY]}"
