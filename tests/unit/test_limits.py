"""The limiter model: no trailing window ever over its limit, and a saturated one near 100 %."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.limits import SlidingLog, Window, max_in_any_window, parse_limit


@pytest.mark.parametrize(("text", "seconds", "limit"), [
    ("60/minute", 60, 60), ("1000/hour", 3600, 1000), ("5/second", 1, 5),
    ("100/5s", 5, 100), ("300/30s", 30, 300), ("7/day", 86400, 7), ("3/0.5s", 0.5, 3)])
def test_parse(text: str, seconds: float, limit: int) -> None:
    assert parse_limit(text) == Window(seconds, limit)


@pytest.mark.parametrize("text", ["60", "60/min", "0/minute", "-1/hour", "x/second", "5/0s"])
def test_parse_rejects_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_limit(text)


windows_st = st.lists(st.builds(lambda s, n: Window(float(s), n), st.integers(1, 120),
                                st.integers(1, 50)), min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(windows=windows_st, gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=300),
       margin=st.integers(0, 500))
def test_no_trailing_window_exceeds_its_limit(windows: list[Window], gaps: list[int],
                                              margin: int) -> None:
    log = SlidingLog(windows, margin)
    now, granted = 0, []
    for g in gaps:
        now += g
        if log.try_acquire(now) == 0:
            granted.append(now / 1000)
    for w in windows:
        assert max_in_any_window(granted, w.seconds) <= w.limit


@settings(max_examples=100, deadline=None)
@given(windows=windows_st, jitter=st.lists(st.integers(0, 250), min_size=50, max_size=50))
def test_arrivals_stay_under_limits_when_send_jitter_is_within_margin(
        windows: list[Window], jitter: list[int]) -> None:
    margin = 250
    log = SlidingLog(windows, margin)
    now, arrivals = 0, []
    for i in range(3000):
        wait = log.try_acquire(now)
        if wait == 0:
            arrivals.append((now + jitter[i % 50]) / 1000)
        now += max(1, wait) if wait else 1
    for w in windows:
        assert max_in_any_window(arrivals, w.seconds) <= w.limit


@settings(max_examples=60, deadline=None)
@given(windows=windows_st)
def test_saturated_limiter_uses_at_least_97_percent_of_the_binding_limit(
        windows: list[Window]) -> None:
    margin = 50
    log = SlidingLog(windows, margin)
    horizon = 20 * max(w.ms for w in windows)
    now, granted = 0, 0
    while now < horizon:
        wait = log.try_acquire(now)
        if wait == 0:
            granted += 1
        else:
            now += wait
    binding = min(w.limit / w.seconds for w in windows)  # requests per second
    assert granted >= 0.97 * binding * horizon / 1000


def test_wait_is_exactly_until_the_oldest_needed_grant_leaves() -> None:
    log = SlidingLog([Window(1.0, 2)], 0)
    assert log.try_acquire(0) == 0
    assert log.try_acquire(100) == 0
    assert log.try_acquire(200) == 800
    assert log.try_acquire(999) == 1
    assert log.try_acquire(1000) == 0


def test_max_in_any_window_counts_half_open_stretches() -> None:
    assert max_in_any_window([0, 1, 2], 2) == 2
    assert max_in_any_window([0, 1, 1.999], 2) == 3
    assert max_in_any_window([], 5) == 0
