"""The one-line notice shown after an action: a code in the page's address, mapped here to a
fixed text. Free text in the address would let any link put words on the console's page
("your session expired, paste your token at …"); a code, a known name and a count cannot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode

PARAMS = ("msg", "name", "n")


class Notice(StrEnum):
    PROVIDER_RESUMED = "provider_resumed"
    PROVIDER_NOT_HALTED = "provider_not_halted"
    CAMPAIGN_PAUSED = "campaign_paused"
    CAMPAIGN_RESUMED = "campaign_resumed"
    CAMPAIGN_CANCELLED = "campaign_cancelled"
    PROVIDER_LIMITS_SET = "provider_limits_set"
    PROVIDER_LIMITS_RESET = "provider_limits_reset"
    PROVIDER_CALLER_ID_RESTED = "provider_caller_id_rested"
    PROVIDER_CALLER_ID_RESTORED = "provider_caller_id_restored"

    @property
    def about(self) -> str:
        """What ``name`` names: "provider" or "campaign"."""
        return self.value.split("_", 1)[0]


TEXTS = {
    Notice.PROVIDER_RESUMED: "provider {name} resumed; {n} parked jobs back in line",
    Notice.PROVIDER_NOT_HALTED: "provider {name} was not halted; {n} parked jobs back in line",
    Notice.CAMPAIGN_PAUSED: "campaign {name} paused",
    Notice.CAMPAIGN_RESUMED: "campaign {name} resumed",
    Notice.CAMPAIGN_CANCELLED: "campaign {name} cancelled: {n} jobs get the result 'cancelled'",
    Notice.PROVIDER_LIMITS_SET: "provider {name}: new limits stored, applied at every "
                                "worker's next grant",
    Notice.PROVIDER_LIMITS_RESET: "provider {name}: back to the configuration file's limits",
    Notice.PROVIDER_CALLER_ID_RESTED: "provider {name}: caller ID rested, no new call from it",
    Notice.PROVIDER_CALLER_ID_RESTORED: "provider {name}: caller ID back in the pool",
}


def with_notice(path: str, notice: Notice, name: str, count: int = 0) -> str:
    """``path`` (already a safe local path) with the notice, replacing any earlier one."""
    path, _, query = path.partition("?")
    params = [(k, v) for k, v in parse_qsl(query) if k not in PARAMS]
    return f"{path}?{urlencode([*params, ('msg', notice.value), ('name', name), ('n', count)])}"


async def notice_text(query: dict[str, str],
               known: Callable[[str, str], Awaitable[bool]]) -> str:
    """The notice's text; "" unless the code is one of ours, the count a number and the name
    a provider or campaign that ``known(about, name)`` confirms."""
    try:
        notice = Notice(query.get("msg", ""))
    except ValueError:
        return ""
    name, count = query.get("name", ""), query.get("n", "0")
    if not (count.isdigit() and len(count) <= 9 and name and await known(notice.about, name)):
        return ""
    return TEXTS[notice].format(name=name, n=int(count))
