"""The lookup-table operations of CloudWatch Logs (botocore's ``logs`` model): Create, Describe, Get, Update, Delete.

A table is CSV reference data for the Insights ``lookup`` command, kept per
environment in the log store (`apiary.store.lookup_tables`). Its ARN is
``arn:aws:logs:<region>:000000000000:lookup-table:<name>``. A table is made
from ``tableBody`` (CSV with a header row) or from ``queryId``, the results
of a finished or cancelled Insights query of the same environment.
Creating, replacing and deleting a table change configuration; reading one
is a read: an ingest-only key can do neither (`apiary.permissions`).
A table's tags (``tags`` here, then TagResource and its kin on the table's
ARN, `apiary.receivers.cloudwatch.tags`) stay with it through UpdateLookupTable
and go with it. Apiary has no KMS, so a request naming a KMS key is refused by
name rather than half-honoured.
"""

from __future__ import annotations

import re
from typing import Any

from apiary.permissions import Permission, needs
from apiary.receivers.cloudwatch.errors import AwsError, invalid
from apiary.receivers.cloudwatch.operations import ACCOUNT, Call, _page, listing, log_group_tags
from apiary.store.lookup_tables import MAX_TABLES, BadTable, LookupTable, Parsed, parse_csv, to_csv
from apiary.store.log_store import now_ms

_NAME = re.compile(r"^[a-zA-Z0-9_]{1,256}$")
MAX_DESCRIPTION = 1024
PAGE, MAX_PAGE = 50, 100


def _arn(call: Call, name: str) -> str:
    return f"arn:aws:logs:{call.region}:{ACCOUNT}:lookup-table:{name}"


def _name(call: Call) -> str:
    name = call.str("lookupTableName", required=True) or ""
    if not _NAME.match(name):
        raise invalid(f"1 validation error detected: Value '{name}' at 'lookupTableName' failed to satisfy "
                      "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$")
    return name


def _existing(call: Call) -> LookupTable:
    arn = call.str("lookupTableArn", required=True) or ""
    name = arn.rsplit(":lookup-table:", 1)[-1] if ":lookup-table:" in arn else ""
    table = call.logs.lookup_table(call.env, name) if name else None
    if table is None:
        raise AwsError("ResourceNotFoundException", f"The specified lookup table does not exist: {arn}")
    return table


def _description(call: Call, default: str = "") -> str:
    text = call.str("description")
    if text is None:
        return default
    if len(text) > MAX_DESCRIPTION:
        raise invalid(f"1 validation error detected: Value at 'description' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {MAX_DESCRIPTION}")
    return text


def _refuse_unsupported(call: Call) -> None:
    if call.str("kmsKeyId"):
        raise invalid("Apiary does not encrypt lookup tables with KMS keys: leave kmsKeyId out")


def _content(call: Call) -> tuple[str, Parsed]:
    """The new CSV and its records, from ``tableBody`` or from ``queryId`` (exactly one of them)."""
    body, query_id = call.str("tableBody"), call.str("queryId")
    if (body is None) == (query_id is None):
        raise invalid("Specify either tableBody or queryId, but not both")
    if query_id is not None:
        q = call.queries.get(call.env, query_id)
        if q is None:
            raise AwsError("ResourceNotFoundException", f"Query does not exist: {query_id}")
        if q.status not in ("Complete", "Cancelled"):
            raise invalid(f"Query {query_id} is {q.status}: a lookup table is made from a completed or "
                          f"cancelled query")
        rows = [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in q.results]
        fields = list(dict.fromkeys(k for r in rows for k in r))
        if not fields:
            raise invalid(f"Query {query_id} returned no fields to make a lookup table from")
        body = to_csv(fields, rows)
    try:
        return body, parse_csv(body or "")
    except BadTable as exc:
        raise invalid(str(exc)) from None


def _summary(call: Call, t: LookupTable) -> dict[str, Any]:
    return {"lookupTableArn": _arn(call, t.name), "lookupTableName": t.name, "description": t.description,
            "tableFields": list(t.fields), "recordsCount": t.records, "sizeBytes": t.size_bytes,
            "lastUpdatedTime": t.updated_ms}


@needs(Permission.CONFIGURE)
async def create_lookup_table(call: Call) -> dict[str, Any]:
    name = _name(call)
    _refuse_unsupported(call)
    tags = log_group_tags(call.params["tags"], "tags") if call.params.get("tags") is not None else {}
    description = _description(call)
    body, parsed = _content(call)
    if call.logs.lookup_table(call.env, name) is not None:
        raise AwsError("ResourceAlreadyExistsException", f"The specified lookup table already exists: {name}")
    if len(call.logs.lookup_tables(call.env)) >= MAX_TABLES:
        raise AwsError("LimitExceededException", f"An account can have at most {MAX_TABLES} lookup tables")
    table = LookupTable(name, description, parsed.fields, len(parsed.rows), parsed.size_bytes, now_ms(), tags)
    await call.logs.put_lookup_table(call.env, table, body, parsed)
    return {"lookupTableArn": _arn(call, name), "createdAt": table.updated_ms}


@needs(Permission.CONFIGURE)
async def update_lookup_table(call: Call) -> dict[str, Any]:
    old = _existing(call)
    _refuse_unsupported(call)
    description = _description(call, old.description)
    body, parsed = _content(call)
    table = LookupTable(old.name, description, parsed.fields, len(parsed.rows), parsed.size_bytes, now_ms())
    await call.logs.put_lookup_table(call.env, table, body, parsed, keep_tags=True)
    return {"lookupTableArn": _arn(call, old.name), "lastUpdatedTime": table.updated_ms}


@needs(Permission.CONFIGURE)
async def delete_lookup_table(call: Call) -> dict[str, Any]:
    table = _existing(call)
    await call.logs.delete_lookup_table(call.env, table.name)
    return {}


@needs(Permission.READ)
async def describe_lookup_tables(call: Call) -> dict[str, Any]:
    prefix = call.str("lookupTableNamePrefix") or ""
    limit = call.int("maxResults", 1, MAX_PAGE) or PAGE
    page, token = _page(call.logs.lookup_tables(call.env, prefix), lambda t: t.name, call.str("nextToken"), limit)
    return listing("lookupTables", [_summary(call, t) for t in page], token)


@needs(Permission.READ)
async def get_lookup_table(call: Call) -> dict[str, Any]:
    table = _existing(call)
    body = call.logs.lookup_table_body(call.env, table.name) or ""
    return {"lookupTableArn": _arn(call, table.name), "lookupTableName": table.name,
            "description": table.description, "tableBody": body, "sizeBytes": table.size_bytes,
            "lastUpdatedTime": table.updated_ms}


OPERATIONS = {
    "CreateLookupTable": create_lookup_table,
    "DescribeLookupTables": describe_lookup_tables,
    "GetLookupTable": get_lookup_table,
    "UpdateLookupTable": update_lookup_table,
    "DeleteLookupTable": delete_lookup_table,
}
