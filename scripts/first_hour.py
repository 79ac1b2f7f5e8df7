"""Replay the first hour of a new user (issue 27's list) and print what each step showed.

    .venv/bin/python scripts/first_hour.py

It starts its own redis-server on a free port and its own simulator, runs every step with a
time limit (about five minutes in all), prints one short paragraph per item, and stops
everything it started, whatever happens. It reports; it does not fail on what it finds.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "dispatcher"]
GOOD_KEY, REVOKED_KEY = "tel_live_demo_key_0001", "tel_live_revoked_0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(item: str, text: str) -> None:
    print(f"\n{item}\n  " + "\n  ".join(text.strip().splitlines()), flush=True)


class Session:
    """The processes and files of one replay: all stopped and removed at the end."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="first-hour-"))
        self.children: list[subprocess.Popen[bytes]] = []
        self.redis_port = free_port()
        self.sim_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.n = 0

    # -- processes ------------------------------------------------------------------------
    def spawn(self, args: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, start_new_session=True, **kw)  # type: ignore[call-overload]
        self.children.append(proc)
        return proc  # type: ignore[no-any-return]

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
             wait: float = 10) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def start_redis(self) -> None:
        self.redis = self.spawn(["redis-server", "--port", str(self.redis_port), "--save", "",
                                 "--appendonly", "no", "--dir", str(self.tmp)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.redis_port)

    def start_simulator(self) -> None:
        self.spawn([*CLI, "simulate", "--port", str(self.sim_port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.sim_port)

    def close(self) -> None:
        for proc in reversed(self.children):
            self.stop(proc, wait=5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the dispatcher as a user runs it -------------------------------------------------
    def namespace(self) -> str:
        self.n += 1
        return f"fh{self.n}"

    def env(self, ns: str, key: str = GOOD_KEY) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DISPATCHER_") and k != "TELECHO_API_KEY"}
        env.update({"DISPATCHER_REDIS__URL": f"redis://127.0.0.1:{self.redis_port}/0",
                    "DISPATCHER_REDIS__NAMESPACE": ns, "FH_KEY": key})
        return env

    def config(self, ns: str, http_port: int, limits: str = "60/minute") -> Path:
        path = self.tmp / f"{ns}-{http_port}.toml"
        path.write_text(f"""log_format = "json"
[redis]
url = "redis://127.0.0.1:{self.redis_port}/0"
namespace = "{ns}"
[worker]
http_port = {http_port}
heartbeat_s = 1
shutdown_grace_s = 3
[providers.default]
kind = "telecho"
base_url = "http://127.0.0.1:{self.sim_port}/api/v1/public"
api_key_env = "FH_KEY"
phone_number_id = "tel_pn_main"
limits = ["{limits}"]
max_concurrent_calls = 10
""", encoding="utf-8")
        return path

    def cli(self, *args: str, ns: str, timeout: float = 60, cwd: Path | None = None,
            key: str = GOOD_KEY) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*CLI, *args], env=self.env(ns, key), cwd=cwd or ROOT,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, -1, _text(exc.stdout), _text(exc.stderr))

    def push(self, ns: str, n: int, prefix: str) -> None:
        path = self.tmp / f"{prefix}.jsonl"
        path.write_text("".join(json.dumps({"id": f"{prefix}-{i}", "to": f"+1415555{i:04d}"})
                                + "\n" for i in range(n)))
        self.cli("enqueue", "--file", str(path), ns=ns)

    def worker(self, ns: str, cfg: Path, key: str = GOOD_KEY,
               out: Path | None = None) -> subprocess.Popen[bytes]:
        log = (out or self.tmp / f"{cfg.stem}.log").open("wb")
        return self.spawn([*CLI, "run", "--config", str(cfg)], env=self.env(ns, key),
                          stdout=log, stderr=subprocess.STDOUT)


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def wait_port(port: int, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def events(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(line)
            if isinstance(d, dict):
                out.append(d)
    return out


def http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return f"{resp.status} {resp.read(300).decode(errors='replace')}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read(300).decode(errors='replace')}"
    except OSError as exc:
        return f"unreachable ({exc})"


def visible_widths(data: bytes) -> Iterator[int]:
    """The width each output line takes on a terminal (\\r returns, ESC [ K erases)."""
    for raw in data.split(b"\n"):
        line = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", lambda m: b"\x00" if m.group() == b"\x1b[K"
                      else b"", raw)
        screen: list[int] = []
        col = 0
        for ch in line:
            if ch == 13:
                col = 0
            elif ch == 0:
                del screen[col:]
            else:
                screen[col:col + 1] = [ch]
                col += 1
        yield len(screen)


def _each_draw(line: bytes) -> Iterator[int]:
    """The width of each drawing of a line redrawn in place (the parts between returns)."""
    for part in line.split(b"\r"):
        yield len(re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", part))


def in_pty(args: list[str], cols: int, env: dict[str, str], timeout: float) -> bytes:
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(args, stdin=secondary, stdout=secondary, stderr=secondary,
                            env={**env, "COLUMNS": str(cols)}, start_new_session=True, cwd=ROOT)
    os.close(secondary)
    out, end = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        os.close(primary)
    return out


# -- the items ----------------------------------------------------------------------------------

def item1_pipes(s: Session) -> None:
    ns = s.namespace()
    cfg = s.config(ns, free_port())
    s.push(ns, 30, "pipe")
    status = s.tmp / "pipe.status"
    cmd = (f"timeout 40 {' '.join(CLI)} run --config {cfg} 2>{s.tmp}/pipe.err | head -5 "
           f">/dev/null; echo ${{PIPESTATUS[0]}} >{status}")
    started = time.monotonic()
    subprocess.run(["bash", "-c", cmd], env=s.env(ns), timeout=60, check=False)
    took = time.monotonic() - started
    err = (s.tmp / "pipe.err").read_text(errors="replace")
    n = json.loads(s.cli("status", "--json", ns=ns).stdout or "{}").get("results", "?")
    res = subprocess.run(["bash", "-c", f"{' '.join(CLI)} results | head -3 >/dev/null; "
                          "echo ${PIPESTATUS[0]}"], env=s.env(ns), capture_output=True,
                         text=True, timeout=60, check=False)
    say("1. A closed output pipe",
        f"`dispatcher run | head -5`: the worker exited with {status.read_text().strip()} after "
        f"{took:.0f} s (40 s: it kept running until `timeout`), {err.count('Traceback')} "
        f"tracebacks and {err.count('never retrieved')} 'Task exception was never retrieved' "
        f"on stderr.\n`dispatcher results | head -3` ({n} results, less than a pipe's buffer "
        f"when few): exit {res.stdout.strip()}, "
        f"{res.stderr.count('Traceback')} tracebacks.")


def item2_messy_csv(s: Session) -> None:
    ns = s.namespace()
    path = s.tmp / "messy.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Lead", "Phone Number", "Name"])
        for i in range(2000):
            w.writerow([f"m{i}", f"(212) 555-{i % 10000:04d}", f"N{i}"])
            if i % 500 == 0:
                w.writerow(["", "", ""])
    plain = s.cli("enqueue", "--file", str(path), ns=ns)
    region = s.cli("enqueue", "--file", str(path), "--map", "Lead=id", "--region", "US", ns=ns)
    mapped = s.cli("enqueue", "--file", str(path), "--map", "Lead=id", "--map",
                   "Phone Number=to", ns=ns)
    ok = s.cli("enqueue", "--file", str(path), "--map", "Lead=id", "--map", "Phone Number=to",
               "--region", "US", ns=ns)
    worker = s.worker(ns, s.config(ns, free_port(), "1/hour"))
    for _ in range(60):  # until the worker has read them all
        st = s.cli("status", "--json", ns=ns)
        with contextlib.suppress(ValueError):
            if json.loads(st.stdout)["unread"] == 0:
                break
        time.sleep(0.5)
    again = s.cli("enqueue", "--file", str(path), "--map", "Lead=id", "--map",
                  "Phone Number=to", "--region", "US", ns=ns)
    s.stop(worker)
    errs = mapped.stderr.strip().splitlines()
    say("2. A messy CSV (semicolons, 'Phone Number', 2,000 national numbers, empty rows)",
        f"no options: {plain.stderr.strip().splitlines()[-1][:300] if plain.stderr else '?'}\n"
        f"--map Lead=id --region US: {region.stderr.strip()[:200]}\n"
        f"--map both, no --region: {len(errs)} lines on stderr:\n  "
        + "\n  ".join(e[:160] for e in errs[:3]) + "\n"
        f"--map both --region US: {ok.stdout.strip()[:200]} {ok.stderr.strip()[:200]}\n"
        f"the same again once a worker read them: {again.stdout.strip()[:200]}")


def item3_demo(s: Session) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    for cols in (80, 120):
        out = in_pty([*CLI, "demo", "--jobs", "60"], cols, env, timeout=120)
        live = [line for line in out.split(b"\n") if b"done |" in line]
        widest = max((w for line in live for w in _each_draw(line)), default=0)
        others = [w for w in visible_widths(out) if w >= cols]
        text = out.decode(errors="replace")
        rec = re.search(r"^enqueued \d+ entries, \d+ distinct ids.*results.*$", text, re.M)
        zones = sorted(set(re.findall(r"opens \d\d:\d\d (\S+)", text)))
        say(f"3. The demo at {cols} columns (a real pseudo-terminal)",
            f"{out.count(b'done |')} refreshes of the live line on {len(live)} terminal "
            f"line(s); its widest drawing {widest} columns; {len(others)} other lines wider "
            f"than the terminal (plain text that wraps); end screen: "
            f"{rec.group(0).strip() if rec else 'no line adds the counts up'}; zones shown: "
            f"{', '.join(zones) or 'none'}")


def item4_after_demo(s: Session) -> None:
    ns = s.namespace()
    out = s.cli("status", ns=ns, cwd=s.tmp)
    first = out.stdout.strip().splitlines()[:1]
    on_path = shutil.which("dispatcher")
    readme = (ROOT / "README.md").read_text()
    help_ = s.cli("demo", "--help", ns=ns)
    say("4. After the demo",
        f"`dispatcher` on PATH: {on_path or 'no'}; README names .venv/bin/dispatcher: "
        f"{'.venv/bin/dispatcher' in readme}; `demo --keep` exists: {'--keep' in help_.stdout}"
        "\n`status` run outside the repository, no config: "
        + (first[0][:200] if first else out.stderr[:200]))


def item5_simulator_key(s: Session) -> None:
    ns = s.namespace()
    out = s.cli("run", "--config", str(ROOT / "config/dispatcher.toml"), ns=ns, timeout=20)
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs/providers.md").read_text()
    say("5. The simulator's API key",
        f"documented: {GOOD_KEY in docs}; `dispatcher run --config config/dispatcher.toml` "
        f"without TELECHO_API_KEY: exit {out.returncode}: "
        + " / ".join(out.stderr.strip().splitlines()[-2:])[:300])


def item6_examples(s: Session) -> None:
    csv_ids = {r["id"] for r in csv.DictReader((ROOT / "examples/leads.csv").open())}
    texts = {p.relative_to(ROOT).as_posix(): p.read_text() for p in
             [*(ROOT / "examples").rglob("*.js"), *(ROOT / "examples").rglob("*.go"),
              *(ROOT / "examples").rglob("*.py")]}
    reused = sorted(f"{name}: {i}" for name, t in texts.items() for i in csv_ids if i in t)
    node_ids = "lead-${lead.id}" in texts.get("examples/node/producer.js", "")
    gomod = re.search(r"^go (\S+)", (ROOT / "examples/go/go.mod").read_text(), re.M)
    go = shutil.which("go")
    go_v = subprocess.run([go, "version"], capture_output=True, text=True, check=False
                          ).stdout.strip() if go else "no go on this machine"
    say("6. Example producers",
        f"ids of examples/leads.csv reused: "
        f"{reused or ('lead-1001.. (node)' if node_ids else 'none')}; "
        f"go.mod asks for go {gomod.group(1) if gomod else '?'}; {go_v}")


def item7_logs(s: Session) -> None:
    ns = s.namespace()
    port = free_port()
    s.push(ns, 20, "revoked")
    log = s.tmp / "revoked.log"
    worker = s.worker(ns, s.config(ns, port), key=REVOKED_KEY, out=log)
    time.sleep(60)
    ready = http_get(f"http://127.0.0.1:{port}/readyz")
    s.stop(worker)
    evs = events(log)
    halted = [e for e in evs if e.get("event") == "provider.halted"]
    started = next((e for e in evs if e.get("event") == "worker.started"), {})
    dial = next((e for e in evs if "canary" in e), {})
    say("7a. Logs: a revoked key for 60 s",
        f"{len(halted)} provider.halted lines (levels "
        f"{dict(Counter(str(e.get('level')) for e in halted))}); "
        f"{len(evs)} log lines in all; worker.started fields: {sorted(started)}; "
        f"a line with 'canary': {sorted(dial)[:12]}; /readyz then: {ready[:120]}")


def item8_two_workers(s: Session) -> None:
    ns = s.namespace()
    port = free_port()
    cfg = s.config(ns, port)
    a = s.worker(ns, cfg, out=s.tmp / "a.log")
    time.sleep(3)
    b = s.worker(ns, cfg, out=s.tmp / "b.log")
    time.sleep(6)
    alive = [p.poll() is None for p in (a, b)]
    code = b.poll()
    b_log = (s.tmp / "b.log").read_text(errors="replace")
    s.stop(a)
    s.stop(b)
    errors = [e.get("event") for e in events(s.tmp / "b.log") if e.get("level") == "error"]
    say("8. Two workers on one http_port",
        f"first alive: {alive[0]}, second alive: {alive[1]} (exit code {code}); second's "
        f"errors: {errors or 'none'}; mentions the port: {str(port) in b_log}")


def item7b_redis_outage(s: Session) -> None:
    ns = s.namespace()
    port = free_port()
    log = s.tmp / "outage.log"
    s.push(ns, 10, "outage")
    worker = s.worker(ns, s.config(ns, port), out=log)
    time.sleep(5)
    assert s.redis is not None
    s.stop(s.redis)
    time.sleep(10)
    ready = http_get(f"http://127.0.0.1:{port}/readyz")
    time.sleep(10)
    s.start_redis()
    time.sleep(8)
    after = http_get(f"http://127.0.0.1:{port}/readyz")
    alive = worker.poll() is None
    s.stop(worker)
    evs = events(log)
    names = Counter(str(e.get("event")) for e in evs)
    size = sum(len(json.dumps(e)) for e in evs if e.get("event") == "loop.error")
    say("7b. Logs: Redis stopped for 20 s under a running worker",
        f"loop.error {names['loop.error']} times ({size:,} bytes), redis.unreachable "
        f"{names['redis.unreachable']} times; /readyz during: {ready[:150]}; after: "
        f"{after[:80]}; worker alive after: {alive}")


def item9_10_deploy(s: Session) -> None:
    keda = (ROOT / "deploy/k8s/keda-scaledobject.yaml").read_text()
    trig = re.search(r"type: (\S+)", keda)
    query = re.search(r"(query|stream): (.+)", keda)
    alerts = re.findall(r"alert: (\w+)", (ROOT / "deploy/prometheus/alerts.yaml").read_text())
    docker = (ROOT / "deploy/Dockerfile").read_text()
    bases = ", ".join(re.findall(r"^FROM (\S+)", docker, re.M))
    baked = bool(re.search(r"^COPY .*config", docker, re.M))
    health = "HEALTHCHECK" in docker and "python" in docker.split("HEALTHCHECK")[-1][:200]
    say("9. Autoscaling and alerts",
        f"KEDA trigger {trig.group(1) if trig else '?'} on {query.group(2) if query else '?'}; "
        f"age alert still there: {'DispatcherOldestReadyJobTooOld' in alerts}; "
        f"no-progress alert: {'DispatcherNoProgress' in alerts}")
    say("10. Dockerfile",
        f".dockerignore: {(ROOT / '.dockerignore').exists()}; FROM {bases}; lock file: "
        f"{(ROOT / 'requirements.lock').exists()}; config baked in: {baked}; a HEALTHCHECK "
        f"that starts Python: {health}")


def item11_cli(s: Session) -> None:
    ns = s.namespace()
    bare = []
    for c in ("status", "resume", "simulate", "demo"):
        text = s.cli(c, "--help", ns=ns).stdout
        head = text.split("options:")[0].split("\n\n", 1)  # usage, then the description
        if len(head) < 2 or not head[1].strip():
            bare.append(c)
    typo = s.cli("stauts", ns=ns)
    started = time.monotonic()
    s.cli("--version", ns=ns)
    took = time.monotonic() - started
    say("11. The command line",
        f"commands without a description in `COMMAND --help`: {bare or 'none'}; "
        "`dispatcher stauts`: "
        f"{typo.stderr.strip().splitlines()[-1][:160] if typo.stderr.strip() else '?'}; "
        f"--version took {took:.1f} s")


def _too_long(*_: object) -> None:
    raise TimeoutError("the replay ran over 15 minutes")


def main() -> int:
    s = Session()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(900)  # a hard bound, whatever hangs: the cleanup below still runs
    try:
        s.start_redis()
        s.start_simulator()
        print(f"first hour: redis-server on port {s.redis_port}, simulator on port "
              f"{s.sim_port}, files in {s.tmp}", flush=True)
        for step in (item1_pipes, item2_messy_csv, item3_demo, item4_after_demo,
                     item5_simulator_key, item6_examples, item7_logs, item7b_redis_outage,
                     item8_two_workers, item9_10_deploy, item11_cli):
            try:
                step(s)
            except Exception as exc:  # report and go on: this is a survey, not a test
                say(step.__name__, f"could not check: {type(exc).__name__}: {exc}")
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
