"""``dispatcher demo``: the whole product on one machine, nothing else needed.

A private redis-server (or ``REDIS_URL``), the simulator with realistic limits and a few faults,
several worker processes, a few hundred sample jobs, a live progress line and a summary, then
whether calls may be made at all: a job without consent, Florida's calling hours, an opt-out
posted during a live call.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from dispatcher.config.settings import load_settings
from dispatcher.core import decide
from dispatcher.core.jobs import Job, parse_job
from dispatcher.core.policies import PolicyBook
from dispatcher.dev.demo_data import (
    CONSENT_CAMPAIGN,
    DNC_NUMBER,
    FLORIDA_CAMPAIGN,
    FLORIDA_NUMBER,
    ITL_KEY,
    NIGHT_CAMPAIGN,
    NO_CONSENT_NUMBER,
    OPTOUT_NUMBER,
    OPTOUT_TOKEN,
    REDIAL_AFTER,
    TEL_KEY,
    WEBHOOK_SECRET,
    config_toml,
    sample_jobs,
    sim_config,
)
from dispatcher.dev.localredis import LocalRedis, free_port, start_redis
from dispatcher.ops.status import collect
from dispatcher.simulator import start_simulator
from dispatcher.store import Store, connect


def _spawn_workers(count: int, cfg_path: Path, env: dict[str, str], tmp: Path
                   ) -> list[subprocess.Popen[bytes]]:
    procs = []
    for index in range(count):
        log = (tmp / f"worker-{index}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "run", "--config", str(cfg_path)],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()


async def _demo(count: int, processes: int, keep: bool = False) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-demo-"))
    local: LocalRedis | None = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        local = start_redis(workdir=str(tmp), extra=("--hash-max-listpack-value", "512"))
        redis_url = local.url
    ns = f"demo-{int(time.time())}"
    port = free_port()
    sim = await start_simulator(sim_config(port))
    cfg_path = tmp / "dispatcher.toml"
    token_file = tmp / "optout-token"
    token_file.write_text(OPTOUT_TOKEN, encoding="utf-8")
    cfg_path.write_text(config_toml(redis_url, ns, sim.url, port, str(token_file)),
                        encoding="utf-8")
    env = _environment(cfg_path)
    settings = load_settings(str(cfg_path))
    workers: list[subprocess.Popen[bytes]] = []
    store = Store(connect(redis_url), ns)
    say(f"dispatcher demo: redis {redis_url} (namespace {ns}), simulator {sim.url}, "
        f"{processes} worker processes; logs in {tmp}")
    try:
        workers += _spawn_workers(processes, cfg_path, env, tmp)
        await store.ensure_group()
        await store.dnc_add([DNC_NUMBER])
        results, expected, night = await _play(store, settings, count, workers, tmp, sim, port)
        if keep:
            _inspect(cfg_path, night[0])
            await _until_interrupted()
        else:
            _closing(redis_url, ns, local is not None)
        return 0 if len(results) == expected else 1
    finally:
        await asyncio.to_thread(_stop_workers, workers)  # the simulator keeps answering
        await store.close()
        await sim.stop()
        if local:
            local.stop()
        if keep:
            print("stopped: the workers, the simulator"
                  + (" and the demo's private Redis" if local else ""))


def _environment(cfg_path: Path) -> dict[str, str]:
    """The workers' environment: the demo's keys, also set here for the demo's own reads."""
    env = {**os.environ, "DEMO_TELECHO_KEY": TEL_KEY, "DEMO_ITELLICO_KEY": ITL_KEY,
           "DEMO_WEBHOOK_SECRET": WEBHOOK_SECRET, "DISPATCHER_CONFIG": str(cfg_path)}
    os.environ.update({k: env[k] for k in ("DEMO_TELECHO_KEY", "DEMO_ITELLICO_KEY",
                                           "DEMO_WEBHOOK_SECRET")})
    return env


async def _play(store: Store, settings: Any, count: int, workers: list[subprocess.Popen[bytes]],
                tmp: Path, sim: Any, port: int) -> tuple[dict[str, Any], int, list[str]]:
    """Push the sample, watch it, and show how the counts add up."""
    jobs, expected, night = sample_jobs(count)
    await store.enqueue(jobs)
    distinct = expected + len(night)
    say(f"enqueued {len(jobs)} entries, {distinct} distinct ids: a few invalid or "
        f"faulty, one on the do-not-call list, one busy line that is redialled, "
        f"{len(night)} for people whose calling window is closed now, one without the "
        f"consent its campaign requires, one whose number opts out during its call")
    optout = asyncio.create_task(_opt_out(sim.sim, port))
    try:
        results = await _watch(store, settings, expected, workers, deadline=time.time() + 110)
    finally:
        posted = await optout if optout.done() else None
        optout.cancel()
    _summary(results, expected, tmp, sim.sim.audit)
    await _waiting(store, night)
    say(_reconcile(len(jobs), distinct, len(results), len(night)))
    print()
    for line in _whether(settings, results, posted, sim.sim):
        say(line)
    return results, expected, night


# -- whether a call may be made at all ---------------------------------------------------------
class OptOut(NamedTuple):
    status: int  # the worker's HTTP answer
    at: float  # when it answered (epoch s): durable from then on
    live: bool  # the call to the number was still live when the answer came


async def _opt_out(sim: Any, port: int) -> OptOut | None:
    """As a voice agent's tool call would: once the call to OPTOUT_NUMBER is live (the
    simulator's ground truth), ``POST /v1/optout`` to the workers' HTTP port."""
    import aiohttp

    def live(when: float) -> bool:
        return any(c.to == OPTOUT_NUMBER and c.live(when) for c in list(sim.calls.values()))

    while True:  # the simulator's calls are plain data: looked at, no event to wait on
        if live(time.time()):
            break
        await asyncio.sleep(0.05)
    async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{port}/v1/optout",
            json={"to": OPTOUT_NUMBER, "via": "said stop during the demo call"},
            headers={"Authorization": f"Bearer {OPTOUT_TOKEN}"}) as resp:
        status = resp.status
    at = time.time()
    return OptOut(status, at, live(at))


def _whether(settings: Any, results: dict[str, Any], posted: OptOut | None,
             sim: Any) -> list[str]:
    """The three rules on whether a call may be made, as this run applied them."""
    got = results.get("demo-no-consent", {})
    consent = (f"{'blocked':<12}{got.get('reason', '?'):<28}demo-no-consent: campaign "
               f"{CONSENT_CAMPAIGN} has require_consent = true and no consent is on record "
               f"for {NO_CONSENT_NUMBER}: result {got.get('outcome', 'none yet')}, not dialled")
    return [consent, _florida(settings), _optout_line(results, posted, sim)]


def _florida(settings: Any) -> str:
    """Florida's 08:00-20:00 at 20:30 Florida time today, asked of the decision core the way
    every intake and grant asks it: the demo runs at whatever hour it is, so no job waits for
    this live; the line says so."""
    miami = ZoneInfo("America/New_York")
    evening = dt.datetime.combine(dt.datetime.now(miami).date(), dt.time(20, 30), miami)
    t_ms = round(evening.timestamp() * 1000)
    job = parse_job(json.dumps({"id": "demo-florida", "to": FLORIDA_NUMBER,
                                "campaign": FLORIDA_CAMPAIGN}), now=t_ms / 1000)
    assert isinstance(job, Job)
    book = PolicyBook(settings.policy, settings.campaigns)
    got = decide.schedule(job, book.for_job(job), t_ms, 3_600_000)
    verdict = (f"waits until {_local(got.until_ms, miami)}: {got.detail}"
               if isinstance(got, decide.Wait) else f"{type(got).__name__} (unexpected)")
    return (f"{'held':<12}{'Florida 20:00':<28}{FLORIDA_NUMBER} (Miami, campaign "
            f"{FLORIDA_CAMPAIGN}, jurisdiction us) at 20:30 Florida time on "
            f"{evening.date().isoformat()}, as the decision core judges it (explained, not "
            f"dialled: the demo runs at any hour): {verdict}")


def _local(ms: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%a %H:%M")


def _optout_line(results: dict[str, Any], posted: OptOut | None, sim: Any) -> str:
    calls = sorted(c.created for c in list(sim.calls.values()) if c.to == OPTOUT_NUMBER)
    got = results.get("demo-optout", {})
    if posted is None:
        return f"{'opt-out':<12}{'':<28}demo-optout: its call never went live; nothing posted"
    after = sum(1 for t in calls if t > posted.at)
    when = "while its call was live" if posted.live else "just after its call ended"
    return (f"{'opt-out':<12}{'POST /v1/optout ' + str(posted.status):<28}demo-optout: "
            f"{OPTOUT_NUMBER} opted out {when} (voicemail, so a redial was due "
            f"{REDIAL_AFTER} after its end); calls to the number: {len(calls)} in all, {after} "
            f"after the opt-out (the simulator's count); result {got.get('outcome', 'none')}"
            f"/{got.get('reason', '')}")


async def _watch(store: Store, settings: Any, expected: int,
                 workers: list[subprocess.Popen[bytes]], deadline: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    last = "0"
    tty = sys.stdout.isatty()
    shown = 0.0
    width = shutil.get_terminal_size().columns if tty else 10_000
    while len(results) < expected and time.time() < deadline:
        for eid, res in await store.read_results(last, 1000, 500):
            last = eid
            results[res.get("job_id") or eid] = res
        if any(w.poll() is not None for w in workers):
            print("\na worker process exited early; see its log", file=sys.stderr)
            break
        if time.time() - shown >= (0.5 if tty else 5.0):
            shown = time.time()
            if tty:
                width = shutil.get_terminal_size().columns  # the window may be resized
            line = _progress(results, await collect(store, settings), expected, width)
            print(_redraw(line, width) if tty else line, end="" if tty else "\n",
                  flush=True)
    print()
    return results


def _progress(results: dict[str, Any], st: dict[str, Any], expected: int,
              width: int = 10_000) -> str:
    """The live line, shorter than ``width``: its parts in order of use, as many as fit (a
    line that wraps would print a new line at each refresh)."""
    by = collections.Counter(r["outcome"] for r in results.values())
    answers = collections.Counter(r.get("answer_status") for r in results.values()
                                  if r["outcome"] == "ended")
    ans = " ".join(f"{k}:{v}" for k, v in sorted(answers.items()))
    parts = [f"{len(results)}/{expected} done", f"ended {by['ended']} ({ans})",
             f"calls live {st['tracking']}", f"retrying {st['delayed']}",
             f"rejected {by['rejected']}", f"invalid {by['invalid']}",
             f"exhausted {by['exhausted']}"]
    for name, provider in st["providers"].items():
        use = ",".join(f"{w['window']}={w['used']}" for w in provider["windows"])
        parts.append(f"{name}[{use} slots {provider['slots_in_use']}]")
    line = parts[0]
    for part in parts[1:]:
        if len(line) + 3 + len(part) >= width:
            break
        line += " | " + part
    return line[:width - 1]


def _redraw(line: str, width: int) -> str:
    """The line over the previous one: back to its start, the line, the rest erased."""
    return "\r" + line[:width - 1] + "\x1b[K"


def say(text: str, width: int | None = None) -> None:
    """Prose for the screen: wrapped to the terminal (on a terminal), so no line wraps
    mid-word at any width; commands are printed as they are, to be copied whole."""
    if width is None and sys.stdout.isatty():
        width = shutil.get_terminal_size().columns
    print(textwrap.fill(text, width - 1, subsequent_indent="  ", break_on_hyphens=False)
          if width else text)


def _reconcile(entries: int, distinct: int, results: int, waiting: int) -> str:
    """How the entries pushed add up to what the end screen shows."""
    repeated = entries - distinct
    head = f"enqueued {entries} entries, {distinct} distinct ids"
    if repeated:
        head += f" ({repeated} repeated ids, each dialled once)"
    text = f"{head}: {results} results + {waiting} waiting (their calling window is closed)"
    missing = distinct - results - waiting
    if missing:
        text += f" + {missing} without a result yet"
    return text


def _summary(results: dict[str, Any], expected: int, tmp: Path,
             audit: list[dict[str, Any]]) -> None:
    out = tmp / "results.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in results.values()), encoding="utf-8")
    by = collections.Counter((r["outcome"], r.get("answer_status") or r.get("error_code")
                              or r.get("reason") or "")
                             for r in results.values())
    print(f"\n{'outcome':<12}{'detail':<28}{'jobs':>6}")
    for (outcome, detail), count in sorted(by.items()):
        print(f"{outcome:<12}{detail:<28}{count:>6}")
    print(f"{'total':<40}{len(results):>6}  (expected {expected})")
    over = sum(1 for e in audit if e["status"] == 429)
    creates = collections.Counter((e.get("correlation"), e.get("call_n")) for e in audit
                                  if e.get("call_id"))
    twice = sum(1 for c in creates.values() if c > 1)
    print(f"provider saw {len(audit)} requests, {over} answered 429, "
          f"{twice} calls started twice")
    print(f"\nresults saved to {out}")


async def _waiting(store: Store, night: list[str]) -> None:
    """The jobs that wait for their recipients' calling window: no result yet, by design."""
    infos = [await store.job_info(job_id) for job_id in night]
    for job_id, info in zip(night, infos, strict=True):
        say(f"{'waiting':<12}{info.get('wr', '?'):<28}{job_id}: campaign {NIGHT_CAMPAIGN}, "
            f"calling window opens {info.get('wd', '?')}")


def _cli() -> str:
    """How to run the command from here: the virtualenv's copy when it is not on PATH."""
    here = Path(sys.executable).parent / "dispatcher"
    return "dispatcher" if shutil.which("dispatcher") == str(here) or not here.exists() \
        else str(here)


def _inspect(cfg_path: Path, waiting: str) -> None:
    cmd = _cli()
    print("\nthe demo stays up until Ctrl-C; in another terminal, look around with:")
    for what in ("status", f"explain {waiting}", "results"):
        print(f"  {cmd} {what} --config {cfg_path}")
    print("Ctrl-C here stops everything the demo started", flush=True)


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _closing(redis_url: str, ns: str, private: bool) -> None:
    if private:
        say("the demo's private Redis stopped with it. To look around after the summary "
            "(dispatcher explain, status, results), run it with --keep: it stays up until "
            "Ctrl-C and prints the commands; or run it against a Redis that stays up:")
        print("  REDIS_URL=redis://127.0.0.1:6379/0 dispatcher demo")
        return
    print("read the results stream with:")
    print(f"  DISPATCHER_REDIS__URL={redis_url} DISPATCHER_REDIS__NAMESPACE={ns} "
          f"dispatcher results")
    print(f"  redis-cli -u {redis_url} XRANGE '{{{ns}}}:results' - +")


def run_demo(jobs: int = 300, processes: int = 3, keep: bool = False) -> int:
    try:
        return asyncio.run(_demo(jobs, processes, keep))
    except KeyboardInterrupt:
        print("\ninterrupted; everything the demo started was stopped")
        return 130
    except RuntimeError as exc:
        print(f"dispatcher demo: {exc}", file=sys.stderr)
        return 2
