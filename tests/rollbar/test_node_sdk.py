"""The Node.js `rollbar` SDK from the npm registry, configured with the README's endpoint form (`…/api/1/`).

That SDK uses `endpoint` as the whole item URL (pyrollbar appends `item/`), so both forms must take items.
"""

from __future__ import annotations

import json

import httpx

from tests.node_clients import run_node
from tests.server import ApiaryProcess


def test_the_node_sdk_lands_its_items_with_the_readme_endpoint(apiary: ApiaryProcess) -> None:
    answers = json.loads(run_node("rollbar_report.js", f"{apiary.url}/api/1/", apiary.key))
    assert all(a["uuid"] for a in answers)  # the SDK hands its callback the `result` of Rollbar's answer

    listed = httpx.get(f"{apiary.url}/api/1/items", headers={"X-Rollbar-Access-Token": apiary.key}).json()
    by_title = {i["title"]: i for i in listed["result"]["items"]}
    assert set(by_title) == {"TypeError: cannot read the activities of a ghost user",
                             "the home feed took longer than a second"}
    error = by_title["TypeError: cannot read the activities of a ghost user"]
    assert error["level"] == "error" and error["environment"] == "production" and error["language"] == "javascript"
    assert by_title["the home feed took longer than a second"]["level"] == "warning"

    instances = httpx.get(f"{apiary.url}/api/1/item/{error['id']}/instances",
                          headers={"X-Rollbar-Access-Token": apiary.key}).json()["result"]["instances"]
    [occurrence] = instances
    [trace] = occurrence["data"]["body"]["trace_chain"]  # this SDK always sends the chain form
    frames = trace["frames"]
    assert trace["exception"]["class"] == "TypeError"
    assert any(f["filename"].endswith("rollbar_report.js") for f in frames)
    assert occurrence["data"]["framework"] == "node-js" and occurrence["data"]["notifier"]["name"] == "node_rollbar"


def test_unknown_rollbar_paths_answer_in_rollbars_json(apiary: ApiaryProcess) -> None:
    r = httpx.get(f"{apiary.url}/api/1/deploys", headers={"X-Rollbar-Access-Token": apiary.key})
    assert r.status_code == 404 and r.json()["err"] == 1 and "/api/1/item/" in r.json()["message"]
    r = httpx.delete(f"{apiary.url}/api/1/items", headers={"X-Rollbar-Access-Token": apiary.key})
    assert r.status_code == 405 and r.json()["err"] == 1 and r.headers["allow"] == "GET"
