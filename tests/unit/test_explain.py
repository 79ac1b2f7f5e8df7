"""``explain`` turns facts into words: one row per reason a job can wait, on a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatcher.ops.explain import Facts, clock, event_words, explain, render, span, when, why_now

NOW = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
MIN = 60_000


def window(label: str, limit: int, used: int, resets_in_ms: int = 0,
           hint: int | None = None) -> dict[str, Any]:
    return {"label": label, "limit": limit, "used": used, "resets_in_ms": resets_in_ms,
            "provider_remaining": hint}


def provider(**over: Any) -> dict[str, Any]:
    base = {"windows": [window("60/minute", 60, 10, 30_000), window("1000/hour", 1000, 200)],
            "cooldown_ms": 0, "halt": {}, "slots_in_use": 1, "slot_cap": 5,
            "slot_cap_shrunk_to": None, "parked": 0}
    return {**base, **over}


def facts(state: str, **job: str) -> Facts:
    fields = {"state": state, "prov": "main", "prio": "normal", "attempts": "1",
              "to": "+14155550123", **job}
    return Facts("j1", fields, [], NOW, True, provider(),
                 position={"higher": 0, "ahead": 0, "other_campaigns": 0, "other_ready": 0})


HALT = {"since": str(NOW - 5 * MIN), "probe_at": str(NOW + 2 * MIN), "code": "revoked_api_key",
        "reason": "API key revoked +14155550123"}


def test_a_halted_provider_says_since_when_why_and_how_to_resume() -> None:
    f = replace(facts("parked", wr="halted"), halt=HALT)
    [why] = why_now(f)
    assert why.code == "halted"
    assert why.text == ("provider main is halted since 2023-11-14 22:08:20 UTC (5 min ago): "
                        "revoked_api_key — API key revoked +********123; it probes the account "
                        "again at 2023-11-14 22:15:20 UTC (in 2 min)")
    assert why.fix == "dispatcher resume main"
    assert why.action == {"kind": "provider", "name": "main"}


def test_parked_after_the_halt_is_over_still_names_the_resume() -> None:
    [why] = why_now(facts("parked", wr="halted"))
    assert why.code == "parked" and why.fix == "dispatcher resume main"


@pytest.mark.parametrize("state", ["parked", "queued"])
def test_an_unconfigured_provider_says_configure_then_resume(state: str) -> None:
    f = replace(facts(state, wr="unknown_provider", prov="typo"), configured=False)
    [why] = why_now(f)
    assert why.code == "unknown_provider" and "'typo' is not configured" in why.text
    assert why.fix == "configure provider typo, then: dispatcher resume typo"


def test_a_cooldown_says_until_when() -> None:
    f = replace(facts("queued"), provider=provider(cooldown_ms=12_000))
    why = why_now(f)[0]
    assert why.code == "cooldown" and why.until_ms == NOW + 12_000
    assert why.text.endswith("until 2023-11-14 22:13:32 UTC (in 12 s)")


def test_a_full_window_names_the_window_and_its_reset() -> None:
    wins = [window("60/minute", 60, 10), window("1000/hour", 1000, 1000, 25 * MIN)]
    why = why_now(replace(facts("queued"), provider=provider(windows=wins)))[0]
    assert why.code == "window_full" and why.until_ms == NOW + 25 * MIN
    assert why.text == ("1000/hour window of provider main full (1000 of 1000 used) until "
                        "2023-11-14 22:38:20 UTC (in 25 min), when its oldest request leaves it")


def test_the_providers_own_count_at_zero_is_a_full_window() -> None:
    wins = [window("60/minute", 60, 3, 40_000, hint=0)]
    assert why_now(replace(facts("queued"), provider=provider(windows=wins)))[0].code == \
        "window_full"


@pytest.mark.parametrize(("cap", "shrunk", "used", "full"),
                         [(5, None, 5, True), (5, None, 4, False), (5, 2, 2, True),
                          (None, None, 50, False)])
def test_call_slots(cap: int | None, shrunk: int | None, used: int, full: bool) -> None:
    p = provider(slot_cap=cap, slot_cap_shrunk_to=shrunk, slots_in_use=used)
    codes = [w.code for w in why_now(replace(facts("queued"), provider=p))]
    assert ("slots_full" in codes) is full


def test_the_calling_window_says_when_it_opens_in_the_recipients_zone() -> None:
    f = facts("delayed", wr="window", wu=str(NOW + 180 * MIN), wd="09:00 America/Chicago")
    [why] = why_now(f)
    assert why.code == "window"
    assert why.text == ("calling window closed until 09:00 America/Chicago, "
                        "2023-11-15 01:13:20 UTC (in 3 h)")


def test_a_paused_campaign_comes_first_and_hides_the_place_in_line() -> None:
    f = replace(facts("queued", camp="spring"), campaign_paused=True,
                provider=provider(cooldown_ms=1000))
    codes = [w.code for w in why_now(f)]
    assert codes == ["campaign_paused", "cooldown"]
    assert why_now(f)[0].action == {"kind": "campaign", "name": "spring"}


def test_a_paused_campaign_is_mentioned_for_a_delayed_job_too() -> None:
    f = replace(facts("delayed", camp="spring", wr="retry", wu=str(NOW + MIN)),
                campaign_paused=True)
    assert [w.code for w in why_now(f)] == ["retry", "campaign_paused"]


def test_a_cancelled_campaign_says_its_jobs_are_cancelled() -> None:
    f = replace(facts("queued", camp="spring"), campaign_cancelled=True)
    assert why_now(f)[0].code == "campaign_cancelled"


@pytest.mark.parametrize(("wr", "words"), [
    ("retry", "waiting for a retry after a failed attempt until"),
    ("rate_limited", "waiting for a retry after the provider answered 429 until"),
    ("concurrency_limit", "waiting for a retry after the provider refused another live call"),
    ("crash", "waiting for a retry after the worker failed on it"),
    ("predial", "waiting for a retry of the pre-dial check, which did not answer"),
    ("number_cap", "per-number cap until 2023-11-14 22:14:20 UTC (in 1 min)"),
    ("not_before", "not before 2023-11-14 22:14:20 UTC (in 1 min), as the job asked"),
    ("redial", "next call of its redial rule at"),
    ("reconcile", "a call may already exist"),
])
def test_each_delay_in_words(wr: str, words: str) -> None:
    f = facts("delayed", wr=wr, wu=str(NOW + MIN), last_status="429", last_code="rate_limit")
    assert words in why_now(f)[0].text


def test_a_subject_cap_says_how_many_calls_and_when_the_next_is_allowed() -> None:
    f = facts("delayed", wr="subject_cap", wu=str(NOW + MIN),
              wd="3 calls to subject lead-77 in the last 24 h")
    [why] = why_now(f)[:1]
    assert why.code == "subject_cap"
    assert why.text == ("3 calls to subject lead-77 in the last 24 h, next allowed "
                        "2023-11-14 22:14:20 UTC (in 1 min)")


def test_a_job_blocked_for_want_of_consent_names_its_campaign() -> None:
    blocked = [{"t": NOW - MIN, "e": "blocked", "r": "no_consent",
                "d": "no consent on record for campaign spring"}]
    f = replace(facts("finishing", fin="blocked:no_consent", camp="spring"), timeline=blocked)
    assert why_now(f)[0].text == ("its result is being written (no consent on record for "
                                  "campaign spring)")
    done = replace(facts("done", outcome="blocked", done_ms=str(NOW)), timeline=blocked)
    assert why_now(done)[0].text.endswith(": no consent on record for campaign spring")
    assert event_words(blocked[0]) == ("blocked (no_consent) — no consent on record for "
                                       "campaign spring")


def test_a_stale_registry_says_which_and_how_old() -> None:
    f = facts("delayed", wr="registry_stale", wu=str(NOW + MIN),
              wd="do-not-call registry us-dnc is 40 days old (at most 31)")
    assert why_now(f)[0].text.startswith("do-not-call registry us-dnc is 40 days old (at most "
                                         "31): held until a fresh copy is imported")


def test_a_retry_quotes_the_last_answer() -> None:
    f = facts("delayed", wr="rate_limited", wu=str(NOW + MIN), last_status="429",
              last_code="rate_limit_exceeded")
    assert why_now(f)[0].text.endswith("(last answer: 429 rate_limit_exceeded)")


def test_a_wait_that_is_over_says_it_is_due() -> None:
    f = facts("delayed", wr="retry", wu=str(NOW - 1000))
    assert why_now(f)[0].text.endswith("due now, back in line at the next promotion")


def test_the_place_in_line() -> None:
    pos = {"higher": 5, "ahead": 3, "other_campaigns": 2, "other_ready": 40}
    f = replace(facts("queued", camp="spring"), position=pos)
    assert why_now(f)[-1].text == (
        "queued behind 8 others (5 at a higher priority; 3 ahead of it in campaign spring; "
        "taking turns with 2 other campaign(s) at priority normal (40 ready))")
    assert why_now(facts("queued"))[-1].code == "next"
    far = replace(f, position={**pos, "ahead": None})
    assert "more than 200005 others" in why_now(far)[-1].text


def test_a_campaign_at_its_call_cap() -> None:
    f = replace(facts("queued", camp="spring"), campaign_cap=3, campaign_live=3)
    assert "campaign_cap" in [w.code for w in why_now(f)]


@pytest.mark.parametrize(("state", "extra", "code", "words"), [
    ("done", {"outcome": "ended", "done_ms": str(NOW - 2000)}, "done",
     "done: its result is 'ended' at 2023-11-14 22:13:18 UTC (2 s ago)"),
    ("finishing", {"fin": "blocked:dnc"}, "finishing", "its result is being written"),
    ("tracking", {"call_id": "c-9", "track_ms": str(NOW - MIN)}, "live", "its call c-9 is live"),
    ("dialing", {"dialer": "w-1", "dial_ms": str(NOW)}, "dialling", "by worker w-1"),
    ("orphaned", {}, "orphaned", "its payload was lost"),
    ("new", {}, "new", "being placed"),
])
def test_states_that_do_not_wait(state: str, extra: dict[str, str], code: str,
                                 words: str) -> None:
    [why] = why_now(facts(state, **extra))
    assert why.code == code and words in why.text


def test_timeline_events_in_words() -> None:
    events = [
        ({"e": "claimed", "entry": "1-0"}, "read from the stream (entry 1-0)"),
        ({"e": "waiting", "r": "window", "u": NOW, "d": "09:00 Europe/Vienna"},
         "waits for the recipient's calling hours until 2023-11-14 22:13:20 UTC "
         "— 09:00 Europe/Vienna"),
        ({"e": "parked", "r": "halted"}, "parked: its provider is halted"),
        ({"e": "granted", "call": 2, "w": "w-1", "canary": True},
         "granted call #2 to worker w-1 as the halt probe"),
        ({"e": "dialled", "call": 1, "call_id": "c-1"}, "call #1 started: c-1"),
        ({"e": "webhook", "event": "call_ended"}, "webhook from the provider: call_ended"),
        ({"e": "taken_over", "from": "w-2"}, "worker w-2 stopped while dialling"),
        ({"e": "cancel_requested"}, "cancel requested"),
        ({"e": "result", "outcome": "ended"}, "result written: ended"),
        ({"e": "something_new", "x": 1}, 'something_new {"x": 1}'),
    ]
    for entry, words in events:
        assert event_words({"t": NOW, **entry}).startswith(words), entry


def test_numbers_are_masked_unless_asked() -> None:
    assert explain(facts("queued")).to == "+********123"
    assert explain(facts("queued"), show_numbers=True).to == "+14155550123"


def test_render_and_json() -> None:
    f = replace(facts("parked", wr="halted"), halt=HALT,
                timeline=[{"t": NOW - MIN, "e": "claimed", "entry": "1-0"}])
    x = explain(f)
    text = render(x)
    assert text.splitlines()[0].startswith("job j1: parked — provider main")
    assert "  2023-11-14 22:12:20 UTC  read from the stream (entry 1-0)" in text
    assert "  fix: dispatcher resume main" in text
    data = x.to_json()
    assert data["why"]["code"] == "halted" and data["why"]["until"] == "2023-11-14T22:15:20.000Z"
    assert data["timeline"][0] == {"t": "2023-11-14T22:12:20.000Z", "event": "claimed",
                                   "text": "read from the stream (entry 1-0)"}


@pytest.mark.parametrize(("ms", "text"), [(0, "0 s"), (120, "<1 s"), (45_400, "45 s"),
                                          (60_000, "1 min"), (192_000, "3 min 12 s"),
                                          (7_500_000, "2 h 5 min"), (273_600_000, "3 d 4 h")])
def test_span(ms: int, text: str) -> None:
    assert span(ms) == text


def test_when_and_clock() -> None:
    assert clock(NOW) == "2023-11-14 22:13:20 UTC"
    assert when(NOW - 3000, NOW).endswith("(3 s ago)")
    assert when(NOW + 3000, NOW).endswith("(in 3 s)")


FIELDS = st.dictionaries(
    st.sampled_from(["state", "wr", "wu", "wd", "prov", "prio", "camp", "attempts", "to",
                     "outcome", "done_ms", "dial_ms", "track_ms", "fin", "last_status"]),
    st.one_of(st.sampled_from(["queued", "delayed", "parked", "done", "tracking", "dialing",
                               "finishing", "window", "retry", "halted", "", "12", "-5"]),
              st.text(max_size=12)))


@settings(deadline=None, max_examples=300)
@given(FIELDS, st.booleans(), st.booleans(), st.booleans())
@example({"state": "queued", "attempts": "²"}, False, False, False)
@example({"state": "delayed", "wu": "x", "wr": "retry"}, True, False, True)
def test_any_job_hash_is_explained_without_error(fields: dict[str, str], configured: bool,
                                                 halted: bool, paused: bool) -> None:
    f = Facts("j", fields, [], NOW, configured, provider() if configured else None,
              HALT if halted else {}, paused)
    x = explain(f)
    assert x.why.text and render(x)
