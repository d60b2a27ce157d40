from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.server import ApiaryProcess, serving

pytest_plugins = ["pytester"]  # tests/testing runs inner sessions of the apiary.testing plugin
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Servers started in-process or by the demo take no fixed OTLP/gRPC port (4317); gRPC tests pass --otlp-grpc-port.
os.environ.setdefault("APIARY_OTLP_GRPC_PORT", "0")


def _one_ssl_context_for_httpx_calls() -> None:
    """httpx's functions (``httpx.get``, ``httpx.post``, …) build a client per call, and with it an SSL context
    read from the CA bundle: ~50 ms of CPU a call against ~2.5 ms with the context made once, for loopback
    ``http://`` requests that never use it. The tests make thousands of these calls (readiness polls and
    ``eventually`` loops among them) on the two cores their servers need. Each call still gets a client and a
    connection of its own; only the context, made as httpx makes it, is shared (a call's own ``verify`` wins)."""
    context = httpx.create_ssl_context()
    for name in ("request", "stream", "get", "options", "head", "post", "put", "patch", "delete"):
        setattr(httpx, name, functools.partial(getattr(httpx, name), verify=context))


_one_ssl_context_for_httpx_calls()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """No test leaves a request's environment noted in this process: the stores' reads act for it
    (`apiary.store.read_scope`), so a later test's reads would see that environment's spans alone."""
    from apiary.store import read_scope

    assert read_scope.environment() is None, f"{item.nodeid} left read_scope acting for {read_scope.environment()!r}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def apiary(data_dir: Path) -> Iterator[ApiaryProcess]:
    """A running server with a `dev` environment; its key is in ``apiary.key``."""
    with serving(data_dir) as proc:
        yield proc


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
