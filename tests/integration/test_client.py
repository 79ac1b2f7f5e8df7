"""The Python client against a real Redis: duplicates, waiting for one result, the sync
wrapper, campaign controls, and the example producers (Python, Node, Go) against the job
contract."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dispatcher.client import Client, JobRejected, SyncClient
from dispatcher.core.jobs import InvalidJob, parse_job
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker
from tests.integration.test_campaigns_scripts import ingest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs/schemas/job.schema.json").read_text())


def done(job_id: str, campaign: str | None = None) -> ResultItem:
    return ResultItem(job_id, None, {"job_id": job_id, "outcome": "cancelled",
                                     "campaign": campaign}, "cancelled")


async def test_enqueue_tells_ids_already_known_and_repeated_in_the_batch(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await ingest(store, [("old", "", "normal")])
    async with Client(redis_server.url, ns) as client:
        sent = await client.enqueue([{"id": "old", "to": "+14155550100"},
                                     {"id": "new", "to": "+14155550100"},
                                     '{"id": "new", "to": "+14155550101"}'])
        with pytest.raises(JobRejected, match=r"job 1 \('bad'\): to:"):
            await client.enqueue([{"id": "ok", "to": "+14155550100"},
                                  {"id": "bad", "to": "0415"}])
    assert len(sent) == 3 and sent.duplicates == ["old", "new"]
    assert await store.r.xlen(store.k.jobs) == 3


async def test_wait_returns_a_result_written_before_or_after_it_is_asked_for(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await store.finish([done("early")], 60)
    await store.finish([done(f"o{i}") for i in range(700)], 60)  # more than one page after
    async with Client(redis_server.url, ns) as client:
        assert (await client.wait("early", timeout=1))["job_id"] == "early"
        later = asyncio.create_task(client.wait("late", timeout=5))
        await asyncio.sleep(0.3)
        await store.finish([done("late")], 60)
        assert (await later)["job_id"] == "late"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.wait("never", timeout=0.5)
        assert time.monotonic() - started > 0.4  # it waited for its timeout
        await store.r.hset(store.k.job("trimmed"), "done_ms", 1)
        with pytest.raises(LookupError, match="trimmed"):
            await client.wait("trimmed", timeout=1)


async def test_campaign_controls_reach_ready_lists_of_providers_it_was_not_told(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await ingest(store, [(f"j{i}", "spring", "normal") for i in range(5)], prov="eu")
    async with Client(redis_server.url, ns) as client:  # no provider names given
        await client.pause("spring")
        status = await client.campaign("spring")
        assert status is not None and status.paused and status.queued == 5
        assert await client.cancel_campaign("spring") == 5
        after = await client.campaign("spring")
        assert after is not None and after.cancelled and after.queued == 0
        assert after.finishing == 5  # their 'cancelled' results are being written
        assert [s.name for s in await client.campaigns()] == ["spring"]
        assert await client.campaign("nope") is None


def test_the_sync_client_works_without_an_event_loop(redis_server: LocalRedis,
                                                     ns: str) -> None:
    with SyncClient(redis_server.url, ns) as client:
        sent = client.enqueue([{"id": "s1", "to": "+14155550100", "campaign": "c"}])
        assert len(sent) == 1 and sent.duplicates == []
        client.pause("c")
        status = client.campaign("c")
        assert status is not None and status.paused
        client.resume("c")
        assert client.cancel("s1") is True  # not read yet: cancelled when it is
        assert list(client.results()) == []
        with pytest.raises(TimeoutError):
            client.wait("s1", timeout=0.2)


async def test_the_python_example_runs_against_a_worker(
        redis_server: LocalRedis, ns: str, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    settings = make_settings(redis_server.url, ns,
                             {"default": provider_cfg("telecho", sim.url)})
    sim.sim.cfg.calls.ring_s, sim.sim.cfg.calls.talk_s = (0.05, 0.1), (0.1, 0.2)
    start_worker(settings, workers)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples/python/producer.py"),
        env={**os.environ, "REDIS_URL": redis_server.url, "DISPATCHER_NAMESPACE": ns},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "pushed 2 jobs; already known: none"
    assert [x.split()[:2] for x in lines[1:3]] == [["lead-1001", "ended"],
                                                  ["lead-1002", "ended"]]
    assert lines[3] == "campaign: 2 done, 0 to go"


def check_job(job: dict[str, Any]) -> None:
    jsonschema.validate(job, SCHEMA)
    parsed = parse_job(json.dumps(job), now=time.time())
    assert not isinstance(parsed, InvalidJob), parsed.error


def test_the_node_example_pushes_jobs_that_match_the_contract() -> None:
    node = shutil.which("node")
    assert node, "node is part of this machine image"
    out = subprocess.run([node, str(ROOT / "examples/node/producer.js"), "--print"],
                         capture_output=True, text=True, timeout=30, check=True)
    jobs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(jobs) == 3
    for job in jobs:
        check_job(job)


GO_TYPES = {"string": {"type": "string"}, "int": {"type": "integer"},
            "map[string]any": {"type": "object"}, "*time.Time": {"time": True}}


def test_the_go_example_job_struct_matches_the_contract() -> None:
    src = (ROOT / "examples/go/producer.go").read_text()
    body = re.search(r"type Job struct \{(.*?)\n\}", src, re.S)
    assert body
    fields = re.findall(r'^\s*(\w+)\s+(\S+)\s+`json:"([^"]+)"`', body.group(1), re.M)
    names = {tag.split(",")[0] for _, _, tag in fields}
    assert names == set(SCHEMA["properties"])
    for _, go_type, tag in fields:
        name, *opts = tag.split(",")
        assert ("omitempty" in opts) == (name not in SCHEMA["required"]), name
        assert go_type in GO_TYPES, go_type
    # Go writes times as RFC 3339 with nanoseconds; its zero values are left out
    soon = datetime.now(UTC) + timedelta(hours=1)
    check_job({"id": "lead-1001", "to": "+14155550100", "campaign": "spring-2026",
               "priority": "high", "metadata": {"name": "Ann", "source": "crm"},
               "not_before": soon.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"})
