"""Structured logs: JSON on stdout (console on a terminal), nothing secret, numbers masked.

Masking goes by field, not by a digit regex over everything: ids, URLs, consumer names, event
ids and UUIDs stay readable (operators grep for them), phone fields are masked to their last
digits, and only free-text fields are searched for E.164 numbers and key shapes. A string
under any other key (a producer's metadata: ``mobile``, ``phone_alt``) is masked too when the
whole value looks like a phone number (``looks_like_phone``), and E.164 numbers inside it
are. Processors are pure callables, so the rules are unit-tested on plain dicts.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import IO, Any

import structlog

PHONE_KEYS = frozenset({"to", "from", "number", "numbers", "destination_number", "to_number",
                        "from_number", "phone", "phone_number"})
"""Values under these keys (at any depth) are phone numbers: masked to the last 3 digits."""

FREE_TEXT_KEYS = frozenset({"error_message", "message", "reason", "detail", "error",
                            "exception", "exc_value", "exc_notes"})
"""Prose (ours, a provider's, an exception's): only number- and key-shaped substrings masked."""

SECRET_KEYS = frozenset({"api_key", "apikey", "authorization", "x-api-key", "token", "secret",
                         "password", "webhook_secret"})
_SECRET_WORDS = ("secret", "password", "token")

SECRET_VALUE_RE = re.compile(r"\b(tel_live_|tel_test_|sk-)[A-Za-z0-9_-]+")
E164_RE = re.compile(r"\+\d(?:[ .()\-]{0,2}\d){6,14}")
_URL_PASSWORD_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*):[^\s@]+@")

# a phone number in any usual spelling: an optional +, then digits grouped by spaces, dashes,
# dots or parentheses; what else is made of those characters is told apart below
_PHONE_SHAPE_RE = re.compile(r"\+?\(?[0-9][0-9 ().-]*")
_NOT_PHONE_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # an ISO date
    r"|[0-9]{13}-[0-9]+"  # a stream entry id (epoch ms - sequence)
    r"|[0-9]+\.[0-9]+"  # a decimal amount
    r"|[0-9]{1,3}(?:\.[0-9]{1,3}){3}")  # an IPv4 address
PHONE_DIGITS = (7, 15)

_UNTOUCHED = frozenset({"event", "timestamp", "level"})
_MASK = "***"


def is_secret_key(name: str) -> bool:
    """True for keys whose value must never be logged (api_key, X-Webhook-Secret, ...)."""
    low = name.lower()
    return low in SECRET_KEYS or any(w in low for w in _SECRET_WORDS)


def mask_number(value: str) -> str:
    """Keep the last 3 digits: '+14155550123' -> '+********123'."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 3:
        return value
    tail = "".join(digits[-3:])
    return ("+" if value.lstrip().startswith("+") else "") + "*" * (len(digits) - 3) + tail


def looks_like_phone(value: str) -> bool:
    """True when the whole of ``value`` (trimmed) is a phone number in some spelling: an
    optional ``+``, 7 to 15 digits, spaces, dashes, dots and parentheses only, starting with a
    digit, ``+`` or ``(`` and ending with a digit — and not an ISO date, a stream entry id
    (``1700000000000-0``), a decimal amount (``1234.56``) or an IPv4 address."""
    text = value.strip()
    if not _PHONE_SHAPE_RE.fullmatch(text) or not text[-1].isdigit():
        return False
    digits = sum(c.isdigit() for c in text)
    return PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1] and not _NOT_PHONE_RE.fullmatch(text)


def mask_value(value: str) -> str:
    """A value under a key that is not a phone key: masked whole when it looks like a phone
    number, else only the E.164 numbers inside it."""
    if looks_like_phone(value):
        return mask_number(value)
    return E164_RE.sub(lambda m: mask_number(m.group(0)), value) if "+" in value else value


def safe_url(url: str) -> str:
    """Hide only the password: 'redis://u:pw@h:6379/0' -> 'redis://u:***@h:6379/0'.

    The authority ends at the first '/', '?' or '#', as in urllib (and so in redis-py): an
    '@' after it belongs to the path, not to a password.
    """
    scheme, sep, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if not sep or "@" not in authority:
        return url
    userinfo = authority.rsplit("@", 1)[0]
    if ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{_MASK}@{rest[len(userinfo) + 1:]}"


def scrub_text(text: str) -> str:
    """Free text: key shapes, URL passwords and E.164 numbers go; everything else stays."""
    text = SECRET_VALUE_RE.sub(lambda m: m.group(1) + _MASK, text)
    text = _URL_PASSWORD_RE.sub(lambda m: m.group(1) + ":" + _MASK + "@", text)
    return mask_value(text)


def _mask_phone(value: Any) -> Any:
    if isinstance(value, str):
        return mask_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return mask_number(str(value))
    return _on_strings(value, mask_number)


def _on_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """Apply ``fn`` to strings in lists; dicts inside go back to the per-key rules."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return _walk(value)
    if isinstance(value, list | tuple):
        return [_on_strings(v, fn) for v in value]
    return value


def _walk(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: clean_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v) for v in value]
    return mask_value(value) if isinstance(value, str) else value


@functools.lru_cache(maxsize=1024)
def _rule(key: str) -> str:
    """Which masking rule a key gets; cached, since log keys are few and repeat per line."""
    low = key.lower()
    if is_secret_key(low):
        return "secret"
    if low in PHONE_KEYS:
        return "phone"
    if low in FREE_TEXT_KEYS:
        return "text"
    if low == "url" or low.endswith("_url"):
        return "url"
    if low in ("id", "ids") or low.endswith(("_id", "_ids")):
        return "id"  # an all-digit job or call id is an id, whatever it looks like
    return "plain"


def clean_field(key: str, value: Any) -> Any:
    """The value as it may be logged under ``key``."""
    rule = _rule(key)
    if rule == "plain":
        return _walk(value)
    if rule == "id":
        return _walk(value) if isinstance(value, Mapping) else value
    if rule == "secret":
        return _MASK
    if rule == "phone":
        return _mask_phone(value)
    return _on_strings(value, scrub_text if rule == "text" else safe_url)


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Processor: drop secrets, mask phone fields, scrub free text; leave the rest readable."""
    for key in list(event):
        if key not in _UNTOUCHED:
            event[key] = clean_field(key, event[key])
    return event


EXIT_OUTPUT_GONE = 141
"""Exit code when stdout's reader went away: what a shell shows for a process that SIGPIPE
ended (Python ignores SIGPIPE, so it has to say so itself)."""


def silence_stdout(stream: IO[str] | None = None) -> None:
    """Point stdout (or ``stream``) at /dev/null: what is still buffered, and the flush at
    exit, go nowhere instead of raising BrokenPipeError again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, (stream or sys.stdout).fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass


def _pipe_fd(file: IO[str]) -> int | None:
    """The descriptor of ``file`` when it is a pipe, else None."""
    try:
        fd = file.fileno()
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):  # not a real file (a test's capture)
        return None


class SafeOutput:
    """Where log lines go: a write that fails (the reader of a pipe went away, a full disk)
    never raises into the code that logs. The first failure silences the output and calls
    ``on_lost`` once (a worker stops: it can no longer say what it does); later lines are
    dropped.

    Nor does a write wait: on a pipe (``| jq``, ``| less``) whose reader falls behind, a
    line that does not fit is dropped and counted, and the count is written as a
    ``log.dropped`` line once there is room again; a line is written whole or not at all."""

    def __init__(self, file: IO[str]):
        self.on_lost: Callable[[], None] | None = None
        self.use(file)

    def use(self, file: IO[str]) -> None:
        self.file, self.lost, self.pending, self.dropped = file, False, b"", 0
        self.fd = _pipe_fd(file)
        if self.fd is not None:
            file.flush()
            os.set_blocking(self.fd, False)

    def msg(self, message: str) -> None:
        if self.lost:
            return
        try:
            if self.fd is None:
                self.file.write(message + "\n")
                self.file.flush()
            elif not (self._catch_up()
                      and self._send((message + "\n").encode("utf-8", "replace"))):
                self.dropped += 1
        except (OSError, ValueError):  # ValueError: the file was closed
            self.lost = True
            if self.file is sys.stdout:
                silence_stdout()
            if self.on_lost is not None:
                self.on_lost()

    def _send(self, data: bytes) -> bool:
        """Write what fits now; the rest of a line begun is kept for the next write."""
        assert self.fd is not None
        try:
            self.pending = data[os.write(self.fd, data):]
        except BlockingIOError:
            return False
        return True

    def _catch_up(self) -> bool:
        """The rest of a line begun, then the count of lines dropped: True once written."""
        if self.pending and not self._send(self.pending):
            return False
        if self.pending:
            return False
        if self.dropped:
            note = json.dumps({"event": "log.dropped", "lines": self.dropped,
                               "level": "warning", "reason": "stdout's reader fell behind"})
            if not self._send((note + "\n").encode()):
                return False
            self.dropped = 0
        return not self.pending

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


OUTPUT = SafeOutput(sys.stdout)


def on_output_lost(callback: Callable[[], None] | None) -> None:
    """Called once when log lines can no longer be written."""
    OUTPUT.on_lost = callback


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Exceptions are rendered (without locals) before ``scrub``, so their text is masked."""
    OUTPUT.use(sys.stdout)
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: Any
    exceptions: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer()
        exceptions = structlog.processors.ExceptionRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
        exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            exceptions,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)),
        logger_factory=lambda *_: OUTPUT,
        cache_logger_on_first_use=True,
    )
    _threshold[0] = getattr(logging, level.upper(), logging.INFO)


_threshold = [logging.INFO]


def info_on() -> bool:
    """Whether info lines are written: the hot path skips building the ones that are not."""
    return _threshold[0] <= logging.INFO


def get_logger(**bind: Any) -> Any:
    return structlog.get_logger("dispatcher").bind(**bind)
