"""``dispatcher campaign list|status|pause|resume|cancel``: steering batches of calls."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)

DONE_TEXT = {
    "pause": "paused: no new dial for its jobs; calls already live are followed to their end",
    "resume": "resumed",
}


def _name(text: str) -> str:
    from dispatcher.core.jobs import NAME_RE
    if not NAME_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a campaign name (1-64 of A-Za-z0-9._:-)")
    return text


def cmd_list(args: argparse.Namespace) -> int:
    from dispatcher.ops import campaigns
    settings = settings_from(args)

    async def main() -> list[campaigns.CampaignStatus]:
        store = open_store(settings)
        try:
            return await campaigns.statuses(store)
        finally:
            await store.close()

    items = run(main())
    print(json.dumps([s.to_json() for s in items], indent=2) if args.json
          else campaigns.render_list(items))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from dispatcher.ops import campaigns
    settings = settings_from(args)

    cfg = settings.campaigns.get(args.name)

    async def main() -> tuple[campaigns.CampaignStatus | None, dict[str, Any] | None]:
        store = open_store(settings)
        try:
            spend = None
            if cfg is not None and cfg.budget is not None:
                spend = await campaigns.spend(store, args.name, cfg.budget,
                                              cfg.budget_timezone)
            return await campaigns.status(store, args.name), spend
        finally:
            await store.close()

    status, spend = run(main())
    if status is None:
        raise Fail(f"campaign {args.name}: never seen (no job of it was read yet)", code=1)
    if args.json:
        print(json.dumps({**status.to_json(), **({"spend": spend} if spend else {})}, indent=2))
    else:
        print(campaigns.render_status(status) + (campaigns.render_spend(spend) if spend else ""))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    from dispatcher.ops import campaigns
    from dispatcher.ops.audit import Action
    settings = settings_from(args)

    async def main() -> tuple[int, bool]:
        store = open_store(settings)
        try:
            known = args.name in set(await campaigns.names(store))
            count = await campaigns.control(store, args.op, args.name, settings.providers)
            await audited(store, Action(f"campaign.{args.op}"), args.name,
                          f"{count} jobs cancelled" if args.op == "cancel" else "")
            return count, known
        finally:
            await store.close()

    count, known = run(main())
    if args.op == "cancel":
        text = (f"cancelled: {count} jobs not yet dialled get the result 'cancelled'; jobs of it "
                f"pushed from now on are cancelled too, until 'dispatcher campaign resume "
                f"{args.name}'")
    else:
        text = DONE_TEXT[args.op]
    note = "" if known else " (no job of it seen yet)"
    print(f"campaign {args.name}: {text}{note}")
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("campaign", help="list, inspect, pause, resume or cancel campaigns",
                        description="Per-campaign counts and controls. Pause and cancel "
                                    "reach every worker at its next grant.")
    csub = sp.add_subparsers(dest="campaign_cmd", required=True, metavar="ACTION")

    parser = csub.add_parser("list", help="every campaign: state, counts, pace and ETA",
                        description="Every campaign seen: its state (running, paused, "
                                    "cancelled), jobs queued and finished, pace and ETA.")
    add_redis_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable")
    parser.set_defaults(fn=cmd_list)

    parser = csub.add_parser("status", help="one campaign in detail",
                        description="Queued, waiting by reason, live calls, results by "
                                    "outcome and answer, calls made, pace and ETA. Exit 1 "
                                    "when the campaign was never seen.")
    add_redis_options(parser)
    parser.add_argument("name", type=_name)
    parser.add_argument("--json", action="store_true", help="machine-readable")
    parser.set_defaults(fn=cmd_status)

    helps = {
        "pause": "no new dial for the campaign's jobs (live calls go on); no attempt spent, "
                 "and time paused does not count toward retry.max_defer_s",
        "resume": "dial again (also lifts a cancel: jobs pushed later are dialled again)",
        "cancel": "every job not yet dialled gets the result 'cancelled', and so do jobs of "
                  "the campaign pushed later, until 'campaign resume'",
    }
    for op, text in helps.items():
        parser = csub.add_parser(op, help=text, description=text[0].upper() + text[1:] + ".")
        add_redis_options(parser)
        parser.add_argument("name", type=_name)
        parser.set_defaults(fn=cmd_control, op=op)
