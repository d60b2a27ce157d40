"""What ``pattern ... | anomaly`` adds to each pattern: the kind of anomaly, by rule, on either store.

AWS's page (CWL_QuerySyntax-Anomaly) names five kinds: pattern frequency, new
pattern, token variation, numerical token and HTTP error code anomalies, found
by machine learning against a learnt baseline. Apiary's baseline is the window
just before the query's, as long, and each kind is a rule written here, so that
the same events give the same anomalies on DuckDB and on ClickHouse:

- *New pattern*: a pattern with no event in a baseline that holds events.
- *HTTP error code*: a token position of a pattern whose text names ``HTTP`` or
  ``status`` and whose values are all status codes (100-599): the share of 4xx
  and 5xx among its lines rose by `HTTP_ERROR_SHARE_RISE` or more.
- *Numerical token*: a position whose baseline values are all numbers, at least
  `MIN_NUMERIC_BASELINE` of them, some repeated (values that never repeat are
  identifiers or counters, not measurements): a value in the window lies outside
  their range and more than `DEVIATIONS` standard deviations from their mean
  (outside the range too, so that rounding in the spread of equal values never counts).
- *Token variation*: a position whose baseline values are not all numbers and
  at most `ENUMERATION_LIMIT` distinct ones (an enumeration, as AWS's
  ``PatternToken.enumerations``): the window has a value the baseline never had.
- *Pattern frequency*: the pattern's count moved by `FREQUENCY_FACTOR` either way.

A token position is the place of a number-bearing token (`insights_pattern.DYNAMIC_TOKEN`)
among those of its line, counted from 1, the first `MAX_TOKENS` of them; a word that
`pattern` merged into ``<*>`` is not one. Token statistics are kept per shape (the
line with its number-bearing tokens masked), before shapes one word apart merge
into one pattern. When several rules hold, the first in the order above wins, and
among token positions the first.
"""

from __future__ import annotations

from typing import Any

from apiary.query.dialects.logs import LogDialect
from apiary.query.insights_expr import Expr
from apiary.query.insights_pattern import DYNAMIC_TOKEN

#: What `pattern | anomaly` adds (AWS's page keeps the pattern's fields and "adds anomaly detection results"
#: without naming them; these names are Apiary's, docs/compatibility/logs.md): the kind of anomaly, its priority,
#: a sentence saying what changed, and the pattern's count in the baseline.
ANOMALY_COLUMNS = ("@anomalyType", "@priority", "@description", "@baselineSampleCount")
NEW_PATTERN, FREQUENCY = "New pattern", "Pattern frequency"
HTTP_CODE, NUMERICAL, TOKEN_VARIATION = "HTTP error code", "Numerical token", "Token variation"
#: A pattern's count that grew or shrank by this factor against its baseline is a frequency anomaly.
FREQUENCY_FACTOR = 3
#: Token positions looked at per line, from the first.
MAX_TOKENS = 10
#: A position of at most this many distinct baseline values is an enumeration: a new value there is a variation.
ENUMERATION_LIMIT = 10
#: A numerical token needs this many baseline values before its spread means anything.
MIN_NUMERIC_BASELINE = 5
#: How many standard deviations from the baseline's mean a number may lie.
DEVIATIONS = 3
#: The rise in the share of 4xx/5xx codes (0.10: ten percentage points) that makes an HTTP error code anomaly.
HTTP_ERROR_SHARE_RISE = 0.1
NUMBER = r"^[+-]?[0-9]+([.][0-9]+)?$"
HTTP_STATUS = r"^[1-5][0-9][0-9]$"
#: A pattern whose text says this holds HTTP status codes where its values look like them.
HTTP_WORDS = r"(?i)(http|status)"
#: A token anomaly travels as one text: its rank (which kind), its position on three digits, then its description.
_RANKS = (("1", HTTP_CODE), ("2", NUMERICAL), ("3", TOKEN_VARIATION))


def token_values(d: LogDialect, line: Expr) -> Expr:
    """The number-bearing tokens of ``line``, in order, as a list."""
    return Expr(d.regex_extract_all(line.sql, "?"), line.params + [DYNAMIC_TOKEN], "any")


def token_ctes(d: LogDialect, severity: bool) -> list[tuple[str, list[Any]]]:
    """CTE bodies (``{prev}`` for the one before) from the events' shapes ``p``, ``_period``, token lists ``t``
    (and ``sev``) to one row per shape: ``n0`` and ``n1``, its counts in the window and the baseline, ``sv``
    (with ``severity``) and ``tv``, its first token anomaly or NULL. Each step reads only the one before, so that
    ClickHouse, which inlines a CTE wherever it is named, scans the events once."""
    sev, sv = (", sev", ", max(sev) AS sv") if severity else ("", "")
    sv_up = ", max(sv) AS sv" if severity else ""
    bodies: list[tuple[str, list[Any]]] = []
    # one row per event and token position (position 0, value '', for an event without tokens); every event of a
    # shape has a row at position 1, or else 0: those rows count the events
    bodies.append((f"SELECT p, _period{sev}, {d.numbered_items('t', MAX_TOKENS)} FROM {{prev}}", []))
    # each distinct value of a position, counted in both windows, with its number (x) and whether it is a status (h)
    x = f"CASE WHEN {d.regex_match('v', '?')} THEN {d.to_double('v')} END"
    h = f"CASE WHEN {d.regex_match('v', '?')} THEN 1 ELSE 0 END"
    bodies.append((f"SELECT p, k, v, sum(CASE WHEN _period = 0 THEN 1 ELSE 0 END) AS n0, "
                   f"sum(CASE WHEN _period = 1 THEN 1 ELSE 0 END) AS n1{sv}, {x} AS x, {h} AS h "
                   f"FROM {{prev}} GROUP BY p, k, v", [NUMBER, HTTP_STATUS]))
    # each position: its counts, distinct baseline values (bd), baseline values not numbers (bt), whether all are
    # status codes (hh), error codes in each window (e0, e1), the baseline's sums (sx, sxx) and extremes (blo, bhi),
    # the window's extremes (lo, hi) and its values new to the baseline (nv, the least of them nv1)
    bodies.append((f"SELECT p, k, sum(n0) AS w, sum(n1) AS b{sv_up}, sum(CASE WHEN n1 > 0 THEN 1 ELSE 0 END) AS bd, "
                   "sum(CASE WHEN n1 > 0 AND x IS NULL THEN 1 ELSE 0 END) AS bt, min(h) AS hh, "
                   "sum(CASE WHEN h = 1 AND x >= 400 THEN n0 ELSE 0 END) AS e0, "
                   "sum(CASE WHEN h = 1 AND x >= 400 THEN n1 ELSE 0 END) AS e1, "
                   "sum(n1 * x) AS sx, sum(n1 * x * x) AS sxx, min(CASE WHEN n1 > 0 THEN x END) AS blo, "
                   "max(CASE WHEN n1 > 0 THEN x END) AS bhi, min(CASE WHEN n0 > 0 THEN x END) AS lo, "
                   "max(CASE WHEN n0 > 0 THEN x END) AS hi, sum(CASE WHEN n0 > 0 AND n1 = 0 THEN 1 ELSE 0 END) AS nv, "
                   "min(CASE WHEN n0 > 0 AND n1 = 0 THEN v END) AS nv1 FROM {prev} GROUP BY p, k", []))
    verdict, params = _verdict(d)
    bodies.append((f"SELECT p, k, w, b{', sv' if severity else ''}, {verdict} AS tv FROM {{prev}}", params))
    bodies.append((f"SELECT p, sum(CASE WHEN k <= 1 THEN w ELSE 0 END) AS n0, sum(CASE WHEN k <= 1 THEN b ELSE 0 END) "
                   f"AS n1{sv_up}, min(tv) AS tv FROM {{prev}} GROUP BY p", []))
    return bodies


def _verdict(d: LogDialect) -> tuple[str, list[Any]]:
    """SQL for one position's token anomaly (rank, position, description), or NULL, and its parameters."""
    t = d.to_text
    at = f"lpad({t('k')}, 3, '0')"
    mean = "(sx / b)"
    sd = f"sqrt(greatest(sxx / b - {mean} * {mean}, 0))"
    http = (f"concat('1', {at}, 'token ', {t('k')}, ' (an HTTP status code) was 4xx or 5xx in ', {t('e0')}, ' of ', "
            f"{t('w')}, ' lines in the query''s time range, against ', {t('e1')}, ' of ', {t('b')}, "
            "' in the baseline')")
    numeric = (f"concat('2', {at}, 'token ', {t('k')}, ' ranged from ', {d.number_text('lo')}, ' to ', "
               f"{d.number_text('hi')}, ' in the query''s time range, beyond {DEVIATIONS} standard deviations of the "
               f"baseline''s ', {t('b')}, ' values (mean ', {d.fixed_text(mean, 2)}, ', standard deviation ', "
               f"{d.fixed_text(sd, 2)}, ')')")
    variation = (f"concat('3', {at}, 'token ', {t('k')}, ' took ', {t('nv')}, ' value(s) the baseline never had, "
                 f"such as ', nv1, ', where the baseline had ', {t('bd')}, ' distinct value(s)')")
    sql = (f"CASE WHEN k = 0 OR b = 0 OR w = 0 THEN NULL "
           f"WHEN hh = 1 AND {d.regex_match('p', '?')} THEN "
           f"CASE WHEN e0 * b - e1 * w >= ? * w * b AND e0 > 0 THEN {http} END "
           f"WHEN bt = 0 THEN CASE WHEN b >= ? AND bd < b "
           f"AND (hi > bhi AND hi - {mean} > ? * {sd} OR lo < blo AND {mean} - lo > ? * {sd}) THEN {numeric} END "
           f"WHEN bd <= ? AND nv > 0 THEN {variation} END")
    return sql, [HTTP_WORDS, HTTP_ERROR_SHARE_RISE, MIN_NUMERIC_BASELINE, DEVIATIONS, DEVIATIONS, ENUMERATION_LIMIT]


def anomaly(d: LogDialect, count: str, baseline: str, label: str, token: str) -> tuple[list[str], list[Any]]:
    """SQL for `ANOMALY_COLUMNS` of one pattern row, from its ``count`` in the query's window, its ``baseline``
    count (the window just before, as long), its severity ``label`` and ``token``, its first token anomaly
    (`token_ctes`). With no events at all in the baseline there is nothing to compare with, and no anomaly.
    Priority follows the pattern's severity."""
    has_baseline = f"sum({baseline}) OVER () > 0"
    rank = f"substring({token}, 1, 1)"
    kind = (f"CASE WHEN NOT ({has_baseline}) THEN NULL WHEN {baseline} = 0 THEN ? "
            f"WHEN {token} IS NOT NULL THEN CASE {' '.join(f'WHEN {rank} = ? THEN ?' for _ in _RANKS)} END "
            f"WHEN {count} >= ? * {baseline} OR {count} * ? <= {baseline} THEN ? END")
    kind_params: list[Any] = [NEW_PATTERN, *[v for pair in _RANKS for v in pair], FREQUENCY_FACTOR, FREQUENCY_FACTOR,
                              FREQUENCY]
    priority = f"CASE WHEN {label} = 'Error' THEN 'HIGH' WHEN {label} = 'Warning' THEN 'MEDIUM' ELSE 'LOW' END"
    description = (f"CASE WHEN {baseline} > 0 AND {token} IS NOT NULL THEN substring({token}, 5) "
                   f"ELSE concat(?, {d.to_text(count)}, ?, {d.to_text(baseline)}, ?) END")
    description_params = ["seen ", " times in the query's time range, ", " times in the baseline just before it"]
    return [kind, priority, description, baseline], kind_params + description_params
