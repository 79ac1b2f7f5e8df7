"""``dispatcher consent add|revoke|show|import``: the consent ledger (docs/policy.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)

if TYPE_CHECKING:  # --help and --version import nothing heavy (phone numbers, Redis)
    from dispatcher.core.consent import Event

BATCH = 500


def _now_ms() -> int:
    return round(time.time() * 1000)


def _checked(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ValueError as exc:
        raise Fail(str(exc)) from None


def cmd_consent(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.ops.consent import consent, history_lines, revocation
    from dispatcher.ops.dnc import key_of
    settings = settings_from(args)
    pol = settings.policy
    if args.action == "import":
        path = Path(args.target)
        if not path.is_file():
            raise Fail(f"consent import: no such file: {path}")
        return run(_import(settings, path, pol.dnc_hashed))
    key = _checked(key_of, args.target, pol.dnc_hashed)
    now = _now_ms()
    event: Event | None = None
    if args.action == "add":
        if not args.source:
            raise Fail("consent add: --source is required (where the consent was given)")
        event = _checked(consent, args.source, scope=args.scope, given=args.at,
                         expires=args.expires, now_ms=now)
    elif args.action == "revoke":
        if not args.via:
            raise Fail("consent revoke: --via is required (how the person said so)")
        event = _checked(revocation, args.via, now, args.at)

    async def main() -> int:
        store = open_store(settings)
        try:
            if event is None:
                lines = history_lines(await store.consent_history(key))
                print("\n".join(lines) if lines else f"{args.target}: no consent on record")
                return 0 if lines else 1
            await store.consent_record([(key, event)], add_dnc=pol.revoke_adds_dnc)
            await audited(store, Action(f"consent.{args.action}"), "1 number",
                          f"source {args.source}" if args.action == "add" else f"via {args.via}")
        finally:
            await store.close()
        if args.action == "revoke":
            also = " and on the do-not-call list" if pol.revoke_adds_dnc else ""
            print(f"revoked: no campaign will call {args.target} on its consent{also}")
        else:
            print(f"consent recorded for {args.target}")
        return 0

    return run(main())


async def _import(settings: Any, path: Path, hashed: bool) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.ops.consent import read_csv
    store = open_store(settings)
    added = seen = bad = 0
    batch: list[tuple[str, Event]] = []
    started = time.monotonic()
    try:
        for row in read_csv(path, hashed, _now_ms()):
            if row.key is None or row.consent is None:
                bad += 1
                print(f"{path}:{row.line}: {row.error}", file=sys.stderr)
                continue
            batch.append((row.key, row.consent))
            seen += 1
            if len(batch) >= BATCH:
                added += (await store.consent_record(batch, add_dnc=False))[0]
                batch = []
        added += (await store.consent_record(batch, add_dnc=False))[0]
        await audited(store, Action.CONSENT_IMPORT, path.name,
                      f"{seen} consents, {added} recorded, {bad} lines refused")
    except ValueError as exc:
        raise Fail(str(exc)) from None
    finally:
        await store.close()
    print(f"imported {seen:,} consents ({added:,} recorded) in "
          f"{time.monotonic() - started:.1f} s; {bad} lines refused")
    return 0 if bad == 0 else 1


def register(sub: Any) -> None:
    sp = sub.add_parser("consent", help="the consent ledger: add, revoke, show, import",
                        description="Consents and revocations per number, history kept. With "
                                    "policy.require_consent a job is dialled only while its "
                                    "number has a consent covering its campaign.")
    add_redis_options(sp)
    sp.add_argument("action", choices=("add", "revoke", "show", "import"))
    sp.add_argument("target", metavar="NUMBER|FILE",
                    help="a phone number; for import, a CSV with the columns number, source, "
                         "given_at and optionally scope, expires_at")
    sp.add_argument("--source", help="add: where the consent was given (form, call, ...)")
    sp.add_argument("--scope", help="add: the campaign it covers (default '*': every one)")
    sp.add_argument("--at", metavar="TIME",
                    help="add: when it was given; revoke: when it was revoked (default now; "
                         "ISO 8601, UTC unless an offset is given)")
    sp.add_argument("--expires", metavar="TIME", help="add: when the consent lapses")
    sp.add_argument("--via", help="revoke: how the person said so (call, email, ...)")
    sp.set_defaults(fn=cmd_consent)
