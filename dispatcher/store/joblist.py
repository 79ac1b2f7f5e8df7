"""The jobs list: pages read from the index sets the state-changing scripts keep
(lua/lib/core.lua, read by lua/joblist.lua)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from dispatcher.store.scripts import Scripts, as_list

BUDGET = 5000  # ids one page may look at: a rare filter answers short, with a cursor


class JobListArgs(TypedDict):
    state: str
    n: int
    camp: NotRequired[str]
    outcome: NotRequired[str]
    prov: NotRequired[str]
    prio: NotRequired[str]
    wr: NotRequired[str]
    lo: NotRequired[int]
    hi: NotRequired[int]
    asc: NotRequired[bool]
    cur: NotRequired[dict[str, int]]
    budget: NotRequired[int]


@dataclass(frozen=True)
class JobPage:
    """One page: rows (the job's fields, ``id`` and ``since``), where to go on from
    (``None``: the end), the size of the set read and whether that size counts matches."""

    rows: list[dict[str, Any]]
    cursor: tuple[int, int] | None
    total: int
    exact: bool
    seen: int


class JobList:
    s: Scripts

    async def list_jobs(self, args: JobListArgs) -> JobPage:
        res: dict[str, Any] = await self.s.call("joblist", **{"budget": BUDGET, **args})
        nxt = res.get("next")
        cursor = (int(nxt["s"]), int(nxt["k"])) if isinstance(nxt, dict) and nxt else None
        return JobPage(rows=as_list(res["rows"]), cursor=cursor, total=int(res["total"]),
                       exact=bool(res["exact"]), seen=int(res["seen"]))
