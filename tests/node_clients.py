"""The Node.js client libraries (tests/node/package.json), installed from the npm registry once per test session."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

NODE_DIR = Path(__file__).parent / "node"


@contextlib.contextmanager
def install_lock(folder: Path) -> Iterator[None]:
    """Held while npm installs into ``folder``: the suite's workers (pytest-xdist) may ask for the same packages at once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def node_clients() -> Path:
    """The folder holding the scripts and their node_modules; skips the test where Node.js is not installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the Node.js SDK tests (apt-get install nodejs npm)")
    stamp = NODE_DIR / "node_modules" / ".installed"
    manifest = (NODE_DIR / "package.json").read_text()
    with install_lock(NODE_DIR):
        if not stamp.exists() or stamp.read_text() != manifest:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                           cwd=NODE_DIR, check=True, capture_output=True, text=True, timeout=600)
            stamp.write_text(manifest)
    return NODE_DIR


def run_node(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run one of the scripts in tests/node with Node.js; its stdout, or the failure with its stderr."""
    folder = node_clients()
    done = subprocess.run(["node", script, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"node {script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout
