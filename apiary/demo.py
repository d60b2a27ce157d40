"""``apiary demo``: Apiary, the Cruddur reference app and some traffic, in one command.

The demo app lives in the repository (``examples/cruddur``), not in the installed
package: ``apiary demo`` is meant to be run from a clone (``scripts/demo`` does
that). This module only finds ``examples/cruddur/demo.py`` and hands over to its
``run_demo``; the app itself talks to Apiary over the wire like any user's app.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

from apiary.server.settings import Settings

DEFAULT_DATA = Path("apiary-demo-data")
#: Files an Apiary data directory holds; the default directory is wiped only when it holds nothing else.
_APIARY_FILES = ("meta.sqlite", "spans.duckdb")


def find_example(start: Path | None = None) -> Path | None:
    """``examples/cruddur/demo.py`` next to this package (editable install from a clone), or under the working directory."""
    candidates = [Path(__file__).resolve().parent.parent]
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for root in candidates:
        demo = root / "examples" / "cruddur" / "demo.py"
        if demo.is_file():
            return demo
    return None


def _load(demo: Path):  # noqa: ANN202 - a module object
    spec = importlib.util.spec_from_file_location("cruddur_demo", demo)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _looks_like_apiary_data(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return any(n in names for n in _APIARY_FILES) and all(
        n.startswith(("meta.sqlite", "spans.duckdb", "logs", "errors", "query", ".")) or n.endswith((".wal", ".tmp"))
        for n in names)


def prepare_data_dir(data: Path | None) -> tuple[Path, str]:
    """A fresh data directory and a sentence saying which.

    No ``--data``: ``./apiary-demo-data``, emptied first if it holds only an earlier demo's files.
    ``--data DIR``: DIR must not exist or be empty (the demo never wipes a directory it was given).
    """
    if data is None:
        data = DEFAULT_DATA
        if data.exists():
            if any(data.iterdir()) and not _looks_like_apiary_data(data):
                raise SystemExit(f"apiary demo: {data.resolve()} exists and is not an earlier demo's data; "
                                 "move it away or pass --data DIR")
            shutil.rmtree(data)
        data.mkdir(parents=True)
        return data.resolve(), f"fresh store in {data.resolve()} (wiped at each `apiary demo`; pass --data to keep one)"
    if data.exists() and any(data.iterdir()):
        raise SystemExit(f"apiary demo: {data} is not empty; the demo starts on a fresh store (give a new directory)")
    data.mkdir(parents=True, exist_ok=True)
    return data.resolve(), f"fresh store in {data.resolve()}"


def cmd_demo(args: argparse.Namespace) -> int:
    demo = find_example()
    if demo is None:
        print("apiary demo: examples/cruddur is missing. The demo app ships with the source, not the package:\n"
              "    git clone <apiary repository> && cd apiary && scripts/demo\n"
              "(or run `apiary demo` from inside a clone)", file=sys.stderr)
        return 2
    data, said = prepare_data_dir(args.data)
    print(f"apiary demo: {said}", flush=True)
    module = _load(demo)
    kwargs = {k: getattr(args, k) for k in ("backend_port", "frontend_port", "xray_port") if getattr(args, k, None) is not None}
    port = args.port if args.port is not None else Settings().port  # read as `apiary serve` reads it
    return int(module.run_demo(str(data), port, args.duration, **kwargs) or 0)


def add_parser(sub: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse's own type
    p = sub.add_parser("demo", help="run Apiary with the Cruddur demo app and traffic (from a clone)",
                       description="Start Apiary on a fresh embedded store, the Cruddur back end and front end "
                                   "(examples/cruddur) and bounded traffic; print the URLs. Ctrl-C stops everything.")
    p.add_argument("--data", type=Path, default=None,
                   help=f"new or empty data directory (default ./{DEFAULT_DATA}, wiped at each run)")
    p.add_argument("--port", type=int, default=None, help="Apiary's HTTP port (env APIARY_PORT, default 4318)")
    p.add_argument("--duration", type=float, default=None, help="stop by itself after this many seconds")
    p.add_argument("--backend-port", type=int, default=None, help="backend-flask's port (default 4567, or a free one)")
    p.add_argument("--frontend-port", type=int, default=None, help="the front end's port (default 3000, or a free one)")
    p.add_argument("--xray-port", type=int, default=None, help="X-Ray daemon UDP/TCP port (default 2000, or a free one; 0 = off)")
    p.set_defaults(func=cmd_demo)


__all__ = ["add_parser", "cmd_demo", "find_example", "prepare_data_dir"]
