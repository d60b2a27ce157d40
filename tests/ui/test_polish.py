"""What a newcomer noticed, in a real Chromium: service colours that hold across pages, a heatmap with round tick
values, a colour key and a log scale, the trace toolbar on the Spans tab only, service-map labels that never overlap."""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.query.conftest import _send
from tests.ui.conftest import UITenant

pytestmark = pytest.mark.timeout(120)


def crossing_calls(now: int) -> list[dict[str, Any]]:
    """Two entry services each calling both of two back ends: two of the four edges cross between the same rows,
    so their labels would sit on the same spot. Durations from 1 ms to 1 s, for the heatmap."""
    spans = []
    for i in range(40):
        caller = ["gateway", "scheduler"][i % 2]
        callee = ["billing", "inventory"][(i // 2) % 2]
        start = (now - 1200 + i * 20) * 1_000_000_000
        spans.append({"service.name": caller, "name": f"{caller} job", "root": True, "idx": i, "start_ns": start,
                      "duration_ms": float(10 ** (i % 4)), "attrs": {}})
        spans.append({"service.name": callee, "name": f"{callee} call", "root": False, "parent": i, "start_ns": start,
                      "duration_ms": float(10 ** (i % 4)) / 2, "attrs": {}})
    return spans


def swatch_colour(page, selector: str) -> str:  # noqa: ANN001
    return page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")


def round_steps(ticks: list[float]) -> bool:
    """Evenly spaced by a step of 1, 2, 2.5 or 5 times a power of ten, each tick a multiple of it."""
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    if len(steps) != 1:
        return False
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(abs(mantissa - m) < 1e-9 for m in (1, 2, 2.5, 5)) and all(abs(v / step - round(v / step)) < 1e-9 for v in ticks)


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_polish_seen_in_the_newcomer_run(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    spans = crossing_calls(int(time.time()))
    _send(apiary, spans)

    # Service map first: each service gets its colour here ...
    page.goto(tenant.link("/services", time_range="3600"))
    page.wait_for_selector(".svcmap .node[data-service=inventory]")
    page.wait_for_function("document.querySelectorAll('.svcmap .edge').length === 4")
    labels = [t.bounding_box() for t in page.locator(".svcmap .edge text").all()]
    pairs = [(i, j) for i in range(0, len(labels), 2) for j in range(i + 2, len(labels), 2)]
    # an edge's two lines belong together; no line of one edge may cover a line of another
    assert not [(i, j) for i, j in pairs for a in labels[i:i + 2] for b in labels[j:j + 2] if boxes_overlap(a, b)]
    page.screenshot(path=str(artifacts / "ui-polish-services.png"))
    map_colours = {s: page.locator(f".svcmap .node[data-service={s}] rect").nth(1).get_attribute("fill")
                   for s in ("gateway", "scheduler", "billing", "inventory")}
    assert len(set(map_colours.values())) == 4

    # ... and keeps it on the home page (met there in another order) and in a trace.
    page.goto(tenant.link("/"))
    page.wait_for_selector(f".env-panel[data-env={tenant.env}] tr[data-dataset=inventory]")
    for s, colour in map_colours.items():
        home = page.locator(f".env-panel[data-env={tenant.env}] tr[data-dataset={s}] .swatch").first
        assert home.evaluate("(e, c) => { const d = document.createElement('i'); d.style.color = c; document.body.append(d);"
                             " const same = getComputedStyle(d).color === getComputedStyle(e).backgroundColor; d.remove();"
                             " return same; }", colour), s

    trace_id = next(x["trace.trace_id"] for x in spans if x["service.name"] == "scheduler")
    page.goto(tenant.link(f"/trace/{trace_id}"))
    page.wait_for_selector("body[data-rendered=trace]")
    toolbar = page.locator("#jump-root")
    finder = page.locator("#trace-search")
    assert toolbar.is_visible() and finder.is_visible()
    page.locator("#tab-logs").click()
    assert not toolbar.is_visible() and not finder.is_visible()
    page.locator("#tab-spans").click()
    assert toolbar.is_visible() and finder.is_visible()

    # The heatmap: round tick values, a colour key, and a log scale one click away.
    spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "time_range": 3600}
    page.goto(tenant.link("/query", dataset="gateway", q=json.dumps(spec)))
    page.wait_for_selector(".chart.heatmap canvas")
    linear = [float(v) for v in page.locator(".chart.heatmap canvas").get_attribute("data-y-ticks").split(",")]
    assert len(linear) >= 3 and round_steps(linear), linear
    legend = page.locator(".chart.heatmap .heat-legend")
    busiest = page.locator(".chart.heatmap").get_attribute("data-max")  # the fullest cell's count
    assert int(busiest) >= 1 and legend.get_attribute("data-max") == busiest
    assert "events per cell: 1" in legend.inner_text() and f"{busiest} (colour on a log scale)" in legend.inner_text()
    page.locator(".chart.heatmap .log-scale").check()
    page.wait_for_selector(".chart.heatmap[data-scale=log]")
    assert json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"][0])["heatmap_scale"] == "log"
    logs = [float(v) for v in page.locator(".chart.heatmap canvas").get_attribute("data-y-ticks").split(",")]
    assert logs == [1, 2, 5, 10, 20, 50, 100], logs  # gateway jobs take 1 or 100 ms
    page.screenshot(path=str(artifacts / "ui-polish-heatmap-log.png"))


def spike(now: int) -> tuple[list[dict[str, Any]], int, int]:
    """120 quick requests from six users over four routes, and a burst of 30 GETs of messages by user "londo"."""
    routes = ["/api/activities/home", "/api/messages/{id}", "/api/profile", "/api/search"]
    spans = [{"service.name": "backend-flask", "name": "request", "root": True, "idx": i,
              "start_ns": (now - 1800 + i * 12) * 1_000_000_000, "duration_ms": 20.0,
              "attrs": {"app.user_id": f"user{i % 6}", "http.route": routes[i % 4], "http.method": "GET" if i % 2 else "POST"}}
             for i in range(120)]
    burst_start = (now - 1200) // 60 * 60 + 1
    spans += [{"service.name": "backend-flask", "name": "request", "root": True, "idx": 1000 + j,
               "start_ns": (burst_start + j * 4) * 1_000_000_000, "duration_ms": 20.0,
               "attrs": {"app.user_id": "londo", "http.route": routes[1], "http.method": "GET"}} for j in range(30)]
    return spans, burst_start - 1, burst_start + 119


def test_dragging_across_a_lines_points_explains_them_with_bubbleup(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    spans, burst_from, burst_to = spike(int(time.time()))
    _send(apiary, spans)
    spec = {"calculations": [{"op": "COUNT"}], "breakdowns": ["http.method"], "time_range": 3600, "granularity": 60}
    page.goto(tenant.link("/query", dataset="backend-flask", q=json.dumps(spec)))
    page.wait_for_function("document.querySelector('table.summary td[data-calc=COUNT]')?.textContent === '90'")
    svg = page.locator(".line-chart svg").first
    d = {k: float(svg.get_attribute(f"data-{k}")) for k in ("plot-left", "plot-top", "plot-width", "plot-height", "start", "end", "y-max")}
    box = svg.bounding_box()
    x = lambda s: box["x"] + d["plot-left"] + (s * 1000 - d["start"]) / (d["end"] - d["start"]) * d["plot-width"]  # noqa: E731
    peak_y = box["y"] + d["plot-top"] + d["plot-height"] * (1 - 16 / d["y-max"])  # the GET line in the burst's minutes
    page.mouse.move(x(burst_from + 10), peak_y)
    page.mouse.down()
    page.mouse.move(x(burst_to - 10), peak_y, steps=4)
    page.mouse.up()
    page.wait_for_selector(".bubbleup[data-state=done] .bu-column")
    ranked = page.locator(".bu-column").evaluate_all("cs => cs.map(c => c.dataset.column)")
    assert ranked[:2] == ["app.user_id", "http.route"], ranked
    assert "of GET" in page.locator(".bubbleup").inner_text()
    assert "http.method" not in ranked  # the line's own group defines the selection
    page.wait_for_selector(".traces, table.traces")
    page.screenshot(path=str(artifacts / "ui-bubbleup-points.png"), full_page=True)
    page.locator(".bu-column[data-column='app.user_id'] tr[data-value=londo] button.bu-where").click()
    page.wait_for_function("new URL(location.href).searchParams.get('q').includes('londo')")
    page.wait_for_function("document.querySelector('table.summary td[data-calc=COUNT]')?.textContent === '30'")
