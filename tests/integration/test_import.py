"""``dispatcher enqueue --file`` and ``dispatcher results --campaign`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.integration.test_cli import cli, redis_env


async def pushed(store: Store) -> list[dict[str, object]]:
    return [json.loads(f["job"]) for _, f in await store.r.xrange(store.k.jobs)]


LEADS = ("\ufeffid,to,first_name,city,priority\n"
         "l1,+14155550100,Ann,Boston,high\n"
         "l2,+1 415 555 0101,Bob,,\n")


async def test_a_spreadsheet_csv_is_pushed_with_its_extra_columns_in_metadata(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    out = cli("enqueue", "--file", str(path), "--campaign", "spring",
              env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert "pushed 2 rows" in out.stdout and "2 new" in out.stdout
    assert out.stderr == ""  # no progress bar off a tty
    assert await pushed(store) == [
        {"id": "l1", "to": "+14155550100", "priority": "high",
         "metadata": {"first_name": "Ann", "city": "Boston"}, "campaign": "spring"},
        {"id": "l2", "to": "+1 415 555 0101", "metadata": {"first_name": "Bob"},
         "campaign": "spring"}]


async def test_bad_rows_are_each_named_by_line_and_field_and_nothing_is_pushed(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS + 'l3,0415 555 0102,"Cy\nD",,\nl4,+14155550103,Di,,urgent\n',
                    encoding="utf-8")
    out = cli("enqueue", "--file", str(path), env=redis_env(redis_server, ns))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"{path}:4: to: national number")
    assert lines[1].startswith(f"{path}:6: priority: expected")
    assert "--region" in lines[2]  # a hint for the national number
    assert "2 of 4 rows are bad" in lines[3] and "nothing was pushed" in lines[3]
    assert await store.r.xlen(store.k.jobs) == 0


async def test_skip_invalid_pushes_the_good_rows_and_writes_the_bad_ones_aside(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS + "l3,0415,Cy,,\n", encoding="utf-8")
    rejects = tmp_path / "bad.csv"
    out = cli("enqueue", "--file", str(path), "--skip-invalid", "--reject-file", str(rejects),
              env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert f"pushed 2 rows into {{{ns}}}:jobs: 2 new, 0 already known; 1 bad rows written to " \
        f"{rejects}" in out.stdout
    assert f"{path}:4: to:" in out.stderr
    assert rejects.read_bytes() == b"id,to,first_name,city,priority\r\nl3,0415,Cy,,\r\n"
    assert [j["id"] for j in await pushed(store)] == ["l1", "l2"]


def read_pty(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Runs the command with stderr on a pseudo-terminal; its exit code and what it showed."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher", *args],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=secondary)
    os.close(secondary)
    shown = b""
    while True:  # read while it runs: a full terminal buffer would block it
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    return proc.wait(timeout=60), shown


def test_a_terminal_gets_a_progress_bar(redis_server: LocalRedis, ns: str,
                                        tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text("".join(f'{{"id": "a{i}", "to": "+14155550100"}}\n' for i in range(3000)))
    code, shown = read_pty(["enqueue", "--file", str(path)], redis_env(redis_server, ns))
    assert code == 0
    assert b"\rchecking leads.jsonl [" in shown and b"100.0% 3,000 rows" in shown
    assert b"\rpushing  leads.jsonl [" in shown


async def test_a_single_job_already_known_is_reported(redis_server: LocalRedis, ns: str,
                                                      store: Store) -> None:
    await store.r.hset(store.k.job("a1"), mapping={"owner": "1-0", "state": "done"})
    out = cli("enqueue", "--id", "a1", "--to", "+14155550100", env=redis_env(redis_server, ns))
    assert out.returncode == 0 and "a1 was already known" in out.stdout


def result(job_id: str, campaign: str | None, **extra: object) -> ResultItem:
    res = {"job_id": job_id, "outcome": "ended", "campaign": campaign,
           "metadata": {"first_name": job_id.upper(), "n": 1}, "attempts": 1, **extra}
    return ResultItem(job_id, None, res, "ended", "human")


async def test_one_campaigns_results_export_as_csv_and_jsonl(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    await store.finish([result("a", "spring", answer_status="human",
                               calls=[{"call_id": "c1"}, {"call_id": "c2"}]),
                        result("b", "autumn"), result("c", "spring", call_id="c3")], 60)
    env = redis_env(redis_server, ns)
    out = cli("results", "--campaign", "spring", "--format", "csv", "--meta-columns",
              "first_name,n", env=env)
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["job_id"], r["campaign"], r["calls"], r["metadata.first_name"], r["metadata.n"])
            for r in table] == [("a", "spring", "2", "A", "1"), ("c", "spring", "1", "C", "1")]
    assert table[0]["answer_status"] == "human" and json.loads(table[0]["metadata"])["n"] == 1
    dest = tmp_path / "autumn.jsonl"
    out = cli("results", "--campaign", "autumn", "-o", str(dest), env=env)
    assert out.returncode == 0 and "wrote 1 results" in out.stderr
    assert [json.loads(x)["job_id"] for x in dest.read_text().splitlines()] == ["b"]


def test_a_bad_job_option_stops_the_import_before_any_row(redis_server: LocalRedis, ns: str,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    out = cli("enqueue", "--file", str(path), "--campaign", "spring sale",
              env=redis_env(redis_server, ns))
    assert out.returncode == 2 and "--campaign: expected 1-64 characters" in out.stderr


def visible(line: bytes) -> bytes:
    """What a terminal shows of one line: a carriage return goes back to its start, ESC [ K
    erases from the cursor on."""
    screen, col, i = bytearray(), 0, 0
    while i < len(line):
        if line.startswith(b"\x1b[K", i):
            del screen[col:]
            i += 3
            continue
        if line[i:i + 1] == b"\r":
            col = 0
        else:
            screen[col:col + 1] = line[i:i + 1]
            col += 1
        i += 1
    return bytes(screen)


MESSY = ("Lead;Phone Number;Name\n"
         "m1;(212) 555-0142;Ann\n"
         ";;\n"
         "m2;+44 20 7183 8750;Bob\n")


async def test_a_messy_csv_is_read_with_map_and_region(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    env = redis_env(redis_server, ns)
    out = cli("enqueue", "--file", str(path), env=env)
    assert out.returncode == 2
    assert "no 'id' column" in out.stderr and "'Lead', 'Phone Number', 'Name'" in out.stderr
    out = cli("enqueue", "--file", str(path), "--map", "Phone Number=to", "--map", "Lead=id",
              "--region", "US", env=env)
    assert out.returncode == 0, out.stderr
    assert "2 new" in out.stdout and "skipped 1 empty row" in out.stdout
    assert [(j["id"], j["to"]) for j in await pushed(store)] == [
        ("m1", "+12125550142"), ("m2", "+44 20 7183 8750")]


def test_a_bad_map_or_region_is_named(redis_server: LocalRedis, ns: str,
                                      tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    env = redis_env(redis_server, ns)
    out = cli("enqueue", "--file", str(path), "--map", "Phone Number", env=env)
    assert out.returncode == 2 and "--map: expected COLUMN=FIELD" in out.stderr
    out = cli("enqueue", "--file", str(path), "--region", "XY", env=env)
    assert out.returncode == 2 and "--region: unknown region 'XY'" in out.stderr


def national_rows(n: int) -> str:
    return "id,to\n" + "".join(f"n{i},(212) 555-{i % 10_000:04}\n" for i in range(n))


async def test_many_bad_rows_are_summarised_by_kind(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "national.csv"
    path.write_text(national_rows(300) + "x1,+14155550100,extra\n", encoding="utf-8")
    env = redis_env(redis_server, ns)
    out = cli("enqueue", "--file", str(path), env=env)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2: to: national number '(212) 555-0000'")
    assert lines[1] == "  and 299 more rows like it: lines 3, 4, 5, 6, 7 and 294 more"
    assert lines[2].startswith(f"{path}:302: row: 3 cells")
    assert any("--region" in line for line in lines[3:])
    assert "301 of 301 rows are bad" in lines[-1] and "nothing was pushed" in lines[-1]
    out = cli("enqueue", "--file", str(path), "--all-errors", env=env)
    assert sum("national number" in line for line in out.stderr.splitlines()) == 300
    assert await store.r.xlen(store.k.jobs) == 0


def test_error_lines_are_not_printed_over_the_progress_bar(redis_server: LocalRedis, ns: str,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text("".join(f'{{"id": "a{i}", "to": "{"+1" if i > 1500 else "+14155550100"}"}}\n'
                            for i in range(3000)))
    for extra in ([], ["--all-errors"]):
        code, shown = read_pty(["enqueue", "--file", str(path), *extra],
                               redis_env(redis_server, ns))
        assert code == 2
        for line in shown.split(b"\n"):
            seen = visible(line)
            if b"to:" in seen:  # an error line: the bar was cleared before it
                assert b"checking" not in seen, seen


async def test_importing_the_same_file_again_says_its_ids_are_known(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    await store.r.hset(store.k.job("l1"), mapping={"owner": "1-0", "state": "done"})
    await store.r.hset(store.k.dormant, "l2", "x")
    out = cli("enqueue", "--file", str(path), env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert "0 new, 2 already known" in out.stdout and "enqueued 2" not in out.stdout
