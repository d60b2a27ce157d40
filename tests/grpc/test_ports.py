"""The gRPC port as `apiary serve` opens it: printed with its environment variables, and a busy port is not fatal."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.server import ApiaryProcess, create_key, free_port


def test_serve_prints_both_endpoints_and_survives_a_busy_grpc_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        key = create_key(tmp_path / "data")
        proc = ApiaryProcess(tmp_path / "data", key=key, extra_args=["--otlp-grpc-port", str(busy)]).start()
        try:
            assert httpx.get(f"{proc.url}/api/health").status_code == 200  # HTTP serves on
            out = proc.output()
        finally:
            proc.stop()
    assert f"OTLP/gRPC on http://127.0.0.1:{busy}" in out
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in out and "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in out
    assert f"OTLP/gRPC off: cannot bind 127.0.0.1:{busy}" in out and "--otlp-grpc-port" in out


def test_grpc_port_zero_turns_it_off(tmp_path: Path) -> None:
    port = free_port()
    proc = ApiaryProcess(tmp_path / "data", key=create_key(tmp_path / "data"),
                         extra_args=["--otlp-grpc-port", "0"], env={"APIARY_OTLP_GRPC_PORT": str(port)}).start()
    try:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # the flag wins over the environment
        out = proc.output()
    finally:
        proc.stop()
    assert "OTLP/gRPC" not in out and "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" not in out
