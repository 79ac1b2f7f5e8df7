"""A reader that goes away (``dispatcher run | head``, ``dispatcher results | head -3``): the
command ends quietly; a worker that can no longer log stops, hands its work back and exits
non-zero instead of running on half-dead."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import creates, push, set_key
from tests.integration.procs import dispatcher, worker_env

EXIT_OUTPUT_GONE = 141  # what a shell reports for a process ended by SIGPIPE


@pytest.mark.parametrize("merged", [False, True], ids=["stdout", "2>&1"])
async def test_a_worker_whose_stdout_closes_stops_and_hands_its_work_back(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], tmp_path: Path, merged: bool) -> None:
    set_key(sim, "telecho", limits=["1000/minute"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000  # no tracking here
    env = worker_env(redis_server.url, ns, sim.url + "/api/v1/public",
                     DISPATCHER_WORKER__HTTP_PORT="0", DISPATCHER_TRACKING__TRACK_CALLS="false",
                     DISPATCHER_PROVIDERS__DEFAULT__LIMITS='["1000/minute"]')
    err = tmp_path / "stderr.txt"
    with err.open("wb") as err_out:
        proc = dispatcher("run", env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merged else err_out)
    try:
        assert proc.stdout is not None
        first = await asyncio.to_thread(proc.stdout.readline)
        while b"worker.started" not in first:
            first = await asyncio.to_thread(proc.stdout.readline)
            assert first, err.read_text()
        proc.stdout.close()  # `| head -1`: the reader is gone
        await push(store, *({"id": f"p{i}", "to": f"+1415555{i:04d}"} for i in range(50)))
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = err.read_text()
    assert code == EXIT_OUTPUT_GONE, stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    assert (await store.counts()).get("dialing", 0) == 0  # nothing left held by it
    settings = make_settings(redis_server.url, ns,
                             {"default": provider_cfg("telecho", sim.url)},
                             tracking={"track_calls": False})
    start_worker(settings, workers)
    results = await wait_results(store, 50)
    assert sorted(r["job_id"] for r in results) == sorted(f"p{i}" for i in range(50))
    assert all(len(creates(sim, f"p{i}")) == 1 for i in range(50))  # none dialled twice


async def test_a_worker_whose_reader_stops_reading_goes_on_working(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    """`dispatcher run | less` left unscrolled: the pipe fills; lines are dropped (and
    counted), never the work."""
    set_key(sim, "telecho", limits=["10000/minute"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    env = worker_env(redis_server.url, ns, sim.url + "/api/v1/public",
                     DISPATCHER_WORKER__HTTP_PORT="0", DISPATCHER_TRACKING__TRACK_CALLS="false",
                     DISPATCHER_PROVIDERS__DEFAULT__LIMITS='["10000/minute"]')
    proc = dispatcher("run", env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while b"worker.started" not in await asyncio.to_thread(proc.stdout.readline):
            assert proc.poll() is None
        n = 400  # three lines of ~250 bytes each: several times a pipe's 64 KiB
        await push(store, *({"id": f"s{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
        results = await wait_results(store, n, timeout=120)
        assert len(results) == n  # while nobody read a line
        proc.terminate()
        rest = await asyncio.to_thread(proc.stdout.read)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = [json.loads(line) for line in rest.decode().splitlines()]  # whole lines only
    dropped = sum(x.get("lines", 0) for x in logged if x["event"] == "log.dropped")
    assert dropped > 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_results_into_a_pipe_closed_early_end_quietly(
        redis_server: LocalRedis, ns: str, store: Store, fmt: str) -> None:
    items = [ResultItem(f"r{i}", None, {"job_id": f"r{i}", "outcome": "cancelled",
                                        "metadata": {"pad": "x" * 200}}, "cancelled")
             for i in range(2000)]  # well over a pipe's buffer
    await store.finish(items, 600)
    env = worker_env(redis_server.url, ns)
    proc = dispatcher("results", "--format", fmt, env=env, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    lines = [await asyncio.to_thread(proc.stdout.readline) for _ in range(3)]  # `| head -3`
    assert all(lines)
    proc.stdout.close()
    stderr = (await asyncio.to_thread(proc.stderr.read)).decode()
    code = await asyncio.to_thread(proc.wait, 60)
    assert code in (0, EXIT_OUTPUT_GONE), stderr
    assert stderr == ""
