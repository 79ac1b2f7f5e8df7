"""Do-not-call registry freshness over real Redis: a registry whose loaded copy is missing or
older than its max_age_days holds exactly the jobs of the regions it covers (fail closed), and
releases them once a fresh copy is recorded. The clock is pinned through the scripts' ``now``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from dispatcher.config.console import ConsoleConfig
from dispatcher.core.model import EXCUSED
from dispatcher.dev.localredis import LocalRedis
from dispatcher.engine.collector import DeploymentCollector
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push
from tests.integration.test_cli import cli
from tests.integration.test_console_http import running_console
from tests.integration.test_scripts import grant_args, job_args, pushed

T0 = 1_800_000_000_000
DAY = 86_400_000
RECHECK = 60_000  # how often a held job looks again (lua/lib/grant.lua)
REGS = [{"name": "us-dnc", "max_age": 31 * DAY, "applies": ["US"]},
        {"name": "tps", "max_age": 31 * DAY, "applies": ["GB-SCT"]}]
REGIONS = {"fl": "US-FL", "us": "US", "eng": "GB-ENG", "sct": "GB-SCT", "none": ""}


async def place(store: Store) -> None:
    entries = await pushed(store, len(REGIONS))
    await store.s.call("ingest", T0, group=GROUP, grants=[], entries=[
        job_args(job, e, rg=rg) for (job, rg), e in zip(REGIONS.items(), entries, strict=True)])


async def grant_at(store: Store, t: int) -> list[str]:
    await store.s.call("promote", t, src="delayed", top="now", limit=100, max_defer=10 * DAY)
    g = {**grant_args(k=10), "slot_cap": 10, "regs": REGS}
    [reply] = (await store.s.call("grant", t, rid=f"g{t}", grants=[g]))["grants"]
    return sorted(j["id"] for j in reply["jobs"])


async def held(store: Store) -> dict[str, str]:
    out = {}
    for job in REGIONS:
        info = await store.job_info(job)
        if info.get("wr") == "registry_stale":
            out[job] = info["wd"]
    return out


async def test_a_stale_registry_holds_exactly_the_jobs_it_covers_until_a_fresh_copy(
        store: Store) -> None:
    await place(store)
    assert await grant_at(store, T0) == ["eng", "none"]
    assert await held(store) == {
        "fl": "do-not-call registry us-dnc has never been imported",
        "us": "do-not-call registry us-dnc has never been imported",
        "sct": "do-not-call registry tps has never been imported"}
    await store.registry_record("us-dnc", T0 - 40 * DAY, 100, now_ms=T0)
    await store.registry_record("tps", T0 - 2 * DAY, 100, now_ms=T0)
    assert await grant_at(store, T0 + RECHECK) == ["sct"]
    assert set((await held(store)).values()) == {
        "do-not-call registry us-dnc is 40 days old (at most 31)"}
    await store.registry_record("us-dnc", T0 - DAY, 100, now_ms=T0 + RECHECK)
    assert await grant_at(store, T0 + 2 * RECHECK) == ["fl", "us"]
    assert await held(store) == {}


async def test_an_older_copy_imported_again_does_not_make_the_registry_look_older(
        store: Store) -> None:
    assert await store.registry_record("us-dnc", T0 - DAY, 5, now_ms=T0) == T0 - DAY
    assert await store.registry_record("us-dnc", T0 - 9 * DAY, 5, now_ms=T0) == T0 - DAY
    assert await store.registries() == {"us-dnc": T0 - DAY}


async def test_dnc_import_as_a_registry_and_its_jobs_held_by_a_worker(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], tmp_path: Path) -> None:
    policy: dict[str, Any] = {"calling_hours": ["always"],
                              "registries": {"us-dnc": {"applies_to": ["US"]}}}
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg("telecho",
                                                                              sim.url)},
                               tracking={"track_calls": False}, policy=policy), workers)
    await push(store, {"id": "us", "to": "+12125550181"}, {"id": "gb", "to": "+442079460181"})
    [r] = await wait_results(store, 1)
    assert r["job_id"] == "gb" and r["outcome"] == "started"
    info = await store.job_info("us")
    assert (info["wr"], info["wd"]) == ("registry_stale",
                                         "do-not-call registry us-dnc has never been imported")
    cfg = tmp_path / "d.toml"
    cfg.write_text('[policy.registries.us-dnc]\napplies_to = ["US"]\n')
    env = {"DISPATCHER_REDIS__URL": redis_server.url, "DISPATCHER_REDIS__NAMESPACE": ns}
    f = tmp_path / "national.txt"
    f.write_text("+12125550199\n+12125550198\n")
    out = cli("dnc", "import", str(f), "--registry", "nope", "--as-of", "2026-01-01",
              "--config", str(cfg), env=env)
    assert out.returncode == 2 and "--registry: 'nope' is not configured" in out.stderr
    out = cli("dnc", "import", str(f), "--registry", "us-dnc", "--as-of", "01/02/2026",
              "--config", str(cfg), env=env)
    assert out.returncode == 2 and "--as-of: expected the list's date as YYYY-MM-DD" in out.stderr
    assert await store.dnc_check(["+12125550199"]) == [False]  # nothing changed
    out = cli("dnc", "import", str(f), "--registry", "us-dnc", "--as-of", "2026-01-01",
              "--config", str(cfg), env=env)
    assert out.returncode == 0 and "registry us-dnc: as of 2026-01-01" in out.stdout
    assert await store.registries() == {"us-dnc": 1_767_225_600_000}
    assert await store.dnc_check(["+12125550199"]) == [True]


async def test_the_console_and_the_metrics_say_which_registry_is_stale(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    policy = {"registries": {"us-dnc": {"applies_to": ["US"]},
                             "tps": {"applies_to": ["GB"], "max_age_days": 10}}}
    s = make_settings(redis_server.url, ns, {"default": provider_cfg("telecho",
                                                                     "http://127.0.0.1:9")},
                      policy=policy)
    now = await store.server_ms()
    await store.registry_record("tps", now - 2 * DAY, 10)
    async with running_console(s, ConsoleConfig()) as url, aiohttp.ClientSession() as http, \
            http.get(url + "/") as resp:
        page = await resp.text()
    assert "do-not-call registry us-dnc has never been imported: the jobs it covers wait" \
        in page
    assert "registry tps" not in page
    collector = DeploymentCollector(s, store)
    await collector.refresh()
    samples = {(m.name, x.labels.get("registry")): x.value
               for m in collector.collect() for x in m.samples if "registry" in m.name}
    assert samples[("dispatcher_registry_stale", "us-dnc")] == 1
    assert samples[("dispatcher_registry_stale", "tps")] == 0
    assert 2 <= samples[("dispatcher_registry_age_days", "tps")] < 2.01
    assert ("dispatcher_registry_age_days", "us-dnc") not in samples


async def test_a_job_held_by_a_stale_registry_is_not_expired_for_waiting_too_long(
        store: Store) -> None:
    """Fail closed, not fail lost: waiting for a fresh registry copy does not count toward
    retry.max_defer_s (5 min here), however many rechecks it takes."""
    max_defer = 5 * 60_000
    [entry] = await pushed(store, 1)
    await store.s.call("ingest", T0, group=GROUP, grants=[], entries=[
        job_args("us", entry, rg="US", deadline=T0 + max_defer)])
    g = {**grant_args(k=10), "slot_cap": 10, "regs": REGS}
    for step in range(12):  # an hour of rechecks, well past the 5 minutes
        t = T0 + step * RECHECK
        assert not (await store.s.call("sweep", t, limit=100))["due"]
        await store.s.call("promote", t, src="delayed", top="now", limit=100,
                           max_defer=max_defer)
        [reply] = (await store.s.call("grant", t, rid=f"g{t}", grants=[g]))["grants"]
        assert not reply["jobs"]
        assert (await store.job_info("us")).get("wr") == "registry_stale"
    t = T0 + 12 * RECHECK
    await store.registry_record("us-dnc", t - DAY, 100, now_ms=t)
    await store.s.call("promote", t, src="delayed", top="now", limit=100, max_defer=max_defer)
    [reply] = (await store.s.call("grant", t, rid="fresh", grants=[g]))["grants"]
    assert [j["id"] for j in reply["jobs"]] == ["us"]


def test_the_scripts_excuse_the_waits_the_model_excuses() -> None:
    """promote and sweep each name the waits that do not count toward max_defer_s; they must
    agree with the model (a campaign's pause is excused too, though not a wait reason)."""
    lua = Path(__file__).parents[2] / "dispatcher" / "lua"
    for name in ("promote.lua", "sweep.lua"):
        m = re.search(r"local EXCUSED = \{(.*?)\}", (lua / name).read_text(), re.S)
        assert m, name
        named = set(re.findall(r"(\w+) = true", m.group(1)))
        assert named == {r.value for r in EXCUSED} | {"paused"}, name
