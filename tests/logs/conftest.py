from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest

from tests.stores import STORES, StoreServer, Tenant, running


@pytest.fixture(autouse=True)
def no_xray_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers need no UDP port 2000, which another server on this machine may hold."""
    monkeypatch.setenv("APIARY_XRAY_PORT", "0")


@pytest.fixture
def aws_env(apiary: Tenant, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """What a user sets to point boto3 (and watchtower) at Apiary: the endpoint, and the key twice."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", apiary.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", apiary.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", apiary.key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # boto3's default session keeps the credentials it first found; each test has a key of its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return apiary


@pytest.fixture
def logs(aws_env: Tenant) -> Iterator[Any]:
    client = boto3.session.Session().client("logs")
    yield client
    client.close()


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for this module's tests."""
    with running(request.param, tmp_path_factory.mktemp(request.param)) as server:
        yield server


@pytest.fixture
def apiary(store_server: StoreServer) -> Tenant:
    """The same stories on each store; each test in an environment of its own."""
    return store_server.take()
