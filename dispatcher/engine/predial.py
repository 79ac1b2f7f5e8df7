"""The pre-dial hook (``policy.predial_url``): one last word before a number is rung.

Fail-closed: the job is dialled only on a well-formed ``{"allow": true}``. A timeout, an
error status or an answer of the wrong shape raises ``HookFailed`` (the caller waits and asks
again); ``{"allow": false, "reason": ...}`` blocks the job for good.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from dispatcher.core.jobs import Job
from dispatcher.metrics import PREDIAL_SECONDS

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class HookAnswer:
    allow: bool
    reason: str


class HookFailed(Exception):
    """The hook gave no usable answer; the message says why (never the number)."""


def parse_answer(status: int, body: bytes) -> HookAnswer:
    if status != 200:
        raise HookFailed(f"HTTP {status}")
    try:
        data: Any = json.loads(body[:MAX_BODY])
    except (ValueError, RecursionError):
        raise HookFailed("answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("allow"), bool):
        raise HookFailed("answer has no boolean 'allow'")
    reason = data.get("reason")
    return HookAnswer(data["allow"], str(reason)[:300] if reason is not None else "")


async def ask(session: aiohttp.ClientSession, url: str, timeout_s: float, job: Job
              ) -> HookAnswer:
    payload = {"job_id": job.id, "to": job.to, "campaign": job.campaign,
               "metadata": job.metadata}
    started = time.monotonic()
    outcome = "error"
    try:
        async with session.post(url, json=payload,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            answer = parse_answer(resp.status, await resp.content.read(MAX_BODY))
        outcome = "allow" if answer.allow else "deny"
        return answer
    except TimeoutError:
        raise HookFailed(f"no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise HookFailed(f"{type(exc).__name__}") from None
    finally:
        PREDIAL_SECONDS.labels(outcome).observe(time.monotonic() - started)
