"""The metrics view in a real headless Chromium: a service's instruments, a chart each, an exemplar that opens its trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metrics.conftest import load
from tests.ui.conftest import UITenant

pytestmark = pytest.mark.timeout(120)


def test_metrics_view_lists_instruments_draws_charts_and_an_exemplar_opens_its_trace(
        tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    known = load(tenant)  # type: ignore[arg-type]  # what it needs of a server: url and key
    page.goto(tenant.link("/"))  # the home page counts spans: the one span, not the metric rows beside it
    row = f".env-panel[data-env={tenant.env}] tr[data-dataset=checkout]"
    page.wait_for_selector(row)
    assert page.locator(f"{row} .spans").inner_text() == "1"

    page.goto(tenant.link("/metrics", dataset="checkout"))
    page.wait_for_selector("body[data-rendered=metrics]")
    rows = {r.get_attribute("data-metric"): [c.inner_text() for c in r.locator("td").all()]
            for r in page.locator("table.instruments tbody tr").all()}
    assert rows["orders"][1:4] == ["counter", "{order}", "cumulative"]
    assert rows["orders"][4] == "orders placed"
    assert rows["in_flight"][1] == "up-down counter"
    assert rows["latency"][1:3] == ["histogram", "ms"]
    assert rows["temperature"][1] == "gauge"

    latency = page.locator(".metric-chart[data-metric=latency]")
    assert "P50 / P90 / P99" in latency.locator(".title").inner_text()
    drawn = [p.get_attribute("d") for p in latency.locator("path.series").all()]
    assert len(drawn) == 3 and all(d and d.startswith("M") for d in drawn)
    assert page.locator(".metric-chart[data-metric=orders] .title").inner_text().endswith("rate per second")
    for metric in ("latency", "orders", "temperature", "in_flight"):  # something visible: a line, or a marked lone point
        chart = page.locator(f".metric-chart[data-metric={metric}]")
        assert chart.locator("circle.lone").count() or any("L" in (p.get_attribute("d") or "") for p in chart.locator("path.series").all())
    page.screenshot(path=str(artifacts / "ui-metrics.png"), full_page=True)

    page.select_option("select[name=split]", "route")
    page.wait_for_selector("body[data-rendered=metrics]")
    labels = {p.get_attribute("data-label") for p in page.locator(".metric-chart[data-metric=orders] path.series").all()}
    assert labels == {"/a", "/b"}

    dot = page.locator(".metric-chart[data-metric=latency] circle.exemplar").first
    assert known.trace_id in dot.locator("title").text_content()
    dot.click()
    page.wait_for_selector("body[data-rendered=trace]")
    assert f"/trace/{known.trace_id}" in page.url
    assert "slow checkout" in page.locator(".wf-row .span-name").first.inner_text()
