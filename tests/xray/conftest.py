"""One Apiary with its X-Ray daemon on a free port, shared by the X-Ray tests of a module, on each store.

A module that reads spans runs on DuckDB and on ClickHouse (chdb); one that only exercises the API's own
configuration (sampling rules, signatures) sets ``STORES = ["duckdb"]``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config

from tests.server import ApiaryProcess, free_port
from tests.stores import STORES, running


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xray_apiary" in metafunc.fixturenames:
        metafunc.parametrize("xray_store", getattr(metafunc.module, "STORES", STORES), scope="module")


@pytest.fixture(scope="module")
def xray_apiary(xray_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiaryProcess]:
    """The server of the module on one store; its key's environment is the one the daemon sends to."""
    udp_port = free_port()
    with running(xray_store, tmp_path_factory.mktemp(xray_store), tenants=1,
                 extra_args=["--xray-port", str(udp_port), "--decode-workers", "0"]) as server:
        proc = server.server
        proc.xray_port = udp_port  # type: ignore[attr-defined]
        yield proc


def xray_client(apiary: ApiaryProcess, key: str | None = None, secret: str | None = None) -> Any:
    return boto3.client("xray", endpoint_url=apiary.url, region_name="us-east-1",
                        aws_access_key_id=key or apiary.key, aws_secret_access_key=secret or key or apiary.key,
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def xray(xray_apiary: ApiaryProcess) -> Any:
    return xray_client(xray_apiary)


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until ``check`` answers something truthy (UDP ingest is asynchronous by nature)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(0.1)


def datagram(doc: dict[str, Any]) -> bytes:
    return b'{"format": "json", "version": 1}\n' + json.dumps(doc).encode()


XRAY_JSON = Path(__file__).parent / "xray.json"
