"""X-Ray filter expressions: parsed with ``filter.lark`` into a small typed AST.

The AST (``apiary/query/xray_filter.py``) says what the user asked in X-Ray's
own terms; ``apiary/query/xray.py`` turns it into the query plan. Keywords and value types are checked
here so every mistake is reported with its position, the way the X-Ray
console does.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from apiary.input_limits import InputError, check_expression
from apiary.query.xray_filter import And, Compare, Edge, Flag, Node, Not, Or, Service

MAX_LENGTH = 2000

#: keyword -> value type it compares with ("number", "string", "boolean")
KEYWORDS = {
    "responsetime": "number", "duration": "number",
    "http.status": "number", "http.url": "string", "http.method": "string", "http.useragent": "string",
    "http.clientip": "string", "user": "string", "name": "string",
    "fault": "boolean", "error": "boolean", "throttle": "boolean", "ok": "boolean", "partial": "boolean",
    "rootcause.fault.service.name": "string", "rootcause.error.service.name": "string",
    "rootcause.fault.service.type": "string", "rootcause.error.service.type": "string",
}
FLAGS = {"fault", "error", "throttle", "ok", "partial"}
STRING_OPS = {"contains", "beginswith", "endswith"}
NUMBER_OPS = {"<", "<=", ">", ">="}
FUNCTIONS = {"service", "id", "edge"}


class FilterError(ValueError):
    """A filter expression X-Ray would refuse; ``position`` is the 1-based column of the fault."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"Invalid filter expression{where}: {message}")
        self.position = position




@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "filter.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True)


def _unquote(token: Token) -> str:
    text = str(token)
    if text.startswith("'"):
        text = '"' + text[1:-1].replace('\\\'', "'").replace('"', '\\"') + '"'
    try:
        return json.loads(text)
    except ValueError:
        raise FilterError(f"bad escape in string {text}", token.column) from None


def _key(token: Token) -> str:
    text = str(token)
    if text.startswith("annotation[") and text.endswith("]"):
        return "annotation." + text[len("annotation["):-1].strip().strip('"')
    return text if text.startswith("annotation.") else text.lower()


@v_args(inline=True)
class _ToAst(Transformer):
    def or_(self, left: Node, _op: Token, right: Node) -> Node:
        return Or(left, right)

    def and_(self, left: Node, _op: Token, right: Node) -> Node:
        return And(left, right)

    def not_(self, _op: Token, operand: Node) -> Node:
        return Not(operand)

    def string(self, token: Token) -> tuple[str, Token]:
        return (_unquote(token), token)

    def number(self, token: Token) -> tuple[float, Token]:
        return (float(token), token)

    def true(self, token: Token) -> tuple[bool, Token]:
        return (True, token)

    def false(self, token: Token) -> tuple[bool, Token]:
        return (False, token)

    def positional(self, token: Token) -> tuple[None, str]:
        return (None, _unquote(token))

    def named(self, key: Token, token: Token) -> tuple[str, str]:
        return (str(key).lower(), _unquote(token))

    def flag(self, token: Token) -> Node:
        key = _key(token)
        if key in FLAGS or key.startswith("annotation."):
            return Flag(key)
        if key in KEYWORDS:
            raise FilterError(f"{token} needs a comparison, e.g. {token} = ...", token.column)
        raise FilterError(f"unknown keyword {str(token)!r}", token.column)

    def comparison(self, token: Token, op: Token, value: tuple[str | float | bool, Token]) -> Node:
        key = _key(token)
        operator = str(op).lower()
        val, vtok = value
        if key.startswith("annotation."):
            if len(key) == len("annotation."):
                raise FilterError("annotation needs a key, e.g. annotation.user_id", token.column)
            want = "string" if isinstance(val, str) else "boolean" if isinstance(val, bool) else "number"
        elif key in KEYWORDS:
            want = KEYWORDS[key]
        else:
            raise FilterError(f"unknown keyword {str(token)!r}", token.column)
        got = "string" if isinstance(val, str) else "boolean" if isinstance(val, bool) else "number"
        if got != want:
            raise FilterError(f"{key} compares with a {want}, not {vtok}", vtok.column)
        if operator in STRING_OPS and want != "string":
            raise FilterError(f"{op} needs a string keyword, not {key}", op.column)
        if operator in NUMBER_OPS and want not in ("number",):
            raise FilterError(f"{op} needs a number keyword, not {key}", op.column)
        if want == "boolean" and operator not in ("=", "!="):
            raise FilterError(f"{key} can only be compared with = or !=", op.column)
        return Compare(key, operator, val)

    def call(self, name: Token, *rest: object) -> Node:
        fn = str(name).lower()
        if fn not in FUNCTIONS:
            raise FilterError(f"unknown function {str(name)!r}: use service(), edge() or id()", name.column)
        inner = rest[-1] if rest and not isinstance(rest[-1], tuple) and rest[-1] is not None else None
        args = [a for a in rest if isinstance(a, tuple)]
        positional = [v for k, v in args if k is None]
        named = {k: v for k, v in args if k is not None}
        if fn == "edge":
            if len(positional) != 2 or named:
                raise FilterError('edge takes two service names: edge("source", "destination")', name.column)
            return Edge(positional[0], positional[1], inner)  # type: ignore[arg-type]
        if fn == "service":
            if len(positional) > 1 or named:
                raise FilterError('service takes one name: service("backend-flask")', name.column)
            return Service(positional[0] if positional else None, None, inner)  # type: ignore[arg-type]
        unknown = set(named) - {"name", "type"}
        if positional or unknown or not named:
            raise FilterError('id takes name: and type:, e.g. id(name: "backend-flask", type: "AWS::EC2::Instance")',
                              name.column)
        return Service(named.get("name"), named.get("type"), inner)  # type: ignore[arg-type]


def parse(expression: str) -> Node | None:
    """The AST of a filter expression; None for an empty one (every trace matches)."""
    if expression is None or not expression.strip():
        return None
    if len(expression) > MAX_LENGTH:
        raise FilterError(f"longer than {MAX_LENGTH} characters")
    try:
        check_expression(expression, "the expression")
    except InputError as exc:
        raise FilterError(str(exc)) from None
    try:
        tree = _parser().parse(expression)
        return _ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterError):
            raise exc.orig_exc from None
        raise FilterError(str(exc.orig_exc)) from None
    except UnexpectedEOF:
        raise FilterError("the expression ends too early", len(expression) + 1) from None
    except UnexpectedCharacters as exc:
        raise FilterError(f"unexpected character {expression[exc.pos_in_stream]!r}", exc.column) from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        if token is not None and getattr(token, "type", "") == "$END":
            raise FilterError("the expression ends too early", len(expression) + 1) from None
        text = str(token) if token is not None else "?"
        raise FilterError(f"unexpected {text!r}", getattr(exc, "column", None)) from None
    except (LarkError, RecursionError) as exc:
        raise FilterError(str(exc).splitlines()[0] if str(exc) else "cannot parse") from None
