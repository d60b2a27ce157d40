"""One server per store for the tagging tests: CloudWatch Logs and X-Ray clients of one environment per test."""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config

from tests.stores import STORES, StoreServer, Tenant, running


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    with running(request.param, tmp_path_factory.mktemp(request.param), extra_args=["--xray-port", "0"]) as server:
        yield server


@pytest.fixture
def tenant(store_server: StoreServer) -> Tenant:
    return store_server.take()


def client(tenant: Tenant, service: str, key: str | None = None) -> Any:
    """A boto3 client pointed at Apiary, as a user configures one: the endpoint, and an Apiary key twice."""
    key = key or tenant.key
    return boto3.session.Session().client(service, endpoint_url=tenant.url, region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=key,
                                          config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def logs(tenant: Tenant) -> Iterator[Any]:
    c = client(tenant, "logs")
    yield c
    c.close()


@pytest.fixture
def xray(tenant: Tenant) -> Iterator[Any]:
    c = client(tenant, "xray")
    yield c
    c.close()
