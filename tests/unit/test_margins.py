"""The measured send lag: remembered for a whole window of the provider, kept small."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.margins import MAX_MARGIN_S, LagMeter, horizon_s


def test_a_lag_is_remembered_for_the_longest_window() -> None:
    meter = LagMeter(horizon_s(3600))
    meter.add(1000.0, 0.036)  # a slow first request of the hour
    meter.add(1001.0, 0.002)
    assert meter.margin_s(1000.0 + 3599) == 0.036  # its slot is reused an hour later
    assert meter.margin_s(1000.0 + 3603) == 0.002
    assert meter.margin_s(1000.0 + 3700) == 0.0


def test_short_windows_still_remember_half_a_minute() -> None:
    meter = LagMeter(horizon_s(1))
    meter.add(0.0, 0.05)
    assert meter.margin_s(29.0) == 0.05 and meter.margin_s(40.0) == 0.0


def test_the_margin_is_capped() -> None:
    meter = LagMeter()
    meter.add(0.0, 60.0)
    assert meter.margin_s(0.0) == MAX_MARGIN_S


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 5)), max_size=200))
def test_it_is_the_largest_recent_lag_and_memory_stays_bounded(
        samples: list[tuple[float, float]]) -> None:
    meter = LagMeter(30.0)
    now = 0.0
    seen: list[tuple[float, float]] = []
    for dt, lag in samples:
        now += dt
        meter.add(now, lag)
        seen.append((now, lag))
        recent = [x for t, x in seen if t >= now - 30.0]
        assert meter.margin_s(now) >= min(max(recent), MAX_MARGIN_S)
        assert len(meter.buckets) <= 33
