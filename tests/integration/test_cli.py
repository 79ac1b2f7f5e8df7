"""The operator surface as a user runs it: real processes, real Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from dispatcher.store.types import ResultItem


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def redis_env(redis: LocalRedis, ns: str) -> dict[str, str]:
    return {"DISPATCHER_REDIS__URL": redis.url, "DISPATCHER_REDIS__NAMESPACE": ns}


async def test_enqueue_from_arguments_jsonl_and_csv(redis_server: LocalRedis, ns: str,
                                                    store: Store, tmp_path: Path) -> None:
    env = redis_env(redis_server, ns)
    out = cli("enqueue", "--id", "a1", "--to", "+14155550100", "--metadata", '{"k": 1}',
              env=env)
    assert out.returncode == 0, out.stderr
    jl = tmp_path / "jobs.jsonl"
    jl.write_text('{"id": "b1", "to": "+14155550101"}\n\n{"id": "b2", "to": "+14155550102"}\n')
    assert cli("enqueue", "--file", str(jl), env=env).returncode == 0
    csvf = tmp_path / "jobs.csv"
    csvf.write_text("id,to,agent_id,max_attempts\nc1,+14155550103,tel_agt_sales,3\n")
    assert cli("enqueue", "--file", str(csvf), env=env).returncode == 0
    entries = await store.r.xrange(store.k.jobs)
    jobs = [json.loads(f["job"]) for _, f in entries]
    assert [j["id"] for j in jobs] == ["a1", "b1", "b2", "c1"]
    assert jobs[0]["metadata"] == {"k": 1}
    assert jobs[3] == {"id": "c1", "to": "+14155550103", "agent_id": "tel_agt_sales",
                       "max_attempts": 3}


async def test_enqueue_refuses_a_bad_job_naming_the_field(redis_server: LocalRedis, ns: str,
                                                          store: Store, tmp_path: Path) -> None:
    jl = tmp_path / "jobs.jsonl"
    jl.write_text('{"id": "ok", "to": "+14155550101"}\n{"id": "bad", "to": "0800"}\n')
    out = cli("enqueue", "--file", str(jl), env=redis_env(redis_server, ns))
    assert out.returncode == 2 and f"{jl}:2: to:" in out.stderr  # the file's line
    assert await store.r.xlen(store.k.jobs) == 0  # nothing half-pushed


def test_bad_configuration_stops_start_up_with_the_key_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.default]\nkind = "telecho"\nbase_url = "ftp://x"\n'
                   'api_key_env = "K"\nlimits = ["60/minit"]\n')
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 2
    assert "providers.default.base_url" in out.stderr
    assert "providers.default.limits" in out.stderr


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    out = cli("status", env={"DISPATCHER_REDIS__URL": "redis://127.0.0.1:1/0"})
    assert out.returncode == 2 and "cannot reach Redis at redis://127.0.0.1:1/0" in out.stderr


async def test_status_and_results(redis_server: LocalRedis, ns: str, store: Store) -> None:
    await store.finish([ResultItem("j1", None, {"job_id": "j1", "outcome": "cancelled"},
                                   "cancelled")], 60)
    env = {**redis_env(redis_server, ns), "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
           "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": "http://127.0.0.1:9",
           "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY",
           "DISPATCHER_PROVIDERS__DEFAULT__LIMITS": '["60/minute", "1000/hour"]'}
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    out = cli("status", env=env)
    assert out.returncode == 0, out.stderr
    assert "provider default (telecho): HALTED" in out.stdout
    assert "revoked_api_key" in out.stdout and "dispatcher resume default" in out.stdout
    assert "window 60/minute: 0 used, 60 left" in out.stdout
    data = json.loads(cli("status", "--json", env=env).stdout)
    assert data["providers"]["default"]["halted"] and data["results"] == 1
    res = cli("results", env=env)
    assert json.loads(res.stdout.strip()) == {"job_id": "j1", "outcome": "cancelled"}


def test_demo_runs_to_completion_and_its_counts_match_the_results_stream(
        redis_server: LocalRedis) -> None:
    out = cli("demo", "--jobs", "120", env={"REDIS_URL": redis_server.url}, timeout=150)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    ns = re.search(r"namespace (\S+)\)", out.stdout)
    assert ns, out.stdout
    total = re.search(r"^total\s+(\d+)\s+\(expected (\d+)\)", out.stdout, re.M)
    assert total and total.group(1) == total.group(2) == "127"
    rows = re.findall(
        r"^(ended|rejected|invalid|exhausted|expired|started|blocked)\s+(\S*)\s+(\d+)$",
        out.stdout, re.M)
    import redis
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    results = [json.loads(f["result"]) for _, f in r.xrange("{" + ns.group(1) + "}:results")]
    r.close()
    assert len(results) == 127
    from collections import Counter
    stream = Counter(r["outcome"] for r in results)
    printed: Counter[str] = Counter()
    for outcome, _, count in rows:
        printed[outcome] += int(count)
    assert printed == stream
    assert "0 answered 429, 0 calls started twice" in out.stdout
    assert stream["blocked"] == 1  # the number on the do-not-call list
    busy = next(r for r in results if r["job_id"] == "demo-busy")
    assert len(busy["calls"]) == 2  # redialled once
    assert len(re.findall(r"^waiting\s+window\s+demo-night-\d", out.stdout, re.M)) == 3


def test_simulate_and_run_processes_standalone(redis_server: LocalRedis, ns: str,
                                               tmp_path: Path) -> None:
    import signal
    import time
    import urllib.request

    from dispatcher.dev.localredis import free_port
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    sim = subprocess.Popen([sys.executable, "-m", "dispatcher", "simulate", "--port", str(port),
                            "--audit-file", str(audit)], stdout=subprocess.DEVNULL)
    env = {**os.environ, **redis_env(redis_server, ns),
           "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
           "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": f"http://127.0.0.1:{port}/api/v1/public",
           "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY",
           "DISPATCHER_PROVIDERS__DEFAULT__PHONE_NUMBER_ID": "tel_pn_main",
           "DISPATCHER_TRACKING__TRACK_CALLS": "false", "DISPATCHER_WORKER__HTTP_PORT": "0",
           "DISPATCHER_LOG_FORMAT": "json"}
    run = subprocess.Popen([sys.executable, "-m", "dispatcher", "run", "--processes", "2"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert cli("enqueue", "--id", "s1", "--to", "+14155550100", env=env).returncode == 0
        deadline = time.monotonic() + 20
        out = ""
        while time.monotonic() < deadline and '"outcome": "started"' not in out:
            out = cli("results", env=env).stdout
            time.sleep(0.2)
        assert '"outcome": "started"' in out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/audit") as r:
            assert len(json.loads(r.read())["entries"]) == 1
        assert json.loads(audit.read_text().splitlines()[0])["correlation"] == "s1"
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0
        logs = run.stdout.read().decode() if run.stdout else ""
        assert logs.count('"event": "worker.stopped"') == 2
    finally:
        for p in (run, sim):
            if p.poll() is None:
                p.kill()
