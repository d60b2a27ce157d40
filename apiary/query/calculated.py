"""Calculated fields: Honeycomb's derived-column expressions, parsed with a lark grammar into plan expressions.

The functions are those of Honeycomb's derived column reference (conditionals, comparisons, math, strings,
regular expressions, time, type conversion). Arguments are converted to the types a function works in
(numbers for math, text for strings, booleans for logic), so every expression the grammar accepts either
becomes a plan every dialect can run or is refused here with the function's name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from apiary.input_limits import InputError, check_expression
from apiary.query.plan import BOOLEAN, FLOAT, INTEGER, NUMERIC, STRING, TIMESTAMP, Call, Column, Expr, Literal

NULL = "null"
Resolve = Callable[[str, "str | None"], Column]


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class EventMetadata:
    """What Honeycomb records about an event beside its fields, read by its event metadata functions."""

    timestamp: Column  #: ``EVENT_TIMESTAMP()``
    ingest_timestamp: Column  #: ``INGEST_TIMESTAMP()``: when the store accepted the event (null for events from before)
    sample_rate: Column | None = None  #: ``SAMPLE_RATE()``; None when no event of the datasets has one (all are 1)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).with_name("calculated.lark")).read_text(), parser="lalr")


def _arith_type(args: list[Expr]) -> str:
    return INTEGER if all(a.type == INTEGER for a in args) else FLOAT


def _common_type(args: list[Expr]) -> str:
    """The one type values of ``args`` are read in when they must agree (IF's branches, COALESCE, comparisons)."""
    types = {a.type for a in args} - {NULL}
    if not types:
        return NULL
    if len(types) == 1:
        return next(iter(types))
    if types <= set(NUMERIC):
        return FLOAT
    return STRING


#: Honeycomb function -> (neutral fn, min args, max args or None, result type from args, what the args are read as)
_SIMPLE: dict[str, tuple[str, int, int | None, Callable[[list[Expr]], str], str | None]] = {
    "SUM": ("add", 1, None, _arith_type, "number"),
    "SUB": ("sub", 2, 2, _arith_type, "number"),
    "MUL": ("mul", 1, None, _arith_type, "number"),
    "DIV": ("div", 2, 2, lambda a: FLOAT, "number"),
    "MOD": ("mod", 2, 2, _arith_type, "number"),
    "MIN": ("least", 1, None, _arith_type, "number"),
    "MAX": ("greatest", 1, None, _arith_type, "number"),
    "ABS": ("abs", 1, 1, _arith_type, "number"),
    "CEIL": ("ceil", 1, 1, lambda a: FLOAT, FLOAT),
    "FLOOR": ("floor", 1, 1, lambda a: FLOAT, FLOAT),
    "LOG10": ("log10", 1, 1, lambda a: FLOAT, FLOAT),
    "POW": ("pow", 2, 2, lambda a: FLOAT, FLOAT),
    "AND": ("and", 1, None, lambda a: BOOLEAN, BOOLEAN),
    "OR": ("or", 1, None, lambda a: BOOLEAN, BOOLEAN),
    "NOT": ("not", 1, 1, lambda a: BOOLEAN, BOOLEAN),
    "EXISTS": ("not_null", 1, 1, lambda a: BOOLEAN, None),
    "CONCAT": ("concat", 1, None, lambda a: STRING, None),
    "STARTS_WITH": ("starts_with", 2, 2, lambda a: BOOLEAN, STRING),
    "ENDS_WITH": ("ends_with", 2, 2, lambda a: BOOLEAN, STRING),
    "CONTAINS": ("contains", 2, 2, lambda a: BOOLEAN, STRING),
    "TO_LOWER": ("lower", 1, 1, lambda a: STRING, STRING),
    "TO_UPPER": ("upper", 1, 1, lambda a: STRING, STRING),
    "INT": ("to_integer", 1, 1, lambda a: INTEGER, None),
    "FLOAT": ("to_float", 1, 1, lambda a: FLOAT, None),
    "STRING": ("to_string", 1, 1, lambda a: STRING, None),
    "BOOL": ("to_boolean", 1, 1, lambda a: BOOLEAN, None),
}
_COMPARISONS = {"EQUALS": "eq", "LT": "lt", "LTE": "le", "GT": "gt", "GTE": "ge"}
_SPECIAL = ("IF", "SWITCH", "COALESCE", "IN", "LENGTH", "SUBSTRING", "REG_MATCH", "REG_VALUE", "REG_COUNT",
            "UNIX_TIMESTAMP", "EVENT_TIMESTAMP", "INGEST_TIMESTAMP", "SAMPLE_RATE", "FORMAT_TIME", "BUCKET")
#: In Honeycomb's reference, but not built: refused by name.
NOT_BUILT: dict[str, str] = {}
FUNCTIONS = tuple(sorted([*_SIMPLE, *_COMPARISONS, *_SPECIAL]))
#: strftime directives FORMAT_TIME takes: each one formats the same way in every store.
TIME_DIRECTIVES = frozenset("YmdHMSyjaAbpI%")
#: Regular expression syntax RE2 (Go's, Honeycomb's, DuckDB's and ClickHouse's engine) does not have.
_NOT_RE2 = re.compile(r"\(\?(?:[=!]|<[=!]|>|P=)|\\[1-9]")


def parse_expression(text: str, resolve: Resolve, metadata: EventMetadata | None = None) -> Expr:
    """``resolve(name, wanted_type)`` looks a ``$column`` up (raising ValueError for an unknown one); ``metadata``
    answers the event metadata functions (refused without it)."""
    try:
        check_expression(text, "calculated field")
        tree = _parser().parse(text)
    except InputError as exc:
        raise ExpressionError(str(exc)) from None
    except LarkError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {str(exc).splitlines()[0]}") from None
    expr = _Builder(resolve, metadata).build(tree)
    return Literal(None, STRING) if expr.type == NULL else expr  # a field that is always null reads as empty text


def _text(tok: Token) -> str:
    if tok.type == "RAWSTRING":
        return str(tok)[1:-1]
    try:
        return json.loads(tok)
    except ValueError:
        raise ExpressionError(f"the string {tok} has an escape sequence Apiary cannot read") from None


class _Builder:
    def __init__(self, resolve: Resolve, metadata: EventMetadata | None) -> None:
        self.resolve, self.metadata = resolve, metadata

    def build(self, node: Tree | Token) -> Expr:
        if isinstance(node, Token):  # pragma: no cover - the grammar wraps every leaf
            raise ExpressionError(f"unexpected {node!r}")
        kind = node.data
        if kind in ("string", "raw_string"):
            return Literal(_text(node.children[0]), STRING)
        if kind == "number":
            text = str(node.children[0])
            if text.lstrip("+-").isdigit():
                value = int(text)
                if not -(2**63) <= value < 2**63:
                    raise ExpressionError(f"{text} does not fit a 64-bit integer")
                return Literal(value, INTEGER)
            number = float(text)
            if number != number or number in (float("inf"), float("-inf")):
                raise ExpressionError(f"{text} is not a finite number")
            return Literal(number, FLOAT)
        if kind == "true":
            return Literal(True, BOOLEAN)
        if kind == "false":
            return Literal(False, BOOLEAN)
        if kind == "null":
            return Literal(None, NULL)
        if kind == "column":
            tok = node.children[0]
            return self.resolve(str(tok) if tok.type == "NAME" else _text(tok), None)
        if kind == "call":
            name = str(node.children[0]).upper()
            args = [self.build(c) for c in node.children[1:] if c is not None]
            return self.call(name, args)
        raise ExpressionError(f"unexpected {kind}")  # pragma: no cover

    # -- functions ------------------------------------------------------------------------------

    def call(self, name: str, args: list[Expr]) -> Expr:
        if name in NOT_BUILT:
            raise ExpressionError(f"{name} is not supported: {NOT_BUILT[name]}")
        if name in _SIMPLE:
            fn, lo, hi, result, reads = _SIMPLE[name]
            self.arity(name, args, lo, hi)
            if reads == "number":  # all integers, or all floats: the engines need one type among them
                args = [self.retype(a, a.type if a.type in NUMERIC else FLOAT, name) for a in args]
                args = [self.retype(a, _arith_type(args), name) for a in args]
            elif reads is not None:
                args = [self.retype(a, reads, name) for a in args]
            return Call(fn, tuple(args), result(args))
        if name in _COMPARISONS:
            self.arity(name, args, 2, 2)
            return self.compare(_COMPARISONS[name], args[0], args[1], name)
        special = getattr(self, "fn_" + name.lower(), None) if name in _SPECIAL else None
        if special is None:
            raise ExpressionError(f"unknown function {name}; known: {', '.join(FUNCTIONS)}")
        return special(args)

    @staticmethod
    def arity(name: str, args: list[Expr], lo: int, hi: int | None) -> None:
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if hi == lo else f"{lo}+" if hi is None else f"{lo}..{hi}"
            raise ExpressionError(f"{name} takes {want} arguments, got {len(args)}")

    def retype(self, expr: Expr, wanted: str, fn: str) -> Expr:
        """Columns are re-resolved for the type a function needs; other expressions are cast."""
        if expr.type == wanted or wanted == NULL:
            return expr
        if isinstance(expr, Column):
            return self.resolve(expr.name, wanted)
        if isinstance(expr, Literal):
            if expr.value is None:
                return Literal(None, wanted)
            if wanted == STRING:
                text = ("true" if expr.value else "false") if isinstance(expr.value, bool) else str(expr.value)
                return Literal(text, STRING)
            if wanted in NUMERIC and isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool):
                if wanted == FLOAT:
                    return Literal(float(expr.value), FLOAT)
                if float(expr.value).is_integer() and -(2**63) <= expr.value < 2**63:
                    return Literal(int(expr.value), INTEGER)
                raise ExpressionError(f"{fn} needs a whole number, got {expr.value!r}")
            if wanted == BOOLEAN and isinstance(expr.value, str) and expr.value.lower() in ("true", "false"):
                return Literal(expr.value.lower() == "true", BOOLEAN)
            kind = {BOOLEAN: "true or false"}.get(wanted, "numbers")
            raise ExpressionError(f"{fn} needs {kind}, got {expr.value!r}")
        cast = {STRING: "to_string", FLOAT: "to_float", INTEGER: "to_integer", BOOLEAN: "to_boolean"}
        if expr.type == TIMESTAMP and wanted != STRING:
            expr = Call("epoch_seconds", (expr,), FLOAT)
            if wanted == FLOAT:
                return expr
        return Call(cast[wanted], (expr,), wanted)

    def compare(self, fn: str, a: Expr, b: Expr, name: str) -> Expr:
        """Numbers compare as numbers; anything else as text (Honeycomb compares a string and a number as text)."""
        common = _common_type([a, b])
        if common == BOOLEAN and fn != "eq":
            common = STRING
        return Call(fn, (self.retype(a, common, name), self.retype(b, common, name)), BOOLEAN)

    def literal_text(self, expr: Expr, name: str, what: str) -> str:
        if not isinstance(expr, Literal) or not isinstance(expr.value, str):
            raise ExpressionError(f"{name}: {what} must be a string literal (in double or back quotes)")
        return expr.value

    def fn_if(self, args: list[Expr]) -> Expr:
        """``IF(cond, then[, else])`` and the chained ``IF(c1, v1, c2, v2, ..., default)``."""
        if len(args) < 2:
            raise ExpressionError(f"IF takes 2+ arguments, got {len(args)}")
        pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
        default = args[-1] if len(args) % 2 else Literal(None, NULL)
        return self.chain([(self.retype(c, BOOLEAN, "IF"), v) for c, v in pairs], default)

    def chain(self, pairs: list[tuple[Expr, Expr]], default: Expr) -> Expr:
        values = [v for _, v in pairs] + [default]
        common = _common_type(values)
        if common == NULL:
            common = STRING
        out = self.retype(default, common, "IF")
        for cond, value in reversed(pairs):
            out = Call("if", (cond, self.retype(value, common, "IF"), out), common)
        return out

    def fn_switch(self, args: list[Expr]) -> Expr:
        """``SWITCH(value, "case", result, ..., [default])``: cases are string literals, as in Honeycomb."""
        if len(args) < 3:
            raise ExpressionError(f"SWITCH takes 3+ arguments, got {len(args)}")
        value = self.retype(args[0], STRING, "SWITCH")
        rest = args[1:]
        pairs = []
        for i in range(0, len(rest) - 1, 2):
            case = self.literal_text(rest[i], "SWITCH", "each case")
            pairs.append((Call("eq", (value, Literal(case, STRING)), BOOLEAN), rest[i + 1]))
        default = rest[-1] if len(rest) % 2 else Literal(None, NULL)
        return self.chain(pairs, default)

    def fn_coalesce(self, args: list[Expr]) -> Expr:
        """The first argument that is neither null nor an empty string."""
        self.arity("COALESCE", args, 1, None)
        common = _common_type(args)
        if common == NULL:
            return Literal(None, NULL)
        typed = [self.retype(a, common, "COALESCE") for a in args]
        if common == STRING:
            typed = [Call("null_if_empty", (a,), STRING) for a in typed]
        return Call("coalesce", tuple(typed), common)

    def fn_in(self, args: list[Expr]) -> Expr:
        self.arity("IN", args, 2, None)
        return Call("or", tuple(self.compare("eq", args[0], option, "IN") for option in args[1:]), BOOLEAN)

    def fn_length(self, args: list[Expr]) -> Expr:
        """``LENGTH(s)`` in characters, ``LENGTH(s, "bytes")`` in UTF-8 bytes."""
        self.arity("LENGTH", args, 1, 2)
        mode = self.literal_text(args[1], "LENGTH", "the mode") if len(args) == 2 else "chars"
        if mode not in ("chars", "bytes"):
            raise ExpressionError(f'LENGTH: mode {mode!r} is neither "chars" nor "bytes"')
        return Call("length" if mode == "chars" else "byte_length", (self.retype(args[0], STRING, "LENGTH"),), INTEGER)

    def fn_substring(self, args: list[Expr]) -> Expr:
        """``SUBSTRING(s, start[, length])``: characters from ``start`` (0 is the first), to the end or ``length`` long."""
        self.arity("SUBSTRING", args, 2, 3)
        rest = [self.retype(a, INTEGER, "SUBSTRING") for a in args[1:]]
        return Call("substring", (self.retype(args[0], STRING, "SUBSTRING"), *rest), STRING)

    def regex(self, name: str, args: list[Expr]) -> tuple[Expr, str]:
        self.arity(name, args, 2, 2)
        pattern = self.literal_text(args[1], name, "the pattern")
        if _NOT_RE2.search(pattern):
            raise ExpressionError(f"{name}: {pattern!r} uses look-around or a back-reference, which RE2 "
                                  "(the regular expressions Honeycomb uses) does not have")
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ExpressionError(f"{name}: {pattern!r} is not a regular expression ({exc})") from None
        return self.retype(args[0], STRING, name), pattern

    def fn_reg_match(self, args: list[Expr]) -> Expr:
        text, pattern = self.regex("REG_MATCH", args)
        return Call("regex_match", (text, Literal(pattern, STRING)), BOOLEAN)

    def fn_reg_value(self, args: list[Expr]) -> Expr:
        """The first capture group of the first match (the whole match without a group); "" when nothing matches."""
        text, pattern = self.regex("REG_VALUE", args)
        fn = "regex_group" if re.compile(pattern).groups else "regex_value"
        return Call(fn, (text, Literal(pattern, STRING)), STRING)

    def fn_reg_count(self, args: list[Expr]) -> Expr:
        text, pattern = self.regex("REG_COUNT", args)
        return Call("regex_count", (text, Literal(pattern, STRING)), INTEGER)

    def fn_unix_timestamp(self, args: list[Expr]) -> Expr:
        """Seconds since the epoch of a timestamp, or of a date written as text (RFC 3339)."""
        self.arity("UNIX_TIMESTAMP", args, 1, 1)
        if args[0].type == TIMESTAMP:
            return Call("epoch_seconds", (args[0],), FLOAT)
        return Call("parse_time", (self.retype(args[0], STRING, "UNIX_TIMESTAMP"),), FLOAT)

    def event_metadata(self, name: str, args: list[Expr]) -> EventMetadata:
        self.arity(name, args, 0, 0)
        if self.metadata is None:
            raise ExpressionError(f"{name} is not available here")
        return self.metadata

    def fn_event_timestamp(self, args: list[Expr]) -> Expr:
        return Call("epoch_seconds", (self.event_metadata("EVENT_TIMESTAMP", args).timestamp,), FLOAT)

    def fn_ingest_timestamp(self, args: list[Expr]) -> Expr:
        """Seconds since the epoch when the store accepted the event, as Honeycomb's is when its servers received it."""
        return Call("epoch_seconds", (self.event_metadata("INGEST_TIMESTAMP", args).ingest_timestamp,), FLOAT)

    def fn_sample_rate(self, args: list[Expr]) -> Expr:
        """The event's sample rate as an integer, 1 when it has none (as Honeycomb answers)."""
        rate = self.event_metadata("SAMPLE_RATE", args).sample_rate
        if rate is None:
            return Literal(1, INTEGER)
        return Call("coalesce", (self.retype(rate, INTEGER, "SAMPLE_RATE"), Literal(1, INTEGER)), INTEGER)

    def fn_format_time(self, args: list[Expr]) -> Expr:
        """``FORMAT_TIME(format, seconds)``: strftime directives, in UTC."""
        self.arity("FORMAT_TIME", args, 2, 2)
        fmt = self.literal_text(args[0], "FORMAT_TIME", "the format")
        for directive in re.findall(r"%(.?)", fmt):
            if directive not in TIME_DIRECTIVES:
                raise ExpressionError(f"FORMAT_TIME: %{directive} is not supported; supported: "
                                      + " ".join(f"%{d}" for d in sorted(TIME_DIRECTIVES)))
        seconds = self.retype(args[1], FLOAT, "FORMAT_TIME")
        return Call("format_time", (Literal(fmt, STRING), seconds), STRING)

    def fn_bucket(self, args: list[Expr]) -> Expr:
        """``BUCKET(value, size, min, max)``: the lower edge of the ``size``-wide bucket ``value`` falls in; below ``min``
        the bucket under it (``min - size``), at or past ``max`` the one from ``max``."""
        self.arity("BUCKET", args, 4, 4)
        value, size, lo, hi = (self.retype(a, FLOAT, "BUCKET") for a in args)
        if isinstance(size, Literal) and (size.value is None or size.value <= 0):
            raise ExpressionError("BUCKET: the bucket size must be a positive number")
        index = Call("floor", (Call("div", (Call("sub", (value, lo), FLOAT), size), FLOAT),), FLOAT)
        inside = Call("add", (lo, Call("mul", (index, size), FLOAT)), FLOAT)
        return Call("if", (Call("lt", (value, lo), BOOLEAN), Call("sub", (lo, size), FLOAT),
                           Call("if", (Call("ge", (value, hi), BOOLEAN), hi, inside), FLOAT)), FLOAT)
