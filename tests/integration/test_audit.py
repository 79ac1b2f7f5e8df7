"""The audit trail: every operator action, from the CLI (as ``cli@HOST``) or the console (as
the token's label), is recorded with its time, target and what changed; ``dispatcher audit``
and the Audit page read it back, newest first; the stream is trimmed; no number is kept."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
from pathlib import Path

import pytest

from dispatcher.cli import main as cli_main
from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit
from dispatcher.store import Store
from dispatcher.store import audit as store_audit
from tests.conftest import provider_cfg
from tests.integration.procs import toml
from tests.integration.test_console_http import fetch, place, quiet_settings, running_console

LABELLED = "labelled-token-0123456789abcdef"
PLAIN = "plain-token-0123456789abcdef"
NUMBER = "+14155550199"


async def dispatcher(*argv: str) -> tuple[int, str]:
    """The command run in this process (in a thread: it runs its own event loop)."""
    def go() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
            cli_main(list(argv))
        return int(done.value.code or 0), out.getvalue()
    return await asyncio.to_thread(go)


def config_file(tmp: Path, redis: LocalRedis, ns: str) -> str:
    path = tmp / "ops.toml"
    path.write_text(toml({"redis": {"url": redis.url, "namespace": ns},
                          "log_level": "warning",
                          "providers": {"default": provider_cfg("telecho", "http://127.0.0.1:9")},
                          "campaigns": {"spring": {"share": 1}}}))
    return str(path)


async def test_every_cli_action_is_recorded_as_cli_at_host_and_read_back_newest_first(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    c = ["--config", config_file(tmp_path, redis_server, ns)]
    for argv in (["campaign", "pause", "spring"], ["campaign", "resume", "spring"],
                 ["resume", "default"], ["limits", "set", "default", "--limits", "10/second"],
                 ["limits", "reset", "default"], ["cancel", "later-1", "--ahead"],
                 ["dnc", "add", NUMBER], ["dnc", "remove", NUMBER],
                 ["consent", "add", NUMBER, "--source", "web-form"],
                 ["redrive", "--apply"], ["forget", "--number", NUMBER]):
        code, out = await dispatcher(*argv, *c)
        assert code == 0, (argv, out)
    code, out = await dispatcher("status", *c)  # reading is not an action
    entries = await audit.latest(store, 100)
    assert [e.action for e in reversed(entries)] == [
        "campaign.pause", "campaign.resume", "provider.resume", "limits.set", "limits.reset",
        "job.cancel", "dnc.add", "dnc.remove", "consent.add", "redrive", "forget"]
    assert {e.by for e in entries} == {f"cli@{socket.gethostname()}"}
    assert {e.via for e in entries} == {"cli"}
    by_action = {e.action: e for e in entries}
    assert by_action["limits.set"].target == "default"
    assert by_action["limits.set"].detail == "10/second"
    assert by_action["job.cancel"].target == "later-1"
    assert by_action["dnc.add"].target == "1 numbers" and by_action["dnc.add"].detail == "1 added"
    raw = json.dumps(await store.r.xrange(store.k.audit))
    assert "4155550199" not in raw  # numbers are counted, never kept
    code, out = await dispatcher("audit", "--limit", "2", *c)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "forget" in lines[0] and "redrive" in lines[1]
    code, out = await dispatcher("audit", "--json", *c)
    assert [e["action"] for e in json.loads(out)][:2] == ["forget", "redrive"]
    code, _ = await dispatcher("audit", "--limit", "0", *c)
    assert code == 2


async def test_console_actions_are_recorded_with_the_tokens_label_and_shown_escaped(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{LABELLED} actions label=alice\n{PLAIN}\n")  # an old-style line too
    evil = '<img src=x onerror=alert(1)>'
    await place(store, "j1", "queued", campaign=evil)
    async with running_console(quiet_settings(redis_server, ns),
                               ConsoleConfig(token_file=str(tokens))) as url:
        status, _, _ = await fetch(url + "/actions/campaign/spring/pause", "POST")
        assert status == 403  # no token: refused, and nothing recorded
        assert await audit.latest(store, 10) == []
        for token, path in ((LABELLED, "/actions/campaign/spring/pause"),
                            (PLAIN, "/actions/provider/default/resume"),
                            (LABELLED, "/actions/campaign/%3Cimg%20src%3Dx%20onerror%3D"
                                       "alert(1)%3E/cancel")):
            status, body, _ = await fetch(url + path, "POST",
                                          headers={"Authorization": f"Bearer {token}"})
            assert status == 303, body
        status, page, _ = await fetch(url + "/audit")
    entries = await audit.latest(store, 10)
    assert [(e.action, e.target, e.by, e.via) for e in entries] == [
        ("campaign.cancel", evil, "alice", "console"),
        ("provider.resume", "default", entries[1].by, "console"),
        ("campaign.pause", "spring", "alice", "console")]
    assert len(entries[1].by) == 8 and entries[1].by != "alice"  # unlabelled: a digest
    assert entries[0].detail == "1 jobs cancelled"
    assert status == 200 and evil not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count('data-action="') == 3 and "alice" in page


async def test_the_audit_stream_is_trimmed(store: Store, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(store_audit, "AUDIT_MAX", 50)
    for i in range(600):
        await audit.record(store, audit.Action.JOB_CANCEL, f"j{i}", "cli@test")
    n = await store.r.xlen(store.k.audit)
    assert 50 <= n < 300  # trimmed by whole stream nodes (about 100 entries each)
    assert (await audit.latest(store, 1))[0].target == "j599"
