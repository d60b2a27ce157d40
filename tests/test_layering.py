"""The seams of the codebase, read from the source with `ast` (never regexes on text).

* Receivers get a narrow sink, never the server: no module under ``apiary/receivers`` imports ``apiary.server``.
* The query layer knows neither the wire formats nor the server: ``apiary/query`` imports no
  ``apiary.receivers`` and no ``apiary.server`` module.
* One road to SQL: no string literal outside ``apiary/store`` and ``apiary/query`` holds SQL. Docstrings and
  comments do not count (comments never reach the syntax tree; docstrings are skipped); f-strings are read
  with their placeholders, so ``f"SELECT {cols} FROM spans"`` is found.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator


ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "apiary"

#: A statement's verb with the word that makes it SQL rather than prose. ``SELECT ... FROM/WHERE`` counts in
#: capitals only, as this codebase writes SQL, because "select a column from the list" is an ordinary
#: sentence; the other verbs count in any case, since their pairs (``insert into``, ``delete from``,
#: ``create table``, ``update t set c =``) do not occur in prose.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\b(FROM|WHERE)\b"
    r"|(?i:\bINSERT\b(\s+OR\s+\w+)?\s+INTO\b)"
    r"|(?i:\bUPDATE\s+[\w.\"`]+\s+SET\s+[\w.\"`]+\s*=)"
    r"|(?i:\bDELETE\s+FROM\b)"
    r"|(?i:\b(CREATE|ALTER|DROP)\s+(TEMP\w*\s+|UNIQUE\s+)?(TABLE|INDEX|VIEW)\b)",
)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (functions and TYPE_CHECKING blocks included).

    ``from a import b`` counts as both ``a`` and ``a.b``, since ``b`` may be a module; relative imports are
    resolved against the file's package.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _forbidden(folder: str, packages: tuple[str, ...]) -> dict[str, list[str]]:
    return {_relative(p): sorted(m for m in imported_modules(p) if any(_under(m, pkg) for pkg in packages))
            for p in _sources(folder)
            if any(_under(m, pkg) for m in imported_modules(p) for pkg in packages)}


def test_receivers_do_not_import_the_server() -> None:
    assert _sources("receivers"), "no receivers found: the test is looking in the wrong place"
    assert _forbidden("receivers", ("apiary.server",)) == {}


def _reads_of_the_whole_context(path: Path) -> list[int]:
    """Lines that read ``<...>.state.apiary``, where the server keeps its whole context."""
    return sorted(node.lineno for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Attribute) and node.attr == "apiary"
                  and isinstance(node.value, ast.Attribute) and node.value.attr == "state")


def test_receivers_and_the_query_layer_reach_the_server_only_through_their_sinks() -> None:
    """No import is needed to read ``request.app.state.apiary``: the import tests above cannot see that."""
    found = {_relative(p): lines for folder in ("receivers", "query") for p in _sources(folder)
             if (lines := _reads_of_the_whole_context(p))}
    assert found == {}


def test_the_query_layer_imports_no_receiver_and_no_server() -> None:
    assert _sources("query")
    assert _forbidden("query", ("apiary.receivers", "apiary.server")) == {}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def string_literals(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but docstrings; an f-string as one text with ``{}`` placeholders."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def sql_literals(source: str) -> list[tuple[int, str]]:
    return sorted((line, text.strip()[:80]) for line, text in string_literals(source) if SQL.search(text))


def test_the_sql_finder_finds_sql_and_skips_prose_docstrings_and_comments() -> None:
    """The seam test below can only pass honestly if this one shows it would fail on SQL."""
    source = '''
"""Module docstring: SELECT name FROM environments is only described here."""
# a comment: DELETE FROM spans
def f(cols, env):
    """Function docstring: INSERT INTO spans VALUES (?)."""
    message = "select a column from the list, then update it"
    a = f"SELECT {cols} FROM spans WHERE _env = ?"
    b = "insert or ignore into xray_groups VALUES (?, ?)"
    c = "UPDATE xray_groups SET name = ? WHERE environment = ?"
    d = "CREATE TABLE IF NOT EXISTS t (x INT)"
    e = "delete from t where x = 1"
    f = "the update was set aside; insert the key; drop the table? no"
    return a
'''
    found = [line for line, _ in sql_literals(source)]
    # Lines 7 to 11; never the docstrings (2, 5), the comment (3) or the prose (6, 12).
    assert found == [7, 8, 9, 10, 11]


def test_no_sql_outside_the_store_and_the_query_layer() -> None:
    offenders: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = _relative(path)
        if rel.startswith(("apiary/store/", "apiary/query/")):
            continue
        found = sql_literals(path.read_text())
        if found:
            offenders[rel] = found
    assert offenders == {}, "SQL belongs in apiary/store or apiary/query"
