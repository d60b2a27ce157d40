"""The metadata store's named repositories, told once and run on both metadata stores: SQLite (`MetaStore`) and
ClickHouse (`ClickHouseMeta`, chdb here, a server with APIARY_CLICKHOUSE_URL).

X-Ray sampling rules and statistics, X-Ray groups and the query book reach their tables only through these
methods; no module outside ``apiary/store`` hands the metadata store SQL, and neither store offers a way to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from apiary.store.meta import MetaStore
from tests.clickhouse.conftest import clickhouse_url, drop_database


@pytest.fixture(params=["sqlite", "clickhouse"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    local = MetaStore(tmp_path / "meta.sqlite")
    if request.param == "sqlite":
        yield local
        return
    from apiary.store.clickhouse import ClickHouseMeta, connect

    url = clickhouse_url(tmp_path)
    client = connect(url)
    try:
        yield ClickHouseMeta(client, local)
    finally:
        client.close()
        drop_database(url)


def test_no_raw_sql_on_the_public_surface(meta: Any) -> None:
    public = {name for name in dir(meta) if not name.startswith("_")}
    assert not public & {"execute", "executescript", "executemany"}
    assert {"sampling_rules", "sampling_stats", "xray_groups", "queries"} <= public


def test_sampling_rules_are_kept_per_environment(meta: Any) -> None:
    rules = meta.sampling_rules
    rules.add_if_missing("a", "Default", '{"RuleName": "Default"}', 1.0)
    rules.add_if_missing("a", "Default", '{"RuleName": "changed"}', 2.0)  # already there: untouched
    assert rules.add("a", "checkout", '{"RuleName": "checkout", "FixedRate": 0.1}', 3.0)
    assert not rules.add("a", "checkout", '{"RuleName": "checkout", "FixedRate": 0.9}', 4.0)
    rules.replace("a", "checkout", '{"RuleName": "checkout", "FixedRate": 0.5}', 5.0)
    assert sorted(rules.all("a")) == [('{"RuleName": "Default"}', 1.0, 1.0),
                                      ('{"RuleName": "checkout", "FixedRate": 0.5}', 3.0, 5.0)]
    assert rules.all("b") == []
    assert not rules.remove("b", "checkout")
    assert rules.remove("a", "checkout")
    assert [r[0] for r in rules.all("a")] == ['{"RuleName": "Default"}']


def test_sampling_statistics_are_summed_per_rule_since_a_time(meta: Any) -> None:
    stats = meta.sampling_stats
    stats.add([("a", "checkout", "c1", 10.0, 5, 1, 0), ("a", "checkout", "c2", 20.0, 7, 2, 1),
               ("a", "Default", "c1", 30.0, 3, 3, 0), ("a", "checkout", "c1", 1.0, 100, 100, 100),
               ("b", "checkout", "c1", 20.0, 9, 9, 9)])
    # rule, last report, requests, borrowed, sampled; the report at t=1 is before the window
    assert stats.totals_since("a", 5.0) == [("Default", 30.0, 3, 0, 3), ("checkout", 20.0, 12, 1, 3)]
    assert stats.totals_since("c", 0.0) == []


def test_xray_groups(meta: Any) -> None:
    groups = meta.xray_groups
    assert groups.add("a", "slow", 'responsetime > 5', False, False)
    assert groups.add("a", "errors", "error", True, False)
    assert not groups.add("a", "slow", "fault", True, True)
    groups.replace("a", "slow", "responsetime > 2", True, True)
    assert groups.all("a") == [("errors", "error", True, False), ("slow", "responsetime > 2", True, True)]
    assert groups.all("b") == []
    assert groups.remove("a", "errors") and not groups.remove("a", "errors")
    assert [g[0] for g in groups.all("a")] == ["slow"]


def test_query_specs_results_history_and_saved_queries(meta: Any) -> None:
    q = meta.queries
    q.add_spec("a", "q1", "api", '{"calculations":[]}', 1.0)
    q.add_spec("a", "q1", "api", '{"calculations":[]}', 2.0)  # the same spec again: kept once
    assert q.spec("a", "q1") == ("q1", "api", '{"calculations":[]}')
    assert q.spec("b", "q1") is None
    for i in range(5):
        q.add_result("a", f"r{i}", "api", "q1", f'{{"n": {i}}}', float(i), keep=3)
    assert q.result("a", "r4") == ("api", "q1", '{"n": 4}')
    assert q.result("a", "r1") is None, "only the newest 3 results are kept"
    q.add_run("a", "api", "q1", "{}", 1.0, 12.5, 3, None)
    q.add_run("a", "api", "q1", "{}", 2.0, 0.0, None, "column missing")
    assert [(r[4], r[6], r[7]) for r in q.runs("a", 10)] == [(2.0, None, "column missing"), (1.0, 3, None)]
    assert len(q.runs("a", 1)) == 1 and q.runs("b", 10) == []
    q.save("a", "slow", "api", '{"a":1}', 1.0)
    q.save("a", "slow", "web", '{"a":2}', 2.0)
    q.save("a", "busy", "api", "{}", 3.0)
    assert q.saved("a") == [("busy", "api", "{}", 3.0, 3.0), ("slow", "web", '{"a":2}', 1.0, 2.0)]
    assert q.saved("a", "slow") == [("slow", "web", '{"a":2}', 1.0, 2.0)]
    assert q.remove_saved("a", "slow") and not q.remove_saved("a", "slow")
    assert q.saved("b") == []
