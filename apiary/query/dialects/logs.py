"""How the log and error read paths spell SQL in each store's dialect.

The log languages (CloudWatch filter patterns, Logs Insights), the log
and error stores' own reads and the UI's span overview (``apiary.query.overview``)
are written once, with ``?`` placeholders and
calls on a `LogDialect` wherever DuckDB and ClickHouse spell a function
differently. ``bind`` turns the finished text into what the store's client
takes: DuckDB keeps ``?``; ClickHouse gets typed ``{pN:Type}`` parameters,
bound server-side, so a user's value never becomes SQL text either way.

Both dialects answer alike where the engines differ: a JSON value missing
from a line is NULL (ClickHouse's ``JSON_VALUE`` answers '' and is mapped
back), percentiles interpolate between the closest ranks (``quantile_cont`` /
``quantileExactInclusive``), and time bins start at the Unix epoch.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from apiary.query.dialects.clickhouse import param_type


#: One IPv4 address, each part 0..255 (the anchors are the caller's).
_IPV4 = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
_H = "[0-9a-fA-F]{1,4}"
#: One IPv6 address in any of its compressed spellings (without an embedded IPv4 tail or a zone).
_IPV6 = (f"(({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}|({_H}:){{1,4}}(:{_H}){{1,3}}"
         f"|({_H}:){{1,3}}(:{_H}){{1,4}}|({_H}:){{1,2}}(:{_H}){{1,5}}|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:))")


#: The whitespace JSON allows around a value, as a DuckDB expression.
_JSON_SPACE = "' ' || chr(9) || chr(10) || chr(13)"


class LogDialect:
    """DuckDB's spelling; `ClickHouseLogDialect` overrides what differs. Arguments are SQL fragments."""

    name = "duckdb"

    def contains(self, text: str, needle: str) -> str:
        return f"contains({text}, {needle})"

    def regex_match(self, text: str, pattern: str) -> str:
        return f"regexp_matches({text}, {pattern})"

    def regex_extract(self, text: str, pattern: str, group: int) -> str:
        return f"nullif(regexp_extract({text}, {pattern}, {int(group)}), '')"

    def starts_with_brace(self, text: str) -> str:
        """Whether a line is a JSON object at first sight (CloudWatch's test for a structured line).

        The untrimmed test first: ``ltrim`` copies every line, and almost every JSON line has no leading
        space (a quarter of a discovered field's time on DuckDB, bench/insights.py)."""
        return f"(starts_with({text}, '{{') OR starts_with(ltrim({text}), '{{'))"

    def json_valid(self, text: str) -> str:
        return f"json_valid({text})"

    def json_document(self, text: str) -> str:
        """``text`` where it is a JSON object, else NULL: what `json_text` may then look into. Before the brace,
        the whitespace JSON allows (a tab or a line break too, as ClickHouse's ``JSON_VALUE`` reads it); only a
        line that starts with such a character is trimmed (``ltrim`` copies the line: a plain text line costs a
        tenth of a discovered field's time otherwise, bench/insights.py)."""
        return (f"CASE WHEN (starts_with({text}, '{{') OR (ascii({text}) IN (9, 10, 13, 32) "
                f"AND starts_with(ltrim({text}, {_JSON_SPACE}), '{{'))) AND {self.json_valid(text)} THEN {text} END")

    def json_line(self, from_a_list_index: bool) -> str:
        """The column of the events (``c0``) to look a key of the line's JSON up in: ``_json``, the line where it is
        a JSON object (`json_document`); DuckDB's JSON functions refuse any other text."""
        return "_json"

    def json_text(self, doc: str, path: str) -> str:
        """The value at a JSONPath (``$.a.b``) as text; NULL when missing."""
        return f"json_extract_string({doc}, {path})"

    def in_array(self, array: str, value: str) -> str:
        return f"list_contains({array}, {value})"

    def value_set(self, column: str, source: str) -> str:
        """The values of ``column`` in ``source`` for ``x [NOT] IN (...)``, without NULL: a set holding NULL makes
        ``NOT IN`` answer NULL for every value (Insights' subquery)."""
        return f"SELECT {column} FROM {source} WHERE {column} IS NOT NULL"

    def json_raw(self, doc: str, path: str) -> str:
        """The JSON at a JSONPath, as JSON text (an object or list whole, a string still quoted); NULL when missing."""
        return f"CAST(json_extract({doc}, {path}) AS VARCHAR)"

    def json_items(self, raw: str) -> str:
        """One row per item of the JSON list ``raw`` (as JSON text), a value that is no list as its only item, and
        no row for NULL: a set-returning expression for a SELECT list (Insights' ``unnest``)."""
        return (f"unnest(CASE WHEN {raw} IS NULL THEN CAST([] AS VARCHAR[]) WHEN json_type({raw}) = 'ARRAY' "
                f"THEN CAST(json_extract({raw}, '$[*]') AS VARCHAR[]) ELSE [CAST({raw} AS VARCHAR)] END)")

    def regex_replace_all(self, text: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({text}, {pattern}, {replacement}, 'g')"

    def token_variants(self, text: str, word: str, min_tokens: int) -> str:
        """One row per space-separated token of ``text`` that fully matches the regular expression ``word`` (a
        constant), holding ``text`` with that token replaced by ``<*>`` (none when ``text`` has fewer than
        ``min_tokens`` tokens), and one more row holding '', so that every ``text`` keeps a row. A set-returning
        expression for a SELECT list (`insights_pattern`)."""
        t = f"string_split({text}, ' ')"
        variant = f"array_to_string(list_concat({t}[1:i - 1], ['<*>'], {t}[i + 1:]), ' ')"
        return (f"unnest(list_concat(list_filter(list_transform(range(1, len({t}) + 1), lambda i: CASE WHEN "
                f"len({t}) >= {int(min_tokens)} AND regexp_full_match({t}[i], '{word}') THEN {variant} END), "
                f"lambda x: x IS NOT NULL), ['']))")

    def regex_extract_all(self, text: str, pattern: str) -> str:
        """Every match of ``pattern`` in ``text``, in order, as a list of text."""
        return f"regexp_extract_all({text}, {pattern})"

    def numbered_items(self, array: str, limit: int) -> str:
        """Columns ``k`` and ``v``: one row per item among the first ``limit`` of ``array``, numbered from 1, or
        for an empty one a row (``k`` 0, ``v`` '') so that every input row keeps one. A set-returning SELECT list."""
        items = f"CASE WHEN len({array}) = 0 THEN [''] ELSE {array}[1:{int(limit)}] END"
        numbers = f"CASE WHEN len({array}) = 0 THEN [0] ELSE range(1, least(len({array}), {int(limit)}) + 1) END"
        return f"unnest({numbers}) AS k, unnest({items}) AS v"

    def fixed_text(self, number: str, places: int) -> str:
        """``number`` rounded to ``places`` decimals and written with all of them (``0.50``)."""
        return f"printf('%.{int(places)}f', {number})"

    def number_text(self, number: str) -> str:
        """A number as Insights prints it: whole numbers without a decimal point (``7``, ``0.25``)."""
        return (f"CASE WHEN {number} = trunc({number}) AND abs({number}) < 1e15 "
                f"THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) ELSE CAST({number} AS VARCHAR) END")


    def first_present(self, values: list[str]) -> str:
        """The first of ``values`` that is not null (DuckDB's ``coalesce`` skips the rest where one is found)."""
        return f"coalesce({', '.join(values)})"

    def epoch_us(self, ts: str) -> str:
        return f"epoch_us({ts})"

    def epoch_ms(self, ts: str) -> str:
        return f"epoch_ms({ts})"

    def from_epoch_us(self, us: str) -> str:
        return f"make_timestamp({us})"

    def to_double(self, value: str) -> str:
        return f"TRY_CAST({value} AS DOUBLE)"

    def to_boolean(self, value: str) -> str:
        return f"TRY_CAST({value} AS BOOLEAN)"

    def to_timestamp(self, value: str) -> str:
        return f"TRY_CAST({value} AS TIMESTAMP)"

    def to_text(self, value: str) -> str:
        return f"CAST({value} AS VARCHAR)"

    def text_length(self, text: str) -> str:
        return f"length({text})"

    def ln(self, value: str) -> str:
        return f"ln({value})"

    def bin_us(self, ts: str, width_us: str) -> str:
        """``ts`` down to a multiple of ``width_us`` microseconds since the epoch.

        A width that divides a day buckets alike from any midnight, so DuckDB's own origin serves, and its
        faster path (half the time of one with an origin argument, bench/insights.py) applies.
        """
        if width_us.isdigit() and 86_400_000_000 % int(width_us) == 0:
            return f"time_bucket(to_microseconds(CAST({width_us} AS BIGINT)), {ts})"
        return f"time_bucket(to_microseconds(CAST({width_us} AS BIGINT)), {ts}, TIMESTAMP '1970-01-01')"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"starts_with({text}, {prefix})"

    def bin_months(self, ts: str, months: str) -> str:
        return f"time_bucket(to_months(CAST({months} AS INTEGER)), {ts}, TIMESTAMP '1970-01-01')"

    def percentile(self, value: str, fraction: float) -> str:
        """``fraction`` is a number the compiler checked, written as a constant (ClickHouse requires one)."""
        return f"quantile_cont({value}, {float(fraction)!r})"

    def arg_at(self, fn: str, value: str, key: str) -> str:
        """``arg_min``/``arg_max``: ``value`` of the row with the least/greatest ``key``."""
        return f"{fn}({value}, {key})"

    def stddev(self, value: str) -> str:
        return f"stddev_samp({value})"

    def bind(self, sql: str, params: list[Any]) -> tuple[str, list[Any]]:
        return sql, params

    # -- Logs Insights string, number, date and IP functions ------------------------------------------

    def trim(self, side: str, text: str, chars: str | None) -> str:
        """``side`` is ``l``, ``r`` or ``both``; ``chars`` (a SQL fragment) the characters to strip, else spaces."""
        fn = {"l": "ltrim", "r": "rtrim", "both": "trim"}[side]
        return f"{fn}({text}, {chars})" if chars else f"{fn}({text})"

    def substr(self, text: str, start0: str, length: str | None) -> str:
        """Insights counts from 0; SQL from 1."""
        start = f"TRY_CAST({start0} AS BIGINT) + 1"
        if length is None:
            return f"substring({text}, {start})"
        return f"substring({text}, {start}, greatest(TRY_CAST({length} AS BIGINT), 0))"

    def replace(self, text: str, old: str, new: str) -> str:
        return f"replace({text}, {old}, {new})"

    def power(self, base: str, exponent: str) -> str:
        return f"power({base}, {exponent})"

    def modulo(self, a: str, b: str) -> str:
        return f"fmod({a}, {b})"

    def from_epoch_ms(self, ms: str) -> str:
        return f"make_timestamp(CAST({ms} AS BIGINT) * 1000)"

    def ceil_us(self, ts: str, width_us: str) -> str:
        us = self.epoch_us(ts)
        return self.from_epoch_us(f"({us} + (({width_us} - {us} % {width_us}) % {width_us}))")

    def add_months(self, ts: str, months: str) -> str:
        return f"({ts} + to_months(CAST({months} AS INTEGER)))"

    def ipv4_number(self, text: str) -> str:
        """An IPv4 address as its 32-bit number; NULL when ``text`` is not one."""
        parts = " + ".join(f"CAST(split_part({text}, '.', {i + 1}) AS BIGINT) * {256 ** (3 - i)}" for i in range(4))
        return f"CASE WHEN regexp_full_match({text}, '{_IPV4}') THEN {parts} END"

    def ipv4_in_subnet(self, text: str, cidr: str) -> str | None:
        """Whether ``text`` is an IPv4 address in the subnet ``cidr`` (``a.b.c.d/n``), where the database has a
        test of its own; None: the caller compares `ipv4_number` or a prefix."""
        return None

    def ipv6_hex(self, text: str) -> str:
        """An IPv6 address as 32 upper-case hex digits (so ranges compare as text); NULL when not one."""
        head, tail = f"split_part({text}, '::', 1)", f"split_part({text}, '::', 2)"
        empty = "CAST([] AS VARCHAR[])"
        h = f"CASE WHEN {head} = '' THEN {empty} ELSE string_split({head}, ':') END"
        t = f"CASE WHEN {tail} = '' THEN {empty} ELSE string_split({tail}, ':') END"
        zeros = f"list_transform(range(8 - len({h}) - len({t})), lambda x: '0')"
        groups = (f"CASE WHEN contains({text}, '::') THEN list_concat({h}, {zeros}, {t}) "
                  f"ELSE string_split({text}, ':') END")
        return (f"CASE WHEN regexp_full_match({text}, '{_IPV6}') THEN "
                f"array_to_string(list_transform({groups}, lambda g: lpad(upper(g), 4, '0')), '') END")

    def field_at(self, text: str, sep: str, index: int) -> str:
        """The ``index``-th (from 1) piece of ``text`` split on the one character ``sep``."""
        return f"split_part({text}, '{sep}', {int(index)})"

    def first_per_key(self, source: str, columns: list[str], keys: list[str], order: str,
                      by: tuple[str, bool] | None = None) -> str:
        """``columns`` of the first row of ``source`` in ``order`` for each combination of ``keys``.

        The last key is unique to a row wherever the others hold a null, so such rows are all kept. ``by``
        is (column, descending) when the order is one column that is never null (``@timestamp``): then one
        hash aggregation takes that row instead of a window over every row. It takes the row's columns as one
        struct: ``arg_max`` of a single column skips the rows where that column is null, so an event lacking
        a field would show an earlier event's value.
        """
        if by is not None:
            fn = "arg_max" if by[1] else "arg_min"
            packed = ", ".join(f"c{i} := {c}" for i, c in enumerate(columns))
            picked = ", ".join(f"_first.c{i} AS {c}" for i, c in enumerate(columns))
            return (f"SELECT {picked} FROM (SELECT {fn}(struct_pack({packed}), {by[0]}) AS _first FROM {source} "
                    f"GROUP BY {', '.join(keys)})")
        # A window, not DISTINCT ON: DuckDB may drop an ORDER BY inside a CTE, and DISTINCT ON then keeps any row.
        cols = ", ".join(columns)
        ranked = f"SELECT {cols}, row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY {order}) AS _dedup_rank"
        return f"SELECT {cols} FROM ({ranked} FROM {source}) WHERE _dedup_rank = 1"


class ClickHouseLogDialect(LogDialect):
    name = "clickhouse"

    def contains(self, text: str, needle: str) -> str:
        return f"(position({text}, {needle}) > 0)"

    def regex_match(self, text: str, pattern: str) -> str:
        return f"match({text}, {pattern})"

    def regex_extract(self, text: str, pattern: str, group: int) -> str:
        return f"nullIf(regexpExtract({text}, {pattern}, {int(group)}), '')"

    def starts_with_brace(self, text: str) -> str:
        return f"(startsWith({text}, '{{') OR startsWith(trimLeft({text}), '{{'))"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"startsWith({text}, {prefix})"

    def json_valid(self, text: str) -> str:
        return f"isValidJSON({text})"

    def json_document(self, text: str) -> str:
        """No validity check: ``JSON_VALUE`` already answers '' (so NULL) on a line that is not valid JSON,
        and ``isValidJSON`` doubled the time of a query on a discovered field (bench/insights.py). Not JSON,
        the line is '' rather than NULL: every lookup answers NULL on either, and the CASE's nullable copy of
        every line cost a subnet test a sixth of its time (bench/insights.py, isIpv4InSubnet)."""
        return f"if({self.starts_with_brace(text)}, {text}, '')"

    def json_line(self, from_a_list_index: bool) -> str:
        """The line itself (``msg``): ``JSON_VALUE`` already answers '' for a key on a line that is no JSON object
        (text, a list, a string, invalid JSON, an object with text after it), so the gated copy of every line
        (`json_document`) is only needed where a path starts with a list index. Reading the line saves that copy:
        an eighth of the CPU of `lookup` by a discovered field (bench/insights.py)."""
        return "_json" if from_a_list_index else "msg"

    def json_text(self, doc: str, path: str) -> str:
        return f"nullIf(JSON_VALUE({doc}, {path}), '')"

    def in_array(self, array: str, value: str) -> str:
        return f"has({array}, {value})"

    def value_set(self, column: str, source: str) -> str:
        """ClickHouse leaves NULL out of a set itself (``transform_null_in`` off, its default), so no filter is
        written: ``IS NOT NULL`` on the subquery's output was pushed down to its first scan, where it computed
        the matched field of every event rather than of those the subquery's filter kept (1.28x the hand-written
        SQL's CPU at 1 M events against 1.08x without, bench/insights.py subquery)."""
        return f"SELECT {column} FROM {source}"

    def json_raw(self, doc: str, path: str) -> str:
        """``JSON_QUERY`` wraps what it finds in a list (``[[1,2]]``): the outer brackets are taken off."""
        found = f"JSON_QUERY({doc}, {path})"
        return f"nullIf(substring({found}, 2, greatest(length({found}) - 2, 0)), '')"

    def json_items(self, raw: str) -> str:
        text = f"ifNull({raw}, '')"
        return (f"arrayJoin(multiIf({raw} IS NULL, CAST([], 'Array(String)'), JSONType({text}) = 'Array', "
                f"JSONExtractArrayRaw({text}), [{text}]))")

    def regex_replace_all(self, text: str, pattern: str, replacement: str) -> str:
        return f"replaceRegexpAll({text}, {pattern}, {replacement})"

    def token_variants(self, text: str, word: str, min_tokens: int) -> str:
        t = f"splitByChar(' ', {text})"
        variant = f"arrayStringConcat(arrayConcat(arraySlice({t}, 1, i - 1), ['<*>'], arraySlice({t}, i + 1)), ' ')"
        return (f"arrayJoin(arrayConcat(arrayFilter(x -> x != '', arrayMap(i -> if(length({t}) >= {int(min_tokens)} "
                f"AND match({t}[i], '^{word}$'), {variant}, ''), arrayEnumerate({t}))), ['']))")

    def regex_extract_all(self, text: str, pattern: str) -> str:
        return f"extractAll({text}, {pattern})"

    def numbered_items(self, array: str, limit: int) -> str:
        items = f"if(empty({array}), [''], arraySlice({array}, 1, {int(limit)}))"
        numbers = f"if(empty({array}), [0], range(1, least(length({array}), {int(limit)}) + 1))"
        return (f"arrayJoin(arrayZip({numbers}, {items})) AS _kv, tupleElement(_kv, 1) AS k, "
                f"tupleElement(_kv, 2) AS v")

    def fixed_text(self, number: str, places: int) -> str:
        return f"toDecimalString(round({number}, {int(places)}), {int(places)})"

    def number_text(self, number: str) -> str:
        return f"toString({number})"


    def first_present(self, values: list[str]) -> str:
        """``coalesce`` that stops at the first value present: ClickHouse's ``coalesce`` computes every
        argument, ``multiIf`` short-circuits (and computes a repeated argument once)."""
        if len(values) == 1:
            return values[0]
        branches = ", ".join(f"isNotNull({v}), {v}" for v in values[:-1])
        return f"multiIf({branches}, {values[-1]})"

    def epoch_us(self, ts: str) -> str:
        return f"toUnixTimestamp64Micro({ts})"

    def epoch_ms(self, ts: str) -> str:
        return f"toUnixTimestamp64Milli({ts})"

    def from_epoch_us(self, us: str) -> str:
        return f"fromUnixTimestamp64Micro({us}, 'UTC')"

    def to_double(self, value: str) -> str:
        return f"accurateCastOrNull({value}, 'Float64')"

    def to_boolean(self, value: str) -> str:
        return f"accurateCastOrNull({value}, 'Bool')"

    def to_timestamp(self, value: str) -> str:
        return f"parseDateTime64BestEffortOrNull(toString({value}), 6, 'UTC')"

    def to_text(self, value: str) -> str:
        return f"toString({value})"

    def text_length(self, text: str) -> str:
        return f"lengthUTF8({text})"

    def bin_us(self, ts: str, width_us: str) -> str:
        """Epoch-aligned like the arithmetic on microseconds, and as fast as ``toStartOfHour`` (bench/insights.py)."""
        return f"toStartOfInterval({ts}, toIntervalMicrosecond({width_us}))"

    def bin_months(self, ts: str, months: str) -> str:
        return f"toDateTime64(toStartOfInterval({ts}, toIntervalMonth({months})), 6, 'UTC')"

    def percentile(self, value: str, fraction: float) -> str:
        return f"quantileExactInclusive({float(fraction)!r})({value})"

    def arg_at(self, fn: str, value: str, key: str) -> str:
        return f"{'argMin' if fn == 'arg_min' else 'argMax'}({value}, {key})"

    def stddev(self, value: str) -> str:
        return f"stddevSamp({value})"

    def trim(self, side: str, text: str, chars: str | None) -> str:
        fn = {"l": "trimLeft", "r": "trimRight", "both": "trimBoth"}[side]
        return f"{fn}({text}, {chars})" if chars else f"{fn}({text})"

    def substr(self, text: str, start0: str, length: str | None) -> str:
        start = f"accurateCastOrNull({start0}, 'Int64') + 1"
        if length is None:
            return f"substringUTF8({text}, {start})"
        return f"substringUTF8({text}, {start}, greatest(accurateCastOrNull({length}, 'Int64'), 0))"

    def replace(self, text: str, old: str, new: str) -> str:
        return f"replaceAll({text}, {old}, {new})"

    def modulo(self, a: str, b: str) -> str:
        return f"modulo({a}, {b})"

    def from_epoch_ms(self, ms: str) -> str:
        return f"toDateTime64(fromUnixTimestamp64Milli(toInt64({ms}), 'UTC'), 6, 'UTC')"

    def add_months(self, ts: str, months: str) -> str:
        return f"addMonths({ts}, toInt32({months}))"

    def field_at(self, text: str, sep: str, index: int) -> str:
        return f"splitByChar('{sep}', {text})[{int(index)}]"

    def ipv4_number(self, text: str) -> str:
        return f"toUInt32(toIPv4OrNull(CASE WHEN match({text}, '^{_IPV4}$') THEN {text} END))"

    def ipv4_in_subnet(self, text: str, cidr: str) -> str | None:
        """``isIPv4String`` refuses what `ipv4_number`'s regular expression refuses (leading zeros, parts over
        255, spaces), and parsing beat matching: the subnet test took 1.5-1.8 x the hand-written SQL's time as a
        regular expression, 1.3 x as the address's number (bench/insights.py, isIpv4InSubnet). The AND skips
        ``isIPAddressInRange``, which throws on a non-address, where the text is not one; ``materialize`` keeps
        ClickHouse from folding a constant text before the AND can skip it. NULL stays NULL, as on DuckDB."""
        return (f"if({text} IS NULL, NULL, isIPv4String({text}) AND "
                f"isIPAddressInRange(materialize({text}), {cidr}))")

    def first_per_key(self, source: str, columns: list[str], keys: list[str], order: str,
                      by: tuple[str, bool] | None = None) -> str:
        """As DuckDB's: by one never-null column, ``argMax`` in one hash aggregation, where ``LIMIT 1 BY`` sorted
        every row first (1.7-2.9 x the hand-written SQL's time at 2 M events, bench/insights.py dedup).

        One ``argMax`` per column, not one of the row as a tuple: a tuple takes ClickHouse's generic, slow
        state (1.3-1.5 x the hand-written SQL's time, against 1.0-1.1 x). ``argMax`` skips the rows where its
        column is null, so beside each column's goes the pick's ``isNull`` of it: where the picked event lacks
        the value it shows null, not an earlier event's. Every aggregate of a group sees the same rows in the
        same order, so on a tie in ``by`` they all keep the same row.
        """
        if by is not None:
            fn = "argMax" if by[1] else "argMin"
            picks = ", ".join(f"{self._pick(fn, c, keys, by[0])} AS _first{i}" for i, c in enumerate(columns))
            picked = ", ".join(f"_first{i} AS {c}" for i, c in enumerate(columns))
            # the picks are named apart from the columns: an alias equal to a column's name would replace it
            return f"SELECT {picked} FROM (SELECT {picks} FROM {source} GROUP BY {', '.join(keys)})"
        return f"SELECT {', '.join(columns)} FROM {source} ORDER BY {order} LIMIT 1 BY {', '.join(keys)}"

    @staticmethod
    def _pick(fn: str, column: str, keys: list[str], by: str) -> str:
        """`first_per_key`'s aggregate for ``column``: a key is the group's own value and ``by`` (never null) is
        its extreme, so neither needs an ``argMax``; any other column is the picked row's, null included."""
        if column in keys:
            return column
        if column == by:
            return f"{fn[3:].lower()}({column})"
        return f"if({fn}(isNull({column}), {by}), NULL, {fn}({column}, {by}))"

    def ipv6_hex(self, text: str) -> str:
        return f"CASE WHEN isIPv6String({text}) AND position({text}, '.') = 0 THEN hex(toIPv6OrNull({text})) END"

    def bind(self, sql: str, params: list[Any]) -> tuple[str, list[Any]]:
        """Each ``?`` outside quotes becomes ``{pN:Type}``, typed from its value (`ClickHouseStore.query` binds pN)."""
        out: list[str] = []
        n = 0
        quote: str | None = None
        for ch in sql:
            if quote is not None:
                if ch == quote:
                    quote = None
            elif ch in ("'", '"', "`"):
                quote = ch
            elif ch == "?":
                out.append(f"{{p{n + 1}:{_clickhouse_type(params[n])}}}")
                n += 1
                continue
            out.append(ch)
        if n != len(params):
            raise ValueError(f"{n} placeholders for {len(params)} parameters")
        return "".join(out), [_clickhouse_value(p) for p in params]


def _clickhouse_type(value: Any) -> str:
    if value is None:
        return "Nullable(String)"
    if isinstance(value, (list, tuple)):
        inner = {_clickhouse_type(v) for v in value} or {"String"}
        return f"Array({inner.pop() if len(inner) == 1 else 'String'})"
    return param_type(value)


def _clickhouse_value(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, tuple):
        return list(value)
    return value


def log_dialect_for(name: str) -> LogDialect:
    if name == "duckdb":
        return LogDialect()
    if name == "clickhouse":
        return ClickHouseLogDialect()
    raise ValueError(f"no SQL dialect {name!r}")
