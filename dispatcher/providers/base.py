"""What every provider dialect shares: the HTTP transport, error and header parsing, call state.

Parsing is pure (status, headers, body in; normalised values out). The transport turns every
aiohttp failure into a ProviderError that says whether the request may have reached the
provider (``sent``): a timeout after sending is *unknown*, not a failure.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from dispatcher.core import codec
from dispatcher.core.classify import ProviderError
from dispatcher.core.limits import header_window_seconds
from dispatcher.core.margins import SENDING

TERMINAL_ANSWERS = {"human", "machine", "user_rejected", "user_unavailable", "user_busy",
                    "unknown"}


@dataclass(frozen=True)
class RateObservation:
    """One window as the provider reports it in ``X-RateLimit-*-<window>`` headers."""

    seconds: float
    limit: int | None
    remaining: int
    reset_s: float


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return codec.loads_exact(self.body)  # integers beyond 64 bits stay integers


class ProviderFailure(Exception):
    def __init__(self, error: ProviderError, rate: tuple[RateObservation, ...] = ()):
        super().__init__(f"{error.status} {error.code}: {error.message}")
        self.error = error
        self.rate = rate


@dataclass(frozen=True)
class StartResult:
    call_id: str
    rate: tuple[RateObservation, ...]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: integer seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - (time.time() if now is None else now))


_RATE_RE = re.compile(r"^x-ratelimit-(limit|remaining|reset)-(.+)$", re.I)


def parse_rate_headers(headers: Mapping[str, str]) -> tuple[RateObservation, ...]:
    found: dict[float, dict[str, float]] = {}
    for name, value in headers.items():
        if name[:12].lower() != "x-ratelimit-":
            continue  # most headers: no regular expression run
        match = _RATE_RE.match(name)
        if not match:
            continue
        seconds = header_window_seconds(match.group(2))
        if seconds is None:
            continue
        try:
            found.setdefault(seconds, {})[match.group(1).lower()] = float(value)
        except ValueError:
            continue
    out = []
    for seconds, vals in sorted(found.items()):
        if "remaining" in vals:
            limit = vals.get("limit")
            out.append(RateObservation(seconds, None if limit is None else int(limit),
                                       int(vals["remaining"]), vals.get("reset", seconds)))
    return tuple(out)


def parse_error(resp: Response) -> ProviderError:
    """Either envelope (TelEcho ``{"error": {...}}``, itellicoAI flat, FastAPI ``detail``)."""
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    code, message = f"http_{resp.status}", ""
    fields: tuple[str, ...] = ()
    enveloped = False
    try:
        body = resp.json()
    except (ValueError, UnicodeDecodeError):
        body = None
        message = resp.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        err = body.get("error")
        enveloped = isinstance(err, dict) or any(k in body for k in ("code", "detail"))
        if isinstance(err, dict):
            code = str(err.get("code") or err.get("type") or code)
            message = str(err.get("message") or "")
        else:
            if body.get("code"):
                code = str(body["code"])
            message = str(body.get("message") or "")
            detail = body.get("detail")
            errors = body.get("errors")
            if isinstance(detail, list):  # FastAPI validation body
                fields = tuple(".".join(str(p) for p in d.get("loc", [])[1:]) or "?"
                               for d in detail if isinstance(d, dict))
                message = message or "; ".join(
                    f"{name}: {d.get('msg', '')}"
                    for name, d in zip(fields, detail, strict=False))
                if code.startswith("http_"):
                    code = "validation_error"
            elif isinstance(detail, str) and not message:
                message = detail
            if isinstance(errors, list):
                fields = tuple(str(e.get("field")) for e in errors if isinstance(e, dict))
                extra = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors
                                  if isinstance(e, dict))
                message = f"{message} ({extra})" if extra else message
    return ProviderError(status=resp.status, code=code, message=message[:500],
                         retry_after_s=retry_after, fields=fields, enveloped=enveloped)


class Transport:
    """One aiohttp session per provider account; every failure becomes a ProviderError."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float, limit: int):
        """``limit``: the creates a worker may have in flight; as many polls and look-ups may
        be on their way besides, so none of them waits for a connection behind a slow create
        (a dead worker's calls were looked up and polled seconds late that way)."""
        self.base_url = base_url
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(5.0, timeout_s))
        self._limit = 2 * limit
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, json_serialize=codec.dumps,
                connector=aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300))
        return self._session

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: dict[str, str] | None = None) -> Response:
        """One request; its grant learns when it was answered (see margins.py), failures
        included: a request that timed out may have been counted up to then."""
        clock = SENDING.get()
        try:
            if clock is not None:
                clock.sending()
            async with self._sess().request(method, self.base_url + path, json=body,
                                            params=params, allow_redirects=False) as response:
                if clock is not None:
                    clock.answered(time.monotonic())
                data = await response.read()
                return Response(response.status, response.headers, data)  # case-insensitive
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise ProviderFailure(ProviderError(None, "connect_failed", _brief(exc),
                                                sent=False)) from None
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderFailure(ProviderError(None, "timeout", _brief(exc))) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ProviderFailure(ProviderError(None, "connection_reset", _brief(exc))) from None
        finally:
            if clock is not None:
                clock.answered(time.monotonic())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def expect_json(resp: Response) -> dict[str, Any]:
    """A 2xx body that must be a JSON object; anything else is an ambiguous answer."""
    try:
        body = resp.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ProviderFailure(ProviderError(resp.status, "malformed_response",
                                            "response body is not a JSON object"),
                              parse_rate_headers(resp.headers))
    return body


def check(resp: Response) -> dict[str, Any]:
    if resp.status >= 300:
        raise ProviderFailure(parse_error(resp), parse_rate_headers(resp.headers))
    return expect_json(resp)


def started(resp: Response) -> StartResult:
    """The call id of a created call, or an ambiguous answer (the call may exist)."""
    body = check(resp)
    call_id = body.get("call_id") or body.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise ProviderFailure(ProviderError(resp.status, "malformed_response",
                                            "no call id in the response"))
    return StartResult(call_id, parse_rate_headers(resp.headers))


def parse_time(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# Neither provider documents a billed duration on its call object; one that adds it under
# this name is believed over the dispatcher's own rounding of duration_seconds.
BILLED_FIELD = "billed_duration_seconds"


def as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
