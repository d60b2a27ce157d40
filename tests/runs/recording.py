"""Record a run the way a user does: ``apiary run --name NAME -- python traffic.py`` against a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TRAFFIC = Path(__file__).resolve().parent / "traffic.py"
REQUESTS = 20
SPANS_PER_REQUEST = 4  # the root, cache-lookup or legacy-audit, db-query, render
DELAY_MS = 40  # the tests ask for half of it back: a busy machine moves either run's latencies by ~10 ms


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without OTel or Apiary settings of its own, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APIARY_"))}
    env.update(extra)
    return env


def record(url: str, key: str, name: str, *, delay_ms: float = 0, variant: str = "a") -> None:
    env = clean_env(OTEL_SERVICE_NAME="backend-flask", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci",
                    TRAFFIC_DELAY_MS=str(delay_ms), TRAFFIC_VARIANT=variant, TRAFFIC_REQUESTS=str(REQUESTS))
    done = subprocess.run([sys.executable, "-m", "apiary", "run", "--name", name, "--url", url, "--key", key, "--",
                           sys.executable, str(TRAFFIC)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def record_pair(url: str, key: str) -> None:
    """``before``: the baseline; ``after``: 40 ms more in db-query, a new span, a vanished one, a new attribute."""
    record(url, key, "before")
    record(url, key, "after", delay_ms=DELAY_MS, variant="b")
