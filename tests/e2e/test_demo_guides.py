"""`apiary demo` shows what the week-2 guides teach, without a browser or an AWS account.

The guides name the X-Ray segment after the service (`xray_recorder.configure(service='backend-flask')`),
create a group and the sampling rule of aws/json/xray.json with the AWS CLI, and follow an error from Rollbar
to its trace. The demo does the same against Apiary: its X-Ray segments are backend-flask's, the guide's rule
matches its traffic (the X-Ray SDK reports requests counted under it), and each Rollbar item carries the trace
it happened in.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import httpx
import pytest

from tests.e2e.conftest import REPO, clean_env, require_frontend
from tests.server import free_port

pytestmark = pytest.mark.timeout(240)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1)
    raise AssertionError(f"{what}: not seen within {timeout} s (last: {last!r})")


def test_the_demo_does_what_the_guides_do(tmp_path: Path) -> None:
    require_frontend()
    port, backend_port, frontend_port, xray_port = free_port(), free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "apiary", "demo", "--data", str(tmp_path / "data"), "--port", str(port), "--duration", "60",
           "--backend-port", str(backend_port), "--frontend-port", str(frontend_port), "--xray-port", str(xray_port)]
    log_path = tmp_path / "demo.log"
    with open(log_path, "w+") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=clean_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    apiary = f"http://127.0.0.1:{port}"
    try:
        def summary() -> str | None:
            text = log_path.read_text()
            assert proc.poll() is None, text
            return text if "Stopping in" in text else None
        out = wait_for(summary, 90, "the demo's summary")
        key = re.search(r"API key\s+(\S+)", out).group(1)
        assert 'X-Ray: group Cruddur (service("backend-flask")) and sampling rule Cruddur' in out, out
        assert f"{apiary}/xray?env=dev" in out and f"{apiary}/errors?env=dev" in out
        assert "Browser spans (frontend-react-js): open the Cruddur front end in a browser" in out

        xray = boto3.client("xray", endpoint_url=apiary, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=key)
        rules = {r["SamplingRule"]["RuleName"]: r["SamplingRule"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
        assert rules["Cruddur"]["ServiceName"] == "backend-flask" and rules["Cruddur"]["FixedRate"] == 0.1
        assert [g["GroupName"] for g in xray.get_groups()["Groups"] if g["GroupName"] == "Cruddur"] == ["Cruddur"]

        def counted_under_the_rule() -> int:
            summaries = xray.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
            return sum(s["RequestCount"] for s in summaries if s["RuleName"] == "Cruddur")
        wait_for(counted_under_the_rule, 45, "requests the X-Ray SDK counted under the guide's rule")

        headers = {"X-Honeycomb-Team": key}

        def segments_of_backend_flask() -> int:
            spec = {"calculations": [{"op": "COUNT"}], "time_range": 600,
                    "filters": [{"column": "xray.type", "op": "=", "value": "segment"}], "breakdowns": ["name"]}
            q = httpx.post(f"{apiary}/1/queries/backend-flask", json=spec, headers=headers, timeout=10)
            if q.status_code != 200:
                return 0
            r = httpx.post(f"{apiary}/1/query_results/backend-flask", json={"query_id": q.json()["id"]}, headers=headers,
                           timeout=10).json()
            names = {row["data"]["name"]: row["data"]["COUNT"] for row in r["data"]["results"]}
            assert set(names) <= {"backend-flask"}, names  # named after the service, not the host
            return names.get("backend-flask", 0)
        wait_for(segments_of_backend_flask, 30, "X-Ray segments named backend-flask")

        def an_error_linked_to_its_trace() -> str | None:
            items = httpx.get(f"{apiary}/ui/api/errors/items", params={"env": "dev"}, timeout=10).json()["items"]
            for item in items:
                doc = httpx.get(f"{apiary}/ui/api/errors/items/{item['id']}", params={"env": "dev"}, timeout=10).json()
                for occ in doc["occurrences"]:
                    if occ["trace_id"]:
                        r = httpx.get(f"{apiary}/api/traces/{occ['trace_id']}", headers=headers, timeout=10)
                        if r.status_code == 200 and r.json().get("spans"):
                            return occ["trace_id"]
            return None
        wait_for(an_error_linked_to_its_trace, 45, "a Rollbar item whose trace is stored")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
