"""Dramatiq actors doing the same work, paced by Dramatiq's WindowRateLimiter.

Dramatiq has one window per limiter; two windows mean two limiters acquired one after the
other (not atomically): a token taken from the first is lost when the second refuses.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

REDIS = os.environ["BENCH_REDIS"]
dramatiq.set_broker(RedisBroker(url=REDIS))
_backend = RedisBackend(url=REDIS)
LIMITERS = [WindowRateLimiter(_backend, f"calls-{i}", limit=int(n), window=int(w))
            for i, (n, w) in enumerate(json.loads(os.environ.get("BENCH_WINDOWS", "[]")))]
URL = os.environ.get("BENCH_SIM_URL", "") + "/api/v1/public/calls/outbound"
KEY = os.environ.get("BENCH_KEY", "")


def _post(job: dict[str, Any]) -> None:
    body = json.dumps({"phone_number_id": "tel_pn_main", "destination_number": job["to"],
                       "metadata": {"dispatcher_job_id": job["id"]}}).encode()
    req = urllib.request.Request(URL, data=body, method="POST", headers={
        "Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
    except urllib.error.HTTPError:
        pass  # counted on the provider side


def _paced(job: dict[str, Any], i: int = 0) -> None:
    if i == len(LIMITERS):
        _post(job)
        return
    with LIMITERS[i].acquire():  # raises RateLimitExceeded -> Dramatiq retries later
        _paced(job, i + 1)


@dramatiq.actor(max_retries=100_000, min_backoff=200, max_backoff=2000)
def call(job: dict[str, Any]) -> None:
    _paced(job)
