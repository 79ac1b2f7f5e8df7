"""The history charts render with their numbers: totals, peaks, and a title per bar."""

from __future__ import annotations

import re

from dispatcher.console import pages_history
from dispatcher.store.history import SHAPE, History, Span

START = 1_800_000_000_000 - 1_800_000_000_000 % 60_000


def _history(span: Span, scope: str = "*", **series: list[int]) -> History:
    n, step = SHAPE[span]
    full = {k.replace("_", ":", 1): v + [0] * (n - len(v)) for k, v in series.items()}
    return History(span, scope, START, step, full)


def test_the_charts_show_totals_peaks_and_a_title_per_bar() -> None:
    h = _history(Span.HOUR, o_ended=[3, 0, 5], o_rejected=[1], calls=[4, 0, 6],
                 **{"429": [0, 2]}, w_retry=[0, 0, 7])
    html = pages_history.section(h, "/")
    results = re.search(r'data-chart="results".*?</div>', html, re.S)
    assert results and "total <b data-total>9</b>" in results.group(0)
    assert "peak <b data-peak>5</b> per minute" in results.group(0)
    assert "<title>08:00 UTC: 3 ended, 1 rejected</title>" in html  # the first bar
    assert 'data-chart="429"' in html and "total <b data-total>2</b>" in html
    assert re.search(r'<tr data-reason="retry">.*?<td class="n">7</td>', html)
    assert html.count('<a href="/?span=') == 3 and 'class="active"' in html


def test_a_campaigns_charts_leave_out_429s_and_keep_the_campaign_in_the_span_links() -> None:
    h = _history(Span.WEEK, "spring", calls=[1] * 28)
    html = pages_history.campaign_page(h)
    assert 'data-chart="429"' not in html
    assert 'href="/history?span=24h&amp;campaign=spring"' in html
    assert "total <b data-total>28</b> · peak <b data-peak>1</b> per 6 hours" in html
    assert "no job had to wait" in html


def test_a_span_not_offered_is_the_last_hour() -> None:
    assert pages_history.span_of("7d") is Span.WEEK
    assert pages_history.span_of("<x>") is Span.HOUR and pages_history.span_of(None) is Span.HOUR
