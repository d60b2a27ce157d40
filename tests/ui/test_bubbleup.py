"""BubbleUp in a real headless Chromium: drag over the slow stripe of a heatmap, see what sets it apart, refine the query."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.query.conftest import _send
from tests.ui.conftest import UITenant

pytestmark = pytest.mark.timeout(120)

ROUTES = ["/api/activities/home", "/api/messages/{id}", "/api/profile", "/api/search"]
STRIPE = 12


def requests(now: int) -> list[dict[str, Any]]:
    """120 quick requests from six users over every route, and a slow stripe: user "londo" reading messages."""
    spans = []
    for i in range(120):
        spans.append({"service.name": "backend-flask", "name": "request", "root": True, "idx": i,
                      "start_ns": (now - 1700 + i * 12) * 1_000_000_000, "duration_ms": float(20 + (i * 37) % 180),
                      "attrs": {"app.user_id": f"user{i % 6}", "http.route": ROUTES[i % 4], "http.method": "GET" if i % 2 else "POST"}})
    for j in range(STRIPE):
        spans.append({"service.name": "backend-flask", "name": "request", "root": True, "idx": 1000 + j,
                      "start_ns": (now - 1650 + j * 120) * 1_000_000_000, "duration_ms": float(2000 + j * 15),
                      "attrs": {"app.user_id": "londo", "http.route": ROUTES[1], "http.method": "GET" if j % 2 else "POST"}})
    return spans


def test_dragging_over_the_slow_stripe_names_its_user_and_route_and_one_click_filters_the_query(
        tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    spans = requests(int(time.time()))
    _send(apiary, spans)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.get(f"{apiary.url}/api/datasets", headers={"X-Honeycomb-Team": apiary.key})
        if sum(d["count"] for d in r.json()["datasets"]) >= len(spans):
            break
        time.sleep(0.2)
    spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "time_range": 3600}
    page.goto(tenant.link("/query", dataset="backend-flask", q=json.dumps(spec)))
    canvas = page.wait_for_selector(".heatmap canvas")
    box = canvas.bounding_box()
    d = {k: float(canvas.get_attribute(f"data-{k}")) for k in ("plot-left", "plot-top", "plot-width", "plot-height", "buckets")}
    cell = d["plot-height"] / d["buckets"]
    # From the top value bucket down five buckets (the stripe spans 2.0-2.2 s of 0.02-2.2 s), across the whole hour.
    page.mouse.move(box["x"] + d["plot-left"] + 1, box["y"] + d["plot-top"] + cell / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + d["plot-left"] + d["plot-width"] - 1, box["y"] + d["plot-top"] + 4.5 * cell, steps=5)
    page.mouse.up()
    page.wait_for_selector(".bubbleup[data-state=done] .bu-column")
    ranked = page.locator(".bu-column").evaluate_all("cs => cs.map(c => [c.dataset.column, Number(c.dataset.score)])")
    assert [c for c, _ in ranked[:2]] == ["app.user_id", "http.route"]
    assert ranked[0][1] == 1.0  # only the stripe has user londo
    assert ranked[1][1] == pytest.approx(1 - 30 / 120, abs=1e-6)  # a quarter of the rest reads messages too
    assert all(score < ranked[1][1] for _, score in ranked[2:])
    assert f"{STRIPE} selected events against 120" in page.locator(".bubbleup").inner_text()
    user = page.locator(".bu-column[data-column='app.user_id']")
    londo = user.locator("tr[data-value=londo]")
    assert [t.strip() for t in londo.locator("td.num").all_inner_texts()] == ["100.0%", "0.0%"]
    page.screenshot(path=str(artifacts / "ui-bubbleup.png"), full_page=True)

    londo.locator("button.bu-where").click()
    page.wait_for_function("new URL(location.href).searchParams.get('q').includes('londo')")
    page.wait_for_selector("table.summary td[data-calc='HEATMAP(duration_ms)']")
    page.wait_for_function(f"document.querySelector(\"table.summary td[data-calc='HEATMAP(duration_ms)']\").textContent === '{STRIPE}'")
    rerun = json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"][0])
    assert rerun["filters"] == [{"column": "app.user_id", "op": "=", "value": "londo"}]
    values = page.locator(".clause[data-clause=WHERE] .item").evaluate_all(
        "rs => rs.map(r => [...r.querySelectorAll('input, select')].filter(e => !e.hidden).map(e => e.value))")
    assert values == [["app.user_id", "=", "londo"]]
    assert page.locator(".bubbleup .bu-column").count() == 0  # the new query's results replace the old comparison
