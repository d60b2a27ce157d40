from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.server import ApiaryProcess, create_key

pytest_plugins = ["pytester"]  # tests/testing runs inner sessions of the apiary.testing plugin
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Servers started in-process or by the demo take no fixed OTLP/gRPC port (4317); gRPC tests pass --otlp-grpc-port.
os.environ.setdefault("APIARY_OTLP_GRPC_PORT", "0")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def apiary(data_dir: Path) -> Iterator[ApiaryProcess]:
    """A running server with a `dev` environment; its key is in ``apiary.key``."""
    key = create_key(data_dir, "dev")
    proc = ApiaryProcess(data_dir, key=key)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
