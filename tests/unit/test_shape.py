"""The code stays small enough to read: modules under 500 lines, functions (Python and Lua)
under ~40 lines and ~12 branches. A function that grows past these is split, not excused."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "dispatcher"
MAX_MODULE = 500
MAX_LINES = 45
MAX_BRANCHES = 12
PY = sorted(p for p in ROOT.rglob("*.py"))
LUA = sorted(ROOT.rglob("*.lua"))
BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.ExceptHandler, ast.With,
            ast.AsyncWith, ast.IfExp, ast.match_case)


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _branches(fn: ast.AST) -> int:
    own = [n for n in ast.walk(fn) if isinstance(n, BRANCHES)]
    nested = {id(x) for f in _functions(fn) if f is not fn
              for x in ast.walk(f) if isinstance(x, BRANCHES)}
    return sum(1 for n in own if id(n) not in nested)


@pytest.mark.parametrize("path", PY, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_module_and_functions_are_small(path: Path) -> None:
    text = path.read_text()
    assert text.count("\n") < MAX_MODULE, f"{path.name}: {text.count(chr(10))} lines"
    for fn in _functions(ast.parse(text)):
        lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        assert lines <= MAX_LINES, f"{path.name}:{fn.lineno} {fn.name}: {lines} lines"
        assert _branches(fn) <= MAX_BRANCHES, f"{path.name}:{fn.lineno} {fn.name} branches"


_LUA_FN = re.compile(r"^(local )?function (\w+)\(", re.M)
_LUA_BRANCH = re.compile(r"\b(if|elseif|for|while)\b")


def _lua_bodies(text: str) -> list[tuple[str, list[str]]]:
    """Each function's lines (a function ends at the first line that is exactly 'end'), and
    the script's own top-level lines as one more body."""
    lines = text.splitlines()
    out, top, i = [], [], 0
    while i < len(lines):
        m = _LUA_FN.match(lines[i])
        if m:
            j = i
            while lines[j] != "end":
                j += 1
            out.append((m.group(2), lines[i:j + 1]))
            i = j + 1
        else:
            if lines[i].strip() and not lines[i].lstrip().startswith("--"):
                top.append(lines[i])
            i += 1
    out.append(("(script)", top))
    return out


@pytest.mark.parametrize("path", LUA, ids=lambda p: str(p.relative_to(ROOT)))
def test_lua_functions_are_small(path: Path) -> None:
    for name, body in _lua_bodies(path.read_text()):
        code = [ln for ln in body if ln.strip() and not ln.lstrip().startswith("--")]
        assert len(code) <= MAX_LINES, f"{path.name} {name}: {len(code)} lines"
        branches = sum(len(_LUA_BRANCH.findall(ln.split("--")[0])) for ln in code)
        assert branches <= MAX_BRANCHES, f"{path.name} {name}: {branches} branches"


def test_only_the_store_talks_to_redis() -> None:
    """Other modules call store methods; none reaches through to the client (``store.r``)."""
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("store/", "simulator/")):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bstore\.r\b|\bstore\.r\.", line):
                offenders.append(f"{rel}:{n}")
    assert offenders == []
