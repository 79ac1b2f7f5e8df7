"""mypy (strict, the project's settings) rejects a misspelled state, reason or script field:
the script protocol is typed, so a typo is a type error before it is a wrong key in Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

# Each snippet is checked on its own; the line marked "# wrong" is the one mypy must reject.
SNIPPETS = {
    "a misspelled job state": """
from dispatcher.core.model import JobState
state = JobState.QUEUD  # wrong
""",
    "a misspelled wait reason": """
from dispatcher.core.model import WaitReason
reason = WaitReason.RATE_LIMTED  # wrong
""",
    "a misspelled regrant answer": """
from dispatcher.store.protocol import Why
lost = Why.LOSTT  # wrong
""",
    "a misspelled script argument": """
from dispatcher.store.protocol import TrackItem
item: TrackItem = {"id": "j", "dtok": "t", "call_id": "c", "frist_ms": 0,  # wrong
                   "ttl": 1, "attempts": 1}
""",
    "a misspelled argument of a script call": """
from dispatcher.store.protocol import CancelArgs
args = CancelArgs(id="j", ttl=60, ahaed=True)  # wrong
""",
    "a misspelled script name": """
from dispatcher.store.scripts import Scripts
async def run(s: Scripts) -> None:
    await s.call("regarnt", id="j")  # wrong
""",
    "a misspelled script reply field": """
from dispatcher.store.protocol import HeartbeatReply
def claimed(res: HeartbeatReply) -> int:
    return res["claimd"]  # wrong
""",
    "a misspelled job hash field": """
from dispatcher.store.protocol import JobField
from dispatcher.store.types import JobView
def redials(v: JobView) -> int:
    return v.int(JobField.REDIAL)  # wrong
""",
    "a raw string where a job field is expected": """
from dispatcher.store.types import JobView
def redials(v: JobView) -> int:
    return v.int("rd")  # wrong
""",
    "a raw string as the place to defer to": """
from dispatcher.store import Store
async def back(store: Store) -> None:
    await store.defer("j", to="queud", reason="", until_ms=0)  # wrong
""",
    "a positional Placement": """
from dispatcher.store.protocol import Place
from dispatcher.store.types import Placement
p = Placement("1-0", "j", "{}", "p", "normal", "", "+1", "", 0, Place.QUEUED)  # wrong
""",
}


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[int]]:
    """One mypy run over every snippet (a file each): the error lines of each."""
    folder = tmp_path_factory.mktemp("snippets")
    files = {name: folder / f"snippet_{n}.py"
             for n, name in enumerate([*SNIPPETS, "right"])}
    for name, path in files.items():
        path.write_text((RIGHT if name == "right" else SNIPPETS[name]).lstrip())
    out, _, _ = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                         "--cache-dir", str(folder / ".cache"), *map(str, files.values())])
    found: dict[str, list[int]] = {name: [] for name in files}
    by_path = {path.name: name for name, path in files.items()}
    for line in out.splitlines():
        where, _, rest = line.partition(": error:")
        if rest:
            file, lineno = where.split(":")[:2]
            lines = found[by_path[Path(file).name]]
            if int(lineno) not in lines:  # a typo may break two rules on one line
                lines.append(int(lineno))
    return found


RIGHT = """
from dispatcher.core.model import JobState, WaitReason
from dispatcher.store.protocol import JobField, Why
from dispatcher.store.types import JobView
def redials(v: JobView) -> int:
    return v.int(JobField.REDIALS)
names = (JobState.QUEUED, WaitReason.RATE_LIMITED, Why.LOST)
"""


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_mypy_rejects(errors: dict[str, list[int]], name: str) -> None:
    text = SNIPPETS[name].lstrip()
    wrong = next(n for n, line in enumerate(text.splitlines(), 1) if "# wrong" in line)
    assert errors[name] == [wrong]


def test_mypy_accepts_the_right_spellings(errors: dict[str, list[int]]) -> None:
    assert errors["right"] == []
