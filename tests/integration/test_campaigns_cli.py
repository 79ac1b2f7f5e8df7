"""``dispatcher campaign …`` and ``dispatcher cancel`` as an operator runs them."""

from __future__ import annotations

import json

from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from tests.integration.test_campaigns_scripts import grant, ingest
from tests.integration.test_cli import cli, redis_env


async def test_campaign_list_and_status_show_the_live_counts(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await ingest(store, [(f"s{i}", "spring", "normal") for i in range(4)]
                 + [("a1", "autumn", "high")])
    await grant(store, 2, "g1")  # the high one, then one of spring's
    env = redis_env(redis_server, ns)
    out = cli("campaign", "list", env=env)
    assert out.returncode == 0, out.stderr
    head, *rows = out.stdout.splitlines()
    assert head.split()[:4] == ["CAMPAIGN", "STATE", "QUEUED", "WAITING"]
    assert [r.split()[:3] for r in rows] == [["autumn", "active", "0"],  # seen at once:
                                            ["spring", "active", "3"]]  # by name
    out = cli("campaign", "status", "spring", "--json", env=env)
    s = json.loads(out.stdout)
    assert (s["jobs"], s["queued"], s["dialing"], s["remaining"], s["paused"]) == \
        (4, 3, 1, 4, False)
    text = cli("campaign", "status", "spring", env=env).stdout
    assert "campaign spring: active" in text and "queued       3" in text


async def test_pause_resume_and_cancel_say_what_they_did(redis_server: LocalRedis, ns: str,
                                                         store: Store) -> None:
    await ingest(store, [(f"s{i}", "spring", "normal") for i in range(3)])
    env = redis_env(redis_server, ns)
    out = cli("campaign", "pause", "spring", env=env)
    assert out.returncode == 0 and "campaign spring: paused" in out.stdout
    assert "paused" in cli("campaign", "status", "spring", env=env).stdout.splitlines()[0]
    assert "resumed" in cli("campaign", "resume", "spring", env=env).stdout
    out = cli("campaign", "cancel", "spring", env=env)  # no provider configured here
    assert out.returncode == 0 and "cancelled: 3 jobs" in out.stdout
    out = cli("campaign", "pause", "winter", env=env)
    assert "(no job of it seen yet)" in out.stdout


def test_status_of_an_unknown_campaign_and_a_bad_name_are_errors(
        redis_server: LocalRedis, ns: str) -> None:
    env = redis_env(redis_server, ns)
    out = cli("campaign", "status", "nope", env=env)
    assert out.returncode == 1 and "campaign nope: never seen" in out.stderr
    out = cli("campaign", "pause", "bad name", env=env)
    assert out.returncode == 2 and "is not a campaign name" in out.stderr


async def test_cancel_of_an_id_never_seen_says_so_unless_ahead(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    env = redis_env(redis_server, ns)
    out = cli("cancel", "ghost", env=env)
    assert out.returncode == 1 and "never seen (use --ahead" in out.stdout
    out = cli("cancel", "ghost", "--ahead", env=env)
    assert out.returncode == 0 and "it will be cancelled when it is" in out.stdout
    await ingest(store, [("q1", "c", "normal")])
    out = cli("cancel", "q1", env=env)
    assert out.returncode == 0 and "cancelled; its result follows" in out.stdout
