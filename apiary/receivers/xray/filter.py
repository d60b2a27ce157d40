"""X-Ray filter expressions: parsed with ``filter.lark`` into a small typed AST.

The AST (``apiary/query/xray_filter.py``) says what the user asked in X-Ray's
own terms; ``apiary/query/xray.py`` turns it into the query plan. Keywords,
value types and where each keyword may appear are checked here, so every
mistake is reported in X-Ray's words (with its position where the parser
knows it), the way the X-Ray console does.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from apiary.input_limits import InputError, check_expression
from apiary.query.xray_filter import (And, Compare, Edge, Everything, Flag, GroupRef, Node, Not, Or, RootCause,
                                      RootCauseJson, Service)

MAX_LENGTH = 2000

#: keyword -> value type it compares with ("number", "string", "boolean")
KEYWORDS = {
    "responsetime": "number", "duration": "number", "http.status": "number", "coverage": "number",
    "http.url": "string", "http.method": "string", "http.useragent": "string", "http.clientip": "string",
    "user": "string", "name": "string", "type": "string", "message": "string", "availabilityzone": "string",
    "instance.id": "string", "resource.arn": "string", "group.name": "string", "group.arn": "string",
    "fault": "boolean", "error": "boolean", "throttle": "boolean", "ok": "boolean", "partial": "boolean",
    "inferred": "boolean", "root": "boolean", "remote": "boolean", "first": "boolean", "last": "boolean",
    "index": "number",
}
STRING_OPS = {"contains", "beginswith", "endswith"}
NUMBER_OPS = {"<", "<=", ">", ">="}
FUNCTIONS = {"service", "id", "edge"}
#: Keywords of AWS's language Apiary does not evaluate.
UNSUPPORTED: set[str] = set()
#: The keyword that compares a trace's root causes with a JSON description of them (``#[...]``); the guide lists it
#: as ``json`` and writes it ``rootcause.json``.
JSON_KEYWORDS = ("rootcause.json", "json")
#: The fields of a root cause ``rootcause.json`` can match, at each level of GetTraceSummaries' shape.
JSON_FIELDS = {"cause": {"Services": list}, "service": {"Name": str, "Names": list, "Type": str, "Inferred": bool,
                                                        "EntityPath": list},
               "entity": {"Name": str, "Remote": bool}}
ROOT_CAUSE_KINDS = ("fault", "error", "responsetime")
ROOT_CAUSE_LEVELS = ("service", "entity", "exception")
_EVERYWHERE = {"ok", "error", "fault", "throttle", "partial", "duration", "responsetime", "http.status", "http.url",
               "http.method", "http.useragent", "http.clientip", "user", "availabilityzone", "instance.id",
               "resource.arn"}


def allowed_in(key: str, scope: str) -> bool:
    """Where a keyword means something: ``trace`` (top level), ``service`` / ``edge`` (inside their braces), or a
    ``rootcause.<kind>.<level>`` block."""
    if key.startswith("annotation."):
        return scope in ("trace", "service", "edge")
    if key in _EVERYWHERE:
        return scope in ("trace", "service", "edge")
    if key in ("group.name", "group.arn"):
        return scope == "trace"
    if key == "name":
        return scope in ("trace", "service") or scope.startswith("rootcause.")
    if key == "type":
        return scope == "service" or scope.endswith(".service")
    if key == "root":
        return scope == "service"
    if key == "inferred":
        return scope in ("trace", "service") or scope.endswith(".service")
    if key == "remote":
        return scope.endswith(".entity")
    if key == "coverage":
        return scope == "rootcause.responsetime.entity"
    if key in ("first", "last", "index"):
        return scope.startswith("rootcause.")
    if key == "message":
        return scope.endswith(".exception")
    return False


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

    def and_implicit(self, left: Node, right: Node) -> Node:
        return And(left, right)

    def not_(self, _op: Token, operand: Node) -> Node:
        return Not(operand)

    def string(self, token: Token) -> tuple[str, Token]:
        return (_unquote(token), token)

    def number(self, token: Token) -> tuple[float, Token]:
        return (float(token), token)

    def json_literal(self, array: list[Any]) -> tuple[list[Any], None]:
        return (array, None)

    def json_array(self, *items: Any) -> list[Any]:
        return [i for i in items if i is not None] if items != (None,) else []

    def json_object(self, *members: Any) -> dict[str, Any]:
        return dict(m for m in members if m is not None)

    def json_member(self, key: Token, value: Any) -> tuple[str, Any]:
        return (_unquote(key), value)

    def json_string(self, token: Token) -> str:
        return _unquote(token)

    def json_number(self, token: Token) -> float:
        return float(token)

    def json_true(self, _token: Token) -> bool:
        return True

    def json_false(self, _token: Token) -> bool:
        return False

    def json_null(self, _token: Token) -> None:
        return None

    def true(self, token: Token) -> tuple[bool, Token]:
        return (True, token)

    def false(self, token: Token) -> tuple[bool, Token]:
        return (False, token)

    def positional(self, token: Token) -> tuple[None, str]:
        return (None, _unquote(token))

    def named(self, key: Token, token: Token) -> tuple[str, str]:
        return (str(key).lower(), _unquote(token))

    def nested(self, call: Node) -> tuple[str, Node]:
        return ("id()", call)

    def flag(self, token: Token) -> Node:
        key = _known(token)
        if key in ("group.name", "group.arn"):
            raise FilterError(f"{token} needs a value, e.g. {token} = \"my-group\"", token.column)
        if key in JSON_KEYWORDS:
            raise FilterError(f'{token} needs a value, e.g. {token} = #[{{ "Services": [{{ "Name": "api" }}] }}]',
                              token.column)
        if key.startswith("rootcause."):
            raise FilterError(f"{token} takes a filter in braces, e.g. {token} {{ name = \"api\" }}", token.column)
        return Flag(key)

    def block(self, token: Token, inner: Node) -> Node:
        key = _key(token)
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "rootcause" or parts[1] not in ROOT_CAUSE_KINDS \
                or parts[2] not in ROOT_CAUSE_LEVELS:
            raise FilterError(f"{str(token)!r} takes no braces; blocks are rootcause.<fault|error|responsetime>."
                              "<service|entity|exception> { ... }", token.column)
        return RootCause(parts[1], parts[2], inner)

    def comparison(self, token: Token, op: Token, value: tuple[str | float | bool, Token]) -> Node:
        key = _key(token)
        operator = str(op).lower()
        val, vtok = value
        parts = key.split(".")
        if key in JSON_KEYWORDS or vtok is None:
            return _root_cause_json(key, token, op, operator, val)
        if key.startswith("rootcause.") and len(parts) == 4:  # rootcause.fault.service.name = "x": a one-term block
            if parts[1] not in ROOT_CAUSE_KINDS or parts[2] not in ROOT_CAUSE_LEVELS:
                raise FilterError(f"unknown keyword {str(token)!r}", token.column)
            inner = self._compare(parts[3], token, op, operator, val, vtok)
            return RootCause(parts[1], parts[2], inner)
        return self._compare(key, token, op, operator, val, vtok)

    def _compare(self, key: str, token: Token, op: Token, operator: str, val: str | float | bool, vtok: Token) -> Node:
        if key.startswith("annotation."):
            if len(key) == len("annotation."):
                raise FilterError("annotation needs a key, e.g. annotation.user_id", token.column)
            want = "string" if isinstance(val, str) else "boolean" if isinstance(val, bool) else "number"
        elif key in KEYWORDS:
            want = KEYWORDS[key]
        elif key in UNSUPPORTED:
            raise FilterError(f"Apiary does not support the keyword {key!r}", token.column)
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
        if key in ("group.name", "group.arn"):
            if operator not in ("=", "!="):
                raise FilterError(f"{key} can only be compared with = or !=", op.column)
            ref = GroupRef(key.split(".")[1], str(val))
            return ref if operator == "=" else Not(ref)
        return Compare(key, operator, val)

    def call(self, name: Token, *rest: object) -> Node:
        fn = str(name).lower()
        if fn not in FUNCTIONS:
            raise FilterError(f"unknown function {str(name)!r}: use service(), edge() or id()", name.column)
        inner = rest[-1] if rest and not isinstance(rest[-1], tuple) and rest[-1] is not None else None
        args = [a for a in rest if isinstance(a, tuple)]
        ends = [v for k, v in args if k in (None, "id()")]  # a name, or an id()
        named = {k: v for k, v in args if k not in (None, "id()")}
        if fn == "edge":
            if len(ends) != 2 or named or not all(_plain_id(e) for e in ends):
                raise FilterError('edge takes two services: edge("source", "destination"), either may be '
                                  'id(name: "...", type: "...")', name.column)
            return Edge(ends[0], ends[1], inner)  # type: ignore[arg-type]
        if fn == "service":
            if len(ends) > 1 or named or not all(_plain_id(e) for e in ends):
                raise FilterError('service takes one name or id(): service("backend-flask")', name.column)
            if ends and isinstance(ends[0], Service):
                return Service(ends[0].name, ends[0].type, inner)
            return Service(ends[0] if ends else None, None, inner)  # type: ignore[arg-type]
        unknown = set(named) - {"name", "type"}
        if ends or unknown or not named or inner is not None:
            raise FilterError('id takes name: and type:, e.g. id(name: "backend-flask", type: "AWS::EC2::Instance"), '
                              'and goes inside service() or edge()', name.column)
        return Service(named.get("name"), named.get("type"))


def _root_cause_json(key: str, token: Token, op: Token, operator: str, value: Any) -> Node:
    """``rootcause.json = #[...]``: a list of root-cause objects, each field one Apiary can match."""
    if key not in JSON_KEYWORDS:
        raise FilterError(f"a JSON value (#[...]) goes with rootcause.json, not {key}", token.column)
    if not isinstance(value, list):
        raise FilterError(f'{key} compares with a JSON list of root causes: #[{{ "Services": [ ... ] }}]', token.column)
    if operator not in ("=", "!="):
        raise FilterError(f"{key} can only be compared with = or !=", op.column)
    for cause in value:
        _check_json(cause, "cause", token)
        for service in cause.get("Services", []):
            _check_json(service, "service", token)
            if not all(isinstance(n, str) for n in service.get("Names", [])):
                raise FilterError(f"{key}: Names is a list of strings", token.column)
            for entity in service.get("EntityPath", []):
                _check_json(entity, "entity", token)
    return RootCauseJson(tuple(value), negate=operator == "!=")


def _check_json(obj: Any, level: str, token: Token) -> None:
    if not isinstance(obj, dict):
        raise FilterError(f"rootcause.json: each {level} is a JSON object", token.column)
    fields = JSON_FIELDS[level]
    for name, value in obj.items():
        if name not in fields:
            raise FilterError(f"rootcause.json: Apiary does not match the {level} field {name!r} "
                              f"(it matches {', '.join(fields)})", token.column)
        if not isinstance(value, fields[name]):
            raise FilterError(f"rootcause.json: {name} is a {fields[name].__name__}", token.column)


def _known(token: Token) -> str:
    key = _key(token)
    if key in KEYWORDS or key in JSON_KEYWORDS or key.startswith("annotation.") and len(key) > len("annotation."):
        return key
    if key in UNSUPPORTED:
        raise FilterError(f"Apiary does not support the keyword {key!r}", token.column)
    raise FilterError(f"unknown keyword {str(token)!r}", token.column)


def _plain_id(end: object) -> bool:
    """An end of service() or edge(): a name, or an id() (a `Service` without braces)."""
    return isinstance(end, str) or isinstance(end, Service) and end.inner is None


def check_scopes(node: Node | None, scope: str = "trace") -> None:
    """Every keyword used where it means something (``coverage`` only in a response-time root cause entity ...)."""
    if node is None or isinstance(node, Everything):
        return
    if isinstance(node, (And, Or)):
        check_scopes(node.left, scope)
        check_scopes(node.right, scope)
    elif isinstance(node, Not):
        check_scopes(node.operand, scope)
    elif isinstance(node, (Service, Edge, RootCause)):
        inner_scope = "service" if isinstance(node, Service) else "edge" if isinstance(node, Edge) else \
            f"rootcause.{node.kind}.{node.level}"
        if scope != "trace":
            raise FilterError(f"{_describe(node)} cannot be used inside another filter's braces")
        check_scopes(node.inner, inner_scope)
    elif isinstance(node, GroupRef):
        if scope != "trace":
            raise FilterError(f"group.{node.field} cannot be used inside braces")
    elif isinstance(node, RootCauseJson):
        if scope != "trace":
            raise FilterError("rootcause.json cannot be used inside braces")
    elif not allowed_in(node.key, scope):
        where = "at the top level" if scope == "trace" else f"inside {scope} {{ }}" if scope.startswith("rootcause.") \
            else f"inside {scope}() {{ }}"
        raise FilterError(f"{node.key} cannot be used {where}")


def _describe(node: Node) -> str:
    if isinstance(node, RootCause):
        return f"rootcause.{node.kind}.{node.level}"
    return "service()" if isinstance(node, Service) else "edge()"


def resolve_groups(node: Node | None, expression_of: Callable[[str, str], str], depth: int = 0) -> Node | None:
    """The tree with each ``group.name`` / ``group.arn`` replaced by that group's own expression (parsed).
    ``expression_of(field, value)`` answers the group's filter expression; a group that names itself,
    directly or through others, is refused rather than followed for ever."""
    if node is None:
        return None
    if isinstance(node, GroupRef):
        if depth >= 5:
            raise FilterError("groups refer to each other more than 5 deep (or in a circle)")
        inner = resolve_groups(parse(expression_of(node.field, node.value)), expression_of, depth + 1)
        return inner if inner is not None else Everything()
    if isinstance(node, (And, Or)):
        return type(node)(resolve_groups(node.left, expression_of, depth),  # type: ignore[arg-type]
                          resolve_groups(node.right, expression_of, depth))
    if isinstance(node, Not):
        return Not(resolve_groups(node.operand, expression_of, depth))  # type: ignore[arg-type]
    return node


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
        node = _ToAst().transform(tree)
        check_scopes(node)
        return node
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
