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
    assert "enqueued 2 jobs" in out.stdout and out.stderr == ""  # no progress bar off a tty
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
    assert "2 of 4 rows are bad" in lines[2] and "nothing was pushed" in lines[2]
    assert await store.r.xlen(store.k.jobs) == 0


async def test_skip_invalid_pushes_the_good_rows_and_writes_the_bad_ones_aside(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS + "l3,0415,Cy,,\n", encoding="utf-8")
    rejects = tmp_path / "bad.csv"
    out = cli("enqueue", "--file", str(path), "--skip-invalid", "--reject-file", str(rejects),
              env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert f"enqueued 2 jobs into {{{ns}}}:jobs; 1 bad rows written to {rejects}" in out.stdout
    assert f"{path}:4: to:" in out.stderr
    assert rejects.read_bytes() == b"id,to,first_name,city,priority\r\nl3,0415,Cy,,\r\n"
    assert [j["id"] for j in await pushed(store)] == ["l1", "l2"]


def test_a_terminal_gets_a_progress_bar(redis_server: LocalRedis, ns: str,
                                        tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text("".join(f'{{"id": "a{i}", "to": "+14155550100"}}\n' for i in range(3000)))
    primary, secondary = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "dispatcher", "enqueue", "--file", str(path)],
                          env={**os.environ, **redis_env(redis_server, ns)},
                          stdout=subprocess.PIPE, stderr=secondary, timeout=60, check=False)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.returncode == 0
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
