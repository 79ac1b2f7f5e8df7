"""The console's pure parts: the token file, the redirect and origin rules, and that every
value reaches the page escaped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import ConfigError
from dispatcher.console import pages, views
from dispatcher.console.app import safe_next
from dispatcher.console.auth import Tokens, parse_tokens
from dispatcher.console.notices import Notice, with_notice
from dispatcher.console.tail import ResultsTail

EVIL = '<script>alert("x")</script>'


def ctx(grant: bool = False) -> views.Ctx:
    g = parse_tokens("a" * 16 + " actions")[0][1] if grant else None
    return views.Ctx(g, True, "/campaigns?x=1", "ns", 2000, "csrf-value" if grant else "")


def test_tokens_and_their_grants() -> None:
    [(t1, g1), (t2, g2), (_, g3)] = parse_tokens(
        "# comment\n\n" + "a" * 16 + "\n" + "b" * 20 + " numbers  # only numbers\n"
        + "c" * 16 + " actions numbers\n")
    assert (t1, g1.actions, g1.numbers) == ("a" * 16, True, False)
    assert (t2, g2.actions, g2.numbers) == ("b" * 20, False, True)
    assert g3.actions and g3.numbers
    assert len({g1.ident, g2.ident, g3.ident}) == 3
    assert "a" * 16 not in g1.ident + g1.label


@pytest.mark.parametrize(("text", "error"), [
    ("short", "at least 16 characters"),
    ("a" * 16 + " admin", "unknown grant 'admin'"),
])
def test_a_bad_token_line_is_named(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=f"tokens:1: .*{error}"):
        parse_tokens(text, "tokens")


def test_the_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("a" * 16 + "\n")
    tokens = Tokens(str(path))
    assert tokens.by_token("a" * 16) is not None and tokens.by_token("b" * 16) is None
    path.write_text("b" * 16 + "\n")
    os.utime(path, (1, 1))
    assert tokens.by_token("a" * 16) is None and tokens.by_token("b" * 16) is not None
    path.unlink()
    assert tokens.by_token("b" * 16) is None  # gone while running: grants nothing


def test_an_unreadable_token_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"console\.token_file: cannot read"):
        Tokens(str(tmp_path / "missing"))
    assert not Tokens(None).enabled and Tokens(None).by_token("a" * 16) is None


def test_console_defaults() -> None:
    cfg = ConsoleConfig()
    assert (cfg.host, cfg.port, cfg.token_file, cfg.refresh_s) == ("127.0.0.1", 8090, None, 2.0)
    assert (cfg.session_ttl_s, cfg.trusted_proxies, cfg.allowed_hosts) == (8 * 3600, [], None)
    assert cfg.hosts() == ["127.0.0.1", "localhost", "[::1]"]
    with pytest.raises(ValueError, match="extra"):
        ConsoleConfig(colour="red")  # type: ignore[call-arg]


@pytest.mark.parametrize(("target", "safe"), [
    ("/campaigns", "/campaigns"), ("/jobs?id=a", "/jobs?id=a"), ("//evil.example", "/"),
    ("https://evil.example/", "/"), ("/\\evil", "/"), ("", "/"), (None, "/")])
def test_redirects_stay_on_this_site(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_a_notice_replaces_the_previous_one() -> None:
    assert with_notice("/jobs?id=a&msg=old&n=3", Notice.CAMPAIGN_PAUSED, "spring") == \
        "/jobs?id=a&msg=campaign_paused&name=spring&n=0"


def _job_page(job_id: str) -> str:
    return pages.job(None, job_id, "", ctx()) + pages.lookup_form(job_id)


@settings(deadline=None, max_examples=200)
@given(st.text(min_size=1, max_size=40))
@example("<")
@example('"><script>alert(1)</script>')
@example("' onmouseover='x")
def test_the_job_page_escapes_whatever_id_is_asked(job_id: str) -> None:
    """Whatever the id, the page has exactly the tags and attribute quotes it has for a plain
    one: nothing the id holds can open a tag or leave an attribute."""
    html, plain = _job_page(job_id), _job_page("x")
    for ch in "<>\"'":
        assert html.count(ch) == plain.count(ch), ch


def test_values_from_providers_and_producers_are_escaped() -> None:
    fail = {"ms": 0, "job_id": EVIL, "outcome": "rejected", "provider": EVIL,
            "campaign": EVIL, "http_status": 422, "error_code": EVIL, "why": EVIL,
            "attempts": 1}
    camp = {"name": EVIL, "state": "active", "total": 2, "done": 1, "remaining": 1,
            "outcomes": {EVIL: 1}, "queued": 1, "waiting": 0, "dialing": 0, "live": 0,
            "finishing": 0, "pace_per_min": 1.0, "eta_s": 60, "no_eta": "",
            "cap": None, "cap_live": 0,
            "share": 1.0}
    html = (pages.failures([fail], 0) + pages.campaigns({"now": 0, "campaigns": [camp]},
                                                        ctx(grant=True)))
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 5


def test_buttons_need_a_grant_and_carry_the_csrf_value() -> None:
    assert "disabled" in views.button(ctx(), "/x", "Go") and "<form" not in \
        views.button(ctx(), "/x", "Go")
    c = ctx(grant=True)
    html = views.button(c, "/x", "Go", confirm="Sure?")
    assert 'name="csrf" value="csrf-value"' in html and 'data-confirm="Sure?"' in html
    assert 'name="next" value="/campaigns?x=1"' in html


def test_bars() -> None:
    assert 'class="fill full"' in views.bar(10, 10)
    assert 'class="fill high"' in views.bar(8, 10)
    assert 'class="fill done"' in views.bar(10, 10, progress=True)
    assert "fill" not in views.bar(3, None)


class _Results:
    def __init__(self, entries: list[tuple[str, dict[str, str]]]):
        self.entries = entries

    async def read_results(self, after: str, count: int, block: None
                           ) -> list[tuple[str, dict[str, str]]]:
        def key(e: str) -> tuple[int, int]:
            a, b = e.split("-")
            return int(a), int(b)
        return [e for e in self.entries if key(e[0]) > key(after)][:count]


async def test_the_tail_reads_each_result_once_and_keeps_the_last_hour() -> None:
    now = 10_000_000
    store = _Results([(f"{now - 4_000_000}-0", {"outcome": "ended"}),   # older than an hour
                      (f"{now - 120_000}-0", {"outcome": "ended"}),
                      (f"{now - 60_000}-0", {"outcome": "rejected", "job_id": "j9",
                                             "error_message": "bad +14155550123"})])
    tail = ResultsTail(store)  # type: ignore[arg-type]
    await tail.refresh(now)
    await tail.refresh(now)
    assert tail.totals(now) == {"ended": 1, "rejected": 1}
    minutes = tail.per_minute(now)
    assert minutes[-2] == {"ended": 1} and minutes[-1] == {"rejected": 1}
    [f] = tail.failures
    assert f["job_id"] == "j9" and f["why"] == "bad +********123"


def test_a_count_of_one_job_is_singular() -> None:
    assert (views.jobs(1), views.jobs(2), views.jobs(4915)) == ("1 job", "2 jobs", "4,915 jobs")


def test_the_failures_page_links_older_failures_to_the_jobs_list_by_outcome() -> None:
    for page in (pages.failures([], 0), pages.failures([{
            "ms": 0, "job_id": "j1", "outcome": "exhausted", "provider": "p", "campaign": "",
            "http_status": 500, "error_code": "x", "why": "y"}], 0)):
        assert '<a href="/jobs?state=done&amp;outcome=exhausted">exhausted</a>' in page
        assert 'outcome=blocked">blocked</a>' in page
