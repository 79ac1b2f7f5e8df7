"""``POST /v1/optout``: a person's "don't call me again", reported by the voice agent's tool
call while the call is live. The revocation goes into the consent ledger (and, with
``policy.revoke_adds_dnc``, onto the do-not-call list) before the answer: a 200 means every
worker's next grant of that number sees it.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from aiohttp import web

from dispatcher.config.settings import ConfigError, Settings, read_secret
from dispatcher.core import codec
from dispatcher.core.consent import Revocation, check_text, new_id
from dispatcher.core.numbers import dnc_key, normalise
from dispatcher.engine.http import Handler
from dispatcher.logs import get_logger, mask_number
from dispatcher.store import Store

FIELDS = frozenset({"to", "via"})
DEFAULT_VIA = "opt-out during a call"
MAX_BODY = 4096


def optout_token(settings: Settings) -> str | None:
    """The bearer token from ``optout.token_file``, read once at start-up; None: endpoint off."""
    path = settings.optout.token_file
    if not path:
        return None
    token = read_secret(None, path, "optout.token_file")
    if not token:
        raise ConfigError(f"optout.token_file: {path} is empty")
    return token


def _fail(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def parse(body: bytes) -> tuple[str, str]:
    """(number as E.164, via) from the request body; ValueError names the field."""
    try:
        data: Any = codec.loads(body)
    except ValueError:
        raise ValueError("body: expected a JSON object {\"to\": NUMBER, \"via\": TEXT}") from None
    if not isinstance(data, dict):
        raise ValueError("body: expected a JSON object {\"to\": NUMBER, \"via\": TEXT}")
    extra = sorted(set(data) - FIELDS)
    if extra:
        raise ValueError(f"{extra[0]}: unknown field (expected to, via)")
    to = data.get("to")
    if not isinstance(to, str):
        raise ValueError("to: expected a phone number in E.164 (+14155550100)")
    number = normalise(to, "possible")
    via = data.get("via", DEFAULT_VIA)
    if not isinstance(via, str):
        raise ValueError("via: expected text saying how the person opted out")
    return number, check_text(via, "via")


def optout_handler(settings: Settings, store: Store, token: str | None) -> Handler:
    hashed, add_dnc = settings.policy.dnc_hashed, settings.policy.revoke_adds_dnc
    expected = f"Bearer {token}".encode() if token else b""

    async def handle(req: web.Request) -> web.Response:
        if token is None:
            return _fail(404, "opt-out endpoint off: no optout.token_file is configured")
        given = req.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        body = await req.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _fail(413, f"body: larger than {MAX_BODY} bytes")
        try:
            number, via = parse(body)
        except ValueError as exc:
            return _fail(400, str(exc))
        now = round(time.time() * 1000)
        await store.consent_record([(dnc_key(number, hashed), Revocation(now, via, now,
                                                                         new_id()))],
                                   add_dnc=add_dnc)
        get_logger().info("optout.recorded", to=mask_number(number), via=via, dnc=add_dnc)
        return web.json_response({"ok": True, "revoked": True, "do_not_call": add_dnc})

    return handle
