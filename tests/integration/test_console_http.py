"""The console over HTTP: read-only without a token, actions guarded (token, CSRF, origin),
numbers masked unless the token grants them. The browser tests reuse ``running_console``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import Settings
from dispatcher.console.app import build_app
from dispatcher.console.auth import COOKIE
from dispatcher.dev.localredis import LocalRedis, free_port
from dispatcher.engine.http import serve
from dispatcher.store import Store, connect
from dispatcher.store.protocol import Place
from dispatcher.store.types import Placement
from tests.conftest import make_settings, provider_cfg
from tests.integration.helpers import push

ACT = "act-token-0123456789abcdef"
SEE = "numbers-token-0123456789abcdef"
LOOK = "look-only-token-0123456789abcdef"
PAGES = ["/", "/providers", "/campaigns", "/jobs", "/jobs?id=nope", "/failures", "/login"]


def token_file(tmp: Path) -> Path:
    path = tmp / "console-tokens"
    path.write_text(f"# who may act\n{ACT}\n{SEE} actions numbers\n{LOOK} numbers\n")
    return path


@asynccontextmanager
async def running_console(settings: Settings, cfg: ConsoleConfig) -> AsyncIterator[str]:
    """A console on a free port, in this process; yields its base URL."""
    store = Store(connect(settings.redis.url), settings.redis.namespace)
    runner, port = await serve(build_app(settings, cfg, store), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await store.close()


def quiet_settings(redis: LocalRedis, ns: str) -> Settings:
    """A configured provider nobody dials (no worker runs in these tests)."""
    return make_settings(redis.url, ns, {"default": provider_cfg("telecho", "http://127.0.0.1:9",
                                                                 max_concurrent_calls=3)},
                         campaigns={"spring": {"share": 2}})


async def place(store: Store, job_id: str, where: str, reason: str = "", *,
                provider: str = "default", campaign: str = "", priority: str = "normal",
                to: str = "+14155550123", due_ms: int = 0, detail: str = "",
                **payload: Any) -> None:
    """Put one job where the intake would, without a worker."""
    raw = json.dumps({"id": job_id, "to": to, "provider": provider, **payload,
                      **({"campaign": campaign} if campaign else {})})
    entry = f"1-{zlib.crc32(job_id.encode())}"
    await store.ingest([Placement(
        entry_id=entry, job_id=job_id, raw=raw, provider=provider, priority=priority,
        campaign=campaign, to=to, dnc_key="", expires_ms=0, place=Place(where), reason=reason,
        due_ms=due_ms, detail=detail)])


@dataclass(frozen=True)
class Session:
    """A browser's log-in: the cookie to send and the CSRF value its pages carry."""

    headers: dict[str, str]
    csrf: str


async def log_in(url: str, token: str, **extra: str) -> Session:
    """Log in through ``POST /login`` as a browser would (``extra``: headers sent along)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/login", data={"token": token, "next": "/"},
                             headers=extra, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            headers = {"Cookie": f"{COOKIE}={resp.cookies[COOKIE].value}"}
        async with http.get(url + "/", headers={**headers, **extra}) as resp:
            found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found, "a logged-in page carries no CSRF value"
    return Session(headers, found.group(1))


@pytest.fixture
async def console(redis_server: LocalRedis, ns: str, tmp_path: Path) -> AsyncIterator[str]:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        yield url


async def fetch(url: str, method: str = "GET", **kw: Any) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http, \
            http.request(method, url, allow_redirects=False, **kw) as resp:
        return resp.status, await resp.text(), resp.headers


async def test_every_page_renders_read_only_with_security_headers(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        for path in PAGES:
            status, body, headers = await fetch(url + path)
            assert status == 200, (path, body)
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert headers["X-Frame-Options"] == "DENY"
            assert 'method="post"' not in body, path  # no action form at all
        _, body, _ = await fetch(url + "/login")
        assert "read-only" in body
        _, body, _ = await fetch(url + "/jobs", params={"id": "<script>alert(1)</script>"})
        assert "<script>alert" not in body and "&lt;script&gt;alert(1)" in body


async def test_an_action_needs_a_token_the_csrf_value_and_this_site(
        console: str, store: Store) -> None:
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    act = console + "/actions/provider/default/resume"
    me, other = await log_in(console, ACT), await log_in(console, SEE)
    good = {"csrf": me.csrf, "next": "/providers"}
    refused = [
        await fetch(act, "POST", data=good),                                  # no session
        await fetch(act, "POST", data={"next": "/"}, headers=me.headers),     # no CSRF value
        await fetch(act, "POST", data={**good, "csrf": other.csrf}, headers=me.headers),
        await fetch(act, "POST", data=good,
                    headers={**me.headers, "Origin": "https://evil.example"}),
        await fetch(act, "POST", data=good,
                    headers={**me.headers, "Sec-Fetch-Site": "cross-site"}),
        await fetch(act, "GET", headers=me.headers),                          # POST only
    ]
    assert [r[0] for r in refused] == [403, 403, 403, 403, 403, 405]
    assert await store.halt_info("default")
    status, _, headers = await fetch(act, "POST", data=good,
                                     headers={**me.headers, "Origin": console})
    assert status == 303 and headers["Location"].startswith("/providers?msg=provider_resumed")
    assert not await store.halt_info("default")


async def test_a_bearer_token_acts_without_a_cookie(console: str, store: Store) -> None:
    await push(store, {"id": "c1", "to": "+14155550100", "campaign": "spring"})
    await store.campaign("pause", "spring", ["default"])  # known, as after intake
    url = console + "/actions/campaign/spring/resume"
    assert (await fetch(url, "POST", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
            )[0] == 403
    status, _, _ = await fetch(url, "POST", headers={"Authorization": f"Bearer {ACT}"})
    assert status == 303
    assert (await store.campaign_flags())[0] == set()


async def test_unknown_names_are_not_found(console: str) -> None:
    hdr = {"Authorization": f"Bearer {ACT}"}
    for path in ("/actions/provider/nope/resume", "/actions/campaign/nope/pause",
                 "/actions/campaign/spring/explode"):
        assert (await fetch(console + path, "POST", headers=hdr))[0] == 404, path


async def test_login_sets_a_strict_http_only_cookie_and_refuses_a_bad_token(
        console: str) -> None:
    status, body, _ = await fetch(console + "/login", "POST",
                                  data={"token": "not-a-token-at-all", "next": "/"})
    assert status == 403 and "Unknown token" in body
    status, _, headers = await fetch(console + "/login", "POST",
                                     data={"token": ACT, "next": "//evil.example/x"})
    cookie = headers["Set-Cookie"]
    assert status == 303 and headers["Location"] == "/"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ACT not in cookie
    value = SimpleCookie(headers["Set-Cookie"])[COOKIE].value
    status, body, _ = await fetch(console + "/providers", headers={"Cookie": f"{COOKIE}={value}"})
    assert "log out" in body


async def test_numbers_are_masked_unless_the_token_grants_them(
        console: str, store: Store) -> None:
    await place(store, "n1", "parked", "unknown_provider", provider="gone",
                metadata={"phone": "+14155550999"})
    pages = {t: (await fetch(console + "/jobs?id=n1", headers=(await log_in(console, t)).headers)
                 )[1] for t in (ACT, SEE)}
    _, anon, _ = await fetch(console + "/jobs?id=n1")
    for body in (anon, pages[ACT]):
        assert "+14155550123" not in body and "+14155550999" not in body
        assert "********123" in body
    assert "+14155550123" in pages[SEE] and "+14155550999" in pages[SEE]


async def test_a_revoked_token_stops_working_at_once(console: str, tmp_path: Path) -> None:
    me = await log_in(console, ACT)
    _, body, _ = await fetch(console + "/providers", headers=me.headers)
    assert "log out" in body
    path = tmp_path / "console-tokens"
    path.write_text(f"{SEE} numbers\n")
    os.utime(path, (1, 1))  # a different modification time, whatever the clock's resolution
    _, body, _ = await fetch(console + "/providers", headers=me.headers)
    assert "log out" not in body and re.search(r"log in to act", body)


def start_cli_console(redis: LocalRedis, ns: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPATCHER_REDIS__URL": redis.url, "DISPATCHER_REDIS__NAMESPACE": ns}
    return subprocess.Popen([sys.executable, "-m", "dispatcher", "console", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_the_console_command_serves_side_by_side_until_sigterm(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    port = free_port()
    procs = [start_cli_console(redis_server, ns, "--port", str(port),
                               "--token-file", str(token_file(tmp_path))) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None
            line = await asyncio.to_thread(p.stdout.readline)
            assert line.startswith(f"console on http://127.0.0.1:{port}/ — actions need a token")
        for _ in range(4):
            assert (await fetch(f"http://127.0.0.1:{port}/"))[0] == 200
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
    assert [p.wait(20) for p in procs] == [0, 0]


async def test_an_unreadable_token_file_stops_the_console_at_once(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    p = start_cli_console(redis_server, ns, "--port", "0", "--token-file",
                          str(tmp_path / "missing"))
    _, err = await asyncio.to_thread(p.communicate, None, 30)
    assert p.returncode == 2 and "console.token_file: cannot read" in err


async def test_a_token_that_only_shows_numbers_cannot_act_but_can_log_out(
        console: str, store: Store) -> None:
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    me = await log_in(console, LOOK)
    hdr = {**me.headers, "Origin": console}
    status, _, _ = await fetch(console + "/actions/provider/default/resume", "POST",
                               data={"csrf": me.csrf}, headers=hdr)
    assert status == 403 and await store.halt_info("default")
    status, _, headers = await fetch(console + "/logout", "POST", data={"csrf": me.csrf},
                                     headers=hdr)
    assert status == 303 and f"{COOKIE}=" in headers["Set-Cookie"]


async def test_redis_out_of_reach_is_a_503_in_words(ns: str) -> None:
    s = make_settings(f"redis://127.0.0.1:{free_port()}/0", ns, {})
    async with running_console(s, ConsoleConfig()) as url:
        status, body, headers = await fetch(url + "/")
    assert status == 503 and "the console cannot read Redis" in body
    assert '<link rel="stylesheet" href="/static/console.css">' in body  # styled, not plain
    assert headers["Content-Type"].startswith("text/html")
    assert "Redis is unreachable" in body and 'data-alert="redis-unreachable"' in body
    assert headers["X-Frame-Options"] == "DENY"


def behind_proxy(proto: str = "https", host: str = "console.example.com") -> dict[str, str]:
    """What a TLS-terminating proxy adds, and what the browser behind it sends."""
    return {"X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "Origin": f"{proto}://{host}"}


async def test_behind_a_trusted_proxy_login_and_actions_work_and_the_cookie_is_secure(
        redis_server: LocalRedis, ns: str, tmp_path: Path, store: Store) -> None:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)), trusted_proxies=["127.0.0.1"],
                        allowed_hosts=["console.example.com"])
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        status, _, headers = await fetch(url + "/login", "POST", headers=behind_proxy(),
                                         data={"token": ACT, "next": "/providers"})
        assert status == 303, "a login through the proxy was refused"
        assert "Secure" in headers["Set-Cookie"]
        me = await log_in(url, ACT, **behind_proxy())
        status, _, _ = await fetch(url + "/actions/provider/default/resume", "POST",
                                   data={"csrf": me.csrf}, headers={**me.headers, **behind_proxy()})
        assert status == 303 and not await store.halt_info("default")
        # RFC 7239 says the same in one header
        fwd = {"Forwarded": "for=203.0.113.9;proto=https;host=console.example.com",
               "Origin": "https://console.example.com"}
        status, _, headers = await fetch(url + "/login", "POST", headers=fwd,
                                         data={"token": ACT, "next": "/"})
        assert status == 303 and "Secure" in headers["Set-Cookie"]


async def test_forwarded_headers_from_anyone_else_are_ignored(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    for proxies in ([], ["10.0.0.0/8"]):  # none trusted, or not this peer
        cfg = ConsoleConfig(token_file=str(token_file(tmp_path)), trusted_proxies=proxies)
        async with running_console(quiet_settings(redis_server, ns), cfg) as url:
            status, _, _ = await fetch(url + "/login", "POST", data={"token": ACT, "next": "/"},
                                       headers=behind_proxy(host=url.split("//")[1]))
            assert status == 403, proxies
            status, _, headers = await fetch(url + "/login", "POST", data={"token": ACT},
                                             headers={"X-Forwarded-Proto": "https"})
            assert status == 303 and "Secure" not in headers["Set-Cookie"], proxies


def test_a_trusted_proxy_must_be_an_address_or_network() -> None:
    with pytest.raises(ValueError, match=r"trusted_proxies[^\n]*\n.*'proxy\.internal'"):
        ConsoleConfig(trusted_proxies=["proxy.internal"])


async def test_log_out_ends_the_session_for_good(console: str, store: Store) -> None:
    await store.campaign("pause", "spring", ["default"])
    me = await log_in(console, ACT)
    hdr = {**me.headers, "Origin": console}
    status, _, _ = await fetch(console + "/logout", "POST", data={"csrf": me.csrf}, headers=hdr)
    assert status == 303
    _, body, _ = await fetch(console + "/campaigns", headers=me.headers)
    assert "log out" not in body, "the cookie still logs in after log-out"
    status, _, _ = await fetch(console + "/actions/campaign/spring/resume", "POST",
                               data={"csrf": me.csrf}, headers=hdr)
    assert status == 403 and (await store.campaign_flags())[0] == {"spring"}


async def test_a_session_lives_session_ttl_s_in_redis_and_ends_with_its_key(
        redis_server: LocalRedis, ns: str, tmp_path: Path, store: Store) -> None:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)), session_ttl_s=600)
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        me, other = await log_in(url, ACT), await log_in(url, ACT)
        keys = [k async for k in store.r.scan_iter(match=store.k.console_session("*"))]
        assert len(keys) == 2, "one key per log-in, named in dispatcher/store/keys.py"
        assert all(0 < ttl <= 600_000 for ttl in [await store.r.pttl(k) for k in keys])
        assert me.headers["Cookie"].split("=", 1)[1] not in "".join(keys)  # no usable cookie
        for k in keys:
            if await store.r.pexpireat(k, 1):  # its expiry in the past: Redis drops it now
                break
        pages = [(await fetch(url + "/providers", headers=s.headers))[1] for s in (me, other)]
        assert sorted("log out" in p for p in pages) == [False, True]


async def test_a_host_the_console_does_not_answer_to_is_refused(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    """A page whose name was rebound to 127.0.0.1 sends its own name as Host."""
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        port = url.rsplit(":", 1)[1]
        status, body, headers = await fetch(url + "/", headers={"Host": f"evil.example:{port}"})
        assert status == 400, "a rebound name reads the console"
        assert "console.allowed_hosts" in body and headers["X-Frame-Options"] == "DENY"
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST:9999", f"[::1]:{port}"):
            assert (await fetch(url + "/", headers={"Host": host}))[0] == 200, host
        # probes (a kubelet's, by the pod's address) need no name
        assert (await fetch(url + "/healthz", headers={"Host": "10.1.2.3:8090"}))[0] == 200
    cfg = ConsoleConfig(allowed_hosts=["console.example.com:8443", "ops.example.com"],
                        trusted_proxies=["127.0.0.1"])
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        got = {h: (await fetch(url + "/", headers={"X-Forwarded-Host": h}))[0]
               for h in ("console.example.com:8443", "console.example.com", "ops.example.com:1",
                         "localhost")}
        assert got == {"console.example.com:8443": 200, "console.example.com": 400,
                       "ops.example.com:1": 200, "localhost": 400}


def test_an_allowed_host_is_a_name_with_an_optional_port() -> None:
    with pytest.raises(ValueError, match=r"allowed_hosts[^\n]*\n.*'https://x.example'"):
        ConsoleConfig(allowed_hosts=["https://x.example"])
    assert ConsoleConfig(host="10.0.0.5", port=0).hosts() == ["10.0.0.5", "localhost",
                                                             "127.0.0.1", "[::1]"]
    assert ConsoleConfig(host="0.0.0.0").hosts() == ["localhost", "127.0.0.1", "[::1]"]
    assert ConsoleConfig(host="::1").hosts() == ["[::1]", "localhost", "127.0.0.1"]


async def test_the_notice_banner_shows_only_the_consoles_own_texts(
        console: str, store: Store) -> None:
    lure = "Your session expired: paste your token at evil.example"
    for query in ({"msg": lure}, {"msg": "campaign_paused", "name": lure},
                  {"msg": "provider_resumed", "name": "default", "n": lure}):
        _, body, _ = await fetch(console + "/providers", params=query)
        assert lure not in body and 'class="flash"' not in body, query
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    status, _, headers = await fetch(console + "/actions/provider/default/resume", "POST",
                                     data={"next": "/providers?msg=old"},
                                     headers={"Authorization": f"Bearer {ACT}"})
    assert status == 303
    assert headers["Location"] == "/providers?msg=provider_resumed&name=default&n=0"
    _, body, _ = await fetch(console + headers["Location"])
    assert '<p class="flash" role="status">provider default resumed; 0 parked jobs back in ' \
           'line</p>' in body
