"""Query history, saved queries (HTTP and CLI) and `apiary query` against a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from tests.query.conftest import Loaded


def cli(loaded: Loaded, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APIARY_KEY": loaded.server.key, "APIARY_URL": loaded.server.url}
    return subprocess.run([sys.executable, "-m", "apiary", *args], capture_output=True, text=True, env=env, timeout=60)


def test_history_is_newest_first_with_run_time(loaded: Loaded) -> None:
    marker = int(time.time())
    for n in (1, 2):
        loaded.query({"calculations": [{"op": "COUNT"}], "limit": marker % 1000 + n})
    rows = httpx.get(f"{loaded.server.url}/api/queries/history", headers=loaded.headers()).json()["history"]
    assert [r["query"]["limit"] for r in rows[:2]] == [marker % 1000 + 2, marker % 1000 + 1]
    assert rows[0]["ran_at"] >= rows[1]["ran_at"] and rows[0]["elapsed_ms"] > 0 and rows[0]["dataset"] == "backend-flask"


def test_result_can_be_fetched_again_by_id(loaded: Loaded) -> None:
    qid = loaded.create("backend-flask", {"time_range": 7200}).json()["id"]
    first = httpx.post(f"{loaded.server.url}/1/query_results/backend-flask", json={"query_id": qid}, headers=loaded.headers()).json()
    again = httpx.get(f"{loaded.server.url}/1/query_results/backend-flask/{first['id']}", headers=loaded.headers())
    assert again.status_code == 200
    assert again.json()["data"] == first["data"] and again.json()["complete"] is True
    assert first["links"]["query_url"].endswith(f"/1/query_results/backend-flask/{first['id']}")
    lean = httpx.post(f"{loaded.server.url}/1/query_results/backend-flask", json={"query_id": qid, "disable_series": True},
                      headers=loaded.headers()).json()
    assert lean["data"]["series"] == [] and lean["data"]["results"] == first["data"]["results"]


def test_saved_queries_over_http(loaded: Loaded) -> None:
    base, h = loaded.server.url, loaded.headers()
    spec = {"calculations": [{"op": "COUNT"}], "breakdowns": ["http.route"], "time_range": 86400}
    r = httpx.post(f"{base}/api/queries/saved", json={"name": "by route", "dataset": "backend-flask", "query": spec}, headers=h)
    assert r.status_code == 201, r.text
    assert any(s["name"] == "by route" for s in httpx.get(f"{base}/api/queries/saved", headers=h).json()["saved"])
    ran = httpx.post(f"{base}/api/queries/saved/by%20route/run", headers=h)
    assert ran.status_code == 201 and len(ran.json()["data"]["results"]) == 4
    assert httpx.delete(f"{base}/api/queries/saved/by%20route", headers=h).status_code == 204
    assert httpx.get(f"{base}/api/queries/saved/by%20route", headers=h).status_code == 404
    bad = httpx.post(f"{base}/api/queries/saved", json={"name": "x", "dataset": "backend-flask", "query": {"breakdowns": ["nope"]}}, headers=h)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]


def test_cli_query_prints_a_table(loaded: Loaded) -> None:
    out = cli(loaded, "query", "--dataset", "backend-flask", "--calc", "P90(duration_ms)", "--calc", "COUNT",
              "--where", "http.status_code != 200", "--group-by", "http.route", "--order", "P90(duration_ms) desc", "--last", "2h")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["http.route", "P90(duration_ms)", "COUNT"]
    assert sum(int(line.split()[-1]) for line in lines[2:]) == 20


def test_cli_json_heatmap_save_run_and_delete(loaded: Loaded) -> None:
    out = cli(loaded, "query", "--dataset", "backend-flask", "--heatmap", "duration_ms", "--calc", "COUNT", "--last", "2h",
              "--save", "slow spans")
    assert out.returncode == 0, out.stderr
    assert "HEATMAP(duration_ms)" in out.stdout and "|" in out.stdout
    doc = json.loads(cli(loaded, "query", "--dataset", "backend-flask", "--calc", "COUNT", "--json").stdout)
    assert doc["data"]["results"][0]["data"]["COUNT"] == 240
    assert "slow spans" in cli(loaded, "queries", "list").stdout
    assert "COUNT" in cli(loaded, "queries", "run", "slow spans").stdout
    assert "ms" in cli(loaded, "queries", "history", "--limit", "3").stdout
    assert cli(loaded, "queries", "delete", "slow spans").returncode == 0
    bad = cli(loaded, "query", "--dataset", "backend-flask", "--calc", "P90(http.route)")
    assert bad.returncode == 1 and "needs a numeric column" in bad.stderr
