"""Where X-Ray's code may live: SQL only on the query and store side, and the query side never imports a receiver.

The X-Ray reads used to compile filter expressions to DuckDB SQL inside the receiver, so they failed (500) on the
ClickHouse store; these checks keep the one road to SQL.
"""

from __future__ import annotations

import re
from pathlib import Path

import apiary

ROOT = Path(apiary.__file__).parent
SQL = re.compile(r"""["'][^"']*\b(SELECT|INSERT INTO|CREATE TABLE|DELETE FROM|UPDATE \w+ SET|GROUP BY)\b""")


def test_no_sql_text_under_the_receivers() -> None:
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "receivers").rglob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1) if SQL.search(line)]
    assert found == []


def test_the_xray_query_side_does_not_import_a_receiver() -> None:
    found = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "query").rglob("*xray*.py"))
             if re.search(r"^\s*(from|import) apiary\.receivers", p.read_text(), re.M)]
    assert found == []
