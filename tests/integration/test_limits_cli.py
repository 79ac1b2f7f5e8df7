"""``dispatcher limits``, run as an operator runs it, against worker processes and the
simulator: a lower limit holds from a second after the command, a reset brings back the
file's; bad input changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from dispatcher.core.limits import max_in_any_window
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from tests.conftest import provider_cfg
from tests.integration.helpers import push, set_key
from tests.integration.procs import spawn_workers, stop_all, toml
from tests.integration.test_cli import cli

FILE_LIMIT = "50/second"


def config(redis: LocalRedis, ns: str, sim_url: str) -> dict[str, Any]:
    return {"log_format": "json", "log_level": "warning",
            "redis": {"url": redis.url, "namespace": ns, "block_ms": 500},
            "worker": {"concurrency": 20, "http_port": 0, "claim_idle_s": 10,
                       "heartbeat_s": 1},
            "tracking": {"track_calls": False},
            "providers": {"default": provider_cfg("telecho", sim_url, limits=[FILE_LIMIT],
                                                  send_margin_s=0.05)}}


async def creates_after(sim: RunningSimulator, t: float, n: int, limit_s: float = 60) -> None:
    """Until the simulator has seen n create requests after epoch time t."""
    deadline = time.monotonic() + limit_s
    while sum(1 for e in sim.sim.audit if e["t"] > t) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_a_lower_limit_holds_a_second_after_the_command_and_reset_restores_the_file(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    set_key(sim, "telecho", limits=[FILE_LIMIT])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    cfg = config(redis_server, ns, sim.url)
    path = tmp_path / "operator.toml"
    path.write_text(toml(cfg))
    await push(store, *({"id": f"b{i}", "to": f"+1415555{i:04d}"} for i in range(900)))
    procs = spawn_workers(cfg, 2, tmp_path)
    try:
        await creates_after(sim, 0, 100)  # the backlog runs at the file's 50/second
        out = await asyncio.to_thread(cli, "limits", "set", "default", "--limits",
                                      "10/second", "--config", str(path))
        t_set = time.time()
        assert out.returncode == 0, out.stderr
        assert "override" in out.stdout and "cli@" in out.stdout
        await creates_after(sim, t_set + 1, 40)
        # the reset applies somewhere between the command's start and its return: the lower
        # limit is counted up to the start, the file's from a second after the return
        reset_from = time.time()
        out = await asyncio.to_thread(cli, "limits", "reset", "default", "--config", str(path))
        t_reset = time.time()
        assert out.returncode == 0, out.stderr
        assert "file" in out.stdout
        await creates_after(sim, t_reset + 1, 100)
    finally:
        await asyncio.to_thread(stop_all, procs)
    times = [e["t"] for e in sim.sim.audit if e["method"] == "POST"]
    before = [t for t in times if t < t_set]
    lowered = [t for t in times if t_set + 1 <= t < reset_from]
    restored = [t for t in times if t >= t_reset + 1]
    print(f"\nmost in any 1 s: before {max_in_any_window(before, 1.0)} "
          f"({len(before)} sent), from 1 s after set {max_in_any_window(lowered, 1.0)} "
          f"({len(lowered)} sent), from 1 s after reset {max_in_any_window(restored, 1.0)} "
          f"({len(restored)} sent)")
    assert max_in_any_window(lowered, 1.0) <= 10 and len(lowered) >= 40
    assert 10 < max_in_any_window(restored, 1.0) <= 50
    assert max_in_any_window(before, 1.0) > 10
    assert not [e for e in sim.sim.audit if e["status"] == 429]


def test_bad_input_is_refused_naming_the_option_and_nothing_is_stored(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    path = tmp_path / "operator.toml"
    path.write_text(toml(config(redis_server, ns, "http://127.0.0.1:9")))
    env = {"DISPATCHER_CONFIG": str(path)}
    cases = [
        (["set", "nosuch", "--limits", "10/second"], "provider 'nosuch' is not configured"),
        (["set", "default", "--limits", "10/secnd"], "--limits: limit '10/secnd': expected"),
        (["set", "default", "--limits", "0/second"], "--limits: limit '0/second'"),
        (["set", "default", "--max-concurrent", "-3"], "--max-concurrent: expected a whole"),
        (["set", "default", "--limits", "10/second", "--max-concurrent", "0"],
         "--max-concurrent: expected a whole"),
        (["set", "default"], "nothing to set"),
        (["set", "default", "--limits", "10/second", "--max-concurrent", "2"],  # untracked
         "--max-concurrent: not applied: calls are not followed (tracking.track_calls = false)"),
        (["reset", "default", "--limits", "5/second"], "takes no --limits"),
    ]
    for argv, message in cases:
        out = cli("limits", *argv, env=env)
        assert out.returncode == 2 and message in out.stderr, (argv, out.stderr)
    shown = cli("limits", "show", "default", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"source": "override"' not in shown.stdout
    assert os.path.exists(path)


def test_callerid_list_rest_restore_and_bad_input(redis_server: LocalRedis, ns: str,
                                                  tmp_path: Path) -> None:
    cfg = config(redis_server, ns, "http://127.0.0.1:9")
    cfg["providers"]["default"]["caller_ids"] = {
        "numbers": [{"id": "tel_pn_nyc", "number": "+12125550100"},
                    {"id": "tel_pn_sfo", "number": "+14155550100"}]}
    path = tmp_path / "operator.toml"
    path.write_text(toml(cfg))
    env = {"DISPATCHER_CONFIG": str(path)}
    out = cli("callerid", "rest", "default", "tel_pn_sfo", env=env)
    assert out.returncode == 0 and "rested" in out.stdout, out.stderr
    listed = cli("callerid", "list", "default", "--json", env=env)
    rows = {r["caller_id"]: r for r in json.loads(listed.stdout)}
    assert rows["tel_pn_sfo"]["rested"] and not rows["tel_pn_nyc"]["rested"]
    assert "rested" in cli("callerid", "list", "default", env=env).stdout
    out = cli("callerid", "restore", "default", "tel_pn_sfo", env=env)
    assert out.returncode == 0 and "back in the pool" in out.stdout
    for argv, message in [(["rest", "default", "tel_pn_gone"], "not in the pool"),
                          (["list", "nosuch"], "not configured")]:
        out = cli("callerid", *argv, env=env)
        assert out.returncode == 2 and message in out.stderr, (argv, out.stderr)
