"""Metric labels come from closed sets: job-supplied provider names cannot grow /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from dispatcher.metrics import provider_label, set_known_providers


@pytest.fixture(autouse=True)
def known() -> Iterator[None]:
    set_known_providers(["default", "eu"])
    yield
    set_known_providers([])


def test_configured_names_are_their_own_label() -> None:
    assert [provider_label(n) for n in ("default", "eu")] == ["default", "eu"]


@pytest.mark.parametrize("name", [None, "", "twilio", "DEFAULT", "eu ", "x" * 10_000])
def test_anything_else_is_unknown(name: str | None) -> None:
    assert provider_label(name) == "unknown"


def test_set_known_providers_replaces_the_set() -> None:
    set_known_providers(("other",))
    assert (provider_label("other"), provider_label("default")) == ("other", "unknown")


def test_three_thousand_unknown_names_make_one_series() -> None:
    registry = CollectorRegistry()
    results = Counter("t_results_total", "t", ["provider", "outcome"], registry=registry)
    for i in range(3000):
        results.labels(provider_label(f"bogus-provider-{i}"), "invalid").inc()
    results.labels(provider_label("eu"), "invalid").inc()
    body = generate_latest(registry).decode()
    series = [ln for ln in body.splitlines() if ln.startswith("t_results_total{")]
    assert series == ['t_results_total{outcome="invalid",provider="unknown"} 3000.0',
                      't_results_total{outcome="invalid",provider="eu"} 1.0']
    assert len(body) < 1000

