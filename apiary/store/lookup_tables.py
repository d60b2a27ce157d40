"""CloudWatch Logs lookup tables (CreateLookupTable ...), kept per environment beside the log events.

A lookup table is CSV reference data that the Insights ``lookup`` command
joins to log events. Each store keeps two tables in the log store's
database, so a query joins them in SQL without leaving the store:

* ``lookup_tables``: one row per table (its name, description, column names
  as a JSON list, row count, size, last update, the CSV as uploaded, for
  GetLookupTable, and its tags as one JSON object, so they go with it);
* ``lookup_rows``: one row per CSV record, its values as a JSON object keyed
  by column name, numbered in file order (``row_no``) so that a key that
  appears twice resolves to its first record, on DuckDB and ClickHouse alike.

Replacing a table deletes its rows and writes the new ones in the log
store's commit group (`LogStoreBase`), like any other catalogue change.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import pyarrow as pa

#: AWS's limits (CreateLookupTable): 10 MB of CSV, 100 tables per account and Region.
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_TABLES = 100

#: The schema of ``lookup_tables`` and ``lookup_rows``, as each store writes them.
TABLES_SCHEMA = pa.schema([("_env", pa.string()), ("name", pa.string()), ("description", pa.string()),
                           ("fields", pa.string()), ("records", pa.int64()), ("size_bytes", pa.int64()),
                           ("updated_ms", pa.int64()), ("body", pa.string()), ("tags", pa.string())])
ROWS_SCHEMA = pa.schema([("_env", pa.string()), ("lookup_table", pa.string()), ("row_no", pa.int64()),
                         ("row", pa.string())])


class BadTable(ValueError):
    """The CSV cannot be a lookup table; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class LookupTable:
    name: str
    description: str
    fields: tuple[str, ...]
    records: int
    size_bytes: int
    updated_ms: int
    #: TagResource's tags (CreateLookupTable's ``tags``), kept whole by each change.
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    """A table's CSV, checked: its header and its records as {column: value}."""

    fields: tuple[str, ...]
    rows: list[dict[str, str]]
    size_bytes: int


def parse_csv(body: str) -> Parsed:
    """The header row names the columns (each once, none empty); every record has as many values as the header."""
    size = len(body.encode("utf-8"))  # a lone surrogate never gets here: the request's JSON refused it
    if size > MAX_BODY_BYTES:
        raise BadTable(f"tableBody is {size} bytes; a lookup table holds at most {MAX_BODY_BYTES} bytes of CSV")
    try:
        lines = list(csv.reader(io.StringIO(body, newline="")))
    except csv.Error as exc:
        raise BadTable(f"tableBody is not valid CSV: {exc}") from None
    lines = [line for line in lines if line]  # blank lines hold no record
    if not lines:
        raise BadTable("tableBody needs a header row with the column names")
    header = tuple(h.strip() for h in lines[0])
    if any(not h for h in header):
        raise BadTable("every column of the header row needs a name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise BadTable(f"the header row names column {dupes[0]!r} twice")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise BadTable(f"line {n} of tableBody has {len(line)} values; the header row has {len(header)} columns")
        rows.append(dict(zip(header, line)))
    return Parsed(header, rows, size)


def to_csv(fields: list[str], rows: list[dict[str, str]]) -> str:
    """Records as CSV text with a header row (a table made from a query's results)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow([r.get(f, "") for f in fields])
    return out.getvalue()


def table_row(env: str, t: LookupTable, body: str) -> dict[str, Any]:
    return {"_env": env, "name": t.name, "description": t.description, "fields": json.dumps(list(t.fields)),
            "records": t.records, "size_bytes": t.size_bytes, "updated_ms": t.updated_ms, "body": body,
            "tags": json.dumps(dict(t.tags), sort_keys=True, ensure_ascii=False)}


def record_rows(env: str, name: str, rows: list[dict[str, str]]) -> pa.Table:
    return pa.Table.from_pylist([{"_env": env, "lookup_table": name, "row_no": i, "row": json.dumps(r)}
                                 for i, r in enumerate(rows)], schema=ROWS_SCHEMA)


def from_row(r: dict[str, Any]) -> LookupTable:
    return LookupTable(r["name"], r["description"] or "", tuple(json.loads(r["fields"])), int(r["records"]),
                       int(r["size_bytes"]), int(r["updated_ms"]), dict(json.loads(r.get("tags") or "{}")))
