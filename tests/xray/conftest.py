"""One Apiary with its X-Ray daemon on a free port, shared by the X-Ray tests of a module."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config

from tests.server import ApiaryProcess, create_key, free_port


@pytest.fixture(scope="module")
def xray_apiary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiaryProcess]:
    data_dir = tmp_path_factory.mktemp("xray") / "data"
    key = create_key(data_dir, "dev")
    udp_port = free_port()
    proc = ApiaryProcess(data_dir, key=key, extra_args=["--xray-port", str(udp_port), "--decode-workers", "0"])
    proc.xray_port = udp_port  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


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
