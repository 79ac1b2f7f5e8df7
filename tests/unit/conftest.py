from __future__ import annotations

import pytest

from tests.unit.executors import FixedClock, fix_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """A fixed clock for the executors' unit tests (see tests/unit/executors.py)."""
    return fix_clock(monkeypatch)
