"""``dispatcher dnc add|remove|check|import``: the do-not-call list."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)
from dispatcher.core.model import iso

BATCH = 10_000


def _keys(numbers: list[str], hashed: bool) -> list[str]:
    from dispatcher.ops.dnc import key_of
    out = []
    for number in numbers:
        try:
            out.append(key_of(number, hashed))
        except ValueError as exc:
            raise Fail(str(exc)) from None
    return out


def cmd_dnc(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    settings = settings_from(args)
    hashed = settings.policy.dnc_hashed
    if args.action == "import":
        path = Path(args.numbers[0])
        if not path.is_file():
            raise Fail(f"dnc import: no such file: {path}")
        return run(_import(settings, path, hashed, _registry(args, settings)))
    if args.registry or args.as_of:
        raise Fail("dnc: --registry and --as-of go with import only")
    keys = _keys(args.numbers, hashed)

    async def main() -> int:
        store = open_store(settings)
        try:
            if args.action == "add":
                count = await store.dnc_add(keys)
                await audited(store, Action.DNC_ADD, f"{len(keys)} numbers", f"{count} added")
                print(f"added {count} of {len(keys)} numbers")
            elif args.action == "remove":
                count = await store.dnc_remove(keys)
                await audited(store, Action.DNC_REMOVE, f"{len(keys)} numbers", f"{count} removed")
                print(f"removed {count} of {len(keys)} numbers")
            else:
                found = await store.dnc_check(keys)
                for number, hit in zip(args.numbers, found, strict=True):
                    print(f"{number}: {'on the do-not-call list' if hit else 'not listed'}")
                return 0 if all(found) else 1
        finally:
            await store.close()
        return 0

    return run(main())


def _registry(args: argparse.Namespace, settings: Any) -> tuple[str, int] | None:
    """(name, as-of ms) of a registry import, checked before anything is read."""
    if not args.registry and not args.as_of:
        return None
    if not (args.registry and args.as_of):
        raise Fail("dnc import: --registry NAME and --as-of DATE go together")
    known = settings.policy.registries
    if args.registry not in known:
        raise Fail(f"--registry: {args.registry!r} is not configured; expected one of "
                   f"{sorted(known) or 'none'} ([policy.registries.NAME])")
    try:
        from dispatcher.ops.dnc import as_of_ms
        return args.registry, as_of_ms(args.as_of, datetime.now(UTC).date())
    except ValueError as exc:
        raise Fail(str(exc)) from None


async def _import(settings: Any, path: Path, hashed: bool,
                  registry: tuple[str, int] | None = None) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.ops.dnc import read_file
    store = open_store(settings)
    added = seen = bad = kept = 0
    batch: list[str] = []
    started = time.monotonic()
    tty = sys.stderr.isatty()
    try:
        for line in read_file(path, hashed):
            if line.key is None:
                bad += 1
                print(f"{path}:{line.number}: {line.error}", file=sys.stderr)
                continue
            batch.append(line.key)
            seen += 1
            if len(batch) >= BATCH:
                added += await store.dnc_add(batch)
                batch = []
                if tty:
                    print(f"\r{seen:,} numbers", end="", file=sys.stderr, flush=True)
        added += await store.dnc_add(batch)
        if registry is not None:  # the whole file is in: now the copy counts as fresh
            kept = await store.registry_record(registry[0], registry[1], seen)
        await audited(store, Action.DNC_IMPORT, registry[0] if registry else path.name,
                      f"{seen} numbers, {added} new, {bad} lines refused")
    except ValueError as exc:
        raise Fail(str(exc)) from None
    finally:
        await store.close()
    if tty:
        print(file=sys.stderr)
    print(f"imported {seen:,} numbers ({added:,} new) in {time.monotonic() - started:.1f} s; "
          f"{bad} lines refused")
    if registry is not None:
        note = "" if kept == registry[1] else f" (a newer copy, as of {iso(kept)}, stays)"
        print(f"registry {registry[0]}: as of {_day(registry[1])}{note}")
    return 0 if bad == 0 else 1


def _day(ms: int) -> str:
    return (iso(ms) or "")[:10]


def register(sub: Any) -> None:
    sp = sub.add_parser("dnc", help="the do-not-call list: add, remove, check, import",
                        description="Numbers on the do-not-call list are never dialled: a job "
                                    "for one ends 'blocked' (reason dnc) at the moment of "
                                    "dialling.")
    add_redis_options(sp)
    sp.add_argument("action", choices=("add", "remove", "check", "import"))
    sp.add_argument("numbers", nargs="+", metavar="NUMBER|FILE",
                    help="E.164 numbers; for import, a file with one number a line or a "
                         "CSV with a 'number' column")
    sp.add_argument("--registry", metavar="NAME",
                    help="import: the file is this national registry's copy "
                         "([policy.registries.NAME]); its jobs wait while the copy is stale")
    sp.add_argument("--as-of", metavar="DATE", help="import --registry: the copy's date")
    sp.set_defaults(fn=cmd_dnc)
