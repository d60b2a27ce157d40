"""`apiary keys list` as a newcomer runs it after `apiary demo`: it finds the demo's keys or says where they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _apiary(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiary", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_keys_list_points_at_the_demos_data(tmp_path: Path) -> None:
    empty = _apiary(tmp_path, "keys", "list")
    assert empty.returncode == 1 and "no Apiary data in apiary-data" in empty.stderr and "apiary serve" in empty.stderr

    assert _apiary(tmp_path, "keys", "create", "dev", "--data", "apiary-demo-data").returncode == 0
    hinted = _apiary(tmp_path, "keys", "list")
    assert hinted.returncode == 1 and "apiary keys list --data apiary-demo-data" in hinted.stderr

    listed = _apiary(tmp_path, "keys", "list", "--data", "apiary-demo-data")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == "dev" and "write+read" in listed.stdout
