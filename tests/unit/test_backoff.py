import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.core.backoff import backoff_delay, nominal_delay
from dispatcher.core.timing import restart_delay


def test_nominal_doubles_and_caps() -> None:
    assert [nominal_delay(a, 1.0, 30.0) for a in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@settings(deadline=None)
@given(attempt=st.integers(1, 200), base=st.floats(0.001, 10), cap=st.floats(0.001, 600),
       seed=st.integers(0, 2**32))
def test_delay_within_half_and_full_nominal(attempt: int, base: float, cap: float,
                                            seed: int) -> None:
    nominal = nominal_delay(attempt, base, cap)
    d = backoff_delay(attempt, base, cap, random.Random(seed))
    assert nominal / 2 <= d <= nominal
    assert d <= cap


def test_a_failing_worker_loop_tries_again_after_doubling_pauses_up_to_ten_seconds() -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
