"""The consent ledger (policy.require_consent) over real Redis: the grant script dials a job
only while its number's ledger holds a consent covering its campaign at the moment of the
dial. The script-level tests pin the clock through the scripts' ``now``; the last one runs a
worker against the simulator and reads the results."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.core.consent import Consent, Revocation, covering
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops.explain import explain, gather
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from tests.conftest import (
    RunningWorker,
    make_settings,
    provider_cfg,
    start_worker,
    store_on,
    wait_results,
)
from tests.integration.helpers import creates, push
from tests.integration.test_cli import cli
from tests.integration.test_scripts import grant_args, job_args, pushed

T0 = 1_800_000_000_000
NUMBER = "+14155550100"


async def place(store: Store, camp: str = "c1") -> None:
    """One job j0 for NUMBER in campaign ``camp``, queued at T0."""
    [entry] = await pushed(store, 1)
    await store.s.call("ingest", T0, group=GROUP, entries=[job_args("j0", entry, camp=camp)],
                       grants=[])


async def dial_at(store: Store, t: int, camp: str = "c1") -> str:
    """Grant at ``t`` with consent required: 'dialled', or the reason its result is due."""
    g = {**grant_args(), "consent": True, "camps": {camp: {"share": 1}}}
    [reply] = (await store.s.call("grant", t, rid=f"g{t}", grants=[g]))["grants"]
    if reply["jobs"]:
        return "dialled"
    return str(await store.r.hget(store.k.job("j0"), "fin"))


def consent(scope: str = "*", given: int = T0 - 1000, expires: int = 0) -> Consent:
    return Consent(scope, given, "web form", expires, T0, f"c{scope}{given}{expires}")


@pytest.mark.parametrize(("events", "camp", "outcome"), [
    ([], "c1", "blocked:no_consent"),
    ([consent("spring")], "c1", "blocked:no_consent"),            # another campaign's
    ([consent("spring")], "spring", "dialled"),
    ([consent("*")], "c1", "dialled"),
    ([consent(expires=T0 + 5)], "c1", "blocked:no_consent"),       # expired before the dial
    ([consent(), Revocation(T0 + 5, "call", T0, "r1")], "c1", "blocked:no_consent"),
    ([consent(), Revocation(T0 + 50, "call", T0, "r1")], "c1", "dialled"),  # not yet revoked
    ([Revocation(T0 - 5000, "call", T0, "r1"), consent()], "c1", "dialled"),  # given again
    ([consent(given=T0 + 10)], "c1", "dialled"),   # given after the push, before the dial
    ([consent(given=T0 + 30)], "c1", "blocked:no_consent"),  # given after the dial
])
async def test_a_job_is_dialled_only_under_a_consent_covering_its_campaign_at_the_dial(
        store: Store, events: list[Consent | Revocation], camp: str, outcome: str) -> None:
    await place(store, camp)
    await store.consent_record([(NUMBER, e) for e in events], add_dnc=False)
    assert await dial_at(store, T0 + 20, camp) == outcome


async def test_a_revocation_puts_the_number_on_the_do_not_call_list_and_keeps_the_history(
        store: Store) -> None:
    c, r = consent(), Revocation(T0, "call", T0, "r1")
    assert await store.consent_record([(NUMBER, c), (NUMBER, r)], add_dnc=True) == (2, 0)
    assert await store.consent_record([(NUMBER, r)], add_dnc=True) == (0, 1)
    assert await store.dnc_check([NUMBER]) == [True]
    assert await store.consent_history(NUMBER) == [c, r]


async def test_without_require_consent_the_ledger_is_not_asked(store: Store) -> None:
    await place(store)
    [reply] = (await store.s.call("grant", T0, rid="g", grants=[grant_args()]))["grants"]
    assert [j["id"] for j in reply["jobs"]] == ["j0"]


async def test_jobs_without_consent_end_blocked_no_consent(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    await store.consent_record([(NUMBER, Consent("*", T0 - 10**12, "paper form", 0, 0, "c"))],
                               add_dnc=False)
    cfg = make_settings(redis_server.url, ns, {"default": provider_cfg("telecho", sim.url)},
                        tracking={"track_calls": False},
                        policy={"calling_hours": ["always"], "require_consent": True})
    start_worker(cfg, workers)
    await push(store, {"id": "yes", "to": NUMBER},
               {"id": "no", "to": "+14155550101", "campaign": "spring"})
    results: dict[str, Any] = {r["job_id"]: r for r in await wait_results(store, 2)}
    assert (results["no"]["outcome"], results["no"]["reason"]) == ("blocked", "no_consent")
    x = explain(await gather(store, cfg, "no"))  # type: ignore[arg-type]
    assert x.why.text.endswith(": no consent on record for campaign spring")
    assert results["yes"]["outcome"] == "started"
    assert not creates(sim, "no") and len(creates(sim)) == 1


async def test_consent_commands_record_show_revoke_and_import_with_line_numbers(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    env = {"DISPATCHER_REDIS__URL": redis_server.url, "DISPATCHER_REDIS__NAMESPACE": ns}
    out = cli("consent", "add", "+1 415 555 0100", "--source", "web form", "--scope", "spring",
              "--at", "2026-03-01T09:30:00Z", "--expires", "2027-03-01", env=env)
    assert out.returncode == 0, out.stderr
    out = cli("consent", "revoke", "+14155550100", "--via", "call", env=env)
    assert out.returncode == 0 and "do-not-call" in out.stdout
    shown = cli("consent", "show", "+14155550100", env=env).stdout.splitlines()
    assert shown[0].startswith("2026-03-01T09:30:00.000Z  consent for campaign spring "
                               "(source: web form, expires 2027-03-01T00:00:00.000Z")
    assert "revoked (via: call" in shown[1]
    assert await store.dnc_check(["+14155550100"]) == [True]
    bad = cli("consent", "add", "+14155550100", "--source", "x", "--scope", "a b", env=env)
    assert bad.returncode == 2 and "scope: expected '*' or a campaign name" in bad.stderr
    f = tmp_path / "consents.csv"
    f.write_text("number,source,given_at,scope,expires_at\n"
                 "+14155550101,paper,2026-01-01,,\n"
                 "+14155550102,paper,yesterday,,\n"
                 "12,paper,2026-01-01,,\n"
                 "+14155550103,paper,2026-01-01,*,2026-06-01\n")
    out = cli("consent", "import", str(f), env=env)
    assert out.returncode == 1
    assert f"{f}:3: given_at: expected an ISO 8601 date" in out.stderr
    assert f"{f}:4: number:" in out.stderr
    assert "imported 2 consents (2 recorded)" in out.stdout and "2 lines refused" in out.stdout
    assert [len(await store.consent_history(n)) for n in
            ("+14155550101", "+14155550102", "+14155550103")] == [1, 0, 1]


times = st.integers(T0 - 100, T0 + 100)
events_st = st.lists(st.one_of(
    st.builds(lambda s, g, e: Consent(s, g, "form", e, T0, ""),
              st.sampled_from(["*", "c1", "spring"]), times, st.one_of(st.just(0), times)),
    st.builds(lambda a: Revocation(a, "call", T0, ""), times)), max_size=5)


@settings(max_examples=40, deadline=None)
@given(events=events_st, camp=st.sampled_from(["c1", "spring"]), t=times)
def test_the_grant_script_applies_the_ledgers_rule_exactly(
        redis_server: LocalRedis, events: list[Consent | Revocation], camp: str, t: int) -> None:
    async def run() -> str:
        async with store_on(redis_server, "h" + uuid.uuid4().hex[:10]) as store:
            await place(store, camp)
            numbered = [replace(e, id=f"e{i}") for i, e in enumerate(events)]
            await store.consent_record([(NUMBER, e) for e in numbered], add_dnc=False)
            return await dial_at(store, t, camp)
    want = "dialled" if covering(events, camp, t) else "blocked:no_consent"
    assert asyncio.run(run()) == want
