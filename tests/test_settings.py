"""One home for configuration: every `Settings` field is an ``apiary serve`` flag and an ``APIARY_*`` variable, and a
flag beats its variable, which beats the default.

The flag and the variable of each field are read from what a user reads, ``apiary serve --help``; the values are
then set through them, so help that names the wrong variable fails here.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apiary.cli import build_parser
from apiary.server.settings import Settings, from_flags

FIELDS = sorted(Settings.model_fields)


def _serve_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def flag_and_env(field: str) -> tuple[str, str]:
    """The flag that sets ``field`` and the variable its help names."""
    action = next((a for a in _serve_parser()._actions if a.dest == field), None)
    assert action is not None and action.option_strings, f"setting {field} has no `apiary serve` flag"
    found = re.search(r"\(env (APIARY_[A-Z0-9_]+)", action.help or "")
    assert found, f"the help of {action.option_strings[0]} names no APIARY_* variable"
    return action.option_strings[0], found.group(1)


def samples(field: str) -> tuple[list[str], str, Any, Any]:
    """(flag arguments, variable text, the value the flag gives, the value the variable gives) for ``field``."""
    annotation = Settings.model_fields[field].annotation
    if field == "exposure_asked":
        return ["network"], "loopback", "network", "loopback"
    if field == "cors_origins":
        return ["http://127.0.0.1:3000"], "http://a.test, http://b.test", ["http://127.0.0.1:3000"], \
            ["http://a.test", "http://b.test"]
    if annotation is int:
        return ["57"], "59", 57, 59
    if annotation is float:
        return ["2.5"], "3.5", 2.5, 3.5
    if annotation is Path:
        return ["flag-dir"], "env-dir", Path("flag-dir"), Path("env-dir")
    return ["from-flag"], "from-env", "from-flag", "from-env"


def _settings(argv: list[str]) -> Settings:
    return from_flags(_serve_parser().parse_args(argv))


@pytest.fixture(autouse=True)
def _no_apiary_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("APIARY_"):
            monkeypatch.delenv(name)


def test_every_setting_has_a_flag_and_a_variable_in_serve_help() -> None:
    done = subprocess.run([sys.executable, "-m", "apiary", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # argparse wraps lines anywhere
    for field in FIELDS:
        flag, env = flag_and_env(field)
        assert re.search(rf"{re.escape(flag)}\b", text), f"{flag} ({field}) missing from apiary serve --help"
        assert env in text, f"{env} ({field}) missing from apiary serve --help"
    variables = [flag_and_env(f)[1] for f in FIELDS]
    assert len(set(variables)) == len(variables), "two settings share a variable"


@pytest.mark.parametrize("field", FIELDS)
def test_a_flag_beats_its_variable_which_beats_the_default(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env = flag_and_env(field)
    flag_args, env_text, from_flag, from_env = samples(field)
    default = getattr(Settings(), field)
    assert default not in (from_flag, from_env), "pick sample values other than the default"

    assert getattr(_settings([]), field) == default
    monkeypatch.setenv(env, env_text)
    assert getattr(_settings([]), field) == from_env
    assert getattr(_settings([flag, *flag_args]), field) == from_flag


def test_a_bad_variable_is_refused_with_its_name(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "apiary", "serve", "--data", str(tmp_path / "data")],
                          env={"APIARY_PORT": "eighty", "PATH": ""}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--port / APIARY_PORT" in done.stderr and "'eighty'" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()
