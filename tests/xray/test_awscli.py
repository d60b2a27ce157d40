"""The guides' own commands, with the real `aws` CLI pointed at Apiary by --endpoint-url."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from tests.server import ApiaryProcess
from tests.xray.conftest import XRAY_JSON


def aws(apiary: ApiaryProcess, *args: str) -> Any:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": apiary.key, "AWS_SECRET_ACCESS_KEY": apiary.key,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([sys.executable, "-m", "awscli", "xray", *args, "--endpoint-url", apiary.url, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_guides_commands_with_the_aws_cli(xray_apiary: ApiaryProcess) -> None:
    group = aws(xray_apiary, "create-group", "--group-name", "Cruddur", "--filter-expression", 'service("backend-flask")')
    assert group["Group"]["GroupName"] == "Cruddur"
    assert group["Group"]["FilterExpression"] == 'service("backend-flask")'
    assert group["Group"]["GroupARN"].startswith("arn:aws:xray:")

    rule = aws(xray_apiary, "create-sampling-rule", "--cli-input-json", f"file://{XRAY_JSON}")
    assert rule["SamplingRuleRecord"]["SamplingRule"]["RuleName"] == "Cruddur"
    assert rule["SamplingRuleRecord"]["SamplingRule"]["FixedRate"] == 0.1

    groups = aws(xray_apiary, "get-groups")["Groups"]
    assert {g["GroupName"] for g in groups} >= {"Default", "Cruddur"}
    rules = aws(xray_apiary, "get-sampling-rules")["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in rules] == ["Cruddur", "Default"]
    assert rules[0]["SamplingRule"]["ReservoirSize"] == 5

    now = int(time.time())
    summaries = aws(xray_apiary, "get-trace-summaries", "--start-time", str(now - 600), "--end-time", str(now + 60),
                    "--filter-expression", 'service("backend-flask")')
    assert "TraceSummaries" in summaries
    graph = aws(xray_apiary, "get-service-graph", "--start-time", str(now - 600), "--end-time", str(now + 60),
                "--group-name", "Cruddur")
    assert "Services" in graph
    for s in graph["Services"]:
        assert s["Name"] == "backend-flask" or any(e for e in s["Edges"])
