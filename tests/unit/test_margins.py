"""The measured send lag: remembered for a whole window of the provider, kept small."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.core.margins import MAX_MARGIN_S, LagMeter, SendClock, horizon_s


def test_a_lag_is_remembered_for_the_longest_window() -> None:
    meter = LagMeter(horizon_s(3600))
    meter.add(1000.0, 0.036)  # a slow first request of the hour
    meter.add(1001.0, 0.002)
    assert meter.margin_s(1000.0 + 3599) == 0.036  # its slot is reused an hour later
    assert meter.margin_s(1000.0 + 3607) == 0.002
    assert meter.margin_s(1000.0 + 3700) == 0.0


def test_short_windows_forget_a_slow_start_after_a_few_seconds() -> None:
    """A 1-second window's slots are reused every second: an early outlier (a new
    connection) must not widen it for long, but must outlive the window and the heartbeat
    that publishes it."""
    meter = LagMeter(horizon_s(1))
    meter.add(0.0, 0.05)
    assert meter.margin_s(5.0) == 0.05 and meter.margin_s(8.0) == 0.0


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


def test_a_late_answer_reports_its_lag_instead_of_widening_the_margin() -> None:
    """Its own place in the log moves; every other grant keeps the small margin."""
    meter, reported = LagMeter(horizon_s(1)), []
    clock = SendClock(10.0, meter, "c.1", 0.015,
                      lambda tok, move: reported.append((tok, move)))
    clock.answered(10.05)
    assert [(t, round(lag, 3)) for t, lag in reported] == [("c.1", 0.05)]
    assert meter.margin_s(10.05) == 0.0


def test_an_answer_within_its_margin_is_only_measured() -> None:
    meter, reported = LagMeter(horizon_s(1)), []
    SendClock(20.0, meter, "c.2", 0.015, lambda *a: reported.append(a)).answered(20.01)
    assert reported == [] and round(meter.margin_s(20.01), 3) == 0.01


def test_a_grant_answered_twice_moves_its_place_once() -> None:
    """A second request under the same grant (its context) must not move the place again:
    the move is relative to where it is."""
    reported: list[float] = []
    clock = SendClock(0.0, LagMeter(), "c.3", 0.005,
                      lambda _tok, move: reported.append(move))
    clock.answered(0.05)
    clock.answered(0.09)
    assert reported == [0.05]


def test_an_unanswered_request_is_kept_in_the_window_then_moved_by_the_rest() -> None:
    """Kept at 0.5 s and 1.0 s after its grant, answered at 1.2 s: its place moves 0.5 + 0.5
    + 0.2 = its whole lag, never twice the same stretch; nothing after the answer."""
    moves: list[float] = []
    clock = SendClock(0.0, LagMeter(), "c.4", 0.005,
                      lambda _tok, move: moves.append(round(move, 3)))
    clock.keep(0.5)
    clock.keep(1.0)
    clock.answered(1.2)
    clock.keep(2.0)
    assert moves == [0.5, 0.5, 0.2]


def test_a_kept_request_answered_quickly_still_moves_the_rest() -> None:
    """Once moved, even an answer within the margin's quarter moves the place to itself."""
    moves: list[float] = []
    clock = SendClock(0.0, LagMeter(), "c.5", 10.0,
                      lambda _tok, move: moves.append(round(move, 3)))
    clock.keep(0.5)
    clock.answered(0.502)
    assert moves == [0.5, 0.002]
