"""The call policy as the decision core sees it: one view per campaign, built from the
``[policy]`` and ``[campaigns.NAME]`` configuration, with the recipient's zones from the job's
``timezone`` or its number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from dispatcher.core import numbers
from dispatcher.core.decide import Verdict
from dispatcher.core.jobs import Job
from dispatcher.core.model import BlockReason
from dispatcher.core.policy import (
    NO_LIMIT,
    CampaignConfig,
    EffectivePolicy,
    PolicyConfig,
    calling_decision,
    effective_policy,
    recipient_zones,
    redial_after,
)

ALWAYS_OPEN = Verdict(True, None, NO_LIMIT.description)


class JobPolicy:
    """``decide.Policy`` for one campaign."""

    def __init__(self, pol: EffectivePolicy):
        self.pol = pol

    def zones(self, job: Job) -> tuple[str, ...]:
        return recipient_zones(job.timezone, _number_zones(job.to), self.pol)

    def window(self, job: Job, t_ms: int, expires_ms: int | None) -> Verdict:
        if self.pol.unrestricted:  # asked at every intake and grant: one answer, built once
            return ALWAYS_OPEN
        zones = self.zones(job)
        w = calling_decision(self.pol, zones, t_ms / 1000,
                             None if expires_ms is None else expires_ms / 1000)
        if w.state == "open":
            end = w.open_until
            return Verdict(True, None if end is None or math.isinf(end) else round(end * 1000),
                           w.description)
        if w.state == "closed" and w.opens_at is not None:
            return Verdict(False, round(w.opens_at * 1000), w.description)
        return Verdict(False, None, w.description, BlockReason(w.reason or "window_never_open"))

    def redial_after_s(self, answer_status: str, redials_done: int) -> float | None:
        return redial_after(self.pol, answer_status, redials_done)


@lru_cache(maxsize=65536)
def _number_zones(e164: str) -> tuple[str, ...]:
    return numbers.time_zones(e164)


class PolicyBook:
    """Every campaign's view, built once."""

    def __init__(self, policy: PolicyConfig, campaigns: Mapping[str, CampaignConfig]):
        self.policy = policy
        self.campaigns = dict(campaigns)
        self._views: dict[str | None, JobPolicy] = {}

    def view(self, campaign: str | None) -> EffectivePolicy:
        return effective_policy(self.policy, self.campaigns, campaign)

    def for_job(self, job: Job) -> JobPolicy:
        return self._of(job.campaign)

    def _of(self, campaign: str | None) -> JobPolicy:
        got = self._views.get(campaign)
        if got is None:
            got = self._views[campaign] = JobPolicy(self.view(campaign))
        return got

    def grant_campaigns(self) -> dict[str, dict[str, Any]]:
        """What the grant script must know per configured campaign: share, call cap, caps."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.campaigns:
            p = self.view(name)
            entry: dict[str, Any] = {"share": p.share}
            if p.max_concurrent_calls:
                entry["cap"] = p.max_concurrent_calls
            entry["caps"] = [[w.limit, w.ms] for w in p.number_caps]
            out[name] = entry
        return out

    def default_caps(self) -> tuple[tuple[int, int], ...]:
        return tuple((w.limit, w.ms) for w in self.view(None).number_caps)

    @property
    def dnc_hashed(self) -> bool:
        return self._of(None).pol.dnc_hashed  # asked at every intake: the view built once
