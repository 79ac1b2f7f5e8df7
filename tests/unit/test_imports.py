"""Reading and validating import files: rows, line numbers, extra columns, rejects."""

from __future__ import annotations

import asyncio
import csv
import json
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.ops import imports
from dispatcher.ops.imports import BadRow, FileProblem, Options, Reader

NOW = 1_800_000_000.0


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def rows(path: Path, **defaults: Any) -> list[imports.Row]:
    return list(Reader(path, defaults).rows())


def jobs(path: Path, **defaults: Any) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in rows(path, **defaults) if r.payload]


@pytest.fixture(autouse=True)
def _spools_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def check(path: Path, **opts: Any) -> tuple[imports.Checked, list[BadRow]]:
    bad: list[BadRow] = []
    checked = imports.check_file(path, Options(now=NOW, **opts), bad.append)
    return checked, bad


def test_a_csv_with_a_spreadsheet_bom_reads_its_first_column_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "\ufeffid,to\na1,+14155550100\n")
    assert jobs(path) == [{"id": "a1", "to": "+14155550100"}]


def test_extra_columns_go_into_metadata_as_text_with_the_metadata_column(
        tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", 'id,to,name,score,metadata\n'
                                    'a1,+14155550100,Ann,7,"{""k"": 1}"\n'
                                    "a2,+14155550101,,,\n")
    assert jobs(path) == [
        {"id": "a1", "to": "+14155550100", "metadata": {"k": 1, "name": "Ann", "score": "7"}},
        {"id": "a2", "to": "+14155550101"}]


def test_a_key_both_in_metadata_and_as_a_column_is_a_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", 'id,to,k,metadata\na1,+14155550100,x,"{""k"": 1}"\n')
    [row] = rows(path)
    assert row.payload is None and row.error and row.error.startswith("metadata: 'k'")


def test_line_numbers_count_quoted_line_breaks_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", 'id,to,note\n\na1,+14155550100,"two\nlines"\n'
                                    "a2,+14155550101,x\r\n")
    assert [(r.line, r.source[0]) for r in rows(path)] == [(3, "a1"), (5, "a2")]


@pytest.mark.parametrize(("cells", "needle"), [
    ("a1,+14155550100,x,extra", "row: 4 cells, but the header has 3 columns"),
    ("a1,+14155550100,3.5", "max_attempts: expected an integer, got '3.5'"),
])
def test_a_malformed_csv_row_is_named(tmp_path: Path, cells: str, needle: str) -> None:
    path = write(tmp_path, "l.csv", f"id,to,max_attempts\n{cells}\n")
    assert rows(path)[0].error == needle


def test_unnamed_trailing_columns_are_ignored_while_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to,,\na1,+14155550100,,\na2,+14155550100,,x\n")
    got = rows(path)
    assert got[0].payload and got[1].error == "row: a value in a column without a name"


@pytest.mark.parametrize(("header", "needle"), [
    ("ID,to", "no 'id' column (names are case-sensitive: found 'ID'; columns seen"),
    ("id,phone", "no 'to' column"),
    ("id,to,id", "column 'id' appears twice"),
    ("", "empty file"),
])
def test_an_unusable_header_stops_the_import(tmp_path: Path, header: str, needle: str) -> None:
    path = write(tmp_path, "l.csv", header + ("\n" if header else ""))
    with pytest.raises(FileProblem, match=needle.replace("(", r"\(").replace(")", r"\)")):
        rows(path)


def test_options_fill_what_a_row_leaves_out_and_a_row_of_another_campaign_is_bad(
        tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to,campaign,priority\na1,+14155550100,,high\n"
                                    "a2,+14155550101,spring,\na3,+14155550102,other,\n")
    got = rows(path, campaign="spring", priority="low")
    assert [json.loads(r.payload)["priority"] for r in got[:2] if r.payload] == ["high", "low"]
    assert got[2].error == ("campaign: the row says 'other', but the import is for "
                            "campaign 'spring'")


def test_jsonl_lines_are_numbered_and_defaults_applied(tmp_path: Path) -> None:
    path = write(tmp_path, "l.jsonl", '\ufeff{"id": "a1", "to": "+14155550100"}\n\n'
                                      '{"id": "a2", "to": "+14155550101", "campaign": "x"}\n')
    got = rows(path, campaign="x")
    assert [r.line for r in got] == [1, 3]
    assert [json.loads(r.payload or "")["campaign"] for r in got] == ["x", "x"]


def test_a_row_that_is_not_utf8_is_a_bad_row_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", b"id,to,name\na1,+14155550100,Ren\xe9\n"
                                    b"a2,+14155550101,Ann\n")
    got = rows(path)
    assert (got[0].line, got[0].error) == (2, "row: not UTF-8 text") and got[1].payload


def test_every_bad_row_is_reported_in_order_with_its_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to,priority\na1,+14155550100,\nbad id,+14155550100,\n"
                                    "a3,0415555,\na4,+14155550100,urgent\n")
    checked, bad = check(path)
    assert (checked.rows, checked.bad, checked.good) == (4, 3, 1)
    assert [(b.line, b.field) for b in bad] == [(3, "id"), (4, "to"), (5, "priority")]
    assert checked.rejects is None and not (tmp_path / "l.rejects.csv").exists()


def test_unconfigured_providers_are_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "l.jsonl", '{"id": "a", "to": "+14155550100", "provider": "eu"}\n')
    _, [bad] = check(path, providers=frozenset({"default"}))
    assert bad.field == "provider" and "no provider named 'eu'" in bad.error


def test_skip_invalid_writes_the_bad_rows_as_a_file_that_can_be_imported_again(
        tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to,name\na1,+14155550100,Ann\na2,0415,Bob\n")
    checked, _ = check(path, skip_invalid=True)
    assert checked.rejects == tmp_path / "l.rejects.csv"
    with checked.rejects.open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["id", "to", "name"], ["a2", "0415", "Bob"]]
    jl = write(tmp_path, "m.jsonl", '{"id": "a"}\n{"id": "b", "to": "+14155550100"}\n')
    checked, _ = check(jl, skip_invalid=True, reject_path=tmp_path / "r.jsonl")
    assert (tmp_path / "r.jsonl").read_text() == '{"id": "a"}\n'


def test_validation_in_worker_processes_finds_the_same_rows(tmp_path: Path) -> None:
    lines = [f'{{"id": "a{i}", "to": "{"+14155550100" if i % 7 else "0415"}"}}'
             for i in range(2500)]
    path = write(tmp_path, "l.jsonl", "\n".join(lines) + "\n")
    _, bad1 = check(path, workers=1)
    _, bad2 = check(path, workers=2)
    assert [b.line for b in bad1] == [b.line for b in bad2] == list(range(1, 2501, 7))


def test_the_second_pass_pushes_only_good_rows_in_order(tmp_path: Path) -> None:
    body = "".join(f'{{"id": "a{i}", "to": "{"0415" if i in (3, 1500) else "+14155550100"}"}}\n'
                   for i in range(2100))
    path = write(tmp_path, "l.jsonl", body)
    checked, _ = check(path, skip_invalid=True)
    batches: list[list[str]] = []

    async def push(batch: list[str]) -> int:
        batches.append(list(batch))
        return 0

    pushed = asyncio.run(imports.push_file(checked, Options(), push)).rows
    ids = [json.loads(p)["id"] for b in batches for p in b]
    assert pushed == len(ids) == 2098 and max(len(b) for b in batches) == imports.CHUNK
    assert ids == [f"a{i}" for i in range(2100) if i not in (3, 1500)]


def test_what_is_pushed_is_what_was_checked_even_if_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "l.jsonl", '{"id": "a", "to": "+14155550100"}\n')
    checked, _ = check(path)
    path.write_text('{"id": "b", "to": "+1415"}\n{"id": "c", "to": "+14155550101"}\n')
    pushed: list[str] = []

    async def push(batch: list[str]) -> int:
        pushed.extend(batch)
        return 0

    assert asyncio.run(imports.push_file(checked, Options(), push)).rows == 1
    assert [json.loads(p)["id"] for p in pushed] == ["a"]
    assert checked.spool is None  # the spool is gone once pushed


@pytest.mark.parametrize(("error", "field"), [
    ("to: national number", "to"), ("job: unknown field 'x y'", "job"),
    ("metadata: not valid JSON (Expecting value: line 1)", "metadata"), ("odd", "job")])
def test_the_field_is_the_head_of_the_error(error: str, field: str) -> None:
    assert imports.field_of(error) == field


cell = st.text(string.ascii_letters + string.digits + ' ,"\n;é€', max_size=12)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=8))
def test_every_cell_value_reaches_the_job_unchanged(tmp_path_factory: Any,
                                                    values: list[tuple[str, str]]) -> None:
    path = tmp_path_factory.mktemp("h") / "l.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "to", "agent_id", "note"])
        for i, (agent, note) in enumerate(values):
            w.writerow([f"a{i}", "+14155550100", agent, note])
    got = jobs(path)
    assert [(j.get("agent_id", ""), j.get("metadata", {}).get("note", "")) for j in got] == \
        values


# -- messy files: separators, column names, national numbers, empty rows, many bad rows -------

@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_the_separator_is_found_from_the_header(tmp_path: Path, sep: str) -> None:
    path = write(tmp_path, "l.csv", sep.join(["id", "to", "note"]) + "\n"
                 + sep.join(["a1", "+14155550100", '"x, y; z"']) + "\n")
    assert jobs(path) == [{"id": "a1", "to": "+14155550100", "metadata": {"note": "x, y; z"}}]


def test_a_missing_column_lists_the_columns_seen_and_how_to_map_one(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id;Phone Number;name\na1;+14155550100;Ann\n")
    with pytest.raises(FileProblem) as exc:
        rows(path)
    text = str(exc.value)
    assert "no 'to' column" in text and "'id', 'Phone Number', 'name'" in text
    assert "separated by ';'" in text and '--map "COLUMN=to"' in text


def test_a_header_of_one_column_hints_at_the_separator(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id|to|name\na1|+14155550100|Ann\n")
    with pytest.raises(FileProblem, match=r"one column 'id\|to\|name'.*separator"):
        rows(path)


def test_map_renames_a_column_to_a_job_field(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "Lead,Phone Number,name\na1,+14155550100,Ann\n")
    got = list(Reader(path, {}, columns={"Phone Number": "to", "Lead": "id"}).rows())
    assert [json.loads(r.payload or "") for r in got] == [
        {"id": "a1", "to": "+14155550100", "metadata": {"name": "Ann"}}]


def test_map_of_a_column_the_file_does_not_have_is_a_file_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to\na1,+14155550100\n")
    with pytest.raises(FileProblem, match=r"--map 'Phone': no such column \(columns seen: "
                                          r"'id', 'to', separated by ','\)"):
        list(Reader(path, {}, columns={"Phone": "to"}).rows())


def test_a_region_turns_national_numbers_into_e164(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to\na1,(212) 555-0142\na2,+442071838750\n"
                                    "a3,555\n")
    got = [json.loads(r.payload or "") for r in Reader(path, {}, region="US").rows()]
    assert [j["to"] for j in got] == ["+12125550142", "+442071838750", "555"]


def test_a_national_number_without_a_region_stays_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to\na1,(212) 555-0142\n")
    _, bad = check(path)
    assert [b.error.split(";")[0] for b in bad] == ["to: national number '(212) 555-0142'"]


def test_rows_of_empty_cells_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,to,name\n,,\na1,+14155550100,\n , ,\n\n")
    checked, bad = check(path)
    assert (checked.rows, checked.blank, bad) == (1, 3, [])


def test_bad_rows_are_summarised_by_kind_with_their_first_lines() -> None:
    problems = imports.Problems()
    for line in range(2, 12):
        problems.add(BadRow(line, "to", f"to: national number '(212) 555-01{line:02}'; "
                                        "write it with + and the country code", []))
    problems.add(BadRow(12, "priority", "priority: expected one of high, normal, low", []))
    assert problems.lines("l.csv") == [
        "l.csv:2: to: national number '(212) 555-0102'; write it with + and the country code",
        "  and 9 more rows like it: lines 3, 4, 5, 6, 7 and 4 more",
        "l.csv:12: priority: expected one of high, normal, low"]
    assert problems.total == 11


def test_the_kinds_of_error_are_bounded() -> None:
    problems = imports.Problems()
    for n in range(imports.Problems.MAX_KINDS + 5):
        problems.add(BadRow(n + 2, "job", f"row: {n} cells, but the header has 2 columns", []))
    out = problems.lines("l.csv")
    assert len(out) == imports.Problems.MAX_KINDS + 1 and out[-1].startswith("  and 5 more")


def test_pushing_counts_the_ids_already_known(tmp_path: Path) -> None:
    path = write(tmp_path, "l.jsonl", "".join(f'{{"id": "a{i}", "to": "+14155550100"}}\n'
                                              for i in range(1500)))
    checked, _ = check(path)

    async def push(batch: list[str]) -> int:
        return sum(1 for p in batch if json.loads(p)["id"] < "a2")

    known = sum(1 for i in range(1500) if f"a{i}" < "a2")
    pushed = asyncio.run(imports.push_file(checked, Options(), push))
    assert (pushed.rows, pushed.known, pushed.new) == (1500, known, 1500 - known)
