"""The X-Ray SDK's XRayMiddleware sends segments to Apiary's daemon port; boto3 finds them through the X-Ray API."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import requests

from tests.server import ApiaryProcess
from tests.xray.conftest import datagram, eventually
from tests.xray.flask_app import ServedApp, create_app


def _window() -> dict[str, Any]:
    now = time.time()
    return {"StartTime": now - 600, "EndTime": now + 60}


def _summaries(xray: Any, expression: str) -> list[dict[str, Any]]:
    return xray.get_trace_summaries(**_window(), FilterExpression=expression)["TraceSummaries"]


def _entities(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = [doc]
    for sub in doc.get("subsegments", []):
        out += _entities(sub)
    return out


def test_flask_middleware_segments_found_via_the_xray_api(xray_apiary: ApiaryProcess, xray: Any) -> None:
    app = create_app(f"127.0.0.1:{xray_apiary.xray_port}")  # type: ignore[attr-defined]
    with ServedApp(app) as served:
        trace_ids = []
        for _ in range(3):
            resp = requests.get(f"{served.url}/api/activities/home", timeout=5)
            assert resp.status_code == 200
            trace_ids.append(resp.headers["X-Amzn-Trace-Id"].split(";")[0].split("=")[1])
        assert requests.get(f"{served.url}/api/fail", timeout=5).status_code == 500

    found = eventually(lambda: [s for s in _summaries(xray, 'service("backend-flask")') if s["Id"] in trace_ids]
                       if len([s for s in _summaries(xray, 'service("backend-flask")') if s["Id"] in trace_ids]) == 3 else None)
    for summary in found:
        assert summary["Http"]["HttpMethod"] == "GET"
        assert summary["Http"]["HttpStatus"] == 200
        assert summary["Http"]["HttpURL"].endswith("/api/activities/home")
        assert summary["HasFault"] is False
        assert summary["EntryPoint"]["Name"] == "backend-flask"
        assert summary["Annotations"]["user_handle"][0]["AnnotationValue"] == {"StringValue": "andrewbrown"}

    faults = eventually(lambda: _summaries(xray, 'service("backend-flask") AND fault'))
    assert all(s["Id"] not in trace_ids for s in faults)
    assert faults[0]["Http"]["HttpStatus"] == 500
    assert {s["Id"] for s in _summaries(xray, 'annotation.user_handle = "andrewbrown"')} >= set(trace_ids)
    assert not {s["Id"] for s in _summaries(xray, 'annotation.user_handle = "someone-else"')} & set(trace_ids)
    assert {s["Id"] for s in _summaries(xray, 'http.url ENDSWITH "/activities/home" AND http.status = 200 AND ok')} >= set(trace_ids)

    traces = xray.batch_get_traces(TraceIds=trace_ids)
    assert traces["UnprocessedTraceIds"] == []
    assert {t["Id"] for t in traces["Traces"]} == set(trace_ids)
    for trace in traces["Traces"]:
        [segment] = trace["Segments"]
        doc = json.loads(segment["Document"])
        assert doc["name"] == "backend-flask" and doc["trace_id"] == trace["Id"]
        [mock] = [e for e in _entities(doc) if e["name"] == "mock-data"]
        assert mock["metadata"]["namespace"]["key"]["results-size"] == 1
        assert mock["annotations"]["results_size"] == 1

    # The same trace in Apiary's own trace view, as spans of the backend-flask dataset.
    w3c = trace_ids[0][2:].replace("-", "")
    view = httpx.get(f"{xray_apiary.url}/api/traces/{w3c}", headers={"x-honeycomb-team": xray_apiary.key}).json()
    spans = {s["name"]: s for s in view["spans"]}
    assert spans["backend-flask"]["service.name"] == "backend-flask"
    assert spans["mock-data"]["trace.parent_id"] == spans["backend-flask"]["trace.span_id"]
    assert spans["mock-data"]["metadata.namespace.key"].startswith("{")
    assert spans["mock-data"]["annotation.results_size"] == 1

    graph = xray.get_service_graph(**_window())
    [node] = [s for s in graph["Services"] if s["Name"] == "backend-flask"]
    assert node["SummaryStatistics"]["TotalCount"] >= 4
    assert node["SummaryStatistics"]["FaultStatistics"]["TotalCount"] >= 1
    assert node["Root"] is True


def test_in_progress_then_completed_and_streamed_subsegments(xray_apiary: ApiaryProcess, xray: Any) -> None:
    now = time.time()
    trace_id = f"1-{int(now):08x}-{'ab' * 12}"
    seg = {"trace_id": trace_id, "id": "1111111111111111", "name": "worker", "start_time": now - 1, "in_progress": True}
    sub = {"type": "subsegment", "trace_id": trace_id, "parent_id": "1111111111111111", "id": "2222222222222222",
           "name": "s3-upload", "namespace": "aws", "start_time": now - 0.9, "end_time": now - 0.5,
           "aws": {"operation": "PutObject", "region": "us-east-1"}, "http": {"response": {"status": 200}}}
    done = {**seg, "end_time": now, "http": {"request": {"method": "POST", "url": "http://worker/jobs"},
                                             "response": {"status": 202}}}
    del done["in_progress"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        address = ("127.0.0.1", xray_apiary.xray_port)  # type: ignore[attr-defined]
        s.sendto(datagram(seg), address)
        time.sleep(0.2)
        partial = eventually(lambda: _summaries(xray, f'service("worker")'))
        assert partial[0]["IsPartial"] is True
        s.sendto(datagram(sub), address)
        s.sendto(datagram(done), address)

    def completed() -> Any:
        found = _summaries(xray, 'service("worker")')
        return found if found and found[0]["IsPartial"] is False else None
    [summary] = eventually(completed)
    assert summary["Http"]["HttpStatus"] == 202
    [trace] = xray.batch_get_traces(TraceIds=[trace_id])["Traces"]
    [segment] = trace["Segments"]
    doc = json.loads(segment["Document"])
    assert "in_progress" not in doc and doc["end_time"] == now
    assert [s["name"] for s in doc["subsegments"]] == ["s3-upload"]
    assert _summaries(xray, 'service("worker") AND responsetime >= 0.9 AND duration < 5')
    assert not _summaries(xray, 'service("worker") AND responsetime > 5')


def test_trace_summaries_paginate_with_next_token(xray: Any) -> None:
    now = time.time()
    docs = [json.dumps({"trace_id": f"1-{int(now):08x}-{i:024x}", "id": f"{i + 1:016x}", "name": "paged",
                        "start_time": now - 1 - i / 1000, "end_time": now - i / 1000}) for i in range(150)]
    assert xray.put_trace_segments(TraceSegmentDocuments=docs)["UnprocessedTraceSegments"] == []
    pages = list(xray.get_paginator("get_trace_summaries").paginate(**_window(), FilterExpression='service("paged")'))
    ids = [s["Id"] for p in pages for s in p["TraceSummaries"]]
    assert len(pages) == 2 and len(ids) == 150 == len(set(ids))
