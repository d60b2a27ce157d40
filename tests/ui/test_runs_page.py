"""The Runs page in a real headless Chromium: two runs recorded with ``apiary run`` through the OTel SDK, one with
40 ms planted in ``db-query``; the page lists both, compares them, and names that span first, coloured slower."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runs.recording import record_pair
from tests.server import ApiaryProcess

pytestmark = pytest.mark.timeout(180)


def test_runs_page_compares_two_runs_and_puts_the_slowed_span_first(apiary: ApiaryProcess, page,  # noqa: ANN001
                                                                    artifacts: Path) -> None:
    record_pair(apiary.url, apiary.key)
    page.goto(apiary.url + "/")
    page.click("#nav a[data-page=runs]")
    page.wait_for_selector("body[data-rendered=runs-compare]")
    assert page.locator("#nav a.active").inner_text() == "Runs"
    assert page.locator(".runs-list tbody tr").evaluate_all("rs => rs.map(r => r.dataset.run)") == ["after", "before"]
    # The newest run is B, the one before it A.
    assert page.locator("#run-a").input_value() == "before" and page.locator("#run-b").input_value() == "after"
    first = page.locator(".runs-compare tbody tr").first
    assert first.get_attribute("data-span") == "backend-flask: db-query"
    change = first.locator("td.change").first
    assert "slower" in change.get_attribute("class").split()
    assert change.inner_text().startswith("+") and "ms" in change.inner_text()
    assert page.locator('.runs-compare tr[data-span="backend-flask: cache-lookup"] .badge').inner_text() == "B only"
    assert page.locator('.runs-compare tr[data-span="backend-flask: legacy-audit"] .badge').inner_text() == "A only"
    assert "cache.hit" in page.locator(".runs-only-b").inner_text()
    assert page.locator('.runs-columns tr[data-column="duration_ms"]').count() == 1
    page.screenshot(path=str(artifacts / "runs-compare.png"), full_page=True)

    # The other way round, by p90, from the form: the same span first, now faster; the URL keeps the choice.
    page.select_option("#run-a", "after")
    page.select_option("#run-b", "before")
    page.select_option("#run-percentile", "p90")
    page.click(".runs-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('.runs-compare th:nth-child(4)')?.textContent === 'p90 A'")
    first = page.locator(".runs-compare tbody tr").first
    assert first.get_attribute("data-span") == "backend-flask: db-query"
    assert "faster" in first.locator("td.change").first.get_attribute("class").split()
    assert "a=after" in page.url and "b=before" in page.url and "percentile=p90" in page.url
