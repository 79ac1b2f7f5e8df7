"""The command's own help: every subcommand described, typos answered, --version and --help
without the heavy imports (aiohttp, redis, pydantic...) that only real work needs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from dispatcher.cli import build_parser
from tests.integration.test_cli_errors import cli, one_clear_line

HEAVY = ("aiohttp", "redis", "pydantic", "pydantic_settings", "structlog", "prometheus_client",
         "phonenumbers", "orjson", "dispatcher.config.settings", "dispatcher.store")


def subparsers(p: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                out[f"{path}{name}"] = sp
                out.update(subparsers(sp, f"{path}{name} "))
    return out


def test_every_subcommand_has_a_description_in_its_help() -> None:
    commands = subparsers(build_parser())
    assert {"status", "resume", "simulate", "demo", "campaign status"} <= set(commands)
    missing = [name for name, sp in commands.items() if not (sp.description or "").strip()]
    assert missing == []
    out = cli("status", "--help")
    assert out.returncode == 0 and commands["status"].description.split()[0] in out.stdout


@pytest.mark.parametrize(("args", "suggestion"), [
    (["stauts"], "did you mean 'status'?"),
    (["reusme", "default"], "did you mean 'resume'?"),
    (["campaign", "pasue", "spring"], "did you mean 'pause'?"),
])
def test_a_mistyped_command_gets_a_suggestion(args: list[str], suggestion: str) -> None:
    out = cli(*args)
    one_clear_line(out, suggestion)


def test_a_command_nothing_like_any_other_lists_the_commands() -> None:
    out = cli("xyzzy")
    one_clear_line(out, "unknown command 'xyzzy'")
    assert "status" in out.stderr and "did you mean" not in out.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["status", "--help"],
                                  ["run", "--help"], ["campaign", "--help"]])
def test_version_and_help_do_not_import_the_heavy_modules(args: list[str]) -> None:
    code = ("import sys\n"
            "from dispatcher.cli import main\n"
            "try:\n"
            f"    main({args!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"heavy = {HEAVY!r}\n"
            "print('\\n' + __import__('json').dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in heavy or m in heavy)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == []
