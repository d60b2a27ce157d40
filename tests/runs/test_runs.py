"""Runs on both stores: two runs of Cruddur-like traffic recorded with ``apiary run`` through the OTel SDK's
OTLP/HTTP exporter, one with 40 ms planted in ``db-query``; listed and compared over the API, and the CLI's
verdict for CI."""

from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import httpx
import pytest

from tests.runs.recording import DELAY_MS, REQUESTS, SPANS_PER_REQUEST, clean_env, record_pair
from tests.stores import STORES, Tenant, running


@pytest.fixture(scope="module", params=STORES)
def tenant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=2) as server:
        t = server.take()
        record_pair(t.url, t.ingest_key)  # an ingest-only key is all a run's exporters need
        yield t


def get(t: Tenant, path: str, key: str | None = None, **params: str) -> httpx.Response:
    return httpx.get(t.url + path, params=params, headers={"X-Honeycomb-Team": key or t.key}, timeout=120)


def compare(t: Tenant, a: str = "before", b: str = "after", **params: str) -> dict:
    r = get(t, "/api/runs/compare", a=a, b=b, **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_runs_are_listed_with_their_spans_and_services(tenant: Tenant) -> None:
    r = get(tenant, "/api/runs")
    assert r.status_code == 200, r.text
    runs = {run["name"]: run for run in r.json()["runs"]}
    assert set(runs) == {"before", "after"}
    for run in runs.values():
        assert run["spans"] == REQUESTS * SPANS_PER_REQUEST
        assert run["services"] == ["backend-flask"]
        assert run["first_seen"] <= run["last_seen"]
    assert runs["before"]["last_seen"] <= runs["after"]["first_seen"]  # recorded one after the other
    assert [run["name"] for run in r.json()["runs"]] == ["after", "before"]  # the latest first


def test_apiary_run_keeps_the_resource_attributes_already_set(tenant: Tenant) -> None:
    """Every span of both runs has the run and the attribute the environment already had (``apiary run`` merged)."""
    spec = {"calculations": [{"op": "COUNT"}], "breakdowns": ["apiary.run", "deployment.environment"],
            "filters": [{"column": "meta.signal_type", "op": "=", "value": "trace"}], "time_range": 3600}
    headers = {"X-Honeycomb-Team": tenant.key}
    qid = httpx.post(tenant.url + "/1/queries/backend-flask", json=spec, headers=headers, timeout=60).json()["id"]
    r = httpx.post(tenant.url + "/1/query_results/backend-flask", json={"query_id": qid}, headers=headers, timeout=120)
    assert r.status_code == 201, r.text
    rows = sorted((d["data"]["apiary.run"], d["data"]["deployment.environment"], d["data"]["COUNT"])
                  for d in r.json()["data"]["results"])
    assert rows == [("after", "ci", REQUESTS * SPANS_PER_REQUEST), ("before", "ci", REQUESTS * SPANS_PER_REQUEST)]


def test_the_runs_metrics_carry_it_too(tenant: Tenant) -> None:
    """The counter the traffic adds to once per request, summed per run: the same resource, the same tag."""
    spec = {"calculations": [{"op": "SUM", "column": "app.requests"}], "breakdowns": ["apiary.run"],
            "filters": [{"column": "meta.signal_type", "op": "=", "value": "metric"}], "time_range": 3600}
    headers = {"X-Honeycomb-Team": tenant.key}
    qid = httpx.post(tenant.url + "/1/queries/backend-flask", json=spec, headers=headers, timeout=60).json()["id"]
    r = httpx.post(tenant.url + "/1/query_results/backend-flask", json={"query_id": qid}, headers=headers, timeout=120)
    assert r.status_code == 201, r.text
    assert sorted((d["data"]["apiary.run"], d["data"]["SUM(app.requests)"]) for d in r.json()["data"]["results"]) == [
        ("after", REQUESTS), ("before", REQUESTS)]


def test_compare_ranks_the_delayed_span_first(tenant: Tenant) -> None:
    doc = compare(tenant)
    first = doc["spans"][0]
    assert (first["service"], first["name"], first["why"]) == ("backend-flask", "db-query", "latency")
    assert first["a"]["count"] == first["b"]["count"] == REQUESTS
    assert first["change"]["p50_ms"] >= DELAY_MS * 0.5
    assert first["b"]["p50"] - first["a"]["p50"] == pytest.approx(first["change"]["p50_ms"], abs=0.01)
    by_name = {row["name"]: row for row in doc["spans"]}
    assert by_name["render"]["a"]["errors"] == 0 and by_name["render"]["b"]["errors"] == REQUESTS // 10
    assert by_name["render"]["change"]["errors"] == REQUESTS // 10
    assert doc["new_spans"] == [{"service": "backend-flask", "name": "cache-lookup"}]
    assert doc["vanished_spans"] == [{"service": "backend-flask", "name": "legacy-audit"}]
    assert by_name["cache-lookup"]["in"] == "b" and by_name["cache-lookup"]["a"] is None
    assert "cache.hit" in doc["only_in_b"] and "cache.hit" not in doc["only_in_a"]
    assert "deployment.environment" not in doc["only_in_a"] + doc["only_in_b"]
    changed = {c["column"]: c for c in doc["changed_columns"]}
    assert changed["duration_ms"]["score"] > 0  # BubbleUp sees the latency shift too


def test_compare_the_other_way_round_and_by_p90(tenant: Tenant) -> None:
    doc = compare(tenant, "after", "before", percentile="p90")
    assert doc["percentile"] == "p90"
    assert doc["spans"][0]["name"] == "db-query" and doc["spans"][0]["change"]["p90_ms"] <= -DELAY_MS * 0.5
    assert doc["new_spans"] == [{"service": "backend-flask", "name": "legacy-audit"}]
    assert "cache.hit" in doc["only_in_a"]


def test_bad_compare_requests_say_what_to_fix(tenant: Tenant) -> None:
    r = get(tenant, "/api/runs/compare", a="before", b="no-such-run")
    assert r.status_code == 404 and "run 'no-such-run' not found" in r.json()["error"]
    r = get(tenant, "/api/runs/compare", a="before")
    assert r.status_code == 400 and "?a=RUN&b=RUN" in r.json()["error"]
    r = get(tenant, "/api/runs/compare", a="before", b="after", percentile="p75")
    assert r.status_code == 400 and "p50, p90, p99" in r.json()["error"]
    r = get(tenant, "/api/runs", time_range="soon")
    assert r.status_code == 400 and "time_range" in r.json()["error"]
    r = get(tenant, "/api/runs", key=tenant.ingest_key)
    assert r.status_code == 403 and "ingest-only" in r.json()["error"]


def apiary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiary", *args], capture_output=True, text=True, timeout=180,
                          env=clean_env())


def test_cli_compare_fails_ci_past_the_threshold_only(tenant: Tenant) -> None:
    if tenant.store != "duckdb":
        pytest.skip("the CLI talks HTTP to whichever store; DuckDB proves it")
    conn = ["--url", tenant.url, "--key", tenant.key]
    slow = apiary("runs", "compare", "before", "after", "--threshold-ms", "20", *conn)
    assert slow.returncode == 1, slow.stderr
    table = slow.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if "service: span" in line)
    assert "backend-flask: db-query" in table[header + 1] and table[header + 1].startswith("!")
    assert "slowed past 20 ms at p50, the worst: backend-flask: db-query" in slow.stderr
    assert "attributes in B only: cache.hit" in slow.stdout
    calm = apiary("runs", "compare", "before", "after", "--threshold-ms", str(DELAY_MS * 3), *conn)
    assert calm.returncode == 0, calm.stderr
    assert "backend-flask: db-query" in calm.stdout.splitlines()[header + 1]
    both = apiary("runs", "compare", "before", "after", "--threshold-ms", "20", "--threshold-pct", "100000", *conn)
    assert both.returncode == 0, both.stderr  # a span must pass both thresholds
    missing = apiary("runs", "compare", "before", "nope", "--threshold-ms", "20", *conn)
    assert missing.returncode == 2 and "run 'nope' not found" in missing.stderr
    listed = apiary("runs", "list", *conn)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert names == ["after", "before"]


def test_apiary_run_exits_with_the_command_status(tenant: Tenant) -> None:
    if tenant.store != "duckdb":
        pytest.skip("no store involved")
    done = apiary("run", "--name", "x", "--url", tenant.url, "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert done.returncode == 3
    done = apiary("run", "--name", "x", "--", "no-such-command-anywhere")
    assert done.returncode == 127 and "command not found" in done.stderr
    done = apiary("run", "--name", "x")
    assert done.returncode == 2 and "after --" in done.stderr
