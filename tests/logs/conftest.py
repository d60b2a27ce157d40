from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from tests.server import ApiaryProcess
from tests.stores import STORES, running


@pytest.fixture(autouse=True)
def no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers need no UDP port 2000, which another server on this machine may hold."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")


@pytest.fixture
def aws_env(apiary: ApiaryProcess, monkeypatch: pytest.MonkeyPatch) -> ApiaryProcess:
    """What a user sets to point boto3 (and watchtower) at Apiary: the endpoint, and the key twice."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", apiary.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", apiary.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", apiary.key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # boto3's default session keeps the credentials it first found; each server has a new key.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return apiary


@pytest.fixture
def logs(aws_env: ApiaryProcess) -> Iterator[Any]:
    client = boto3.session.Session().client("logs")
    yield client
    client.close()


@pytest.fixture(params=STORES)
def apiary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiaryProcess]:
    """The same stories on each store."""
    with running(request.param, tmp_path) as proc:
        yield proc
