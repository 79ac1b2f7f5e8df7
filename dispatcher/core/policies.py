"""The call policy as the decision core sees it: one view per campaign, built from the
``[policy]`` and ``[campaigns.NAME]`` configuration, with the recipient's zones from the job's
``timezone`` or its number, and, when a jurisdiction or region overrides are configured, what
the recipient's region adds (``[policy.regions.X]`` and the built-in rule set, which only
tightens).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dispatcher.core import numbers
from dispatcher.core.budgets import parse_budget
from dispatcher.core.decide import Verdict
from dispatcher.core.jobs import Job
from dispatcher.core.jurisdiction import Jurisdiction, rule_set
from dispatcher.core.model import BlockReason
from dispatcher.core.policy import (
    NO_LIMIT,
    CallingWindow,
    CampaignConfig,
    EffectivePolicy,
    PolicyConfig,
    calling_decision,
    effective_policy,
    recipient_zones,
    redial_after,
)
from dispatcher.core.regional import RegionalPolicy, RegionView, region_text
from dispatcher.core.regions import region_of_number

ALWAYS_OPEN = Verdict(True, None, NO_LIMIT.description)


class JobPolicy:
    """``decide.Policy`` for one campaign."""

    def __init__(self, pol: EffectivePolicy, regional: RegionalPolicy | None = None):
        self.pol = pol
        self.regional = regional  # None: no jurisdiction and no region overrides configured

    def zones(self, job: Job) -> tuple[str, ...]:
        return recipient_zones(job.timezone, _number_zones(job.to), self.pol)

    def region(self, job: Job, t_ms: int) -> RegionView | None:
        """What the recipient's region makes of this campaign's policy at ``t_ms``."""
        if self.regional is None:
            return None
        return self.regional.view(self.pol, job.region, job.to, t_ms / 1000)

    def window(self, job: Job, t_ms: int, expires_ms: int | None) -> Verdict:
        rv = self.region(job, t_ms)
        if rv is not None:
            return self._regional_window(job, rv, t_ms, expires_ms)
        if self.pol.unrestricted:  # asked at every intake and grant: one answer, built once
            return ALWAYS_OPEN
        zones = self.zones(job)
        window = calling_decision(self.pol, zones, t_ms / 1000,
                             None if expires_ms is None else expires_ms / 1000)
        return _verdict(window)

    def _regional_window(self, job: Job, rv: RegionView, t_ms: int,
                         expires_ms: int | None) -> Verdict:
        if rv.effective.unrestricted:
            return ALWAYS_OPEN
        instant, exp = t_ms / 1000, None if expires_ms is None else expires_ms / 1000
        zones = recipient_zones(job.timezone, _number_zones(job.to), rv.effective)
        window = calling_decision(rv.effective, zones, instant, exp)
        if rv.rule is None or window.state not in ("closed", "never_open"):
            return _verdict(window)
        base = calling_decision(rv.configured, zones, instant, exp)
        held = (base.state == "open"
                or (base.state == "closed" and window.state == "never_open")
                or (base.opens_at is not None and window.opens_at is not None
                    and window.opens_at > base.opens_at))
        if not held:  # the configured calling hours hold the job: say so as before
            return _verdict(window)
        # the configured hours would open, the region's never do: the region forbids the call
        return _verdict(window, region_text(rv, zones, instant, window),
                        BlockReason.REGION if window.state == "never_open" else None)

    def subject_caps(self, job: Job, t_ms: int) -> tuple[tuple[int, int], ...]:
        """(limit, window ms) of every per-subject cap on this job: its campaign's, its region
        override's and its region's rule (all hold at once); for the grant script."""
        rv = self.region(job, t_ms)
        caps = rv.subject_caps if rv is not None else self.pol.subject_caps
        return tuple((w.limit, w.ms) for w in caps)

    def own_subject_caps(self, job: Job, t_ms: int) -> tuple[tuple[int, int], ...] | None:
        """The job's subject caps when its region makes them differ from its campaign's (kept
        with the job for the grant script); None when the campaign's apply as configured."""
        if job.subject is None or self.regional is None:
            return None
        caps = self.subject_caps(job, t_ms)
        return None if caps == tuple((w.limit, w.ms) for w in self.pol.subject_caps) else caps

    def redial_after_s(self, answer_status: str, redials_done: int) -> float | None:
        return redial_after(self.pol, answer_status, redials_done)


def _verdict(window: CallingWindow, text: str | None = None,
             reason: BlockReason | None = None) -> Verdict:
    description = window.description if text is None else text
    if window.state == "open":
        end = window.open_until
        return Verdict(True, None if end is None or math.isinf(end) else round(end * 1000),
                       description)
    if window.state == "closed" and window.opens_at is not None:
        return Verdict(False, round(window.opens_at * 1000), description)
    return Verdict(False, None, description,
                   reason or BlockReason(window.reason or "window_never_open"))


@lru_cache(maxsize=65536)
def _number_zones(e164: str) -> tuple[str, ...]:
    return numbers.time_zones(e164)


@dataclass(frozen=True)
class RegistryState:
    """A configured do-not-call registry's copy: how old (None: never imported), and whether
    it holds the jobs it covers."""

    name: str
    age_days: float | None
    max_age_days: int

    @property
    def stale(self) -> bool:
        return self.age_days is None or self.age_days > self.max_age_days

    def words(self) -> str:
        if self.age_days is None:
            return f"do-not-call registry {self.name} has never been imported"
        return (f"do-not-call registry {self.name} is {int(self.age_days)} days old (at most "
                f"{self.max_age_days})")


def registry_states(policy: PolicyConfig, loaded: Mapping[str, int],
                    now_ms: int) -> list[RegistryState]:
    """Each configured registry against the as-of dates in Redis (``loaded``)."""
    return [RegistryState(name, None if name not in loaded
                          else (now_ms - loaded[name]) / 86_400_000, r.max_age_days)
            for name, r in sorted(policy.registries.items())]


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
            pol = self.view(campaign)
            got = self._views[campaign] = JobPolicy(pol, self._regional_of(pol))
        return got

    @staticmethod
    def _regional_of(pol: EffectivePolicy) -> RegionalPolicy | None:
        """The campaign's region overrides and rule set; None when it has neither (the plain
        path, unchanged)."""
        rules = rule_set(Jurisdiction(pol.jurisdiction))
        if rules is None and not pol.region_rules:
            return None
        return RegionalPolicy(rules, dict(pol.region_rules))

    def grant_campaigns(self) -> dict[str, dict[str, Any]]:
        """What the grant script must know per configured campaign: share, call cap, caps."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.campaigns:
            policy = self.view(name)
            entry: dict[str, Any] = {"share": policy.share}
            if policy.max_concurrent_calls:
                entry["cap"] = policy.max_concurrent_calls
            entry["caps"] = [[w.limit, w.ms] for w in policy.number_caps]
            entry["subject_caps"] = [[w.limit, w.ms] for w in policy.subject_caps]
            entry["consent"] = policy.require_consent
            budget = self.campaigns[name].budget
            if budget is not None:
                entry["budget"] = parse_budget(budget)
                entry["budget_tz"] = self.campaigns[name].budget_timezone
            out[name] = entry
        return out

    def default_caps(self) -> tuple[tuple[int, int], ...]:
        return tuple((w.limit, w.ms) for w in self.view(None).number_caps)

    def default_subject_caps(self) -> tuple[tuple[int, int], ...]:
        """``policy.max_calls_per_subject`` as (limit, window ms). A job's own list, with its
        region's caps added, is ``for_job(job).subject_caps(job, t_ms)``."""
        return tuple((w.limit, w.ms) for w in self.view(None).subject_caps)

    def grant_registries(self) -> list[dict[str, Any]]:
        """The do-not-call registries the grant script must find fresh: name, max age (ms)
        and the region codes each covers."""
        return [{"name": name, "max_age": r.max_age_days * 86_400_000,
                 "applies": list(r.applies_to)}
                for name, r in sorted(self.policy.registries.items())]

    def registry_region(self, job: Job) -> str:
        """Where a registry may cover the job ("" when no registry is configured): its
        ``region``, else its number's."""
        if not self.policy.registries:
            return ""
        return job.region or region_of_number(job.to) or ""

    @property
    def dnc_hashed(self) -> bool:
        return self._of(None).pol.dnc_hashed  # asked at every intake: the view built once
