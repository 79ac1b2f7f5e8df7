"""The demo's screen: a live line that fits the terminal, counts that add up, readable zones."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.core.hours import describe_instant, zone_label
from dispatcher.dev import demo


def results(n: int) -> dict[str, Any]:
    kinds = [("ended", "human"), ("ended", "voicemail"), ("rejected", None),
             ("invalid", None), ("exhausted", None)]
    return {f"j{i}": {"outcome": kinds[i % 5][0], "answer_status": kinds[i % 5][1]}
            for i in range(n)}


STATUS = {"delayed": 12, "tracking": 7, "providers": {
    name: {"windows": [{"window": "1s", "used": 10}, {"window": "1m", "used": 480},
                       {"window": "1h", "used": 2300}, {"window": "1d", "used": 9000}],
           "slots_in_use": 25}
    for name in ("default", "eu", "backup-provider-with-a-long-name")}}


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_live_line_fits_the_terminal(width: int) -> None:
    line = demo._progress(results(310), STATUS, 312, width)
    assert len(line) < width and "\n" not in line
    assert line.startswith("310/312 done")


def test_a_wider_terminal_shows_more() -> None:
    assert len(demo._progress(results(310), STATUS, 312, 200)) > \
        len(demo._progress(results(310), STATUS, 312, 80))


def test_the_live_line_is_redrawn_in_place_without_padding_past_the_width() -> None:
    shown = demo._redraw("x" * 100, 80)
    assert shown.startswith("\r") and shown.endswith("\x1b[K")
    assert len(shown) - len("\r\x1b[K") < 80


def test_the_end_screen_reconciles_entries_ids_results_and_waiting_jobs() -> None:
    assert demo._reconcile(entries=312, distinct=310, results=307, waiting=3) == (
        "enqueued 312 entries, 310 distinct ids (2 repeated ids, each dialled once): "
        "307 results + 3 waiting (their calling window is closed)")
    assert demo._reconcile(entries=10, distinct=10, results=8, waiting=1) == (
        "enqueued 10 entries, 10 distinct ids: 8 results + 1 waiting (their calling window "
        "is closed) + 1 without a result yet")


@pytest.mark.parametrize(("name", "label"), [
    ("Etc/GMT-7", "UTC+07:00"), ("Etc/GMT+5", "UTC-05:00"), ("Etc/GMT", "UTC"),
    ("Etc/UTC", "UTC"), ("UTC", "UTC"), ("America/Chicago", "America/Chicago")])
def test_zones_print_readably(name: str, label: str) -> None:
    assert zone_label(name) == label


def test_an_instant_in_a_fixed_offset_zone_names_the_offset() -> None:
    assert describe_instant(("Etc/GMT-7",), 1_800_000_000.0) == "15:00 UTC+07:00 (Fri 2027-01-15)"


def test_prose_is_wrapped_to_the_terminal_so_no_line_is_wider(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = ("enqueued 312 entries, 310 distinct ids (2 repeated ids, each dialled once): 307 "
            "results + 3 waiting (their calling window is closed)")
    for width in (80, 120):
        demo.say(text, width)
        lines = capsys.readouterr().out.splitlines()
        assert all(len(line) < width for line in lines)
        assert " ".join(line.strip() for line in lines) == text
