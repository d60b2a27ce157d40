"""Calculated fields: Honeycomb's derived-column expressions, parsed with a lark grammar into plan expressions."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from apiary.input_limits import InputError, check_expression
from apiary.query.plan import BOOLEAN, FLOAT, INTEGER, NUMERIC, STRING, TIMESTAMP, Call, Column, Expr, Literal


class ExpressionError(ValueError):
    pass


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).with_name("calculated.lark")).read_text(), parser="lalr")


def _arith_type(args: list[Expr]) -> str:
    return INTEGER if all(a.type == INTEGER for a in args) else FLOAT


#: Honeycomb function -> (neutral fn, min args, max args or None, result type from args)
_FUNCTIONS: dict[str, tuple[str, int, int | None, Callable[[list[Expr]], str]]] = {
    "SUM": ("add", 1, None, _arith_type),
    "SUB": ("sub", 2, 2, _arith_type),
    "MUL": ("mul", 1, None, _arith_type),
    "DIV": ("div", 2, 2, lambda a: FLOAT),
    "MOD": ("mod", 2, 2, _arith_type),
    "MIN": ("least", 1, None, _arith_type),
    "MAX": ("greatest", 1, None, _arith_type),
    "EQUALS": ("eq", 2, 2, lambda a: BOOLEAN),
    "LT": ("lt", 2, 2, lambda a: BOOLEAN),
    "LTE": ("le", 2, 2, lambda a: BOOLEAN),
    "GT": ("gt", 2, 2, lambda a: BOOLEAN),
    "GTE": ("ge", 2, 2, lambda a: BOOLEAN),
    "AND": ("and", 1, None, lambda a: BOOLEAN),
    "OR": ("or", 1, None, lambda a: BOOLEAN),
    "NOT": ("not", 1, 1, lambda a: BOOLEAN),
    "EXISTS": ("not_null", 1, 1, lambda a: BOOLEAN),
    "IF": ("if", 3, 3, lambda a: a[1].type if a[1].type == a[2].type or a[2].type == "null" else
           (FLOAT if a[1].type in NUMERIC and a[2].type in NUMERIC else STRING)),
    "COALESCE": ("coalesce", 1, None, lambda a: a[0].type),
    "CONCAT": ("concat", 1, None, lambda a: STRING),
    "STARTS_WITH": ("starts_with", 2, 2, lambda a: BOOLEAN),
    "ENDS_WITH": ("ends_with", 2, 2, lambda a: BOOLEAN),
    "CONTAINS": ("contains", 2, 2, lambda a: BOOLEAN),
    "TO_LOWER": ("lower", 1, 1, lambda a: STRING),
    "TO_UPPER": ("upper", 1, 1, lambda a: STRING),
    "LENGTH": ("length", 1, 1, lambda a: INTEGER),
    "INT": ("to_integer", 1, 1, lambda a: INTEGER),
    "FLOAT": ("to_float", 1, 1, lambda a: FLOAT),
    "STRING": ("to_string", 1, 1, lambda a: STRING),
    "BOOL": ("to_boolean", 1, 1, lambda a: BOOLEAN),
    "UNIX_TIMESTAMP": ("epoch_seconds", 1, 1, lambda a: FLOAT),
}
_NUMERIC_ARGS = {"add", "sub", "mul", "div", "mod", "least", "greatest"}
_STRING_ARGS = {"starts_with", "ends_with", "contains", "lower", "upper", "length"}


def parse_expression(text: str, resolve: Callable[[str, str | None], Column],
                     event_timestamp: Column | None = None) -> Expr:
    """``resolve(name, wanted_type)`` looks a ``$column`` up (raising ValueError for an unknown one)."""
    try:
        check_expression(text, "calculated field")
        tree = _parser().parse(text)
    except InputError as exc:
        raise ExpressionError(str(exc)) from None
    except LarkError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {str(exc).splitlines()[0]}") from None
    return _build(tree, resolve, event_timestamp)


def _build(node: Tree | Token, resolve: Callable[[str, str | None], Column], ts: Column | None) -> Expr:
    if isinstance(node, Token):  # pragma: no cover - the grammar wraps every leaf
        raise ExpressionError(f"unexpected {node!r}")
    kind = node.data
    if kind == "string":
        return Literal(json.loads(node.children[0]), STRING)
    if kind == "number":
        text = str(node.children[0])
        return Literal(int(text), INTEGER) if text.lstrip("+-").isdigit() else Literal(float(text), FLOAT)
    if kind == "true":
        return Literal(True, BOOLEAN)
    if kind == "false":
        return Literal(False, BOOLEAN)
    if kind == "null":
        return Literal(None, "null")
    if kind == "column":
        tok = node.children[0]
        name = json.loads(tok) if tok.type == "STRING" else str(tok)
        return resolve(name, None)
    if kind == "call":
        name = str(node.children[0])
        args = [_build(c, resolve, ts) for c in node.children[1:] if c is not None]
        if name == "EVENT_TIMESTAMP" and not args and ts is not None:
            return Call("epoch_seconds", (ts,), FLOAT)
        if name not in _FUNCTIONS:
            raise ExpressionError(f"unknown function {name}; known: {', '.join(sorted(_FUNCTIONS))}, EVENT_TIMESTAMP")
        fn, lo, hi, result = _FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if hi == lo else f"{lo}+" if hi is None else f"{lo}..{hi}"
            raise ExpressionError(f"{name} takes {want} arguments, got {len(args)}")
        if fn in _NUMERIC_ARGS:
            args = [_retype(a, FLOAT if a.type not in NUMERIC else a.type, resolve, name) for a in args]
        elif fn in _STRING_ARGS:
            args = [_retype(a, STRING, resolve, name) for a in args]
        return Call(fn, tuple(args), result(args))
    raise ExpressionError(f"unexpected {kind}")


def _retype(expr: Expr, wanted: str, resolve: Callable[[str, str | None], Column], fn: str) -> Expr:
    """Columns are re-resolved for the type a function needs; other expressions are cast."""
    if expr.type == wanted:
        return expr
    if isinstance(expr, Column):
        return resolve(expr.name, wanted)
    if isinstance(expr, Literal):
        if wanted == STRING:
            return Literal(None if expr.value is None else str(expr.value), STRING)
        raise ExpressionError(f"{fn} needs numbers, got {expr.value!r}")
    cast = {STRING: "to_string", FLOAT: "to_float", INTEGER: "to_integer", BOOLEAN: "to_boolean", TIMESTAMP: "to_string"}
    return Call(cast[wanted], (expr,), wanted)
