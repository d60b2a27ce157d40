"""`apiary serve` on a port another program holds: one clear line, and no "listening" claim before it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.server import free_port


def test_a_busy_port_is_reported_without_claiming_to_listen(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        done = subprocess.run([sys.executable, "-m", "apiary", "serve", "--data", str(tmp_path / "data"), "--port", str(port),
                               "--otlp-grpc-port", "0", "--xray-port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "listening" not in done.stdout and "API key" not in done.stdout, done.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # nothing was created for a server that never started
