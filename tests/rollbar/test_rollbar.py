"""The Cruddur guide's Rollbar setup, unchanged but for `endpoint`: errors become items with occurrences, tied to traces."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import httpx
import pytest
import rollbar
import rollbar.contrib.flask
from flask import Flask, got_request_exception

from tests.stores import Tenant

TRACE_ID = "5759e988bd862e3fe1be46a994272793"


class HomeError(RuntimeError):
    pass


@pytest.fixture
def app(apiary: Tenant) -> Iterator[Flask]:
    app = Flask(__name__)
    rollbar._initialized = False  # pyrollbar ignores a second init in one process; each test has its own server
    rollbar.init(apiary.key, "production", root=os.path.dirname(os.path.realpath(__file__)),
                 allow_logging_basic_config=False, endpoint=apiary.url + "/api/1/",
                 handler="blocking")  # report before the response, so the test need not wait
    got_request_exception.connect(rollbar.contrib.flask.report_exception, app)

    @app.route("/api/activities/home")
    def home() -> Any:
        raise HomeError("the home feed is on fire")

    @app.route("/rollbar/test")
    def rollbar_test() -> str:
        rollbar.report_message("Hello World!", "warning")
        return "Hello World!"

    yield app
    got_request_exception.disconnect(rollbar.contrib.flask.report_exception, app)


def api(apiary: Tenant, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
    return httpx.request(kw.pop("method", "GET"), f"{apiary.url}/api/1/{path}",
                         headers={"X-Rollbar-Access-Token": key or apiary.key}, **kw)


def items(apiary: Tenant) -> list[dict[str, Any]]:
    r = api(apiary, "items")
    assert r.status_code == 200 and r.json()["err"] == 0
    return r.json()["result"]["items"]


def test_failures_become_one_item_with_n_occurrences_linked_to_traces(apiary: Tenant, app: Flask) -> None:
    client = app.test_client()
    n = 4
    for i in range(n):
        headers = {"traceparent": f"00-{TRACE_ID[:-1]}{i}-00f067aa0ba902b7-01"}
        assert client.get("/api/activities/home", headers=headers).status_code == 500
    found = items(apiary)
    assert len(found) == 1
    item = found[0]
    assert item["total_occurrences"] == n and item["status"] == "active" and item["level"] == "error"
    assert item["title"] == "HomeError: the home feed is on fire" and item["environment"] == "production"
    assert item["framework"] == "flask"
    assert api(apiary, f"item/{item['id']}").json()["result"]["total_occurrences"] == n

    instances = api(apiary, f"item/{item['id']}/instances").json()["result"]["instances"]
    assert len(instances) == n
    assert sorted(i["trace_id"] for i in instances) == [f"{TRACE_ID[:-1]}{i}" for i in range(n)]
    latest = api(apiary, f"instance/{instances[0]['data']['uuid']}").json()["result"]
    frames = latest["data"]["body"]["trace"]["frames"]
    assert frames[-1]["method"] == "home" and frames[-1]["filename"].endswith("test_rollbar.py")
    assert latest["data"]["body"]["trace"]["exception"]["class"] == "HomeError"
    assert latest["data"]["request"]["url"].endswith("/api/activities/home")
    assert latest["data"]["request"]["method"] == "GET"
    assert latest["span_id"] == "00f067aa0ba902b7" and latest["trace_url"] == f"/api/traces/{latest['trace_id']}"


def test_message_resolve_and_reactivate(apiary: Tenant, app: Flask) -> None:
    client = app.test_client()
    assert client.get("/rollbar/test").status_code == 200
    [item] = items(apiary)
    assert item["title"] == "Hello World!" and item["level"] == "warning" and item["total_occurrences"] == 1
    r = api(apiary, f"item/{item['id']}", method="PATCH", json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["result"]["status"] == "resolved"
    assert api(apiary, "items", params={"status": "active"}).json()["result"]["items"] == []
    assert client.get("/rollbar/test").status_code == 200  # it happens again: the item reopens
    [item] = items(apiary)
    assert item["status"] == "active" and item["total_occurrences"] == 2
    assert api(apiary, f"item/{item['id']}", method="PATCH", json={"status": "muted"}).json()["result"]["status"] == "muted"


def _item(body: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"data": {"environment": "production", "body": body, "platform": "linux", "language": "python", **data}}


def test_bad_input_gets_rollbars_errors_and_stores_nothing(apiary: Tenant) -> None:
    url = f"{apiary.url}/api/1/item/"
    good = _item({"message": {"body": "kept"}}, fingerprint="keep-me")
    assert httpx.post(url, json=good, headers={"X-Rollbar-Access-Token": apiary.key}).json()["err"] == 0
    before = items(apiary)

    r = httpx.post(url, content=b'{"data": {', headers={"X-Rollbar-Access-Token": apiary.key})
    assert r.status_code == 400 and r.json() == {"err": 1, "message": r.json()["message"]} and "JSON" in r.json()["message"]
    r = httpx.post(url, json=good, headers={"X-Rollbar-Access-Token": "not-a-key"})
    assert r.status_code == 401 and r.json()["err"] == 1 and "invalid access token" in r.json()["message"]
    r = httpx.post(url, json=good)
    assert r.status_code == 401 and "access token required" in r.json()["message"]
    r = httpx.post(url, json={**_item({}), "access_token": apiary.key})  # token in the body, but no body.trace/message
    assert r.status_code == 422 and "data.body" in r.json()["message"]
    r = httpx.post(url, json=_item({"message": {"body": "x" * (2 * 1024 * 1024)}}), headers={"X-Rollbar-Access-Token": apiary.key})
    assert r.status_code == 413 and r.json()["err"] == 1
    client_token = apiary.ingest_key  # Rollbar's post_client_item kind
    r = httpx.post(url, json=good, headers={"X-Rollbar-Access-Token": client_token})
    assert r.status_code == 403 and "post_client_item" in r.json()["message"]
    browser = _item({"message": {"body": "from a browser"}}, platform="browser")
    assert httpx.post(url, json=browser, headers={"X-Rollbar-Access-Token": client_token}).json()["err"] == 0
    assert api(apiary, "items", key=client_token).status_code == 403  # no read scope

    after = {i["title"]: i for i in items(apiary)}
    assert set(after) == {"kept", "from a browser"}
    assert after["kept"]["total_occurrences"] == before[0]["total_occurrences"] == 1
    assert api(apiary, "item/999999").status_code == 404
