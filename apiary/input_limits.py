"""Limits every parser applies to what a client sends: nesting depth and valid Unicode.

Python's ``json`` module, protobuf's JSON mapping and lark's tree walkers all
recurse, once or more per level of nesting. A body of 100,000 ``[`` or a
query of 300 nested parentheses then raised ``RecursionError`` deep inside a
receiver, which answered 500 (or dropped the connection) instead of the
protocol's 400. Here JSON is parsed by ``json``'s C scanner (which guards its
own recursion) and its depth measured by a walk that does not recurse; query
text is measured before its grammar sees it. Each receiver then refuses such
input in its own words before any recursive code of its own runs.

``\\ud800`` is valid JSON text but a lone UTF-16 surrogate is no character:
Python keeps it in a ``str`` that neither Arrow nor the databases can encode,
so it must be refused at the door too.

The limits are far above what a real client sends: the OTel SDKs nest
OTLP/JSON about 8 levels deep plus the depth of a ``kvlistValue`` attribute,
libhoney and watchtower 2-3, pyrollbar's payload about 10 plus the locals it
captures (which it cuts at 5 levels itself).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deepest JSON nesting any receiver accepts (arrays and objects).
MAX_JSON_DEPTH = 100
#: Deepest bracket nesting any query language accepts (filter patterns, Logs Insights, X-Ray filters).
MAX_EXPRESSION_DEPTH = 50

#: A ``\uD800``-``\uDFFF`` escape: the only way a lone surrogate gets into valid UTF-8 JSON.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_NEGATION = re.compile(r"(?<![\w.$@])not\b|!(?!=)", re.I)
_NEGATION_RUN = re.compile(r"(?:(?:(?<![\w.$@])not\b|!(?!=))\s*)+", re.I)


class InputError(ValueError):
    """The input is too deeply nested or not valid Unicode; the message says which, for a 400."""


def deeper_than(doc: Any, limit: int) -> bool:
    """Does ``doc`` nest arrays/objects more than ``limit`` levels deep? Walked level by level, without recursion.

    Measured on the parsed document rather than on the bytes: cutting the strings out of the body
    with a regular expression, to count brackets outside them, cost 5-20x ``json.loads`` itself;
    this walk visits each container once and stops at the first level past the limit
    (``bench/input_limits.py`` prints what it adds).
    """
    level = [doc]
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            below += [c for c in (node.values() if node.__class__ is dict else node)
                      if c.__class__ is dict or c.__class__ is list]
        level = below
        depth += 1
    return False


def load_json(body: bytes | str, what: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses, with `InputError`, what no receiver may pass on.

    * nesting deeper than ``max_depth`` (``json.loads`` itself stops at Python's recursion limit,
      ~1,000 levels, with ``RecursionError``; what the receivers do next recurses too);
    * lone UTF-16 surrogates (``"\\ud800"``), which no UTF-8 store can hold;
    * ``NaN`` / ``Infinity`` literals are not JSON: they load as ``null`` (a float column cannot
      keep them: one NaN makes every SUM and AVG of its column NaN).

    Other syntax errors raise ``ValueError`` as ``json.loads`` does, for the caller's own message.
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        doc = json.loads(data, parse_constant=lambda _name: None)
    except RecursionError:
        raise InputError(f"{what} is nested more than {max_depth} levels deep; at most {max_depth} are accepted") from None
    if isinstance(doc, (dict, list)) and deeper_than(doc, max_depth):
        raise InputError(f"{what} is nested more than {max_depth} levels deep; at most {max_depth} are accepted")
    if _SURROGATE_ESCAPE.search(data):
        bad = first_invalid_string(doc)
        if bad is not None:
            raise InputError(f"{what} holds a string that is not valid Unicode (a lone UTF-16 surrogate): {bad!r}")
    return doc


def first_invalid_string(doc: Any) -> str | None:
    """The first string (key or value) in ``doc`` that cannot be encoded as UTF-8, walked without recursion."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not _encodable(node):
                return node[:40]
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def valid_text(text: str) -> bool:
    """True when ``text`` has no lone surrogate (it can be stored as UTF-8)."""
    return _encodable(text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expression_depth(text: str, opening: str = "([{", closing: str = ")]}") -> int:
    """The deepest bracket nesting of a query expression, outside quoted strings, without recursion.

    Quotes are ``"`` and ``'`` with backslash escapes, as every Apiary query grammar writes strings;
    an unterminated string ends the count (the parser reports it).
    """
    depth = deepest = 0
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in opening:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in closing:
            depth = max(0, depth - 1)
    return deepest


def prefix_run(text: str) -> int:
    """The longest run of prefix negations (``not not not ...``, ``! ! !``): each is a level of nesting too."""
    return max((len(_NEGATION.findall(m.group(0))) for m in _NEGATION_RUN.finditer(text)), default=0)


def check_expression(text: str, language: str, max_depth: int = MAX_EXPRESSION_DEPTH) -> None:
    """Raise `InputError` when ``text`` nests deeper than ``max_depth`` or holds a lone surrogate.

    Nesting is bracket depth plus the longest run of negations, an upper bound on how deep the
    parse tree goes, so no grammar's tree walk reaches Python's recursion limit.
    """
    depth = expression_depth(text) + prefix_run(text)
    if depth > max_depth:
        raise InputError(f"{language} nests {depth} levels of brackets and negations; at most {max_depth} are accepted")
    if not _encodable(text):
        raise InputError(f"{language} is not valid Unicode (it holds a lone UTF-16 surrogate)")
