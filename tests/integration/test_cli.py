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

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd)


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
    assert total and total.group(1) == total.group(2) == "129"
    rows = re.findall(
        r"^(ended|rejected|invalid|exhausted|expired|started|blocked)\s+(\S*)\s+(\d+)$",
        out.stdout, re.M)
    import redis
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    results = [json.loads(f["result"]) for _, f in r.xrange("{" + ns.group(1) + "}:results")]
    r.close()
    assert len(results) == 129
    from collections import Counter
    stream = Counter(r["outcome"] for r in results)
    printed: Counter[str] = Counter()
    for outcome, _, count in rows:
        printed[outcome] += int(count)
    assert printed == stream
    assert "0 answered 429, 0 calls started twice" in out.stdout
    blocked = {r["job_id"]: r["reason"] for r in results if r["outcome"] == "blocked"}
    assert blocked == {"demo-dnc": "dnc", "demo-no-consent": "no_consent",
                       "demo-optout": "dnc"}  # the opt-out put its number on the list
    busy = next(r for r in results if r["job_id"] == "demo-busy")
    assert len(busy["calls"]) == 2  # redialled once
    assert len(re.findall(r"^waiting\s+window\s+demo-night-\d", out.stdout, re.M)) == 3
    assert "enqueued 134 entries, 132 distinct ids (2 repeated ids, each dialled once): " \
        "129 results + 3 waiting" in out.stdout
    assert re.search(r"^blocked\s+no_consent\s+demo-no-consent: campaign spring has "
                     r"require_consent = true", out.stdout, re.M)
    florida = re.search(r"^held\s+Florida 20:00\s+\+13055550123 .* at 20:30 Florida time on "
                        r"\d{4}-\d\d-\d\d, .*explained, not dialled.*: waits until \w{3} 08:00: "
                        "Florida: 08:00\u201320:00 recipient time, opens in (\\d+) h 30 min",
                        out.stdout, re.M)
    assert florida and florida.group(1) in ("10", "11", "12")  # 12 h across a DST change
    optout = re.search(r"^opt-out\s+POST /v1/optout 200\s+demo-optout: \+12125550487 opted "
                       r"out (while its call was live|just after its call ended) .*calls to "
                       r"the number: 1 in all, 0 after the opt-out", out.stdout, re.M)
    assert optout and len(next(r for r in results if r["job_id"] == "demo-optout")["calls"]) == 1
    assert "Etc/GMT" not in out.stdout and re.search(r"opens \d\d:\d\d UTC", out.stdout)


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


def test_status_outside_the_repository_says_no_configuration_was_loaded(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPATCHER_CONFIG"}
    env.update(redis_env(redis_server, ns))
    out = subprocess.run([sys.executable, "-m", "dispatcher", "status"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("no configuration loaded") and "--config" in first
    assert "read from Redis alone" in out.stdout
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "dispatcher", "status", "--json"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert data["config"] is None
    with_config = cli("status", "--json", "--config", str(ROOT / "config/dispatcher.toml"),
                      env=redis_env(redis_server, ns), cwd=tmp_path)
    assert json.loads(with_config.stdout)["config"].endswith("config/dispatcher.toml")


def test_the_demo_can_stay_up_to_be_inspected_until_interrupted() -> None:
    import signal
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher", "demo", "--jobs", "20",
                             "--keep"], env={**os.environ, "REDIS_URL": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "stops everything" in line:
                break
        text = "".join(lines)
        status_cmd = re.search(r"^\s+(\S*dispatcher status --config \S+)$", text, re.M)
        assert status_cmd, text
        explain = re.search(r"^\s+\S*dispatcher explain demo-night-0 --config (\S+)$", text,
                            re.M)
        assert explain, text
        out = cli("explain", "demo-night-0", "--config", explain.group(1))
        assert out.returncode == 0 and "demo-night-0" in out.stdout, out.stderr
        status = cli("status", "--config", explain.group(1))
        assert "provider eu" in status.stdout, status.stdout + status.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert "stopped" in rest
