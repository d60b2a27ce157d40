"""libhoney, unchanged, sends events to Apiary's copy of Honeycomb's batch API."""

from __future__ import annotations

import secrets

import httpx
import libhoney

from tests.ingest.shared_server import environment as apiary, module_server  # noqa: F401 - fixtures
from tests.server import ApiaryProcess


def test_libhoney_batch_events_become_spans(apiary: ApiaryProcess) -> None:
    trace_id = secrets.token_hex(16)
    client = libhoney.Client(writekey=apiary.key, dataset="cruddur events", api_host=apiary.url, block_on_response=True)
    try:
        root_id = secrets.token_hex(8)
        for i, (span_id, parent) in enumerate([(root_id, None), (secrets.token_hex(8), root_id), (secrets.token_hex(8), root_id)]):
            ev = client.new_event()
            ev.add({"trace.trace_id": trace_id, "trace.span_id": span_id, "name": f"step-{i}", "service.name": "worker",
                    "duration_ms": 10.5 + i, "app.result_length": i, "app.ok": i != 2})
            if parent:
                ev.add_field("trace.parent_id", parent)
            ev.send()
        client.flush()
        statuses = [client.responses().get(timeout=10)["status_code"] for _ in range(3)]
    finally:
        client.close()
    assert statuses == [202, 202, 202]
    doc = httpx.get(f"{apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": apiary.key}).json()
    spans = {s["name"]: s for s in doc["spans"]}
    assert set(spans) == {"step-0", "step-1", "step-2"}
    assert spans["step-1"]["trace.parent_id"] == spans["step-0"]["trace.span_id"]
    assert spans["step-2"]["duration_ms"] == 12.5
    assert spans["step-2"]["app.ok"] is False
    assert spans["step-0"]["meta.dataset"] == "cruddur events"
    assert spans["step-0"]["service.name"] == "worker"


def test_single_event_endpoint_with_event_time(apiary: ApiaryProcess) -> None:
    trace_id = secrets.token_hex(16)
    r = httpx.post(f"{apiary.url}/1/events/events-api", json={"trace.trace_id": trace_id, "name": "one", "count": 5},
                   headers={"X-Honeycomb-Team": apiary.key, "X-Honeycomb-Event-Time": "2026-01-02T03:04:05.250Z"})
    assert r.status_code == 200
    (span,) = httpx.get(f"{apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": apiary.key}).json()["spans"]
    assert span["timestamp"] == "2026-01-02T03:04:05.250000Z"
    assert span["count"] == 5


def test_batch_reports_bad_events_individually(apiary: ApiaryProcess) -> None:
    trace_id = secrets.token_hex(16)
    body = [{"data": {"trace.trace_id": trace_id, "name": "good"}, "time": "2026-01-02T03:04:05Z"},
            {"data": "not an object"},
            {"data": {"trace.trace_id": trace_id, "name": "bad time"}, "time": "yesterday"}]
    r = httpx.post(f"{apiary.url}/1/batch/mixed", json=body, headers={"X-Honeycomb-Team": apiary.key})
    assert r.status_code == 200
    answers = r.json()
    assert [a["status"] for a in answers] == [202, 400, 400]
    assert "data" in answers[1]["error"] and "RFC 3339" in answers[2]["error"]
    spans = httpx.get(f"{apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": apiary.key}).json()["spans"]
    assert [s["name"] for s in spans] == ["good"]


def test_wrong_key_names_the_header(apiary: ApiaryProcess) -> None:
    r = httpx.post(f"{apiary.url}/1/batch/x", json=[], headers={"X-Honeycomb-Team": "typo" + apiary.key[4:]})
    assert r.status_code == 401
    assert "X-Honeycomb-Team" in r.json()["error"]
