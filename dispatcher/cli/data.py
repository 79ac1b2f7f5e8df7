"""``dispatcher forget``: erase a person's data to answer a right-to-erasure request."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dispatcher.cli.common import Fail, add_redis_options, audited, run, settings_from


def _names(items: list[str], most: int = 20) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def render(erased: dict[str, Any], fence_s: int) -> list[str]:
    """What was erased, in words (one line per kind of data)."""
    jobs = f" ({_names(erased['jobs'])})" if erased["jobs"] else ""
    lines = [f"erased {len(erased['jobs'])} jobs{jobs}: {erased['timelines']} timelines, "
             f"{erased['calls']} call records, {erased['results']} results entries, "
             f"{erased['entries']} queued payloads, {erased['number_logs']} number logs, "
             f"{erased['subject_logs']} subject logs"]
    if erased["fenced"]:
        lines.append(f"in flight, erased and fenced for {fence_s} s (a call already started "
                     f"goes on; no result is written for it): {_names(erased['fenced'])}")
    if erased["unknown"]:
        lines.append(f"nothing held for: {_names(erased['unknown'])}")
    if erased["consents_erased"]:
        lines.append(f"erased {erased['consents_erased']} consent records")
    if erased["revocations_kept"]:
        lines.append(f"kept the revocations of consent, under the number's SHA-256 only (the "
                     f"proof that the person objected): {_names(erased['revocations_kept'])}")
    if erased["dnc_kept"]:
        lines.append(f"kept on the do-not-call list (never erased, so they are not called "
                     f"again): {_names(erased['dnc_kept'])}")
    return lines


def cmd_forget(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.store import Store, connect
    if not args.id and not args.number:
        raise Fail("forget: give --id ID... and/or --number NUMBER...")
    settings = settings_from(args)

    async def main() -> dict[str, Any]:
        store = Store(connect(settings.redis), settings.redis.namespace)
        try:
            erased = await store.forget(args.id or (), args.number or (), fence_s=args.fence_s)
            await audited(store, Action.FORGET, f"{len(args.id or ())} ids, "
                          f"{len(args.number or ())} numbers")
        except ValueError as exc:
            raise Fail(f"forget: --number: {str(exc).removeprefix('to: ')}") from None
        finally:
            await store.close()
        return erased.to_json()

    erased = run(main())
    print(json.dumps(erased, indent=2) if args.json else "\n".join(render(erased,
                                                                          args.fence_s)))
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "forget", help="erase a person's jobs, results and call records (right to erasure)",
        description="Erase what the dispatcher holds about these job ids and numbers: job "
                    "state and payloads, timelines, call records, results entries, payloads "
                    "still queued, per-number and per-subject call logs, consent records. "
                    "Do-not-call entries and revocations of consent (hashed) are kept. Safe to "
                    "run again. Copies a results consumer already read are not touched.")
    add_redis_options(sp)
    sp.add_argument("--id", nargs="+", metavar="ID", help="job ids")
    sp.add_argument("--number", nargs="+", metavar="NUMBER",
                    help="phone numbers (with + and the country code): every job to them")
    sp.add_argument("--fence-s", dest="fence_s", type=int, default=3600, metavar="S",
                    help="how long a job in flight keeps a bare fence (default 3600)")
    sp.add_argument("--json", action="store_true", help="machine-readable")
    sp.set_defaults(fn=cmd_forget)
