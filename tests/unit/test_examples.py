"""The example producers: their own ids (not the sample CSV's), no silent wait for ids the
dispatcher already knew, and a Go module Debian's Go builds."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
CSV_IDS = {row["id"] for row in csv.DictReader((EX / "leads.csv").open(encoding="utf-8"))}


def node() -> str:
    found = shutil.which("node")
    assert found, "node is part of this machine image"
    return found


def node_ids() -> set[str]:
    out = subprocess.run([node(), str(EX / "node/producer.js"), "--print"],
                         capture_output=True, text=True, timeout=30, check=True)
    return {json.loads(line)["id"] for line in out.stdout.splitlines()}


def go_ids() -> set[str]:
    src = (EX / "go/producer.go").read_text()
    fmt = re.search(r'ID: fmt\.Sprintf\("([^"]*)%d", l\.ID\)', src)
    assert fmt
    return {fmt.group(1) + n for n in re.findall(r"\{ID: (\d+),", src)}


def python_ids() -> set[str]:
    ids = set()
    for name in ("producer.py", "sync_producer.py"):
        src = (EX / "python" / name).read_text()
        ids |= {a or b for a, b in re.findall(r'"id": "([^"]+)"|\("([^"]+)", "\+', src)}
    return ids


def test_the_producers_do_not_reuse_the_sample_csvs_ids() -> None:
    ids = {"node": node_ids(), "go": go_ids(), "python": python_ids()}
    assert all(ids.values()), ids
    assert {k: v & CSV_IDS for k, v in ids.items()} == {"node": set(), "go": set(),
                                                         "python": set()}
    assert not (ids["node"] & ids["go"]) and not (ids["node"] & ids["python"])


def test_the_node_producer_waits_only_for_new_ids_and_says_which_were_known() -> None:
    script = ("const p = require(process.argv[1]);"
              "const jobs = p.exampleJobs();"
              "console.log(JSON.stringify(p.plan(jobs, [jobs[0].id])));"
              "console.log(JSON.stringify(p.plan(jobs, jobs.map((j) => j.id))));")
    out = subprocess.run([node(), "-e", script, str(EX / "node/producer.js")],
                         capture_output=True, text=True, timeout=30, check=True)
    some, every = (json.loads(line) for line in out.stdout.splitlines())
    assert len(some["wait"]) == 2 and "already known" in some["say"]
    assert every["wait"] == [] and "nothing new to wait for" in every["say"]


def test_the_go_module_builds_with_debians_go() -> None:
    text = (EX / "go/go.mod").read_text()
    version = re.search(r"^go (\d+)\.(\d+)", text, re.M)
    assert version and (int(version.group(1)), int(version.group(2))) <= (1, 19)
    src = (EX / "go/producer.go").read_text()
    assert "nothing new to wait for" in src and "already known" in src


def test_each_example_says_how_to_run_it() -> None:
    doc = (ROOT / "docs/producers.md").read_text()
    assert "apt-get install golang" in doc and "npm install" in doc
    assert "python examples/python/producer.py" in doc
