"""The ``pattern`` command of Logs Insights: events clustered by their shared text, in SQL on either store.

AWS documents what ``pattern`` answers (CWL_QuerySyntax-Pattern): one row per
pattern, with ``@pattern`` (the shared text, its varying parts shown as
``<*>``), ``@ratio`` (the share of the events given to ``pattern`` that
match it), ``@sampleCount`` (how many match) and ``@severityLabel`` (the
level of its lines: Error, Warning, Info or Debug). AWS finds patterns with
machine learning; Apiary finds them by rule, so that the same events give the
same patterns on DuckDB and on ClickHouse and the work stays one GROUP BY in
the database: a dynamic token is a run of word characters (letters, digits,
``_ . : + -``) holding at least one digit. That covers what AWS's own
examples vary on (timestamps, request ids, durations, addresses, counts):
``[INFO] Request time: 327 ms`` gives ``[INFO] Request time: <*> ms``. Then
shapes one word apart merge (``User alice logged in``, ``User bob logged in``
give ``User <*> logged in``), a second GROUP BY over the shapes, not the events.
"""

from __future__ import annotations

from typing import Any

from apiary.query.dialects.logs import LogDialect
from apiary.query.insights_expr import Expr

#: The placeholder AWS prints for a dynamic token.
PLACEHOLDER = "<*>"
#: A run of token characters with a digit in it; `/` and `=` end a run, so ``/users/42`` keeps ``/users/``.
DYNAMIC_TOKEN = r"[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*"
#: A word that may vary between the lines of one pattern: letters only, one of them lower case (so level words
#: such as INFO, and HTTP methods, stay); patterns of MIN_TOKENS tokens or more that differ in one such word merge.
WORD = "[A-Za-z]*[a-z][A-Za-z]*"
MIN_TOKENS = 3
#: The result columns, in the order AWS lists them.
COLUMNS = ("@pattern", "@ratio", "@sampleCount", "@severityLabel")
#: What `pattern | diff` adds: the pattern's count in the period compared with, and the change since then.
#: AWS's reference does not name diff's fields; these names are Apiary's (docs/compatibility/logs.md).
DIFF_COLUMNS = ("@previousSampleCount", "@sampleCountChange")
#: Severity label -> the level words that give it: written in capitals (``[ERROR]``, ``WARN:``), or as the
#: value of a level key (``"level": "error"``, ``level=warn``). First match wins, most severe first.
_LEVELS = (("Error", "FATAL|CRITICAL|ERROR|ERR"), ("Warning", "WARNING|WARN"), ("Info", "INFO|NOTICE"),
           ("Debug", "DEBUG|TRACE"))


def masked(d: LogDialect, line: Expr) -> Expr:
    """``line`` with every dynamic token replaced by the placeholder."""
    sql, params = d.regex_replace_all(line.sql, "?", "?"), line.params + [DYNAMIC_TOKEN, PLACEHOLDER]
    return Expr(sql, params, "str")


def _level_regex(words: str) -> str:
    return rf"(\b({words})\b)|((?i)\blevel[\"']?\s*[:=]\s*[\"']?({words})\b)"


def severity(d: LogDialect, pattern: str, otel_severity: str | None) -> tuple[str, list[Any]]:
    """The label of a pattern (a SQL column of pattern text), from its level words, else from the OTel
    severity of its events (``otel_severity``, an aggregate already), else none."""
    whens: list[str] = []
    params: list[Any] = []
    for label, words in _LEVELS:
        whens.append(f"WHEN {d.regex_match(pattern, '?')} THEN ?")
        params += [_level_regex(words), label]
    if otel_severity is not None:
        for label, words in _LEVELS:
            whens.append(f"WHEN {d.regex_match(otel_severity, '?')} THEN ?")
            params += [f"^(?i)({words})", label]
    return f"CASE {' '.join(whens)} END", params
