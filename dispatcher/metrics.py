"""Prometheus metrics: one registry per process, stable names.

Every label value must come from a closed set: configured provider names (through
``provider_label``), outcome and reason enums, op names, HTTP status classes. Never a
value a job or a provider response supplies: each distinct value is a new series kept
for the life of the process, and /metrics grows without bound.

Two kinds of metric live here. Those below count what *this process* did (requests, results
it wrote, 429s it saw): sum them across pods. What the *deployment* is (queues, waits,
windows, halts) is read from Redis at scrape time by ``dispatcher.engine.collector``, so every pod
reports the same value: take ``max`` of those, never ``sum``.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

UNKNOWN_PROVIDER = "unknown"
_known_providers: frozenset[str] = frozenset()


def set_known_providers(names: Iterable[str]) -> None:
    """Declare the configured provider names (once at start-up; replaces the previous set)."""
    global _known_providers
    _known_providers = frozenset(names)
    for name in _known_providers:  # a counter that has not moved yet still reads 0
        TRACKING_GAVE_UP.labels(name)


@lru_cache(maxsize=4096)  # every label comes from a closed set (see above)
def _child(metric: Counter, labels: tuple[str, ...]) -> Counter:
    return metric.labels(*labels)


def count(metric: Counter, *labels: str) -> None:
    """``metric.labels(*labels).inc()``, the child looked up once: ``labels()`` takes a lock
    and checks every value, and a few counters are counted at every call start."""
    _child(metric, labels).inc()


def provider_label(name: str | None) -> str:
    """The ``provider`` label: the name when configured, else "unknown" (a job's typo)."""
    return name if name is not None and name in _known_providers else UNKNOWN_PROVIDER


REQUESTS = Counter("dispatcher_provider_requests_total", "Requests sent to a provider",
                   ["provider", "op", "status"], registry=REGISTRY)
RESULTS = Counter("dispatcher_results_total", "Results written", ["provider", "outcome"],
                  registry=REGISTRY)
DEFERRALS = Counter("dispatcher_deferrals_total", "Jobs put back to wait",
                    ["provider", "reason"], registry=REGISTRY)
RATE_LIMITED = Counter("dispatcher_rate_limited_total", "429 answers from a provider",
                       ["provider", "code"], registry=REGISTRY)
HALTS = Counter("dispatcher_halts_total", "Provider halts", ["provider", "code"],
                registry=REGISTRY)
INFLIGHT = Gauge("dispatcher_inflight_jobs", "Jobs held by this process", registry=REGISTRY)
PACING_WAIT = Histogram("dispatcher_pacing_wait_seconds", "Time spent waiting for a token",
                        ["provider"], registry=REGISTRY,
                        buckets=(0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60))
CALL_ERRORS = Counter("dispatcher_call_errors_total", "Calls that ended with a system error",
                      ["provider", "reason"], registry=REGISTRY)
TRACKING_GAVE_UP = Counter("dispatcher_tracking_gave_up_total",
                           "Calls whose end was not learned within tracking.max_track_s",
                           ["provider"], registry=REGISTRY)
BUILD_INFO = Gauge("dispatcher_build_info", "Always 1; the running version in its labels",
                   ["version", "python"], registry=REGISTRY)


def package_version() -> str:
    try:
        return version("dispatcher")
    except PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(package_version(), platform.python_version()).set(1)
PREDIAL_SECONDS = Histogram("dispatcher_predial_seconds", "Pre-dial hook latency by answer",
                            ["outcome"], registry=REGISTRY,
                            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5))


def status_label(err: object) -> str:
    """A request's outcome as a closed set: the HTTP status (100-599) or a transport kind."""
    status = getattr(err, "status", None)
    if isinstance(status, int) and 100 <= status <= 599:
        return str(status)
    code = str(getattr(err, "code", ""))
    return code if code in TRANSPORT_CODES else "other"


TRANSPORT_CODES = frozenset({"timeout", "connection_reset", "connect_failed",
                             "malformed_response"})


KNOWN_CODES = frozenset({
    "rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_exceeded", "concurrency_limit",
    "missing_api_key", "invalid_api_key", "revoked_api_key", "expired_api_key", "unauthorized",
    "payment_required", "forbidden", "call_blocked", "not_found", "agent_not_found",
    "workflow_not_found", "phone_number_not_found", "agent_inactive", "workflow_inactive",
    "phone_number_inactive", "no_outbound_trunk", "no_routing_target", "http_404",
    "circuit_open"})


def code_label(code: str) -> str:
    """A provider error code as a label: known codes as they are, anything else "other"."""
    return code if code in KNOWN_CODES else "other"


GROUP_RECREATED = Counter("dispatcher_group_recreated_total",
                          "The consumer group was missing (Redis lost its data) and was created "
                          "again", registry=REGISTRY)
LOOP_ERRORS = Counter("dispatcher_loop_errors_total", "Errors in a worker loop (Redis down, "
                      "out of memory, ...)", ["loop"], registry=REGISTRY)
