"""The ``dispatcher`` command. Each group of subcommands lives in its own module here and
registers itself in ``COMMANDS``."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any, NoReturn

from dispatcher import __version__
from dispatcher.cli import audit as audit_cmd
from dispatcher.cli import callerid as callerid_cmd
from dispatcher.cli import campaign as campaign_cmd
from dispatcher.cli import consent as consent_cmd
from dispatcher.cli import console as console_cmd
from dispatcher.cli import data as data_cmd
from dispatcher.cli import dnc as dnc_cmd
from dispatcher.cli import jobs as jobs_cmd
from dispatcher.cli import limits as limits_cmd
from dispatcher.cli import ops as ops_cmd
from dispatcher.cli import redrive as redrive_cmd
from dispatcher.cli import reindex as reindex_cmd
from dispatcher.cli import run as run_cmd
from dispatcher.cli import sim as sim_cmd
from dispatcher.cli.common import Fail, redis_url_shown

# Command modules import what their work needs (aiohttp, redis, pydantic...) inside the
# command: --version and --help answer without loading any of it.
COMMANDS = (
    run_cmd,
    jobs_cmd,
    campaign_cmd,
    ops_cmd,
    limits_cmd,
    callerid_cmd,
    dnc_cmd,
    consent_cmd,
    redrive_cmd,
    reindex_cmd,
    audit_cmd,
    data_cmd,
    sim_cmd,
    console_cmd,
)
DESCRIPTION = ("Outbound-call dispatcher: jobs from a Redis stream, paced through a voice-AI "
               "provider's API, one result per job back to Redis.")


class Parser(argparse.ArgumentParser):
    """An unknown command is named with the closest known one ("did you mean 'status'?")."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if not isinstance(action, argparse._SubParsersAction) or choices is None \
                or value in choices:
            super()._check_value(action, value)
            return
        names = sorted(str(c) for c in choices)
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(names)}"
        self.error(f"unknown command {value!r}; {hint}")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n(see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dispatcher", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"dispatcher {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = _call(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught
    except BrokenPipeError:  # `dispatcher results | head -3`: the reader has what it wanted
        from dispatcher.logs import EXIT_OUTPUT_GONE, silence_stdout
        silence_stdout()
        code = EXIT_OUTPUT_GONE
    sys.exit(code)


def _call(args: argparse.Namespace) -> int:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from dispatcher.config.settings import ConfigError
    try:
        code: int = args.fn(args)
    except Fail as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        code = exc.code
    except ConfigError as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        code = 2
    except (RedisConnectionError, RedisTimeoutError) as exc:
        from dispatcher.logs import safe_url
        print(f"dispatcher: cannot reach Redis at {safe_url(redis_url_shown())}: {exc}",
              file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    return code
