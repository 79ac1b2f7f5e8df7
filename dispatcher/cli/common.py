"""What every command shares: loading settings, opening Redis, one-line errors."""

from __future__ import annotations

import argparse
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from dispatcher.config.settings import Settings


T = TypeVar("T")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_redis_url = ["redis://localhost:6379/0"]


class Fail(Exception):
    """A problem the user can fix: printed as one line, exit code 2 (or ``code``)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def redis_url_shown() -> str:
    return _redis_url[0]


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from --config, the environment and --redis-url (which wins)."""
    from dispatcher.config.settings import load_settings
    url = getattr(args, "redis_url", None)
    if url:
        if not url.startswith(REDIS_SCHEMES):
            raise Fail(f"--redis-url: expected redis://host:port/db, rediss://… or unix://…, "
                       f"got {url!r}")
        os.environ["DISPATCHER_REDIS__URL"] = url
    settings = load_settings(getattr(args, "config", None))
    if not settings.redis.url.startswith(REDIS_SCHEMES):
        raise Fail(f"redis.url: expected redis://host:port/db, rediss://… or unix://…, "
                   f"got {settings.redis.url!r}")
    _redis_url[0] = settings.redis.url
    return settings


def config_in_use(args: argparse.Namespace) -> str | None:
    """The configuration file the command read (absolute), or None when it read none: no
    --config, no $DISPATCHER_CONFIG and no config/dispatcher.toml in the current directory."""
    from dispatcher.config.settings import DEFAULT_CONFIG_PATH
    path = getattr(args, "config", None) or os.environ.get("DISPATCHER_CONFIG")
    if not path:
        path = DEFAULT_CONFIG_PATH if Path(DEFAULT_CONFIG_PATH).is_file() else None
    return str(Path(path).resolve()) if path else None


def provider_config(settings: Settings, name: str) -> Any:
    """A configured provider's settings, or a one-line error naming the configured ones."""
    cfg = settings.providers.get(name)
    if cfg is None:
        known = ", ".join(sorted(settings.providers)) or "none configured"
        raise Fail(f"provider {name!r} is not configured (configured: {known})")
    return cfg


def open_store(settings: Settings) -> Any:
    from dispatcher.store import Store, connect
    return Store(connect(settings.redis), settings.redis.namespace, settings.results.maxlen)


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio
    return asyncio.run(coro)


def add_redis_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--config", metavar="FILE",
                    help="TOML configuration (default: $DISPATCHER_CONFIG, else "
                         "config/dispatcher.toml when it exists)")
    sp.add_argument("--redis-url", metavar="URL", help="overrides redis.url")


async def audited(store: Any, action: Any, target: str, detail: str = "") -> None:
    """Record an operator action taken from the command line (``action``: an
    ``ops.audit.Action``) in the audit trail, as ``cli@HOST``."""
    from dispatcher.ops.audit import cli_by, record
    await record(store, action, target, cli_by(), via="cli", detail=detail)
