"""CloudWatch Logs filter patterns -> a matcher, parsed with the grammar in ``filter_pattern.lark``.

A parsed pattern answers two questions: ``matches(message)``, the exact
answer, and ``prefilter()``, a condition the store can check in SQL that
every matching event satisfies (a term's text must occur in the line, a JSON
pattern's line must start with ``{``). Term patterns are exact in SQL alone;
JSON and space-delimited patterns are narrowed in SQL, then decided here,
line by line -- their semantics (wildcards, numbers compared as numbers,
fields split on spaces but not inside quotes or brackets) are CloudWatch's,
not SQL's. The prefilter is a `MessageFilter`, which ``apiary.query``
renders in the store's dialect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError

from apiary.input_limits import InputError, check_expression
from apiary.query.filter_pattern import MessageFilter

# cache=True: the LALR tables from the temp directory, ~0.01 s instead of ~0.08 s per start-up (bench/testing_startup.py).
_PARSER = Lark(Path(__file__).with_name("filter_pattern.lark").read_text(), parser="lalr", maybe_placeholders=False,
               cache=True)


class PatternError(ValueError):
    """The pattern does not parse; the message points at the offending character."""


Predicate = Callable[[Any], bool]
_MISSING = object()


@dataclass
class Pattern:
    kind: str  # "all" | "terms" | "json" | "space"
    required: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    regexes: list[str] = field(default_factory=list)
    predicate: Predicate | None = None
    #: literal strings that must occur in a matching line (for the SQL prefilter)
    hints: list[str] = field(default_factory=list)
    #: a JSON pattern's selectors, in order (``$.latency``): what TestMetricFilter reports of a matching line
    selectors: list[str] = field(default_factory=list)
    #: a space-delimited pattern's fields (kind, name, condition), to name a matching line's values
    fields: list[tuple[str, str | None, Predicate | None]] = field(default_factory=list)

    @property
    def exact_in_sql(self) -> bool:
        return self.kind in ("all", "terms")

    def prefilter(self) -> MessageFilter:
        """What the store can check in SQL on ``message``: every matching line passes it."""
        return MessageFilter(required=tuple(self.required + self.hints), any_of=tuple(self.optional),
                             excluded=tuple(self.excluded), regexes=tuple(self.regexes), json_object=self.kind == "json")

    def matches(self, message: str) -> bool:
        if self.kind in ("all", "terms"):
            if any(t not in message for t in self.required):
                return False
            if self.optional and not any(t in message for t in self.optional):
                return False
            if any(t in message for t in self.excluded):
                return False
            return all(re.search(r, message) for r in self.regexes)
        assert self.predicate is not None
        if self.kind == "json":
            text = message.lstrip()
            if not text.startswith("{"):
                return False
            try:
                doc = json.loads(text)
            except ValueError:
                return False
            return bool(self.predicate(doc))
        fields = split_fields(message)
        return bool(self.predicate(fields))

    def extracted(self, message: str) -> dict[str, str] | None:
        """The values a metric filter can publish from a matching line (TestMetricFilter's ``extractedValues``), or
        None when it does not match: ``$name`` for each named field of a space-delimited pattern, ``$.a.b`` for each
        selector of a JSON pattern that points at a value (JSON text for anything but a string); none for terms."""
        if not self.matches(message):
            return None
        if self.kind == "space":
            named = _assign(self.fields, split_fields(message)) or {}
            return {f"${name}": value for name, value in named.items()}
        if self.kind == "json":
            doc = json.loads(message.lstrip())
            out = {}
            for sel in self.selectors:
                values = _selector(sel)(doc)
                if values:
                    out[sel] = values[0] if isinstance(values[0], str) else json.dumps(values[0])
            return out
        return {}


def _unquote(tok: Token | str) -> str:
    s = str(tok)
    if s.startswith('"') and s.endswith('"') and len(s) >= 2:
        return re.sub(r"\\(.)", r"\1", s[1:-1])
    return s


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _wildcard(expected: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in expected.split("*")) + "$", re.S)


#: What a regular expression in a filter pattern may hold (AWS's "Supported regular expressions" list):
#: letters and digits, the symbols : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + . -- no
#: parentheses, no other character, nothing beyond ASCII.
_REGEX_ALLOWED = re.compile(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+.]+")
MAX_REGEXES = 2


def regex_body(token: str) -> str:
    """The regular expression of a ``%...%`` term, checked against the subset AWS accepts."""
    body = token[1:-1]
    bad = next((ch for ch in body if not _REGEX_ALLOWED.fullmatch(ch)), None)
    if bad is not None:
        why = "parentheses are not supported" if bad in "()" else f"{bad!r} is not a supported character"
        raise PatternError(f"Invalid regex in filter pattern {token}: {why}")
    try:
        re.compile(body)
    except re.error as exc:
        raise PatternError(f"Invalid regex in filter pattern {token}: {exc}") from None
    return body


def _comparison(op: str, raw: Token) -> Callable[[Any], bool]:
    """A test of one extracted value against ``op raw``, with CloudWatch's typing."""
    if str(raw).startswith("%") and str(raw).endswith("%") and len(str(raw)) > 2:
        if op not in ("=", "!="):
            raise PatternError(f"{op} cannot compare with the regular expression {raw}: use = or !=")
        rx = re.compile(regex_body(str(raw)))

        def matches(v: Any) -> bool:
            return v is not _MISSING and not isinstance(v, (dict, list)) and v is not None and bool(rx.search(
                ("true" if v else "false") if isinstance(v, bool) else str(v)))
        if op == "=":
            return matches
        return lambda v: v is not _MISSING and not matches(v)
    quoted = str(raw).startswith('"')
    expected = _unquote(raw)
    num = None if quoted else _number(expected)
    if op in ("<", ">", "<=", ">="):
        if num is None:
            raise PatternError(f"{op} needs a number, got {expected!r}")
        cmp = {"<": float.__lt__, ">": float.__gt__, "<=": float.__le__, ">=": float.__ge__}[op]

        def numeric(v: Any) -> bool:
            n = _number(v)
            return n is not None and cmp(n, num)
        return numeric
    wild = _wildcard(expected) if "*" in expected else None

    def equal(v: Any) -> bool:
        if v is _MISSING or isinstance(v, (dict, list)):
            return False
        if num is not None and _number(v) is not None:
            return _number(v) == num
        if v is None:
            text = "null"
        elif isinstance(v, bool):
            text = "true" if v else "false"
        else:
            text = str(v)
        return bool(wild.match(text)) if wild else text == expected

    if op == "=":
        return equal
    return lambda v: v is not _MISSING and not equal(v)


_SELECTOR_PART = re.compile(r"\.([A-Za-z_@][\w@\-]*)|\[(\d+|\*)\]")


def _selector(sel: str) -> Callable[[Any], list[Any]]:
    """The values a selector points at in a document: none when missing, several through ``[*]``."""
    steps: list[str | int | None] = []
    for m in _SELECTOR_PART.finditer(sel[1:]):
        if m.group(1) is not None:
            steps.append(m.group(1))
        else:
            steps.append(None if m.group(2) == "*" else int(m.group(2)))

    def get(doc: Any) -> list[Any]:
        current = [doc]
        for s in steps:
            following: list[Any] = []
            for cur in current:
                if s is None:
                    if isinstance(cur, list):
                        following += cur
                elif isinstance(s, int):
                    if isinstance(cur, list) and s < len(cur):
                        following.append(cur[s])
                elif isinstance(cur, dict) and s in cur:
                    following.append(cur[s])
            current = following
        return current
    return get


def _any(get: Callable[[Any], list[Any]], test: Callable[[Any], bool]) -> Predicate:
    def predicate(doc: Any) -> bool:
        values = get(doc)
        return any(test(v) for v in values) if values else test(_MISSING)
    return predicate


@v_args(inline=True)
class _Build(Transformer):
    def __init__(self) -> None:
        super().__init__()
        self.hints: list[str] = []
        self.selectors: list[str] = []

    # terms
    def required(self, t: Token) -> tuple[str, str]:
        return ("required", _unquote(t))

    def optional(self, t: Token) -> tuple[str, str]:
        return ("optional", _unquote(t))

    def excluded(self, t: Token) -> tuple[str, str]:
        return ("excluded", _unquote(t))

    def regex(self, t: Token) -> tuple[str, str]:
        return ("regexes", regex_body(str(t)))

    def term_pattern(self, *terms: tuple[str, str]) -> Pattern:
        p = Pattern("terms" if terms else "all")
        for kind, text in terms:
            getattr(p, kind).append(text)
        return p

    # JSON
    def value(self, t: Token) -> Token:
        return t

    def _note_hint(self, op: str, raw: Token) -> None:
        text = _unquote(raw)
        if str(raw).startswith("%"):
            return
        if op == "=" and re.fullmatch(r"[\w.:/@-]+", text):
            self.hints.append(text)

    def _select(self, sel: Token) -> Callable[[Any], list[Any]]:
        self.selectors.append(str(sel))
        return _selector(str(sel))

    def compare(self, sel: Token, op: Token, raw: Token) -> Predicate:
        self._note_hint(str(op), raw)
        return _any(self._select(sel), _comparison(str(op), raw))

    def is_null(self, sel: Token) -> Predicate:
        get = self._select(sel)
        return lambda doc: any(v is None for v in get(doc))

    def not_exists(self, sel: Token) -> Predicate:
        get = self._select(sel)
        return lambda doc: not get(doc)

    def is_true(self, sel: Token) -> Predicate:
        get = self._select(sel)
        return lambda doc: any(v is True for v in get(doc))

    def is_false(self, sel: Token) -> Predicate:
        get = self._select(sel)
        return lambda doc: any(v is False for v in get(doc))

    def any_of(self, *preds: Predicate) -> Predicate:
        return lambda x: any(p(x) for p in preds)

    def all_of(self, *preds: Predicate) -> Predicate:
        return lambda x: all(p(x) for p in preds)

    def json_pattern(self, pred: Predicate) -> Pattern:
        return Pattern("json", predicate=pred)

    # space-delimited
    def ellipsis(self) -> tuple[str, None, None]:
        return ("...", None, None)

    def named(self, name: Token) -> tuple[str, str, None]:
        return ("field", str(name), None)

    def field_compare(self, name: Token, op: Token, raw: Token) -> tuple[str, Predicate]:
        self._note_hint(str(op), raw)
        test = _comparison(str(op), raw)
        key = str(name)
        return (key, lambda named: test(named.get(key, _MISSING)))

    def conditional(self, expr: Any) -> tuple[str, str, Predicate]:
        name, pred = _first_name(expr), _as_predicate(expr)
        return ("field", name, pred)

    def space_pattern(self, *fields: tuple[str, str | None, Predicate | None]) -> Pattern:
        items = list(fields)

        def predicate(values: list[str]) -> bool:
            named = _assign(items, values)
            if named is None:
                return False
            return all(pred(named) for kind, _, pred in items if pred is not None)
        return Pattern("space", predicate=predicate, fields=items)

    def start(self, p: Pattern) -> Pattern:
        p.hints = list(self.hints)
        p.selectors = list(dict.fromkeys(self.selectors))
        return p


def _first_name(expr: Any) -> str:
    if isinstance(expr, tuple):
        return expr[0]
    return getattr(expr, "_apiary_name", "")


def _as_predicate(expr: Any) -> Predicate:
    return expr[1] if isinstance(expr, tuple) else expr


@v_args(inline=True)
class _BuildSpace(_Build):
    """In a space-delimited pattern, ``any_of``/``all_of`` combine (name, predicate) pairs."""

    def any_of(self, *parts: Any) -> Any:  # type: ignore[override]
        preds = [_as_predicate(p) for p in parts]
        f: Any = lambda x: any(p(x) for p in preds)
        f._apiary_name = _first_name(parts[0])
        return f

    def all_of(self, *parts: Any) -> Any:  # type: ignore[override]
        preds = [_as_predicate(p) for p in parts]
        f: Any = lambda x: all(p(x) for p in preds)
        f._apiary_name = _first_name(parts[0])
        return f


def _assign(items: list[tuple[str, str | None, Predicate | None]], values: list[str]) -> dict[str, str] | None:
    """Field name -> value when the line has the pattern's shape; ``...`` takes any number of fields."""
    n_fixed = sum(1 for k, _, _ in items if k != "...")
    if "..." not in [k for k, _, _ in items]:
        if len(values) != n_fixed:
            return None
        return {name: v for (_, name, _), v in zip(items, values) if name}
    if len(values) < n_fixed:
        return None
    # Fixed fields before the first ellipsis bind from the left, after the last from the right.
    out: dict[str, str] = {}
    kinds = [k for k, _, _ in items]
    first, last = kinds.index("..."), len(kinds) - 1 - kinds[::-1].index("...")
    for (_, name, _), v in zip(items[:first], values):
        if name:
            out[name] = v
    tail = items[last + 1:]
    for (_, name, _), v in zip(tail, values[len(values) - len(tail):] if tail else []):
        if name:
            out[name] = v
    middle = [it for it in items[first:last + 1] if it[0] != "..."]
    if middle:  # fields between two ellipses: bind at the first place the conditions hold
        rest = values[first:len(values) - len(tail)]
        for start in range(0, len(rest) - len(middle) + 1):
            cand = dict(out)
            cand.update({name: v for (_, name, _), v in zip(middle, rest[start:]) if name})
            if all(p(cand) for _, _, p in middle if p is not None):
                return cand
        return None
    return out


_FIELD = re.compile(r'"((?:\\.|[^"\\])*)"|\[([^\]]*)\]|(\S+)')


def split_fields(message: str) -> list[str]:
    """A line's space-delimited fields; "quoted" and [bracketed] runs are one field each, without their marks."""
    out = []
    for m in _FIELD.finditer(message):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(m.group(2))
        else:
            out.append(m.group(3))
    return out


@lru_cache(maxsize=256)
def parse(pattern: str | None) -> Pattern:
    text = (pattern or "").strip()
    if not text:
        return Pattern("all")
    try:
        check_expression(text, "filter pattern")
        tree = _PARSER.parse(text)
    except InputError as exc:
        raise PatternError(f"Invalid filter pattern: {exc}") from None
    except LarkError as exc:
        raise PatternError(f"Invalid filter pattern {text!r}: {_describe(exc)}") from None
    regexes = sum(1 for tok in tree.scan_values(lambda v: isinstance(v, Token) and v.type == "REGEX"))
    if regexes > MAX_REGEXES:
        raise PatternError(f"Invalid filter pattern {text!r}: at most {MAX_REGEXES} regular expressions "
                           f"may be used in one filter pattern, found {regexes}")
    builder = _BuildSpace() if text.startswith("[") else _Build()
    try:
        built: Pattern = builder.transform(tree)
        if "||" in text:  # a literal is required only when every condition must hold
            built.hints = []
        return built
    except LarkError as exc:
        cause = exc.__context__ if isinstance(exc.__context__, PatternError) else exc
        raise PatternError(f"Invalid filter pattern {text!r}: {cause}") from None


def _describe(exc: LarkError) -> str:
    col = getattr(exc, "column", None)
    tok = getattr(exc, "token", None)
    if tok is not None and col is not None:
        return f"unexpected {str(tok)!r} at character {col}"
    if col is not None:
        return f"unexpected character at {col}"
    return str(exc).splitlines()[0]
