"""``dispatcher cancel`` and ``dispatcher redrive`` with the jobs list's filters: the same jobs
as the console lists, a count first, and one clear line for a wrong filter."""

from __future__ import annotations

import pytest

from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.integration.test_cli_errors import PROVIDER_ENV, cli, one_clear_line
from tests.integration.test_console_http import place


def env(redis: LocalRedis, ns: str) -> dict[str, str]:
    return {**PROVIDER_ENV, "DISPATCHER_REDIS__URL": redis.url,
            "DISPATCHER_REDIS__NAMESPACE": ns}


async def test_cancel_by_campaign_counts_first_then_cancels_only_those(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    for i in range(6):
        await place(store, f"s{i}", "queued", campaign="spring")
    for i in range(3):
        await place(store, f"a{i}", "queued", campaign="autumn")
    await place(store, "d0", "delayed", "retry", campaign="spring", due_ms=1)
    dry = cli("cancel", "--campaign", "spring", env=env(redis_server, ns))
    assert dry.returncode == 0 and "6 jobs would be cancelled" in dry.stdout, dry
    assert (await store.counts("spring")).get("queued") == 6
    done = cli("cancel", "--campaign", "spring", "--apply", env=env(redis_server, ns))
    assert "6 jobs cancelled" in done.stdout, done
    assert (await store.counts("spring")).get("finishing") == 6
    assert (await store.counts("autumn")).get("queued") == 3
    assert (await store.counts("spring")).get("delayed") == 1  # another state: not named
    trail = [(e.action, e.by.startswith("cli@"), e.detail) for e in await audit.latest(store, 5)]
    assert trail == [("job.cancel", True, "6 jobs cancelled")]  # the dry run: not an action


async def test_redrive_by_campaign_takes_only_that_campaigns_jobs(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    for i, camp in enumerate(("spring", "spring", "autumn")):
        await place(store, f"x{i}", "queued", campaign=camp)
        await store.cancel_job(f"x{i}", 600, ahead=False)
    await store.finish([ResultItem(f"x{i}", None, {"job_id": f"x{i}"}, "cancelled")
                        for i in range(3)], 600)
    out = cli("redrive", "--outcome", "cancelled", "--campaign", "spring", "--apply",
              env=env(redis_server, ns))
    assert "2 jobs redriven" in out.stdout and "x2" not in out.stdout, out
    assert [(e.action, e.detail) for e in await audit.latest(store, 5)] == [
        ("redrive", "2 of 2 jobs redriven")]
    assert (await store.job_info("x2")).get("state") == "done"


@pytest.mark.parametrize(("args", "needle"), [
    (["cancel", "--state", "done", "--campaign", "c"], "--state: only jobs not yet dialled"),
    (["cancel", "--priority", "urgent"], "--priority: expected one of high, normal, low"),
    (["cancel", "--since", "yesterday"], "--since: expected a time like"),
    (["cancel"], "give a job id, or filters"),
    (["redrive", "--outcome", "ended"], "--outcome: expected one of exhausted"),
])
def test_a_wrong_filter_is_one_clear_line(redis_server: LocalRedis, ns: str,
                                          args: list[str], needle: str) -> None:
    one_clear_line(cli(*args, env=env(redis_server, ns)), needle)
