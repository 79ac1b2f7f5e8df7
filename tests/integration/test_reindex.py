"""``dispatcher reindex`` against real Redis: jobs stored the way a version without the jobs
list's index left them (hashes, and packed sleepers, with no index entries) are counted by the
dry run, which changes nothing; ``--apply`` lists them under their state, campaign and outcome;
a second ``--apply`` changes nothing. The console says when the index is not known whole."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.integration.test_cli_errors import cli, one_clear_line
from tests.integration.test_console_http import (
    fetch,
    place,
    quiet_settings,
    running_console,
    token_file,
)
from tests.integration.test_job_index import expected, index
from tests.integration.test_jobs_cli import env
from tests.integration.test_scripts import drop_index, snapshot


async def old_jobs(store: Store) -> None:
    """Jobs of every waiting state and a finished one, then the index taken away."""
    await place(store, "q0", "queued", campaign="spring")
    await place(store, "q1", "queued")
    await place(store, "d0", "delayed", "retry", campaign="spring", due_ms=1)
    await place(store, "s0", "delayed", "not_before", campaign="autumn",
                due_ms=int(time.time() * 1000) + 3_600_000)  # due in an hour: it sleeps
    await place(store, "p0", "parked", "halted", campaign="spring")
    await place(store, "x0", "queued", campaign="autumn")
    await store.cancel_job("x0", 600, ahead=False)
    await store.finish([ResultItem("x0", None, {"job_id": "x0"}, "cancelled")], 600)
    assert await store.r.hexists(store.k.dormant, "s0")
    await drop_index(store)


async def rows(store: Store, state: str, **more: Any) -> dict[str, dict[str, Any]]:
    page = await store.list_jobs({"state": state, "n": 50, **more})
    return {str(r["id"]): r for r in page.rows}


def without_audit(snap: dict[str, Any], store: Store) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k != store.k.audit}


async def test_reindex_counts_first_then_lists_the_old_jobs_and_twice_changes_nothing(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await old_jobs(store)
    assert await rows(store, "queued") == {} and not await store.index_built()
    before = await snapshot(store)
    dry = cli("reindex", env=env(redis_server, ns))
    assert dry.returncode == 0 and "6 jobs would be added" in dry.stdout, dry
    assert await snapshot(store) == before  # a dry run writes nothing, not even the audit

    done = cli("reindex", "--apply", env=env(redis_server, ns))
    assert done.returncode == 0 and "6 jobs added" in done.stdout, done
    assert set(await rows(store, "queued")) == {"q0", "q1"}
    assert set(await rows(store, "queued", camp="spring")) == {"q0"}
    assert set(await rows(store, "delayed")) == {"d0", "s0"}
    assert set(await rows(store, "delayed", camp="autumn")) == {"s0"}
    assert set(await rows(store, "parked", camp="spring")) == {"p0"}
    [x0] = (await rows(store, "done", outcome="cancelled", camp="autumn")).values()
    assert x0["id"] == "x0" and x0["outcome"] == "cancelled"
    info = await store.job_info("x0")
    assert x0["since"] == int(info["done_ms"])  # scored by when it entered its state
    got = await index(store)
    assert {k: v - {"s0"} for k, v in got.items() if v - {"s0"}} == await expected(store)
    assert await store.r.ttl(store.k.job_index("done", "autumn")) > 0  # expires with its jobs
    assert await store.index_built()
    assert [(e.action, e.detail) for e in await audit.latest(store, 5)] == [
        ("reindex", "6 of 6 jobs added to the jobs list")]

    after = await snapshot(store)
    again = cli("reindex", "--apply", env=env(redis_server, ns))
    assert again.returncode == 0 and "0 jobs added" in again.stdout, again
    assert without_audit(await snapshot(store), store) == without_audit(after, store)


async def test_a_fresh_namespace_is_whole_from_its_first_job_an_upgraded_one_is_not(
        store: Store) -> None:
    assert not await store.index_built()
    await place(store, "a0", "queued")
    assert await store.index_built()  # nothing was stored before: nothing to reindex
    await drop_index(store)
    await place(store, "a1", "queued")
    assert not await store.index_built()  # jobs were counted before: some may be missing
    assert (await store.reindex(dry=False)).added == 1
    assert await store.index_built()


@pytest.fixture
async def console(redis_server: LocalRedis, ns: str, tmp_path: Path) -> AsyncIterator[str]:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        yield url


async def test_the_jobs_list_says_old_jobs_are_missing_until_reindexed(
        console: str, store: Store) -> None:
    await old_jobs(store)
    _, body, _ = await fetch(console + "/jobs?state=queued")
    assert "data-unindexed" in body and "dispatcher reindex --apply" in body, body
    await store.reindex(dry=False)
    _, body, _ = await fetch(console + "/jobs?state=queued")
    assert "data-unindexed" not in body and 'data-job="q0"' in body


def test_an_unknown_option_is_one_clear_line(redis_server: LocalRedis, ns: str) -> None:
    one_clear_line(cli("reindex", "--aply", env=env(redis_server, ns)),
                   "unrecognized arguments: --aply")
