"""Structured logs: JSON on stdout (console on a terminal), nothing secret, numbers masked.

Processors are pure callables, so the masking rules are unit-tested on plain dicts.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

PHONE_RE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
SECRET_KEYS = {"api_key", "authorization", "x-api-key", "token", "secret", "password",
               "webhook_secret"}
SECRET_VALUE_RE = re.compile(r"(tel_live_|tel_test_|sk-)[A-Za-z0-9_-]+")


def mask_number(value: str) -> str:
    """Keep the last 3 digits: '+14155550123' -> '+*******123'."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 3:
        return value
    tail = "".join(digits[-3:])
    return ("+" if value.startswith("+") else "") + "*" * (len(digits) - 3) + tail


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        value = SECRET_VALUE_RE.sub(lambda m: m.group(1) + "***", value)
        return PHONE_RE.sub(lambda m: mask_number(m.group(0)), value)
    if isinstance(value, dict):
        return {k: ("***" if str(k).lower() in SECRET_KEYS else _scrub(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Processor: drop secrets, mask phone numbers anywhere in the event."""
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "***"
        elif key not in ("timestamp", "job_id", "call_id", "entry_id"):
            event[key] = _scrub(event[key])
    return event


def configure(fmt: str = "auto", level: str = "info") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def get_logger(**bind: Any) -> Any:
    return structlog.get_logger("dispatcher").bind(**bind)
