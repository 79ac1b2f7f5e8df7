"""The ``dispatcher`` command. Each group of subcommands lives in its own module here and
registers itself in ``COMMANDS``."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.cli import callerid as callerid_cmd
from dispatcher.cli import campaign as campaign_cmd
from dispatcher.cli import console as console_cmd
from dispatcher.cli import data as data_cmd
from dispatcher.cli import dnc as dnc_cmd
from dispatcher.cli import jobs as jobs_cmd
from dispatcher.cli import limits as limits_cmd
from dispatcher.cli import ops as ops_cmd
from dispatcher.cli import redrive as redrive_cmd
from dispatcher.cli import run as run_cmd
from dispatcher.cli import sim as sim_cmd
from dispatcher.cli.common import Fail, redis_url_shown
from dispatcher.config.settings import ConfigError

COMMANDS = (
    run_cmd,
    jobs_cmd,
    campaign_cmd,
    ops_cmd,
    limits_cmd,
    callerid_cmd,
    dnc_cmd,
    redrive_cmd,
    data_cmd,
    sim_cmd,
    console_cmd,
)
DESCRIPTION = ("Outbound-call dispatcher: jobs from a Redis stream, paced through a voice-AI "
               "provider's API, one result per job back to Redis.")


def package_version() -> str:
    try:
        return version("dispatcher")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dispatcher", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"dispatcher {package_version()}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.fn(args)
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
    sys.exit(code)
